package model

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/tensor"
)

func tinyClassifier() Config {
	c := tiny()
	c.Classes = 3
	return c
}

// TestClassifierLayout: a classifier is the encoder half and a linear head;
// no decoder or output convolution.
func TestClassifierLayout(t *testing.T) {
	cfg := tinyClassifier()
	ps, err := Layout(cfg)
	if err != nil {
		t.Fatal(err)
	}
	last := ps[len(ps)-2]
	if last.Name != "head.fc.w" || last.Shape[0] != 8*4*4 || last.Shape[1] != 3 {
		t.Fatalf("head weight %s%v, want head.fc.w[128 3]", last.Name, last.Shape)
	}
	for _, p := range ps {
		if p.Name[:3] == "dec" || p.Name[:3] == "out" || p.Name[:2] == "up" {
			t.Fatalf("classifier has decoder parameter %s", p.Name)
		}
	}
	size, err := LayoutSize(cfg)
	if err != nil {
		t.Fatal(err)
	}
	all := 0
	for _, p := range ps {
		all += len(p.Data)
	}
	if size != all {
		t.Fatalf("LayoutSize %d, Layout holds %d", size, all)
	}
	for _, k := range []int{-1, 1, 1001} {
		c := tiny()
		c.Classes = k
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Fatalf("%d classes: %v, want ErrConfig", k, err)
		}
	}
	if _, err := NewScorer(cfg, ps, 2); !errors.Is(err, ErrConfig) {
		t.Fatalf("a scorer over a classifier: %v, want ErrConfig", err)
	}
	sp, _ := Layout(tiny())
	if _, err := NewClassGradient(tiny(), sp, 2); !errors.Is(err, ErrConfig) {
		t.Fatalf("a class gradient over a score network: %v, want ErrConfig", err)
	}
	if _, err := TorchNames(cfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("torch names of a classifier: %v, want ErrConfig", err)
	}
}

// TestClassGradientMatchesFiniteDifferences: ∇ₓ log p(y | x, σ) from the
// graph equals central differences of log p in float64; the float32 graph
// agrees; probabilities sum to one; a class out of range is an error.
func TestClassGradientMatchesFiniteDifferences(t *testing.T) {
	cfg := tinyClassifier()
	r := rand.New(rand.NewPCG(7, 8))
	params, err := Init(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	d := cfg.Dim()
	x := make([]float64, n*d)
	for i := range x {
		x[i] = float64(float32(r.Float64()))
	}
	labels := []int{2, 0, 1}
	const sigma = 0.4
	c64, err := newClassGradient(cfg, params, 2, tensor.Float64) // 2 chunks, one padded
	if err != nil {
		t.Fatal(err)
	}
	defer c64.Close()
	grad, logp := make([]float64, len(x)), make([]float64, n)
	if err := c64.Gradient(x, labels, sigma, grad, logp); err != nil {
		t.Fatal(err)
	}
	lp := func(x []float64) []float64 {
		out := make([]float64, n)
		if err := c64.Gradient(x, labels, sigma, make([]float64, len(x)), out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	plus, minus := make([]float64, len(x)), make([]float64, len(x))
	for _, k := range []int{0, 9, d + 17, 2*d + d - 1} {
		const h = 1.0 / (1 << 12)
		copy(plus, x)
		copy(minus, x)
		plus[k] += h
		minus[k] -= h
		img := k / d
		fd := (lp(plus)[img] - lp(minus)[img]) / (2 * h)
		if math.Abs(fd-grad[k]) > 1e-5*(1+math.Abs(fd)) {
			t.Fatalf("input %d: graph %g, finite differences %g", k, grad[k], fd)
		}
		// The other images do not depend on this pixel.
		for j := 0; j < n; j++ {
			if j != img && lp(plus)[j] != logp[j] {
				t.Fatalf("image %d's log p moved with a pixel of image %d", j, img)
			}
		}
	}
	c32, err := NewClassGradient(cfg, params, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer c32.Close()
	g32, l32 := make([]float64, len(x)), make([]float64, n)
	if err := c32.Gradient(x, labels, sigma, g32, l32); err != nil {
		t.Fatal(err)
	}
	var num, den float64
	for i := range grad {
		num += (g32[i] - grad[i]) * (g32[i] - grad[i])
		den += grad[i] * grad[i]
	}
	if math.Sqrt(num/den) > 1e-4 {
		t.Fatalf("float32 gradient differs from float64 by %g (relative L2)", math.Sqrt(num/den))
	}
	probs, err := c32.Probs(x, sigma)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		var s float64
		for _, p := range probs[i*3 : (i+1)*3] {
			s += p
		}
		if math.Abs(s-1) > 1e-9 || math.Abs(math.Log(probs[i*3+labels[i]])-l32[i]) > 1e-9 {
			t.Fatalf("image %d: probabilities sum to %g, log p %g vs %g", i, s, math.Log(probs[i*3+labels[i]]), l32[i])
		}
	}
	if err := c32.Gradient(x, []int{0, 3, 1}, sigma, g32, nil); err == nil {
		t.Fatal("class 3 of 3 accepted")
	}
}

// TestClassGradientConcurrent: Probs from several goroutines at once gives
// each the probabilities it gives alone (it read the graph's after the
// lock was let go, and another call had overwritten them).
func TestClassGradientConcurrent(t *testing.T) {
	cfg := tinyClassifier()
	r := rand.New(rand.NewPCG(7, 8))
	params, _ := Init(cfg, r)
	c, err := NewClassGradient(cfg, params, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const workers, calls = 4, 100
	xs, want := make([][]float64, workers), make([][]float64, workers)
	for w := range xs {
		xs[w] = make([]float64, 2*cfg.Dim())
		for i := range xs[w] {
			xs[w][i] = r.Float64()
		}
		if want[w], err = c.Probs(xs[w], 0.3); err != nil {
			t.Fatal(err)
		}
	}
	bad := make(chan int, workers)
	for w := range xs {
		go func() {
			for range calls {
				if got, err := c.Probs(xs[w], 0.3); err != nil || !slices.Equal(got, want[w]) {
					bad <- w
					return
				}
			}
			bad <- -1
		}()
	}
	for range xs {
		if w := <-bad; w >= 0 {
			t.Errorf("goroutine %d: other probabilities than alone", w)
		}
	}
}
