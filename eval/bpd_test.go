package eval

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/train"
)

// TestBitsPerDimRefusals: -bpd is a clear error for a discrete NCSN model,
// a checkpoint of another dataset, a missing checkpoint and a bad -n; none
// of them reaches the data.
func TestBitsPerDimRefusals(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 1))
	ds := &data.Dataset{Name: "mnist", N: 8, Channels: 1, Height: 8, Width: 8, Images: make([]float32, 8*64)}
	for i := range ds.Images {
		ds.Images[i] = float32(r.Float64())
	}
	cfg := train.Config{Dataset: "mnist", Preset: "test",
		Model: model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4},
		Steps: 1, Batch: 2, LR: 1e-3, EMADecay: 0.9, SigmaMax: 1, SigmaMin: 0.05, Levels: 3, SaveEvery: 1, CkptDir: dir, Data: ds}
	if _, err := train.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	noData := t.TempDir() // an empty data folder: any attempt to load would fail differently
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"ncsn", Config{Dataset: "mnist", Samples: dir, N: 4, DataDir: noData}, "needs a model trained in continuous time"},
		{"dataset", Config{Dataset: "fashion", Samples: dir, N: 4, DataDir: noData}, "trained on mnist, not fashion"},
		{"missing", Config{Dataset: "mnist", Samples: dir + "/none", N: 4, DataDir: noData}, "needs a checkpoint"},
		{"n", Config{Dataset: "mnist", Samples: dir, N: 0, DataDir: noData}, "-n 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := BitsPerDim(tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line saying %q", err, tc.want)
			}
		})
	}
}
