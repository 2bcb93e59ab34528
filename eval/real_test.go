package eval

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ncsn-go/ncsn/data"
)

// TestRealClassifiers trains the MNIST and Fashion-MNIST classifiers on the
// real data (minutes; NCSN_SLOW=1, which CI sets) and checks the accuracy
// the evaluation relies on, then the metrics' sanity: 1000 random real test
// images score near the floor (within 3×) with the classifier's own
// confidence, pure noise far worse (over 10×).
func TestRealClassifiers(t *testing.T) {
	if os.Getenv("NCSN_SLOW") == "" {
		t.Skip("slow: set NCSN_SLOW=1 (CI does)")
	}
	for _, tc := range []struct {
		name string
		load func(data.Options, string) (*data.Dataset, error)
		acc  float64
	}{
		{"mnist", data.LoadMNIST, 0.985},
		{"fashion", data.LoadFashion, 0.89},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := data.Options{Dir: filepath.Join("..", "data", tc.name)}
			tr, err := tc.load(o, "train")
			if err != nil {
				t.Fatal(err)
			}
			te, err := tc.load(o, "test")
			if err != nil {
				t.Fatal(err)
			}
			clf, err := TrainClassifier(tc.name, tr, te, 3, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s classifier: test accuracy %.4f", tc.name, clf.Accuracy)
			if clf.Accuracy < tc.acc {
				t.Fatalf("test accuracy %.4f below %.3f", clf.Accuracy, tc.acc)
			}
			// cmd/eval reads it from the same cache, so CI trains it once.
			if err := clf.Save(filepath.Join(o.Dir, "classifier-v1.gob")); err != nil {
				t.Fatal(err)
			}
			const n = 1000
			real, err := Evaluate(clf, randomSubset(te, n, 2), n, te, tr, 1)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 1))
			noise := make([]float32, n*te.Dim())
			for i := range noise {
				noise[i] = float32(r.Float64())
			}
			fake, err := Evaluate(clf, noise, n, te, tr, 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("real: %s", real.JSON())
			t.Logf("noise: %s", fake.JSON())
			if real.FID > 3*real.FIDFloor+1 || real.MeanConf < 0.9 || real.ClassEntropy < 3.2 {
				t.Errorf("real test images: FID %.2f (floor %.2f), confidence %.3f, entropy %.2f", real.FID, real.FIDFloor, real.MeanConf, real.ClassEntropy)
			}
			if fake.FID < 10*real.FID+10 {
				t.Errorf("noise scores FID %.2f, real images %.2f: not far worse", fake.FID, real.FID)
			}
		})
	}
}

// randomSubset returns n images of ds in a seeded random order: a
// representative slice (the first images of a split need not be).
func randomSubset(ds *data.Dataset, n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 3))
	d := ds.Dim()
	out := make([]float32, n*d)
	for i, k := range r.Perm(ds.N)[:n] {
		copy(out[i*d:(i+1)*d], ds.Image(k))
	}
	return out
}
