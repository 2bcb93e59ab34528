package generate

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sample"
	"github.com/ncsn-go/ncsn/sde"
)

// DefaultGuidance is the commands' guidance weight w: the smallest of the
// weights measured on MNIST (README, "Class-conditional samples") with 95%
// of the samples of the class asked for; w = 1 (Bayes' rule) gave 81%.
const DefaultGuidance = 8

// DefaultAutoguidance is the autoguidance weight w when -autoguide is given
// without -autoguide-weight.
const DefaultAutoguidance = 2

// DefaultClassifier is where Config.Classifier looks when it is empty: the
// folder cmd/train -classifier writes to by default.
const DefaultClassifier = "checkpoints/classifier"

// parseClasses reads -class: one class, a comma-separated list, or "all".
func parseClasses(s string, classes int) ([]int, error) {
	if s == "all" {
		out := make([]int, classes)
		for i := range out {
			out[i] = i
		}
		return out, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%w: -class %q: %q is not a class number (give N, N,M,… or all)", ErrConfig, s, f)
		}
		switch {
		case k < 0:
			return nil, fmt.Errorf("%w: -class %d: classes are numbered from 0", ErrConfig, k)
		case k >= classes && classes == math.MaxInt32: // the syntax check, before the classifier is known
			return nil, fmt.Errorf("%w: -class %d is no class number", ErrConfig, k)
		case k >= classes:
			return nil, fmt.Errorf("%w: -class %d out of range: the classifier knows %d classes (0 to %d)", ErrConfig, k, classes, classes-1)
		}
		out = append(out, k)
	}
	return out, nil
}

// guide loads the classifier of a class-conditional run, checks that it fits
// the score model st, and returns the guided score over sc with one label
// per sample (c.N of each requested class, in order), or sc itself when no
// class is asked for. The classifier runs where the score model does (dev;
// nil: the CPU).
func guide(st *checkpoint.State, c Config, dev *cuda.Device, sc sample.Score, batch int) (sample.Score, []int, func(), error) {
	if c.Class == "" {
		return sc, nil, func() {}, nil
	}
	cst, path, classes, err := classifierFor(st, c)
	if err != nil {
		return nil, nil, nil, err
	}
	cm := cst.Model
	labels := make([]int, 0, c.N*len(classes))
	for _, k := range classes {
		for i := 0; i < c.N; i++ {
			labels = append(labels, k)
		}
	}
	var cg interface {
		Gradient(x []float64, labels []int, sigma float64, dst, logp []float64) error
		Close() error
	}
	if dev != nil {
		cg, err = model.NewDeviceClassGradient(dev, cm, cst.EMA, batch)
	} else {
		cg, err = model.NewClassGradient(cm, cst.EMA, batch)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	on := "on the CPU"
	if dev != nil {
		on = "on the device"
	}
	fmt.Fprintf(c.logw(), "classifier guidance: w = %g, classes %v, %d samples each; classifier %s (step %d) %s\n", c.Guidance, classes, c.N, path, cst.Step, on)
	g := sample.ScoreFunc(func(x []float64, sigma float64, dst []float64) error {
		return cg.Gradient(x, labels, sigma, dst, nil)
	})
	return &sample.Guided{Base: sc, Guide: g, Weight: c.Guidance}, labels, func() { cg.Close() }, nil
}

// classifierFor loads the noise-conditional classifier of -classifier,
// checks that it fits the model st, and returns it with its path and the
// classes of -class.
func classifierFor(st *checkpoint.State, c Config) (*checkpoint.State, string, []int, error) {
	if _, folder := data.IsFolder(st.Dataset); folder {
		// Its hint named a -classifier run that cmd/train then refused.
		return nil, "", nil, fmt.Errorf("%w: -class needs a classifier of the model's labelled classes, and this model's folder dataset has no labels", ErrConfig)
	}
	where := c.Classifier
	if where == "" {
		where = DefaultClassifier
	}
	path, err := checkpoint.Resolve(where)
	if err != nil {
		return nil, "", nil, fmt.Errorf("generate: -class needs a noise-conditional classifier (train one: %s): %w", classifierCommand(st, where), err)
	}
	cst, err := checkpoint.Load(path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("generate: -classifier: %w", err)
	}
	m, cm := st.Model, cst.Model
	switch {
	case !cm.IsClassifier():
		return nil, "", nil, fmt.Errorf("%w: -classifier %s is a score model, not a classifier (train one: %s)", ErrConfig, path, classifierCommand(st, otherClassifierDir(st)))
	case cst.Dataset != st.Dataset:
		return nil, "", nil, fmt.Errorf("%w: -classifier %s was trained on %s, the model on %s", ErrConfig, path, cst.Dataset, st.Dataset)
	case cm.Channels != m.Channels || cm.Height != m.Height || cm.Width != m.Width:
		return nil, "", nil, fmt.Errorf("%w: -classifier %s takes %d×%d×%d images, the model draws %d×%d×%d", ErrConfig, path, cm.Channels, cm.Height, cm.Width, m.Channels, m.Height, m.Width)
	}
	if err := sde.Compatible(cst.Process, st.Process); err != nil {
		return nil, "", nil, fmt.Errorf("%w: -classifier %s does not fit the model's noise: %v (train one for it: %s)", ErrConfig, path, err, classifierCommand(st, otherClassifierDir(st)))
	}
	classes, err := parseClasses(c.Class, cm.Classes)
	if err != nil {
		return nil, "", nil, err
	}
	return cst, path, classes, nil
}

// otherClassifierDir is a folder for a new classifier of the model st,
// beside the default one (which holds another classifier).
func otherClassifierDir(st *checkpoint.State) string {
	return DefaultClassifier + "-" + cmp.Or(st.Process.Name, "model")
}

// classifierCommand is the cmd/train command of a classifier for the model
// st, in dir: its dataset, its process and the σ range the classifier must
// cover (a VP model's hint trained a classifier on the default VE process,
// which -class then refused), and, outside the default folder, the
// -classifier to give then (the command resumed the unfit classifier there,
// and was refused).
func classifierCommand(st *checkpoint.State, dir string) string {
	cmd := "go run ./cmd/train -dataset " + st.Dataset + " -classifier"
	switch p := st.Process; p.Name {
	case "ve":
		cmd += fmt.Sprintf(" -sde ve -sigma-max %v", p.SigmaMax) // exact: it must cover the model's
	case "ncsn":
		if len(p.Sigmas) > 0 {
			cmd += fmt.Sprintf(" -sde ncsn -sigma-max %v", p.Sigmas[0])
		}
	case "":
	default:
		cmd += " -sde " + p.Name
	}
	if dir != DefaultClassifier {
		cmd += " -ckpt-dir " + dir + ", then -classifier " + dir
	}
	return cmd
}

// Autoguide's two names that are not files: the checkpoint's own guide
// (checkpoint.State.Guide, the EMA of an earlier step of its run), and no
// autoguidance even where the checkpoint recommends it.
const (
	AutoguideSelf = "self"
	AutoguideNone = "none"
)

// autoguide loads the weaker score model of -autoguide (a checkpoint, or
// the model's own guide for AutoguideSelf), checks that it fits the model
// st, and returns the autoguided score over main with the network
// evaluations per score (2; 1 at w = 1, where the guide is never
// evaluated) and the guide's closer, or main itself and 1 without
// -autoguide. The guide runs where main runs, on its EMA weights.
func autoguide(st *checkpoint.State, c Config, dev *cuda.Device, main scorer, batch int) (sample.Score, int, func(), error) {
	if c.Autoguide == "" {
		return main, 1, func() {}, nil
	}
	gm, weights, name, err := guideFor(st, c)
	if err != nil {
		return nil, 0, nil, err
	}
	g, err := newScorer(dev, gm, weights, batch)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("generate: -autoguide %s: %w", c.Autoguide, err)
	}
	w := c.AutoguideWeight
	if w == 0 {
		w = DefaultAutoguidance
	}
	fmt.Fprintf(c.logw(), "autoguidance: w = %g, guided away from %s\n", w, name)
	per := 2
	if w == 1 { // the main model alone: the guide is never evaluated
		per = 1
	}
	return &sample.Autoguided{Main: main, Guide: g, Weight: w}, per, func() { g.Close() }, nil
}

// guideFor loads the weaker score model of -autoguide (the checkpoint's own
// guide for AutoguideSelf), checks that it fits the model st, and returns
// its network, weights and a name for the log.
func guideFor(st *checkpoint.State, c Config) (model.Config, model.Params, string, error) {
	switch c.Autoguide {
	case AutoguideSelf:
		if st.Guide == nil {
			var tc struct {
				GuideAt float64 `json:"guide_at"`
				Steps   int     `json:"steps"`
			}
			if json.Unmarshal(st.Train, &tc) == nil && tc.GuideAt > 0 {
				if k := checkpoint.GuideStep(tc.GuideAt, tc.Steps); k > 0 && st.Step < k {
					// A run with a guide, saved before its guide step.
					return model.Config{}, nil, "", fmt.Errorf("%w: -autoguide self: this checkpoint of step %d was saved before the run kept its guide (at step %d, %.4g of its %d steps): give a later checkpoint, or -autoguide none", ErrConfig, st.Step, k, tc.GuideAt, tc.Steps)
				}
				// Past it, or no step of the run is one: there is no
				// later checkpoint to give (it said to give one).
				return model.Config{}, nil, "", fmt.Errorf("%w: -autoguide self: the run kept no guide (-guide-at %.4g of its %d steps came at no step it kept one at: resumed with a smaller -steps, or a fraction that rounds to no step); give a weaker checkpoint, or -autoguide none", ErrConfig, tc.GuideAt, tc.Steps)
			}
			return model.Config{}, nil, "", fmt.Errorf("%w: -autoguide self: the checkpoint keeps no guide of its own (train with -guide-at, or give a weaker checkpoint)", ErrConfig)
		}
		return st.Model, st.Guide, fmt.Sprintf("the checkpoint's own EMA of step %d", st.GuideStep), nil
	}
	gst, path, err := checkpoint.LoadFrom(c.Autoguide)
	if err != nil {
		hint := ""
		if errors.Is(err, os.ErrNotExist) {
			hint = fmt.Sprintf(" (-autoguide takes a checkpoint, %s or %s)", AutoguideSelf, AutoguideNone)
		}
		return model.Config{}, nil, "", fmt.Errorf("generate: -autoguide: %w%s", err, hint)
	}
	m, gm := st.Model, gst.Model
	switch {
	case gm.IsClassifier():
		return model.Config{}, nil, "", fmt.Errorf("%w: -autoguide %s is a classifier; it needs a score model of the same data (an earlier checkpoint, or a smaller network)", ErrConfig, path)
	case gst.Dataset != st.Dataset:
		return model.Config{}, nil, "", fmt.Errorf("%w: -autoguide %s was trained on %s, the model on %s", ErrConfig, path, gst.Dataset, st.Dataset)
	case gm.Channels != m.Channels || gm.Height != m.Height || gm.Width != m.Width:
		return model.Config{}, nil, "", fmt.Errorf("%w: -autoguide %s draws %d×%d×%d images, the model %d×%d×%d", ErrConfig, path, gm.Channels, gm.Height, gm.Width, m.Channels, m.Height, m.Width)
	}
	if err := sde.Compatible(gst.Process, st.Process); err != nil {
		return model.Config{}, nil, "", fmt.Errorf("%w: -autoguide %s does not fit the model's noise: %v", ErrConfig, path, err)
	}
	mine := st.EMA // the weights the model samples with
	if c.Raw {
		mine = st.Weights
	}
	if sameWeights(gm, gst.EMA, m, mine) {
		// The model itself (its own checkpoint, or a copy): the same
		// samples as unguided, at twice the cost, without a word.
		return model.Config{}, nil, "", fmt.Errorf("%w: -autoguide %s holds the model's own weights: guided away from itself nothing changes; give an earlier checkpoint or a smaller network, %s, or %s", ErrConfig, path, AutoguideSelf, AutoguideNone)
	}
	return gm, gst.EMA, fmt.Sprintf("%s (step %d)", path, gst.Step), nil
}

// sameWeights reports whether two networks are one: the same configuration
// and the same values.
func sameWeights(a model.Config, pa model.Params, b model.Config, pb model.Params) bool {
	if !reflect.DeepEqual(a, b) || len(pa) != len(pb) {
		return false
	}
	for i := range pa {
		if !slices.Equal(pa[i].Data, pb[i].Data) {
			return false
		}
	}
	return true
}
