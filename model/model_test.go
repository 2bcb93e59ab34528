package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// tiny is a configuration small enough for finite differences.
func tiny() Config {
	return Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 1}
}

func randomInput(r *rand.Rand, cfg Config, batch int) ([]float32, []float64) {
	x := make([]float32, batch*cfg.Dim())
	for i := range x {
		x[i] = float32(r.Float64())
	}
	s := make([]float64, batch)
	for i := range s {
		s[i] = 0.05 + r.Float64()
	}
	return x, s
}

// TestScoreNetGradients checks gorgonia.Grad through the whole network, in
// float64, against central finite differences on every parameter tensor.
func TestScoreNetGradients(t *testing.T) {
	if checked := checkGradients(t, tiny(), rand.New(rand.NewPCG(5, 6)), 3, []int{0, -2, -1}); checked < 3*30 {
		t.Fatalf("only %d gradient entries checked", checked)
	}
}

// checkGradients builds cfg's float64 graph for batch images, perturbs the
// trainable weights away from symmetric values, and compares gorgonia.Grad
// of ⟨Out, R⟩ (R random) with central finite differences at the given
// entries of every weight tensor (-1 the last, -2 the middle). It returns
// how many entries it checked.
func checkGradients(t *testing.T, cfg Config, r *rand.Rand, batch int, entries []int) int {
	t.Helper()
	params, err := Init(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	// Non-trivial norms and biases, so that no gradient is zero by symmetry.
	for _, p := range params {
		if !p.Fixed {
			for i := range p.Data {
				p.Data[i] += float32(0.1 * r.NormFloat64())
			}
		}
	}
	net, err := Build(cfg, params, batch, tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	x, s := randomInput(r, cfg, batch)
	if err := net.SetInput(x, s); err != nil {
		t.Fatal(err)
	}
	rw := make([]float64, net.Out.Shape().TotalSize())
	for i := range rw {
		rw[i] = r.NormFloat64()
	}
	rn := G.NodeFromAny(net.Graph, tensor.New(tensor.WithShape(net.Out.Shape()...), tensor.WithBacking(rw)), G.WithName("R"))
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(net.Out, rn))))
	grads, err := G.Grad(loss, net.Weights...)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(net.Graph)
	defer vm.Close()
	eval := func() float64 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		return loss.Value().Data().(float64)
	}
	eval()
	analytic := make([][]float64, len(grads))
	for i, g := range grads {
		analytic[i] = append([]float64(nil), g.Value().Data().([]float64)...)
	}
	const h = 1e-6
	checked := 0
	for i, w := range net.Weights {
		data := w.Value().Data().([]float64)
		for _, e := range entries {
			j := e
			switch e {
			case -1:
				j = len(data) - 1
			case -2:
				j = len(data) / 2
			}
			old := data[j]
			data[j] = old + h
			lp := eval()
			data[j] = old - h
			lm := eval()
			data[j] = old
			num := (lp - lm) / (2 * h)
			if d := math.Abs(num - analytic[i][j]); d > 1e-5*(1+math.Abs(num)) {
				t.Errorf("%s[%d]: analytic %.8g, finite difference %.8g", w.Name(), j, analytic[i][j], num)
			}
			checked++
		}
	}
	return checked
}

// TestFloat32MatchesFloat64: the float32 graph (fast exp, OpenBLAS sgemm)
// computes the same scores as the float64 one, to float32 accuracy.
func TestFloat32MatchesFloat64(t *testing.T) {
	cfg := tiny()
	r := rand.New(rand.NewPCG(9, 9))
	params, _ := Init(cfg, r)
	x, s := randomInput(r, cfg, 4)
	outs := [2][]float32{}
	for k, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		net, err := Build(cfg, params, 4, dt)
		if err != nil {
			t.Fatal(err)
		}
		net.SetInput(x, s)
		vm := G.NewTapeMachine(net.Graph)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		outs[k] = make([]float32, len(x))
		net.ReadOutput(outs[k])
		vm.Close()
	}
	for i := range outs[0] {
		a, b := float64(outs[0][i]), float64(outs[1][i])
		if math.Abs(a-b) > 1e-4*(1+math.Abs(b)) {
			t.Fatalf("score[%d]: float32 %g, float64 %g", i, a, b)
		}
	}
}

// TestParamCount pins the default network to the PyTorch reference's size.
func TestParamCount(t *testing.T) {
	ps, err := Layout(MNIST(16))
	if err != nil {
		t.Fatal(err)
	}
	if n := ps.Count(); n != 214801 {
		t.Fatalf("%d parameters; torch_ref.py's base-16 network has 214801", n)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
	}{
		{"no base", Config{Channels: 1, Height: 28, Width: 28, Base: 0, Mult: []int{1}, EmbDim: 8}},
		{"no levels", Config{Channels: 1, Height: 28, Width: 28, Base: 4, Mult: nil, EmbDim: 8}},
		{"28 not halved 3 times", Config{Channels: 1, Height: 28, Width: 28, Base: 4, Mult: []int{1, 2, 2, 2}, EmbDim: 8}},
		{"odd emb_dim", Config{Channels: 1, Height: 28, Width: 28, Base: 4, Mult: []int{1}, EmbDim: 7}},
		{"huge base", Config{Channels: 1, Height: 28, Width: 28, Base: 1 << 40, Mult: []int{1}, EmbDim: 8}},
		{"huge multiplier", Config{Channels: 1, Height: 28, Width: 28, Base: 4, Mult: []int{1, 1 << 30}, EmbDim: 8}},
		{"huge image", Config{Channels: 1, Height: 1 << 20, Width: 1 << 20, Base: 4, Mult: []int{1}, EmbDim: 8}},
		{"many levels", Config{Channels: 1, Height: 512, Width: 512, Base: 4, Mult: []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, EmbDim: 8}},
		{"huge emb_dim", Config{Channels: 1, Height: 28, Width: 28, Base: 4, Mult: []int{1}, EmbDim: 1 << 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Layout(tc.c); err == nil {
				t.Errorf("%+v accepted", tc.c)
			}
			if _, err := LayoutSize(tc.c); err == nil {
				t.Errorf("LayoutSize accepted %+v", tc.c)
			}
		})
	}
	good := Config{Channels: 1, Height: 28, Width: 28, Base: 4, Mult: []int{1}, EmbDim: 8}
	if _, err := Init(good, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("Init without a generator: %v", err)
	}
}

// TestLayoutSize: the size computed without allocating is the layout's.
func TestLayoutSize(t *testing.T) {
	for _, c := range []Config{tiny(), MNIST(16), CIFAR10(128, 1, 2, 2, 2)} {
		ps, err := Layout(c)
		if err != nil {
			t.Fatal(err)
		}
		all := 0
		for _, p := range ps {
			all += len(p.Data)
		}
		n, err := LayoutSize(c)
		if err != nil || n != all {
			t.Fatalf("%+v: LayoutSize %d (%v), the layout has %d values", c, n, err, all)
		}
	}
}

// TestScorerChunks: the scorer's answer does not depend on how the images
// are split into graph batches (padding included).
func TestScorerChunks(t *testing.T) {
	cfg := tiny()
	r := rand.New(rand.NewPCG(2, 3))
	params, _ := Init(cfg, r)
	x := make([]float64, 5*cfg.Dim())
	for i := range x {
		x[i] = r.Float64()
	}
	var outs [2][]float64
	for k, b := range []int{5, 2} {
		s, err := NewScorer(cfg, params, b)
		if err != nil {
			t.Fatal(err)
		}
		outs[k] = make([]float64, len(x))
		if err := s.Score(x, 0.3, outs[k]); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	for i := range outs[0] {
		if math.Abs(outs[0][i]-outs[1][i]) > 1e-5*(1+math.Abs(outs[0][i])) {
			t.Fatalf("score[%d]: batch 5 gives %g, batch 2 gives %g", i, outs[0][i], outs[1][i])
		}
	}
}

// TestScorerConcurrent: one Scorer used from several goroutines gives each
// call the answer it gives alone (they shared the graph's buffers: wrong
// scores with a nil error, or "input is <nil>"); σ = +Inf is refused.
func TestScorerConcurrent(t *testing.T) {
	cfg := tiny()
	r := rand.New(rand.NewPCG(4, 5))
	params, _ := Init(cfg, r)
	s, err := NewScorer(cfg, params, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const workers, calls = 4, 6
	xs := make([][]float64, workers)
	want := make([][]float64, workers)
	for w := range xs {
		xs[w] = make([]float64, 3*cfg.Dim())
		for i := range xs[w] {
			xs[w][i] = r.Float64()
		}
		want[w] = make([]float64, len(xs[w]))
		if err := s.Score(xs[w], 0.2+0.1*float64(w), want[w]); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, workers*calls)
	var wg sync.WaitGroup
	for w := range xs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := make([]float64, len(xs[w]))
			for range calls {
				if err := s.Score(xs[w], 0.2+0.1*float64(w), got); err != nil {
					errs <- err
					return
				}
				if !slices.Equal(got, want[w]) {
					errs <- fmt.Errorf("goroutine %d: another answer than alone", w)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := s.Score(xs[0], math.Inf(1), want[0]); err == nil {
		t.Error("σ = +Inf accepted")
	}
}
