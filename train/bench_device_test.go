//go:build linux

package train

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/optim"
)

// The GPU's benchmarks (make bench-gpu, scripts/bench_gpu.sh): the network
// of benchNet (NCSN_BENCH_NET), skipped without a GPU.

// openBenchDevice opens the GPU or skips (NCSN_BENCH_DEVICE=emu: the CPU
// emulation instead, to check the benchmarks themselves without a GPU).
func openBenchDevice(b *testing.B) *cuda.Device {
	b.Helper()
	open := cuda.Open
	if os.Getenv("NCSN_BENCH_DEVICE") == "emu" {
		open = cuda.OpenEmulator
	}
	dev, err := open()
	if err != nil {
		b.Skip("no GPU: ", err)
	}
	b.Logf("device: %s", dev.Describe)
	return dev
}

// BenchmarkDeviceTrainStep times one whole training step on the GPU: the
// forward and backward pass, the gradient norm, Adam and the EMA (what
// torch_ref.py --bench times: backward and opt.step), with the batch
// uploaded and the per-image losses brought back, as a run does.
func BenchmarkDeviceTrainStep(b *testing.B) {
	dev := openBenchDevice(b)
	defer dev.Close()
	cfg, batch := benchNet(b)
	r := rand.New(rand.NewPCG(1, 2))
	params, err := model.Init(cfg, r)
	if err != nil {
		b.Fatal(err)
	}
	ema := params.Clone()
	m, v := make([][]float32, len(params)), make([][]float32, len(params))
	sizes := make([]int, len(params))
	for i, p := range params {
		m[i], v[i], sizes[i] = make([]float32, len(p.Data)), make([]float32, len(p.Data)), len(p.Data)
	}
	d, err := newDSMObjective(dev, cfg, params, ema, m, v, batch)
	if err != nil {
		b.Fatal(err)
	}
	defer d.close()
	x, z, mean, sig := benchBatch(r, batch, cfg.Dim())
	opt := optim.New(1e-4, sizes)
	// With NCSN_DEVICE_PROFILE=1: the time of each phase, and of each
	// operator of the graph (each waited for: slower in all).
	profile := os.Getenv("NCSN_DEVICE_PROFILE") == "1"
	var phases [3]time.Duration
	mark := func(i int, t time.Time) time.Time {
		if profile {
			if err := dev.Synchronize(); err != nil {
				b.Fatal(err)
			}
			phases[i] += time.Since(t)
		}
		return time.Now()
	}
	step := func() {
		t := time.Now()
		if _, _, err := d.run(x, z, nil, mean, sig); err != nil {
			b.Fatal(err)
		}
		t = mark(0, t)
		if _, err := d.norm(); err != nil {
			b.Fatal(err)
		}
		t = mark(1, t)
		opt.Begin()
		if err := d.update(opt, 1, optim.EMADecay(0.999, opt.T, true)); err != nil {
			b.Fatal(err)
		}
		mark(2, t)
	}
	for range 3 { // warm-up: the first launches load the kernels
		step()
	}
	if err := dev.Synchronize(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	if err := dev.Synchronize(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
	if profile {
		b.Logf("phases over %d steps (warm-up included): graph %v, gradient norm %v, Adam+EMA %v\n%s",
			b.N+3, phases[0], phases[1], phases[2], d.dr.Profile())
		if plans := dev.ConvPlans(); len(plans) > 0 {
			b.Logf("cuDNN's algorithms:\n%s", strings.Join(plans, "\n"))
		}
	}
}

// BenchmarkDeviceScore times one score evaluation of a batch whose images
// stay in GPU memory, as the sampler's (ScoreOnDevice).
func BenchmarkDeviceScore(b *testing.B) {
	dev := openBenchDevice(b)
	defer dev.Close()
	cfg, batch := benchNet(b)
	r := rand.New(rand.NewPCG(1, 2))
	params, err := model.Init(cfg, r)
	if err != nil {
		b.Fatal(err)
	}
	s, err := model.NewDeviceScorer(dev, cfg, params, batch)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	xh := make([]float32, batch*cfg.Dim())
	for i := range xh {
		xh[i] = float32(r.Float64())
	}
	x, err := dev.Alloc(len(xh))
	if err != nil {
		b.Fatal(err)
	}
	out, err := dev.Alloc(len(xh))
	if err != nil {
		b.Fatal(err)
	}
	if err := dev.Upload(x, xh); err != nil {
		b.Fatal(err)
	}
	for range 3 {
		if err := s.ScoreOnDevice(dev, x, batch, 0.1, out); err != nil {
			b.Fatal(err)
		}
	}
	if err := dev.Synchronize(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.ScoreOnDevice(dev, x, batch, 0.1, out); err != nil {
			b.Fatal(err)
		}
	}
	if err := dev.Synchronize(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
	if os.Getenv("NCSN_DEVICE_PROFILE") == "1" {
		b.Logf("operators (warm-up included):\n%s", s.Profile())
	}
}
