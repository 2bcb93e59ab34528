//go:build linux

package cuda

import (
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// cuDNN's graph (backend) API for the 3×3 convolutions (cuDNN 9;
// NCSN_CUDNN=graph, and TF32's default; run on an H200 on 2026-11-28, and
// on the fake GPU's graph API in fakecuda.h): each direction of a geometry
// is an operation graph of one convolution, on our channel-major tensors
// described by their strides where cuDNN has an engine for them (no NCHW
// copies; not with NCSN_CUDNN_GRAPH_LAYOUT=nchw), else on the NCHW copies,
// planned with the first engine configuration of cuDNN's heuristics (mode
// A, then the fallback list) that is deterministic, exact float32 unless
// TF32 is on (no tensor-core, down-converting or reduced-precision note),
// finalizes, and asks at most 1 GiB of workspace; dnnWarmUp then runs each
// plan once outside any stream capture. In TF32 on an H200 the ncsnv2
// network trained 1.23× as fast as on the legacy API's algorithms (0.83×
// PyTorch's TF32 step, which runs cuDNN's sm90 kernels); in exact float32
// the engines it finds are slower than Find's. A direction with no such
// engine keeps the legacy algorithm.

// The backend API's enumerations (cudnn_graph.h of cuDNN 9).
const (
	dnbConvolution       = 1  // CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR
	dnbEngine            = 2  // CUDNN_BACKEND_ENGINE_DESCRIPTOR
	dnbEngineCfg         = 3  // CUDNN_BACKEND_ENGINECFG_DESCRIPTOR
	dnbEngineHeur        = 4  // CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR
	dnbExecutionPlan     = 5  // CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR
	dnbOpConvForward     = 10 // CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR
	dnbOpConvBackFilter  = 11 // CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR
	dnbOpConvBackData    = 12 // CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR
	dnbOperationGraph    = 15 // CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR
	dnbVariantPack       = 16 // CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR
	dnbTensor            = 17 // CUDNN_BACKEND_TENSOR_DESCRIPTOR
	dnaConvCompType      = 100
	dnaConvMode          = 101
	dnaConvDilations     = 102
	dnaConvStrides       = 103
	dnaConvPostPad       = 104
	dnaConvPrePad        = 105
	dnaConvSpatialDims   = 106
	dnaHeurMode          = 200
	dnaHeurGraph         = 201
	dnaHeurResults       = 202
	dnaCfgEngine         = 300
	dnaPlanHandle        = 400
	dnaPlanConfig        = 401
	dnaPlanWorkspace     = 402
	dnaFwdAlpha          = 700 // …_FORWARD_ALPHA; BETA, CONV_DESC, W, X, Y follow
	dnaDataAlpha         = 706 // …_BWD_DATA_ALPHA; BETA, CONV_DESC, W, DX, DY follow
	dnaFilterAlpha       = 712 // …_BWD_FILTER_ALPHA; BETA, CONV_DESC, DW, X, DY follow
	dnaGraphHandle       = 800
	dnaGraphOps          = 801
	dnaTensorAlignment   = 900
	dnaTensorDataType    = 901
	dnaTensorDims        = 902
	dnaTensorStrides     = 903
	dnaTensorUID         = 906
	dnaPackUIDs          = 1000
	dnaPackPointers      = 1001
	dnaPackWorkspace     = 1003
	dnaEngineIndex       = 1301
	dnaEngineNotes       = 1303
	dntHandle            = 0 // CUDNN_TYPE_HANDLE
	dntDataType          = 1
	dntInt64             = 3
	dntFloat             = 4
	dntVoidPtr           = 6
	dntConvMode          = 7
	dntHeurMode          = 8
	dntNumericalNote     = 11
	dntDescriptor        = 15
	dnHeurModeA          = 3 // CUDNN_HEUR_MODE_A
	dnHeurModeFallback   = 2 // CUDNN_HEUR_MODE_FALLBACK
	dnNoteTensorCore     = 0 // CUDNN_NUMERICAL_NOTE_TENSOR_CORE
	dnNoteDownConvert    = 1
	dnNoteReducedPrecSum = 2
	dnNoteNondet         = 4
)

// dnnGraphLib is the backend API's functions, where the loaded cuDNN has
// them (cuDNN 8.x and 9).
type dnnGraphLib struct {
	create   func(typ int32, desc *uintptr) int32
	destroy  func(desc uintptr) int32
	finalize func(desc uintptr) int32
	set      func(desc uintptr, name, typ int32, n int64, values unsafe.Pointer) int32
	get      func(desc uintptr, name, typ int32, want int64, got *int64, values unsafe.Pointer) int32
	execute  func(handle, plan, pack uintptr) int32
	// lastError is cudnnGetLastErrorString (cuDNN 9), where present: why
	// the last call failed, in cuDNN's words.
	lastError *func(msg *byte, n uintptr)
}

// loadGraphAPI binds the backend API from cuDNN's handle h; nil where a
// symbol is missing.
func loadGraphAPI(h uintptr) *dnnGraphLib {
	g := &dnnGraphLib{}
	for sym, fn := range g.symbols() {
		if _, err := purego.Dlsym(h, sym); err != nil {
			return nil
		}
		purego.RegisterLibFunc(fn, h, sym)
	}
	if _, err := purego.Dlsym(h, "cudnnGetLastErrorString"); err == nil {
		var f func(msg *byte, n uintptr)
		purego.RegisterLibFunc(&f, h, "cudnnGetLastErrorString")
		g.lastError = &f
	}
	return g
}

// why is cuDNN's own account of the last failure (": …"), or "".
func (g *dnnGraphLib) why() string {
	if g.lastError == nil {
		return ""
	}
	msg := make([]byte, 512)
	(*g.lastError)(&msg[0], uintptr(len(msg)))
	if s := cString(&msg[0]); s != "" {
		return ": " + s
	}
	return ""
}

// symbols maps each function of the backend API to its field.
func (g *dnnGraphLib) symbols() map[string]any {
	return map[string]any{
		"cudnnBackendCreateDescriptor": &g.create, "cudnnBackendDestroyDescriptor": &g.destroy,
		"cudnnBackendFinalize": &g.finalize, "cudnnBackendSetAttribute": &g.set,
		"cudnnBackendGetAttribute": &g.get, "cudnnBackendExecute": &g.execute,
	}
}

// dnnGraphPlan is one direction of a geometry planned on the graph API.
type dnnGraphPlan struct {
	plan   uintptr
	ws     uint64 // workspace bytes
	engine int64  // the engine's global index
	// ours: the plan runs on our channel-major tensors as they are (their
	// strides describe them), with no NCHW copies.
	ours bool
	// skipped names the configurations heuristics ranked before it and
	// why each was passed over (at most dnnSkippedShown): their engine
	// and numerical notes, or the status of a plan that did not finalize.
	skipped []string
	// pos is the configuration's place among the heuristics' (A3: mode
	// A's fourth, F0: the fallback list's first), as the tuning cache
	// keeps a choice.
	pos   string
	kept  bool                  // taken from the tuning cache (a choice an earlier run timed)
	other bool                  // and that run tuned it while this one did (dnnTakeKept)
	descs []uintptr             // the descriptors it was built from (nil: another candidate's plan holds them)
	packs map[[4]DevPtr]uintptr // variant packs by (x, w, y, workspace)
}

// choice names p's configuration as the tuning cache keeps it ("ours:A3").
func (p *dnnGraphPlan) choice() string {
	if p.ours {
		return "ours:" + p.pos
	}
	return "nchw:" + p.pos
}

// The unique ids of the three tensors of every plan: x, w, y in the
// forward direction (dx, dy in the data gradient's, dw, dy in the
// filter's).
var dnnGraphUIDs = [3]int64{1, 2, 3}

// dnnBuilder makes descriptors, keeping the first error and every
// descriptor made (destroyed with the plan, or at once if it fails).
type dnnBuilder struct {
	l     *dnnGraphLib
	err   error
	descs []uintptr
}

func (b *dnnBuilder) make(typ int32) uintptr {
	var d uintptr
	if b.err == nil {
		if r := b.l.create(typ, &d); r != 0 {
			b.err = fmt.Errorf("cudnnBackendCreateDescriptor(%d): status %d%s", typ, r, b.l.why())
			return 0
		}
		b.descs = append(b.descs, d)
	}
	return d
}

func (b *dnnBuilder) set(d uintptr, name, typ int32, n int, p unsafe.Pointer) {
	if b.err == nil {
		if r := b.l.set(d, name, typ, int64(n), p); r != 0 {
			b.err = fmt.Errorf("cudnnBackendSetAttribute(%d): status %d%s", name, r, b.l.why())
		}
	}
}

func (b *dnnBuilder) finalize(d uintptr, what string) {
	if b.err == nil {
		if r := b.l.finalize(d); r != 0 {
			b.err = fmt.Errorf("cudnnBackendFinalize(%s): status %d%s", what, r, b.l.why())
		}
	}
}

func (b *dnnBuilder) free() {
	for i := len(b.descs) - 1; i >= 0; i-- {
		b.l.destroy(b.descs[i])
	}
	b.descs = nil
}

// graphPlan plans direction dir (0 forward, 1 data gradient, 2 filter
// gradient) of g on our channel-major tensors (ours) or on the NCHW
// copies, with the first usable configuration of the heuristics; it runs
// on the worker thread.
func (d *driverBackend) graphPlan(dir int, g Conv3, tf32, ours bool) (*dnnGraphPlan, error) {
	ps, err := d.graphPlans(dir, g, tf32, ours, 1, "")
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// graphPlans plans direction dir of g as graphPlan does, with up to want
// usable configurations in the heuristics' order (the first holds the
// descriptors; graphKeep makes another the one kept), or with only the
// configuration at pos (kept, where not ""); at least one, or an error.
func (d *driverBackend) graphPlans(dir int, g Conv3, tf32, ours bool, want int, kept string) ([]*dnnGraphPlan, error) {
	l := d.dnnGraph
	b := &dnnBuilder{l: l}
	oh, ow := Conv3Out(g.H, g.W, g.Stride)
	tensor := func(uid int64, dims [4]int64) uintptr {
		t := b.make(dnbTensor)
		dt := int32(dnnFloat)
		strides := [4]int64{dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1}
		if ours && uid != dnnGraphUIDs[1] { // (C, B, H, W) described as N, C, H, W
			strides = [4]int64{dims[2] * dims[3], dims[0] * dims[2] * dims[3], dims[3], 1}
		}
		align := int64(16)
		b.set(t, dnaTensorDataType, dntDataType, 1, unsafe.Pointer(&dt))
		b.set(t, dnaTensorDims, dntInt64, 4, unsafe.Pointer(&dims[0]))
		b.set(t, dnaTensorStrides, dntInt64, 4, unsafe.Pointer(&strides[0]))
		b.set(t, dnaTensorUID, dntInt64, 1, unsafe.Pointer(&uid))
		b.set(t, dnaTensorAlignment, dntInt64, 1, unsafe.Pointer(&align))
		b.finalize(t, "tensor")
		return t
	}
	x := tensor(dnnGraphUIDs[0], [4]int64{int64(g.B), int64(g.C), int64(g.H), int64(g.W)})
	w := tensor(dnnGraphUIDs[1], [4]int64{int64(g.O), int64(g.C), 3, 3})
	y := tensor(dnnGraphUIDs[2], [4]int64{int64(g.B), int64(g.O), int64(oh), int64(ow)})

	cv := b.make(dnbConvolution)
	comp, mode, dims := int32(dnnFloat), int32(dnnCrossCorrelation), int64(2)
	ones, strides := [2]int64{1, 1}, [2]int64{int64(g.Stride), int64(g.Stride)}
	b.set(cv, dnaConvCompType, dntDataType, 1, unsafe.Pointer(&comp))
	b.set(cv, dnaConvMode, dntConvMode, 1, unsafe.Pointer(&mode))
	b.set(cv, dnaConvSpatialDims, dntInt64, 1, unsafe.Pointer(&dims))
	b.set(cv, dnaConvDilations, dntInt64, 2, unsafe.Pointer(&ones[0]))
	b.set(cv, dnaConvStrides, dntInt64, 2, unsafe.Pointer(&strides[0]))
	b.set(cv, dnaConvPrePad, dntInt64, 2, unsafe.Pointer(&ones[0]))
	b.set(cv, dnaConvPostPad, dntInt64, 2, unsafe.Pointer(&ones[0]))
	b.finalize(cv, "convolution")

	// Each operation's attributes: α, β, the convolution, then its three
	// tensors in the header's order.
	typ, first, tensors := int32(dnbOpConvForward), int32(dnaFwdAlpha), [3]uintptr{w, x, y}
	switch dir {
	case 1:
		typ, first, tensors = dnbOpConvBackData, dnaDataAlpha, [3]uintptr{w, x, y} // W, DX, DY
	case 2:
		typ, first, tensors = dnbOpConvBackFilter, dnaFilterAlpha, [3]uintptr{w, x, y} // DW, X, DY
	}
	op := b.make(typ)
	alpha, beta := float32(1), float32(0)
	b.set(op, first, dntFloat, 1, unsafe.Pointer(&alpha))
	b.set(op, first+1, dntFloat, 1, unsafe.Pointer(&beta))
	b.set(op, first+2, dntDescriptor, 1, unsafe.Pointer(&cv))
	for i := range tensors {
		b.set(op, first+3+int32(i), dntDescriptor, 1, unsafe.Pointer(&tensors[i]))
	}
	b.finalize(op, "convolution operation")

	og := b.make(dnbOperationGraph)
	handle := d.dnnHandle
	b.set(og, dnaGraphHandle, dntHandle, 1, unsafe.Pointer(&handle))
	b.set(og, dnaGraphOps, dntDescriptor, 1, unsafe.Pointer(&op))
	b.finalize(og, "operation graph")

	// The engine configurations of heuristics mode A, then those of the
	// fallback list (where deterministic float32 engines that A leaves out
	// may be; an engine of both may come with other knobs there).
	tried, total, last := 0, 0, ""
	var skipped []string
	var plans []*dnnGraphPlan
	skip := func(why string) {
		if len(skipped) < dnnSkippedShown {
			skipped = append(skipped, why)
		}
	}
	for _, mode := range []int32{dnHeurModeA, dnHeurModeFallback} {
		heur := b.make(dnbEngineHeur)
		hmode := mode
		b.set(heur, dnaHeurGraph, dntDescriptor, 1, unsafe.Pointer(&og))
		b.set(heur, dnaHeurMode, dntHeurMode, 1, unsafe.Pointer(&hmode))
		b.finalize(heur, "engine heuristics")
		var n int64
		if b.err == nil {
			if r := l.get(heur, dnaHeurResults, dntDescriptor, 0, &n, nil); r != 0 {
				b.err = fmt.Errorf("cudnnBackendGetAttribute(heuristics' results): status %d%s", r, l.why())
			}
		}
		cfgs := make([]uintptr, max(n, 0))
		for i := range cfgs {
			cfgs[i] = b.make(dnbEngineCfg)
		}
		if b.err == nil && n > 0 {
			if r := l.get(heur, dnaHeurResults, dntDescriptor, n, &n, unsafe.Pointer(&cfgs[0])); r != 0 {
				b.err = fmt.Errorf("cudnnBackendGetAttribute(heuristics' results): status %d%s", r, l.why())
			}
		}
		if b.err != nil {
			if mode == dnHeurModeA {
				b.free()
				return nil, b.err
			}
			last += fmt.Sprintf("; the fallback list: %v", b.err)
			b.err = nil
			break
		}
		n = min(max(n, 0), int64(len(cfgs))) // the count cuDNN reports may exceed what it wrote
		total += int(n)
		for i, cfg := range cfgs[:n] {
			pos := fmt.Sprintf("%c%d", map[bool]byte{true: 'A', false: 'F'}[mode == dnHeurModeA], i)
			if kept != "" && pos != kept {
				continue
			}
			eng := b.make(dnbEngine)
			var k, nNotes, index int64
			notes := make([]int32, 16)
			if b.err != nil || l.get(cfg, dnaCfgEngine, dntDescriptor, 1, &k, unsafe.Pointer(&eng)) != 0 ||
				l.get(eng, dnaEngineNotes, dntNumericalNote, int64(len(notes)), &nNotes, unsafe.Pointer(&notes[0])) != 0 ||
				nNotes < 0 || nNotes > int64(len(notes)) {
				continue
			}
			if l.get(eng, dnaEngineIndex, dntInt64, 1, &k, unsafe.Pointer(&index)) != 0 {
				index = -1
			}
			if !graphNotesAllowed(notes[:nNotes], tf32) {
				skip(fmt.Sprintf("e%d%s", index, noteNames(notes[:nNotes])))
				continue
			}
			tried++
			var plan uintptr
			if l.create(dnbExecutionPlan, &plan) != 0 {
				continue
			}
			cfgv := cfg
			var ws int64
			r := l.set(plan, dnaPlanHandle, dntHandle, 1, unsafe.Pointer(&handle))
			if r == 0 {
				r = l.set(plan, dnaPlanConfig, dntDescriptor, 1, unsafe.Pointer(&cfgv))
			}
			if r == 0 {
				r = l.finalize(plan)
			}
			if r == 0 {
				r = l.get(plan, dnaPlanWorkspace, dntInt64, 1, &k, unsafe.Pointer(&ws))
			}
			if r != 0 || ws < 0 || ws > dnnMaxWorkspaceBytes {
				why := ""
				if r != 0 {
					why = l.why() // only for a failed call: an older reason may linger
				}
				last = fmt.Sprintf("; the last: engine %d, status %d%s, workspace %d B", index, r, why, ws)
				skip(fmt.Sprintf("e%d%s status %d ws %d", index, noteNames(notes[:nNotes]), r, ws))
				l.destroy(plan)
				continue
			}
			plans = append(plans, &dnnGraphPlan{plan: plan, ws: uint64(ws), engine: index, ours: ours, skipped: skipped, pos: pos, packs: map[[4]DevPtr]uintptr{}})
			if len(plans) >= want {
				break
			}
		}
		if b.err != nil { // an engine descriptor not made
			for _, p := range plans {
				l.destroy(p.plan)
			}
			b.free()
			return nil, b.err
		}
		if len(plans) >= want {
			break
		}
	}
	if len(plans) > 0 {
		plans[0].descs = b.descs
		return plans, nil
	}
	b.free()
	if kept != "" {
		return nil, fmt.Errorf("the kept configuration %s gave no plan%s", kept, last)
	}
	return nil, fmt.Errorf("none of the %d engine configurations of heuristics mode A and the fallback list (%d of them deterministic and %s) gave a plan%s", total, tried,
		map[bool]string{true: "allowed in TF32", false: "exact float32"}[tf32], last)
}

// dnnSkippedShown is how many passed-over configurations a plan names.
const dnnSkippedShown = 8

// noteNames is a short form of an engine's numerical notes, for the
// description of a plan: [tc nondet …], or "" for none.
func noteNames(notes []int32) string {
	if len(notes) == 0 {
		return ""
	}
	names := map[int32]string{dnNoteTensorCore: "tc", dnNoteDownConvert: "down", dnNoteReducedPrecSum: "rpr", 3: "fft", dnNoteNondet: "nondet", 5: "winograd"}
	s := ""
	for i, n := range notes {
		if i > 0 {
			s += " "
		}
		if name, ok := names[n]; ok {
			s += name
		} else {
			s += fmt.Sprint(n)
		}
	}
	return "[" + s + "]"
}

// graphNotesAllowed says whether an engine with these numerical notes may
// run: never a nondeterministic one, nor one converting its float32 inputs
// down (to half precision) or summing in reduced precision; one on tensor
// cores (TF32 for float32 tensors) only with TF32 on — PyTorch's filter.
func graphNotesAllowed(notes []int32, tf32 bool) bool {
	for _, n := range notes {
		switch n {
		case dnNoteNondet, dnNoteDownConvert, dnNoteReducedPrecSum:
			return false
		case dnNoteTensorCore:
			if !tf32 {
				return false
			}
		}
	}
	return true
}

// graphRun executes p on the tensors x, w, y (its direction's roles, in the
// order of dnnGraphUIDs) with the workspace ws.
func (d *driverBackend) graphRun(p *dnnGraphPlan, x, w, y DevPtr, ws Buffer) error {
	if p.ws > 0 && uint64(ws.N)*4 < p.ws { // the pack holds no size: cuDNN would write past it
		return fmt.Errorf("cuda: cuDNN graph API: engine %d needs %d B of workspace, and %d B are there", p.engine, p.ws, uint64(ws.N)*4)
	}
	return d.do(func() error {
		l := d.dnnGraph
		key := [4]DevPtr{x, w, y, ws.Ptr}
		pack, kept := p.packs[key]
		if !kept {
			b := &dnnBuilder{l: l}
			pack = b.make(dnbVariantPack)
			uids := dnnGraphUIDs
			ptrs := [3]uintptr{uintptr(x), uintptr(w), uintptr(y)}
			wsp := uintptr(ws.Ptr)
			b.set(pack, dnaPackUIDs, dntInt64, 3, unsafe.Pointer(&uids[0]))
			b.set(pack, dnaPackPointers, dntVoidPtr, 3, unsafe.Pointer(&ptrs[0]))
			b.set(pack, dnaPackWorkspace, dntVoidPtr, 1, unsafe.Pointer(&wsp))
			b.finalize(pack, "variant pack")
			if b.err != nil {
				b.free()
				return fmt.Errorf("cuda: cuDNN graph API: %w", b.err)
			}
			if len(p.packs) < 256 { // the buffers of a graph run stay put: a pack per layer of the plan's geometry and direction
				p.packs[key] = pack
				kept = true
			}
		}
		r := l.execute(d.dnnHandle, p.plan, pack)
		if !kept {
			l.destroy(pack)
		}
		if r != 0 {
			return fmt.Errorf("%w%s", d.dnn.check("cudnnBackendExecute", r), l.why())
		}
		return nil
	})
}

// graphKeep returns the plan of ps (graphPlans') at k, freeing the others'
// plans and giving it the descriptors.
func (d *driverBackend) graphKeep(ps []*dnnGraphPlan, k int) *dnnGraphPlan {
	keep := ps[k]
	for i, p := range ps {
		if i != k {
			if p.descs != nil {
				keep.descs, p.descs = p.descs, nil
			}
			d.graphFree(p)
		}
	}
	return keep
}

// graphFree destroys p's plan, variant packs and descriptors.
func (d *driverBackend) graphFree(p *dnnGraphPlan) {
	l := d.dnnGraph
	for _, pack := range p.packs {
		l.destroy(pack)
	}
	l.destroy(p.plan)
	(&dnnBuilder{l: l, descs: p.descs}).free()
}
