package model

import (
	"fmt"
	"math"

	"github.com/ncsn-go/ncsn/nn"
	"github.com/ncsn-go/ncsn/sde"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ScoreNet is one expression graph of the score network for a fixed batch
// size. Its inputs are filled with SetInput; after a run, Out holds s_θ(x, σ)
// in the channel-major layout (C, B, H, W) — or, for a classifier
// (Config.Classes > 0), the logits of p(y | x, σ), (B, Classes).
type ScoreNet struct {
	Config Config
	Batch  int
	Graph  *G.ExprGraph
	// Inputs: the images (C,B,H,W), the Fourier features of log σ (B,EmbDim),
	// and the output's scale per image (B): 1/σ, or with EDM
	// preconditioning c_out/σ². With EDM also c_in (B), the input's scale,
	// and (c_skip − 1)/σ² (B), the score's coefficient of the input; nil
	// otherwise.
	X, Emb, OutScale *G.Node
	InScale, Skip    *G.Node
	Out              *G.Node
	// Weights are the trainable parameter nodes, in Params order (fixed
	// parameters are read in Go and have no node).
	Weights []*G.Node
	params  Params
	dtype   tensor.Dtype
	byName  map[string]*G.Node
}

// Build makes the graph of cfg over params for batch images. The weight
// nodes are bound to params' own storage (float32), so an update of params is
// seen by the next run; with dtype Float64 (gradient checks) they are copies.
func Build(cfg Config, params Params, batch int, dtype tensor.Dtype) (*ScoreNet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	layout, err := Layout(cfg)
	if err != nil {
		return nil, err
	}
	if len(layout) != len(params) {
		return nil, fmt.Errorf("%w: %d parameters, the architecture has %d", ErrConfig, len(params), len(layout))
	}
	for i, p := range layout {
		if params[i].Name != p.Name || len(params[i].Data) != len(p.Data) {
			return nil, fmt.Errorf("%w: parameter %d is %s[%d], the architecture wants %s%v", ErrConfig, i, params[i].Name, len(params[i].Data), p.Name, p.Shape)
		}
	}
	if batch < 1 {
		return nil, fmt.Errorf("%w: batch %d", ErrConfig, batch)
	}
	g := G.NewGraph()
	n := &ScoreNet{Config: cfg, Batch: batch, Graph: g, params: params, dtype: dtype, byName: map[string]*G.Node{}}
	dt := G.Float32
	if dtype == tensor.Float64 {
		dt = G.Float64
	}
	for _, p := range params {
		if p.Fixed {
			continue
		}
		var v tensor.Tensor
		if dtype == tensor.Float64 {
			d := make([]float64, len(p.Data))
			for i, x := range p.Data {
				d[i] = float64(x)
			}
			v = tensor.New(tensor.WithShape(p.Shape...), tensor.WithBacking(d))
		} else {
			v = tensor.New(tensor.WithShape(p.Shape...), tensor.WithBacking(p.Data))
		}
		node := G.NewTensor(g, dt, len(p.Shape), G.WithShape(p.Shape...), G.WithName(p.Name), G.WithValue(v))
		n.Weights = append(n.Weights, node)
		n.byName[p.Name] = node
	}
	input := func(name string, shape ...int) *G.Node {
		var v tensor.Tensor
		if dtype == tensor.Float64 {
			v = tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(shape...))
		} else {
			v = tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(shape...))
		}
		return G.NewTensor(g, dt, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(v))
	}
	n.X = input("x", cfg.Channels, batch, cfg.Height, cfg.Width)
	n.Emb = input("sigma_features", batch, cfg.EmbDim)
	n.OutScale = input("out_scale", batch)
	if cfg.Precond == PrecondEDM {
		n.InScale = input("in_scale", batch)
		n.Skip = input("skip_scale", batch)
	}
	if n.Out, err = n.forward(); err != nil {
		return nil, fmt.Errorf("model: building the graph: %w", err)
	}
	return n, nil
}

func (n *ScoreNet) w(name string) *G.Node { return n.byName[name] }

func (n *ScoreNet) conv(name string, x *G.Node, geom nn.ConvGeom) (*G.Node, error) {
	return nn.Conv2D(x, n.w(name+".w"), n.w(name+".b"), geom)
}

var (
	conv3  = nn.ConvGeom{K: 3, Stride: 1, Pad: 1}
	down3  = nn.ConvGeom{K: 3, Stride: 2, Pad: 1}
	conv1x = nn.ConvGeom{K: 1, Stride: 1, Pad: 0}
)

// resBlock: GroupNorm → SiLU → conv, plus the σ embedding as a per-channel
// bias, GroupNorm → SiLU → conv, added to the (1×1-projected) input.
func (n *ScoreNet) resBlock(name string, x, emb *G.Node) (*G.Node, error) {
	cin := x.Shape()[0]
	h, err := nn.GroupNormSiLU(x, n.w(name+".n1.g"), n.w(name+".n1.b"), groups(cin))
	if err != nil {
		return nil, err
	}
	if h, err = n.conv(name+".c1", h, conv3); err != nil {
		return nil, err
	}
	e, err := nn.Linear(emb, n.w(name+".e.w"), n.w(name+".e.b"))
	if err != nil {
		return nil, err
	}
	if h, err = nn.AddChannelBias(h, e); err != nil {
		return nil, err
	}
	cout := h.Shape()[0]
	if h, err = nn.GroupNormSiLU(h, n.w(name+".n2.g"), n.w(name+".n2.b"), groups(cout)); err != nil {
		return nil, err
	}
	if h, err = n.conv(name+".c2", h, conv3); err != nil {
		return nil, err
	}
	skip := x
	if cin != cout {
		if skip, err = n.conv(name+".skip", x, conv1x); err != nil {
			return nil, err
		}
	}
	return nn.Add(skip, h)
}

func (n *ScoreNet) forward() (*G.Node, error) {
	cfg := n.Config
	emb, err := nn.Linear(n.Emb, n.w("emb.l1.w"), n.w("emb.l1.b"))
	if err != nil {
		return nil, err
	}
	if emb, err = nn.SiLU(emb); err != nil {
		return nil, err
	}
	if emb, err = nn.Linear(emb, n.w("emb.l2.w"), n.w("emb.l2.b")); err != nil {
		return nil, err
	}
	x := n.X
	if n.InScale != nil {
		if x, err = nn.ScaleBatch(x, n.InScale); err != nil {
			return nil, err
		}
	}
	h, err := n.conv("inc", x, conv3)
	if err != nil {
		return nil, err
	}
	chs := cfg.channels()
	var skips []*G.Node
	for i := range chs {
		if h, err = n.resBlock(fmt.Sprintf("enc%d", i), h, emb); err != nil {
			return nil, err
		}
		skips = append(skips, h)
		if i < len(chs)-1 {
			if h, err = n.conv(fmt.Sprintf("down%d", i), h, down3); err != nil {
				return nil, err
			}
		}
	}
	if h, err = n.resBlock("mid", h, emb); err != nil {
		return nil, err
	}
	if cfg.IsClassifier() {
		return n.head(h)
	}
	for i := len(chs) - 1; i >= 0; i-- {
		sk := skips[i]
		if i < len(chs)-1 {
			if h, err = nn.Upsample2x(h); err != nil {
				return nil, err
			}
			if h, err = n.conv(fmt.Sprintf("up%d", i), h, conv3); err != nil {
				return nil, err
			}
		}
		if h, err = nn.ConcatChannels(h, sk); err != nil {
			return nil, err
		}
		if h, err = n.resBlock(fmt.Sprintf("dec%d", i), h, emb); err != nil {
			return nil, err
		}
	}
	if h, err = nn.GroupNormSiLU(h, n.w("out.n.g"), n.w("out.n.b"), groups(h.Shape()[0])); err != nil {
		return nil, err
	}
	if h, err = n.conv("out.c", h, conv3); err != nil {
		return nil, err
	}
	// NCSNv2: divide by σ so that the network need only learn a unit-scale
	// output; EDM: c_out/σ², plus (c_skip − 1)/σ² times the input.
	if h, err = nn.ScaleBatch(h, n.OutScale); err != nil || n.Skip == nil {
		return h, err
	}
	skip, err := nn.ScaleBatch(n.X, n.Skip)
	if err != nil {
		return nil, err
	}
	return nn.Add(h, skip)
}

// SigmaInputs are the input nodes that depend on σ alone: what SetInput
// fills besides the images.
func (n *ScoreNet) SigmaInputs() []*G.Node {
	if n.Skip == nil {
		return []*G.Node{n.Emb, n.OutScale}
	}
	return []*G.Node{n.Emb, n.OutScale, n.InScale, n.Skip}
}

// Inputs are all the input nodes SetInput fills: the images, then
// SigmaInputs.
func (n *ScoreNet) Inputs() []*G.Node { return append([]*G.Node{n.X}, n.SigmaInputs()...) }

// scales returns, for σ, the output's scale, and with EDM the input's scale
// and the score's coefficient of the input.
func (n *ScoreNet) scales(sigma float64) (out, in, skip float64) {
	if n.Config.Precond != PrecondEDM {
		return 1 / sigma, 1, 0
	}
	e := sde.EDMPreconditioning(sigma, n.Config.SigmaData)
	return e.OutScale, e.In, e.SkipScale
}

// head turns a classifier's deepest features into logits (B, Classes).
func (n *ScoreNet) head(h *G.Node) (*G.Node, error) {
	h, err := nn.GroupNormSiLU(h, n.w("head.n.g"), n.w("head.n.b"), groups(h.Shape()[0]))
	if err != nil {
		return nil, err
	}
	if h, err = nn.Flatten(h); err != nil {
		return nil, err
	}
	return nn.Linear(h, n.w("head.fc.w"), n.w("head.fc.b"))
}

// SetInput fills the graph's inputs from images in the usual (B,C,H,W)
// order, flattened, and one σ per image.
func (n *ScoreNet) SetInput(images []float32, sigmas []float64) error {
	cfg := n.Config
	d := cfg.Dim()
	if len(images) != n.Batch*d || len(sigmas) != n.Batch {
		return fmt.Errorf("model: input of %d values and %d σ, the graph takes %d images of %d", len(images), len(sigmas), n.Batch, d)
	}
	freq, err := n.params.Get("emb.freq")
	if err != nil {
		return err
	}
	hw := cfg.Height * cfg.Width
	feat := make([]float64, cfg.EmbDim)
	half := cfg.EmbDim / 2
	switch n.dtype {
	case tensor.Float64:
		x := n.X.Value().Data().([]float64)
		emb := n.Emb.Value().Data().([]float64)
		inv := n.OutScale.Value().Data().([]float64)
		var cin, skip []float64
		if n.Skip != nil {
			cin, skip = n.InScale.Value().Data().([]float64), n.Skip.Value().Data().([]float64)
		}
		for b := 0; b < n.Batch; b++ {
			for c := 0; c < cfg.Channels; c++ {
				for i := 0; i < hw; i++ {
					x[(c*n.Batch+b)*hw+i] = float64(images[b*d+c*hw+i])
				}
			}
			fourier(sigmas[b], freq.Data, half, feat)
			copy(emb[b*cfg.EmbDim:], feat)
			o, i, k := n.scales(sigmas[b])
			inv[b] = o
			if skip != nil {
				cin[b], skip[b] = i, k
			}
		}
	default:
		x := n.X.Value().Data().([]float32)
		emb := n.Emb.Value().Data().([]float32)
		inv := n.OutScale.Value().Data().([]float32)
		var cin, skip []float32
		if n.Skip != nil {
			cin, skip = n.InScale.Value().Data().([]float32), n.Skip.Value().Data().([]float32)
		}
		for b := 0; b < n.Batch; b++ {
			for c := 0; c < cfg.Channels; c++ {
				copy(x[(c*n.Batch+b)*hw:][:hw], images[b*d+c*hw:][:hw])
			}
			fourier(sigmas[b], freq.Data, half, feat)
			for i, v := range feat {
				emb[b*cfg.EmbDim+i] = float32(v)
			}
			o, i, k := n.scales(sigmas[b])
			inv[b] = float32(o)
			if skip != nil {
				cin[b], skip[b] = float32(i), float32(k)
			}
		}
	}
	return nil
}

// fourier computes [sin(2π·f·log σ), cos(2π·f·log σ)].
func fourier(sigma float64, freq []float32, half int, out []float64) {
	ls := math.Log(sigma)
	for k := 0; k < half; k++ {
		p := 2 * math.Pi * float64(freq[k]) * ls
		out[k] = math.Sin(p)
		out[half+k] = math.Cos(p)
	}
}

// ReadOutput copies the scores of the last run into dst in (B,C,H,W) order.
func (n *ScoreNet) ReadOutput(dst []float32) error {
	cfg := n.Config
	d, hw := cfg.Dim(), cfg.Height*cfg.Width
	if len(dst) != n.Batch*d {
		return fmt.Errorf("model: output buffer of %d values, want %d", len(dst), n.Batch*d)
	}
	if n.Out.Value() == nil {
		return fmt.Errorf("model: the graph has not run")
	}
	switch out := n.Out.Value().Data().(type) {
	case []float32:
		for b := 0; b < n.Batch; b++ {
			for c := 0; c < cfg.Channels; c++ {
				copy(dst[b*d+c*hw:][:hw], out[(c*n.Batch+b)*hw:][:hw])
			}
		}
	case []float64:
		for b := 0; b < n.Batch; b++ {
			for c := 0; c < cfg.Channels; c++ {
				for i := 0; i < hw; i++ {
					dst[b*d+c*hw+i] = float32(out[(c*n.Batch+b)*hw+i])
				}
			}
		}
	}
	return nil
}
