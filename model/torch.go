package model

import (
	"fmt"
	"strings"
)

// TorchParam ties one of our parameters to its state_dict key in the PyTorch
// reference network (../shared/bench/torch_ref.py, class ScoreNet, built as
// ScoreNet(C, base, mult, emb)). Transposed marks a Linear weight: ours is
// (in, out), PyTorch's (out, in).
type TorchParam struct {
	Name, Key  string
	Transposed bool
}

// TorchNames maps every parameter of cfg, in Layout order, to the reference
// network's names. The reference numbers its decoder blocks and upsampling
// convolutions in the order they run (deepest first); we number them by
// resolution level.
func TorchNames(cfg Config) ([]TorchParam, error) {
	if cfg.IsClassifier() {
		return nil, fmt.Errorf("%w: the PyTorch reference has no classifier (this network has %d classes)", ErrConfig, cfg.Classes)
	}
	ps, err := Shapes(cfg)
	if err != nil {
		return nil, err
	}
	levels := len(cfg.Mult)
	out := make([]TorchParam, 0, len(ps))
	for _, p := range ps {
		key, tr, err := torchKey(p.Name, levels)
		if err != nil {
			return nil, err
		}
		out = append(out, TorchParam{Name: p.Name, Key: key, Transposed: tr})
	}
	return out, nil
}

// TorchGroupsDiffer reports a channel count C of cfg's GroupNorms where
// the reference network's min(8, C) groups do not divide C (we take the
// largest divisor below 8 there; PyTorch refuses to build it).
func TorchGroupsDiffer(cfg Config) (int, bool) {
	ps, err := Shapes(cfg)
	if err != nil {
		return 0, false
	}
	for _, p := range ps {
		if strings.HasSuffix(p.Name, ".n1.g") || strings.HasSuffix(p.Name, ".n2.g") || p.Name == "out.n.g" {
			if c := p.Shape[0]; c%min(8, c) != 0 {
				return c, true
			}
		}
	}
	return 0, false
}

func torchKey(name string, levels int) (string, bool, error) {
	switch name {
	case "emb.freq":
		return "W", false, nil
	case "emb.l1.w":
		return "mlp.0.weight", true, nil
	case "emb.l1.b":
		return "mlp.0.bias", false, nil
	case "emb.l2.w":
		return "mlp.2.weight", true, nil
	case "emb.l2.b":
		return "mlp.2.bias", false, nil
	}
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return "", false, fmt.Errorf("model: no PyTorch name for %q", name)
	}
	mod, leaf := name[:dot], name[dot+1:]
	suffix := map[string]string{"w": "weight", "b": "bias", "g": "weight"}[leaf]
	if mod == "out.n" || strings.HasSuffix(mod, ".n1") || strings.HasSuffix(mod, ".n2") {
		suffix = map[string]string{"g": "weight", "b": "bias"}[leaf]
	}
	if suffix == "" {
		return "", false, fmt.Errorf("model: no PyTorch name for %q", name)
	}
	transposed := strings.HasSuffix(mod, ".e") && leaf == "w"
	head, rest, _ := strings.Cut(mod, ".")
	var prefix string
	var lvl int
	switch {
	case head == "inc" || head == "mid":
		prefix = head
	case head == "out":
		prefix = map[string]string{"n": "outn", "c": "outc"}[rest]
		rest = ""
	case scan(head, "enc%d", &lvl):
		prefix = fmt.Sprintf("enc.%d", lvl)
	case scan(head, "down%d", &lvl):
		prefix = fmt.Sprintf("downs.%d", lvl)
	case scan(head, "dec%d", &lvl):
		prefix = fmt.Sprintf("dec.%d", levels-1-lvl)
	case scan(head, "up%d", &lvl):
		prefix = fmt.Sprintf("ups.%d", levels-2-lvl)
	}
	if prefix == "" {
		return "", false, fmt.Errorf("model: no PyTorch name for %q", name)
	}
	if rest != "" {
		prefix += "." + rest
	}
	return prefix + "." + suffix, transposed, nil
}

func scan(s, format string, v *int) bool {
	var tail string
	n, _ := fmt.Sscanf(s+" x", format+" %s", v, &tail)
	return n == 2 && tail == "x"
}
