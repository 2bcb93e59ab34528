package cuda

import (
	"fmt"
	"math"
	"unsafe"
)

// chunkWords and chunkValues lay out a ParamSet's table (CHUNK_WORDS in
// kernels.cu): each chunk is at most chunkValues values of one tensor.
const (
	chunkWords  = 8
	chunkValues = 8192
)

// AdamStep is one step of Adam for every tensor of a ParamSet: t is the
// step count after Begin, lr, β₁, β₂, ε the hyper-parameters, scale the
// gradients' factor (clipping), exactly as optim.Adam.UpdateScaled takes
// them.
type AdamStep struct {
	T                     int
	LR, Beta1, Beta2, Eps float64
	Scale                 float64
}

// ParamSet is the trainable tensors of a run seen as one: for each, its
// weights, gradient, Adam moments and EMA, cut into chunks of at most
// chunkValues values, so that Adam with the EMA, and the gradients' sum of
// squares, are one launch for all of them rather than one per tensor.
type ParamSet struct {
	tab    Buffer // the chunks' table (chunkWords 64-bit words each)
	part   Buffer // each chunk's Σ g², a float64 in two values each
	sum    Buffer // their sum, likewise
	chunks int
}

// NewParamSet lays out the table of the tensors whose weights, gradients,
// moments and EMA are the buffers at one index of w, g, m, v and ema.
func (d *Device) NewParamSet(w, g, m, v, ema []Buffer) (*ParamSet, error) {
	if len(w) == 0 || len(g) != len(w) || len(m) != len(w) || len(v) != len(w) || len(ema) != len(w) {
		return nil, fmt.Errorf("cuda: a parameter set of %d weights, %d gradients, %d and %d moments, %d averages", len(w), len(g), len(m), len(v), len(ema))
	}
	var tab []uint64
	for k := range w {
		n, err := sameSize(fmt.Sprintf("parameter set, tensor %d", k), w[k], g[k], m[k], v[k], ema[k])
		if err != nil {
			return nil, err
		}
		for lo := 0; lo < n; lo += chunkValues {
			tab = append(tab, uint64(w[k].Ptr), uint64(g[k].Ptr), uint64(m[k].Ptr), uint64(v[k].Ptr), uint64(ema[k].Ptr),
				uint64(lo), uint64(min(chunkValues, n-lo)), 0)
		}
	}
	p := &ParamSet{chunks: len(tab) / chunkWords}
	var err error
	if p.tab, err = d.Alloc(2 * len(tab)); err != nil {
		return nil, err
	}
	if p.part, err = d.Alloc(2 * p.chunks); err != nil {
		d.Free(p.tab)
		return nil, err
	}
	if p.sum, err = d.Alloc(2); err != nil {
		d.Free(p.tab)
		d.Free(p.part)
		return nil, err
	}
	if err := d.Upload(p.tab, unsafe.Slice((*float32)(unsafe.Pointer(&tab[0])), 2*len(tab))); err != nil {
		d.FreeParamSet(p)
		return nil, err
	}
	return p, nil
}

// FreeParamSet releases the set's table (not its tensors).
func (d *Device) FreeParamSet(p *ParamSet) {
	if p != nil {
		d.Free(p.tab)
		d.Free(p.part)
		d.Free(p.sum)
		p.tab, p.part, p.sum = Buffer{}, Buffer{}, Buffer{}
	}
}

// AdamEMA is Adam and then the EMA with decay dec on every tensor of the
// set: each value as Adam and EMA compute it, in one launch.
func (d *Device) AdamEMA(p *ParamSet, s AdamStep, dec float32) error {
	if p.chunks == 0 {
		return nil
	}
	c1 := 1 - math.Pow(s.Beta1, float64(s.T))
	c2 := 1 - math.Pow(s.Beta2, float64(s.T))
	args, err := pack(d.b.argSpace(), []any{p.tab, s.Scale, s.Beta1, s.Beta2, s.LR / c1, c2, s.Eps, dec})
	if err != nil {
		return err
	}
	return d.b.launch("ncsn_adam_ema_chunks", [3]uint32{uint32(p.chunks), 1, 1}, [3]uint32{threads, 1, 1}, args)
}

// GradSumSquares is Σ g² over every gradient of the set, summed in float64
// (as the CPU's gradient norm: in float32 a norm beyond 1.8e19 overflowed).
func (d *Device) GradSumSquares(p *ParamSet) (float64, error) {
	if p.chunks == 0 {
		return 0, nil
	}
	args, err := pack(d.b.argSpace(), []any{p.part, p.tab})
	if err != nil {
		return 0, err
	}
	if err := d.b.launch("ncsn_sumsq_chunks", [3]uint32{uint32(p.chunks), 1, 1}, [3]uint32{d.reduceThreads(), 1, 1}, args); err != nil {
		return 0, err
	}
	if args, err = pack(d.b.argSpace(), []any{p.sum, p.part, p.chunks}); err != nil {
		return 0, err
	}
	if err := d.b.launch("ncsn_sum", [3]uint32{1, 1, 1}, [3]uint32{d.reduceThreads(), 1, 1}, args); err != nil {
		return 0, err
	}
	var host [2]float32 // the double's two halves, little-endian
	if err := d.Download(host[:], p.sum); err != nil {
		return 0, err
	}
	return math.Float64frombits(uint64(math.Float32bits(host[0])) | uint64(math.Float32bits(host[1]))<<32), nil
}
