// Package eval measures sample quality: a classifier the project trains
// itself (LeNet-style, on package nn's operators), its confidence and class
// histogram on samples (and, for samples drawn of given classes, the
// fraction it gives those classes), and the Fréchet distance between its
// penultimate features of the samples and of the test set; for a folder of
// images, which has no labels, each sample's nearest training image and a
// Fréchet distance of 8×8 thumbnails (folder.go); for continuous-time
// models, bits per dimension of test images by the probability-flow ODE
// (bpd.go); and a noise-conditional classifier's accuracy on noised test
// images per noise level (noisy.go).
package eval

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/nn"
	"github.com/ncsn-go/ncsn/optim"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Features is the width of the penultimate layer (the FID features).
const Features = 128

// Classifier is a trained image classifier and its measured test accuracy.
type Classifier struct {
	Dataset                 string
	Channels, Height, Width int
	Accuracy                float64 // on the dataset's test split
	Names                   []string
	Shapes                  [][]int
	Weights                 [][]float32
}

func layout(c, h, w int) ([]string, [][]int) {
	names := []string{"c1.w", "c1.b", "c2.w", "c2.b", "c3.w", "c3.b", "c4.w", "c4.b", "f1.w", "f1.b", "f2.w", "f2.b"}
	flat := 64 * (h / 4) * (w / 4)
	shapes := [][]int{{32, c, 3, 3}, {32}, {32, 32, 3, 3}, {32}, {64, 32, 3, 3}, {64}, {64, 64, 3, 3}, {64}, {flat, Features}, {Features}, {Features, 10}, {10}}
	return names, shapes
}

// net is the classifier's graph for one batch size.
type net struct {
	g           *G.ExprGraph
	x           *G.Node // (C,B,H,W)
	w           []*G.Node
	feat, logit *G.Node
}

func (c *Classifier) build(batch int) (*net, error) {
	g := G.NewGraph()
	n := &net{g: g}
	for i, s := range c.Shapes {
		v := tensor.New(tensor.WithShape(s...), tensor.WithBacking(c.Weights[i]))
		n.w = append(n.w, G.NewTensor(g, G.Float32, len(s), G.WithShape(s...), G.WithName(c.Names[i]), G.WithValue(v)))
	}
	xs := []int{c.Channels, batch, c.Height, c.Width}
	n.x = G.NewTensor(g, G.Float32, 4, G.WithShape(xs...), G.WithName("x"),
		G.WithValue(tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(xs...))))
	h := n.x
	var err error
	for i, stride := range []int{1, 2, 1, 2} {
		if h, err = nn.Conv2D(h, n.w[2*i], n.w[2*i+1], nn.ConvGeom{K: 3, Stride: stride, Pad: 1}); err != nil {
			return nil, err
		}
		if h, err = nn.SiLU(h); err != nil {
			return nil, err
		}
	}
	if h, err = nn.Flatten(h); err != nil {
		return nil, err
	}
	if h, err = nn.Linear(h, n.w[8], n.w[9]); err != nil {
		return nil, err
	}
	if n.feat, err = nn.SiLU(h); err != nil {
		return nil, err
	}
	if n.logit, err = nn.Linear(n.feat, n.w[10], n.w[11]); err != nil {
		return nil, err
	}
	return n, nil
}

// setImages copies images (N,C,H,W) into the graph's (C,B,H,W) input.
func (n *net) setImages(imgs []float32, c, b, hw int) {
	x := n.x.Value().Data().([]float32)
	clear(x)
	for i := 0; i < b && (i+1)*c*hw <= len(imgs); i++ {
		for ch := 0; ch < c; ch++ {
			copy(x[(ch*b+i)*hw:][:hw], imgs[i*c*hw+ch*hw:][:hw])
		}
	}
}

// TrainClassifier fits the classifier on the training split and measures it
// on the test split.
func TrainClassifier(name string, tr, te *data.Dataset, epochs int, seed uint64, log io.Writer) (*Classifier, error) {
	if err := checkShape(tr.Channels, tr.Height, tr.Width); err != nil {
		return nil, fmt.Errorf("eval: training the classifier: %w", err)
	}
	c := &Classifier{Dataset: name, Channels: tr.Channels, Height: tr.Height, Width: tr.Width}
	c.Names, c.Shapes = layout(c.Channels, c.Height, c.Width)
	r := rand.New(rand.NewPCG(seed, 0x636c6173))
	fan := 0
	for _, s := range c.Shapes {
		size := 1
		for _, d := range s {
			size *= d
		}
		if len(s) > 1 {
			fan = size / s[len(s)-1]
			if len(s) == 4 {
				fan = s[1] * s[2] * s[3]
			}
		}
		w := make([]float32, size)
		for i := range w {
			w[i] = float32((2*r.Float64() - 1) / math.Sqrt(float64(fan)))
		}
		c.Weights = append(c.Weights, w)
	}
	const batch = 128
	type trainGraph struct {
		n       *net
		y, loss *G.Node
		grads   G.Nodes
	}
	tg, err := nn.BuildChecked(func() (trainGraph, *G.ExprGraph, error) {
		n, err := c.build(batch)
		if err != nil {
			return trainGraph{}, nil, err
		}
		y := G.NewMatrix(n.g, G.Float32, G.WithShape(batch, 10), G.WithName("y"),
			G.WithValue(tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(batch, 10))))
		loss, _, err := nn.SoftmaxCrossEntropy(n.logit, y)
		if err != nil {
			return trainGraph{}, nil, err
		}
		grads, err := G.Grad(loss, n.w...)
		if err != nil {
			return trainGraph{}, nil, err
		}
		return trainGraph{n, y, loss, grads}, n.g, nil
	})
	if err != nil {
		return nil, fmt.Errorf("eval: building the classifier's training graph: %w", err)
	}
	n, y, loss, grads := tg.n, tg.y, tg.loss, tg.grads
	vm := G.NewTapeMachine(n.g)
	defer vm.Close()
	sizes := make([]int, len(c.Weights))
	for i, w := range c.Weights {
		sizes[i] = len(w)
	}
	opt := optim.New(1e-3, sizes)
	d, hw := tr.Dim(), tr.Height*tr.Width
	imgs := make([]float32, batch*d)
	yv := y.Value().Data().([]float32)
	steps := epochs * tr.N / batch
	start := time.Now()
	for s := 0; s < steps; s++ {
		clear(yv)
		for i := 0; i < batch; i++ {
			k := r.IntN(tr.N)
			copy(imgs[i*d:(i+1)*d], tr.Image(k))
			yv[i*10+int(tr.Labels[k])] = 1
		}
		n.setImages(imgs, tr.Channels, batch, hw)
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			return nil, err
		}
		opt.Begin()
		for i, w := range c.Weights {
			if err := opt.Update(i, w, grads[i].Value().Data().([]float32)); err != nil {
				return nil, err
			}
		}
		if log != nil && (s+1)%200 == 0 {
			left := time.Since(start) * time.Duration(steps-s-1) / time.Duration(s+1)
			fmt.Fprintf(log, "classifier %s: step %d/%d loss %.4f, about %s left\n", name, s+1, steps, loss.Value().Data().(float32), left.Round(time.Second))
		}
	}
	probs, _, err := c.Predict(te.Images, te.N)
	if err != nil {
		return nil, err
	}
	right := 0
	for i := 0; i < te.N; i++ {
		if argmax(probs[i*10:(i+1)*10]) == int(te.Labels[i]) {
			right++
		}
	}
	c.Accuracy = float64(right) / float64(te.N)
	return c, nil
}

func argmax(p []float64) int {
	b := 0
	for i, v := range p {
		if v > p[b] {
			b = i
		}
	}
	return b
}

// Predict returns class probabilities (n×10) and penultimate features
// (n×Features) for n images (N,C,H,W) with values in [0,1].
func (c *Classifier) Predict(images []float32, n int) (probs, feats []float64, err error) {
	if err := c.check(); err != nil {
		return nil, nil, fmt.Errorf("eval: classifier: %w", err)
	}
	const batch = 250
	nt, err := nn.BuildChecked(func() (*net, *G.ExprGraph, error) {
		nt, err := c.build(batch)
		if err != nil {
			return nil, nil, err
		}
		return nt, nt.g, nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("eval: building the classifier's graph: %w", err)
	}
	vm := G.NewTapeMachine(nt.g)
	defer vm.Close()
	d, hw := c.Channels*c.Height*c.Width, c.Height*c.Width
	if len(images) != n*d {
		return nil, nil, fmt.Errorf("eval: %d values for %d images of %d", len(images), n, d)
	}
	probs, feats = make([]float64, n*10), make([]float64, n*Features)
	for s := 0; s < n; s += batch {
		m := min(batch, n-s)
		nt.setImages(images[s*d:(s+m)*d], c.Channels, batch, hw)
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			return nil, nil, err
		}
		lg := nt.logit.Value().Data().([]float32)
		ft := nt.feat.Value().Data().([]float32)
		for i := 0; i < m; i++ {
			mx := math.Inf(-1)
			for k := 0; k < 10; k++ {
				mx = math.Max(mx, float64(lg[i*10+k]))
			}
			var z float64
			for k := 0; k < 10; k++ {
				z += math.Exp(float64(lg[i*10+k]) - mx)
			}
			for k := 0; k < 10; k++ {
				probs[(s+i)*10+k] = math.Exp(float64(lg[i*10+k])-mx) / z
			}
			for k := 0; k < Features; k++ {
				feats[(s+i)*Features+k] = float64(ft[i*Features+k])
			}
		}
	}
	return probs, feats, nil
}

// ErrCache is wrapped when a cached classifier file cannot be used.
var ErrCache = errors.New("eval: bad classifier file")

const cacheVersion = 1

// Bounds on what a classifier file may declare; the datasets are 28×28×1
// and 32×32×3. The sides must be multiples of 4 (two stride-2 halvings).
const (
	minSide = 4
	maxSide = 256
	// maxClassifierBytes bounds what DecodeClassifier reads: a 256×256×3
	// classifier has about 34M weights, at most 9 gob bytes each.
	maxClassifierBytes = 512 << 20
)

// Encode writes the classifier in the cache format: a gob stream (version,
// classifier) and its SHA-256.
func (c *Classifier) Encode(w io.Writer) error {
	var b bytes.Buffer
	enc := gob.NewEncoder(&b)
	if err := enc.Encode(cacheVersion); err != nil {
		return fmt.Errorf("eval: encoding the classifier: %w", err)
	}
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("eval: encoding the classifier: %w", err)
	}
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("eval: writing the classifier: %w", err)
	}
	return nil
}

// Save writes the classifier atomically, with a SHA-256 trailer.
func (c *Classifier) Save(path string) error {
	var b bytes.Buffer
	if err := c.Encode(&b); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(path, b.Bytes()); err != nil {
		return fmt.Errorf("eval: saving the classifier: %w", err)
	}
	return nil
}

// LoadClassifier reads a classifier saved by Save. A missing file gives an
// error that wraps os.ErrNotExist, a corrupt one an error that wraps
// ErrCache; both name the file.
func LoadClassifier(path string) (*Classifier, error) {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	defer f.Close()
	return decodeClassifier(f, path)
}

// DecodeClassifier reads a classifier written by Encode (or Save). Errors
// from a corrupt or hostile input wrap ErrCache.
func DecodeClassifier(r io.Reader) (*Classifier, error) { return decodeClassifier(r, "") }

// decodeClassifier is DecodeClassifier; name, if not empty, is put in the
// errors.
func decodeClassifier(r io.Reader, name string) (*Classifier, error) {
	bad := func(format string, a ...any) error {
		pre, args := "%w: ", []any{ErrCache}
		if name != "" {
			pre, args = "%w: %s: ", append(args, name)
		}
		return fmt.Errorf(pre+format, append(args, a...)...)
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxClassifierBytes+1))
	if err != nil {
		return nil, bad("reading: %w", err)
	}
	if len(raw) > maxClassifierBytes {
		return nil, bad("larger than %d bytes", maxClassifierBytes)
	}
	if len(raw) < sha256.Size {
		return nil, bad("truncated (%d bytes)", len(raw))
	}
	body := raw[:len(raw)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], raw[len(raw)-sha256.Size:]) {
		return nil, bad("checksum mismatch")
	}
	br := bytes.NewReader(body)
	dec := gob.NewDecoder(br)
	var v int
	if err := dec.Decode(&v); err != nil {
		return nil, bad("version: %w", err)
	}
	if v != cacheVersion {
		return nil, bad("version %d, want %d", v, cacheVersion)
	}
	c := &Classifier{}
	if err := dec.Decode(c); err != nil {
		return nil, bad("%w", err)
	}
	if br.Len() != 0 {
		return nil, bad("%d bytes after the classifier", br.Len())
	}
	if err := c.check(); err != nil {
		return nil, bad("%w", err)
	}
	if !(c.Accuracy >= 0 && c.Accuracy <= 1) {
		return nil, bad("accuracy %g is not in [0,1]", c.Accuracy)
	}
	for i, w := range c.Weights {
		for k, x := range w {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, bad("tensor %s: value %d is %g", c.Names[i], k, x)
			}
		}
	}
	return c, nil
}

// check reports whether the classifier's shape is one the network supports
// and its tensors are those of layout, so that build cannot fail on them.
func (c *Classifier) check() error {
	if err := checkShape(c.Channels, c.Height, c.Width); err != nil {
		return err
	}
	names, shapes := layout(c.Channels, c.Height, c.Width)
	if len(c.Names) != len(names) || len(c.Shapes) != len(names) || len(c.Weights) != len(names) {
		return fmt.Errorf("%d names, %d shapes and %d tensors, want %d", len(c.Names), len(c.Shapes), len(c.Weights), len(names))
	}
	for i, s := range shapes {
		if c.Names[i] != names[i] {
			return fmt.Errorf("tensor %d is %q, want %q", i, c.Names[i], names[i])
		}
		if !slices.Equal(c.Shapes[i], s) {
			return fmt.Errorf("tensor %s has shape %v, want %v", names[i], c.Shapes[i], s)
		}
		size := 1
		for _, d := range s {
			size *= d
		}
		if len(c.Weights[i]) != size {
			return fmt.Errorf("tensor %s has %d values, want %d", names[i], len(c.Weights[i]), size)
		}
	}
	return nil
}

// checkShape reports whether the network supports c×h×w images: 1 or 3
// channels, sides that can be halved twice, within bounds.
func checkShape(c, h, w int) error {
	if c != 1 && c != 3 {
		return fmt.Errorf("%d channels, want 1 or 3", c)
	}
	for _, s := range []int{h, w} {
		if s < minSide || s > maxSide || s%4 != 0 {
			return fmt.Errorf("%d×%d images, want sides of %d to %d that are multiples of 4", h, w, minSide, maxSide)
		}
	}
	return nil
}
