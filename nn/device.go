package nn

import (
	"fmt"
	"slices"

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
// It runs forward graphs (sampling); gradient operators are not mapped yet.
type DeviceRun struct {
	dev   *cuda.Device
	buf   map[*G.Node]cuda.Buffer
	steps []func() error
	owned []cuda.Buffer
}

// NewDeviceRun plans the graph g on dev, allocating a buffer for every node.
func NewDeviceRun(dev *cuda.Device, g *G.ExprGraph) (*DeviceRun, error) {
	sorted, err := G.Sort(g)
	if err != nil {
		return nil, fmt.Errorf("nn: sorting the graph: %w", err)
	}
	slices.Reverse(sorted) // leaves first
	r := &DeviceRun{dev: dev, buf: map[*G.Node]cuda.Buffer{}}
	for _, n := range sorted {
		if n.Dtype() != tensor.Float32 {
			r.Close()
			return nil, fmt.Errorf("nn: device graphs are float32; %s is %v", n.Name(), n.Dtype())
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
		step, err := r.plan(n)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.steps = append(r.steps, step)
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
	for _, s := range r.steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

// Download copies a node's value from the device into dst.
func (r *DeviceRun) Download(n *G.Node, dst []float32) error {
	b, ok := r.buf[n]
	if !ok {
		return fmt.Errorf("nn: %s is not a node of the device graph", n.Name())
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
			col, err := r.alloc(g.ColSize())
			if err != nil {
				return nil, err
			}
			g.Col = col
			return func() error { return d.Conv3Forward(g, out, b(0), b(1), b(2)) }, nil
		}
		return nil, fmt.Errorf("nn: no device kernels for a %d×%d convolution of stride %d, pad %d", op.geom.K, op.geom.K, op.geom.Stride, op.geom.Pad)
	case *gnOp:
		xs := s(0)
		stats, err := r.alloc(2 * op.groups * xs[1])
		if err != nil {
			return nil, err
		}
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
	}
	return nil, fmt.Errorf("nn: no device kernels for operator %v (node %s)", n.Op(), n.Name())
}
