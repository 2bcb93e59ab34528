package cuda

import (
	"fmt"
	"os"
)

// GraphEnv names the variable that turns on CUDA graphs: with
// NCSN_CUDA_GRAPH=1 a graph run on the device (nn.DeviceRun) records its
// launches once and replays them as one CUDA graph each run after, instead
// of one driver call per kernel (the small MNIST network's step is made of
// about a thousand short kernels). Measured on an H200 (2026-11-27): the
// MNIST training step 1.16–1.5× as fast, the ncsnv2 one 1.02–1.05×. Off by default:
// the first run of a graph goes kernel by kernel, and under capture cuBLAS
// may choose other algorithms (it did not for the test network there), so a
// resumed run could differ from an uninterrupted one in float32 rounding.
const GraphEnv = "NCSN_CUDA_GRAPH"

// graphsFromEnv reads GraphEnv: "" or "0" off, "1" on.
func graphsFromEnv() (bool, error) {
	switch v := os.Getenv(GraphEnv); v {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	default:
		return false, fmt.Errorf("cuda: %s=%q: want 1 or 0", GraphEnv, v)
	}
}

// replayer is a backend's recorded work.
type replayer interface {
	replay() error
	destroy()
}

// Graph is work recorded from a device — kernel launches, matrix products,
// copies within device memory, cuDNN's convolutions — that Launch runs
// again on the same buffers: a CUDA graph on a GPU, the recorded calls in
// the CPU emulation. Kernel parameters are recorded by value: a graph reads
// its buffers' current contents, never the host's values of the capture.
type Graph struct {
	d   *Device
	r   replayer
	gen int
}

// Capture records the device work f does into a Graph without running it.
// f may only queue work: an upload, a download, an allocation or a wait
// inside it is an error, and so is a capture inside a capture.
func (d *Device) Capture(f func() error) (*Graph, error) {
	r, err := d.b.capture(f)
	if err != nil {
		return nil, err
	}
	return &Graph{d: d, r: r, gen: d.gen}, nil
}

// Launch runs the recorded work once more, after the work queued before it
// and before the work queued after it.
func (g *Graph) Launch() error {
	if g.r == nil {
		return fmt.Errorf("cuda: launching a closed graph")
	}
	return g.r.replay()
}

// Stale reports whether the device's shared workspaces (cuDNN's) were
// reallocated since the capture: the graph would use freed memory and must
// be captured again.
func (g *Graph) Stale() bool { return g.gen != g.d.gen }

// Close releases the graph.
func (g *Graph) Close() {
	if g != nil && g.r != nil {
		g.r.destroy()
		g.r = nil
	}
}
