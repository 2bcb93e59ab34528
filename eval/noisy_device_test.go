//go:build linux

package eval

import (
	"io"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sde"
)

// TestNoisyAccuracyOnDevice: the classifier's accuracy on noised test
// images with the classifier on the device (the kernels' CPU emulation, or
// the GPU) is the CPU's, level by level (the noise is the same CPU
// generator's; 20 images in one batch of 20, 3 levels), within one image
// per level (a near tie of two classes may round the other way).
func TestNoisyAccuracyOnDevice(t *testing.T) {
	bs, missing := cuda.Backends(false)
	for _, m := range missing {
		t.Log("not run: " + m)
	}
	if len(bs) == 0 {
		t.Skip("no device backend")
	}
	cfg := model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 1, Classes: 3}
	ps, err := model.Init(cfg, rand.New(rand.NewPCG(4, 4)))
	if err != nil {
		t.Fatal(err)
	}
	st := &checkpoint.State{Model: cfg, EMA: ps}
	r := rand.New(rand.NewPCG(1, 1))
	test := &data.Dataset{N: 20, Channels: 1, Height: 8, Width: 8, Images: make([]float32, 20*64), Labels: make([]uint8, 20)}
	for i := range test.Images {
		test.Images[i] = float32(r.Float64())
	}
	for i := range test.Labels {
		test.Labels[i] = uint8(i % 3)
	}
	spec := sde.Spec{Name: "ncsn", Sigmas: []float64{2, 0.5, 0.05}}
	want, _ := noisyLevels(spec)
	if err := noisyAccuracy(st, nil, test, 20, 3, want, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		t.Run(b.Name, func(t *testing.T) {
			dev, err := b.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			got, _ := noisyLevels(spec)
			if err := noisyAccuracy(st, dev, test, 20, 3, got, io.Discard); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				right := func(l NoisyLevel) float64 { return math.Round(l.Accuracy * 20) } // images of 20
				if got[i].Sigma != want[i].Sigma || !(math.Abs(right(got[i])-right(want[i])) <= 1) {
					t.Fatalf("accuracies on the device %+v, on the CPU %+v", got, want)
				}
			}
			t.Logf("accuracies on the device %+v, on the CPU %+v", got, want)
		})
	}
}
