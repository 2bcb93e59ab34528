// Package plot draws a training run: loss and loss per noise level against
// steps (smoothed), speed, and optionally a grid of samples from each saved
// checkpoint, so progress can be watched.
package plot

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/generate"
	"github.com/ncsn-go/ncsn/internal/english"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/internal/plotutil"
	"github.com/ncsn-go/ncsn/sample"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Curves reads a run's train.csv and writes loss.png, loss_per_level.png and
// speed.png into outDir — and where progress is not nil, the picture it
// makes (ProgressImage, called once the log has been read and the outputs
// checked) as progress.png — all or none (a failure leaves the earlier
// ones as they were); it returns the files written.
func Curves(csvPath, outDir string, smooth int, progress func() (image.Image, error)) ([]string, error) {
	if err := outsideImages(filepath.Dir(csvPath), outDir); err != nil {
		return nil, err
	}
	f, err := fsutil.OpenRegular(csvPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("plot: %s is not there (-run names a run's folder, where cmd/train writes its train.csv)", csvPath)
	}
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1 // a run still writing may have left a partial last line
	rows, err := cr.ReadAll()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("plot: %s: %w", csvPath, err)
	}
	if n := len(rows); n > 1 && len(rows[n-1]) != len(rows[0]) {
		rows = rows[:n-1]
	}
	if len(rows) < 3 || len(rows[0]) < 5 || rows[0][0] != "step" {
		return nil, fmt.Errorf("plot: %s is not a training log with at least two steps", csvPath)
	}
	head := rows[0]
	cols := make([][]float64, len(head)) // NaN where empty
	for i, r := range rows[1:] {
		line := i + 2
		if len(r) != len(head) {
			return nil, fmt.Errorf("plot: %s line %d: %d fields, the header %d", csvPath, line, len(r), len(head))
		}
		for k, v := range r {
			x := math.NaN()
			if v != "" {
				if x, err = strconv.ParseFloat(v, 64); err != nil {
					return nil, fmt.Errorf("plot: %s line %d: %s %q: %w", csvPath, line, head[k], v, err)
				}
				if math.IsInf(x, 0) {
					return nil, fmt.Errorf("plot: %s line %d: %s is %v (a training log holds finite values)", csvPath, line, head[k], x)
				}
				// Bounded, so that the axes' spans stay finite (a step of
				// 10²⁰ panicked in the plotting library, ±10³⁰⁸ hung it).
				if k == 0 && (x != math.Trunc(x) || x < 0 || x >= 1<<53) {
					return nil, fmt.Errorf("plot: %s line %d: step %v is not a step count", csvPath, line, x)
				}
				if math.Abs(x) > 1e100 {
					return nil, fmt.Errorf("plot: %s line %d: %s is %v, beyond what a training log holds", csvPath, line, head[k], x)
				}
			}
			if k == 0 && len(cols[0]) > 0 && !(x > cols[0][len(cols[0])-1]) {
				return nil, fmt.Errorf("plot: %s line %d: step %v after step %v (steps go up)", csvPath, line, x, cols[0][len(cols[0])-1])
			}
			cols[k] = append(cols[k], x)
		}
	}
	smooth = smoothWindow(cols[0], smooth)
	// A picture with no value to draw is an error, said before any
	// sampling (it was an empty frame, and exit status 0).
	drawable := func(col []float64) bool {
		return slices.ContainsFunc(col, func(v float64) bool { return v > 0 }) // NaN is not
	}
	for _, k := range []int{1, 2} {
		if !drawable(cols[k]) {
			return nil, fmt.Errorf("plot: %s: the column %s has no value above 0 to draw", csvPath, head[k])
		}
	}
	if !slices.ContainsFunc(cols[4:], drawable) {
		return nil, fmt.Errorf("plot: %s: none of the %s per noise level (%s …) has a value above 0 to draw", csvPath, english.Count(len(head)-4, "column"), head[4])
	}
	loss := "DSM loss"
	if m, err := checkpoint.ModelOf(filepath.Dir(csvPath)); err == nil && m.IsClassifier() {
		loss = "cross-entropy" // a noise-conditional classifier's run
	}
	names := CurveFiles
	if progress != nil {
		names = append(slices.Clip(names), ProgressFile)
	}
	for _, name := range names {
		if err := fsutil.CheckOutFile("-out", filepath.Join(outDir, name), ".png", fsutil.PNGMagic); err != nil {
			return nil, fmt.Errorf("plot: %w", err)
		}
	}
	var prog image.Image
	if progress != nil {
		if prog, err = progress(); err != nil {
			return nil, err
		}
	}
	// The files are written as a set: a failure leaves the earlier ones.
	set, err := fsutil.NewSet(outDir)
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	defer set.Abort()
	// The first few percent of a run fall steeply; the axis shows the rest.
	skip := cols[0][0] + 0.03*(cols[0][len(cols[0])-1]-cols[0][0])
	clip, top := 0.0, 0.0 // the picture's height: from the points after skip, else all
	line := func(p *plot.Plot, y []float64, c color.Color, label string) error {
		xy := smoothXY(cols[0], y, smooth)
		if len(xy) == 0 {
			return nil
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color = c
		l.Width = vg.Points(1.2)
		p.Add(l)
		if label != "" {
			p.Legend.Add(label, l)
		}
		for _, q := range xy {
			if q.X >= skip {
				clip = math.Max(clip, 1.05*q.Y)
			}
			top = math.Max(top, 1.05*q.Y)
		}
		return nil
	}
	// finish sets a picture's axes, room times as high as its curves.
	finish := func(p *plot.Plot, room float64) {
		if clip == 0 { // every value in the steep start: its frame was empty
			clip = top
		}
		p.X.Tick.Marker = stepTicks{}
		p.Y.Tick.Marker = valueTicks{}
		p.Y.Min, p.Y.Max = 0, clip*room
		clip, top = 0, 0
	}
	save := func(name string, p *plot.Plot) error {
		if err := set.Write(name, func(w io.Writer) (err error) {
			defer func() { // the plotting library panics on what it cannot draw
				if r := recover(); r != nil {
					err = fmt.Errorf("drawing %s: %v", csvPath, r)
				}
			}()
			return plotutil.WriteGrid(w, [][]*plot.Plot{{p}}, 14*vg.Centimeter)
		}); err != nil {
			return fmt.Errorf("plot: %s: %w", filepath.Join(outDir, name), err)
		}
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s (moving average over %s)", loss, stepsText(smooth))
	p.X.Label.Text, p.Y.Label.Text = "step", "loss"
	if err := line(p, cols[1], color.RGBA{20, 60, 160, 255}, ""); err != nil {
		return nil, err
	}
	finish(p, 1)
	if err := save("loss.png", p); err != nil {
		return nil, err
	}
	p = plot.New()
	p.Title.Text = fmt.Sprintf("loss per noise level (moving average over %s)", stepsText(smooth))
	// The training loss's terms as the run weighted them: ½‖σ s + z‖², or
	// with EDM's preconditioning that times (σ/c_out)².
	p.X.Label.Text, p.Y.Label.Text = "step", "mean training loss of the images at that noise level"
	levels := head[4:]
	colours := levelColours(levels)
	// Every level is drawn; at most about 10 are named (a 208-level ladder's
	// legend ran off the picture and pressed the curves flat).
	every := (len(levels) + maxLegend - 1) / maxLegend
	named := 0
	for i := range levels {
		c := colours[i]
		label := ""
		if i%every == 0 || i == len(levels)-1 {
			label = strings.NewReplacer("loss_sigma_", "σ = ", "loss_t_", "t ≥ ").Replace(levels[i])
			named++
		}
		if err := line(p, cols[4+i], c, label); err != nil {
			return nil, err
		}
	}
	if named < len(levels) {
		p.Title.Text += fmt.Sprintf(", %d of %d levels named", named, len(levels))
	}
	// Room above the curves for the legend, one line per level named.
	finish(p, 1+0.045*float64(named))
	p.Legend.Top = true
	if err := save("loss_per_level.png", p); err != nil {
		return nil, err
	}
	p = plot.New()
	p.Title.Text = "training speed"
	p.X.Label.Text, p.Y.Label.Text = "step", "images/s (running mean of the session)"
	if err := line(p, cols[2], color.RGBA{30, 130, 60, 255}, ""); err != nil {
		return nil, err
	}
	finish(p, 1)
	if err := save("speed.png", p); err != nil {
		return nil, err
	}
	if prog != nil {
		if err := set.Write(ProgressFile, func(w io.Writer) error { return png.Encode(w, prog) }); err != nil {
			return nil, fmt.Errorf("plot: %s: %w", filepath.Join(outDir, ProgressFile), err)
		}
	}
	files, err := set.Commit()
	if err != nil {
		return files, fmt.Errorf("plot: %w", err)
	}
	return files, nil
}

// smoothXY is a trailing moving average over k steps: the point at step
// x[i] is the mean of the values logged at steps x[i]−k+1 … x[i]. Missing
// values (empty cells, NaN) and values ≤ 0 are left out; a window counting
// values instead spanned several times k steps where a band's cells were
// mostly empty.
func smoothXY(x, y []float64, k int) plotter.XYs {
	var out plotter.XYs
	var win []plotter.XY // the values inside the window, oldest first
	var sum float64
	for i := range x {
		if math.IsNaN(y[i]) || y[i] <= 0 {
			continue
		}
		win = append(win, plotter.XY{X: x[i], Y: y[i]})
		sum += y[i]
		for x[i]-win[0].X >= float64(k) {
			sum -= win[0].Y
			win = win[1:]
		}
		if len(win) == 1 {
			sum = win[0].Y // no rounding left over from values gone
		}
		out = append(out, plotter.XY{X: x[i], Y: sum / float64(len(win))})
	}
	return out
}

// smoothWindow is the moving average's span in steps for the log's steps
// (rising): smooth, or 1% of the rows where it is 0, and at most the
// steps' span, beyond which it is the mean of them all (it was capped at
// the row count, too few steps where the log has gaps).
func smoothWindow(steps []float64, smooth int) int {
	if smooth < 1 {
		smooth = max(1, len(steps)/100)
	}
	return min(smooth, int(steps[len(steps)-1]-steps[0])+1)
}

// maxLegend is about the most levels loss_per_level.png names.
const maxLegend = 10

// stepsText is "1 step" or "n steps".
func stepsText(n int) string {
	if n == 1 {
		return "1 step"
	}
	return fmt.Sprintf("%d steps", n)
}

// listCheckpoints is checkpoint.List (a test stands a trainer's pruning in).
var listCheckpoints = checkpoint.List

// CurveFiles are the PNGs Curves writes into its folder (where there is
// something to draw).
var CurveFiles = []string{"loss.png", "loss_per_level.png", "speed.png"}

// CheckProgress reports, before any work, why Progress could not draw from
// dir into out: no checkpoints, a classifier's run, an output that would
// replace what is not an earlier PNG.
func CheckProgress(dir, out string) error {
	_, err := checkpoint.Latest(dir)
	if err != nil {
		return fmt.Errorf("plot: -progress: %w", err)
	}
	st, _, err := checkpoint.LoadFrom(dir)
	if errors.Is(err, checkpoint.ErrCorrupt) { // the others' pictures can still be drawn
		st, err = anyReadable(dir)
	}
	if err != nil {
		return fmt.Errorf("plot: -progress: %w", err)
	}
	if st.Model.IsClassifier() {
		return fmt.Errorf("plot: -progress draws samples from a score model's run; %s holds a noise-conditional classifier's", dir)
	}
	if err := fsutil.CheckOutFile("-out", out, ".png", fsutil.PNGMagic); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// anyReadable is the newest checkpoint of dir that loads.
func anyReadable(dir string) (*checkpoint.State, error) {
	all, err := checkpoint.List(dir)
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if st, err := checkpoint.Load(all[i]); err == nil {
			return st, nil
		}
	}
	return nil, fmt.Errorf("no checkpoint of %s can be read", dir)
}

// outsideImages refuses an output inside the image folder that the run in
// dir trains on (a folder dataset's), where nothing is written: the plots
// would join its training images.
func outsideImages(dir, out string) error {
	ds, err := checkpoint.DatasetOf(dir)
	if err != nil {
		return nil // no checkpoint yet: no dataset to go by
	}
	if folder, ok := data.IsFolder(ds); ok && folder != "" && data.Within(folder, out) {
		return fmt.Errorf("plot: -out %s is inside the image folder %s, which the run trains on and where nothing is written (the plots would join its training images); give one outside it", out, folder)
	}
	return nil
}

// MaxProgressN is the most samples per checkpoint ProgressImage draws: a
// strip of 32×32 of them is as wide as 32 images already, and far more ran
// into cmd/sample's memory bound, whose message names cmd/sample.
const MaxProgressN = 1024

// ProgressFile is the PNG of Curves' progress picture.
const ProgressFile = "progress.png"

// Progress writes ProgressImage into the PNG file out, a name ending in
// .png where no file is or an earlier PNG (replaced); anything else there
// is refused before any sampling.
func Progress(dir, out string, n int, seed uint64, T int, log io.Writer) error {
	if out == "" {
		return errors.New("plot: no output file given")
	}
	if err := fsutil.CheckOutFile("plot: out", out, ".png", fsutil.PNGMagic); err != nil {
		return err
	}
	if err := outsideImages(dir, out); err != nil {
		return err
	}
	img, err := ProgressImage(dir, n, seed, T, log)
	if err != nil {
		return err
	}
	return fsutil.WriteAtomic(out, func(wr io.Writer) error { return png.Encode(wr, img) })
}

// ProgressImage samples n images (same seed) from every checkpoint in dir
// and puts them side by side, oldest first, in one picture. A checkpoint
// that a running trainer prunes before it is read is left out, and the log
// says so (log may be nil). T, annealed Langevin dynamics' steps per level
// (cmd/sample's -steps-per-level), is only for checkpoints it samples; 0
// takes each checkpoint's own.
func ProgressImage(dir string, n int, seed uint64, T int, log io.Writer) (image.Image, error) {
	if log == nil {
		log = io.Discard
	}
	if n < 1 || n > MaxProgressN {
		return nil, fmt.Errorf("plot: %d images per checkpoint: give 1 to %d", n, MaxProgressN)
	}
	files, err := listCheckpoints(dir)
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("plot: no checkpoints in %s", dir)
	}
	var grids []image.Image
	var steps []int // each grid's checkpoint step
	skipped := 0
	samplers, order := map[string][]int{}, []string(nil) // the steps each sampler drew
	for _, f := range files {
		st, err := checkpoint.Load(f)
		if errors.Is(err, fs.ErrNotExist) {
			// Pruned by a trainer still at work since the listing.
			fmt.Fprintf(log, "skipping %s: removed since the checkpoints were listed (a trainer pruning them)\n", f)
			continue
		}
		if errors.Is(err, checkpoint.ErrCorrupt) {
			// One damaged checkpoint stopped the whole picture.
			fmt.Fprintf(log, "skipping %v\n", err)
			skipped++
			continue
		}
		if err != nil {
			return nil, err
		}
		if ald := st.SampleSampler == "ald" || st.SampleSampler == "" && st.Process.Name == "ncsn"; T != 0 && !ald {
			// Draw's error named cmd/sample's flags, which plot has not.
			return nil, fmt.Errorf("plot: -steps-per-level is for checkpoints sampled by annealed Langevin dynamics, and %s is sampled by %s (its own steps): drop the flag", f, cmp.Or(st.SampleSampler, "its process's default sampler"))
		}
		fmt.Fprintf(log, "sampling %s from %s (step %d)\n", english.Count(n, "image"), f, st.Step)
		// T is annealed Langevin dynamics': Draw refuses it for other samplers.
		cfg := generate.Config{N: n, Seed: seed, Denoise: true, StepsPerLevel: T, Log: log} // the sampler of each, named
		res, err := generate.Draw(st, cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		how := res.Sampler
		if res.Autoguide != "" {
			how += fmt.Sprintf(" autoguided (%s, w %g)", res.Autoguide, res.AutoguideWeight)
		}
		if samplers[how] == nil {
			order = append(order, how)
		}
		samplers[how] = append(samplers[how], st.Step)
		g, err := sample.Grid(res.Images, n, res.Channels, res.Height, res.Width)
		if err != nil {
			return nil, err
		}
		grids = append(grids, g)
		steps = append(steps, st.Step)
	}
	if len(grids) == 0 && skipped > 0 {
		return nil, fmt.Errorf("plot: no checkpoint of %s could be read", dir)
	}
	if len(grids) == 0 {
		return nil, fmt.Errorf("plot: every checkpoint of %s was removed while -progress read them", dir)
	}
	if len(order) > 1 {
		// A checkpoint before the guide step has no guide: its samples
		// come from another sampler than the later ones'.
		var parts []string
		for _, how := range order {
			parts = append(parts, fmt.Sprintf("steps %v by %s", samplers[how], how))
		}
		fmt.Fprintf(log, "note: the picture's grids come from different samplers: %s\n", strings.Join(parts, "; "))
	}
	return strips(grids, steps), nil
}

// strips puts the grids side by side, oldest first, each under a line
// naming its checkpoint's step (a damaged checkpoint left out then shows
// as a gap in the steps).
func strips(grids []image.Image, steps []int) image.Image {
	face := basicfont.Face7x13
	const head, gap = 16, 6 // the label line's height, the space between strips
	labels := make([]string, len(grids))
	w, h := 0, 0
	for i, g := range grids {
		labels[i] = fmt.Sprintf("step %d", steps[i])
		w = max(w, g.Bounds().Dx(), font.MeasureString(face, labels[i]).Ceil()+2)
		h = max(h, g.Bounds().Dy())
	}
	canvas := image.NewRGBA(image.Rect(0, 0, len(grids)*(w+gap)-gap, head+h))
	draw.Draw(canvas, canvas.Bounds(), image.White, image.Point{}, draw.Src)
	for i, g := range grids {
		x := i * (w + gap)
		draw.Draw(canvas, image.Rect(x, head, x+g.Bounds().Dx(), head+g.Bounds().Dy()), g, g.Bounds().Min, draw.Src)
		d := font.Drawer{Dst: canvas, Src: image.Black, Face: face, Dot: fixed.P(x+1, head-4)}
		d.DrawString(labels[i])
	}
	return canvas
}

// stepTicks marks the step axis at whole steps only, written as integers:
// gonum's default ticks wrote "25.00" on a short run's axis and put marks
// between steps, and never returned on an axis as narrow as two steps
// near 2⁵² (a spin inside gonum's tick search).
type stepTicks struct{}

// Ticks implements plot.Ticker: labelled marks every 1, 2 or 5 × 10^k
// steps (at most 6 of them), unlabelled ones between.
func (stepTicks) Ticks(min, max float64) []plot.Tick {
	if !(min <= max) || math.IsInf(min, 0) || math.IsInf(max, 0) || math.Abs(min) >= 1<<53 || math.Abs(max) >= 1<<53 {
		return nil
	}
	lo, hi := int64(math.Ceil(min)), int64(math.Floor(max))
	major := int64(1)
	for (hi-lo)/major > 5 { // 1, 2, 5, 10, 20, 50 …
		if major/pow10Below(major) == 2 {
			major = major / 2 * 5
		} else {
			major *= 2
		}
	}
	minor := major / 5
	if major/pow10Below(major) == 2 {
		minor = major / 2
	}
	var out []plot.Tick
	if minor >= 1 {
		for v := ceilTo(lo, minor); v <= hi; v += minor {
			if v%major != 0 {
				out = append(out, plot.Tick{Value: float64(v)})
			}
		}
	}
	for v := ceilTo(lo, major); v <= hi; v += major {
		out = append(out, plot.Tick{Value: float64(v), Label: strconv.FormatInt(v, 10)})
	}
	return out
}

// pow10Below is the largest power of 10 not above n ≥ 1.
func pow10Below(n int64) int64 {
	p := int64(1)
	for p <= n/10 {
		p *= 10
	}
	return p
}

// ceilTo is the least multiple of m ≥ 1 not below v.
func ceilTo(v, m int64) int64 {
	q := v / m * m
	if q < v {
		q += m
	}
	return q
}

// valueTicks are gonum's default marks on a value axis, labelled with as
// few decimals (at most 6) as give each its value to a millionth of the
// marks' spacing, the labels all different ("0 / 250 / 500", not "0.00 /
// 250.00 / 500.00"); values of a million or more, or marks no such labels
// tell apart, get as few significant figures as do ("1.2e+08": gonum's
// own labels rounded them to one, "1e+08" for 1.2e8, twice "1e+23").
type valueTicks struct{}

// Ticks implements plot.Ticker.
func (valueTicks) Ticks(min, max float64) []plot.Tick {
	ticks := (plot.DefaultTicks{}).Ticks(min, max)
	var vals []float64
	big := false
	for _, t := range ticks {
		if t.Label != "" {
			vals = append(vals, t.Value)
			big = big || math.Abs(t.Value) >= 1e6
		}
	}
	if len(vals) < 2 {
		return ticks
	}
	spacing := math.Inf(1)
	for i := 1; i < len(vals); i++ {
		spacing = math.Min(spacing, math.Abs(vals[i]-vals[i-1]))
	}
	if !(spacing > 0) {
		return ticks
	}
	// label writes every labelled mark by format, where that tells each
	// its value and the marks apart.
	label := func(format func(float64) string) bool {
		seen := map[string]bool{}
		for _, v := range vals {
			l := format(v)
			back, _ := strconv.ParseFloat(l, 64)
			if math.Abs(back-v) > 1e-6*spacing || seen[l] {
				return false
			}
			seen[l] = true
		}
		for i := range ticks {
			if ticks[i].Label != "" {
				ticks[i].Label = format(ticks[i].Value)
			}
		}
		return true
	}
	if !big {
		for d := 0; d <= 6; d++ {
			if label(func(v float64) string { return strconv.FormatFloat(v, 'f', d, 64) }) {
				return ticks
			}
		}
	}
	for p := 1; p <= 17; p++ {
		if label(func(v float64) string { return strconv.FormatFloat(v, 'g', p, 64) }) {
			return ticks
		}
	}
	return ticks
}

// levelColours colours the per-level columns from blue, the least noise,
// to red, the most, whichever way the columns run (a ladder's σ's go down,
// the bands of t up).
func levelColours(levels []string) []color.Color {
	cmap := moreland.SmoothBlueRed()
	cmap.SetMin(0)
	cmap.SetMax(1)
	down := len(levels) > 1 && levelOf(levels[0]) > levelOf(levels[len(levels)-1])
	out := make([]color.Color, len(levels))
	for i := range levels {
		at := float64(i) / math.Max(1, float64(len(levels)-1))
		if down {
			at = 1 - at
		}
		out[i], _ = cmap.At(at)
	}
	return out
}

// levelOf is the noise level a per-level column names (loss_sigma_0.5:
// 0.5, loss_t_0.3: 0.3), NaN where it names none.
func levelOf(column string) float64 {
	v, err := strconv.ParseFloat(column[strings.LastIndex(column, "_")+1:], 64)
	if err != nil {
		return math.NaN()
	}
	return v
}
