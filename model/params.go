package model

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Param is one named weight tensor.
type Param struct {
	Name  string
	Shape []int
	Data  []float32
	// Fixed parameters (the Fourier frequencies) are part of the model but are
	// never trained.
	Fixed bool
}

// Params is the ordered set of a network's weights. The order is the
// architecture's, so two Params of one Config line up index by index.
type Params []*Param

// Count is the number of trainable values.
func (ps Params) Count() int {
	n := 0
	for _, p := range ps {
		if !p.Fixed {
			n += len(p.Data)
		}
	}
	return n
}

// Clone returns a deep copy (for the EMA weights).
func (ps Params) Clone() Params {
	out := make(Params, len(ps))
	for i, p := range ps {
		q := *p
		q.Shape = append([]int(nil), p.Shape...)
		q.Data = append([]float32(nil), p.Data...)
		out[i] = &q
	}
	return out
}

// Get finds a parameter by name.
func (ps Params) Get(name string) (*Param, error) {
	for _, p := range ps {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("model: no parameter %q", name)
}

// Layout lists, in order, the name and shape of every parameter of the
// architecture, without values.
func Layout(cfg Config) (Params, error) {
	return layout(cfg, true)
}

// Shapes lists what Layout does without the values (Data nil): for
// checking a configuration, as one read from a file, before allocating
// what it asks for.
func Shapes(cfg Config) (Params, error) {
	return layout(cfg, false)
}

// LayoutSize is the number of values of all the parameters of cfg, computed
// without allocating them (readers check a file's length against it first).
func LayoutSize(cfg Config) (int, error) {
	ps, err := layout(cfg, false)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range ps {
		k := 1
		for _, d := range p.Shape {
			k *= d
		}
		n += k
	}
	return n, nil
}

func layout(cfg Config, alloc bool) (Params, error) {
	if err := cfg.validateShape(); err != nil {
		return nil, err
	}
	var ps Params
	add := func(name string, fixed bool, shape ...int) {
		p := &Param{Name: name, Shape: shape, Fixed: fixed}
		if alloc {
			n := 1
			for _, d := range shape {
				n *= d
			}
			p.Data = make([]float32, n)
		}
		ps = append(ps, p)
	}
	e := cfg.EmbDim
	add("emb.freq", true, e/2)
	add("emb.l1.w", false, e, e)
	add("emb.l1.b", false, e)
	add("emb.l2.w", false, e, e)
	add("emb.l2.b", false, e)
	conv := func(name string, cin, cout, k int) {
		add(name+".w", false, cout, cin, k, k)
		add(name+".b", false, cout)
	}
	res := func(name string, cin, cout int) {
		add(name+".n1.g", false, cin)
		add(name+".n1.b", false, cin)
		conv(name+".c1", cin, cout, 3)
		add(name+".e.w", false, e, cout)
		add(name+".e.b", false, cout)
		add(name+".n2.g", false, cout)
		add(name+".n2.b", false, cout)
		conv(name+".c2", cout, cout, 3)
		if cin != cout {
			conv(name+".skip", cin, cout, 1)
		}
	}
	chs := cfg.channels()
	conv("inc", cfg.Channels, chs[0], 3)
	c := chs[0]
	for i, ch := range chs {
		res(fmt.Sprintf("enc%d", i), c, ch)
		c = ch
		if i < len(chs)-1 {
			conv(fmt.Sprintf("down%d", i), c, c, 3)
		}
	}
	res("mid", c, c)
	if cfg.IsClassifier() {
		add("head.n.g", false, c)
		add("head.n.b", false, c)
		add("head.fc.w", false, cfg.headSize(), cfg.Classes)
		add("head.fc.b", false, cfg.Classes)
		return ps, nil
	}
	for i := len(chs) - 1; i >= 0; i-- {
		if i < len(chs)-1 {
			conv(fmt.Sprintf("up%d", i), c, c, 3)
		}
		res(fmt.Sprintf("dec%d", i), c+chs[i], chs[i])
		c = chs[i]
	}
	add("out.n.g", false, c)
	add("out.n.b", false, c)
	conv("out.c", c, cfg.Channels, 3)
	return ps, nil
}

// Init returns freshly initialised parameters: PyTorch's defaults for convolutions and
// linear layers (uniform in ±1/√fan_in), GroupNorm γ=1 and β=0, Fourier
// frequencies N(0, FourierScale²).
func Init(cfg Config, r *rand.Rand) (Params, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: no random generator to initialise the weights", ErrConfig)
	}
	ps, err := Layout(cfg)
	if err != nil {
		return nil, err
	}
	fanIn := 0
	for _, p := range ps {
		switch {
		case p.Name == "emb.freq":
			for i := range p.Data {
				p.Data[i] = float32(r.NormFloat64() * cfg.FourierScale)
			}
		case hasSuffix(p.Name, ".n1.g", ".n2.g", ".n.g"):
			for i := range p.Data {
				p.Data[i] = 1
			}
		case hasSuffix(p.Name, ".n1.b", ".n2.b", ".n.b"):
			// zero
		case hasSuffix(p.Name, ".w"):
			if len(p.Shape) == 4 {
				fanIn = p.Shape[1] * p.Shape[2] * p.Shape[3]
			} else {
				fanIn = p.Shape[0]
			}
			uniform(r, p.Data, 1/math.Sqrt(float64(fanIn)))
		case hasSuffix(p.Name, ".b"):
			// the bias that follows a weight shares its fan-in
			uniform(r, p.Data, 1/math.Sqrt(float64(fanIn)))
		}
	}
	return ps, nil
}

func uniform(r *rand.Rand, x []float32, bound float64) {
	for i := range x {
		x[i] = float32((2*r.Float64() - 1) * bound)
	}
}

func hasSuffix(s string, suf ...string) bool {
	for _, x := range suf {
		if len(s) >= len(x) && s[len(s)-len(x):] == x {
			return true
		}
	}
	return false
}
