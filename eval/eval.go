package eval

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/generate"
	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/internal/english"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/safetensors"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("eval: bad config")

// Config is one evaluation.
type Config struct {
	Dataset string // mnist, fashion, cifar10, or folder:PATH (Folder)
	DataDir string // default data/<dataset>; the classifier is cached here
	// Samples is a checkpoint file or folder (N samples are drawn), a folder
	// of PNGs, or a grid PNG written by cmd/sample.
	Samples string
	N       int    // samples to draw from a checkpoint
	NSet    bool   // N was given: an error where the samples are PNGs (scored whole)
	Seed    uint64 // for drawing and for the floor's subset
	Epochs  int    // classifier training epochs, when it is not cached yet
	// Sampler settings when drawing from a checkpoint (0: its defaults).
	Eps           float64
	StepsPerLevel int
	Sampler       string  // as cmd/sample's -sampler ("": the model's default)
	Steps         int     // as cmd/sample's -steps
	SNR, Tol      float64 // as cmd/sample's -snr and -tol
	// As cmd/sample's -churn, -churn-min, -churn-max and -churn-noise.
	Churn, ChurnMin, ChurnMax, ChurnNoise float64
	ChurnSet                              bool // -churn was given (0 included)
	// Raw draws from the trained weights instead of their moving average
	// (cmd/sample's -raw); NoDenoise leaves out the final denoising step
	// (-denoise=false); DenoiseSet says -denoise was given (=true too), to
	// be refused where nothing is drawn.
	Raw, NoDenoise, DenoiseSet bool
	// Class, Guidance and Classifier draw class-conditional samples as
	// cmd/sample's -class, -guidance and -classifier do (N of each class);
	// the result then says how many the evaluation classifier assigns to
	// the class asked for.
	Class      string
	Guidance   float64
	Classifier string
	// Autoguide and AutoguideWeight guide the sampler away from a weaker
	// score model, as cmd/sample's -autoguide and -autoguide-weight.
	Autoguide       string
	AutoguideWeight float64
	// Device is where the score network runs when drawing, as
	// cmd/sample's -device, and with BPD its vector–Jacobian products; for
	// a noise-conditional classifier's accuracy, where the classifier runs.
	Device string
	// BPD asks BitsPerDim for the likelihood of N test images instead.
	BPD bool
	// Folder datasets (Folder): the image size and colour when the samples
	// are PNGs rather than a checkpoint, and where to write the picture of
	// samples beside their nearest training images ("": none).
	Size int
	Grey bool
	// GreySet says Grey was given (-grey=false too), to be compared with a
	// checkpoint's images.
	GreySet bool
	NNOut   string
	Log     io.Writer
	// loaded is the checkpoint -samples names, once Run has read it (from
	// loadedPath).
	loaded     *checkpoint.State
	loadedPath string
	// opened is the device Run opened for drawing (nil: the CPU).
	opened *cuda.Device
}

// Result is the JSON line cmd/eval prints.
type Result struct {
	N                  int     `json:"n"`
	FID                float64 `json:"fid"`
	FIDFloor           float64 `json:"fid_floor"`
	MeanConf           float64 `json:"mean_conf"`
	ConfGE09           float64 `json:"conf_ge_0_9"`
	ClassEntropy       float64 `json:"class_entropy"` // bits; uniform over 10 classes is 3.32
	ClassifierAccuracy float64 `json:"classifier_accuracy"`
	Histogram          []int   `json:"class_histogram"`
	Dataset            string  `json:"dataset"`
	Source             string  `json:"source"`
	// When the samples were drawn from a checkpoint: by which sampler, with
	// how many network evaluations, in how many seconds.
	Sampler       string   `json:"sampler,omitempty"`
	Evals         int      `json:"evals,omitempty"`
	SampleSeconds *float64 `json:"sample_seconds,omitempty"` // nil where not drawn here (0 is kept)
	// Autoguidance, when the sampler used it: the guide (a checkpoint, or
	// "self": the checkpoint's own) and w.
	Autoguide       string  `json:"autoguide,omitempty"`
	AutoguideWeight float64 `json:"autoguide_weight,omitempty"`
	// Class-conditional samples: the fraction the classifier assigns to the
	// class asked for, overall and per class asked for.
	Guidance   float64      `json:"guidance,omitempty"`
	RightClass *float64     `json:"right_class,omitempty"` // nil without -class (0 is kept: it was dropped)
	PerClass   []ClassRight `json:"per_class,omitempty"`
}

// ClassRight counts the samples asked of one class and how many the
// classifier assigns to it, and how many of those with confidence ≥ 0.9.
type ClassRight struct {
	Class     int `json:"class"`
	N         int `json:"n"`
	Right     int `json:"right"`
	RightConf int `json:"right_conf_ge_0_9"`
}

// isCheckpoint reports whether path is a checkpoint file or a folder of
// them: one with a `latest` or a checkpoint file, even where `latest` is
// stale or unreadable (loading it then says why, where the folder was once
// taken for one of PNGs that held none). A file named .ckpt is one too,
// unless empty: a damaged one is then told it is, not that it is not a PNG.
func isCheckpoint(path string) bool {
	fi, err := os.Stat(path)
	if err == nil && fi.IsDir() {
		_, err := checkpoint.Latest(path)
		return !errors.Is(err, checkpoint.ErrNone)
	}
	if err == nil && fi.Size() > 0 && strings.EqualFold(filepath.Ext(path), ".ckpt") {
		return true
	}
	head, err := readHead(path, 8)
	return err == nil && string(head) == checkpoint.Magic
}

// pngNote says so where -samples, a run's folder, holds PNGs too: they are
// not what is scored.
func pngNote(c Config) {
	if fi, err := os.Stat(c.Samples); err != nil || !fi.IsDir() {
		return
	}
	if pngs, _ := fsutil.Glob(c.Samples, "*.[pP][nN][gG]"); len(pngs) > 0 && c.Log != nil {
		fmt.Fprintf(c.Log, "note: %s holds checkpoints, so new samples are drawn from its newest; the PNGs there (%d) are not scored (give a folder of PNGs alone for those)\n", c.Samples, len(pngs))
	}
}

// drawingFlags names the flags set in c that only drawing samples from a
// checkpoint uses (cmd/eval's names), other than those in keep.
func (c Config) drawingFlags(keep ...string) []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"-eps", c.Eps != 0}, {"-steps-per-level", c.StepsPerLevel != 0}, {"-sampler", c.Sampler != ""},
		{"-steps", c.Steps != 0}, {"-snr", c.SNR != 0}, {"-tol", c.Tol != 0}, {"-churn", c.Churn != 0 || c.ChurnSet},
		{"-churn-min", c.ChurnMin != 0}, {"-churn-max", c.ChurnMax != 0}, {"-churn-noise", c.ChurnNoise != 0},
		{"-class", c.Class != ""}, {"-classifier", c.Classifier != ""}, {"-autoguide", c.Autoguide != ""},
		{"-autoguide-weight", c.AutoguideWeight != 0}, {"-device", c.Device != "" && c.Device != "cpu"},
		{"-raw", c.Raw}, {"-denoise", c.NoDenoise || c.DenoiseSet},
	} {
		if f.set && !slices.Contains(keep, f.name) {
			out = append(out, f.name)
		}
	}
	return out
}

// onlyDrawing is an ErrConfig error where c sets a flag that only drawing
// from a checkpoint uses (other than keep) and -samples is not one (drawing
// false), or where the evaluation what ("-bpd", a classifier's) draws
// nothing: such a flag would be ignored silently.
func (c Config) onlyDrawing(what string, drawing bool, keep ...string) error {
	if !drawing && safetensors.Looks(c.Samples) { // neither images nor a checkpoint
		return fmt.Errorf("%w: -samples %s is a safetensors file (cmd/export's): import it into a checkpoint folder first (go run ./cmd/export -import %s -out DIR) and give that folder", ErrConfig, c.Samples, c.Samples)
	}
	flags := c.drawingFlags(keep...)
	if c.NSet && !drawing && what == "" { // -n goes with -bpd and classifiers too
		flags = append(flags, "-n")
	}
	if len(flags) == 0 || (drawing && what == "") {
		return nil
	}
	are := "is"
	if len(flags) > 1 {
		are = "are"
	}
	if what != "" {
		return fmt.Errorf("%w: %s %s for drawing samples from a score model's checkpoint, and %s draws none", ErrConfig, strings.Join(flags, ", "), are, what)
	}
	if fi, err := os.Stat(c.Samples); err == nil && fi.IsDir() {
		if pngs, _ := fsutil.Glob(c.Samples, "*.[pP][nN][gG]"); len(pngs) == 0 {
			return fmt.Errorf("%w: %s %s for drawing samples from a checkpoint, and -samples %s holds none (cmd/train saves them in its -ckpt-dir: train first), nor PNGs", ErrConfig, strings.Join(flags, ", "), are, c.Samples)
		}
	}
	return fmt.Errorf("%w: %s %s for drawing samples from a checkpoint, and -samples %s is not one (nor a folder of them)", ErrConfig, strings.Join(flags, ", "), are, c.Samples)
}

// Run scores the samples against the dataset's test set.
func Run(c Config) (*Result, error) {
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.DataDir == "" {
		c.DataDir = filepath.Join("data", c.Dataset)
	}
	if c.Epochs == 0 {
		c.Epochs = 3
		if c.Dataset == "cifar10" {
			c.Epochs = 4
		}
	}
	if !slices.Contains(data.Names, c.Dataset) {
		return nil, fmt.Errorf("%w: unknown dataset %q (mnist, fashion, cifar10 or folder:PATH)", ErrConfig, c.Dataset)
	}
	load := func(o data.Options, split string) (*data.Dataset, error) { return data.Load(c.Dataset, o, split) }
	if c.Samples == "" {
		return nil, fmt.Errorf("%w: no -samples given", ErrConfig)
	}
	if _, err := os.Stat(c.Samples); err != nil {
		return nil, fmt.Errorf("eval: -samples: %w", err)
	}
	drawing := isCheckpoint(c.Samples)
	if err := c.onlyDrawing("", drawing); err != nil {
		return nil, err
	}
	if drawing { // its dataset and its file are checked before the data and the classifier are loaded
		var err error
		if c.loaded, c.loadedPath, err = checkpoint.LoadFrom(c.Samples); err != nil {
			return nil, err
		}
		if c.loaded.Dataset != c.Dataset {
			return nil, fmt.Errorf("%w: %s was trained on %s, not %s", ErrConfig, c.loadedPath, c.loaded.Dataset, c.Dataset)
		}
		pngNote(c)
		// So is the device: a missing GPU is found before minutes of
		// downloads and classifier training.
		if c.opened, err = generate.OpenDevice(c.Device, c.Log); err != nil {
			return nil, err
		}
		if c.opened != nil {
			defer c.opened.Close()
		} else {
			c.Device = "cpu" // said once why, where it was ""
		}
	}
	// What can be refused is, before the data and the classifier (minutes
	// to train where it is not cached): the drawing's settings, or the
	// images' files.
	var pngs *pngSamples
	var imgs []float32
	var n int
	var shape *data.Dataset // of imgs, read before the test set
	if drawing {
		if err := c.checkDraw(); err != nil {
			return nil, err
		}
	} else {
		var err error
		if pngs, err = readPNGs(c); err != nil {
			return nil, err
		}
		// Their size, before the test set is fetched (CIFAR-10's 163 MB
		// were, to say that MNIST's samples are not its size).
		if shape = data.ShapeOf(c.Dataset); shape != nil {
			if imgs, n, err = pngs.pixels(shape); err != nil {
				return nil, err
			}
		}
	}
	o := data.Options{Dir: c.DataDir, Log: c.Log}
	test, err := load(o, "test")
	if err != nil {
		return nil, err
	}
	if pngs != nil && (shape == nil || shape.Channels != test.Channels || shape.Height != test.Height || shape.Width != test.Width) {
		if imgs, n, err = pngs.pixels(test); err != nil {
			return nil, err
		}
	}
	var trainSet *data.Dataset
	trainSplit := func() (*data.Dataset, error) {
		if trainSet == nil {
			trainSet, err = load(o, "train")
		}
		return trainSet, err
	}
	tr, err := trainSplit()
	if err != nil {
		return nil, err
	}
	total := c.N // found before the drawing, not after
	switch {
	case c.Class == "all":
		total *= 10 // every dataset of cmd/eval has 10 classes
	case c.Class != "":
		total *= len(strings.Split(c.Class, ","))
	}
	if drawing && total > tr.N {
		return nil, fmt.Errorf("%w: -n %d draws %d samples: the floor compares as many real training images, and %s has %d", ErrConfig, c.N, total, c.Dataset, tr.N)
	}
	clf, err := classifier(c, test, trainSplit)
	if err != nil {
		return nil, err
	}
	var drawn *generate.Result
	if drawing {
		if imgs, n, drawn, err = drawOrRead(c, test); err != nil {
			return nil, err
		}
	}
	res, err := Evaluate(clf, imgs, n, test, tr, c.Seed)
	if err != nil {
		return nil, err
	}
	res.Dataset, res.Source = c.Dataset, c.Samples
	if drawn != nil {
		secs := math.Round(drawn.Seconds*10) / 10
		res.Sampler, res.Evals, res.SampleSeconds = drawn.Sampler, drawn.Evals, &secs
		res.Autoguide, res.AutoguideWeight = drawn.Autoguide, drawn.AutoguideWeight
		if drawn.Labels != nil {
			if err := res.rightClass(clf, imgs, drawn.Labels); err != nil {
				return nil, err
			}
			res.Guidance = c.Guidance
		}
	}
	return res, nil
}

// classStats are n samples' class statistics from their class
// probabilities (10 each): the histogram of their top classes, the mean top
// probability, the share at 0.9 or above and the histogram's entropy in
// bits. Shares are counted, then divided once: n additions of 1/n came to
// 1.0000000000000002 for 9 samples.
func classStats(probs []float64, n int) (hist []int, meanConf, confGE09, entropy float64) {
	hist = make([]int, 10)
	sure, conf := 0, 0.0
	for i := 0; i < n; i++ {
		p := probs[i*10 : (i+1)*10]
		k := argmax(p)
		hist[k]++
		conf += p[k]
		if p[k] >= 0.9 {
			sure++
		}
	}
	for _, h := range hist {
		if h > 0 {
			q := float64(h) / float64(n)
			entropy -= q * math.Log2(q)
		}
	}
	return hist, conf / float64(n), float64(sure) / float64(n), entropy
}

// Evaluate scores n images (N,C,H,W) with the classifier against the test
// set; the floor compares n random training images with the test set.
func Evaluate(clf *Classifier, imgs []float32, n int, test, train *data.Dataset, seed uint64) (*Result, error) {
	switch { // each panicked, or said "moments of 0 values"
	case clf == nil || test == nil || train == nil:
		return nil, fmt.Errorf("%w: Evaluate needs a classifier, the test set and the training set", ErrConfig)
	case n < 2 || len(imgs) != n*test.Dim():
		return nil, fmt.Errorf("%w: %d values for %d samples of %d (at least 2)", ErrConfig, len(imgs), n, test.Dim())
	}
	probs, feats, err := clf.Predict(imgs, n)
	if err != nil {
		return nil, err
	}
	_, testFeats, err := clf.Predict(test.Images, test.N)
	if err != nil {
		return nil, err
	}
	res := &Result{N: n, ClassifierAccuracy: clf.Accuracy, Dataset: clf.Dataset}
	res.Histogram, res.MeanConf, res.ConfGE09, res.ClassEntropy = classStats(probs, n)
	mt, ct, err := Moments(testFeats, Features)
	if err != nil {
		return nil, err
	}
	ms, cs, err := Moments(feats, Features)
	if err != nil {
		return nil, err
	}
	if res.FID, err = Frechet(ms, cs, mt, ct); err != nil {
		return nil, err
	}
	// The floor: n real training images against the test set. With as few
	// samples as the evaluation has, it carries the same small-sample bias.
	r := rand.New(rand.NewPCG(seed, 0x666c6f6f))
	d := train.Dim()
	if n > train.N {
		return nil, fmt.Errorf("%w: %d samples, but only %d training images for the floor", ErrConfig, n, train.N)
	}
	sub := make([]float32, n*d)
	for i, k := range r.Perm(train.N)[:n] {
		copy(sub[i*d:(i+1)*d], train.Image(k))
	}
	_, subFeats, err := clf.Predict(sub, n)
	if err != nil {
		return nil, err
	}
	mf, cf, err := Moments(subFeats, Features)
	if err != nil {
		return nil, err
	}
	if res.FIDFloor, err = Frechet(mf, cf, mt, ct); err != nil {
		return nil, err
	}
	return res, nil
}

// beforeClassifierLock runs between classifier's look at the cache and its
// lock (a test saves another process's classifier there).
var beforeClassifierLock = func() {}

// classifier loads the cached classifier, or trains and caches it. One
// process at a time trains a data folder's classifier: another waits for
// it, then reads its cache (each trained its own for minutes).
func classifier(c Config, test *data.Dataset, trainSplit func() (*data.Dataset, error)) (*Classifier, error) {
	path := filepath.Join(c.DataDir, "classifier-v1.gob")
	cached := func() (*Classifier, error) {
		clf, err := LoadClassifier(path)
		switch {
		case err != nil:
		case clf.Channels != test.Channels || clf.Height != test.Height || clf.Width != test.Width:
			err = fmt.Errorf("%w: %s is for %d×%d×%d images, %s images are %d×%d×%d", ErrCache, path, clf.Channels, clf.Height, clf.Width, c.Dataset, test.Channels, test.Height, test.Width)
		case clf.Dataset != c.Dataset: // MNIST's and Fashion-MNIST's images are of one shape
			return nil, fmt.Errorf("%w: %s is the %s classifier, not %s's: -data-dir %s is another dataset's folder", ErrCache, path, clf.Dataset, c.Dataset, c.DataDir)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (delete it to train a new one)", err)
		}
		return clf, err
	}
	clf, err := cached()
	if !errors.Is(err, os.ErrNotExist) {
		return clf, err
	}
	beforeClassifierLock()
	unlock, err := fsutil.TurnLock(context.Background(), fsutil.LockKey(path), func(holder string) {
		fmt.Fprintf(c.Log, "another process (%s) is training a classifier for %s: waiting for it\n", holder, path)
	})
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Looked at again under the lock, waited or not: a process that saved
	// its classifier just before the lock was taken left it there.
	if clf, err := cached(); !errors.Is(err, os.ErrNotExist) {
		return clf, err // its classifier (or why it cannot be read)
	}
	tr, err := trainSplit()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c.Log, "training the %s classifier (%d epochs; cached in %s)\n", c.Dataset, c.Epochs, path)
	clf, err = TrainClassifier(c.Dataset, tr, test, c.Epochs, 1, c.Log)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c.Log, "classifier test accuracy %.4f\n", clf.Accuracy)
	if err := clf.Save(path); err != nil {
		// The minutes of training are not thrown away for a cache: this
		// run goes on with it, the next trains it again.
		fmt.Fprintf(c.Log, "note: the classifier could not be cached (%v); this run goes on with it, the next will train it again\n", err)
	}
	return clf, nil
}

// drawConfig is the sampler's configuration of c.
func (c Config) drawConfig() generate.Config {
	return generate.Config{N: c.N, Seed: c.Seed, Eps: c.Eps, StepsPerLevel: c.StepsPerLevel, Denoise: !c.NoDenoise, DenoiseSet: c.DenoiseSet, Raw: c.Raw,
		Sampler: c.Sampler, Steps: c.Steps, SNR: c.SNR, Tol: c.Tol, Churn: c.Churn, ChurnMin: c.ChurnMin, ChurnMax: c.ChurnMax, ChurnNoise: c.ChurnNoise, ChurnSet: c.ChurnSet, Log: c.Log,
		Class: c.Class, Guidance: c.Guidance, Classifier: c.Classifier, Autoguide: c.Autoguide, AutoguideWeight: c.AutoguideWeight, Device: c.Device, Opened: c.opened}
}

// checkN refuses a drawing of fewer than 2 samples in all: with -class,
// -n is per class (-class 7 -n 1 drew its one sample, and trained the
// classifier, before the scores refused it).
func (c Config) checkN() error {
	classes := 1
	if c.Class == "all" {
		classes = 2 // at least
	} else if c.Class != "" {
		classes = len(strings.Split(c.Class, ","))
	}
	if c.N < 1 || c.N*classes < 2 {
		return fmt.Errorf("%w: -n %d: need at least 2 samples in all (with -class, -n is per class)", ErrConfig, c.N)
	}
	return nil
}

// checkDraw reports what drawing from the loaded checkpoint would refuse.
func (c Config) checkDraw() error {
	if err := c.checkN(); err != nil {
		return err
	}
	if c.loaded == nil {
		return nil
	}
	return generate.Check(c.loaded, c.drawConfig())
}

// loadSamples reads the samples as (N,C,H,W) values in [0,1].
func loadSamples(c Config, test *data.Dataset) ([]float32, int, error) {
	imgs, n, _, err := drawOrRead(c, test)
	return imgs, n, err
}

// drawOrRead is loadSamples, which also says how samples drawn from a
// checkpoint were drawn (nil for images read from files).
func drawOrRead(c Config, test *data.Dataset) ([]float32, int, *generate.Result, error) {
	if _, err := os.Stat(c.Samples); err != nil {
		return nil, 0, nil, fmt.Errorf("eval: %w", err)
	}
	isCkpt := isCheckpoint(c.Samples)
	if err := c.onlyDrawing("", isCkpt); err != nil {
		return nil, 0, nil, err
	}
	switch {
	case isCkpt:
		if err := c.checkN(); err != nil {
			return nil, 0, nil, err
		}
		st, path := c.loaded, c.loadedPath // loaded by Run already
		if st == nil {
			var err error
			if st, path, err = checkpoint.LoadFrom(c.Samples); err != nil {
				return nil, 0, nil, err
			}
		}
		_, stFolder := data.IsFolder(st.Dataset)
		if _, folder := data.IsFolder(c.Dataset); st.Dataset != c.Dataset && !(stFolder && folder) { // another folder: Folder's note
			return nil, 0, nil, fmt.Errorf("%w: %s was trained on %s, not %s", ErrConfig, path, st.Dataset, c.Dataset)
		}
		what := fmt.Sprintf("%d samples", c.N)
		if c.Class != "" {
			what = fmt.Sprintf("%d samples of each class of -class %s", c.N, c.Class)
		}
		fmt.Fprintf(c.Log, "drawing %s from %s (step %d)\n", what, path, st.Step)
		res, err := generate.Draw(st, c.drawConfig())
		if err != nil {
			return nil, 0, nil, err
		}
		out := make([]float32, len(res.Images))
		for i, v := range res.Images {
			out[i] = float32(v)
		}
		return out, len(res.Images) / st.Model.Dim(), res, nil
	default:
		p, err := readPNGs(c)
		if err != nil {
			return nil, 0, nil, err
		}
		imgs, n, err := p.pixels(test)
		return imgs, n, nil, err
	}
}

// pngSamples are the PNGs of -samples, decoded: a folder of images, one
// each, or one file holding a grid of them.
type pngSamples struct {
	imgs  []image.Image
	names []string
	grid  bool
}

// readPNGs decodes the PNGs of -samples (a folder of them, or a grid).
func readPNGs(c Config) (*pngSamples, error) {
	fi, err := os.Stat(c.Samples)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: -samples %s is %v (neither a checkpoint nor a PNG)", ErrConfig, c.Samples, fsutil.ErrNotRegular)
		}
		if fi.Size() == 0 {
			return nil, fmt.Errorf("%w: -samples %s is an empty file (neither a checkpoint nor a PNG)", ErrConfig, c.Samples)
		}
		img, err := decodePNG(c.Samples)
		if err != nil {
			return nil, err
		}
		return &pngSamples{imgs: []image.Image{img}, names: []string{c.Samples}, grid: true}, nil
	}
	files, err := fsutil.Glob(c.Samples, "*.[pP][nN][gG]") // S0.PNG too, as a folder dataset reads it
	if err != nil {
		return nil, fmt.Errorf("eval: -samples %s: %w", c.Samples, err)
	}
	sort.Strings(files)
	if len(files) < 2 {
		run := ""
		if _, err := os.Stat(filepath.Join(c.Samples, checkpoint.LogName)); err == nil {
			// A run's folder before its first save: no checkpoint yet.
			run = fmt.Sprintf(" (it holds a %s but no checkpoint yet: its run has not saved one)", checkpoint.LogName)
		}
		return nil, fmt.Errorf("%w: %s holds %s; need at least 2%s", ErrConfig, c.Samples, english.Count(len(files), "PNG"), run)
	}
	p := &pngSamples{names: files}
	var pixels int
	for i, f := range files {
		img, err := decodePNG(f)
		if err != nil {
			return nil, err
		}
		// Samples are small images of one size; a folder of anything else
		// is refused before it fills the memory.
		if b, b0 := img.Bounds(), p.first(img); b.Dx() != b0.Dx() || b.Dy() != b0.Dy() {
			return nil, fmt.Errorf("%w: %s is %d×%d and %s %d×%d: samples are images of one size", ErrConfig, f, b.Dx(), b.Dy(), files[0], b0.Dx(), b0.Dy())
		}
		if pixels += img.Bounds().Dx() * img.Bounds().Dy(); pixels > maxPNGPixels {
			return nil, fmt.Errorf("%w: -samples %s: its first %d PNGs hold more than %d pixels in all; samples are small images of the dataset's size", ErrConfig, c.Samples, i+1, maxPNGPixels)
		}
		p.imgs = append(p.imgs, img)
	}
	return p, nil
}

// first is the bounds of the first image (img, where there is none yet).
func (p *pngSamples) first(img image.Image) image.Rectangle {
	if len(p.imgs) > 0 {
		return p.imgs[0].Bounds()
	}
	return img.Bounds()
}

// pixels are the images' values, (N,C,H,W) in [0,1], checked against the
// test set's shape.
func (p *pngSamples) pixels(test *data.Dataset) ([]float32, int, error) {
	if test.Channels == 1 {
		// One channel is read from R alone: a colour image's G and B
		// would be passed over.
		if i, x, y, ok := p.colour(); ok {
			return nil, 0, fmt.Errorf("%w: %s is in colour (R, G and B differ at (%d, %d)), and the %s images are grey: samples of a grey model have R = G = B", ErrConfig, p.names[i], x, y, test.Name)
		}
	}
	var out []float32
	n := len(p.imgs)
	if p.grid {
		var err error
		if out, n, err = gridTiles(p.imgs[0], p.names[0], test); err != nil {
			return nil, 0, err
		}
	} else {
		for i, img := range p.imgs {
			px, err := imagePixels(img, p.names[i], test)
			if err != nil {
				return nil, 0, err
			}
			out = append(out, px...)
		}
	}
	if test.Channels == 3 && p.grey() {
		// Read as colour, a grey model's samples were scored against
		// the colour images without a word.
		where := p.names[0]
		if !p.grid {
			where = filepath.Dir(where)
		}
		return nil, 0, fmt.Errorf("%w: the samples in %s are grey (R = G = B at every pixel), and the %s images are in colour: samples of a colour model differ in R, G and B", ErrConfig, where, test.Name)
	}
	return out, n, nil
}

// colour finds a pixel whose R, G and B differ: the image's index and the
// pixel, and whether there is one.
func (p *pngSamples) colour() (int, int, int, bool) {
	for i, img := range p.imgs {
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bl, _ := img.At(x, y).RGBA()
				if r != g || g != bl {
					return i, x, y, true
				}
			}
		}
	}
	return 0, 0, 0, false
}

// grey reports whether every sample has R = G = B at every pixel, and
// some pixel is neither black nor white (a colour model's collapsed,
// black samples are not grey ones).
func (p *pngSamples) grey() bool {
	if _, _, _, ok := p.colour(); ok {
		return false
	}
	for _, img := range p.imgs {
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if r, _, _, _ := img.At(x, y).RGBA(); r != 0 && r != 0xffff {
					return true
				}
			}
		}
	}
	return false
}

func readHead(path string, n int) ([]byte, error) {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = io.ReadFull(f, b)
	return b, err
}

// Bounds on a sample PNG's declared size, checked before it is decoded so
// that a small file cannot declare a huge image (a decompression bomb).
const (
	maxPNGSide   = 16384
	maxPNGPixels = 1 << 26
)

// decodePNG decodes the PNG file at path.
func decodePNG(path string) (image.Image, error) {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	defer f.Close()
	return decodeSamplePNG(bufio.NewReader(f), path)
}

// decodeSamplePNG decodes a PNG read from r, refusing one whose declared
// size is beyond maxPNGSide or maxPNGPixels; name is put in the errors.
func decodeSamplePNG(r io.Reader, name string) (image.Image, error) {
	var head bytes.Buffer
	cfg, err := png.DecodeConfig(io.TeeReader(r, &head))
	if err != nil {
		return nil, fmt.Errorf("eval: %s: %w", name, err)
	}
	if w, h := cfg.Width, cfg.Height; w < 1 || h < 1 || w > maxPNGSide || h > maxPNGSide || w*h > maxPNGPixels {
		return nil, fmt.Errorf("eval: %s: %d×%d image refused (at most %d pixels a side and %d in all)", name, w, h, maxPNGSide, maxPNGPixels)
	}
	img, err := png.Decode(io.MultiReader(&head, r))
	if err != nil {
		return nil, fmt.Errorf("eval: %s: %w", name, err)
	}
	return img, nil
}

// checkSampleShape reports whether samples of the test set's shape can be
// read from images.
func checkSampleShape(test *data.Dataset) error {
	if test.Channels != 1 && test.Channels != 3 {
		return fmt.Errorf("eval: %d-channel images cannot be read from PNGs (1 or 3)", test.Channels)
	}
	if test.Width < 1 || test.Height < 1 {
		return fmt.Errorf("eval: %d×%d images cannot be read from PNGs", test.Width, test.Height)
	}
	return nil
}

// pixels reads a rectangle as c (1 or 3) planes of values in [0,1].
func pixels(img image.Image, r image.Rectangle, c int) []float32 {
	w, h := r.Dx(), r.Dy()
	out := make([]float32, c*w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			R, Gc, B, _ := img.At(r.Min.X+x, r.Min.Y+y).RGBA()
			out[y*w+x] = float32(R>>8) / 255
			if c == 3 {
				out[w*h+y*w+x] = float32(Gc>>8) / 255
				out[2*w*h+y*w+x] = float32(B>>8) / 255
			}
			// With one channel: the grey value as written by sample.Grid
			// (R = G = B).
		}
	}
	return out
}

// imagePixels reads one sample image, which must have the test set's size.
func imagePixels(img image.Image, path string, test *data.Dataset) ([]float32, error) {
	if err := checkSampleShape(test); err != nil {
		return nil, err
	}
	if img.Bounds().Dx() != test.Width || img.Bounds().Dy() != test.Height {
		hint := ""
		if _, folder := data.IsFolder(test.Name); folder {
			hint = " (give -size for a folder model's samples)"
		}
		return nil, fmt.Errorf("%w: %s is %d×%d, the test images are %d×%d%s", ErrConfig, path, img.Bounds().Dx(), img.Bounds().Dy(), test.Width, test.Height, hint)
	}
	return pixels(img, img.Bounds(), test.Channels), nil
}

// gridTiles cuts a grid written by cmd/sample (2-pixel borders) into its
// images; the all-black tiles that end the last row (its unused end) are
// dropped, not a black sample before a sample (every blank tile of the
// last row was dropped: a collapsed model's black samples went uncounted
// there). A black sample last in the grid is taken for an unused tile.
func gridTiles(img image.Image, path string, test *data.Dataset) ([]float32, int, error) {
	if err := checkSampleShape(test); err != nil {
		return nil, 0, err
	}
	const pad = 2
	b := img.Bounds()
	tw, th := test.Width+pad, test.Height+pad
	if b.Dx() == test.Width && b.Dy() == test.Height {
		return nil, 0, fmt.Errorf("%w: %s is one %d×%d image; -samples takes a grid of them (cmd/sample -out), a folder of them (cmd/sample -out-dir) or a checkpoint", ErrConfig, path, test.Width, test.Height)
	}
	if b.Dx() < pad+tw || b.Dy() < pad+th || (b.Dx()-pad)%tw != 0 || (b.Dy()-pad)%th != 0 {
		return nil, 0, fmt.Errorf("%w: %s is %d×%d, not a grid of %d×%d tiles with %d-pixel borders", ErrConfig, path, b.Dx(), b.Dy(), test.Width, test.Height, pad)
	}
	cols, rows := (b.Dx()-pad)/tw, (b.Dy()-pad)/th
	// cmd/sample's borders are black: a picture of other tiles whose size
	// happens to fit (cmd/plot's progress strip, with white gaps) would be
	// cut across them.
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if (x-b.Min.X)%tw >= pad && (y-b.Min.Y)%th >= pad {
				continue // inside a tile
			}
			if r, g, bl, _ := img.At(x, y).RGBA(); r|g|bl != 0 {
				return nil, 0, fmt.Errorf("%w: %s is not a grid of cmd/sample's: its border at (%d, %d) is not black", ErrConfig, path, x-b.Min.X, y-b.Min.Y)
			}
		}
	}
	out := make([]float32, 0, cols*rows*test.Dim())
	n, used := 0, 0 // tiles, and tiles up to the last that is not blank
	for ty := 0; ty < rows; ty++ {
		for tx := 0; tx < cols; tx++ {
			r := image.Rect(b.Min.X+pad+tx*tw, b.Min.Y+pad+ty*th, b.Min.X+pad+tx*tw+test.Width, b.Min.Y+pad+ty*th+test.Height)
			p := pixels(img, r, test.Channels)
			out = append(out, p...)
			n++
			if ty < rows-1 || slices.ContainsFunc(p, func(v float32) bool { return v != 0 }) {
				used = n
			}
		}
	}
	n, out = used, out[:used*test.Dim()]
	if n < 2 {
		return nil, 0, fmt.Errorf("%w: %s holds %d images; need at least 2", ErrConfig, path, n)
	}
	return out, n, nil
}

// WriteTable prints the result for people.
func (r *Result) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "%-34s %s\n", "samples", r.Source)
	fmt.Fprintf(w, "%-34s %d\n", "n", r.N)
	fmt.Fprintf(w, "%-34s %.2f   (floor: %d real training images vs test: %.2f)\n", "Fréchet distance (classifier)", r.FID, r.N, r.FIDFloor)
	if r.N <= Features {
		// Below the features' count the sample covariance is singular: the
		// distance is mostly small-sample bias (16 noise samples scored
		// below their own floor).
		fmt.Fprintf(w, "%-34s n = %d is not above the %d features: compare Fréchet distances only at n ≥ 256, against their floor\n", "", r.N, Features)
	}
	fmt.Fprintf(w, "%-34s %.3f\n", "mean top-class confidence", r.MeanConf)
	fmt.Fprintf(w, "%-34s %.1f%%\n", "confidence ≥ 0.9", 100*r.ConfGE09)
	fmt.Fprintf(w, "%-34s %.3f bits (uniform: 3.322)\n", "class entropy", r.ClassEntropy)
	var hs []string
	for k, h := range r.Histogram {
		hs = append(hs, fmt.Sprintf("%d:%d", k, h))
	}
	fmt.Fprintf(w, "%-34s %s\n", "class histogram", strings.Join(hs, " "))
	fmt.Fprintf(w, "%-34s %.2f%% on the %s test set\n", "classifier accuracy", 100*r.ClassifierAccuracy, r.Dataset)
	if r.Sampler != "" {
		secs := 0.0
		if r.SampleSeconds != nil {
			secs = *r.SampleSeconds
		}
		fmt.Fprintf(w, "%-34s %s, %d network evaluations, %.1f s\n", "drawn by", r.Sampler, r.Evals, secs)
		if r.Autoguide != "" {
			fmt.Fprintf(w, "%-34s w = %g, away from %s\n", "autoguidance", r.AutoguideWeight, r.Autoguide)
		}
	}
	if r.PerClass != nil {
		share := 0.0
		if r.RightClass != nil {
			share = *r.RightClass
		} else { // a result decoded from a line that left out a 0
			right, n := 0, 0
			for _, k := range r.PerClass {
				right, n = right+k.Right, n+k.N
			}
			share = float64(right) / float64(max(n, 1))
		}
		fmt.Fprintf(w, "%-34s %.1f%% (guidance w = %g)\n", "assigned the class asked for", 100*share, r.Guidance)
		for _, k := range r.PerClass {
			fmt.Fprintf(w, "  class %d: %d/%d right, %d of them with confidence ≥ 0.9\n", k.Class, k.Right, k.N, k.RightConf)
		}
	}
}

// rightClass counts, per class asked for, the samples the classifier
// assigns to it.
func (r *Result) rightClass(clf *Classifier, imgs []float32, labels []int) error {
	probs, _, err := clf.Predict(imgs, len(labels))
	if err != nil {
		return err
	}
	at := map[int]int{}
	right := 0
	for i, y := range labels {
		j, ok := at[y]
		if !ok {
			j = len(r.PerClass)
			at[y] = j
			r.PerClass = append(r.PerClass, ClassRight{Class: y})
		}
		p := probs[i*10 : (i+1)*10]
		r.PerClass[j].N++
		if argmax(p) == y {
			right++
			r.PerClass[j].Right++
			if p[y] >= 0.9 {
				r.PerClass[j].RightConf++
			}
		}
	}
	share := float64(right) / float64(len(labels))
	r.RightClass = &share
	return nil
}

// JSON is the one-line form.
func (r *Result) JSON() string {
	b, _ := json.Marshal(r)
	return string(b)
}
