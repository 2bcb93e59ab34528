package sample

import (
	"bytes"
	"image/png"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ncsn-go/ncsn/sde"
)

// gaussian is N(mu, s²I) in dim dimensions; its score at noise level σ is
// exact: −(x−μ)/(s²+σ²).
type gaussian struct {
	mu []float64
	s2 float64
}

func (g gaussian) Score(x []float64, sigma float64, dst []float64) error {
	v := g.s2 + sigma*sigma
	d := len(g.mu)
	for i := range x {
		dst[i] = -(x[i] - g.mu[i%d]) / v
	}
	return nil
}

// moments returns the per-dimension mean and variance of n points.
func moments(x []float64, d int) (mean, vr []float64) {
	n := len(x) / d
	mean, vr = make([]float64, d), make([]float64, d)
	for i, v := range x {
		mean[i%d] += v / float64(n)
	}
	for i, v := range x {
		dv := v - mean[i%d]
		vr[i%d] += dv * dv / float64(n-1)
	}
	return
}

// TestLangevinGaussian checks plain Langevin against the exact stationary
// variance of its discretisation, s²/(1 − τ/(2s²)), and the mean μ.
func TestLangevinGaussian(t *testing.T) {
	g := gaussian{mu: []float64{1, -2}, s2: 0.25}
	const n, tau = 20000, 0.01
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, 2*n)
	if err := Langevin(g, x, 0, tau, 600, true, r); err != nil {
		t.Fatal(err)
	}
	want := g.s2 / (1 - tau/(2*g.s2))
	mean, vr := moments(x, 2)
	for k := 0; k < 2; k++ {
		if se := math.Sqrt(want / n); math.Abs(mean[k]-g.mu[k]) > 4*se {
			t.Errorf("dim %d: mean %.4f, want %.4f ± %.4f", k, mean[k], g.mu[k], 4*se)
		}
		if se := want * math.Sqrt(2.0/n); math.Abs(vr[k]-want) > 4*se {
			t.Errorf("dim %d: variance %.4f, want %.4f ± %.4f", k, vr[k], want, 4*se)
		}
	}
	// Without noise it is gradient ascent: every point collapses onto the mode.
	x = make([]float64, 2*100)
	if err := Langevin(g, x, 0, tau, 2000, false, r); err != nil {
		t.Fatal(err)
	}
	_, vr = moments(x, 2)
	if vr[0] > 1e-12 || vr[1] > 1e-12 {
		t.Errorf("gradient ascent left variance %g, %g", vr[0], vr[1])
	}
}

// TestAnnealedLangevinGaussian runs Algorithm 1 on the exact noised score of
// a Gaussian from U[0,1] starts and compares the samples' mean and variance
// with (a) the exact moments of the linear-Gaussian dynamics, recursed step by
// step, and (b) the data's own moments — the point of the algorithm.
func TestAnnealedLangevinGaussian(t *testing.T) {
	g := gaussian{mu: []float64{0.3, 0.7}, s2: 0.04}
	sig, err := sde.Geometric(1, 0.01, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, denoise := range []bool{false, true} {
		a := Annealed{Sigmas: sig, StepsPerLevel: 100, Eps: 2e-4, Denoise: denoise}
		const n = 20000
		r := rand.New(rand.NewPCG(3, 4))
		x := make([]float64, 2*n)
		for i := range x {
			x[i] = r.Float64()
		}
		if err := AnnealedLangevin(g, x, a, r); err != nil {
			t.Fatal(err)
		}
		// Exact recursion: x' = (1−k)x + kμ + √α z with k = α/(2v).
		sL := sig[len(sig)-1]
		m, w := 0.5, 1.0/12 // U[0,1]
		mu := []float64{0.3, 0.7}
		var wantMean [2]float64
		for d := 0; d < 2; d++ {
			m, w = 0.5, 1.0/12
			for _, s := range sig {
				alpha := a.Eps * (s / sL) * (s / sL)
				k := alpha / (2 * (g.s2 + s*s))
				for i := 0; i < a.StepsPerLevel; i++ {
					m = (1-k)*m + k*mu[d]
					w = (1-k)*(1-k)*w + alpha
				}
			}
			if denoise {
				k := sL * sL / (g.s2 + sL*sL)
				m, w = (1-k)*m+k*mu[d], (1-k)*(1-k)*w
			}
			wantMean[d] = m
		}
		mean, vr := moments(x, 2)
		for d := 0; d < 2; d++ {
			if se := math.Sqrt(w / n); math.Abs(mean[d]-wantMean[d]) > 4*se {
				t.Errorf("denoise=%v dim %d: mean %.5f, exact dynamics give %.5f ± %.5f", denoise, d, mean[d], wantMean[d], 4*se)
			}
			if se := w * math.Sqrt(2.0/n); math.Abs(vr[d]-w) > 4*se {
				t.Errorf("denoise=%v dim %d: variance %.5f, exact dynamics give %.5f ± %.5f", denoise, d, vr[d], w, 4*se)
			}
			// And the sampler reaches the data distribution itself.
			if math.Abs(mean[d]-mu[d]) > 0.01 || math.Abs(vr[d]-g.s2)/g.s2 > 0.05 {
				t.Errorf("denoise=%v dim %d: N(%.4f, %.4f), data is N(%.4f, %.4f)", denoise, d, mean[d], vr[d], mu[d], g.s2)
			}
		}
	}
}

func TestAnnealedValidate(t *testing.T) {
	g := gaussian{mu: []float64{0}, s2: 1}
	x := []float64{0}
	r := rand.New(rand.NewPCG(1, 1))
	for _, a := range []Annealed{
		{Sigmas: nil, StepsPerLevel: 1, Eps: 1},
		{Sigmas: []float64{0.1, 1}, StepsPerLevel: 1, Eps: 1},
		{Sigmas: []float64{1, 0}, StepsPerLevel: 1, Eps: 1},
		{Sigmas: []float64{1, 0.1}, StepsPerLevel: 0, Eps: 1},
		{Sigmas: []float64{1, 0.1}, StepsPerLevel: 1, Eps: 0},
	} {
		if err := AnnealedLangevin(g, x, a, r); err == nil {
			t.Errorf("%+v: no error", a)
		}
	}
}

func TestGridPNG(t *testing.T) {
	imgs := make([]float64, 5*1*3*2)
	for i := range imgs {
		imgs[i] = float64(i) / float64(len(imgs)-1)
	}
	imgs[0], imgs[1] = -3, math.NaN()
	img, err := Grid(imgs, 5, 1, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WritePNG(&b, img); err != nil {
		t.Fatal(err)
	}
	dec, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	// 5 images → 3 columns, 2 rows of 2×3 tiles with 2-pixel borders.
	if sz := dec.Bounds().Size(); sz.X != 3*(2+2)+2 || sz.Y != 2*(3+2)+2 {
		t.Fatalf("grid is %v", sz)
	}
	gray := func(x, y int) uint32 { v, _, _, _ := dec.At(x, y).RGBA(); return v >> 8 }
	if gray(2, 2) != 0 || gray(3, 2) != 0 { // clamped −3 and NaN
		t.Errorf("clamping: %d %d", gray(2, 2), gray(3, 2))
	}
	if got := gray(1*(2+2)+2+1, 2+2); got != uint8Of(imgs[6+5]) {
		t.Errorf("image 1 pixel (1,2) = %d, want %d", got, uint8Of(imgs[11]))
	}
	if _, err := Grid(imgs, 5, 2, 3, 2); err == nil {
		t.Error("2 channels accepted")
	}
}

func uint8Of(v float64) uint32 { return uint32(math.Round(v * 255)) }
