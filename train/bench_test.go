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

// BenchmarkTrainStep times one forward+backward pass of the default MNIST
// network at batch 128 (the optimizer update is not included; it is O(params)).
func BenchmarkTrainStep(b *testing.B) {
	b.ReportAllocs()
	b.Logf("backend: %s; %s", blas.Backend(), kernel.Describe())
	cfg := model.MNIST(16)
	r := rand.New(rand.NewPCG(1, 2))
	params, err := model.Init(cfg, r)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 128
	g, err := newDSMGraph(cfg, params, batch)
	if err != nil {
		b.Fatal(err)
	}
	defer g.close()
	x := make([]float32, batch*cfg.Dim())
	z := make([]float32, len(x))
	for i := range x {
		x[i] = float32(r.Float64())
		z[i] = float32(r.NormFloat64())
	}
	sig, mean := make([]float64, batch), make([]float64, batch)
	for i := range sig {
		sig[i], mean[i] = 0.1, 1
	}
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

// BenchmarkScore times one score evaluation of the default MNIST network at
// batch 128 through the inference graph.
func BenchmarkScore(b *testing.B) {
	b.ReportAllocs()
	cfg := model.MNIST(16)
	r := rand.New(rand.NewPCG(1, 2))
	params, err := model.Init(cfg, r)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 128
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
