package train

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/internal/blas"
	"github.com/ncsn-go/ncsn/internal/kernel"
	"github.com/ncsn-go/ncsn/model"
)

// benchNet is the network and batch the benchmarks time, by
// NCSN_BENCH_NET: "mnist" (the default: the default MNIST network, base 16,
// batch 128) or "ncsnv2" (the CIFAR-10 ncsnv2 preset's: 32×32 colour,
// base 128, multipliers 1,2,2,2, batch 128); "tiny" (base 4, batch 4)
// checks the benchmarks themselves.
func benchNet(b *testing.B) (model.Config, int) {
	switch n := os.Getenv("NCSN_BENCH_NET"); n {
	case "", "mnist":
		return model.MNIST(16), 128
	case "ncsnv2":
		return model.CIFAR10(128, 1, 2, 2, 2), 128
	case "tiny": // to check the benchmarks themselves, in the CPU emulation
		return model.MNIST(4), 4
	default:
		b.Fatalf("NCSN_BENCH_NET=%q: mnist or ncsnv2", n)
	}
	return model.Config{}, 0
}

// benchBatch is a training batch of the benchmarks: uniform images, normal
// noise, every image at σ = 0.1 with mean factor 1.
func benchBatch(r *rand.Rand, batch, dim int) (x, z []float32, mean, sig []float64) {
	x, z = make([]float32, batch*dim), make([]float32, batch*dim)
	for i := range x {
		x[i] = float32(r.Float64())
		z[i] = float32(r.NormFloat64())
	}
	sig, mean = make([]float64, batch), make([]float64, batch)
	for i := range sig {
		sig[i], mean[i] = 0.1, 1
	}
	return x, z, mean, sig
}

// BenchmarkTrainStep times one forward+backward pass of the network of
// benchNet (the default MNIST network at batch 128) on the CPU (the
// optimizer update is not included; it is O(params)).
func BenchmarkTrainStep(b *testing.B) {
	b.ReportAllocs()
	b.Logf("backend: %s; %s", blas.Backend(), kernel.Describe())
	cfg, batch := benchNet(b)
	r := rand.New(rand.NewPCG(1, 2))
	params, err := model.Init(cfg, r)
	if err != nil {
		b.Fatal(err)
	}
	g, err := newDSMGraph(cfg, params, batch)
	if err != nil {
		b.Fatal(err)
	}
	defer g.close()
	x, z, mean, sig := benchBatch(r, batch, cfg.Dim())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := g.run(x, z, nil, mean, sig); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
	b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
}

// peakRSSMiB is the process's high-water resident memory (Linux), 0 elsewhere.
func peakRSSMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkScore times one score evaluation of the network of benchNet
// (the default MNIST network at batch 128) through the CPU's inference
// graph.
func BenchmarkScore(b *testing.B) {
	b.ReportAllocs()
	cfg, batch := benchNet(b)
	r := rand.New(rand.NewPCG(1, 2))
	params, err := model.Init(cfg, r)
	if err != nil {
		b.Fatal(err)
	}
	s, err := model.NewScorer(cfg, params, batch)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	x := make([]float64, batch*cfg.Dim())
	for i := range x {
		x[i] = r.Float64()
	}
	out := make([]float64, len(x))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Score(x, 0.1, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
}
