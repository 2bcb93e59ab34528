package eval

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ncsn-go/ncsn/data"
)

// quadrants: 8×8 images whose class (0..3, of 10) is the bright quadrant.
func quadrants(n int, seed uint64) *data.Dataset {
	r := rand.New(rand.NewPCG(seed, 1))
	ds := &data.Dataset{N: n, Channels: 1, Height: 8, Width: 8, Images: make([]float32, n*64), Labels: make([]uint8, n)}
	for i := 0; i < n; i++ {
		c := r.IntN(4)
		ds.Labels[i] = uint8(c)
		for y := 0; y < 8; y++ {
			for x := 0; x < 8; x++ {
				v := 0.3 * r.Float64()
				if (y/4)*2+x/4 == c {
					v += 0.6
				}
				ds.Images[i*64+y*8+x] = float32(v)
			}
		}
	}
	return ds
}

func TestClassifierLearns(t *testing.T) {
	c, err := TrainClassifier("quadrants", quadrants(2000, 1), quadrants(500, 2), 3, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Accuracy < 0.97 {
		t.Fatalf("test accuracy %.3f", c.Accuracy)
	}
	p := filepath.Join(t.TempDir(), "c.gob")
	if err := c.Save(p); err != nil {
		t.Fatal(err)
	}
	d, err := LoadClassifier(p)
	if err != nil || d.Accuracy != c.Accuracy {
		t.Fatalf("reload: %v", err)
	}
	te := quadrants(100, 3)
	p1, f1, _ := c.Predict(te.Images, te.N)
	p2, f2, _ := d.Predict(te.Images, te.N)
	for i := range p1 {
		if p1[i] != p2[i] {
			t.Fatal("reloaded classifier predicts differently")
		}
	}
	if len(f1) != 100*Features || f1[5] != f2[5] {
		t.Fatal("features differ")
	}
	raw, _ := os.ReadFile(p)
	raw[len(raw)/2] ^= 1
	os.WriteFile(p, raw, 0o644)
	if _, err := LoadClassifier(p); !errors.Is(err, ErrCache) {
		t.Fatalf("corrupt cache: %v", err)
	}
}
