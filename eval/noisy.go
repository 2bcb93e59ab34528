package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/generate"
	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sde"
)

// HoldsClassifier reports whether path is a checkpoint file or folder of a
// noise-conditional classifier (cmd/train -classifier).
func HoldsClassifier(path string) bool {
	p, err := checkpoint.Resolve(path)
	if err != nil {
		return false
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		return false
	}
	st, err := checkpoint.Load(p)
	return err == nil && st.Model.IsClassifier()
}

// CheckpointDataset is the dataset of the checkpoint that path names (a
// file, or a run's folder), and false where path names none.
func CheckpointDataset(path string) (string, bool) {
	ds, err := checkpoint.DatasetOf(path)
	return ds, err == nil && ds != ""
}

// NoisyLevel is a noise-conditional classifier's accuracy on noised test
// images at one noise level.
type NoisyLevel struct {
	T        float64 `json:"t,omitempty"` // continuous processes: the time
	Sigma    float64 `json:"sigma"`
	Mean     float64 `json:"mean"` // the marginal's m: x̃ = m·x + σz
	Accuracy float64 `json:"accuracy"`
}

// NoisyResult is the accuracy of a noise-conditional classifier per noise
// level.
type NoisyResult struct {
	Checkpoint string       `json:"checkpoint"`
	Step       int          `json:"step"`
	Dataset    string       `json:"dataset"`
	Process    string       `json:"process"`
	N          int          `json:"n"`
	Levels     []NoisyLevel `json:"levels"`
}

// NoisyAccuracy measures the classifier checkpoint c.Samples on the first
// c.N images of the test split, each noised (seed c.Seed) at every level of
// its NCSN ladder (ten of them, evenly spread from the first to the last,
// when it has more) or, for a
// continuous process, at t = ε, 0.1, …, 1. With c.Device the classifier runs
// on the device (a GPU).
func NoisyAccuracy(c Config) (*NoisyResult, error) {
	if c.Log == nil {
		c.Log = io.Discard
	}
	// -device is the classifier's.
	if err := c.onlyDrawing("a classifier's evaluation", false, "-device"); err != nil {
		return nil, err
	}
	st, path, err := checkpoint.LoadFrom(c.Samples)
	if err != nil {
		return nil, err
	}
	if !st.Model.IsClassifier() {
		return nil, fmt.Errorf("%w: %s is a score model, not a noise-conditional classifier", ErrConfig, path)
	}
	if st.Dataset != c.Dataset {
		return nil, fmt.Errorf("%w: %s was trained on %s, not %s", ErrConfig, path, st.Dataset, c.Dataset)
	}
	if c.N < 1 {
		return nil, fmt.Errorf("%w: -n %d must be positive", ErrConfig, c.N)
	}
	// A missing GPU is found before the test set is read.
	dev, err := generate.OpenDevice(c.Device, c.Log)
	if err != nil {
		return nil, err
	}
	if dev != nil {
		defer dev.Close()
	}
	dir := c.DataDir
	if dir == "" {
		dir = "data/" + c.Dataset
	}
	test, err := data.Load(c.Dataset, data.Options{Dir: dir, Log: c.Log}, "test")
	if err != nil {
		return nil, err
	}
	levels, err := noisyLevels(st.Process)
	if err != nil {
		return nil, err
	}
	n := min(c.N, test.N)
	if n < c.N {
		fmt.Fprintf(c.Log, "note: -n %d: the test set holds %d images; all of them are used\n", c.N, n)
	}
	if err := noisyAccuracy(st, dev, test, n, c.Seed, levels, c.Log); err != nil {
		return nil, err
	}
	return &NoisyResult{Checkpoint: path, Step: st.Step, Dataset: st.Dataset, Process: st.Process.Name, N: n, Levels: levels}, nil
}

// noisyLevels are the levels of an NCSN ladder (ten of them, evenly spread
// from the first to the last, when it has more) or, for a continuous
// process, t = ε, 0.1, …, 1.
func noisyLevels(spec sde.Spec) ([]NoisyLevel, error) {
	proc, err := sde.New(spec)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	var levels []NoisyLevel
	if sig := spec.Sigmas; len(sig) > 0 {
		// Ten indices evenly from the first to the last (a stride of
		// ⌈L/10⌉ gave seven of a 12-level ladder).
		n := min(10, len(sig))
		for k := 0; k < n; k++ {
			i := 0
			if n > 1 {
				i = int(math.Round(float64(k) * float64(len(sig)-1) / float64(n-1)))
			}
			levels = append(levels, NoisyLevel{Sigma: sig[i], Mean: 1})
		}
		return levels, nil
	}
	for k := 0; k <= 10; k++ {
		t := max(proc.Eps(), float64(k)/10)
		m, s := proc.Marginal(t)
		levels = append(levels, NoisyLevel{T: t, Sigma: s, Mean: m})
	}
	return levels, nil
}

// noisyAccuracy fills in each level's accuracy of the classifier st on the
// first n images of test, noised as m·x + σz from the seed; the classifier
// runs on dev (nil: the CPU).
func noisyAccuracy(st *checkpoint.State, dev *cuda.Device, test *data.Dataset, n int, seed uint64, levels []NoisyLevel, log io.Writer) error {
	var cg interface {
		Probs(x []float64, sigma float64) ([]float64, error)
		Close() error
	}
	var err error
	if dev != nil {
		cg, err = model.NewDeviceClassGradient(dev, st.Model, st.EMA, min(n, 128))
	} else {
		cg, err = model.NewClassGradient(st.Model, st.EMA, min(n, 128))
	}
	if err != nil {
		return err
	}
	defer cg.Close()
	d := test.Dim()
	r := rand.New(rand.NewPCG(seed, 0x6e6f6973))
	x := make([]float64, n*d)
	k := st.Model.Classes
	for li := range levels {
		lv := &levels[li]
		for i := range x {
			x[i] = lv.Mean*float64(test.Images[i]) + lv.Sigma*r.NormFloat64()
		}
		probs, err := cg.Probs(x, lv.Sigma)
		if err != nil {
			return err
		}
		right := 0
		for i := 0; i < n; i++ {
			if argmax(probs[i*k:(i+1)*k]) == int(test.Labels[i]) {
				right++
			}
		}
		lv.Accuracy = float64(right) / float64(n)
		fmt.Fprintf(log, "σ = %.4g: %.2f%%\n", lv.Sigma, 100*lv.Accuracy)
	}
	return nil
}

// JSON is the one-line form.
func (r *NoisyResult) JSON() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// WriteTable writes the accuracy per noise level.
func (r *NoisyResult) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "noise-conditional classifier %s (step %d, %s, %s process), %d test images per level\n", r.Checkpoint, r.Step, r.Dataset, r.Process, r.N)
	if r.Process == "ncsn" {
		fmt.Fprintf(w, "%10s %9s\n", "σ", "accuracy")
	} else {
		fmt.Fprintf(w, "%7s %10s %8s %9s\n", "t", "σ(t)", "m(t)", "accuracy")
	}
	for _, l := range r.Levels {
		if r.Process == "ncsn" {
			fmt.Fprintf(w, "%10.4g %8.2f%%\n", l.Sigma, 100*l.Accuracy)
		} else {
			fmt.Fprintf(w, "%7.3g %10.4g %8.4f %8.2f%%\n", l.T, l.Sigma, l.Mean, 100*l.Accuracy)
		}
	}
}
