//go:build linux

package train

import (
	"bytes"
	"context"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/optim"
)

// TestTrainOnDevice: a run whose graph, Adam and EMA run on the device
// kernels (their CPU emulation, the GPU where there is one), with gradients
// clipped by the norm the device computes, follows the CPU run step for
// step — the same losses and weights to float32 rounding — records the
// device's arithmetic path, and its checkpoint resumes on the CPU. Two
// recipes: NCSN's ladder, and MNIST's default (the VE process with σ drawn
// log-normally, EDM's preconditioning, the EMA of half-way kept as the
// guide: the guide downloaded from the device is the CPU run's guide and,
// bit for bit, the device run's own EMA of that step; and with the step
// replayed as a captured graph, the same bits as its steps one by one in
// the emulation, to float32 rounding on a GPU).
//
// About 40 s in the emulation on 2 cores: there it runs with NCSN_SLOW=1 (CI).
func TestTrainOnDevice(t *testing.T) {
	bs := deviceBackends(t, true)
	recipes := []struct {
		name string
		cfg  func(dir string) Config
	}{
		{"ladder", func(dir string) Config {
			// Base 16: two channels per GroupNorm group, so that no gradient is
			// zero in exact arithmetic (with one, the σ embedding's cancel, and
			// Adam would turn their float32 noise into full steps).
			c := tinyConfig(dir)
			c.Steps, c.Model.Base, c.MaxGradNorm = 4, 16, 0.5 // clipping: the norm computed on the device
			return c
		}},
		{"default", func(dir string) Config {
			c := tinyConfig(dir)
			if err := c.UseSDE("ve"); err != nil {
				t.Fatal(err)
			}
			c.Model.Precond, c.SigmaDist, c.PMean, c.PStd = model.PrecondEDM, SigmaDistLogNormal, -0.8, 1.2
			c.Steps, c.Model.Base, c.MaxGradNorm, c.SaveEvery = 4, 16, 0.5, 1
			c.GuideAt, c.SampleSampler, c.SampleSteps, c.SampleChurn, c.SampleAutoguide = 0.5, "heun", 5, 2, 2
			return c
		}},
	}
	for _, bk := range bs {
		for _, rc := range recipes {
			t.Run(bk.Name+"/"+rc.name, func(t *testing.T) {
				graphs := false
				openDevice = func(name string, log io.Writer) (*cuda.Device, error) {
					if name != "cuda" {
						return nil, nil
					}
					d, err := bk.Open()
					if d != nil {
						d.Graphs = graphs
					}
					return d, err
				}
				cpuDir, devDir := t.TempDir(), t.TempDir()
				if _, err := Run(context.Background(), rc.cfg(cpuDir)); err != nil {
					t.Fatal(err)
				}
				d := rc.cfg(devDir)
				d.Device = "cuda"
				res, err := Run(context.Background(), d)
				if err != nil {
					t.Fatal(err)
				}
				a, b := final(t, cpuDir), final(t, devDir)
				deviceArith := backendArith(t, bk)
				if b.Arith != deviceArith {
					t.Fatalf("device run recorded arithmetic path %q, its device's is %q", b.Arith, deviceArith)
				}
				closeTo(t, "weights after 4 steps", a.Weights, b.Weights)
				closeTo(t, "EMA after 4 steps", a.EMA, b.EMA)
				if d.GuideAt > 0 {
					if a.GuideStep != 2 || b.GuideStep != 2 || b.Guide == nil {
						t.Fatalf("guide of step %d on the CPU, %d on the device", a.GuideStep, b.GuideStep)
					}
					closeTo(t, "guide", a.Guide, b.Guide)
					at2, err := checkpoint.Load(filepath.Join(devDir, checkpoint.FileName(2)))
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(at2.EMA, b.Guide) || reflect.DeepEqual(b.EMA, b.Guide) {
						t.Fatal("the device run's guide is not its EMA of step 2, or the EMA never moved after it")
					}
				}
				cpuLoss := lossColumnsOf(t, cpuDir)
				devLoss := lossColumnsOf(t, devDir)
				for i := range cpuLoss {
					if math.Abs(devLoss[i]-cpuLoss[i]) > 1e-4*math.Abs(cpuLoss[i]) {
						t.Fatalf("step %d loss: device %g, CPU %g", i+1, devLoss[i], cpuLoss[i])
					}
				}
				if res.Step != 4 {
					t.Fatalf("ended at step %d", res.Step)
				}
				if rc.name == "default" {
					// The step's graph captured and replayed (cuda.GraphEnv): the
					// same bits in the emulation, float32 rounding on a GPU.
					graphs = true
					gDir := t.TempDir()
					dg := rc.cfg(gDir)
					dg.Device = "cuda"
					if _, err := Run(context.Background(), dg); err != nil {
						t.Fatal(err)
					}
					graphs = false
					c := final(t, gDir)
					same := reflect.DeepEqual(c.Weights, b.Weights) && reflect.DeepEqual(c.EMA, b.EMA) && reflect.DeepEqual(c.Guide, b.Guide)
					switch {
					case same:
					case bk.Name == "emu": // the same calls replayed
						t.Fatal("the run with the step's graph replayed differs from the run of its steps one by one")
					default: // cuBLAS may choose other algorithms under capture
						t.Log("with the step's graph: not the same bits as its steps one by one; within float32 rounding:")
						closeTo(t, "weights with graphs", b.Weights, c.Weights)
						closeTo(t, "EMA with graphs", b.EMA, c.EMA)
					}
				}
				// The device's checkpoint continues on the CPU, saying the path changed.
				var log bytes.Buffer
				d.Steps, d.Device, d.Log = 6, "cpu", &log
				if _, err := Run(context.Background(), d); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(log.String(), "was computed on the "+deviceArith+" arithmetic path") {
					t.Fatalf("no note of the path change: %q", log.String())
				}
				// And back on the device, saying so again (the note was once
				// decided before the device was: a CPU checkpoint resumed
				// there had none).
				log.Reset()
				d.Steps, d.Device = 7, "cuda"
				if _, err := Run(context.Background(), d); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(log.String(), "arithmetic path and this run computes on "+deviceArith) {
					t.Fatalf("no note of the path change back to the device: %q", log.String())
				}
			})
		}
	}
}

// TestDeviceResumeIsExact: on the device, with and without CUDA graphs, 6
// steps in one go and 3 steps then a resume to 6 end with the same bits —
// weights, EMA, Adam's moments, the RNG. With graphs every step is the
// replayed graph's, the resumed run's first step too, although a capture
// may round otherwise than the same calls one by one (in the emulation its
// products then accumulate in float32, cuda.EmuCaptureEnv=round, as cuBLAS
// may choose another algorithm under capture).
func TestDeviceResumeIsExact(t *testing.T) {
	t.Setenv(cuda.EmuCaptureEnv, "round")
	bs := deviceBackends(t, false)
	for _, bk := range bs {
		for _, graphs := range []bool{false, true} {
			t.Run(bk.Name+"/graphs="+strconv.FormatBool(graphs), func(t *testing.T) {
				openDevice = func(name string, log io.Writer) (*cuda.Device, error) {
					d, err := bk.Open()
					if d != nil {
						d.Graphs, d.GraphsAsked = graphs, graphs
					}
					return d, err
				}
				var log bytes.Buffer
				sa, sb := inOneGoAndResumed(t, t.TempDir(), func(c *Config) { c.Device, c.Log = "cuda", &log })
				if sa.Step != 6 || sb.Step != 6 || !onDevice(sa.Arith) || sa.Arith != sb.Arith {
					t.Fatalf("steps %d %d, paths %q %q", sa.Step, sb.Step, sa.Arith, sb.Arith)
				}
				if strings.Contains(log.String(), "arithmetic path") { // a resume on the device, from the device
					t.Fatalf("a note of a path change that did not happen: %q", log.String())
				}
				if !sameTrainingState(sa, sb) {
					t.Fatal("the resumed run's state differs from the uninterrupted run's")
				}
			})
		}
	}
}

// TestTrainClassifierOnDevice: the noise-conditional classifier trains on
// the device (its graph with the softmax cross-entropy kernel, Adam and the
// EMA there) to the CPU run's weights, EMA and step losses within float32
// rounding; with and without CUDA graphs, 3 steps and a resume to 6 end
// with the bits of 6 in one go; its checkpoint resumes on the CPU.
func TestTrainClassifierOnDevice(t *testing.T) {
	t.Setenv(cuda.EmuCaptureEnv, "round")
	// Base 16: two channels per GroupNorm group (as TestTrainOnDevice's).
	config := func(dir string) Config {
		c := classifierConfig(dir)
		c.Model.Base = 16
		return c
	}
	bs := deviceBackends(t, false)
	for _, bk := range bs {
		for _, graphs := range []bool{false, true} {
			t.Run(bk.Name+"/graphs="+strconv.FormatBool(graphs), func(t *testing.T) {
				openDevice = func(name string, log io.Writer) (*cuda.Device, error) {
					if name != "cuda" {
						return nil, nil
					}
					d, err := bk.Open()
					if d != nil {
						d.Graphs, d.GraphsAsked = graphs, graphs
					}
					return d, err
				}
				cpuDir, devDir := t.TempDir(), t.TempDir()
				if _, err := Run(context.Background(), config(cpuDir)); err != nil {
					t.Fatal(err)
				}
				d := config(devDir)
				d.Device = "cuda"
				var log bytes.Buffer
				d.Log = &log
				if _, err := Run(context.Background(), d); err != nil {
					t.Fatal(err)
				}
				a, b := final(t, cpuDir), final(t, devDir)
				if b.Arith != backendArith(t, bk) || !b.Model.IsClassifier() || b.Step != 6 {
					t.Fatalf("device run: path %q, classifier %v, step %d; log %q", b.Arith, b.Model.IsClassifier(), b.Step, log.String())
				}
				closeTo(t, "weights after 6 steps", a.Weights, b.Weights)
				closeTo(t, "EMA after 6 steps", a.EMA, b.EMA)
				cpuLoss, devLoss := lossColumnsOf(t, cpuDir), lossColumnsOf(t, devDir)
				for i := range cpuLoss {
					if math.Abs(devLoss[i]-cpuLoss[i]) > 1e-4*math.Abs(cpuLoss[i]) {
						t.Fatalf("step %d loss: device %g, CPU %g", i+1, devLoss[i], cpuLoss[i])
					}
				}
				// 3 steps, then a resume to 6: the same bits.
				r := config(t.TempDir())
				r.Device, r.Steps = "cuda", 3
				if _, err := Run(context.Background(), r); err != nil {
					t.Fatal(err)
				}
				r.Steps = 6
				if _, err := Run(context.Background(), r); err != nil {
					t.Fatal(err)
				}
				if c := final(t, r.CkptDir); !sameTrainingState(b, c) {
					t.Fatal("the resumed run's state differs from the uninterrupted run's")
				}
				// The device's checkpoint continues on the CPU.
				d.Steps, d.Device = 8, "cpu"
				if _, err := Run(context.Background(), d); err != nil {
					t.Fatal(err)
				}
				if c := final(t, devDir); c.Step != 8 || onDevice(c.Arith) {
					t.Fatalf("resumed on the CPU: step %d, path %q", c.Step, c.Arith)
				}
			})
		}
	}
}

// backendArith is the arithmetic path of bk's devices (cuda.Device.Arith).
func backendArith(t *testing.T, bk cuda.Backend) string {
	t.Helper()
	d, err := bk.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !onDevice(d.Arith) {
		t.Fatalf("%s: arithmetic path %q", bk.Name, d.Arith)
	}
	return d.Arith
}

// onDevice reports whether a checkpoint's arithmetic path is a device's.
func onDevice(arith string) bool { return strings.HasPrefix(arith, "cuda") }

// deviceBackends is the device backends a test of device runs takes
// (cuda.Backends: the emulation, with slow only under NCSN_SLOW=1, and the
// GPU), skipping it where there are none; openDevice, which the test
// replaces, is restored after it.
func deviceBackends(t *testing.T, slow bool) []cuda.Backend {
	t.Helper()
	if !cuda.Built {
		t.Skip("-device cuda needs a build with -tags gpu")
	}
	bs, missing := cuda.Backends(slow)
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

// closeTo fails t where two sets of weights differ by more than float32
// rounding (relative L2 per tensor 1e-4).
func closeTo(t *testing.T, what string, a, b model.Params) {
	t.Helper()
	for i := range a {
		var num, den float64
		for j, v := range a[i].Data {
			e := float64(b[i].Data[j] - v)
			num += e * e
			den += float64(v) * float64(v)
		}
		if rel := math.Sqrt(num / den); !(rel < 1e-4) {
			t.Errorf("%s, %s: device and CPU differ by %g (relative L2)", what, a[i].Name, rel)
		}
	}
}

// lossColumnsOf reads train.csv's mean loss per step.
func lossColumnsOf(t *testing.T, dir string) []float64 {
	t.Helper()
	var out []float64
	for _, row := range lossColumns(t, dir)[1:] { // after the header
		v, err := strconv.ParseFloat(row[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestResumeWithTF32IsNoted: a GPU run resumed with TF32 on (its bits are
// not the exact float32's) is told that its arithmetic path changed; the
// path was once "cuda+cublas" whatever the settings, and nothing was said.
func TestResumeWithTF32IsNoted(t *testing.T) {
	t.Setenv(cuda.TF32Env, "") // the first run exact
	fake := fakeBackend(t, deviceBackends(t, false))
	openDevice = func(name string, log io.Writer) (*cuda.Device, error) { return fake.Open() }
	c := tinyConfig(t.TempDir())
	c.Steps, c.Model.Base, c.Device = 2, 16, "cuda"
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	before := backendArith(t, fake) // cuda+cublas, or with NCSN_CUDNN's mode
	t.Setenv(cuda.TF32Env, "1")
	after := backendArith(t, fake) // +tf32, and TF32's default convolutions (+cudnn-graph) unless NCSN_CUDNN says
	if !strings.HasSuffix(after, "+tf32") || after == before {
		t.Fatalf("arithmetic paths %q, then with TF32 %q", before, after)
	}
	var log bytes.Buffer
	c.Steps, c.Log = 3, &log
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "was computed on the "+before+" arithmetic path and this run computes on "+after) {
		t.Fatalf("no note of the change to TF32: %q", log.String())
	}
	if s := final(t, c.CkptDir); s.Step != 3 || s.Arith != "mixed: "+before+", then "+after {
		t.Fatalf("step %d, path %q", s.Step, s.Arith)
	}
}

// TestTrainOutOfDeviceMemory: a GPU that runs out of memory at any point of
// a run's setup or its first steps (the fake GPU, failing every allocation
// after the first n, n swept until the run succeeds) gives the run an error
// that says so — never a panic (a failed setup once closed a nil
// objective) — and the run, resumed with the memory back, trains. Each run
// is a -fresh -wipe over an earlier run: one that fails before it starts
// (building its objective) leaves that run as it was (it was deleted
// first, then the network did not fit), and none fails after it started.
//
// About 80 s on 2 cores: it runs with NCSN_SLOW=1 (CI), where the fake
// GPU is among cuda.Backends.
func TestTrainOutOfDeviceMemory(t *testing.T) {
	fake := fakeBackend(t, deviceBackends(t, true))
	openDevice = func(name string, log io.Writer) (*cuda.Device, error) { return fake.Open() }
	t.Cleanup(func() { cuda.FailFakeGPUAllocsAfter(-1) })
	earlier := t.TempDir()
	c := tinyConfig(earlier)
	c.Steps, c.Model.Base, c.Device = 1, 16, "cuda"
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(earlier, checkpoint.FileName(1)), filepath.Join(earlier, "latest"), filepath.Join(earlier, csvName)}
	failed, kept := 0, 0
	for n := 0; ; n = n*3/2 + 1 {
		if n > 100000 {
			t.Fatal("the run never succeeded")
		}
		dir := t.TempDir()
		for _, f := range files {
			copyFile(t, f, filepath.Join(dir, filepath.Base(f)))
		}
		var log bytes.Buffer
		c := tinyConfig(dir)
		c.Steps, c.Model.Base, c.Device, c.Log = 2, 16, "cuda", &log
		c.Fresh, c.Wipe = true, true
		cuda.FailFakeGPUAllocsAfter(n)
		_, err := Run(context.Background(), c)
		cuda.FailFakeGPUAllocsAfter(-1)
		if err == nil {
			t.Logf("%d runs failed for want of memory, %d of them before they started; with %d allocations it trained", failed, kept, n)
			break
		}
		if !strings.Contains(err.Error(), "out of memory") {
			t.Fatalf("with %d allocations: %v", n, err)
		}
		failed++
		if !strings.Contains(log.String(), "-fresh -wipe: deleted") {
			kept++
			if s := final(t, dir); s.Step != 1 {
				t.Fatalf("out of memory at allocation %d before the run started: the earlier run is at step %d", n, s.Step)
			}
		}
		c.Fresh, c.Wipe, c.Log = false, false, nil
		if _, err := Run(context.Background(), c); err != nil {
			t.Fatalf("after running out of memory at allocation %d: %v", n, err)
		}
	}
	if failed < 3 {
		t.Fatalf("only %d runs met a full GPU", failed)
	}
	// The objective takes all its device memory before the run starts, so
	// no run ran out of it after deleting the earlier one (12 of 15 did
	// when the earlier run was deleted before the objective was built).
	if kept != failed {
		t.Fatalf("%d of the %d runs that ran out of memory had deleted the earlier run first", failed-kept, failed)
	}
}

// fakeBackend is the fake GPU among bs, or the test skipped where it is
// not there (cuda.Backends says why).
func fakeBackend(t *testing.T, bs []cuda.Backend) cuda.Backend {
	t.Helper()
	for _, b := range bs {
		if b.Name == "fakegpu" {
			return b
		}
	}
	t.Skip("no fake GPU")
	return cuda.Backend{}
}

// TestDeviceObjectiveSharesADevice: the training step on the device and a
// device scorer used from another goroutine on the same device both give
// what each gives alone (the objective took no turn: the scorer's calls
// went to a thread without the context while its Batch ran, or wrote over
// its kernel parameters).
func TestDeviceObjectiveSharesADevice(t *testing.T) {
	for _, b := range deviceBackends(t, true) {
		t.Run(b.Name, func(t *testing.T) {
			dev, err := b.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			cfg := model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4}
			r := rand.New(rand.NewPCG(3, 4))
			params, err := model.Init(cfg, r)
			if err != nil {
				t.Fatal(err)
			}
			const batch = 4
			x, z, mean, sig := benchBatch(r, batch, cfg.Dim())
			steps := func() (losses []float64, err error) {
				ema := params.Clone()
				m, v := make([][]float32, len(params)), make([][]float32, len(params))
				sizes := make([]int, len(params))
				for i, p := range params {
					m[i], v[i], sizes[i] = make([]float32, len(p.Data)), make([]float32, len(p.Data)), len(p.Data)
				}
				d, err := newDSMObjective(dev, cfg, params.Clone(), ema, m, v, batch)
				if err != nil {
					return nil, err
				}
				defer d.close()
				opt := optim.New(1e-3, sizes)
				for range 4 {
					loss, _, err := d.run(x, z, nil, mean, sig)
					if err != nil {
						return nil, err
					}
					if _, err := d.norm(); err != nil {
						return nil, err
					}
					opt.Begin()
					if err := d.update(opt, 1, 0.9); err != nil {
						return nil, err
					}
					losses = append(losses, loss)
				}
				return losses, nil
			}
			alone, err := steps()
			if err != nil {
				t.Fatal(err)
			}
			sc, err := model.NewDeviceScorer(dev, cfg, params, 3)
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			xs := make([]float64, 3*cfg.Dim())
			for i := range xs {
				xs[i] = 0.5
			}
			want := make([]float64, len(xs))
			if err := sc.Score(xs, 0.5, want); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			var got []float64
			var stepErr error
			go func() { defer close(done); got, stepErr = steps() }()
			dst := make([]float64, len(xs))
			for {
				select {
				case <-done:
					if stepErr != nil || !slices.Equal(got, alone) {
						t.Fatalf("the steps beside the scorer: losses %v, alone %v, %v", got, alone, stepErr)
					}
					return
				default:
				}
				if err := sc.Score(xs, 0.5, dst); err != nil || !slices.Equal(dst, want) {
					<-done
					t.Fatalf("the scorer during the steps: other scores, or %v", err)
				}
			}
		})
	}
}
