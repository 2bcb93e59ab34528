//go:build linux

package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
)

// cuDNN's convolutions, loaded at run time like the driver and cuBLAS: the
// 3×3 convolutions then run on cuDNN's kernels where the library is found.
// By default through the legacy convolution API (cudnn_cnn.h, present in
// cuDNN 8 and 9): tensor, filter and convolution descriptors, the v7
// heuristics, Find, and the three convolution calls. Each geometry's
// algorithms are the fastest deterministic ones that cuDNN's Find measures
// on this GPU (Winograd's in float32 on an H200: 1.7× the heuristics'
// choice on the ncsnv2 network); the choices are kept in the user's cache
// folder (algoCache), so that every later run on that GPU takes the same
// ones and a seed gives the same bits. NCSN_CUDNN=heuristics takes the
// heuristics' first deterministic algorithm instead, measuring nothing.
// PyTorch reaches cuDNN through its graph API, and its sm90 tensor-core
// kernels there; with TF32 (and NCSN_CUDNN=graph) cudnn_graph.go plans on
// the graph API instead of the legacy one.
//
// Our tensors are channel-major (C, B, H, W); the legacy API runs on copies
// laid out as NCHW (ncsn_swap01), because described by their strides it
// has no deterministic algorithm for the input's gradient (cuDNN 9). The
// graph API's plans take our tensors as they are, described by their
// strides, where cuDNN has an engine for them, else the copies too.
// Without cuDNN, or with NCSN_CUDNN=off, the convolutions stay im2col and
// cuBLAS products.

// cudnnNames are tried in order: cuDNN 9, 8.
var cudnnNames = []string{"libcudnn.so.9", "libcudnn.so.8", "libcudnn.so"}

// cuDNN's enumerations (cudnn_graph.h, cudnn_cnn.h).
const (
	dnnFloat             = 0 // CUDNN_DATA_FLOAT
	dnnNCHW              = 0 // CUDNN_TENSOR_NCHW
	dnnCrossCorrelation  = 1 // CUDNN_CROSS_CORRELATION
	dnnDefaultMath       = 0 // CUDNN_DEFAULT_MATH
	dnnTensorOpMath      = 1 // CUDNN_TENSOR_OP_MATH
	dnnTensorOpMathConv  = 2 // CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION
	dnnFMAMath           = 3 // CUDNN_FMA_MATH
	dnnDeterministic     = 1 // CUDNN_DETERMINISTIC
	dnnMaxAlgos          = 16
	dnnMaxWorkspaceBytes = 1 << 30
)

// dnnAlgoPerf is cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t (the
// three share one layout: 48 bytes).
type dnnAlgoPerf struct {
	Algo, Status int32
	Time         float32
	_            int32
	Memory       uint64
	Determinism  int32
	MathType     int32
	_            [4]int32
}

type cudnnLib struct {
	name        string
	version     func() uint64
	errorString func(status int32) string
	create      func(h *uintptr) int32
	destroy     func(h uintptr) int32
	setStream   func(h uintptr, s uintptr) int32
	newTensor   func(d *uintptr) int32
	setTensor   func(d uintptr, dtype int32, n, c, h, w, ns, cs, hs, ws int32) int32
	newFilter   func(d *uintptr) int32
	setFilter   func(d uintptr, dtype, format int32, k, c, h, w int32) int32
	newConv     func(d *uintptr) int32
	setConv     func(d uintptr, padH, padW, u, v, dilH, dilW, mode, dtype int32) int32
	setMath     func(d uintptr, math int32) int32
	// The descriptors' destructors (closeDnn, and a failed dnnPlan).
	freeTensor, freeFilter, freeConv func(d uintptr) int32
	fwdAlgos                         func(h, x, w, conv, y uintptr, want int32, got *int32, perf unsafe.Pointer) int32
	dataAlgos                        func(h, w, dy, conv, dx uintptr, want int32, got *int32, perf unsafe.Pointer) int32
	filterAlgos                      func(h, x, dy, conv, dw uintptr, want int32, got *int32, perf unsafe.Pointer) int32
	fwdWS                            func(h, x, w, conv, y uintptr, algo int32, bytes *uint64) int32
	dataWS                           func(h, w, dy, conv, dx uintptr, algo int32, bytes *uint64) int32
	filterWS                         func(h, x, dy, conv, dw uintptr, algo int32, bytes *uint64) int32
	forward                          func(h uintptr, alpha unsafe.Pointer, xd uintptr, x uint64, wd uintptr, w uint64, conv uintptr, algo int32, ws uint64, wsBytes uint64, beta unsafe.Pointer, yd uintptr, y uint64) int32
	backData                         func(h uintptr, alpha unsafe.Pointer, wd uintptr, w uint64, dyd uintptr, dy uint64, conv uintptr, algo int32, ws uint64, wsBytes uint64, beta unsafe.Pointer, dxd uintptr, dx uint64) int32
	backFilter                       func(h uintptr, alpha unsafe.Pointer, xd uintptr, x uint64, dyd uintptr, dy uint64, conv uintptr, algo int32, ws uint64, wsBytes uint64, beta unsafe.Pointer, dwd uintptr, dw uint64) int32
	// cuDNN's Find: every algorithm run and timed on the given buffers.
	findFwd    func(h, xd uintptr, x uint64, wd uintptr, w uint64, conv, yd uintptr, y uint64, want int32, got *int32, perf unsafe.Pointer, ws, wsBytes uint64) int32
	findData   func(h, wd uintptr, w uint64, dyd uintptr, dy uint64, conv, dxd uintptr, dx uint64, want int32, got *int32, perf unsafe.Pointer, ws, wsBytes uint64) int32
	findFilter func(h, xd uintptr, x uint64, dyd uintptr, dy uint64, conv, dwd uintptr, dw uint64, want int32, got *int32, perf unsafe.Pointer, ws, wsBytes uint64) int32
	graph      *dnnGraphLib // the graph (backend) API, where the library has it
}

// cudnnSublibraries are cuDNN 9's parts, which its front library opens by
// name when first needed: where the front library was found in a folder of
// libraryDirs, unknown to the dynamic loader, they are loaded from that
// same folder before any use (a loader that finds the front library by its
// name finds them likewise), so that a second cuDNN 9 elsewhere on the
// machine cannot give the front library another install's parts
// (CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH).
var cudnnSublibraries = []string{"libcudnn_graph.so.9", "libcudnn_engines_precompiled.so.9",
	"libcudnn_engines_runtime_compiled.so.9", "libcudnn_heuristic.so.9", "libcudnn_ops.so.9",
	"libcudnn_cnn.so.9", "libcudnn_adv.so.9"}

func loadCudnn(from *libs) (*cudnnLib, error) {
	if from != nil {
		return bindCudnn(from.h, from.name)
	}
	h, name, err := dlopenAny("cuDNN", cudnnNames)
	if err != nil {
		return nil, err
	}
	if strings.ContainsRune(name, '/') { // found in a folder, not by the loader
		for _, s := range cudnnSublibraries {
			purego.Dlopen(filepath.Join(filepath.Dir(name), s), purego.RTLD_NOW|purego.RTLD_GLOBAL) // best effort
		}
	}
	return bindCudnn(h, name)
}

// bindCudnn binds the functions of cuDNN from library h (named name).
func bindCudnn(h uintptr, name string) (*cudnnLib, error) {
	l := &cudnnLib{name: name}
	for sym, fn := range l.symbols() {
		if _, err := purego.Dlsym(h, sym); err != nil {
			return nil, fmt.Errorf("%w: %s has no %s", ErrNoLibrary, name, sym)
		}
		purego.RegisterLibFunc(fn, h, sym)
	}
	l.graph = loadGraphAPI(h)
	return l, nil
}

// symbols maps each function of cuDNN that is used to the field it is
// bound to.
func (l *cudnnLib) symbols() map[string]any {
	return map[string]any{
		"cudnnGetVersion": &l.version, "cudnnGetErrorString": &l.errorString,
		"cudnnCreate": &l.create, "cudnnDestroy": &l.destroy, "cudnnSetStream": &l.setStream,
		"cudnnCreateTensorDescriptor": &l.newTensor, "cudnnSetTensor4dDescriptorEx": &l.setTensor,
		"cudnnCreateFilterDescriptor": &l.newFilter, "cudnnSetFilter4dDescriptor": &l.setFilter,
		"cudnnCreateConvolutionDescriptor": &l.newConv, "cudnnSetConvolution2dDescriptor": &l.setConv,
		"cudnnSetConvolutionMathType":                    &l.setMath,
		"cudnnDestroyTensorDescriptor":                   &l.freeTensor,
		"cudnnDestroyFilterDescriptor":                   &l.freeFilter,
		"cudnnDestroyConvolutionDescriptor":              &l.freeConv,
		"cudnnGetConvolutionForwardAlgorithm_v7":         &l.fwdAlgos,
		"cudnnGetConvolutionBackwardDataAlgorithm_v7":    &l.dataAlgos,
		"cudnnGetConvolutionBackwardFilterAlgorithm_v7":  &l.filterAlgos,
		"cudnnGetConvolutionForwardWorkspaceSize":        &l.fwdWS,
		"cudnnGetConvolutionBackwardDataWorkspaceSize":   &l.dataWS,
		"cudnnGetConvolutionBackwardFilterWorkspaceSize": &l.filterWS,
		"cudnnConvolutionForward":                        &l.forward, "cudnnConvolutionBackwardData": &l.backData,
		"cudnnConvolutionBackwardFilter":                &l.backFilter,
		"cudnnFindConvolutionForwardAlgorithmEx":        &l.findFwd,
		"cudnnFindConvolutionBackwardDataAlgorithmEx":   &l.findData,
		"cudnnFindConvolutionBackwardFilterAlgorithmEx": &l.findFilter,
	}
}

// check turns a cudnnStatus_t into an error naming the call.
func (l *cudnnLib) check(call string, r int32) error {
	if r == 0 {
		return nil
	}
	return fmt.Errorf("cuda: %s: %s (status %d)", call, l.errorString(r), r)
}

// versionString is cuDNN's version as major.minor.patch.
func (l *cudnnLib) versionString() string {
	v := l.version()
	if v >= 90000 { // cuDNN 9: major·10000 + minor·100 + patch
		return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
	}
	return fmt.Sprintf("%d.%d.%d", v/1000, v/100%10, v%100) // cuDNN 8: major·1000 + minor·100 + patch
}

// dnnConv is one convolution geometry's descriptors and chosen algorithms.
type dnnConv struct {
	x, y, w              uintptr // tensor and filter descriptors
	fwdC, dataC, filterC uintptr // a convolution descriptor per direction (each its algorithm's math type)
	fwd, data, filter    dnnAlgoPerf
	describe             string
	measured             bool // chosen by cuDNN's Find
	// graph holds the direction's plan on the graph API (NCSN_CUDNN=graph;
	// nil: the legacy algorithm); graphTried, whether it was planned;
	// graphRan, whether its plans have had their first run (dnnWarmUp).
	graph                [3]*dnnGraphPlan
	graphTried, graphRan bool
	// cands are a direction's plans to be timed against each other
	// (NCSN_CUDNN_GRAPH_TUNE; graph[dir] is the first of them until
	// dnnWarmUp keeps the fastest), nil where there is no choice to make.
	cands [3][]*dnnGraphPlan
	// refused is the tuning cache's entry for the geometry where a
	// direction's kept plan could not be made (dnnWarmUp's choices replace
	// it in the cache).
	refused *Conv3Choice
	// keptFrom is that entry where a direction's plan was taken from it
	// (a kept plan whose first run fails refuses it).
	keptFrom *Conv3Choice
}

// free destroys c's descriptors (those made; on the device's thread).
func (c *dnnConv) free(l *cudnnLib) {
	for _, p := range []*uintptr{&c.x, &c.y} {
		if *p != 0 {
			l.freeTensor(*p)
			*p = 0
		}
	}
	if c.w != 0 {
		l.freeFilter(c.w)
		c.w = 0
	}
	for _, p := range []*uintptr{&c.fwdC, &c.dataC, &c.filterC} {
		if *p != 0 {
			l.freeConv(*p)
			*p = 0
		}
	}
}

// conv3Key is a convolution's geometry without its workspace.
func conv3Key(g Conv3) Conv3 { g.Col = Buffer{}; return g }

// dnnPlan makes (once per geometry) the descriptors of g and picks each
// direction's algorithm: the first of cuDNN's heuristics that succeeds, is
// deterministic (a seed gives the same run), needs at most 1 GiB of
// workspace and, unless tf32, does exact float32 arithmetic (FMA).
func (d *driverBackend) dnnPlan(g Conv3, tf32 bool) (*dnnConv, error) {
	key := conv3Key(g)
	if c, ok := d.dnnConvs[key]; ok {
		return c, nil
	}
	l := d.dnn
	c := &dnnConv{}
	oh, ow := Conv3Out(g.H, g.W, g.Stride)
	err := d.do(func() error {
		for _, p := range []*uintptr{&c.x, &c.y} {
			if err := l.check("cudnnCreateTensorDescriptor", l.newTensor(p)); err != nil {
				return err
			}
		}
		// Packed NCHW: the copies of our (C, B, H, W) tensors.
		setT := func(t uintptr, n, ch, h, w int) error {
			return l.check("cudnnSetTensor4dDescriptorEx", l.setTensor(t, dnnFloat, int32(n), int32(ch), int32(h), int32(w), int32(ch*h*w), int32(h*w), int32(w), 1))
		}
		if err := setT(c.x, g.B, g.C, g.H, g.W); err != nil {
			return err
		}
		if err := setT(c.y, g.B, g.O, oh, ow); err != nil {
			return err
		}
		if err := l.check("cudnnCreateFilterDescriptor", l.newFilter(&c.w)); err != nil {
			return err
		}
		if err := l.check("cudnnSetFilter4dDescriptor", l.setFilter(c.w, dnnFloat, dnnNCHW, int32(g.O), int32(g.C), 3, 3)); err != nil {
			return err
		}
		math := int32(dnnFMAMath)
		if tf32 {
			math = dnnTensorOpMath
		}
		for _, p := range []*uintptr{&c.fwdC, &c.dataC, &c.filterC} {
			if err := l.check("cudnnCreateConvolutionDescriptor", l.newConv(p)); err != nil {
				return err
			}
			if err := l.check("cudnnSetConvolution2dDescriptor", l.setConv(*p, 1, 1, int32(g.Stride), int32(g.Stride), 1, 1, dnnCrossCorrelation, dnnFloat)); err != nil {
				return err
			}
			if err := l.check("cudnnSetConvolutionMathType", l.setMath(*p, math)); err != nil {
				return err
			}
		}
		pick := func(what string, conv uintptr, query func(perf unsafe.Pointer, got *int32) int32, into *dnnAlgoPerf, size func(algo int32, bytes *uint64) int32) error {
			perf := make([]dnnAlgoPerf, dnnMaxAlgos)
			var got int32
			if err := l.check(what, query(unsafe.Pointer(&perf[0]), &got)); err != nil {
				return err
			}
			return d.dnnChoose(what, g, tf32, conv, perf[:min(int(got), len(perf))], size, into)
		}
		if err := pick("cudnnGetConvolutionForwardAlgorithm_v7", c.fwdC, func(perf unsafe.Pointer, got *int32) int32 {
			return l.fwdAlgos(d.dnnHandle, c.x, c.w, c.fwdC, c.y, dnnMaxAlgos, got, perf)
		}, &c.fwd, d.dnnSizes(c)[0]); err != nil {
			return err
		}
		if err := pick("cudnnGetConvolutionBackwardDataAlgorithm_v7", c.dataC, func(perf unsafe.Pointer, got *int32) int32 {
			return l.dataAlgos(d.dnnHandle, c.w, c.y, c.dataC, c.x, dnnMaxAlgos, got, perf)
		}, &c.data, d.dnnSizes(c)[1]); err != nil {
			return err
		}
		return pick("cudnnGetConvolutionBackwardFilterAlgorithm_v7", c.filterC, func(perf unsafe.Pointer, got *int32) int32 {
			return l.filterAlgos(d.dnnHandle, c.x, c.y, c.filterC, c.w, dnnMaxAlgos, got, perf)
		}, &c.filter, d.dnnSizes(c)[2])
	})
	if err != nil {
		d.do(func() error { c.free(l); return nil })
		return nil, err
	}
	c.describe = c.choices(g)
	d.dnnConvs[key] = c
	return c, nil
}

// choices says which algorithm each direction of g runs.
func (c *dnnConv) choices(g Conv3) string {
	return fmt.Sprintf("C=%d O=%d B=%d %d×%d stride %d: forward algo %d (math %d, %d B), data algo %d (math %d, %d B), filter algo %d (math %d, %d B)",
		g.C, g.O, g.B, g.H, g.W, g.Stride, c.fwd.Algo, c.fwd.MathType, c.fwd.Memory, c.data.Algo, c.data.MathType, c.data.Memory, c.filter.Algo, c.filter.MathType, c.filter.Memory)
}

// dnnSizes are the workspace-size queries of c's three directions
// (forward, data, filter), for the descriptors as they are set when called.
func (d *driverBackend) dnnSizes(c *dnnConv) [3]func(algo int32, bytes *uint64) int32 {
	l := d.dnn
	return [3]func(algo int32, bytes *uint64) int32{
		func(algo int32, bytes *uint64) int32 { return l.fwdWS(d.dnnHandle, c.x, c.w, c.fwdC, c.y, algo, bytes) },
		func(algo int32, bytes *uint64) int32 {
			return l.dataWS(d.dnnHandle, c.w, c.y, c.dataC, c.x, algo, bytes)
		},
		func(algo int32, bytes *uint64) int32 {
			return l.filterWS(d.dnnHandle, c.x, c.y, c.filterC, c.w, algo, bytes)
		},
	}
}

// dnnChoose takes the first of perf (in cuDNN's order: the heuristics'
// guess or the measured time) that succeeded, is deterministic (a seed
// gives the same run), needs at most 1 GiB of workspace and, unless tf32,
// does exact float32 arithmetic (FMA); it sets conv's math type to the
// algorithm's and the workspace to what conv then asks.
func (d *driverBackend) dnnChoose(what string, g Conv3, tf32 bool, conv uintptr, perf []dnnAlgoPerf, size func(algo int32, bytes *uint64) int32, into *dnnAlgoPerf) error {
	l := d.dnn
	for _, p := range perf {
		exact := p.MathType != dnnTensorOpMath && p.MathType != dnnTensorOpMathConv
		if p.Status != 0 || p.Determinism != dnnDeterministic || p.Memory > dnnMaxWorkspaceBytes || (!tf32 && !exact) {
			continue
		}
		if !tf32 {
			// The descriptor's math is FMA, whatever name the library gives
			// it (DEFAULT would let an A100 or later use TF32): kept as FMA,
			// the math dnnApply sets and wants.
			p.MathType = dnnFMAMath
		}
		if tf32 { // the algorithm's own math type (exact runs keep FMA)
			if err := l.check("cudnnSetConvolutionMathType", l.setMath(conv, p.MathType)); err != nil {
				return err
			}
		}
		// The workspace as the descriptor now set asks (the heuristics'
		// figure may be for another math type).
		if err := l.check(what+" workspace size", size(p.Algo, &p.Memory)); err != nil {
			return err
		}
		*into = p
		return nil
	}
	return fmt.Errorf("cuda: %s: none of cuDNN's %d algorithms for C=%d O=%d B=%d %d×%d stride %d is deterministic and %s", what, len(perf), g.C, g.O, g.B, g.H, g.W, g.Stride, map[bool]string{true: "within 1 GiB", false: "exact float32 within 1 GiB"}[tf32])
}

// dnnAlphaBeta writes α = 1, β = 0 after the kernel parameters in the
// pinned block (cuDNN reads them from host memory) and returns their
// addresses.
func (d *driverBackend) dnnAlphaBeta() (unsafe.Pointer, unsafe.Pointer) {
	ab := unsafe.Add(d.args, argBytes+8)
	*(*float32)(ab) = 1
	*(*float32)(unsafe.Add(ab, 4)) = 0
	return ab, unsafe.Add(ab, 4)
}

func (d *driverBackend) conv3Forward(c *dnnConv, y, x, w DevPtr, ws Buffer) error {
	if p := c.graph[0]; p != nil {
		return d.graphRun(p, x, w, y, ws)
	}
	return d.do(func() error {
		a, b := d.dnnAlphaBeta()
		return d.dnn.check("cudnnConvolutionForward", d.dnn.forward(d.dnnHandle, a, c.x, uint64(x), c.w, uint64(w), c.fwdC, c.fwd.Algo, uint64(ws.Ptr), c.fwd.Memory, b, c.y, uint64(y)))
	})
}

func (d *driverBackend) conv3BackwardData(c *dnnConv, dx, w, dy DevPtr, ws Buffer) error {
	if p := c.graph[1]; p != nil {
		return d.graphRun(p, dx, w, dy, ws)
	}
	return d.do(func() error {
		a, b := d.dnnAlphaBeta()
		return d.dnn.check("cudnnConvolutionBackwardData", d.dnn.backData(d.dnnHandle, a, c.w, uint64(w), c.y, uint64(dy), c.dataC, c.data.Algo, uint64(ws.Ptr), c.data.Memory, b, c.x, uint64(dx)))
	})
}

func (d *driverBackend) conv3BackwardFilter(c *dnnConv, dw, x, dy DevPtr, ws Buffer) error {
	if p := c.graph[2]; p != nil {
		return d.graphRun(p, x, dw, dy, ws)
	}
	return d.do(func() error {
		a, b := d.dnnAlphaBeta()
		return d.dnn.check("cudnnConvolutionBackwardFilter", d.dnn.backFilter(d.dnnHandle, a, c.x, uint64(x), c.y, uint64(dy), c.filterC, c.filter.Algo, uint64(ws.Ptr), c.filter.Memory, b, c.w, uint64(dw)))
	})
}

// dnnState is a device's cuDNN: how its convolutions are computed, and the
// workspaces they share (grown by PlanConv3): cuDNN's, and the NCHW copies
// of a convolution's input (tX) and output (tY).
type dnnState struct {
	b         *driverBackend
	tf32      bool
	find      bool // algorithms measured by cuDNN's Find (NCSN_CUDNN unset or on)
	graph     bool // plans on the graph API where it has an engine (NCSN_CUDNN=graph)
	graphOurs bool // those plans on our layout first (not NCSN_CUDNN_GRAPH_LAYOUT=nchw)
	// tune is how many of the heuristics' usable configurations a graph
	// plan is timed over (NCSN_CUDNN_GRAPH_TUNE; 1: the first is taken).
	tune       int
	cache      *algoCache // the choices measured on this GPU before (Find's, or the tuned graph plans')
	ws, tX, tY Buffer
	plans      []string
}

// arithOf names the arithmetic path of a GPU run (Device.Arith) from its
// settings: TF32, and how the convolutions run (dnn: nil without cuDNN).
// The default's name, "cuda+cublas", is the one every device run recorded
// before the settings were told apart.
func arithOf(tf32 bool, dnn *dnnState) string {
	a := "cuda+cublas"
	switch {
	case dnn == nil:
		a += "+im2col"
	case dnn.graph:
		a += "+cudnn-graph"
		if !dnn.graphOurs {
			a += "-nchw"
		}
		if dnn.tune > 1 {
			a += "-tuned"
		}
	case !dnn.find:
		a += "+cudnn-heuristics"
	}
	if tf32 {
		a += "+tf32"
	}
	return a
}

// openCudnn loads cuDNN for the worker's context unless NCSN_CUDNN=off; nil
// and the reason where the convolutions stay im2col and cuBLAS products.
func (d *driverBackend) openCudnn(tf32 bool, gpu string) (*dnnState, string, error) {
	mode := os.Getenv(CudnnEnv)
	tune, err := graphTune()
	if err != nil {
		return nil, "", err
	}
	if v := os.Getenv(CudnnEnv + "_GRAPH_LAYOUT"); v != "" && v != "nchw" && v != "ours" {
		return nil, "", fmt.Errorf("cuda: %s_GRAPH_LAYOUT=%q: want ours (the default) or nchw", CudnnEnv, v)
	}
	switch mode {
	case "off":
		return nil, "convolutions: im2col + cuBLAS (" + CudnnEnv + "=off)", nil
	case "", "on", "heuristics", "graph":
	default:
		return nil, "", fmt.Errorf("cuda: %s=%q: want on, heuristics, graph or off", CudnnEnv, mode)
	}
	l, err := loadCudnn(d.from)
	if err != nil {
		return nil, fmt.Sprintf("convolutions: im2col + cuBLAS (no cuDNN: %v)", err), nil
	}
	if err := l.check("cudnnCreate", l.create(&d.dnnHandle)); err != nil {
		return nil, fmt.Sprintf("convolutions: im2col + cuBLAS (%v)", err), nil
	}
	d.dnn = l
	d.dnnConvs = map[Conv3]*dnnConv{}
	s := &dnnState{b: d, tf32: tf32, find: mode == "" || mode == "on", graph: mode == "graph"}
	// With TF32 the default is the graph API on our layout, where this
	// cuDNN has it: on an H200 it trained the ncsnv2 network 1.23× (MNIST's
	// 1.26×) as fast as Find's legacy algorithms in TF32 (2026-11-28). In
	// exact float32 Find's stay: there the graph API's heuristics chose
	// engines that trained the ncsnv2 network at 0.57× Find's speed.
	tf32Graph := mode == "" && tf32 && l.graph != nil && l.version() >= 90000
	if tf32Graph {
		s.find, s.graph = false, true
	}
	how := "exact float32"
	if tf32 {
		how = "TF32 tensor cores"
	}
	if s.find {
		s.cache = d.loadCache(algoCachePath(gpu, l.versionString(), tf32))
		how += ", algorithms measured by cuDNN's Find"
		if s.cache.path != "" {
			how += " and kept in " + s.cache.path
		}
	} else if !s.graph {
		how += ", algorithms of cuDNN's heuristics (" + CudnnEnv + "=heuristics)"
	} else if l.graph == nil || l.version() < 90000 {
		s.graph = false
		why := "has no graph API"
		if l.graph != nil {
			why = "is not cuDNN 9, for which the graph path is written"
		}
		how += ", algorithms of cuDNN's heuristics (" + CudnnEnv + "=graph, but " + l.name + " " + why + ")"
	} else {
		d.dnnGraph = l.graph
		s.graphOurs = os.Getenv(CudnnEnv+"_GRAPH_LAYOUT") != "nchw"
		setting := CudnnEnv + "=graph"
		if tf32Graph {
			setting = "TF32's default; " + CudnnEnv + "=on for Find's legacy algorithms"
		}
		how += ", engines of cuDNN's graph API where it has one, else the heuristics' algorithms (" + setting + ")"
		if s.tune = tune; tune > 1 {
			layout := "ours"
			if !s.graphOurs {
				layout = "nchw"
			}
			path := strings.TrimSuffix(algoCachePath(gpu, l.versionString(), tf32), ".v1.json")
			if path != "" {
				path += ".graph-" + layout + ".v1.json"
			}
			s.cache = d.loadCache(path)
			how += fmt.Sprintf("; each plan the fastest of the heuristics' first %d usable configurations, timed here (%s=%d)", tune, GraphTuneEnv, tune)
			if s.cache.path != "" {
				how += ", the choices kept in " + s.cache.path
			}
		}
	}
	on := "on NCHW copies"
	if s.graphOurs {
		on = "on our layout where it has an engine for it, else on NCHW copies"
	}
	return s, fmt.Sprintf("convolutions: cuDNN %s (%s) %s, %s", l.versionString(), l.name, on, how), nil
}

// loadCache reads the cache of choices at path — for the fake GPU, the
// file of that name in its own folder, which it keeps for the device's
// life only, so that every test measures (a user's cache is not touched).
func (d *driverBackend) loadCache(path string) *algoCache {
	if d.from != nil && d.from.algoDir != nil {
		if dir, temp, err := d.from.algoDir(); err == nil {
			if temp {
				d.algoDir = dir
			}
			path = filepath.Join(dir, filepath.Base(path))
		} else {
			path = ""
		}
	}
	return loadAlgoCache(path)
}

// grow makes b hold at least n values (its contents are not kept).
func (d *Device) grow(b *Buffer, n int) error {
	if b.N >= n {
		return nil
	}
	if err := d.b.capturing("a workspace reallocation"); err != nil {
		return err
	}
	d.Free(*b)
	d.gen++ // graphs captured on the old buffer are stale
	nb, err := d.Alloc(n)
	if err != nil {
		*b = Buffer{}
		return err
	}
	*b = nb
	return nil
}

// dnnPrepare plans g with cuDNN and grows the shared workspaces to fit it.
func (d *Device) dnnPrepare(g Conv3) (*dnnConv, error) {
	s := d.dnn
	c, err := s.b.dnnPlan(g, s.tf32)
	if err != nil {
		return nil, err
	}
	oh, ow := Conv3Out(g.H, g.W, g.Stride)
	if err := d.grow(&s.tX, g.C*g.B*g.H*g.W); err != nil {
		return nil, err
	}
	if err := d.grow(&s.tY, g.O*g.B*oh*ow); err != nil {
		return nil, err
	}
	if s.find && !c.measured {
		if err := d.dnnMeasure(g, c); err != nil {
			return nil, err
		}
	}
	if s.graph && !c.graphTried {
		if err := d.b.capturing("planning on cuDNN's graph API"); err != nil {
			return nil, err
		}
		c.graphTried = true
		var kept *[3]string // the tuned choices of an earlier run
		keptEntry := new(Conv3Choice)
		if s.tune > 1 {
			if ch, ok := s.cache.get(g); ok {
				kept, *keptEntry = ch.Graph, ch
			}
		}
		for dir, name := range []string{"forward", "data", "filter"} {
			plan := func(ours bool, want int, pos string) (ps []*dnnGraphPlan, err error) {
				err = s.b.do(func() error {
					ps, err = s.b.graphPlans(dir, g, s.tf32, ours, want, pos)
					return err
				})
				return ps, err
			}
			if kept != nil && kept[dir] != "" {
				layout, pos, _ := strings.Cut(kept[dir], ":")
				ps, err := plan(layout == "ours", 1, pos)
				if err == nil {
					ps[0].kept = true
					c.graph[dir] = ps[0]
					c.keptFrom = keptEntry
					c.describe += graphDescribe(name, ps[0])
					continue
				}
				c.describe += fmt.Sprintf("; %s: the tuned choice %s was refused: %v", name, kept[dir], err)
				c.refused = keptEntry
			}
			var ps []*dnnGraphPlan
			var err, oursErr error
			if s.graphOurs {
				ps, oursErr = plan(true, s.tune, "")
			}
			if ps == nil {
				ps, err = plan(false, s.tune, "")
				if oursErr != nil {
					c.describe += fmt.Sprintf("; %s on our layout: %v", name, oursErr)
				}
			}
			if err != nil {
				c.describe += fmt.Sprintf("; %s: legacy (graph API: %v)", name, err)
				continue
			}
			c.graph[dir] = ps[0]
			if len(ps) > 1 {
				c.cands[dir] = ps
				c.describe += tunePending(name) // dnnTune's account goes in its place
			} else {
				c.describe += graphDescribe(name, ps[0])
			}
		}
	}
	ws := max(c.fwd.Memory, c.data.Memory, c.filter.Memory, 4)
	for dir, p := range c.graph {
		if p != nil {
			ws = max(ws, p.ws)
		}
		for _, q := range c.cands[dir] {
			ws = max(ws, q.ws)
		}
	}
	if err := d.grow(&s.ws, int((ws+3)/4)); err != nil {
		return nil, err
	}
	if err := d.dnnWarmUp(g, c); err != nil {
		return nil, err
	}
	if c.describe != "" {
		s.plans = append(s.plans, c.describe)
		c.describe = ""
	}
	return c, nil
}

// graphDescribe is the part of a geometry's description that names the
// graph-API plan p of a direction.
func graphDescribe(direction string, p *dnnGraphPlan) string {
	s := fmt.Sprintf("; %s: graph API engine %d (%d B)", direction, p.engine, p.ws)
	if p.ours {
		s += " on our layout"
	}
	if len(p.skipped) > 0 {
		s += " after " + strings.Join(p.skipped, ", ")
	}
	switch {
	case p.other:
		s += " instead, as another run tuned it at the same time"
	case p.kept:
		s += " (tuned by an earlier run)"
	}
	return s
}

// dnnWarmUp gives each of c's graph-API plans its first run, on the NCHW
// copies, the workspace and a scratch filter (their values do not
// matter), so that whatever a plan does once on its first run happens
// here and never inside a stream capture (cudnn-frontend, too, runs a plan
// before capturing it). A plan whose first run fails is dropped: that
// direction keeps the legacy algorithm, its description says why.
func (d *Device) dnnWarmUp(g Conv3, c *dnnConv) error {
	if c.graphRan || c.graph == [3]*dnnGraphPlan{} {
		return nil
	}
	s := d.dnn
	w, err := d.Alloc(g.O * g.C * 9)
	if err != nil {
		return err // tried again by the next dnnPrepare
	}
	defer d.Free(w)
	c.graphRan = true
	tuned := false
	for dir, name := range []string{"forward", "data", "filter"} {
		if cands := c.cands[dir]; cands != nil {
			c.cands[dir] = nil
			c.graph[dir] = d.dnnTune(name, cands, w, &c.describe)
			tuned = true
			continue
		}
		p := c.graph[dir]
		if p == nil {
			continue
		}
		// Waited for: a fault of the plan's kernels (a layout it gets wrong)
		// is told here, naming it, not by a later call.
		runErr := s.b.graphRun(p, s.tX.Ptr, w.Ptr, s.tY.Ptr, s.ws)
		if runErr == nil {
			runErr = d.Synchronize()
		}
		if runErr != nil {
			if p.kept {
				c.refused = c.keptFrom // replaced in the cache by what this run takes instead
			}
			c.graph[dir] = nil
			s.b.do(func() error { s.b.graphFree(p); return nil })
			instead := fmt.Sprintf("; %s: legacy (the graph API plan's first run: %v)", name, runErr)
			if p.ours { // the graph API on the NCHW copies, before the legacy algorithm
				q, why, err := d.dnnOnCopies(dir, g, w)
				if err != nil {
					// The workspace could not grow (and is gone): this
					// direction keeps the legacy algorithm, and the next
					// dnnPrepare grows the workspace again and gives the
					// other directions their first run again.
					c.describe = strings.Replace(c.describe, graphDescribe(name, p), instead, 1)
					c.graphRan = false
					return err
				}
				if q != nil {
					c.graph[dir] = q
					instead = graphDescribe(name, q) + fmt.Sprintf(" (on our layout the first run failed: %v)", runErr)
				} else {
					instead = fmt.Sprintf("; %s: legacy (the graph API plan's first run: %v; on the NCHW copies: %s)", name, runErr, why)
				}
			}
			c.describe = strings.Replace(c.describe, graphDescribe(name, p), instead, 1)
		}
	}
	// A refused tuned entry is replaced even where nothing was timed (one
	// usable configuration, or the legacy algorithm): it stayed, and every
	// later run planned it again.
	if tuned || c.refused != nil {
		var mine [3]string
		for dir, p := range c.graph {
			if p != nil {
				mine[dir] = p.choice()
			}
		}
		kept, err := s.cache.put(g, Conv3Choice{Graph: &mine}, c.refused)
		switch {
		case err != nil:
			c.describe += " (the tuned choices not kept: " + err.Error() + ")"
		case kept.Graph != nil && *kept.Graph != mine:
			if err := d.dnnTakeKept(g, c, *kept.Graph, w); err != nil {
				return err // the workspace is gone: the next dnnPrepare grows it again
			}
		}
	}
	return nil
}

// dnnTakeKept replaces the plans c tuned with those of another run that
// tuned g at the same time and kept its choices first, so that both
// compute the same bits (as dnnMeasure takes another run's Find), each
// given its first run (w a scratch filter); a direction whose kept plan
// cannot be made, fails its first run or needs more workspace than can be
// had keeps this run's, and its description says why. The workspace grows
// to a kept plan that needs more (the other run may have timed more
// candidates); an error only where it cannot be had back as it was.
func (d *Device) dnnTakeKept(g Conv3, c *dnnConv, kept [3]string, w Buffer) error {
	s := d.dnn
	for dir, name := range []string{"forward", "data", "filter"} {
		p := c.graph[dir]
		if kept[dir] == "" || p != nil && p.choice() == kept[dir] {
			continue
		}
		layout, pos, _ := strings.Cut(kept[dir], ":")
		var q *dnnGraphPlan
		err := s.b.do(func() error {
			ps, err := s.b.graphPlans(dir, g, s.tf32, layout == "ours", 1, pos)
			if err == nil {
				q = ps[0]
			}
			return err
		})
		if err == nil {
			if old := s.ws.N; d.grow(&s.ws, int((max(q.ws, 4)+3)/4)) != nil {
				// No memory for it: this run's plan, on the workspace of
				// before (just freed: an error only where it is not had back).
				s.b.do(func() error { s.b.graphFree(q); return nil })
				if gerr := d.grow(&s.ws, old); gerr != nil {
					return gerr
				}
				c.describe += fmt.Sprintf("; %s: another run's tuned choice %s needs %d B of workspace, which could not be had: this run's kept", name, kept[dir], q.ws)
				continue
			}
			if err = s.b.graphRun(q, s.tX.Ptr, w.Ptr, s.tY.Ptr, s.ws); err == nil {
				err = d.Synchronize()
			}
			if err != nil {
				s.b.do(func() error { s.b.graphFree(q); return nil })
			}
		}
		if err != nil {
			c.describe += fmt.Sprintf("; %s: another run's tuned choice %s was refused (%v): this run's kept", name, kept[dir], err)
			continue
		}
		if p != nil {
			s.b.do(func() error { s.b.graphFree(p); return nil })
		}
		q.kept, q.other = true, true
		c.graph[dir] = q
		c.describe += graphDescribe(name, q)
	}
	return nil
}

// dnnOnCopies plans direction dir of g on the graph API with NCHW copies
// and gives the plan its first run (as dnnWarmUp; w a scratch filter): a
// plan on our layout that finalized but failed its first run is replaced by
// it. nil, with why, where it cannot be planned or run; an error only where
// the workspace could not grow to it.
func (d *Device) dnnOnCopies(dir int, g Conv3, w Buffer) (q *dnnGraphPlan, why string, err error) {
	s := d.dnn
	var ps []*dnnGraphPlan
	if err := s.b.do(func() (err error) {
		ps, err = s.b.graphPlans(dir, g, s.tf32, false, 1, "")
		return err
	}); err != nil {
		return nil, err.Error(), nil
	}
	q = ps[0]
	free := func() { s.b.do(func() error { s.b.graphFree(q); return nil }) }
	if err := d.grow(&s.ws, int((max(q.ws, 4)+3)/4)); err != nil {
		free()
		return nil, "", err
	}
	err = s.b.graphRun(q, s.tX.Ptr, w.Ptr, s.tY.Ptr, s.ws)
	if err == nil {
		err = d.Synchronize()
	}
	if err != nil {
		free()
		return nil, "its first run: " + err.Error(), nil
	}
	return q, "", nil
}

// A tuning times each candidate, after one untimed run, over batches of
// dnnTuneRuns runs (each batch waited for) until dnnTuneTime has passed or
// dnnTuneMaxRuns have run: a small convolution's runs of some µs are
// timed over many, so that the host's clock and the wait weigh little.
const (
	dnnTuneRuns    = 5
	dnnTuneTime    = 2 * time.Millisecond
	dnnTuneMaxRuns = 400
)

// dnnTune gives each of a direction's candidate plans its first run (on the
// NCHW copies' workspaces and the scratch filter w, as dnnWarmUp), times
// more runs of those that ran, and returns the fastest, the others
// freed (nil where none ran: the direction keeps the legacy algorithm).
// Timings vary from run to run, and so may the choice: dnnWarmUp keeps it
// in the cache for every later run, as Find's.
func (d *Device) dnnTune(name string, cands []*dnnGraphPlan, w Buffer, describe *string) *dnnGraphPlan {
	s := d.dnn
	best, bestT := -1, 0.0
	var times []string
	var failed []string
	for i, p := range cands {
		err := s.b.graphRun(p, s.tX.Ptr, w.Ptr, s.tY.Ptr, s.ws)
		if err == nil {
			err = d.Synchronize()
		}
		start, runs := time.Now(), 0
		for err == nil {
			for k := 0; k < dnnTuneRuns && err == nil; k++ {
				err = s.b.graphRun(p, s.tX.Ptr, w.Ptr, s.tY.Ptr, s.ws)
				runs++
			}
			if err == nil {
				err = d.Synchronize()
			}
			if time.Since(start) >= dnnTuneTime || runs >= dnnTuneMaxRuns {
				break
			}
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("e%d %s: %v", p.engine, p.pos, err))
			continue
		}
		t := time.Since(start).Seconds() * 1e3 / float64(runs)
		times = append(times, fmt.Sprintf("e%d %s %.3f ms", p.engine, p.pos, t))
		if best < 0 || t < bestT {
			best, bestT = i, t
		}
	}
	var keep *dnnGraphPlan
	s.b.do(func() error {
		if best < 0 {
			for _, p := range cands {
				s.b.graphFree(p)
			}
			return nil
		}
		keep = s.b.graphKeep(cands, best)
		return nil
	})
	account := fmt.Sprintf("; %s: legacy (no graph API candidate ran: %s)", name, strings.Join(failed, "; "))
	if keep != nil {
		account = graphDescribe(name, keep) + ", the fastest of " + strings.Join(times, ", ")
		if len(failed) > 0 {
			account += " (failed: " + strings.Join(failed, "; ") + ")"
		}
	}
	*describe = strings.Replace(*describe, tunePending(name), account, 1)
	return keep
}

// tunePending holds the place of a direction's plan in its geometry's
// description until dnnTune has chosen it.
func tunePending(direction string) string { return "; " + direction + ": (to be tuned)" }

// dnnMeasure chooses c's algorithms by cuDNN's Find, or takes the choice
// kept from an earlier run on this GPU; a choice measured with the whole
// 1 GiB of scratch workspace is kept for the runs after. Where Find fails,
// c keeps the heuristics' algorithms, saying why in its description.
func (d *Device) dnnMeasure(g Conv3, c *dnnConv) error {
	s := d.dnn
	c.measured = true
	heuristic := c.choice() // before a refused kept choice changes part of c
	var note string
	var refused *Conv3Choice // replaced in the cache by this run's
	if ch, ok := s.cache.get(g); ok {
		err := s.b.dnnApply(c, ch, s.tf32)
		if err == nil {
			c.describe = c.choices(g) + " (kept from an earlier run)"
			return nil
		}
		note = fmt.Sprintf(" (the kept choice was refused: %v; this run's replaces it)", err)
		refused = &ch
	}
	full, err := d.dnnFind(g, c)
	switch {
	case err != nil:
		if aerr := s.b.dnnApply(c, heuristic, s.tf32); aerr != nil {
			return fmt.Errorf("%w; going back to the heuristics' algorithms: %v", err, aerr)
		}
		c.describe = c.choices(g) + fmt.Sprintf(" (the heuristics' algorithms: %v)", err)
	case !full:
		c.describe += " (not kept: measured with less than 1 GiB of workspace free)"
	default:
		mine := c.choice()
		kept, err := s.cache.put(g, mine, refused)
		switch {
		case err != nil:
			c.describe += " (not kept: " + err.Error() + ")"
		case !sameChoice(kept, mine):
			// Another run measured this geometry first: the same algorithms
			// for both, where this run can take them (else its own, as
			// without a cache).
			if err := s.b.dnnApply(c, kept, s.tf32); err != nil {
				if aerr := s.b.dnnApply(c, mine, s.tf32); aerr != nil {
					return fmt.Errorf("cuda: C=%d O=%d B=%d %d×%d stride %d: another run's kept choice was refused (%v), and then this run's own (%w)", g.C, g.O, g.B, g.H, g.W, g.Stride, err, aerr)
				}
				c.describe = c.choices(g) + fmt.Sprintf(" (another run's kept choice was refused: %v)", err)
				break
			}
			c.describe = c.choices(g) + " (kept by another run that measured it first)"
		}
	}
	c.describe += note
	return nil
}

// choice is c's algorithms and math types as the cache keeps them.
func (c *dnnConv) choice() Conv3Choice {
	return Conv3Choice{Forward: [2]int32{c.fwd.Algo, c.fwd.MathType}, Data: [2]int32{c.data.Algo, c.data.MathType}, Filter: [2]int32{c.filter.Algo, c.filter.MathType}}
}

// dnnApply sets c's algorithms to ch (kept from an earlier measurement, or
// the heuristics'), with the workspaces they ask; an error where cuDNN
// refuses one of them now, where one is not an algorithm of the legacy
// API, or where one is not exact float32 (FMA) and tf32 is off.
func (d *driverBackend) dnnApply(c *dnnConv, ch Conv3Choice, tf32 bool) error {
	for _, a := range [][2]int32{ch.Forward, ch.Data, ch.Filter} {
		if a[0] < 0 || a[0] >= dnnMaxAlgos || (!tf32 && a[1] != dnnFMAMath) {
			return fmt.Errorf("cuda: algorithm %d with math type %d is not one for %s", a[0], a[1], map[bool]string{true: "TF32", false: "exact float32"}[tf32])
		}
	}
	l := d.dnn
	return d.do(func() error {
		for _, s := range []struct {
			conv uintptr
			algo [2]int32
			size func(algo int32, bytes *uint64) int32
			into *dnnAlgoPerf
		}{
			{c.fwdC, ch.Forward, d.dnnSizes(c)[0], &c.fwd},
			{c.dataC, ch.Data, d.dnnSizes(c)[1], &c.data},
			{c.filterC, ch.Filter, d.dnnSizes(c)[2], &c.filter},
		} {
			if err := l.check("cudnnSetConvolutionMathType", l.setMath(s.conv, s.algo[1])); err != nil {
				return err
			}
			var mem uint64
			if err := l.check("workspace size", s.size(s.algo[0], &mem)); err != nil {
				return err
			}
			if mem > dnnMaxWorkspaceBytes {
				return fmt.Errorf("cuda: algorithm %d asks %d bytes", s.algo[0], mem)
			}
			*s.into = dnnAlgoPerf{Algo: s.algo[0], MathType: s.algo[1], Memory: mem, Determinism: dnnDeterministic}
		}
		return nil
	})
}

// dnnFind replaces c's heuristic choices by the fastest of the algorithms
// dnnChoose allows, as cuDNN's Find measures them on the NCHW copies'
// workspaces, a scratch filter and a scratch workspace of up to 1 GiB;
// full says it had the whole 1 GiB. Timings vary from run to run, and so
// may the choice (two runs of one seed would then differ in float32
// rounding): dnnMeasure keeps it in the algorithm cache for every later run.
func (d *Device) dnnFind(g Conv3, c *dnnConv) (full bool, err error) {
	if err := d.b.capturing("cuDNN's Find"); err != nil {
		return false, err
	}
	s := d.dnn
	w, err := d.Alloc(g.O * g.C * 9)
	if err != nil {
		return false, err
	}
	defer d.Free(w)
	var ws Buffer
	for n := dnnMaxWorkspaceBytes / 4; n >= 1<<22; n /= 2 {
		if ws, err = d.Alloc(n); err == nil {
			break
		}
	}
	if err != nil {
		return false, fmt.Errorf("cuda: cuDNN's Find: no workspace: %w", err)
	}
	defer d.Free(ws)
	b, l := s.b, s.b.dnn
	math := int32(dnnFMAMath)
	if s.tf32 {
		math = dnnTensorOpMath
	}
	x, y, wp, wsp, wsb := uint64(s.tX.Ptr), uint64(s.tY.Ptr), uint64(w.Ptr), uint64(ws.Ptr), uint64(4*ws.N)
	var times []string
	find := func(what string, conv uintptr, run func(perf unsafe.Pointer, got *int32) int32, size func(algo int32, bytes *uint64) int32, into *dnnAlgoPerf) error {
		if err := l.check("cudnnSetConvolutionMathType", l.setMath(conv, math)); err != nil {
			return err
		}
		perf := make([]dnnAlgoPerf, dnnMaxAlgos)
		var got int32
		if err := l.check(what, run(unsafe.Pointer(&perf[0]), &got)); err != nil {
			return err
		}
		perf = perf[:min(int(got), len(perf))]
		t := what[len("cudnnFindConvolution"):len(what)-len("AlgorithmEx")] + ":"
		for _, p := range perf {
			if p.Status == 0 {
				t += fmt.Sprintf(" %d/m%d%s %.3f ms", p.Algo, p.MathType, map[bool]string{true: "", false: " (nondet.)"}[p.Determinism == dnnDeterministic], p.Time)
			}
		}
		times = append(times, t)
		return b.dnnChoose(what, g, s.tf32, conv, perf, size, into)
	}
	err = b.do(func() error {
		if err := find("cudnnFindConvolutionForwardAlgorithmEx", c.fwdC, func(perf unsafe.Pointer, got *int32) int32 {
			return l.findFwd(b.dnnHandle, c.x, x, c.w, wp, c.fwdC, c.y, y, dnnMaxAlgos, got, perf, wsp, wsb)
		}, b.dnnSizes(c)[0], &c.fwd); err != nil {
			return err
		}
		if err := find("cudnnFindConvolutionBackwardDataAlgorithmEx", c.dataC, func(perf unsafe.Pointer, got *int32) int32 {
			return l.findData(b.dnnHandle, c.w, wp, c.y, y, c.dataC, c.x, x, dnnMaxAlgos, got, perf, wsp, wsb)
		}, b.dnnSizes(c)[1], &c.data); err != nil {
			return err
		}
		return find("cudnnFindConvolutionBackwardFilterAlgorithmEx", c.filterC, func(perf unsafe.Pointer, got *int32) int32 {
			return l.findFilter(b.dnnHandle, c.x, x, c.y, y, c.filterC, c.w, wp, dnnMaxAlgos, got, perf, wsp, wsb)
		}, b.dnnSizes(c)[2], &c.filter)
	})
	if err != nil {
		return false, err
	}
	c.describe = c.choices(g) + "; measured " + strings.Join(times, "; ")
	return 4*ws.N >= dnnMaxWorkspaceBytes, nil
}

// swap01 writes dst (B, A, n) from src (A, B, n), plus bias[j] on dst's
// rows (j, ·) where bias is not empty.
func (d *Device) swap01(dst, src, bias Buffer, a, b, n int) error {
	switch {
	case dst.N < a*b*n || src.N < a*b*n:
		return fmt.Errorf("cuda: swap01: buffers of %d and %d values for %d×%d×%d", dst.N, src.N, a, b, n)
	case bias.Ptr != 0 && bias.N < b:
		return fmt.Errorf("cuda: swap01: a bias of %d values for %d rows", bias.N, b)
	case a*b*n == 0:
		return nil
	}
	p, err := pack(d.b.argSpace(), []any{dst, src, bias, a, b, n})
	if err != nil {
		return err
	}
	t := min(threads, (n+31)/32*32)
	return d.b.launch("ncsn_swap01", [3]uint32{uint32(a * b), uint32(min((n+t-1)/t, 65535)), 1}, [3]uint32{uint32(t), 1, 1}, p)
}

// dnnForward writes y = w ⋆ x + bias.
func (d *Device) dnnForward(g Conv3, y, x, w, bias Buffer) error {
	c, err := d.dnnPrepare(g)
	if err != nil {
		return err
	}
	s := d.dnn
	oh, ow := Conv3Out(g.H, g.W, g.Stride)
	if p := c.graph[0]; p != nil && p.ours {
		if err := dnnFits("conv forward", g, x, w, y); err != nil {
			return err
		}
		if err := s.b.graphRun(p, x.Ptr, w.Ptr, y.Ptr, s.ws); err != nil {
			return err
		}
		if bias.Ptr == 0 {
			return nil
		}
		return d.launch1D("ncsn_bias_rows", g.O*g.B*oh*ow, y, bias, g.O, g.B*oh*ow)
	}
	if err := d.swap01(s.tX, x, Buffer{}, g.C, g.B, g.H*g.W); err != nil {
		return err
	}
	if err := s.b.conv3Forward(c, s.tY.Ptr, s.tX.Ptr, w.Ptr, s.ws); err != nil {
		return err
	}
	return d.swap01(y, s.tY, bias, g.B, g.O, oh*ow)
}

func (d *Device) dnnBackwardW(g Conv3, dw, x, dy Buffer) error {
	c, err := d.dnnPrepare(g)
	if err != nil {
		return err
	}
	s := d.dnn
	if p := c.graph[2]; p != nil && p.ours {
		if err := dnnFits("conv filter gradient", g, x, dw, dy); err != nil {
			return err
		}
		return s.b.graphRun(p, x.Ptr, dw.Ptr, dy.Ptr, s.ws)
	}
	oh, ow := Conv3Out(g.H, g.W, g.Stride)
	if err := d.swap01(s.tX, x, Buffer{}, g.C, g.B, g.H*g.W); err != nil {
		return err
	}
	if err := d.swap01(s.tY, dy, Buffer{}, g.O, g.B, oh*ow); err != nil {
		return err
	}
	return s.b.conv3BackwardFilter(c, dw.Ptr, s.tX.Ptr, s.tY.Ptr, s.ws)
}

func (d *Device) dnnBackwardX(g Conv3, dx, w, dy Buffer) error {
	c, err := d.dnnPrepare(g)
	if err != nil {
		return err
	}
	if p := c.graph[1]; p != nil && p.ours {
		if err := dnnFits("conv data gradient", g, dx, w, dy); err != nil {
			return err
		}
		return d.dnn.b.graphRun(p, dx.Ptr, w.Ptr, dy.Ptr, d.dnn.ws)
	}
	oh, ow := Conv3Out(g.H, g.W, g.Stride)
	if err := d.swap01(d.dnn.tY, dy, Buffer{}, g.O, g.B, oh*ow); err != nil {
		return err
	}
	return d.dnnDataFromCopy(c, g, dx, w)
}

// dnnFits checks that x (C·B·H·W values), w (O·C·9) and y (O·B·OH·OW) hold
// g's tensors, for a plan on our layout: no swap01 checks them there, and
// cuDNN would read or write past a short buffer's end.
func dnnFits(what string, g Conv3, x, w, y Buffer) error {
	oh, ow := Conv3Out(g.H, g.W, g.Stride)
	for _, b := range []struct {
		name      string
		got, need int
	}{{"x", x.N, g.C * g.B * g.H * g.W}, {"w", w.N, g.O * g.C * 9}, {"y", y.N, g.O * g.B * oh * ow}} {
		if b.got < b.need {
			return fmt.Errorf("cuda: %s: %s holds %d values, the shapes need %d", what, b.name, b.got, b.need)
		}
	}
	return nil
}

// dnnDataFromCopy writes dx from the NCHW copy of dy in the workspace tY,
// through the workspace tX.
func (d *Device) dnnDataFromCopy(c *dnnConv, g Conv3, dx, w Buffer) error {
	s := d.dnn
	if err := s.b.conv3BackwardData(c, s.tX.Ptr, w.Ptr, s.tY.Ptr, s.ws); err != nil {
		return err
	}
	return d.swap01(dx, s.tX, Buffer{}, g.B, g.C, g.H*g.W)
}

// dnnBackward writes dw and dx from one NCHW copy of dy: the filter's
// gradient first, while the copy of x is still there, then the input's
// into the same workspace. A direction planned on our layout takes dy as
// it is, and the other then makes its own copy.
func (d *Device) dnnBackward(g Conv3, dx, dw, x, w, dy Buffer) error {
	if err := d.dnnBackwardW(g, dw, x, dy); err != nil {
		return err
	}
	c, err := d.dnnPrepare(g)
	if err != nil {
		return err
	}
	if (c.graph[1] != nil && c.graph[1].ours) || (c.graph[2] != nil && c.graph[2].ours) {
		return d.dnnBackwardX(g, dx, w, dy) // no copy of dy made, or none needed
	}
	return d.dnnDataFromCopy(c, g, dx, w)
}

// ConvPlans lists the cuDNN algorithms chosen so far, one line per
// convolution geometry (empty without cuDNN).
func (d *Device) ConvPlans() []string {
	if d.dnn == nil {
		return nil
	}
	return d.dnn.plans
}

// closeDnn frees the convolutions' workspaces, graph-API plans and
// descriptors.
func (d *Device) closeDnn() {
	if d.dnn != nil {
		b := d.dnn.b
		b.do(func() error {
			for key, c := range b.dnnConvs {
				for i, p := range c.graph {
					if c.cands[i] != nil { // never tuned: graph[i] is the first
						p = b.graphKeep(c.cands[i], 0)
						c.cands[i] = nil
					}
					if p != nil {
						b.graphFree(p)
						c.graph[i] = nil
					}
				}
				c.free(b.dnn)
				delete(b.dnnConvs, key)
			}
			return nil
		})
	}
	if d.dnn != nil {
		for _, b := range []Buffer{d.dnn.ws, d.dnn.tX, d.dnn.tY} {
			d.Free(b)
		}
		d.dnn = nil
	}
}

// GraphTuneEnv, set to a count n from 2 to 16, makes each graph-API plan
// the fastest of the first n usable configurations of cuDNN's heuristics,
// timed on this GPU (as cudnn-frontend's autotuning), instead of the
// first; unset (or 1), the first.
const GraphTuneEnv = CudnnEnv + "_GRAPH_TUNE"

// graphTune reads GraphTuneEnv.
func graphTune() (int, error) {
	v := os.Getenv(GraphTuneEnv)
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 16 {
		return 0, fmt.Errorf("cuda: %s=%q: want a count of configurations from 1 to 16", GraphTuneEnv, v)
	}
	return n, nil
}
