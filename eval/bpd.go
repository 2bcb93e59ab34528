package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/generate"
	"github.com/ncsn-go/ncsn/internal/english"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sample"
	"github.com/ncsn-go/ncsn/sde"
)

// BPDResult is the likelihood of test images under a continuous-time model.
type BPDResult struct {
	N       int     `json:"n"`
	BPD     float64 `json:"bpd"`    // mean bits per dimension
	BPDSE   float64 `json:"bpd_se"` // its standard error over the images (0 for one image: none)
	Evals   int     `json:"evals"`  // network evaluations (each a score and a VJP over all n images)
	Seconds float64 `json:"seconds"`
	Dataset string  `json:"dataset"`
	Source  string  `json:"source"`
	Process string  `json:"process"`
}

// BitsPerDim measures bits per dimension of c.N test images (a seeded random
// subset) under the checkpoint c.Samples names: each image, uniformly
// dequantised to (k + u)/256, is carried from t = ε to 1 by the
// probability-flow ODE (RK45 at c.Tol), the log-density change integrated
// with Hutchinson's estimator (one Rademacher probe per image), and scored by
// the prior: bpd = −log p(x)/(D ln 2) + 8. With c.Device the network and
// its vector–Jacobian products run on the device (a GPU), the ODE's
// arithmetic on the CPU.
func BitsPerDim(c Config) (*BPDResult, error) {
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.N < 1 {
		return nil, fmt.Errorf("%w: -n %d must be positive", ErrConfig, c.N)
	}
	if _, ok := data.IsFolder(c.Dataset); ok {
		return nil, fmt.Errorf("%w: -bpd scores a dataset's test images, and -dataset %s has none (mnist, fashion or cifar10)", ErrConfig, c.Dataset)
	}
	if c.Tol != 0 && !(c.Tol >= sample.MinTol && c.Tol < 1) {
		return nil, fmt.Errorf("%w: -tol %g must be from %g to below 1, the solver's relative error (0: the default; float64's rounding cannot meet less)", ErrConfig, c.Tol, sample.MinTol)
	}
	// -tol is the ODE's, -device the network's (the ODE's arithmetic runs
	// on the CPU).
	if err := c.onlyDrawing("-bpd", false, "-tol", "-device"); err != nil {
		return nil, err
	}
	if c.DataDir == "" {
		c.DataDir = filepath.Join("data", c.Dataset)
	}
	path, err := checkpoint.Resolve(c.Samples)
	if err != nil {
		return nil, fmt.Errorf("eval: -bpd needs a checkpoint as -samples: %w", err)
	}
	if fsutil.HasMagic(path, fsutil.PNGMagic) {
		return nil, fmt.Errorf("%w: -bpd needs a checkpoint of a continuous-time model as -samples, and %s is a PNG", ErrConfig, c.Samples)
	}
	st, err := checkpoint.Load(path)
	if err != nil {
		return nil, fmt.Errorf("eval: -bpd needs a checkpoint as -samples: %w", err)
	}
	if st.Dataset != c.Dataset {
		return nil, fmt.Errorf("%w: %s was trained on %s, not %s", ErrConfig, path, st.Dataset, c.Dataset)
	}
	proc, err := sde.New(st.Process)
	if err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	if proc.Name() == "ncsn" {
		return nil, fmt.Errorf("%w: -bpd needs a model trained in continuous time (cmd/train -sde ve, vp or subvp); %s knows only its %d noise levels", ErrConfig, path, len(st.Sigmas))
	}
	// A missing GPU is found before the test set is read.
	dev, err := generate.OpenDevice(c.Device, c.Log)
	if err != nil {
		return nil, err
	}
	if dev != nil {
		defer dev.Close()
	}
	test, err := data.Load(c.Dataset, data.Options{Dir: c.DataDir, Log: c.Log}, "test")
	if err != nil {
		return nil, err
	}
	n := min(c.N, test.N)
	if n < c.N {
		fmt.Fprintf(c.Log, "note: -n %d: the test set holds %d images; all of them are used\n", c.N, n)
	}
	d := test.Dim()
	r := rand.New(rand.NewPCG(c.Seed, 0x627064))
	x := make([]float64, n*d)
	for i, k := range r.Perm(test.N)[:n] {
		for j, p := range test.Image(k) {
			x[i*d+j] = dequantise(p, r.Float64())
		}
	}
	var sc interface {
		sample.ScoreVJP
		Close() error
	}
	if dev != nil {
		sc, err = model.NewDeviceVJPScorer(dev, st.Model, st.EMA, min(n, 128))
	} else {
		sc, err = model.NewVJPScorer(st.Model, st.EMA, min(n, 128))
	}
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	fmt.Fprintf(c.Log, "log-likelihood of %s under %s (step %d, %s SDE)\n", english.Count(n, c.Dataset+" test image"), path, st.Step, proc.Name())
	t0 := time.Now()
	logp, stats, err := sample.LogLikelihood(sc, x, sample.Likelihood{Process: proc, Dim: d, Tol: c.Tol}, r)
	if err != nil {
		return nil, err
	}
	var sum, sq float64
	for _, lp := range logp {
		b := bitsPerDim(lp, d)
		sum += b
		sq += b * b
	}
	mean := sum / float64(n)
	se := 0.0
	if n > 1 {
		se = math.Sqrt(max(0, sq/float64(n)-mean*mean) * float64(n) / float64(n-1) / float64(n))
	}
	return &BPDResult{N: n, BPD: mean, BPDSE: se, Evals: stats.Evals, Seconds: math.Round(time.Since(t0).Seconds()*10) / 10,
		Dataset: c.Dataset, Source: path, Process: proc.Name()}, nil
}

// JSON is the one-line form.
func (r *BPDResult) JSON() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// WriteTable prints the result for people.
func (r *BPDResult) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "%-34s %s (%s SDE)\n", "model", r.Source, r.Process)
	fmt.Fprintf(w, "%-34s %s\n", "n", english.Count(r.N, r.Dataset+" test image"))
	if r.N < 2 { // one image has no spread to take a standard error from
		fmt.Fprintf(w, "%-34s %.3f (one image: no standard error)\n", "bits per dimension", r.BPD)
	} else {
		fmt.Fprintf(w, "%-34s %.3f ± %.3f\n", "bits per dimension", r.BPD, r.BPDSE)
	}
	fmt.Fprintf(w, "%-34s %d, %.1f s\n", "network evaluations", r.Evals, r.Seconds)
}

// dequantise is the continuous point of an 8-bit pixel p (k/255, as the
// datasets hold it) with uniform noise u ∈ [0, 1): (k + u)/256, in [0, 1),
// whose density on the 256 bins of [0, 1) is what bits/dim measures.
func dequantise(p float32, u float64) float64 {
	return (math.Round(float64(p)*255) + u) / 256
}

// bitsPerDim is the bits per dimension of an image of d values in [0, 1)
// whose log-density there is logp (nats): a bin of the 256 has width 1/256,
// so the discrete log-likelihood is logp − d·ln 256, and bits/dim is its
// negative over d·ln 2: −logp/(d ln 2) + 8 (score_sde's offset 7 −
// inverse_scaler(−1) = 8 for data in [0, 1]).
func bitsPerDim(logp float64, d int) float64 {
	return -logp/(float64(d)*math.Ln2) + 8
}
