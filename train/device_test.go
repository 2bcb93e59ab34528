//go:build linux

package train

import (
	"bytes"
	"context"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/internal/cuda"
)

// TestTrainOnDevice: a run whose graph, Adam and EMA run on the device
// kernels (their CPU emulation, the GPU where there is one), with gradients clipped by the norm
// the device computes, follows the CPU run step for step — the same losses
// and weights to float32 rounding — records the device's arithmetic path,
// and its checkpoint resumes on the CPU.
//
// About 40 s in the emulation on 2 cores: there it runs with NCSN_SLOW=1 (CI).
func TestTrainOnDevice(t *testing.T) {
	if !cuda.Built {
		t.Skip("-device cuda needs a build with -tags gpu")
	}
	bs, missing := cuda.Backends(true)
	for _, m := range missing {
		t.Log("not run: " + m)
	}
	if len(bs) == 0 {
		t.Skip("no device backend")
	}
	saved := openDevice
	defer func() { openDevice = saved }()
	for _, b := range bs {
		t.Run(b.Name, func(t *testing.T) {
			openDevice = func(name string, log io.Writer) (*cuda.Device, error) {
				if name != "cuda" {
					return nil, nil
				}
				return b.Open()
			}
			// Base 16: two channels per GroupNorm group, so that no gradient is
			// zero in exact arithmetic (with one, the σ embedding's cancel, and
			// Adam would turn their float32 noise into full steps).
			cpuDir, devDir := t.TempDir(), t.TempDir()
			c := tinyConfig(cpuDir)
			c.Steps, c.Model.Base, c.MaxGradNorm = 4, 16, 0.5 // clipping: the norm computed on the device
			if _, err := Run(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			d := tinyConfig(devDir)
			d.Steps, d.Device, d.Model.Base, d.MaxGradNorm = 4, "cuda", 16, 0.5
			res, err := Run(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			a, b := final(t, cpuDir), final(t, devDir)
			if b.Arith != deviceArith {
				t.Fatalf("device run recorded arithmetic path %q", b.Arith)
			}
			for i := range a.Weights {
				var num, den float64
				for j, v := range a.Weights[i].Data {
					e := float64(b.Weights[i].Data[j] - v)
					num += e * e
					den += float64(v) * float64(v)
				}
				if rel := math.Sqrt(num / den); !(rel < 1e-4) {
					t.Errorf("%s after 4 steps: device and CPU differ by %g (relative L2)", a.Weights[i].Name, rel)
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
			// The device's checkpoint continues on the CPU, saying the path changed.
			var log bytes.Buffer
			d.Steps, d.Device, d.Log = 6, "cpu", &log
			if _, err := Run(context.Background(), d); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(log.String(), "was computed on the "+deviceArith+" arithmetic path") {
				t.Fatalf("no note of the path change: %q", log.String())
			}
		})
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
