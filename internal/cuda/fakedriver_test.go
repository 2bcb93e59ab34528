//go:build linux

package cuda

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unsafe"
)

// openFake is a fresh fake GPU, or the test skipped saying why there is
// none (no g++ or no NVRTC; NCSN_REQUIRE_NVRTC=1 makes that a failure).
func openFake(t *testing.T) (*Device, *driverBackend) {
	t.Helper()
	d, err := OpenFakeGPU(0)
	if err != nil {
		if requireNVRTC() {
			t.Fatal(err)
		}
		t.Skip("no fake GPU:", err)
	}
	t.Cleanup(d.Close)
	return d, d.b.(*driverBackend)
}

// TestFakeGPUAfterClose: a device's calls after Close are errors (Alloc
// panicked: "send on closed channel").
func TestFakeGPUAfterClose(t *testing.T) {
	d, _ := openFake(t)
	b, err := d.Alloc(4)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := d.Alloc(4); !errors.Is(err, errClosed) {
		t.Fatalf("Alloc after Close: %v", err)
	}
	if err := d.Upload(b, make([]float32, 4)); !errors.Is(err, errClosed) {
		t.Fatalf("Upload after Close: %v", err)
	}
	d.Free(b) // nothing to free: the context took it
}

// runsSiLU runs a kernel on d and checks one value it gives.
func runsSiLU(t *testing.T, d *Device) {
	t.Helper()
	x := upload(t, d, []float32{-2, -1, 0, 1, 2, 3})
	y := upload(t, d, make([]float32, 6))
	if err := d.SiLU(y, x); err != nil {
		t.Fatal(err)
	}
	if got := download(t, d, y)[4]; got < 1.76 || got > 1.77 {
		t.Fatalf("silu(2) = %v", got)
	}
}

// TestFakeGPURuns: the device's driver code runs a kernel, a product and
// cuDNN's convolutions on the fake GPU, and Close leaves the context
// holding nothing it made (the graphs go with the context).
func TestFakeGPURuns(t *testing.T) {
	t.Setenv(CudnnEnv, "") // the default's algorithms: Find's, in exact float32
	t.Setenv(TF32Env, "")
	d, _ := openFake(t)
	if !strings.Contains(d.Describe, "fake GPU 0") || !strings.Contains(d.Describe, "cuDNN 9.1.0") {
		t.Fatalf("description %q", d.Describe)
	}
	if d.UsesIm2col() {
		t.Fatal("the fake GPU's cuDNN was not taken")
	}
	runsSiLU(t, d)
	g := Conv3{C: 2, O: 3, B: 2, H: 4, W: 4, Stride: 1}
	in := upload(t, d, make([]float32, 2*2*16))
	w := upload(t, d, make([]float32, 3*2*9))
	out := upload(t, d, make([]float32, 3*2*16))
	bias := upload(t, d, make([]float32, 3))
	if err := d.PlanConv3(g); err != nil { // workspaces are not allocated while capturing
		t.Fatal(err)
	}
	gr, err := d.Capture(func() error { return d.Conv3Forward(g, out, in, w, bias) })
	if err != nil {
		t.Fatal(err)
	}
	if err := gr.Launch(); err != nil {
		t.Fatal(err)
	}
	plans := d.ConvPlans()
	if len(plans) != 1 || !strings.Contains(plans[0], "measured") {
		t.Fatalf("plans %q", plans)
	}
	d.Close()
	if r := FakeGPUReport(); !strings.HasPrefix(r, "allocations=0 host=0 modules=0 streams=0 ") || !strings.HasSuffix(r, " handles=0") {
		t.Fatalf("Close left %s", r)
	}
}

// TestFakeGPUCatches: the fake GPU refuses what a driver refuses, so that
// the tests of the device code on it would see the mistake.
func TestFakeGPUCatches(t *testing.T) {
	for _, c := range []struct {
		name, want string
		run        func(d *Device, b *driverBackend) error
	}{
		{"a call from a thread without the context", "invalid device context", func(d *Device, b *driverBackend) error {
			var p uint64
			done := make(chan int32)
			go func() { done <- b.l.memAlloc(&p, 64) }() // a goroutine not on the device's thread
			return b.l.check("cuMemAlloc", <-done)
		}},
		{"a kernel writing past its buffer", "an illegal memory access was encountered (fake driver: ncsn_silu wrote outside", func(d *Device, b *driverBackend) error {
			x, y := upload(t, d, make([]float32, 16)), upload(t, d, make([]float32, 10))
			return d.launch1D("ncsn_silu", 16, y, x, 16)
		}},
		{"the error stays (a broken context)", "an illegal memory access", func(d *Device, b *driverBackend) error {
			x, y := upload(t, d, make([]float32, 8)), upload(t, d, make([]float32, 4))
			if err := d.launch1D("ncsn_silu", 8, y, x, 8); err == nil {
				t.Error("the write past the buffer was not seen")
			}
			_, err := d.Alloc(4)
			return err
		}},
		{"a pointer outside every allocation", "are not inside an allocation", func(d *Device, b *driverBackend) error {
			x := upload(t, d, make([]float32, 4))
			var p DevPtr = x.Ptr + 1<<40 // nowhere
			return d.launch1D("ncsn_silu", 4, p, x, 4)
		}},
		{"an allocation while capturing", "failed due to a previous error during capture (fake driver: cuMemAlloc while a stream was captured)", func(d *Device, b *driverBackend) error {
			_, err := b.capture(func() error {
				var p uint64
				if r := b.l.memAlloc(&p, 64); r != 900 {
					t.Errorf("cuMemAlloc while capturing: %d", r)
				}
				return nil
			})
			return err
		}},
		{"a launch on the legacy stream while capturing", "legacy stream", func(d *Device, b *driverBackend) error {
			x := upload(t, d, make([]float32, 4))
			_, err := b.capture(func() error {
				b.stream = 0 // as if a launch went around the capture's stream
				err := d.SiLU(x, x)
				b.stream = b.capStream
				return err
			})
			return err
		}},
		{"cuBLAS with a leading dimension too small", "CUBLAS_STATUS_INVALID_VALUE", func(d *Device, b *driverBackend) error {
			m := upload(t, d, make([]float32, 16))
			return b.do(func() error {
				ab := unsafe.Add(b.args, argBytes)
				if r := b.blas.sgemm(b.handle, 0, 0, 4, 4, 4, ab, uint64(m.Ptr), 3, uint64(m.Ptr), 4, ab, uint64(m.Ptr), 4); r != 0 {
					return fmt.Errorf("cublasSgemm: %s", cublasStatus(r))
				}
				return nil
			})
		}},
		{"a kernel kernels.cu lacks", "no kernel ncsn_no_such_kernel in kernels.cu", func(d *Device, b *driverBackend) error {
			return d.launch1D("ncsn_no_such_kernel", 4, 4)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, b := openFake(t)
			err := c.run(d, b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

func requireNVRTC() bool { return os.Getenv("NCSN_REQUIRE_NVRTC") == "1" }

// TestFakeGPUs: with two fake GPUs, cuda:1 is the second (its own context
// and memory), and a kernel there given GPU 0's memory is refused.
func TestFakeGPUs(t *testing.T) {
	d0, _ := openFake(t)
	d0.Close() // the count changes only while no context is held
	if err := SetFakeGPUs(2); err != nil {
		t.Fatal(err)
	}
	defer SetFakeGPUs(1)
	if n, err := fakeDeviceCount(); err != nil || n != 2 {
		t.Fatalf("%d GPUs, %v", n, err)
	}
	a, err := OpenFakeGPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenFakeGPU(1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !strings.Contains(b.Describe, "fake GPU 1") || !strings.Contains(b.Describe, "cuda:1 of 2") {
		t.Fatalf("GPU 1 is %q", b.Describe)
	}
	// A capture on one GPU forbids nothing to the other's worker thread (in
	// global capture mode, every thread's allocations failed while any
	// capture ran); its own thread's allocation still fails.
	var errA, errB error
	gr, err := a.Capture(func() error {
		var buf Buffer
		if buf, errB = b.Alloc(4); errB == nil {
			b.Free(buf)
		}
		if buf, errA = a.Alloc(4); errA == nil {
			a.Free(buf)
		}
		return nil
	})
	if err == nil {
		gr.Close()
	}
	if errB != nil || errA == nil {
		t.Fatalf("during GPU 0's capture: GPU 1's allocation %v, GPU 0's %v", errB, errA)
	}
	x := upload(t, a, []float32{1, 2, 3, 4})
	y := upload(t, b, make([]float32, 4))
	if err := b.SiLU(y, x); err == nil || !strings.Contains(err.Error(), "is memory of GPU 0, used on GPU 1") {
		t.Fatalf("GPU 0's memory on GPU 1: %v", err)
	}
	if err := SetFakeGPUs(3); err == nil {
		t.Fatal("the count changed while contexts were held")
	}
	if _, err := OpenFakeGPU(2); err == nil {
		t.Fatal("a third GPU of two opened")
	}
}

// TestFakeGPUOpenOutOfMemory: opening a GPU that runs out of memory at any
// of its steps (context, module, pinned block, cuBLAS, cuDNN) fails with an
// error that says so, or, where only cuDNN's handle is refused, opens on
// im2col; either way a failed open leaves the context unreferenced and
// nothing made (it once kept the context, module, pinned block and cuBLAS
// handle for the process's life).
func TestFakeGPUOpenOutOfMemory(t *testing.T) {
	d, _ := openFake(t)
	d.Close()
	defer FailFakeGPUAllocsAfter(-1)
	failed, im2col := 0, 0
	for n := 0; n < 8; n++ {
		FailFakeGPUAllocsAfter(n)
		d, err := OpenFakeGPU(0)
		FailFakeGPUAllocsAfter(-1)
		if err == nil {
			if d.UsesIm2col() {
				im2col++
			}
			d.Close()
		} else {
			failed++
			if !strings.Contains(err.Error(), "out of memory") {
				t.Errorf("open with %d allocations: %v", n, err)
			}
		}
		if s := FakeGPUState(); s != "GPU 0: refs=0 allocations=0 host=0 modules=0 streams=0 handles=0" {
			t.Errorf("open with %d allocations (%v) left %s", n, err, s)
		}
	}
	if failed < 4 || im2col != 1 {
		t.Fatalf("%d opens failed, %d fell back to im2col", failed, im2col)
	}
}

// TestFakeGPUKeepsChoices: the cuDNN algorithms Find chose are kept and
// taken by the next device of that GPU — also one that cuDNN reported
// with math type DEFAULT, kept as FMA (a choice kept with 0 was refused by
// the next run, which measured again).
func TestFakeGPUKeepsChoices(t *testing.T) {
	t.Setenv(CudnnEnv, "") // Find's choices, which are kept
	t.Setenv(TF32Env, "")
	fakeAlgoDir = t.TempDir()
	defer func() { fakeAlgoDir = "" }()
	g := Conv3{C: 2, O: 3, B: 2, H: 4, W: 4, Stride: 1}
	var plans []string
	for range 2 {
		d, _ := openFake(t)
		if err := d.PlanConv3(g); err != nil {
			t.Fatal(err)
		}
		plans = append(plans, d.ConvPlans()...)
		d.Close()
	}
	if len(plans) != 2 || !strings.Contains(plans[0], "measured") || !strings.HasSuffix(plans[1], "(kept from an earlier run)") {
		t.Fatalf("plans %q", plans)
	}
	if !strings.Contains(plans[1], "forward algo 2 (math 3") {
		t.Fatalf("the kept forward choice is not Find's fastest FMA algorithm: %q", plans[1])
	}
	// A kept choice this build refuses (math type 0, as builds before
	// 28904f0 wrote it) is measured again and replaced in the file: it
	// stayed, and every later run failed ("taking another run's kept
	// choice ... is not one for exact float32").
	files, _ := filepath.Glob(filepath.Join(fakeAlgoDir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	c := loadAlgoCache(files[0])
	bad := c.choices[conv3CacheKey(g)]
	bad.Forward[1] = 0
	c.choices[conv3CacheKey(g)] = bad
	b, _ := json.Marshal(c.choices)
	if err := os.WriteFile(files[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	plans = nil
	for range 2 {
		d, _ := openFake(t)
		if err := d.PlanConv3(g); err != nil {
			t.Fatal(err)
		}
		plans = append(plans, d.ConvPlans()...)
		d.Close()
	}
	if len(plans) != 2 || !strings.Contains(plans[0], "the kept choice was refused") || !strings.HasSuffix(plans[1], "(kept from an earlier run)") {
		t.Fatalf("after a refused kept choice: plans %q", plans)
	}
	if got, _ := loadAlgoCache(files[0]).get(g); got.Forward[1] != 3 {
		t.Fatalf("the file holds %v", got)
	}
}

// TestFakeGPUGraphTune: with NCSN_CUDNN_GRAPH_TUNE=3 each direction's
// graph-API plan is the fastest of the heuristics' first three usable
// configurations, each timed and named in the description; the
// convolutions then give the float64 references' values; the next device
// of the GPU takes the kept choices without timing, and Close destroys
// the candidates' plans and descriptors. A bad count, or layout, is
// refused.
func TestFakeGPUGraphTune(t *testing.T) {
	t.Setenv(CudnnEnv, "graph")
	t.Setenv(TF32Env, "1") // the tensor-core engines too: three usable per direction
	t.Setenv(GraphTuneEnv, "3")
	fakeAlgoDir = t.TempDir()
	defer func() { fakeAlgoDir = "" }()
	d, _ := openFake(t)
	d.Close()
	before := fakeDnnDescriptors()
	g := Conv3{C: 2, O: 3, B: 2, H: 4, W: 4, Stride: 1}
	r := rand.New(rand.NewPCG(7, 8))
	xs, ws, dys := randn(r, 2*2*16, 1), randn(r, 3*2*9, 1), randn(r, 3*2*16, 1)
	wantY, wantDx := naiveConv3(2, 3, 2, 4, 4, 1, xs, ws, dys)
	wantDw := naiveConv3W(2, 3, 2, 4, 4, 1, xs, dys)
	engine := regexp.MustCompile(`(forward|data|filter): graph API engine (\d+)`)
	var plans []string
	var chosen [][][]string
	for range 2 {
		d, _ := openFake(t)
		x, w, dy, bias := upload(t, d, xs), upload(t, d, ws), upload(t, d, dys), upload(t, d, make([]float32, 3))
		y, dx, dw, db, col := alloc(t, d, len(dys)), alloc(t, d, len(xs)), alloc(t, d, len(ws)), alloc(t, d, 3), alloc(t, d, g.ColSize())
		g.Col = col
		if err := d.Conv3Forward(g, y, x, w, bias); err != nil {
			t.Fatal(err)
		}
		if err := d.Conv3Backward(g, dx, dw, db, x, w, dy, col); err != nil {
			t.Fatal(err)
		}
		near(t, "y", download(t, d, y), wantY, 1e-5)
		near(t, "∂x", download(t, d, dx), wantDx, 1e-5)
		near(t, "∂w", download(t, d, dw), wantDw, 1e-5)
		p := d.ConvPlans()
		if len(p) != 1 {
			t.Fatalf("plans %q", p)
		}
		plans = append(plans, p[0])
		chosen = append(chosen, engine.FindAllStringSubmatch(p[0], -1))
		d.Close()
	}
	t.Logf("tuned: %s\nkept: %s", plans[0], plans[1])
	if n := strings.Count(plans[0], ", the fastest of e"); n != 3 || strings.Count(plans[0], " ms") != 9 {
		t.Fatalf("the first device did not time three candidates per direction: %q", plans[0])
	}
	if n := strings.Count(plans[1], "(tuned by an earlier run)"); n != 3 || strings.Contains(plans[1], " ms") {
		t.Fatalf("the second device did not take the kept choices: %q", plans[1])
	}
	if !reflect.DeepEqual(chosen[0], chosen[1]) || len(chosen[0]) != 3 {
		t.Fatalf("engines %v, then %v", chosen[0], chosen[1])
	}
	// A candidate whose first run fails is passed over, and said to be;
	// where every one fails, the direction keeps the legacy algorithm.
	for i, fails := range []int64{1, 3} {
		d, _ := openFake(t)
		gs := Conv3{C: 2, O: 3, B: 1 + i, H: 4, W: 4, Stride: 2} // none kept: tuned now
		fakeFailGraphRuns(fails)
		err := d.PlanConv3(gs)
		fakeFailGraphRuns(0)
		if err != nil {
			t.Fatal(err)
		}
		p := d.ConvPlans()
		want := []string{"forward: graph API engine", "(failed: e100 A0: cuda: cudnnBackendExecute: CUDNN_STATUS_EXECUTION_FAILED"}
		if fails == 3 {
			want = []string{"forward: legacy (no graph API candidate ran: e100 A0: ", "; e107 A7: "}
		}
		if len(p) != 1 || !strings.Contains(p[0], want[0]) || !strings.Contains(p[0], want[1]) || strings.Count(p[0], ", the fastest of e") != 3-i {
			t.Fatalf("%d failed runs: plans %q", fails, p)
		}
		d.Close()
	}
	if after := fakeDnnDescriptors(); after != before {
		t.Fatalf("%d cuDNN descriptors before, %d after Close", before, after)
	}
	t.Setenv(GraphTuneEnv, "many")
	if _, err := OpenFakeGPU(0); err == nil || !strings.Contains(err.Error(), GraphTuneEnv+`="many"`) {
		t.Fatalf("a bad count: %v", err)
	}
	t.Setenv(GraphTuneEnv, "")
	t.Setenv(CudnnEnv+"_GRAPH_LAYOUT", "NCHW") // a layout it does not know was taken as ours
	if _, err := OpenFakeGPU(0); err == nil || !strings.Contains(err.Error(), `_GRAPH_LAYOUT="NCHW": want ours`) {
		t.Fatalf("a bad layout: %v", err)
	}
}

// TestFakeGPUGraphTuneTakesFirst: a device that tunes a geometry while
// another run does, and finds that run's choices in the cache when it
// keeps its own, takes that run's plans (it kept its own, and a resume
// from either run computed other bits than the run had): here the other
// run's choices are configurations this device never timed.
func TestFakeGPUGraphTuneTakesFirst(t *testing.T) {
	t.Setenv(CudnnEnv, "graph")
	t.Setenv(TF32Env, "1") // three usable configurations per direction
	t.Setenv(GraphTuneEnv, "3")
	fakeAlgoDir = t.TempDir()
	defer func() { fakeAlgoDir = "" }()
	g := Conv3{C: 2, O: 3, B: 2, H: 4, W: 4, Stride: 1}
	d, _ := openFake(t)
	if err := d.PlanConv3(g); err != nil {
		t.Fatal(err)
	}
	plan := d.ConvPlans()[0]
	d.Close()
	// Each direction's last timed candidate: "…, the fastest of e67 A0
	// 0.010 ms, e71 A1 0.012 ms, e68 A2 0.011 ms".
	timed := regexp.MustCompile(`(forward|data|filter): graph API engine \d+ [^;]*?the fastest of (?:e\d+ \w+ [\d.]+ ms, )*e(\d+) (\w+) [\d.]+ ms`)
	m := timed.FindAllStringSubmatch(plan, -1)
	if len(m) != 3 {
		t.Fatalf("plan %q", plan)
	}
	var last [3]string
	for i, mm := range m {
		last[i] = "ours:" + mm[3]
	}
	files, _ := filepath.Glob(filepath.Join(fakeAlgoDir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	os.Remove(files[0])
	t.Setenv(GraphTuneEnv, "2") // the same cache file; the first two timed
	d, _ = openFake(t)          // its cache read now: empty
	other := &algoCache{path: files[0], choices: map[string]Conv3Choice{}}
	if _, err := other.put(g, Conv3Choice{Graph: &last}, nil); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 10))
	xs, ws, dys := randn(r, 2*2*16, 1), randn(r, 3*2*9, 1), randn(r, 3*2*16, 1)
	wantY, wantDx := naiveConv3(2, 3, 2, 4, 4, 1, xs, ws, dys)
	wantDw := naiveConv3W(2, 3, 2, 4, 4, 1, xs, dys)
	x, w, dy, bias := upload(t, d, xs), upload(t, d, ws), upload(t, d, dys), upload(t, d, make([]float32, 3))
	y, dx, dw, db, col := alloc(t, d, len(dys)), alloc(t, d, len(xs)), alloc(t, d, len(ws)), alloc(t, d, 3), alloc(t, d, g.ColSize())
	g.Col = col
	if err := d.Conv3Forward(g, y, x, w, bias); err != nil {
		t.Fatal(err)
	}
	if err := d.Conv3Backward(g, dx, dw, db, x, w, dy, col); err != nil {
		t.Fatal(err)
	}
	near(t, "y", download(t, d, y), wantY, 1e-5)
	near(t, "∂x", download(t, d, dx), wantDx, 1e-5)
	near(t, "∂w", download(t, d, dw), wantDw, 1e-5)
	plan = d.ConvPlans()[0]
	t.Logf("plan %s", plan)
	if n := strings.Count(plan, "instead, as another run tuned it at the same time"); n != 3 {
		t.Fatalf("the other run's choices %v were not taken: %q", last, plan)
	}
	for i, name := range []string{"forward", "data", "filter"} {
		if !strings.Contains(plan, name+": graph API engine "+m[i][2]+" ") {
			t.Fatalf("%s: not engine %s: %q", name, m[i][2], plan)
		}
	}
	if got, _ := loadAlgoCache(files[0]).get(g); got.Graph == nil || *got.Graph != last {
		t.Fatalf("the file holds %v, want the other run's %v", got.Graph, last)
	}
}

// TestFakeGPUGraphAPI: with NCSN_CUDNN=graph the convolutions run on the
// fake cuDNN's graph API, also replayed in a CUDA graph, and Close
// destroys every descriptor, plan and variant pack; the fake refuses the
// misuses of the backend API that cuDNN refuses, so that the tests of
// cudnn_graph.go on it would see them.
func TestFakeGPUGraphAPI(t *testing.T) {
	t.Setenv(CudnnEnv, "graph")
	t.Setenv(GraphTuneEnv, "") // the first configurations, which it names
	d, b := openFake(t)
	d.Close()
	before := fakeDnnDescriptors()
	d, b = openFake(t)
	g := Conv3{C: 2, O: 3, B: 2, H: 4, W: 4, Stride: 1}
	r := rand.New(rand.NewPCG(5, 6))
	xs, ws, dys := randn(r, 2*2*16, 1), randn(r, 3*2*9, 1), randn(r, 3*2*16, 1)
	wantY, wantDx := naiveConv3(2, 3, 2, 4, 4, 1, xs, ws, dys)
	g.Col = alloc(t, d, g.ColSize())
	x, w, dy, bias := upload(t, d, xs), upload(t, d, ws), upload(t, d, dys), upload(t, d, make([]float32, 3))
	y, dx, dw, db, col := alloc(t, d, len(dys)), alloc(t, d, len(xs)), alloc(t, d, len(ws)), alloc(t, d, 3), alloc(t, d, g.ColSize())
	if err := d.PlanConv3(g); err != nil {
		t.Fatal(err)
	}
	if p := d.ConvPlans(); len(p) != 1 || !strings.Contains(p[0], "forward: graph API engine 106") || !strings.Contains(p[0], "filter: graph API engine 307 (0 B)") {
		t.Fatalf("plans %q", p)
	}
	for _, c := range b.dnnConvs { // a workspace shorter than the plan's is refused: cuDNN would write past it
		if p := c.graph[0]; p == nil || p.ws == 0 {
			t.Fatalf("no forward plan with a workspace: %+v", c.graph)
		} else if err := b.graphRun(p, x.Ptr, w.Ptr, y.Ptr, Buffer{Ptr: d.dnn.ws.Ptr, N: int(p.ws/4) - 1}); err == nil || !strings.Contains(err.Error(), "needs") {
			t.Fatalf("a short workspace: %v", err)
		}
	}
	gr, err := d.Capture(func() error {
		if err := d.Conv3Forward(g, y, x, w, bias); err != nil {
			return err
		}
		return d.Conv3Backward(g, dx, dw, db, x, w, dy, col)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := gr.Launch(); err != nil {
		t.Fatal(err)
	}
	near(t, "y", download(t, d, y), wantY, 1e-5)
	near(t, "∂x", download(t, d, dx), wantDx, 1e-5)
	// On our layout no copy checks the buffers: a short one is refused
	// (cuDNN would write past its end).
	if err := d.Conv3Forward(g, alloc(t, d, len(dys)-1), x, w, bias); err == nil || !strings.Contains(err.Error(), "conv forward: y holds") {
		t.Fatalf("a short y: %v", err)
	}
	if err := d.Conv3Backward(g, alloc(t, d, len(xs)-1), dw, db, x, w, dy, col); err == nil || !strings.Contains(err.Error(), "conv data gradient: x holds") {
		t.Fatalf("a short ∂x: %v", err)
	}

	// A plan on our layout whose first run fails gives way to the graph
	// API on the NCHW copies (same values), and where that fails too, to
	// the legacy algorithm; the description says so in its place.
	g2 := Conv3{C: 2, O: 3, B: 2, H: 4, W: 4, Stride: 2}
	fakeFailGraphRuns(1)
	if err := d.PlanConv3(g2); err != nil {
		t.Fatal(err)
	}
	if p := d.ConvPlans(); len(p) != 2 || !strings.Contains(p[1], "forward: graph API engine 106 (65536 B) after") ||
		!strings.Contains(p[1], "(on our layout the first run failed: cuda: cudnnBackendExecute: CUDNN_STATUS_EXECUTION_FAILED (status 5000): cudnnBackendExecute: failed as the test asked") ||
		strings.Contains(p[1], "forward: graph API engine 106 (65536 B) on our layout") || !strings.Contains(p[1], "data: graph API engine 206 (65536 B) on our layout") {
		t.Fatalf("plans %q", p)
	}
	dys2 := randn(r, 3*2*4, 1)
	wantY2, wantDx2 := naiveConv3(2, 3, 2, 4, 4, 2, xs, ws, dys2)
	g2.Col = alloc(t, d, g2.ColSize())
	y2, dx2, dy2 := alloc(t, d, len(dys2)), alloc(t, d, len(xs)), upload(t, d, dys2)
	if err := d.Conv3Forward(g2, y2, x, w, bias); err != nil {
		t.Fatal(err)
	}
	if err := d.Conv3Backward(g2, dx2, dw, db, x, w, dy2, g2.Col); err != nil {
		t.Fatal(err)
	}
	near(t, "stride 2, forward on the copies: y", download(t, d, y2), wantY2, 1e-5)
	near(t, "stride 2: ∂x", download(t, d, dx2), wantDx2, 1e-5)
	g2b := Conv3{C: 2, O: 3, B: 1, H: 4, W: 4, Stride: 2}
	fakeFailGraphRuns(2)
	if err := d.PlanConv3(g2b); err != nil {
		t.Fatal(err)
	}
	if p := d.ConvPlans(); len(p) != 3 || !strings.Contains(p[2], "forward: legacy (the graph API plan's first run: cuda: cudnnBackendExecute: CUDNN_STATUS_EXECUTION_FAILED (status 5000): cudnnBackendExecute: failed as the test asked") ||
		!strings.Contains(p[2], "; on the NCHW copies: its first run: cuda: cudnnBackendExecute: CUDNN_STATUS_EXECUTION_FAILED") ||
		strings.Contains(p[2], "forward: graph API") || !strings.Contains(p[2], "data: graph API engine 206") {
		t.Fatalf("plans %q", p)
	}

	// Heuristics that report more results than their count query said
	// (it changed between the calls): the count is clamped to what was
	// asked for and written (an index out of range once). Two fewer from
	// each list leave out the exact engines, last in each.
	fakeShortHeurCount(2)
	g3 := Conv3{C: 2, O: 3, B: 1, H: 4, W: 4, Stride: 1}
	err = d.PlanConv3(g3)
	fakeShortHeurCount(0)
	if err != nil {
		t.Fatal(err)
	}
	if p := d.ConvPlans(); len(p) != 4 || !strings.Contains(p[3], "forward: legacy (graph API: none of the 6 engine configurations of heuristics mode A and the fallback list") {
		t.Fatalf("plans %q", p)
	}

	// A cuDNN with no engine for our channel-major layout in one direction:
	// that direction runs on the NCHW copies, the others on our tensors as
	// they are, and the description says why; the values are the same
	// whichever direction copies (the backward's shared copy of ∂y).
	for i, c := range []struct {
		mask int64
		dir  string
	}{{2, "data"}, {4, "filter"}, {1, "forward"}} {
		fakePackedOnly(c.mask)
		gi := Conv3{C: 2, O: 3, B: 2, H: 4, W: 4, Stride: 1} // g's, on a device of its own
		d2, _ := openFake(t)
		if err := d2.PlanConv3(gi); err != nil {
			fakePackedOnly(0)
			t.Fatal(err)
		}
		fakePackedOnly(0)
		p := d2.ConvPlans()
		if len(p) != 1 || !strings.Contains(p[0], c.dir+" on our layout: ") || !strings.Contains(p[0], "(fake_graph_packed_only)") || strings.Count(p[0], "on our layout after") != 2 {
			t.Fatalf("%d: plans %q", i, p)
		}
		x2, w2, dy2, b2 := upload(t, d2, xs), upload(t, d2, ws), upload(t, d2, dys), upload(t, d2, make([]float32, 3))
		y2, dx2, dw2, db2, col2 := alloc(t, d2, len(dys)), alloc(t, d2, len(xs)), alloc(t, d2, len(ws)), alloc(t, d2, 3), alloc(t, d2, g.ColSize())
		gi.Col = col2
		if err := d2.Conv3Forward(gi, y2, x2, w2, b2); err != nil {
			t.Fatal(err)
		}
		if err := d2.Conv3Backward(gi, dx2, dw2, db2, x2, w2, dy2, col2); err != nil {
			t.Fatal(err)
		}
		near(t, c.dir+": y", download(t, d2, y2), wantY, 1e-5)
		near(t, c.dir+": ∂x", download(t, d2, dx2), wantDx, 1e-5)
		near(t, c.dir+": ∂w", download(t, d2, dw2), naiveConv3W(2, 3, 2, 4, 4, 1, xs, dys), 1e-5)
		d2.Close() // before the count of descriptors below
	}

	l := b.dnnGraph
	var i64 int64 = 1
	var dt int32 = dnnFloat
	tensor := func(uid int64, finalize bool) uintptr {
		var p uintptr
		dims, strides, align := [4]int64{2, 2, 4, 4}, [4]int64{32, 16, 4, 1}, int64(16)
		l.create(dnbTensor, &p)
		l.set(p, dnaTensorDataType, dntDataType, 1, unsafe.Pointer(&dt))
		l.set(p, dnaTensorDims, dntInt64, 4, unsafe.Pointer(&dims[0]))
		l.set(p, dnaTensorStrides, dntInt64, 4, unsafe.Pointer(&strides[0]))
		l.set(p, dnaTensorAlignment, dntInt64, 1, unsafe.Pointer(&align))
		if uid > 0 {
			l.set(p, dnaTensorUID, dntInt64, 1, unsafe.Pointer(&uid))
		}
		if finalize {
			l.finalize(p)
		}
		return p
	}
	// execute runs forward plan p on a variant pack of the given ids and pointers.
	execute := func(p *dnnGraphPlan, uids []int64, ptrs []uintptr) int32 {
		var pack uintptr
		l.create(dnbVariantPack, &pack)
		defer l.destroy(pack)
		wsp := uintptr(d.dnn.ws.Ptr)
		l.set(pack, dnaPackUIDs, dntInt64, int64(len(uids)), unsafe.Pointer(&uids[0]))
		l.set(pack, dnaPackPointers, dntVoidPtr, int64(len(ptrs)), unsafe.Pointer(&ptrs[0]))
		l.set(pack, dnaPackWorkspace, dntVoidPtr, 1, unsafe.Pointer(&wsp))
		if r := l.finalize(pack); r != 0 {
			return r
		}
		return l.execute(b.dnnHandle, p.plan, pack)
	}
	for _, c := range []struct {
		name string
		want int32
		why  string
		call func(p *dnnGraphPlan) int32
	}{
		{"an attribute of the wrong type", 2010, "type 3, want 1", func(*dnnGraphPlan) int32 {
			tn := tensor(0, false)
			defer l.destroy(tn)
			return l.set(tn, dnaTensorDataType, dntInt64, 1, unsafe.Pointer(&i64))
		}},
		{"a tensor without its unique id", 2000, "attribute 906 is not set", func(*dnnGraphPlan) int32 {
			tn := tensor(0, false)
			defer l.destroy(tn)
			return l.finalize(tn)
		}},
		{"an attribute set after Finalize", 1001, "finalized", func(*dnnGraphPlan) int32 {
			tn := tensor(7, true)
			defer l.destroy(tn)
			return l.set(tn, dnaTensorUID, dntInt64, 1, unsafe.Pointer(&i64))
		}},
		{"a descriptor that is not finalized, referred to", 2004, "not finalized", func(*dnnGraphPlan) int32 {
			var op, cv uintptr
			l.create(dnbOpConvForward, &op)
			defer l.destroy(op)
			l.create(dnbConvolution, &cv)
			defer l.destroy(cv)
			tn := tensor(7, true)
			defer l.destroy(tn)
			ab := [2]float32{1, 0}
			l.set(op, dnaFwdAlpha, dntFloat, 1, unsafe.Pointer(&ab[0]))
			l.set(op, dnaFwdAlpha+1, dntFloat, 1, unsafe.Pointer(&ab[1]))
			l.set(op, dnaFwdAlpha+2, dntDescriptor, 1, unsafe.Pointer(&cv))
			for a := int32(dnaFwdAlpha + 3); a <= dnaFwdAlpha+5; a++ {
				l.set(op, a, dntDescriptor, 1, unsafe.Pointer(&tn))
			}
			return l.finalize(op)
		}},
		{"a variant pack without one of the tensors", 2000, "no pointer for tensor 3", func(p *dnnGraphPlan) int32 {
			return execute(p, []int64{1, 2}, []uintptr{uintptr(x.Ptr), uintptr(w.Ptr)})
		}},
		{"a pointer less aligned than its tensor says", 2003, "tensor 1's pointer is not aligned", func(p *dnnGraphPlan) int32 {
			return execute(p, []int64{1, 2, 3}, []uintptr{uintptr(x.Ptr) + 4, uintptr(w.Ptr), uintptr(y.Ptr)})
		}},
		{"a tensor past its allocation (last: it breaks the context)", 5000, "cuDNN y", func(p *dnnGraphPlan) int32 {
			return execute(p, []int64{1, 2, 3}, []uintptr{uintptr(x.Ptr), uintptr(w.Ptr), uintptr(bias.Ptr)})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got int32
			var why string
			if err := b.do(func() error {
				p, err := b.graphPlan(0, g, false, false)
				if err != nil {
					return err
				}
				defer b.graphFree(p)
				l.why() // cleared
				got, why = c.call(p), l.why()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if got != c.want || !strings.Contains(why, c.why) {
				t.Fatalf("status %d%s; want %d and %q", got, why, c.want, c.why)
			}
		})
	}
	d.Close()
	if n := fakeDnnDescriptors(); n != before {
		t.Fatalf("%d cuDNN descriptors alive after Close, %d before the device opened", n, before)
	}
}

// TestArithNamesSettings: a device's arithmetic path (which checkpoints
// record, and a resume compares) names each setting that changes its bits:
// TF32, and how the convolutions run.
func TestArithNamesSettings(t *testing.T) {
	for _, c := range []struct{ tf32, dnn, layout, tune, want string }{
		{"", "", "", "", "cuda+cublas"},
		{"", "on", "", "", "cuda+cublas"},
		{"1", "", "", "", "cuda+cublas+cudnn-graph+tf32"}, // TF32's default: the graph API (the fake's cuDNN is 9)
		{"1", "on", "", "", "cuda+cublas+tf32"},
		{"", "off", "", "", "cuda+cublas+im2col"},
		{"", "heuristics", "", "", "cuda+cublas+cudnn-heuristics"},
		{"1", "graph", "", "", "cuda+cublas+cudnn-graph+tf32"},
		{"", "graph", "nchw", "", "cuda+cublas+cudnn-graph-nchw"},
		{"1", "", "", "4", "cuda+cublas+cudnn-graph-tuned+tf32"},
		{"", "graph", "nchw", "2", "cuda+cublas+cudnn-graph-nchw-tuned"},
		{"", "graph", "", "1", "cuda+cublas+cudnn-graph"},
		{"", "on", "", "4", "cuda+cublas"}, // Find's: nothing tuned
	} {
		t.Run(c.tf32+"/"+c.dnn+"/"+c.layout+"/"+c.tune, func(t *testing.T) {
			t.Setenv(TF32Env, c.tf32)
			t.Setenv(CudnnEnv, c.dnn)
			t.Setenv(CudnnEnv+"_GRAPH_LAYOUT", c.layout)
			t.Setenv(GraphTuneEnv, c.tune)
			d, _ := openFake(t)
			if d.Arith != c.want {
				t.Fatalf("arithmetic path %q, want %q", d.Arith, c.want)
			}
		})
	}
}

// naiveConv3W is the weights' gradient (O, C, 3, 3) of a 3×3 convolution,
// padding 1, of x (C, B, H, W) given dy (O, B, OH, OW), in float64.
func naiveConv3W(c, o, b, h, w, stride int, x, dy []float32) []float64 {
	oh, ow := Conv3Out(h, w, stride)
	dw := make([]float64, o*c*9)
	for oo := 0; oo < o; oo++ {
		for cc := 0; cc < c; cc++ {
			for k := 0; k < 9; k++ {
				ky, kx := k/3, k%3
				var sum float64
				for bb := 0; bb < b; bb++ {
					for yy := 0; yy < oh; yy++ {
						for xx := 0; xx < ow; xx++ {
							iy, ix := yy*stride+ky-1, xx*stride+kx-1
							if iy < 0 || iy >= h || ix < 0 || ix >= w {
								continue
							}
							sum += float64(dy[((oo*b+bb)*oh+yy)*ow+xx]) * float64(x[((cc*b+bb)*h+iy)*w+ix])
						}
					}
				}
				dw[(oo*c+cc)*9+k] = sum
			}
		}
	}
	return dw
}

// TestFakeGPUGraphTuneRefusedKept: a tuned choice in the cache that cannot
// be planned (here positions no heuristics list has) is tuned again and
// replaced in the file (it stayed: every later run planned it again), and
// the next device takes the new one.
func TestFakeGPUGraphTuneRefusedKept(t *testing.T) {
	g, cache := tunedOnce(t)
	bad := [3]string{"ours:A99", "ours:A99", "ours:A99"}
	b, _ := json.Marshal(map[string]Conv3Choice{conv3CacheKey(g): {Graph: &bad}})
	if err := os.WriteFile(cache, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var plans []string
	for range 2 {
		d, _ := openFake(t)
		if err := d.PlanConv3(g); err != nil {
			t.Fatal(err)
		}
		plans = append(plans, d.ConvPlans()[0])
		d.Close()
	}
	if strings.Count(plans[0], "the tuned choice ours:A99 was refused") != 3 || strings.Count(plans[1], "(tuned by an earlier run)") != 3 {
		t.Fatalf("plans %q", plans)
	}
	if got, _ := loadAlgoCache(cache).get(g); got.Graph == nil || *got.Graph == bad {
		t.Fatalf("the file holds %v", got.Graph)
	}
}

// TestFakeGPUGraphTuneKeptFailsFirstRun: a kept tuned plan that is made but
// fails its first run gives way (here to the NCHW copies' plan), and the
// cache's entry is replaced by what the run took (it stayed, and every
// later run made the failing plan again).
func TestFakeGPUGraphTuneKeptFailsFirstRun(t *testing.T) {
	g, cache := tunedOnce(t)
	before, _ := loadAlgoCache(cache).get(g)
	d, _ := openFake(t)
	fakeFailGraphRuns(1) // the kept forward plan's first run
	err := d.PlanConv3(g)
	fakeFailGraphRuns(0)
	if err != nil {
		t.Fatal(err)
	}
	plan := d.ConvPlans()[0]
	d.Close()
	after, _ := loadAlgoCache(cache).get(g)
	if before.Graph == nil || after.Graph == nil || after.Graph[0] == before.Graph[0] || !strings.HasPrefix(after.Graph[0], "nchw:") || after.Graph[1] != before.Graph[1] {
		t.Fatalf("entry %v, then %v; plan %q", before.Graph, after.Graph, plan)
	}
}

// tunedOnce tunes one geometry's graph plans (NCSN_CUDNN_GRAPH_TUNE=3, in
// TF32, each direction three candidates) on a fake GPU whose choices are
// kept in a folder of the test's; it returns the geometry and that cache
// file. The settings stay for the rest of the test.
func tunedOnce(t *testing.T) (Conv3, string) {
	t.Helper()
	t.Setenv(CudnnEnv, "graph")
	t.Setenv(TF32Env, "1")
	t.Setenv(GraphTuneEnv, "3")
	fakeAlgoDir = t.TempDir()
	t.Cleanup(func() { fakeAlgoDir = "" })
	g := Conv3{C: 2, O: 3, B: 2, H: 4, W: 4, Stride: 1}
	d, _ := openFake(t)
	if err := d.PlanConv3(g); err != nil {
		t.Fatal(err)
	}
	d.Close()
	files, _ := filepath.Glob(filepath.Join(fakeAlgoDir, "*graph*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	return g, files[0]
}

// TestFakeGPUNewerThanNVRTC: a GPU whose architecture NVRTC does not know
// (compute capability 12.7 here) gets PTX of the newest architecture NVRTC
// knows, which its driver compiles (it failed to open: NVRTC could make
// neither sm_127 nor compute_127); one older than every architecture NVRTC
// knows is an error naming what was tried.
func TestFakeGPUNewerThanNVRTC(t *testing.T) {
	first, _ := openFake(t) // built, or skipped
	first.Close()
	defer fakeSetCC(80)
	fakeSetCC(127)
	a, ok := newestArchBelow(127)
	if !ok {
		t.Skip("this NVRTC cannot list its architectures (before 11.2)")
	}
	d, err := OpenFakeGPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if want := fmt.Sprintf("for compute_%d", a); !strings.Contains(d.Describe, want) {
		t.Fatalf("description %q, want %q", d.Describe, want)
	}
	runsSiLU(t, d)
	d.Close()
	fakeSetCC(10)
	if _, err := OpenFakeGPU(0); err == nil || !strings.Contains(err.Error(), "sm_10") || !strings.Contains(err.Error(), "compute_10") {
		t.Fatalf("a GPU older than NVRTC's architectures: %v", err)
	}
}
