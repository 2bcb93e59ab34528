//go:build linux

package generate

import (
	"bytes"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sample"
)

// TestAnnealedOnDevice: annealed Langevin dynamics with the images on the
// device (the kernels' CPU emulation, or the GPU) is the CPU's algorithm with the
// device's noise: a float64 re-run on the CPU scorer, with z from
// cuda.Normal (the Philox stream's Go reference), lands on the same
// samples; the same seed gives the same bytes.
//
// About 20 s in the emulation on 2 cores: there it runs with NCSN_SLOW=1 (CI).
func TestAnnealedOnDevice(t *testing.T) {
	bs := slowBackends(t)
	for _, b := range bs {
		t.Run(b.Name, func(t *testing.T) {
			useBackend(b)
			ck, _ := tinyRun(t, "ncsn")
			st := loadLatest(t, ck)
			c := Config{N: 3, Seed: 5, StepsPerLevel: 2, Denoise: true, Device: "cuda"}
			res, err := Draw(st, c)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Draw(st, c)
			if err != nil {
				t.Fatal(err)
			}
			for i := range res.Images {
				if res.Images[i] != again.Images[i] {
					t.Fatal("the same seed drew other samples on the device")
				}
			}
			if res.Evals != len(st.Sigmas)*2+1 {
				t.Fatalf("%d evaluations", res.Evals)
			}
			// The reference, in float64 on the CPU.
			sc, err := model.NewScorer(st.Model, st.EMA, 3)
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			r := rand.New(rand.NewPCG(c.Seed, 0x73616d70))
			x := make([]float64, 3*st.Model.Dim())
			for i := range x {
				x[i] = float64(float32(r.Float64()))
			}
			a := sample.Annealed{Sigmas: st.Sigmas, StepsPerLevel: 2, Eps: sample.DefaultEps}
			s := make([]float64, len(x))
			k := 0
			for i, sigma := range a.Sigmas {
				alpha := a.StepSize(i)
				for range 2 {
					sc.Score(x, sigma, s)
					for j := range x {
						x[j] += alpha/2*s[j] + math.Sqrt(alpha)*cuda.Normal(c.Seed, uint64(k*len(x)+j))
					}
					k++
				}
			}
			sL := a.Sigmas[len(a.Sigmas)-1]
			sc.Score(x, sL, s)
			for j := range x {
				x[j] = min(1, max(0, x[j]+sL*sL*s[j]))
			}
			for j := range x {
				if math.Abs(res.Images[j]-x[j]) > 2e-3 {
					t.Fatalf("pixel %d: device %g, reference %g", j, res.Images[j], x[j])
				}
			}
		})
	}
}

// TestAutoguidedHeunOnDevice: MNIST's default sampler — Heun with churn,
// autoguided by the checkpoint's own guide, the main network and the guide
// both on the device (the kernels' CPU emulation, or the GPU) — draws the
// CPU's samples to float32 rounding (the churn's noise comes from the same
// CPU generator), with both networks evaluated at each step.
//
// About 12 s in the emulation on 2 cores: there it runs with NCSN_SLOW=1 (CI).
func TestAutoguidedHeunOnDevice(t *testing.T) {
	bs := slowBackends(t)
	ck, _ := tinyRun(t, "ve")
	st := loadLatest(t, ck)
	g, err := checkpoint.Load(filepath.Join(ck, "ckpt-00000001.ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	st.SampleSampler, st.SampleSteps, st.SampleChurn = "heun", 6, 3
	st.Guide, st.GuideStep, st.SampleAutoguide = g.EMA, g.Step, 2
	c := Config{N: 5, Seed: 4, Batch: 3} // two batches, the second padded
	want, err := Draw(st, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		t.Run(b.Name, func(t *testing.T) {
			useBackend(b)
			c := c
			c.Device = "cuda"
			got, err := Draw(st, c)
			if err != nil {
				t.Fatal(err)
			}
			if got.Evals != want.Evals || got.Autoguide != AutoguideSelf || got.AutoguideWeight != 2 {
				t.Fatalf("%d evaluations (CPU %d), autoguide %q w %g", got.Evals, want.Evals, got.Autoguide, got.AutoguideWeight)
			}
			sameSamples(t, got, want)
		})
	}
}

// sameSamples fails t where the device's samples differ from the CPU's by
// more than float32 rounding carried through a sampler (10⁻³ per pixel).
func sameSamples(t *testing.T, got, want *Result) {
	t.Helper()
	var worst float64
	for j := range want.Images {
		worst = max(worst, math.Abs(got.Images[j]-want.Images[j]))
	}
	if !(worst < 1e-3) {
		t.Fatalf("device and CPU samples differ by up to %g", worst)
	}
	t.Logf("largest pixel difference %.2g", worst)
}

// slowBackends is the device backends of a test that is slow in the
// emulation (cuda.Backends: there only under NCSN_SLOW=1), skipping it where
// there are none; openDevice, which the test replaces (useBackend), is
// restored after it.
func slowBackends(t *testing.T) []cuda.Backend {
	t.Helper()
	bs, missing := cuda.Backends(true)
	for _, m := range missing {
		t.Log("not run: " + m)
	}
	if len(bs) == 0 {
		t.Skip("no device backend")
	}
	saved := openDevice
	t.Cleanup(func() { openDevice = saved })
	return bs
}

// useBackend makes -device cuda open backend b (the test restores openDevice).
func useBackend(b cuda.Backend) {
	openDevice = func(name string, log io.Writer) (*cuda.Device, error) {
		if name != "cuda" {
			return nil, nil
		}
		return b.Open()
	}
}

// TestClassGuidanceOnDevice: classifier guidance with the score model and
// the noise-conditional classifier both on the device (the kernels' CPU
// emulation, or the GPU) draws the CPU's samples to float32 rounding
// (Euler–Maruyama's noise comes from the same CPU generator).
//
// About 3 s in the emulation on 2 cores: there it runs with NCSN_SLOW=1 (CI).
func TestClassGuidanceOnDevice(t *testing.T) {
	bs := slowBackends(t)
	ck, _ := tinyRun(t, "vp")
	st := loadLatest(t, ck)
	c := Config{N: 2, Seed: 2, Steps: 10, Sampler: "em", Denoise: true, Batch: 3, // 4 images: two batches, the second padded
		Class: "0,2", Guidance: 2, Classifier: tinyClassifier(t, "vp", "mnist")}
	want, err := Draw(st, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		t.Run(b.Name, func(t *testing.T) {
			useBackend(b)
			c := c
			var log bytes.Buffer
			c.Device, c.Log = "cuda", &log
			got, err := Draw(st, c)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(log.String(), ") on the device\n") {
				t.Fatalf("the classifier did not run on the device: %q", log.String())
			}
			if got.Evals != want.Evals || !slices.Equal(got.Labels, want.Labels) {
				t.Fatalf("%d evaluations, labels %v (CPU %d, %v)", got.Evals, got.Labels, want.Evals, want.Labels)
			}
			sameSamples(t, got, want)
		})
	}
}

// TestDrawOutOfDeviceMemory: a GPU that runs out of memory anywhere in a
// draw (the fake GPU, failing every allocation after the first n, n swept
// until the draw succeeds) makes Draw return an error that says so, never
// a panic; annealed Langevin dynamics and Heun's sampler on the VE process.
//
// About 10 s on 2 cores: it runs with NCSN_SLOW=1 (CI).
func TestDrawOutOfDeviceMemory(t *testing.T) {
	var fake *cuda.Backend
	for _, b := range slowBackends(t) {
		if b.Name == "fakegpu" {
			fake = &b
		}
	}
	if fake == nil {
		t.Skip("no fake GPU")
	}
	useBackend(*fake)
	t.Cleanup(func() { cuda.FailFakeGPUAllocsAfter(-1) })
	for _, c := range []struct {
		process string
		cfg     Config
	}{
		{"ncsn", Config{N: 3, Seed: 5, StepsPerLevel: 2, Denoise: true, Device: "cuda"}},
		{"ve", Config{N: 3, Seed: 5, Sampler: "heun", Steps: 3, Device: "cuda"}},
	} {
		ck, _ := tinyRun(t, c.process)
		st := loadLatest(t, ck)
		failed := 0
		for n := 0; ; n = n*3/2 + 1 {
			if n > 100000 {
				t.Fatalf("%s: the draw never succeeded", c.process)
			}
			cuda.FailFakeGPUAllocsAfter(n)
			_, err := Draw(st, c.cfg)
			cuda.FailFakeGPUAllocsAfter(-1)
			if err == nil {
				t.Logf("%s: %d draws failed for want of memory; with %d allocations it drew", c.process, failed, n)
				break
			}
			if !strings.Contains(err.Error(), "out of memory") {
				t.Fatalf("%s with %d allocations: %v", c.process, n, err)
			}
			failed++
		}
		if failed < 3 {
			t.Fatalf("%s: only %d draws met a full GPU", c.process, failed)
		}
	}
}

// TestDeviceALDSharesADevice: the device's annealed Langevin run and a
// device scorer used from another goroutine on the same device both give
// what each gives alone (the run took no turn: the scorer's calls went to
// a thread without the context while its Batch ran — "invalid device
// context" on the fake GPU — or wrote over its kernel parameters, a crash
// in the emulation).
func TestDeviceALDSharesADevice(t *testing.T) {
	bs := slowBackends(t)
	ck, _ := tinyRun(t, "ncsn")
	st := loadLatest(t, ck)
	for _, b := range bs {
		t.Run(b.Name, func(t *testing.T) {
			dev, err := b.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			c := Config{N: 3, Seed: 5, StepsPerLevel: 2, Denoise: true, Opened: dev}
			alone, err := Draw(st, c)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := model.NewDeviceScorer(dev, st.Model, st.EMA, 3)
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			x := make([]float64, 3*st.Model.Dim())
			for i := range x {
				x[i] = 0.5
			}
			want := make([]float64, len(x))
			if err := sc.Score(x, 0.5, want); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			var got *Result
			var drawErr error
			go func() { defer close(done); got, drawErr = Draw(st, c) }()
			dst := make([]float64, len(x))
			for calls := 0; ; calls++ {
				select {
				case <-done:
					if drawErr != nil {
						t.Fatalf("the draw beside the scorer: %v", drawErr)
					}
					if !slices.Equal(got.Images, alone.Images) {
						t.Fatal("the draw beside the scorer gave other samples")
					}
					t.Logf("%d scores during the draw", calls)
					return
				default:
				}
				if err := sc.Score(x, 0.5, dst); err != nil {
					<-done
					t.Fatalf("the scorer during the draw: %v", err)
				}
				if !slices.Equal(dst, want) {
					<-done
					t.Fatal("the scorer during the draw gave other scores")
				}
			}
		})
	}
}
