//go:build linux

package model

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/nn"
	"github.com/ncsn-go/ncsn/sample"
	"github.com/ncsn-go/ncsn/sde"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// eachDevice runs f as a subtest on every device backend of this machine
// (cuda.Backends): the CPU emulation of the kernels and the GPU.
func eachDevice(t *testing.T, f func(t *testing.T, dev *cuda.Device)) {
	t.Helper()
	devices(t, false, f)
}

// devices is eachDevice, for a test that is slow in the emulation where
// slow is true: there it runs only with NCSN_SLOW=1 (as CI sets).
func devices(t *testing.T, slow bool, f func(t *testing.T, dev *cuda.Device)) {
	t.Helper()
	bs, missing := cuda.Backends(slow)
	for _, m := range missing {
		t.Log("not run: " + m)
	}
	if len(bs) == 0 {
		t.Skip("neither g++ (CPU emulation) nor a GPU")
	}
	for _, b := range bs {
		t.Run(b.Name, func(t *testing.T) {
			dev, err := b.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			f(t, dev)
		})
	}
}

// TestDeviceScorerMatchesCPU: the score network's graph run by the device
// kernels (the CPU emulation of kernels.cu here; the GPU where there is
// one) gives the CPU scorer's scores to float32 rounding, for a network
// with every operator of the forward pass (stride-2 and 1×1 convolutions,
// GroupNorm, the σ bias, upsampling, concatenation, scaling by 1/σ), and
// for the EDM-preconditioned network (the input's scale and the skip term).
func TestDeviceScorerMatchesCPU(t *testing.T) {
	plain := Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4}
	edm := plain
	edm.Precond, edm.SigmaData = PrecondEDM, 0.4
	for _, cfg := range []Config{plain, edm} {
		t.Run(cmp.Or(cfg.Precond, "ncsnv2"), func(t *testing.T) { deviceScorerMatchesCPU(t, cfg) })
	}
}

func deviceScorerMatchesCPU(t *testing.T, cfg Config) {
	r := rand.New(rand.NewPCG(9, 9))
	params, err := Init(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5 // two batches of 3, the second padded
	x := make([]float64, n*cfg.Dim())
	for i := range x {
		x[i] = r.Float64()
	}
	cpu, err := NewScorer(cfg, params, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	want := make([]float64, len(x))
	if err := cpu.Score(x, 0.3, want); err != nil {
		t.Fatal(err)
	}
	eachDevice(t, func(t *testing.T, dev *cuda.Device) {
		s, err := NewDeviceScorer(dev, cfg, params, 3)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		got := make([]float64, len(x))
		if err := s.Score(x, 0.3, got); err != nil {
			t.Fatal(err)
		}
		var num, den float64
		for i := range got {
			num += (got[i] - want[i]) * (got[i] - want[i])
			den += want[i] * want[i]
		}
		if rel := math.Sqrt(num / den); !(rel < 1e-5) {
			t.Fatalf("device scores differ from the CPU's by %g (relative L2)", rel)
		}
	})
}

// TestDeviceVJPMatchesCPU: the vector–Jacobian graph (the score network,
// the probe's dot product and the gradient by the images) run by the
// device kernels gives VJPScorer's scores and products to float32
// rounding, for the plain and the EDM-preconditioned network (whose
// input reaches the score twice: through the network and the skip term).
func TestDeviceVJPMatchesCPU(t *testing.T) {
	plain := Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4}
	edm := plain
	edm.Precond, edm.SigmaData = PrecondEDM, 0.4
	for _, cfg := range []Config{plain, edm} {
		t.Run(cmp.Or(cfg.Precond, "ncsnv2"), func(t *testing.T) {
			r := rand.New(rand.NewPCG(10, 10))
			params, err := Init(cfg, r)
			if err != nil {
				t.Fatal(err)
			}
			const n = 5 // two batches of 3, the second padded
			x, v := make([]float64, n*cfg.Dim()), make([]float64, n*cfg.Dim())
			for i := range x {
				x[i], v[i] = r.Float64(), r.NormFloat64()
			}
			cpu, err := NewVJPScorer(cfg, params, 3)
			if err != nil {
				t.Fatal(err)
			}
			defer cpu.Close()
			wantS, wantV := make([]float64, len(x)), make([]float64, len(x))
			if err := cpu.ScoreVJP(x, 0.3, v, wantS, wantV); err != nil {
				t.Fatal(err)
			}
			eachDevice(t, func(t *testing.T, dev *cuda.Device) {
				s, err := NewDeviceVJPScorer(dev, cfg, params, 3)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				gotS, gotV := make([]float64, len(x)), make([]float64, len(x))
				if err := s.ScoreVJP(x, 0.3, v, gotS, gotV); err != nil {
					t.Fatal(err)
				}
				for _, c := range []struct {
					what      string
					got, want []float64
					tol       float64
				}{{"scores", gotS, wantS, 1e-5}, {"vector–Jacobian products", gotV, wantV, 1e-4}} {
					var num, den float64
					for i := range c.got {
						num += (c.got[i] - c.want[i]) * (c.got[i] - c.want[i])
						den += c.want[i] * c.want[i]
					}
					if rel := math.Sqrt(num / den); !(rel < c.tol) || den == 0 {
						t.Fatalf("device %s differ from the CPU's by %g (relative L2)", c.what, rel)
					}
				}
			})
		})
	}
}

// TestDeviceLikelihoodMatchesCPU: log-likelihoods by the probability-flow
// ODE (what cmd/eval -bpd measures) with the network and its
// vector–Jacobian products on the device agree with the float64 graph's to
// 10⁻³ relative, as the CPU's float32 graph does: the ODE carries float32
// rounding into hundredths and tenths of a nat here (of ~470), on either
// path. A divergence wrong by a percent would be off by nats.
func TestDeviceLikelihoodMatchesCPU(t *testing.T) {
	cfg := Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4}
	r := rand.New(rand.NewPCG(11, 11))
	params, err := Init(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	proc, err := sde.New(sde.Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, 2*cfg.Dim())
	for i := range x {
		x[i] = r.Float64()
	}
	c := sample.Likelihood{Process: proc, Dim: cfg.Dim(), Tol: 1e-3}
	logp := func(t *testing.T, s sample.ScoreVJP) []float64 {
		t.Helper()
		lp, _, err := sample.LogLikelihood(s, x, c, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		return lp
	}
	near := func(t *testing.T, what string, got, ref []float64) {
		t.Helper()
		for i := range got {
			if d := math.Abs(got[i] - ref[i]); !(d < 1e-3*math.Abs(ref[i])) {
				t.Errorf("image %d: log-likelihood %.5f %s, %.5f in float64", i, got[i], what, ref[i])
			}
		}
	}
	lp := map[tensor.Dtype][]float64{}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		s, err := newVJPScorer(cfg, params, 1, dt) // two batches of one
		if err != nil {
			t.Fatal(err)
		}
		lp[dt] = logp(t, s)
		s.Close()
	}
	ref := lp[tensor.Float64]
	near(t, "on the CPU in float32", lp[tensor.Float32], ref)
	devices(t, true, func(t *testing.T, dev *cuda.Device) { // ~10 s in the emulation
		s, err := NewDeviceVJPScorer(dev, cfg, params, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		got := logp(t, s)
		near(t, "on the device", got, ref)
		t.Logf("log p: device %.5f, float64 %.5f, the CPU's float32 %.5f", got, ref, lp[tensor.Float32])
	})
}

// TestDeviceClassGradientMatchesCPU: the classifier's gradient graph (the
// encoder, its linear head, the cross-entropy against one-hot labels and
// the gradient by the images) run by the device kernels gives
// ClassGradient's ∇ₓ log p(y | x, σ), log p and class probabilities to
// float32 rounding.
func TestDeviceClassGradientMatchesCPU(t *testing.T) {
	cfg := tinyClassifier()
	r := rand.New(rand.NewPCG(12, 12))
	params, err := Init(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5 // two batches of 3, the second padded
	x, labels := make([]float64, n*cfg.Dim()), make([]int, n)
	for i := range x {
		x[i] = r.Float64()
	}
	for i := range labels {
		labels[i] = r.IntN(cfg.Classes)
	}
	cpu, err := NewClassGradient(cfg, params, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	want, wantLogp := make([]float64, len(x)), make([]float64, n)
	if err := cpu.Gradient(x, labels, 0.5, want, wantLogp); err != nil {
		t.Fatal(err)
	}
	eachDevice(t, func(t *testing.T, dev *cuda.Device) {
		c, err := NewDeviceClassGradient(dev, cfg, params, 3)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got, logp := make([]float64, len(x)), make([]float64, n)
		if err := c.Gradient(x, labels, 0.5, got, logp); err != nil {
			t.Fatal(err)
		}
		var num, den float64
		for i := range got {
			num += (got[i] - want[i]) * (got[i] - want[i])
			den += want[i] * want[i]
		}
		if rel := math.Sqrt(num / den); !(rel < 1e-4) || den == 0 {
			t.Fatalf("device gradients differ from the CPU's by %g (relative L2)", rel)
		}
		for i := range logp {
			if !(math.Abs(logp[i]-wantLogp[i]) < 1e-5*(1+math.Abs(wantLogp[i]))) {
				t.Fatalf("image %d: log p %g on the device, %g on the CPU", i, logp[i], wantLogp[i])
			}
		}
		if err := c.Gradient(x, []int{0, 1, 2, 3, 0}, 0.5, got, nil); err == nil {
			t.Fatal("a class out of range accepted")
		}
		wantP, err := cpu.Probs(x, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		gotP, err := c.Probs(x, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		for i := range wantP {
			if !(math.Abs(gotP[i]-wantP[i]) < 1e-6) {
				t.Fatalf("probability %d: %g on the device, %g on the CPU", i, gotP[i], wantP[i])
			}
		}
	})
}

// TestDeviceGradientsMatchCPU: the training graph — the score network, the
// DSM loss and gorgonia.Grad's gradients of every weight — run by the
// device kernels gives the tape machine's per-image losses and gradients to
// float32 rounding.
func TestDeviceGradientsMatchCPU(t *testing.T) {
	eachDevice(t, func(t *testing.T, dev *cuda.Device) {
		cfg := Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4}
		r := rand.New(rand.NewPCG(10, 10))
		params, err := Init(cfg, r)
		if err != nil {
			t.Fatal(err)
		}
		const batch = 3
		net, err := Build(cfg, params, batch, tensor.Float32)
		if err != nil {
			t.Fatal(err)
		}
		g := net.Graph
		sig := G.NewTensor(g, G.Float32, 1, G.WithShape(batch), G.WithName("sigma"), G.WithValue(tensor.New(tensor.WithShape(batch), tensor.WithBacking([]float32{0.05, 0.3, 1}))))
		zs := net.X.Shape()
		zv := make([]float32, zs.TotalSize())
		for i := range zv {
			zv[i] = float32(r.NormFloat64())
		}
		z := G.NewTensor(g, G.Float32, 4, G.WithShape(zs...), G.WithName("z"), G.WithValue(tensor.New(tensor.WithShape(zs...), tensor.WithBacking(zv))))
		loss, lossOp, err := nn.ResidualLoss(net.Out, sig, z)
		if err != nil {
			t.Fatal(err)
		}
		grads, err := G.Grad(loss, net.Weights...)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, batch*cfg.Dim())
		for i := range x {
			x[i] = float32(r.Float64())
		}
		if err := net.SetInput(x, []float64{0.05, 0.3, 1}); err != nil {
			t.Fatal(err)
		}
		run, err := nn.NewDeviceRun(dev, g)
		if err != nil {
			t.Fatal(err)
		}
		defer run.Close()
		if err := run.Upload(append([]*G.Node{net.X, net.Emb, net.OutScale, sig, z}, net.Weights...)...); err != nil {
			t.Fatal(err)
		}
		if err := run.Run(); err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g)
		defer vm.Close()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		per := make([]float32, batch)
		if err := run.PerImage(loss, per); err != nil {
			t.Fatal(err)
		}
		for i, p := range per {
			if math.Abs(float64(p)-lossOp.PerImage[i]) > 1e-4*lossOp.PerImage[i] {
				t.Fatalf("image %d: device loss %g, CPU %g", i, p, lossOp.PerImage[i])
			}
		}
		// Gradients that are zero in exact arithmetic (a bias followed by a
		// GroupNorm with one channel per group: its per-channel sums cancel)
		// are float32 noise on both sides; the tolerance has a floor of 1e-6
		// times the norm of all the gradients.
		var all float64
		for _, gn := range grads {
			for _, v := range gn.Value().Data().([]float32) {
				all += float64(v) * float64(v)
			}
		}
		all = math.Sqrt(all)
		for i, gn := range grads {
			want := gn.Value().Data().([]float32)
			got := make([]float32, len(want))
			if err := run.Download(gn, got); err != nil {
				t.Fatal(err)
			}
			var num, den float64
			for j := range want {
				num += float64(got[j]-want[j]) * float64(got[j]-want[j])
				den += float64(want[j]) * float64(want[j])
			}
			if d := math.Sqrt(num); !(d <= 1e-4*math.Sqrt(den)+1e-6*all) {
				t.Errorf("gradient of %s: ‖device − CPU‖ = %g, ‖CPU‖ = %g (all gradients %g)", net.Weights[i].Name(), d, math.Sqrt(den), all)
			}
		}
	})
}

// TestScoreOnDevice: scores of images that stay in device memory equal the
// host path's, for a colour network (the layout changes) and a padded
// last chunk; with EDM preconditioning too (its σ inputs are uploaded
// apart from the images).
func TestScoreOnDevice(t *testing.T) {
	for _, precond := range []string{PrecondNCSNv2, PrecondEDM} {
		t.Run(cmp.Or(precond, "ncsnv2"), func(t *testing.T) { scoreOnDevice(t, precond) })
	}
}

func scoreOnDevice(t *testing.T, precond string) {
	eachDevice(t, func(t *testing.T, dev *cuda.Device) {
		cfg := Config{Channels: 3, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4}
		if precond == PrecondEDM {
			cfg.Precond, cfg.SigmaData = PrecondEDM, 0.4
		}
		r := rand.New(rand.NewPCG(11, 11))
		params, err := Init(cfg, r)
		if err != nil {
			t.Fatal(err)
		}
		const n = 5
		x := make([]float64, n*cfg.Dim())
		xf := make([]float32, len(x))
		for i := range x {
			xf[i] = float32(r.Float64())
			x[i] = float64(xf[i])
		}
		s, err := NewDeviceScorer(dev, cfg, params, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		want := make([]float64, len(x))
		if err := s.Score(x, 0.4, want); err != nil {
			t.Fatal(err)
		}
		bx, _ := dev.Alloc(len(x))
		bo, _ := dev.Alloc(len(x))
		dev.Upload(bx, xf)
		if err := s.ScoreOnDevice(dev, bx, n, 0.4, bo); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(x))
		dev.Download(got, bo)
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > 1e-6*(1+math.Abs(want[i])) {
				t.Fatalf("score %d: on the device %g, through the host %g", i, got[i], want[i])
			}
		}
	})
}

// TestDeviceScorerCaptureRefused: where a graph's capture fails, the scorer
// runs its steps one by one with a note (the same scores as without
// graphs), or, with graphs asked for (NCSN_CUDA_GRAPH=1), fails with an
// error that says how to do without them.
func TestDeviceScorerCaptureRefused(t *testing.T) {
	t.Setenv(cuda.EmuCaptureEnv, "refuse")
	dev, err := cuda.OpenEmulator()
	if err != nil {
		t.Skip("no CPU emulation: ", err)
	}
	defer dev.Close()
	cfg := Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4}
	params, err := Init(cfg, rand.New(rand.NewPCG(3, 3)))
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, 2*cfg.Dim())
	for i := range x {
		x[i] = math.Sin(float64(i))
	}
	var log bytes.Buffer
	score := func(graphs, asked bool) ([]float64, error) {
		dev.Graphs, dev.GraphsAsked, dev.Log = graphs, asked, &log
		s, err := NewDeviceScorer(dev, cfg, params, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out := make([]float64, len(x))
		for range 2 {
			if err := s.Score(x, 0.5, out); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	plain, err := score(false, false)
	if err != nil {
		t.Fatal(err)
	}
	fell, err := score(true, false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plain, fell) {
		t.Fatal("the scores after the failed capture are not those of the steps one by one")
	}
	if n := strings.Count(log.String(), "note: a graph of"); n != 1 || !strings.Contains(log.String(), "captures refused") {
		t.Fatalf("%d notes: %q", n, log.String())
	}
	if _, err := score(true, true); err == nil || !strings.Contains(err.Error(), "NCSN_CUDA_GRAPH=0 runs them one by one") {
		t.Fatalf("with graphs asked for: %v", err)
	}
}

// TestDeviceScorerGraphs: with the device's Graphs on, the score network's
// steps replayed as one captured graph give the same bits as run one by
// one (in the emulation; to float32 rounding on a GPU), call after call with other images and σ (the graph reads its input
// buffers anew, and two scorers on one device keep their own graphs), for
// the EDM-preconditioned network.
func TestDeviceScorerGraphs(t *testing.T) {
	cfg := Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4, Precond: PrecondEDM, SigmaData: 0.4}
	r := rand.New(rand.NewPCG(12, 12))
	params, err := Init(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Init(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5 // two batches of 3 per call, the second padded
	xs := make([][]float64, 4)
	for i := range xs {
		xs[i] = make([]float64, n*cfg.Dim())
		for j := range xs[i] {
			xs[i][j] = r.NormFloat64()
		}
	}
	sigmas := []float64{3, 0.5, 0.05, 1.2}
	eachDevice(t, func(t *testing.T, dev *cuda.Device) {
		scores := func(graphs bool) [][]float64 {
			dev.Graphs = graphs
			a, err := NewDeviceScorer(dev, cfg, params, 3)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := NewDeviceScorer(dev, cfg, other, 3)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			var out [][]float64
			for i, x := range xs {
				for _, s := range []*DeviceScorer{a, b} {
					got := make([]float64, len(x))
					if err := s.Score(x, sigmas[i], got); err != nil {
						t.Fatal(err)
					}
					out = append(out, got)
				}
			}
			return out
		}
		plain, graphed := scores(false), scores(true)
		// The emulation replays the same calls: the same bits. A GPU's
		// cuBLAS may choose other algorithms under capture: float32 rounding.
		tol := 0.0
		if dev.Describe[:3] == "GPU" {
			tol = 1e-5
		}
		for i := range plain {
			for j := range plain[i] {
				if d := math.Abs(plain[i][j] - graphed[i][j]); !(d <= tol*(1+math.Abs(plain[i][j]))) {
					t.Fatalf("call %d, value %d: %g one by one, %g from the graph", i, j, plain[i][j], graphed[i][j])
				}
			}
		}
	})
}

// TestDeviceScorersShareADevice: two scorers of one device, each used from
// its own goroutine, give the scores one of them gives alone (the second
// goroutine's calls went to a thread without the CUDA context while the
// first's ran: "invalid device context", or wrote over its kernel
// parameters); a device score asked on another device is refused.
func TestDeviceScorersShareADevice(t *testing.T) {
	eachDevice(t, func(t *testing.T, dev *cuda.Device) {
		cfg := Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4}
		r := rand.New(rand.NewPCG(9, 9))
		params, err := Init(cfg, r)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float64, 3*cfg.Dim())
		for i := range x {
			x[i] = r.Float64()
		}
		var ss [2]*DeviceScorer
		for i := range ss {
			if ss[i], err = NewDeviceScorer(dev, cfg, params, 3); err != nil {
				t.Fatal(err)
			}
			defer ss[i].Close()
		}
		want := make([]float64, len(x))
		if err := ss[0].Score(x, 0.3, want); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 2)
		for w := range ss {
			go func() {
				got := make([]float64, len(x))
				for k := 0; k < 10; k++ {
					if err := ss[w].Score(x, 0.3, got); err != nil {
						errs <- fmt.Errorf("scorer %d, call %d: %w", w, k, err)
						return
					}
					if !slices.Equal(got, want) {
						errs <- fmt.Errorf("scorer %d, call %d: other scores", w, k)
						return
					}
				}
				errs <- nil
			}()
		}
		for range ss {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		other, err := cuda.OpenEmulator()
		if err != nil {
			t.Skip(err)
		}
		defer other.Close()
		b, err := other.Alloc(len(x))
		if err != nil {
			t.Fatal(err)
		}
		if err := ss[0].ScoreOnDevice(other, b, 3, 0.3, b); err == nil {
			t.Error("a device score on another device")
		}
	})
}
