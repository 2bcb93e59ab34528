//go:build linux

package train

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ncsn-go/ncsn/internal/cuda"
)

// TestDataParallelOnDevice: data-parallel training with each rank on a
// device of its own (two in-process ranks on a machine of two GPUs: each
// takes the GPU of its index). The gradients come to the host for the
// all-reduce and their average goes back, so 2 ranks × 4 images follow 1
// rank × 8 on a device (the same losses to float32 rounding), and the
// same 2 ranks on the CPU (weights, EMA and losses to float32 rounding); a
// 2-rank run stopped and resumed ends with an uninterrupted one's bits.
// Ranks that disagree — one on a GPU, one on the CPU — are refused, on
// every rank, before anything is trained; a rank whose GPU fails to open
// under -device cuda fails with its own error and the other is told.
//
// In the emulation (NCSN_SLOW=1: about 10 s on 2 cores), on two fake GPUs
// with CUDA graphs (each capture forbids only its own thread's unsafe
// calls, not the other rank's: TestFakeGPUs), and on GPUs: two with CUDA
// graphs where there are two, else both ranks on one, kernel by kernel, as
// two devices of one context would meet in each other's captures (work on
// the legacy stream while a stream of the context captures invalidates
// the capture).
func TestDataParallelOnDevice(t *testing.T) {
	bs := deviceBackends(t, true)
	saved := deviceCount
	t.Cleanup(func() { deviceCount = saved })
	for _, bk := range bs {
		t.Run(bk.Name, func(t *testing.T) {
			gpus := 0
			if bk.Name == "fakegpu" {
				if err := cuda.SetFakeGPUs(2); err != nil {
					t.Fatal(err)
				}
				defer cuda.SetFakeGPUs(1)
			}
			if bk.Name == "gpu" {
				n, err := cuda.DeviceCount()
				if err != nil {
					t.Fatal(err)
				}
				if gpus = n; n < 2 {
					t.Log("one GPU: both ranks on it")
				}
			}
			deviceCount = func() (int, error) { return 2, nil }
			var mu sync.Mutex
			asked := map[string]int{}
			openDevice = func(name string, log io.Writer) (*cuda.Device, error) {
				mu.Lock()
				asked[name]++
				mu.Unlock()
				i, err := cuda.ParseDevice(name)
				if err != nil {
					return nil, nil // "cpu"
				}
				if bk.Name == "gpu" {
					d, err := cuda.OpenIndex(i % gpus)
					if d != nil {
						// Two GPUs: each its context, and graphs on; one: kernel by kernel.
						d.Graphs = gpus >= 2
						d.GraphsAsked = d.Graphs
					}
					return d, err
				}
				if bk.Name == "fakegpu" {
					d, err := cuda.OpenFakeGPU(i)
					if d != nil {
						d.Graphs, d.GraphsAsked = true, true // a capture that fails fails the test
					}
					return d, err
				}
				return bk.Open()
			}
			dir := t.TempDir()
			cfg := func(d string, steps int) Config {
				// Base 16: two channels per GroupNorm group (TestTrainOnDevice).
				c := tinyConfig(filepath.Join(dir, d))
				c.Model.Base, c.Batch, c.Steps, c.SaveEvery, c.MaxGradNorm = 16, 8, steps, 100, 0.5
				c.Device = "cuda"
				return c
			}
			var log bytes.Buffer
			two := cfg("two", 4)
			two.Log = &log
			runRanks(t, two, 2)
			if asked["cuda:0"] != 1 || asked["cuda:1"] != 1 || !strings.Contains(log.String(), "data-parallel on GPUs") {
				t.Fatalf("devices asked for: %v; log:\n%s", asked, log.String())
			}
			runRanks(t, cfg("one", 4), 1)
			cpu := cfg("cpu", 4)
			cpu.Device = "cpu"
			runRanks(t, cpu, 2)
			runRanks(t, cfg("resumed", 2), 2)
			runRanks(t, cfg("resumed", 4), 2)

			a, b, c := final(t, filepath.Join(dir, "two")), final(t, filepath.Join(dir, "cpu")), final(t, filepath.Join(dir, "resumed"))
			if !onDevice(a.Arith) || onDevice(b.Arith) || a.Step != 4 {
				t.Fatalf("paths %q and %q, step %d", a.Arith, b.Arith, a.Step)
			}
			closeTo(t, "2 ranks' weights, device against CPU", b.Weights, a.Weights)
			closeTo(t, "2 ranks' EMA, device against CPU", b.EMA, a.EMA)
			twoLoss := lossColumnsOf(t, filepath.Join(dir, "two"))
			for name, other := range map[string][]float64{
				"1 rank × 8 on a device": lossColumnsOf(t, filepath.Join(dir, "one")),
				"2 ranks on the CPU":     lossColumnsOf(t, filepath.Join(dir, "cpu")),
			} {
				if len(other) != len(twoLoss) {
					t.Fatalf("%s: %d steps logged, 2 ranks on devices %d", name, len(other), len(twoLoss))
				}
				for i := range other {
					if math.Abs(twoLoss[i]-other[i]) > 1e-4*math.Abs(other[i]) {
						t.Errorf("step %d loss: 2 ranks on devices %g, %s %g", i+1, twoLoss[i], name, other[i])
					}
				}
			}
			if !reflect.DeepEqual(a.Weights, c.Weights) || !reflect.DeepEqual(a.EMA, c.EMA) || !sameTrainingState(a, c) {
				t.Fatal("the resumed 2-rank run differs from the uninterrupted one")
			}

			// Rank 1's GPU cannot be opened. Without -device it falls back to
			// the CPU, and the mixed run is refused on both ranks; with
			// -device cuda it fails, and rank 0 is told rather than left
			// waiting for it.
			openDevice = func(name string, log io.Writer) (*cuda.Device, error) {
				if name != "cuda:0" {
					return nil, fmt.Errorf("-device %s: %w: out of memory", name, cuda.ErrNoDevice)
				}
				d, err := bk.Open()
				if d != nil && bk.Name == "gpu" {
					d.Graphs = false
				}
				return d, err
			}
			mixed := cfg("mixed", 4)
			mixed.Device = ""
			var mlog bytes.Buffer
			mixed.Log = &mlog
			for i, err := range rankErrors(mixed, 2) {
				if err == nil || !strings.Contains(err.Error(), "1 of the 2 MPI ranks found a GPU") {
					t.Errorf("rank %d of a mixed run: %v", i, err)
				}
			}
			failed := cfg("failed", 4)
			for i, err := range rankErrors(failed, 2) {
				want := []string{"1 of the 2 MPI ranks could not open their device", "-device cuda:1: cuda: no GPU: out of memory"}[i]
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("rank %d when rank 1's GPU fails: %v, want %q", i, err, want)
				}
			}
		})
	}
}
