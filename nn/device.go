package nn

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ncsn-go/ncsn/internal/cuda"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// DeviceRun runs the forward graph of this package's operators on a
// device (a GPU, or in tests its CPU emulation): the same graph the tape
// machine runs on the CPU, each operator replaced by its kernels, every
// value held in device memory. Leaves (weights and inputs) are uploaded
// from their Go values by Upload; outputs are read back by Download.
//
// Training graphs run too: the gradient operators of this package, and
// the sums and the unit seed that gorgonia.Grad adds, have their kernels;
// the loss stays on the device but for each image's value (PerImage).
type DeviceRun struct {
	dev   *cuda.Device
	buf   map[*G.Node]cuda.Buffer
	steps []func() error
	owned []cuda.Buffer
	// What gradient operators take from their forward operators, and the
	// values that stash operators hand on (by role: dw, db, dγ, dβ).
	convs map[*convOp]cuda.Conv3
	stats map[*gnOp]cuda.Buffer
	aux   map[*G.Node]map[string]cuda.Buffer
	per   map[*G.Node]cuda.Buffer // a loss node's per-image values
	// The 3×3 convolutions' im2col workspaces, one of each shared by all
	// (steps run one after another): patches of the input, and of ∂y's
	// product with the weights; colNeed is the largest size asked.
	col, dcol cuda.Buffer
	colNeed   int
	// With NCSN_DEVICE_PROFILE=1, Run waits for each step and adds its
	// time to its operator's line (Profile).
	labels []string
	prof   map[string]*opTime
	// With the device's Graphs, the first run goes step by step (anything
	// done once happens there), then captures the steps as graph and
	// launches it: every run's result, the first's too, is the graph's.
	// noGraph: a capture failed (without GraphsAsked), steps one by one.
	ranSteps, noGraph bool
	graph             *cuda.Graph
}

// opTime is an operator's share of the profiled runs.
type opTime struct {
	d time.Duration
	n int
}

// need prepares a convolution: the device plans it (cuDNN's algorithms and
// workspace), and where it runs as im2col and products its workspace size
// is recorded.
func (r *DeviceRun) need(g cuda.Conv3) error {
	if !r.dev.UsesIm2col() {
		return r.dev.PlanConv3(g)
	}
	r.colNeed = max(r.colNeed, g.ColSize())
	return nil
}

// view is the first n values of a shared workspace.
func (r *DeviceRun) view(b cuda.Buffer, n int) cuda.Buffer { return cuda.Buffer{Ptr: b.Ptr, N: n} }

// NewDeviceRun plans the graph g on dev, allocating a buffer for every node.
func NewDeviceRun(dev *cuda.Device, g *G.ExprGraph) (*DeviceRun, error) {
	sorted, err := G.Sort(g)
	if err != nil {
		return nil, fmt.Errorf("nn: sorting the graph: %w", err)
	}
	slices.Reverse(sorted) // leaves first
	r := &DeviceRun{dev: dev, buf: map[*G.Node]cuda.Buffer{}, convs: map[*convOp]cuda.Conv3{},
		stats: map[*gnOp]cuda.Buffer{}, aux: map[*G.Node]map[string]cuda.Buffer{}, per: map[*G.Node]cuda.Buffer{}}
	for _, n := range sorted {
		if n.Dtype() != tensor.Float32 {
			r.Close()
			return nil, fmt.Errorf("nn: device graphs are float32; %s is %v", n.Name(), n.Dtype())
		}
		if st, ok := n.Op().(*stashOp); ok { // a value another step computes
			b, err := r.stashed(n, st)
			if err != nil {
				r.Close()
				return nil, err
			}
			r.buf[n] = b
			continue
		}
		b, err := r.alloc(n.Shape().TotalSize())
		if err != nil {
			r.Close()
			return nil, err
		}
		r.buf[n] = b
		if n.Op() == nil {
			continue
		}
		if isConstant(n) {
			v, ok := n.Value().Data().(float32)
			if !ok {
				r.Close()
				return nil, fmt.Errorf("nn: constant %s is not a float32 scalar", n.Name())
			}
			if err := dev.Upload(b, []float32{v}); err != nil {
				r.Close()
				return nil, err
			}
			continue
		}
		step, err := r.plan(n)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.steps = append(r.steps, step)
		r.labels = append(r.labels, stepLabel(n))
	}
	if os.Getenv("NCSN_DEVICE_PROFILE") == "1" {
		r.prof = map[string]*opTime{}
	}
	if r.colNeed > 0 {
		if r.col, err = r.alloc(r.colNeed); err == nil {
			r.dcol, err = r.alloc(r.colNeed)
		}
		if err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

func (r *DeviceRun) alloc(n int) (cuda.Buffer, error) {
	b, err := r.dev.Alloc(max(n, 1))
	if err == nil {
		r.owned = append(r.owned, b)
	}
	return b, err
}

// Close frees the run's device memory.
func (r *DeviceRun) Close() {
	r.graph.Close()
	r.graph = nil
	for _, b := range r.owned {
		r.dev.Free(b)
	}
	r.owned = nil
}

// Upload copies the Go values of leaves (weights, inputs) to the device.
func (r *DeviceRun) Upload(nodes ...*G.Node) error {
	for _, n := range nodes {
		b, ok := r.buf[n]
		if !ok {
			return fmt.Errorf("nn: %s is not a node of the device graph", n.Name())
		}
		v, ok := n.Value().Data().([]float32)
		if !ok {
			return fmt.Errorf("nn: %s holds no float32 value to upload", n.Name())
		}
		if err := r.dev.Upload(b, v); err != nil {
			return err
		}
	}
	return nil
}

// Run executes the graph on the device.
func (r *DeviceRun) Run() error {
	if r.prof != nil {
		return r.runProfiled()
	}
	return r.dev.Batch(func() error {
		if !r.dev.Graphs || r.noGraph {
			return r.runSteps()
		}
		if r.graph != nil && r.graph.Stale() { // a later graph's convolutions grew the workspaces
			r.graph.Close()
			r.graph = nil
		}
		if r.graph == nil {
			first := !r.ranSteps
			if first {
				if err := r.runSteps(); err != nil {
					return err
				}
				r.ranSteps = true
			}
			g, err := r.dev.Capture(r.runSteps)
			if err != nil && r.dev.GraphsAsked {
				return fmt.Errorf("nn: capturing the graph's %d steps (%s=1; %s=0 runs them one by one): %w", len(r.steps), cuda.GraphEnv, cuda.GraphEnv, err)
			}
			if err != nil {
				r.noGraph = true
				if r.dev.Log != nil {
					fmt.Fprintf(r.dev.Log, "note: a graph of %d steps runs kernel by kernel: its capture as a CUDA graph failed: %v\n", len(r.steps), err)
				}
				if first { // nothing ran in the capture: the steps' own run stands
					return nil
				}
				return r.runSteps()
			}
			r.graph = g
		}
		return r.graph.Launch()
	})
}

// runSteps runs the steps one by one.
func (r *DeviceRun) runSteps() error {
	for _, s := range r.steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

func (r *DeviceRun) runProfiled() error {
	if err := r.dev.Synchronize(); err != nil {
		return err
	}
	for i, s := range r.steps {
		t := time.Now()
		if err := s(); err != nil {
			return err
		}
		if err := r.dev.Synchronize(); err != nil {
			return err
		}
		p := r.prof[r.labels[i]]
		if p == nil {
			p = &opTime{}
			r.prof[r.labels[i]] = p
		}
		p.d += time.Since(t)
		p.n++
	}
	return nil
}

// Profile is the time each operator took in the runs so far, by
// operator, longest first (NCSN_DEVICE_PROFILE=1; empty otherwise).
func (r *DeviceRun) Profile() string {
	var total time.Duration
	var names []string
	for k, p := range r.prof {
		names = append(names, k)
		total += p.d
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(r.prof[b].d, r.prof[a].d) })
	var sb strings.Builder
	for _, k := range names {
		p := r.prof[k]
		fmt.Fprintf(&sb, "%-28s %9.3f ms %5.1f%% (%d calls)\n", k, float64(p.d.Microseconds())/1000, 100*float64(p.d)/float64(total), p.n)
	}
	fmt.Fprintf(&sb, "%-28s %9.3f ms\n", "total", float64(total.Microseconds())/1000)
	return sb.String()
}

// stepLabel names a step's operator for the profile.
func stepLabel(n *G.Node) string {
	switch op := n.Op().(type) {
	case *convOp:
		if op.geom.pointwise() {
			return "conv1x1"
		}
		return fmt.Sprintf("conv3x3 stride %d", op.geom.Stride)
	}
	t := fmt.Sprintf("%T", n.Op())
	t = strings.TrimPrefix(strings.TrimPrefix(t, "*"), "nn.")
	return strings.TrimPrefix(t, "gorgonia.")
}

// PerImage copies each image's loss of a loss node (ResidualLoss,
// SoftmaxCrossEntropy) from the last run into dst. The loss node's own
// value, their mean, is not computed on the device: Download of a loss
// node is refused.
func (r *DeviceRun) PerImage(loss *G.Node, dst []float32) error {
	b, ok := r.per[loss]
	if !ok {
		return fmt.Errorf("nn: %s is not a loss of the device graph", loss.Name())
	}
	return r.dev.Download(dst, b)
}

// Probabilities copies the softmax probabilities (B × K) of a
// cross-entropy node (SoftmaxCrossEntropy) from the last run into dst.
func (r *DeviceRun) Probabilities(ce *G.Node, dst []float32) error {
	b, ok := r.aux[ce]["p"]
	if _, isCE := ce.Op().(*SoftmaxCEOp); !ok || !isCE {
		return fmt.Errorf("nn: %s is not a cross-entropy of the device graph", ce.Name())
	}
	return r.dev.Download(dst, b)
}

// Buffer is the device buffer of a node (a weight, an input, a gradient).
func (r *DeviceRun) Buffer(n *G.Node) (cuda.Buffer, bool) {
	b, ok := r.buf[n]
	return b, ok
}

// isConstant reports whether n is one of Gorgonia's constants (the seed
// of gorgonia.Grad).
func isConstant(n *G.Node) bool {
	return fmt.Sprintf("%T", n.Op()) == "gorgonia.constantScalar"
}

// isSum reports whether n is Gorgonia's elementwise a + b of two operands
// of its shape (gorgonia.Grad sums the gradients of a shared node so).
func isSum(n *G.Node, in []*G.Node) bool {
	return fmt.Sprintf("%T", n.Op()) == "gorgonia.elemBinOp" && strings.HasPrefix(n.Op().String(), "+") &&
		len(in) == 2 && in[0].Shape().Eq(n.Shape()) && in[1].Shape().Eq(n.Shape())
}

// stashed is the buffer a stash operator hands on: the role its name
// ends with, from the gradient step of its one operand.
func (r *DeviceRun) stashed(n *G.Node, st *stashOp) (cuda.Buffer, error) {
	var src *G.Node
	for it := n.Graph().From(n.ID()); it.Next(); {
		src = it.Node().(*G.Node)
	}
	role := st.name[strings.LastIndex(st.name, ".")+1:]
	b, ok := r.aux[src][role]
	if !ok {
		return cuda.Buffer{}, fmt.Errorf("nn: %s: no %s from %s on the device", n.Name(), role, src.Name())
	}
	return b, nil
}

// keep allocates a buffer of n values that a step of node computes for a
// stash operator under role.
func (r *DeviceRun) keep(node *G.Node, role string, n int) (cuda.Buffer, error) {
	b, err := r.alloc(n)
	if err != nil {
		return b, err
	}
	if r.aux[node] == nil {
		r.aux[node] = map[string]cuda.Buffer{}
	}
	r.aux[node][role] = b
	return b, nil
}

// Download copies a node's value from the device into dst.
func (r *DeviceRun) Download(n *G.Node, dst []float32) error {
	b, ok := r.buf[n]
	if !ok {
		return fmt.Errorf("nn: %s is not a node of the device graph", n.Name())
	}
	if _, loss := r.per[n]; loss {
		return fmt.Errorf("nn: %s is a loss: its mean is not computed on the device (PerImage gives each image's)", n.Name())
	}
	return r.dev.Download(dst, b)
}

// plan maps one operator node to its kernels.
func (r *DeviceRun) plan(n *G.Node) (func() error, error) {
	d := r.dev
	var in []*G.Node // the operands, in order
	for it := n.Graph().From(n.ID()); it.Next(); {
		in = append(in, it.Node().(*G.Node))
	}
	out := r.buf[n]
	b := func(i int) cuda.Buffer { return r.buf[in[i]] }
	s := func(i int) tensor.Shape { return in[i].Shape() }
	switch op := n.Op().(type) {
	case *linearOp:
		bs, ws := s(0), s(1)
		return func() error { return d.Linear(out, b(0), b(1), b(2), bs[0], ws[0], ws[1]) }, nil
	case *siluOp:
		return func() error { return d.SiLU(out, b(0)) }, nil
	case *addOp:
		return func() error { return d.Add(out, b(0), b(1)) }, nil
	case *convOp:
		xs, ws := s(0), s(1)
		switch {
		case op.geom.pointwise():
			return func() error { return d.Pointwise(out, b(0), b(1), b(2), xs[0], ws[0], xs[1]*xs[2]*xs[3]) }, nil
		case op.geom.K == 3 && op.geom.Pad == 1:
			g := cuda.Conv3{C: xs[0], O: ws[0], B: xs[1], H: xs[2], W: xs[3], Stride: op.geom.Stride}
			if err := r.need(g); err != nil {
				return nil, err
			}
			r.convs[op] = g
			return func() error {
				g.Col = r.view(r.col, g.ColSize())
				return d.Conv3Forward(g, out, b(0), b(1), b(2))
			}, nil
		}
		return nil, fmt.Errorf("nn: no device kernels for a %d×%d convolution of stride %d, pad %d", op.geom.K, op.geom.K, op.geom.Stride, op.geom.Pad)
	case *gnOp:
		xs := s(0)
		stats, err := r.alloc(2 * op.groups * xs[1])
		if err != nil {
			return nil, err
		}
		r.stats[op] = stats
		return func() error {
			return d.GroupNormSiLU(out, stats, b(0), b(1), b(2), xs[0], xs[1], xs[2]*xs[3], op.groups, gnEps)
		}, nil
	case *chanBiasOp:
		hs := s(0)
		return func() error {
			if err := d.Copy(out, 0, b(0)); err != nil {
				return err
			}
			return d.ChannelBias(out, b(1), hs[0], hs[1], hs[2]*hs[3])
		}, nil
	case *scaleBatchOp:
		hs := s(0)
		return func() error { return d.ScaleBatch(out, b(0), b(1), hs[0], hs[1], hs[2]*hs[3]) }, nil
	case *upsampleOp:
		xs := s(0)
		return func() error { return d.Upsample2x(out, b(0), xs[0]*xs[1], xs[2], xs[3]) }, nil
	case *concatOp:
		return func() error {
			if err := d.Copy(out, 0, b(0)); err != nil {
				return err
			}
			return d.Copy(out, b(0).N, b(1))
		}, nil
	case *flattenOp: // (C, B, H, W) ↔ rows (B, C·H·W): the graph's layout to images and back
		sh := op.shape
		if op.inverse {
			return func() error { return d.ToGraph(out, b(0), 0, sh[1], sh[0], sh[1], sh[2]*sh[3]) }, nil
		}
		return func() error { return d.FromGraph(out, b(0), 0, sh[1], sh[0], sh[1], sh[2]*sh[3]) }, nil
	case *SoftmaxCEOp: // (logits, one-hot) → each row's probabilities and cross-entropy
		ls := s(0)
		per, err := r.alloc(ls[0])
		if err != nil {
			return nil, err
		}
		p, err := r.keep(n, "p", ls.TotalSize())
		if err != nil {
			return nil, err
		}
		r.per[n] = per
		return func() error { return d.SoftmaxCE(p, per, b(0), b(1), ls[0], ls[1]) }, nil
	case *probeDotOp: // (s, v) → Σ s⊙v, a 1×k by k×1 product
		k := s(0).TotalSize()
		return func() error { return d.Gemm(false, false, 1, 1, k, 1, b(0), b(1), 0, out) }, nil
	}
	if isSum(n, in) {
		return func() error { return d.Add(out, b(0), b(1)) }, nil
	}
	return r.planGrad(n, in, out)
}

// planGrad maps the gradient operators.
func (r *DeviceRun) planGrad(n *G.Node, in []*G.Node, out cuda.Buffer) (func() error, error) {
	d := r.dev
	b := func(i int) cuda.Buffer { return r.buf[in[i]] }
	s := func(i int) tensor.Shape { return in[i].Shape() }
	switch op := n.Op().(type) {
	case *ResidualLossOp: // (s, σ, z): each image's loss, and ∂s of their mean
		ss := s(0)
		per, err := r.alloc(ss[1])
		if err != nil {
			return nil, err
		}
		ds, err := r.keep(n, "ds", ss.TotalSize())
		if err != nil {
			return nil, err
		}
		r.per[n] = per
		return func() error { return d.ResidualLoss(per, ds, b(0), b(1), b(2), ss[0], ss[1], ss[2]*ss[3]) }, nil
	case *residualGradOp: // (s, σ, z, ∂loss): the loss step's ∂s, for ∂loss = 1
		seed := in[3]
		if v, ok := seed.Value().Data().(float32); !isConstant(seed) || !ok || v != 1 {
			return nil, fmt.Errorf("nn: %s: the device takes the loss's gradient seed as the constant 1", n.Name())
		}
		var loss *G.Node
		for l := range r.per {
			if _, ok := l.Op().(*ResidualLossOp); ok && sameOperands(l, in[:3]) {
				loss = l
			}
		}
		if loss == nil {
			return nil, fmt.Errorf("nn: %s: its loss node is not on the device", n.Name())
		}
		ds := r.aux[loss]["ds"]
		return func() error { return d.Copy(out, 0, ds) }, nil
	case *softmaxCEGradOp: // (logits, one-hot, ∂cost) → (p − y)/B, for ∂cost = 1
		if v, ok := in[2].Value().Data().(float32); !isConstant(in[2]) || !ok || v != 1 {
			return nil, fmt.Errorf("nn: %s: the device takes the cross-entropy's gradient seed as the constant 1", n.Name())
		}
		var ce *G.Node
		for l := range r.per {
			if l.Op() == op.fwd {
				ce = l
			}
		}
		if ce == nil {
			return nil, fmt.Errorf("nn: %s: its cross-entropy node is not on the device", n.Name())
		}
		p, batch := r.aux[ce]["p"], s(0)[0]
		return func() error { return d.SoftmaxCEGrad(out, p, b(1), 1/float64(batch)) }, nil
	case *probeGradOp: // (v, ∂cost) → ∂s = ∂cost·v, for ∂cost = 1
		if v, ok := in[1].Value().Data().(float32); !isConstant(in[1]) || !ok || v != 1 {
			return nil, fmt.Errorf("nn: %s: the device takes the probe's gradient seed as the constant 1", n.Name())
		}
		return func() error { return d.Copy(out, 0, b(0)) }, nil
	case *conv3GradOp: // (x, w, ∂y) → ∂x; ∂w and ∂bias for the stash operators
		g, ok := r.convs[op.fwd]
		if !ok {
			return nil, fmt.Errorf("nn: %s: its forward convolution is not on the device", n.Name())
		}
		dw, err := r.keep(n, "dw", op.wShape.TotalSize())
		if err != nil {
			return nil, err
		}
		db, err := r.keep(n, "db", op.wShape[0])
		if err != nil {
			return nil, err
		}
		return func() error {
			// The shared workspace no longer holds this convolution's
			// patches: BackwardW lays them out again from x.
			g.Col = r.view(r.col, g.ColSize())
			return d.Conv3Backward(g, out, dw, db, b(0), b(1), b(2), r.view(r.dcol, g.ColSize()))
		}, nil
	case *convGradXOp: // (w, ∂y) → ∂x
		xs, ws := op.xShape, s(0)
		if op.geom.pointwise() {
			return func() error { return d.Gemm(true, false, xs[0], xs[1]*xs[2]*xs[3], ws[0], 1, b(0), b(1), 0, out) }, nil
		}
		if op.geom.K == 3 && op.geom.Pad == 1 {
			g := cuda.Conv3{C: xs[0], O: ws[0], B: xs[1], H: xs[2], W: xs[3], Stride: op.geom.Stride}
			if err := r.need(g); err != nil {
				return nil, err
			}
			return func() error { return d.Conv3BackwardX(g, out, b(0), b(1), r.view(r.dcol, g.ColSize())) }, nil
		}
	case *convGradWOp: // (x, ∂y) → ∂w
		xs, ws := s(0), op.wShape
		if op.geom.pointwise() {
			return func() error { return d.Gemm(false, true, ws[0], xs[0], xs[1]*xs[2]*xs[3], 1, b(1), b(0), 0, out) }, nil
		}
		if op.geom.K == 3 && op.geom.Pad == 1 {
			g := cuda.Conv3{C: xs[0], O: ws[0], B: xs[1], H: xs[2], W: xs[3], Stride: op.geom.Stride}
			if err := r.need(g); err != nil {
				return nil, err
			}
			db, err := r.alloc(ws[0])
			if err != nil {
				return nil, err
			}
			return func() error {
				g.Col = r.view(r.col, g.ColSize())
				return d.Conv3BackwardW(g, out, db, b(0), b(1))
			}, nil
		}
	case *rowSumOp: // ∂y (O, B, H, W) → ∂bias (O)
		ys := s(0)
		return func() error { return d.RowSums(out, b(0), ys[0], ys[1]*ys[2]*ys[3]) }, nil
	case *gnGradOp: // (x, γ, β, ∂y) → ∂x; ∂γ, ∂β for the stash operators
		stats, ok := r.stats[op.fwd]
		if !ok {
			return nil, fmt.Errorf("nn: %s: its forward GroupNorm is not on the device", n.Name())
		}
		xs := s(0)
		dg, err := r.keep(n, "dγ", xs[0])
		if err != nil {
			return nil, err
		}
		dbeta, err := r.keep(n, "dβ", xs[0])
		if err != nil {
			return nil, err
		}
		part, err := r.alloc(2 * xs[0] * xs[1])
		if err != nil {
			return nil, err
		}
		return func() error {
			return d.GroupNormSiLUGrad(out, dg, dbeta, b(0), b(3), b(1), b(2), stats, part, xs[0], xs[1], xs[2]*xs[3], op.groups)
		}, nil
	case *chanBiasGradOp: // ∂h (C, B, H, W) → ∂e (B, C)
		hs := s(0)
		return func() error { return d.ChannelBiasGrad(out, b(0), hs[0], hs[1], hs[2]*hs[3]) }, nil
	case *colSumOp: // ∂y (B, Out) → ∂b (Out)
		ys := s(0)
		return func() error { return d.ColSums(out, b(0), ys[0], ys[1]) }, nil
	case *matMulOp:
		m, nn, k := op.dims(s(0), s(1))
		return func() error { return d.Gemm(op.ta, op.tb, m, nn, k, 1, b(0), b(1), 0, out) }, nil
	case *poolSumOp: // ∂y (C, B, 2H, 2W) → ∂x
		ys := s(0)
		return func() error { return d.Upsample2xGrad(out, b(0), ys[0]*ys[1], ys[2]/2, ys[3]/2) }, nil
	case *siluGradOp: // (x, ∂y) → ∂x
		return func() error { return d.SiLUGrad(out, b(0), b(1)) }, nil
	case *sliceChanOp: // channels [from, to) of ∂y: one contiguous range
		ys := s(0)
		plane := ys[1] * ys[2] * ys[3]
		return func() error { return d.CopyFrom(out, b(0), op.from*plane, (op.to-op.from)*plane) }, nil
	}
	return nil, fmt.Errorf("nn: no device kernels for operator %v (node %s)", n.Op(), n.Name())
}

// sameOperands reports whether node n's operands are ops, in order.
func sameOperands(n *G.Node, ops []*G.Node) bool {
	i := 0
	for it := n.Graph().From(n.ID()); it.Next(); i++ {
		if i >= len(ops) || it.Node().(*G.Node) != ops[i] {
			return false
		}
	}
	return i == len(ops)
}
