package plot

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sample"
	"github.com/ncsn-go/ncsn/train"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
)

func TestCurves(t *testing.T) {
	dir := t.TempDir()
	csv := "step,loss,images_per_s,elapsed_s,loss_sigma_1,loss_sigma_0.1\n"
	for s := 1; s <= 50; s++ {
		csv += strings.Join([]string{itoa(s), itoa(400 / s), "150", itoa(s), itoa(200 / s), ""}, ",") + "\n"
	}
	csv += "51,3" // a partial last line, as a run still writing leaves it
	p := filepath.Join(dir, "train.csv")
	os.WriteFile(p, []byte(csv), 0o644)
	files, err := Curves(p, filepath.Join(dir, "out"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("files %v", files)
	}
	// With a progress picture, all four files are one set: where drawing
	// the picture fails (a corrupt checkpoint), no curve is replaced (they
	// were, before the picture failed), and where it works all four are
	// written.
	before, _ := os.ReadFile(files[0])
	os.WriteFile(p, []byte(strings.Replace(csv, "\n2,200,", "\n2,100,", 1)), 0o644)
	if _, err := Curves(p, filepath.Join(dir, "out"), 0, func() (image.Image, error) { return nil, errors.New("corrupt") }); err == nil || err.Error() != "corrupt" {
		t.Fatalf("a failed progress picture: %v", err)
	}
	if after, _ := os.ReadFile(files[0]); !bytes.Equal(before, after) {
		t.Fatal("a failed progress picture left a new loss.png")
	}
	all, err := Curves(p, filepath.Join(dir, "out"), 0, func() (image.Image, error) { return image.NewGray(image.Rect(0, 0, 4, 4)), nil })
	if err != nil || len(all) != 4 || filepath.Base(all[3]) != ProgressFile {
		t.Fatalf("with progress: %v %v", all, err)
	}
	if after, _ := os.ReadFile(files[0]); bytes.Equal(before, after) {
		t.Fatal("loss.png was not replaced")
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(fh); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		fh.Close()
	}
	os.WriteFile(p, []byte("a,b\n1,2\n"), 0o644)
	if _, err := Curves(p, dir, 0, nil); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("not a log: %v", err)
	}
	if _, err := Curves(filepath.Join(dir, "none.csv"), dir, 0, nil); err == nil || !strings.HasPrefix(err.Error(), "plot: "+filepath.Join(dir, "none.csv")+" is not there (-run names") {
		t.Fatalf("missing file: %v", err)
	}
	// Damaged logs name the file and the line; an output folder holding a
	// file of a curve's name that is not an earlier PNG is refused, untouched.
	good := "step,loss,images_per_s,elapsed_s,loss_sigma_1\n1,5,1,1,5\n2,4,1,2,4\n"
	for _, tc := range []struct{ csv, want string }{
		{good + "3,Inf,1,3,3\n", "line 4: loss is +Inf"},
		{good + "1,3,1,3,3\n", "line 4: step 1 after step 2"},
		{good + "3,x,1,3,3\n", "line 4: loss \"x\""},
	} {
		os.WriteFile(p, []byte(tc.csv), 0o644)
		if _, err := Curves(p, filepath.Join(dir, "o2"), 0, nil); err == nil || !strings.Contains(err.Error(), p+" "+tc.want) {
			t.Errorf("%q: %v, want %q", tc.csv, err, tc.want)
		}
	}
	os.WriteFile(p, []byte(good), 0o644)
	own := filepath.Join(dir, "own")
	os.Mkdir(own, 0o755)
	os.WriteFile(filepath.Join(own, "speed.png"), []byte("important"), 0o644)
	if _, err := Curves(p, own, 0, nil); err == nil || !strings.Contains(err.Error(), "speed.png exists and is not a PNG") {
		t.Fatalf("over a file that is not a PNG: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(own, "speed.png")); string(b) != "important" {
		t.Fatal("the file was replaced")
	}
}

func itoa(v int) string { return strconv.Itoa(v) }

// TestCheckProgress: -progress on a classifier's run is refused before any
// curve is drawn; on a score model's run it passes.
func TestCheckProgress(t *testing.T) {
	d := &data.Dataset{Name: "mnist", N: 8, Channels: 1, Height: 8, Width: 8, Labels: make([]uint8, 8), Images: make([]float32, 8*64)}
	for i := range d.Images {
		d.Images[i] = float32(i%7) / 7
	}
	for _, classifier := range []bool{false, true} {
		dir := t.TempDir()
		c := train.Config{Dataset: "mnist", Preset: "test",
			Model: model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4},
			Steps: 1, Batch: 2, LR: 1e-3, EMADecay: 0.9, SigmaMax: 1, SigmaMin: 0.05, Levels: 3, SaveEvery: 1, CkptDir: dir, Data: d}
		if classifier {
			if err := c.UseClassifier(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := train.Run(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		err := CheckProgress(dir, filepath.Join(dir, "plots", "progress.png"))
		if classifier != (err != nil) || classifier && !strings.Contains(err.Error(), "holds a noise-conditional classifier's") {
			t.Fatalf("classifier %v: %v", classifier, err)
		}
	}
}

// twoStepRun is the folder of a tiny NCSN run of two steps, a checkpoint
// after each.
func twoStepRun(t *testing.T) string {
	t.Helper()
	d := &data.Dataset{Name: "mnist", N: 8, Channels: 1, Height: 8, Width: 8, Labels: make([]uint8, 8), Images: make([]float32, 8*64)}
	dir := t.TempDir()
	c := train.Config{Dataset: "mnist", Preset: "test",
		Model: model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4},
		Steps: 2, Batch: 2, LR: 1e-3, EMADecay: 0.9, SigmaMax: 1, SigmaMin: 0.05, Levels: 3, SaveEvery: 1, CkptDir: dir, Data: d}
	if _, err := train.Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestProgressSkipsPruned: a checkpoint removed between the listing and its
// reading (a trainer pruning) is left out and the log says so.
func TestProgressSkipsPruned(t *testing.T) {
	dir := twoStepRun(t)
	// What is not an earlier PNG is never replaced (the library call wrote
	// its picture over a checkpoint, or a user's notes); a nil log is none.
	notes := filepath.Join(dir, "notes.txt")
	os.WriteFile(notes, []byte("mine"), 0o644)
	for _, out := range []string{filepath.Join(dir, checkpoint.FileName(2)), notes, filepath.Join(dir, "notes.png")} {
		before, _ := os.ReadFile(out)
		if out == filepath.Join(dir, "notes.png") {
			os.WriteFile(out, []byte("not a picture"), 0o644)
			before = []byte("not a picture")
		}
		if err := Progress(dir, out, 1, 0, 0, nil); err == nil || !strings.HasPrefix(err.Error(), "plot: ") {
			t.Errorf("out %s: %v", out, err)
		}
		if after, _ := os.ReadFile(out); !bytes.Equal(after, before) {
			t.Errorf("out %s was changed", out)
		}
	}
	if err := Progress(dir, filepath.Join(dir, "nil-log.png"), 1, 0, 0, nil); err != nil {
		t.Fatalf("nil log: %v", err)
	}
	gone := filepath.Join(dir, checkpoint.FileName(1))
	prune := []string{gone}
	defer func(l func(string) ([]string, error)) { listCheckpoints = l }(listCheckpoints)
	listCheckpoints = func(dir string) ([]string, error) {
		files, err := checkpoint.List(dir)
		for _, p := range prune {
			os.Remove(p)
		}
		return files, err
	}
	out := filepath.Join(dir, "progress.png")
	var log strings.Builder
	if err := Progress(dir, out, 1, 0, 1, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "skipping "+gone+": removed since") || !fsutil.HasMagic(out, fsutil.PNGMagic) {
		t.Fatalf("log %q", log.String())
	}
	prune = []string{filepath.Join(dir, checkpoint.FileName(2))}
	if err := Progress(dir, out, 1, 0, 1, io.Discard); err == nil || !strings.Contains(err.Error(), "every checkpoint") {
		t.Fatalf("all removed: %v", err)
	}
}

// TestProgressStepsPerLevel: -steps-per-level on a run sampled by another
// sampler than annealed Langevin dynamics is refused in plot's own words
// (the error named cmd/sample's -eps and -steps, which plot has not).
func TestProgressStepsPerLevel(t *testing.T) {
	d := &data.Dataset{Name: "mnist", N: 8, Channels: 1, Height: 8, Width: 8, Labels: make([]uint8, 8), Images: make([]float32, 8*64)}
	dir := t.TempDir()
	c := train.Config{Dataset: "mnist", Preset: "test", SDE: "ve",
		Model: model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4},
		Steps: 1, Batch: 2, LR: 1e-3, EMADecay: 0.9, SigmaMax: 1, SigmaMin: 0.05, SaveEvery: 1, CkptDir: dir, Data: d}
	if _, err := train.Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	err := Progress(dir, filepath.Join(dir, "progress.png"), 1, 0, 3, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "plot: -steps-per-level is for checkpoints sampled by annealed Langevin dynamics") || strings.Contains(err.Error(), "-eps") {
		t.Fatalf("-steps-per-level 3 on a VE run: %v", err)
	}
}

// TestOutsideTheImageFolder: the plots of a run on a folder dataset are
// never written inside its image folder (cmd/plot -out there wrote
// loss.png and the rest among the training images, which a resume then
// trained on).
func TestOutsideTheImageFolder(t *testing.T) {
	dir := twoStepRun(t)
	imgs := t.TempDir()
	st, err := checkpoint.Load(filepath.Join(dir, checkpoint.FileName(2)))
	if err != nil {
		t.Fatal(err)
	}
	st.Dataset = data.FolderPrefix + imgs
	if _, err := checkpoint.Save(dir, st); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(dir, checkpoint.LogName)
	for _, out := range []string{imgs, filepath.Join(imgs, "plots")} {
		if _, err := Curves(csv, out, 0, nil); err == nil || !strings.Contains(err.Error(), "inside the image folder") {
			t.Errorf("Curves into %s: %v", out, err)
		}
	}
	if err := Progress(dir, filepath.Join(imgs, "p.png"), 1, 0, 0, nil); err == nil || !strings.Contains(err.Error(), "inside the image folder") {
		t.Errorf("Progress: %v", err)
	}
	if left, _ := os.ReadDir(imgs); len(left) != 0 {
		t.Fatalf("%d files written among the images", len(left))
	}
	if _, err := Curves(csv, filepath.Join(dir, "plots"), 0, nil); err != nil {
		t.Fatalf("outside: %v", err)
	}
}

// TestProgressDamagedAndMixed: a damaged checkpoint is left out of the
// progress picture with a line saying so (it stopped the whole picture,
// CheckProgress included, when it was the newest); a picture whose grids
// come from different samplers (the checkpoints before the guide step are
// drawn unguided) says so.
func TestProgressDamagedAndMixed(t *testing.T) {
	d := &data.Dataset{Name: "mnist", N: 8, Channels: 1, Height: 8, Width: 8, Labels: make([]uint8, 8), Images: make([]float32, 8*64)}
	for i := range d.Images {
		d.Images[i] = float32(i%5) / 5
	}
	dir := t.TempDir()
	c := train.Config{Dataset: "mnist", Preset: "test",
		Model: model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4},
		Steps: 4, Batch: 2, LR: 1e-3, EMADecay: 0.9, SigmaMin: 0.05, SaveEvery: 1, Keep: 10, CkptDir: dir, Data: d}
	if err := c.UseSDE("ve"); err != nil {
		t.Fatal(err)
	}
	c.SigmaMax, c.GuideAt, c.SampleSampler, c.SampleSteps, c.SampleAutoguide = 1, 0.5, "heun", 2, 2
	if _, err := train.Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	newest := filepath.Join(dir, checkpoint.FileName(4))
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	os.WriteFile(newest, b, 0o644)
	if err := CheckProgress(dir, filepath.Join(t.TempDir(), "progress.png")); err != nil {
		t.Fatalf("CheckProgress with the newest damaged: %v", err)
	}
	if _, _, err := checkpoint.LoadFrom(dir); err == nil || !strings.Contains(err.Error(), "the run's checkpoint before it can be given instead: "+filepath.Join(dir, checkpoint.FileName(3))) {
		t.Fatalf("LoadFrom of the run: %v", err)
	}
	var log strings.Builder
	img, err := ProgressImage(dir, 1, 0, 0, &log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "skipping "+newest) || !strings.Contains(log.String(), "note: the picture's grids come from different samplers: steps [1] by heun; steps [2 3] by heun autoguided") {
		t.Fatalf("log:\n%s", log.String())
	}
	one, err := sample.Grid(make([]float64, 64), 1, 1, 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	// Three strips, each under its step's label (step 4 was damaged).
	w := max(one.Bounds().Dx(), font.MeasureString(basicfont.Face7x13, "step 3").Ceil()+2)
	if b := img.Bounds(); b.Dx() != 3*(w+6)-6 || b.Dy() != 16+one.Bounds().Dy() {
		t.Fatalf("%v: not three labelled grids %d wide", b, w)
	}
	for i := range 3 {
		dark := 0
		for y := range 16 {
			for x := i * (w + 6); x < i*(w+6)+w; x++ {
				if r, _, _, _ := img.At(x, y).RGBA(); r < 0x8000 {
					dark++
				}
			}
		}
		if dark < 20 {
			t.Errorf("strip %d has no label above it (%d dark pixels)", i, dark)
		}
	}
}

// TestStepTicks: the step axis is marked at whole steps, written as
// integers (a 25-step run's axis read "25.00", with marks between steps),
// 2 to 6 of them labelled, on any axis of steps below 2⁵³ (one two steps
// wide near 2⁵² hung gonum's tick search).
func TestStepTicks(t *testing.T) {
	for _, r := range [][2]float64{{1, 2}, {1, 25}, {0, 7}, {10, 20}, {1, 120000}, {0, 1 << 52}, {4503599627370495, 4503599627370496}, {9007199254740989, 9007199254740991}, {1e15, 1e15 + 3}} {
		labelled := 0
		for _, tk := range (stepTicks{}).Ticks(r[0], r[1]) {
			if tk.Value != math.Trunc(tk.Value) || tk.Value < r[0] || tk.Value > r[1] {
				t.Errorf("%v: a mark at step %g", r, tk.Value)
			}
			if tk.Label == "" {
				continue
			}
			labelled++
			if tk.Label != strconv.FormatInt(int64(tk.Value), 10) {
				t.Errorf("%v: step %g labelled %q", r, tk.Value, tk.Label)
			}
		}
		if labelled < 2 || labelled > 6 {
			t.Errorf("%v: %d labelled marks", r, labelled)
		}
	}
}

// TestValueTicks: a value axis is labelled with no more decimals than its
// marks need ("250", not "250.00").
func TestValueTicks(t *testing.T) {
	for _, tc := range []struct {
		max  float64
		want string
	}{{500, "250"}, {0.3, "0.15"}, {0.0003, "0.00025"}} {
		var labels []string
		for _, tk := range (valueTicks{}).Ticks(0, tc.max) {
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
		}
		if !slices.Contains(labels, tc.want) || slices.Contains(labels, tc.want+"0") {
			t.Errorf("0 to %g: labels %q, want %q among them", tc.max, labels, tc.want)
		}
	}
	// Tiny and huge values keep labels that tell the marks apart and stay
	// short (3e-10 read "0 / 0 / 0 / 0"; 3e40 had 41 digits).
	for _, max := range []float64{3e-10, 3e40, 1e99, 1.21e8, 1.5e23} {
		seen := map[string]bool{}
		for _, tk := range (valueTicks{}).Ticks(0, max) {
			if tk.Label == "" {
				continue
			}
			if seen[tk.Label] || len(tk.Label) > 12 {
				t.Errorf("0 to %g: label %q (twice, or too long)", max, tk.Label)
			}
			seen[tk.Label] = true
		}
		if len(seen) < 2 {
			t.Errorf("0 to %g: labels %v", max, seen)
		}
	}
	// A mark at 1.2e8 reads so (gonum's label was "1e+08").
	var labels []string
	for _, tk := range (valueTicks{}).Ticks(0, 1.26e8) { // a flat loss of 1.2e8, 5% above
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if !slices.Contains(labels, "1.2e+08") {
		t.Errorf("0 to 1.26e8: labels %q", labels)
	}
}

// TestSmoothWindow: -smooth is a span of steps, capped at the log's span
// (it was capped at its row count: 10 steps of a log every 100 steps).
func TestSmoothWindow(t *testing.T) {
	gaps := []float64{100, 200, 300, 400, 500, 600, 700, 800, 900, 1000}
	for _, tc := range []struct {
		steps        []float64
		smooth, want int
	}{{gaps, 5000, 901}, {gaps, 300, 300}, {gaps, 0, 1}, {[]float64{1, 2, 3}, 0, 1}, {[]float64{1, 2, 3}, 7, 3}} {
		if got := smoothWindow(tc.steps, tc.smooth); got != tc.want {
			t.Errorf("%v, -smooth %d: %d, want %d", tc.steps, tc.smooth, got, tc.want)
		}
	}
}

// TestSmoothOverSteps: the moving average spans k steps, not k values: a
// band logged every 10th step, averaged over 10 steps, is its own values
// (it was the mean of the last 10 values, 100 steps).
func TestSmoothOverSteps(t *testing.T) {
	var x, y []float64
	for s := 1; s <= 200; s++ {
		x = append(x, float64(s))
		if s%10 == 0 {
			y = append(y, float64(s))
		} else {
			y = append(y, math.NaN())
		}
	}
	for _, p := range smoothXY(x, y, 10) {
		if p.Y != p.X {
			t.Fatalf("at step %g: %g, want %g", p.X, p.Y, p.X)
		}
	}
	xy := smoothXY(x, y, 30) // steps 171 … 200 hold 180, 190, 200
	if last := xy[len(xy)-1]; last.Y != 190 {
		t.Fatalf("30 steps to 200: %g, want 190", last.Y)
	}
}

// TestNothingToDraw: a log with no value above 0 in a picture's columns
// is an error naming the file and column, not an empty frame.
func TestNothingToDraw(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "train.csv")
	h := "step,loss,images_per_s,elapsed_s,loss_t_0.0,loss_t_0.5\n"
	for _, tc := range []struct{ rows, want string }{
		{"1,0,5,1,1,\n2,0,5,2,1,\n3,0,5,3,,1\n", "the column loss has no value above 0"},
		{"1,1,5,1,,\n2,1,5,2,,\n3,1,5,3,,\n", "none of the 2 columns per noise level (loss_t_0.0 …) has a value above 0"},
		{"1,1,0,1,1,\n2,1,0,2,1,\n3,1,0,3,1,\n", "the column images_per_s has no value above 0"},
		{"1,NaN,5,1,1,\n2,-1,5,2,1,\n3,,5,3,1,\n", "the column loss has no value above 0"},
	} {
		os.WriteFile(p, []byte(h+tc.rows), 0o644)
		// Said before -progress samples every checkpoint.
		sampled := false
		progress := func() (image.Image, error) { sampled = true; return image.NewGray(image.Rect(0, 0, 1, 1)), nil }
		if _, err := Curves(p, filepath.Join(dir, "out"), 0, progress); err == nil || err.Error() != "plot: "+p+": "+tc.want+" to draw" || sampled {
			t.Errorf("%q: %v (sampled first: %v)", tc.rows, err, sampled)
		}
		if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
			t.Errorf("%q: the output folder was made", tc.rows)
		}
	}
}

// TestLevelColours: blue is the least noise and red the most, whether the
// columns run down (a ladder's σ's) or up (the bands of t).
func TestLevelColours(t *testing.T) {
	red := func(c color.Color) bool { r, _, b, _ := c.RGBA(); return r > b }
	for _, levels := range [][]string{{"loss_sigma_1", "loss_sigma_0.1", "loss_sigma_0.01"}, {"loss_t_0.0", "loss_t_0.5", "loss_t_0.9"}} {
		c := levelColours(levels)
		most, least := c[0], c[2]
		if levels[0] == "loss_t_0.0" {
			most, least = c[2], c[0]
		}
		if !red(most) || red(least) {
			t.Errorf("%v: the most noise %v, the least %v", levels, most, least)
		}
	}
}

// TestSteepStartDrawn: a loss whose values above 0 all fall in the first
// 3% of the steps, which the height leaves out, is still drawn (its frame
// was empty, from −1 to 1).
func TestSteepStartDrawn(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "train.csv")
	csv := "step,loss,images_per_s,elapsed_s,loss_t_0.0\n1,5,5,1,1\n2,5,5,2,1\n"
	for s := 3; s <= 100; s++ {
		csv += itoa(s) + ",0,5," + itoa(s) + ",1\n"
	}
	os.WriteFile(p, []byte(csv), 0o644)
	files, err := Curves(p, filepath.Join(dir, "out"), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	curve := 0 // pixels of the loss curve's blue (20, 60, 160, drawn blended)
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if bl>>8 > r>>8+80 && bl>>8 > g>>8+50 {
				curve++
			}
		}
	}
	if curve < 10 {
		t.Fatalf("%s: %d pixels of the curve", files[0], curve)
	}
}
