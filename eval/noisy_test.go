package eval

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sde"
)

func TestNoisyLevels(t *testing.T) {
	ten, _ := sde.Geometric(1, 0.01, 10)
	lv, err := noisyLevels(sde.Spec{Name: "ncsn", Sigmas: ten})
	if err != nil || len(lv) != 10 || lv[0].Sigma != 1 || lv[9].Sigma != 0.01 {
		t.Fatalf("10 levels: %+v %v", lv, err)
	}
	for _, l := range []int{12, 232, 3} { // 12: MNIST's ladder, of which a stride gave seven
		long, _ := sde.Geometric(50, 0.01, l)
		lv, _ = noisyLevels(sde.Spec{Name: "ncsn", Sigmas: long})
		if len(lv) != min(10, l) || lv[0].Sigma != 50 || lv[len(lv)-1].Sigma != 0.01 {
			t.Fatalf("%d levels → %d: first %g last %g", l, len(lv), lv[0].Sigma, lv[len(lv)-1].Sigma)
		}
		for i := 1; i < len(lv); i++ {
			if !(lv[i].Sigma < lv[i-1].Sigma) {
				t.Fatalf("%d levels: %g after %g", l, lv[i].Sigma, lv[i-1].Sigma)
			}
		}
	}
	lv, _ = noisyLevels(sde.Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20})
	if len(lv) != 11 || lv[0].T <= 0 || lv[10].T != 1 || !(lv[10].Mean < 0.01) || lv[0].Mean < 0.999 {
		t.Fatalf("vp levels %+v", lv)
	}
}

// TestNoisyAccuracy: a classifier that ignores its input (all weights zero
// but the head's bias, which favours class 2) is right exactly on the
// images labelled 2, at every level; the same seed gives the same figures.
func TestNoisyAccuracy(t *testing.T) {
	cfg := model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 1, Classes: 3}
	ps, err := model.Layout(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ps.Get("head.fc.b")
	b.Data[2] = 1
	st := &checkpoint.State{Model: cfg, EMA: ps}
	r := rand.New(rand.NewPCG(1, 1))
	test := &data.Dataset{N: 20, Channels: 1, Height: 8, Width: 8, Images: make([]float32, 20*64), Labels: make([]uint8, 20)}
	for i := range test.Images {
		test.Images[i] = float32(r.Float64())
	}
	for i := range test.Labels {
		test.Labels[i] = uint8(i % 4 % 3) // 0 1 2 0 0 1 2 0 …: label 2 on 5 of 20
	}
	lv, _ := noisyLevels(sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 5})
	if err := noisyAccuracy(st, nil, test, 20, 3, lv, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, l := range lv {
		if l.Accuracy != 0.25 {
			t.Fatalf("σ %g: accuracy %g, want 0.25", l.Sigma, l.Accuracy)
		}
	}
	// A classifier that reads its input: the figures depend on the noise,
	// and the seed fixes them.
	ps2, _ := model.Init(cfg, rand.New(rand.NewPCG(4, 4)))
	st.EMA = ps2
	a, _ := noisyLevels(sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 5})
	c, _ := noisyLevels(sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 5})
	noisyAccuracy(st, nil, test, 20, 3, a, io.Discard)
	noisyAccuracy(st, nil, test, 20, 3, c, io.Discard)
	if !slices.Equal(a, c) {
		t.Fatal("the same seed gave other accuracies")
	}
}

// TestRightClass: a classifier that always says 7 (zero weights, a bias
// for 7) is right exactly on the samples asked to be 7s, class by class.
func TestRightClass(t *testing.T) {
	c := &Classifier{Channels: 1, Height: 8, Width: 8}
	c.Names, c.Shapes = layout(1, 8, 8)
	for _, s := range c.Shapes {
		size := 1
		for _, d := range s {
			size *= d
		}
		c.Weights = append(c.Weights, make([]float32, size))
	}
	c.Weights[len(c.Weights)-1][7] = 5
	labels := []int{7, 7, 7, 3, 3, 0}
	r := &Result{}
	if err := r.rightClass(c, make([]float32, len(labels)*64), labels); err != nil {
		t.Fatal(err)
	}
	want := []ClassRight{{Class: 7, N: 3, Right: 3, RightConf: 3}, {Class: 3, N: 2}, {Class: 0, N: 1}}
	if !slices.Equal(r.PerClass, want) || r.RightClass == nil || *r.RightClass != 0.5 {
		t.Fatalf("per class %+v, right %v; want %+v and 0.5", r.PerClass, r.RightClass, want)
	}
	// None right: 0 is in the JSON (it was left out, and the guidance
	// table's script failed on the missing key).
	r = &Result{}
	if err := r.rightClass(c, make([]float32, 2*64), []int{3, 0}); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(r); !strings.Contains(string(b), `"right_class":0`) {
		t.Fatalf("none right: %s", b)
	}
	if b, _ := json.Marshal(&Result{}); strings.Contains(string(b), "right_class") {
		t.Fatalf("no -class: %s", b)
	}
	// A line written before, which left the 0 out, still prints.
	var old Result
	json.Unmarshal([]byte(`{"n":2,"per_class":[{"class":3,"n":1},{"class":0,"n":1,"right":1}]}`), &old)
	var table strings.Builder
	old.WriteTable(&table)
	if !strings.Contains(table.String(), "assigned the class asked for       50.0%") {
		t.Fatalf("an older line's table:\n%s", table.String())
	}
}

// TestDeviceCheckedFirst: a -device that cannot be opened is found before
// the test set is downloaded or a classifier trained (it was found after
// both, minutes in).
func TestDeviceCheckedFirst(t *testing.T) {
	if cuda.Built {
		t.Skip("needs a build without -tags gpu, where -device cuda cannot open")
	}
	cfg := model.Config{Channels: 1, Height: 28, Width: 28, Base: 2, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 1}
	ps, err := model.Layout(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := &checkpoint.State{Model: cfg, Dataset: "mnist", Process: sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 5},
		Train: []byte(`{}`), Weights: ps, EMA: ps.Clone(), Step: 1}
	for _, p := range ps {
		st.M = append(st.M, make([]float32, len(p.Data)))
		st.V = append(st.V, make([]float32, len(p.Data)))
	}
	st.RNG, _ = rand.NewPCG(1, 1).MarshalBinary()
	path, err := checkpoint.Save(t.TempDir(), st)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	_, err = Run(Config{Dataset: "mnist", Samples: path, Device: "cuda", N: 4, DataDir: dataDir})
	if err == nil || !strings.Contains(err.Error(), "-device cuda") {
		t.Fatalf("got %v, want -device cuda's error", err)
	}
	if left, _ := os.ReadDir(dataDir); len(left) > 0 {
		t.Errorf("the data folder was written before the device failed: %d entries", len(left))
	}
}
