package plot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCurves: any train.csv gives the three PNGs or a one-line error naming
// the file; it never panics or hangs (a step of 10²⁰ panicked in the
// plotting library, steps of ±10³⁰⁸ hung it, and two steps near 2⁵²).
//
//	go test -run '^$' -fuzz '^FuzzCurves$' -fuzztime 3m ./plot
func FuzzCurves(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "fuzz-seed-train.csv")) // written by cmd/train
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("step,loss,images_per_s,elapsed_s,loss_sigma_1\n1,1e308,5,1,2\n2,3,5,2,2\n3,1.7e308,5,3,1e308\n"))
	f.Add([]byte("step,loss,images_per_s,elapsed_s,loss_sigma_1\n1,NaN,5,1,2\n1e300,3,5,2,2\n1.7e308,3,5,3,2\n"))
	f.Add([]byte("step,loss,images_per_s,elapsed_s,loss_sigma_1\n-1e308,1,5,1,2\n0,3,5,2,\n1e308,-3,-5,3,-2\n"))
	f.Add([]byte("step,loss,images_per_s,elapsed_s,loss_sigma_1\n4503599627370495,5,100,0.1,1\n4503599627370496,4,100,0.2,1\n")) // hung gonum's ticks
	f.Add([]byte("step,loss,images_per_s,elapsed_s,loss_sigma_1\n9007199254740989,5,100,0.1,1\n9007199254740990,4,100,0.2,1\n9007199254740991,4,100,0.2,1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		csv := filepath.Join(dir, "train.csv")
		if err := os.WriteFile(csv, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Curves(csv, filepath.Join(dir, "out"), 0, nil)
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
	})
}
