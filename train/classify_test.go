package train

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/model"
)

// labelledData: dark images are class 0, bright ones class 1.
func labelledData() *data.Dataset {
	r := rand.New(rand.NewPCG(2, 2))
	d := &data.Dataset{Name: "mnist", N: 40, Channels: 1, Height: 8, Width: 8, Labels: make([]uint8, 40)}
	d.Images = make([]float32, 40*64)
	for i := 0; i < d.N; i++ {
		d.Labels[i] = uint8(i % 2)
		for j := 0; j < 64; j++ {
			d.Images[i*64+j] = float32(0.1 + 0.8*float64(i%2) + 0.1*(r.Float64()-0.5))
		}
	}
	return d
}

func classifierConfig(dir string) Config {
	c := tinyConfig(dir)
	c.Data = labelledData()
	if err := c.UseClassifier(); err != nil {
		panic(err)
	}
	return c
}

// TestClassifierLearnsAndResumes: a classifier run learns its labels (at
// the lowest noise level it is right on every training image) and, stopped
// and resumed, ends with the bits of an uninterrupted run.
func TestClassifierLearnsAndResumes(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	ca := classifierConfig(a)
	ca.Steps, ca.LR = 200, 3e-3
	var log bytes.Buffer
	ca.Log = &log
	if _, err := Run(context.Background(), ca); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "noise-conditional classifier") {
		t.Fatalf("log does not say it trains a classifier: %q", log.String())
	}
	sa := final(t, a)
	if !sa.Model.IsClassifier() || sa.Model.Classes != Classes {
		t.Fatalf("checkpoint model %+v", sa.Model)
	}
	cg, err := model.NewClassGradient(sa.Model, sa.Weights, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	ds := ca.Data
	x := make([]float64, len(ds.Images))
	for i, v := range ds.Images {
		x[i] = float64(v)
	}
	probs, err := cg.Probs(x, ca.SigmaMin)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < ds.N; i++ {
		p := probs[i*Classes : (i+1)*Classes]
		if p[ds.Labels[i]] < 0.5 {
			t.Fatalf("image %d (class %d): p = %v", i, ds.Labels[i], p)
		}
	}

	cb := classifierConfig(b)
	cb.Steps, cb.LR = 100, 3e-3
	if _, err := Run(context.Background(), cb); err != nil {
		t.Fatal(err)
	}
	cb.Steps = 200
	if _, err := Run(context.Background(), cb); err != nil {
		t.Fatal(err)
	}
	sb := final(t, b)
	if !reflect.DeepEqual(sa.Weights, sb.Weights) || !reflect.DeepEqual(sa.EMA, sb.EMA) || !bytes.Equal(sa.RNG, sb.RNG) {
		t.Fatal("resumed classifier differs from the uninterrupted one")
	}
}

func TestClassifierErrors(t *testing.T) {
	score, clf := t.TempDir(), t.TempDir()
	if _, err := Run(context.Background(), tinyConfig(score)); err != nil {
		t.Fatal(err)
	}
	c := classifierConfig(score)
	c.Steps = 9
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "holds a score model") {
		t.Fatalf("classifier into a score model's folder: %v", err)
	}
	c = classifierConfig(clf)
	c.Steps = 2
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	s := tinyConfig(clf)
	s.Steps = 9
	if _, err := Run(context.Background(), s); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "holds a noise-conditional classifier") {
		t.Fatalf("score model into a classifier's folder: %v", err)
	}
	s.Set = map[string]bool{"steps": true} // a bare resume: -classifier left out
	if _, err := Run(context.Background(), s); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "add -classifier to go on with it") {
		t.Fatalf("a bare resume of a classifier's run: %v", err)
	}
	c = tinyConfig(t.TempDir()) // images without labels
	c.UseClassifier()
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "labelled") {
		t.Fatalf("no labels: %v", err)
	}
	c = classifierConfig(t.TempDir())
	c.Data.Labels[3] = 10
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "image 3 has label 10") {
		t.Fatalf("label beyond the classes: %v", err)
	}
	f, err := Preset("default", "folder:"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.UseClassifier(); !errors.Is(err, ErrConfig) {
		t.Fatalf("folder classifier: %v", err)
	}
	c = tinyConfig(t.TempDir())
	c.Classifier = true // without the classes
	if err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("classifier without classes: %v", err)
	}
}
