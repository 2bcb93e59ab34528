package optim

import (
	"math"
	"reflect"
	"slices"
	"testing"
)

// One Adam step against the textbook formula in float64, and the clipping
// scale equal to a scaled gradient.
func TestAdamStep(t *testing.T) {
	w := []float32{1, -2, 3}
	g := []float32{0.5, -0.25, 4}
	o := New(1e-2, []int{3})
	for step := 1; step <= 3; step++ {
		want := make([]float64, 3)
		o.Begin()
		for j := range w {
			m := 0.9*float64(o.M[0][j]) + 0.1*float64(g[j])
			v := 0.999*float64(o.V[0][j]) + 0.001*float64(g[j])*float64(g[j])
			mh := m / (1 - math.Pow(0.9, float64(step)))
			vh := v / (1 - math.Pow(0.999, float64(step)))
			want[j] = float64(w[j]) - 1e-2*mh/(math.Sqrt(vh)+1e-8)
		}
		o.Update(0, w, g)
		for j := range w {
			if math.Abs(float64(w[j])-want[j]) > 1e-6 {
				t.Fatalf("step %d w[%d] = %g, want %g", step, j, w[j], want[j])
			}
		}
	}

	w1, w2 := []float32{1, -2, 3}, []float32{1, -2, 3}
	g2 := []float32{0.25, -0.125, 2}
	o1, o2 := New(1e-3, []int{3}), New(1e-3, []int{3})
	o1.Begin()
	o2.Begin()
	o1.UpdateScaled(0, w1, g, 0.5)
	o2.Update(0, w2, g2)
	if !reflect.DeepEqual(w1, w2) || !reflect.DeepEqual(o1.M, o2.M) || !reflect.DeepEqual(o1.V, o2.V) {
		t.Fatalf("scale 0.5: %v, halved gradient: %v", w1, w2)
	}
}

func TestEMA(t *testing.T) {
	if d := EMADecay(0.999, 0, true); d != float32(0.1) {
		t.Fatalf("decay at step 0 = %g, want 0.1 (warm-up)", d)
	}
	if d := EMADecay(0.999, 1_000_000, true); d != float32(0.999) {
		t.Fatalf("decay late = %g, want 0.999", d)
	}
	if d := EMADecay(0.999, 0, false); d != float32(0.999) {
		t.Fatalf("decay at step 0 without warm-up = %g, want 0.999", d)
	}
	ema, w := []float32{0, 10}, []float32{1, 0}
	UpdateEMA(ema, w, 0.75)
	if ema[0] != 0.25 || ema[1] != 7.5 {
		t.Fatalf("ema = %v, want [0.25 7.5]", ema)
	}
}

func TestScheduledLR(t *testing.T) {
	for _, c := range []struct {
		step, warmup, total int
		decay               string
		want                float64
	}{
		{0, 0, 100, "", 2},
		{99, 0, 100, "none", 2},
		{0, 10, 100, "", 0.2},
		{4, 10, 100, "", 1},
		{9, 10, 100, "cosine", 2},
		{10, 10, 100, "cosine", 2},
		{55, 10, 100, "cosine", 1},
		{100, 10, 100, "cosine", 0},
		{150, 10, 100, "cosine", 0},
		{0, 0, 1, "cosine", 2},
	} {
		if got := ScheduledLR(2, c.step, c.warmup, c.total, c.decay); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("ScheduledLR(2, %d, %d, %d, %q) = %g, want %g", c.step, c.warmup, c.total, c.decay, got, c.want)
		}
	}
}

// TestMismatchRefused: tensors of different lengths, or a tensor the
// optimiser does not hold, are an error and change nothing (they panicked,
// or updated a prefix).
func TestMismatchRefused(t *testing.T) {
	o := New(1e-3, []int{3})
	o.Begin()
	w, g := []float32{1, 2, 3}, []float32{1, 1, 1}
	for _, tc := range []struct {
		name string
		i    int
		w, g []float32
	}{
		{"short gradient", 0, w, g[:2]},
		{"long weights", 0, append(slices.Clone(w), 4), append(slices.Clone(g), 1)},
		{"no such tensor", 1, w, g},
		{"negative index", -1, w, g},
	} {
		if err := o.Update(tc.i, tc.w, tc.g); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if !slices.Equal(w, []float32{1, 2, 3}) || !slices.Equal(o.M[0], make([]float32, 3)) {
		t.Fatalf("changed: w %v, m %v", w, o.M[0])
	}
	ema := []float32{0, 0}
	if err := UpdateEMA(ema, w, 0.5); err == nil || !slices.Equal(ema, []float32{0, 0}) {
		t.Fatalf("EMA of 2 for 3 weights: %v, %v", err, ema)
	}
}
