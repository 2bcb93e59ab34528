package cuda

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAlgoCache(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	p := algoCachePath("NVIDIA H200 (sm_90)", "9.14.0", true)
	if p == "" || !strings.HasSuffix(p, filepath.Join("ncsn", "cudnn", "NVIDIA_H200__sm_90_-cudnn9.14.0-tf32.json")) {
		t.Fatalf("cache path %q", p)
	}
	if algoCachePath("x", "9", false) == algoCachePath("x", "9", true) {
		t.Fatal("float32 and TF32 share a cache file")
	}
	g1 := Conv3{C: 3, O: 128, B: 128, H: 32, W: 32, Stride: 1}
	g2 := Conv3{C: 3, O: 128, B: 128, H: 32, W: 32, Stride: 2}
	a := loadAlgoCache(p) // no file yet: empty
	if _, ok := a.get(g1); ok {
		t.Fatal("a choice in an empty cache")
	}
	c1 := Conv3Choice{Forward: [2]int32{7, 3}, Data: [2]int32{5, 3}, Filter: [2]int32{5, 1}}
	// Another process writes g2 between our load and our put: both stay.
	b := loadAlgoCache(p)
	c2 := Conv3Choice{Forward: [2]int32{1, 1}}
	if err := b.put(g2, c2); err != nil {
		t.Fatal(err)
	}
	if err := a.put(g1, c1); err != nil {
		t.Fatal(err)
	}
	r := loadAlgoCache(p)
	if got, ok := r.get(g1); !ok || got != c1 {
		t.Errorf("g1: %v %v, want %v", got, ok, c1)
	}
	if got, ok := r.get(g2); !ok || got != c2 {
		t.Errorf("g2: %v %v, want %v (another process's choice lost)", got, ok, c2)
	}
	// A damaged file is an empty cache, and the next put replaces it.
	if err := os.WriteFile(p, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := loadAlgoCache(p)
	if len(d.choices) != 0 {
		t.Fatalf("a damaged file gave %v", d.choices)
	}
	if err := d.put(g1, c1); err != nil {
		t.Fatal(err)
	}
	if got, ok := loadAlgoCache(p).get(g1); !ok || got != c1 {
		t.Errorf("after a damaged file: %v %v", got, ok)
	}
}
