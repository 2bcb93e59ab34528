//go:build linux

package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/internal/cuda"
)

// TestDeviceScorerMatchesCPU: the score network's graph run by the device
// kernels (the CPU emulation of kernels.cu here; the GPU where there is
// one) gives the CPU scorer's scores to float32 rounding, for a network
// with every operator of the forward pass (stride-2 and 1×1 convolutions,
// GroupNorm, the σ bias, upsampling, concatenation, scaling by 1/σ).
func TestDeviceScorerMatchesCPU(t *testing.T) {
	devs := map[string]*cuda.Device{}
	if d, err := cuda.OpenEmulator(); err == nil {
		devs["emu"] = d
	} else {
		t.Logf("no CPU emulation: %v", err)
	}
	if d, err := cuda.Open(); err == nil {
		devs["gpu"] = d
		t.Log(d.Describe)
	} else {
		t.Logf("no GPU: %v", err)
	}
	if len(devs) == 0 {
		t.Skip("neither g++ nor a GPU")
	}
	cfg := Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4}
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
	for name, dev := range devs {
		t.Run(name, func(t *testing.T) {
			defer dev.Close()
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
}
