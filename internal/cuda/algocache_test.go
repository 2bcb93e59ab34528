package cuda

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestAlgoCache(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("LocalAppData", t.TempDir()) // Windows
	p := algoCachePath("NVIDIA H200 (sm_90)", "9.14.0", true)
	if p == "" || !strings.HasSuffix(p, filepath.Join("ncsn", "cudnn", "NVIDIA_H200__sm_90_-cudnn9.14.0-tf32.v1.json")) {
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
	c2 := Conv3Choice{Forward: [2]int32{1, 1}}
	// Another process writes g2 between our load and our put: both stay.
	b := loadAlgoCache(p)
	if got, err := b.put(g2, c2, nil); err != nil || got != c2 {
		t.Fatal(got, err)
	}
	if got, err := a.put(g1, c1, nil); err != nil || got != c1 {
		t.Fatal(got, err)
	}
	r := loadAlgoCache(p)
	if got, ok := r.get(g1); !ok || got != c1 {
		t.Errorf("g1: %v %v, want %v", got, ok, c1)
	}
	if got, ok := r.get(g2); !ok || got != c2 {
		t.Errorf("g2: %v %v, want %v (another process's choice lost)", got, ok, c2)
	}
	// Two processes measure one geometry: the first written wins, and the
	// second is told to take it.
	g3 := Conv3{C: 8, O: 8, B: 2, H: 4, W: 4, Stride: 1}
	first, second := loadAlgoCache(p), loadAlgoCache(p)
	c3 := Conv3Choice{Forward: [2]int32{2, 3}}
	if got, err := first.put(g3, c3, nil); err != nil || got != c3 {
		t.Fatal(got, err)
	}
	if got, err := second.put(g3, c1, nil); err != nil || got != c3 {
		t.Fatalf("the second measurement of a geometry: told %v (%v), want the first's %v", got, err, c3)
	}
	if got, _ := loadAlgoCache(p).get(g3); got != c3 {
		t.Fatalf("the file holds %v for g3, want the first's %v", got, c3)
	}
	if got, _ := second.get(g2); got != c2 {
		t.Fatalf("the second run's cache after its put: g2 %v, want %v", got, c2)
	}
	// A run that could not use the file's choice (written by an older
	// build, say) replaces it: it stayed, and failed every later run.
	if got, err := second.put(g3, c1, &c3); err != nil || got != c1 {
		t.Fatalf("replacing the refused choice: told %v (%v), want %v", got, err, c1)
	}
	if got, _ := loadAlgoCache(p).get(g3); got != c1 {
		t.Fatalf("the file holds %v for g3, want %v, which replaced the refused one", got, c1)
	}
	// Unless another run replaced it first: then that one is everyone's.
	if got, err := first.put(g3, c2, &c3); err != nil || got != c1 {
		t.Fatalf("a second replacement of the refused choice: told %v (%v), want the first replacement %v", got, err, c1)
	}
	// Tuned graph plans: the directions the file's entry has none for take
	// this run's; the others stay the first run's.
	g4 := Conv3{C: 4, O: 4, B: 2, H: 4, W: 4, Stride: 1}
	a4 := Conv3Choice{Graph: &[3]string{"ours:A0", "", "nchw:A2"}}
	b4 := Conv3Choice{Graph: &[3]string{"ours:A1", "ours:A3", "ours:A0"}}
	if _, err := first.put(g4, a4, nil); err != nil {
		t.Fatal(err)
	}
	want := [3]string{"ours:A0", "ours:A3", "nchw:A2"}
	if got, err := second.put(g4, b4, nil); err != nil || got.Graph == nil || *got.Graph != want {
		t.Fatalf("graph plans: told %v (%v), want %v", got.Graph, err, want)
	}
	if got, _ := loadAlgoCache(p).get(g4); got.Graph == nil || *got.Graph != want {
		t.Fatalf("the file holds %v for g4, want %v", got.Graph, want)
	}
	if !sameChoice(a4, Conv3Choice{Graph: &[3]string{"ours:A0", "", "nchw:A2"}}) || sameChoice(a4, b4) || sameChoice(a4, Conv3Choice{}) {
		t.Fatal("sameChoice compares the plans' positions")
	}
	// A damaged file, or one holding null, is an empty cache, and the next
	// put replaces it.
	for _, bad := range []string{"{not json", "null", "[]"} {
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		d := loadAlgoCache(p)
		if len(d.choices) != 0 {
			t.Fatalf("%q gave %v", bad, d.choices)
		}
		if _, err := d.put(g1, c1, nil); err != nil {
			t.Fatalf("after %q: %v", bad, err)
		}
		if got, ok := loadAlgoCache(p).get(g1); !ok || got != c1 {
			t.Errorf("after %q: %v %v", bad, got, ok)
		}
	}
}

// Ranks of a data-parallel run measure the same geometries at the same
// moment, each with its own cache read before any of them wrote: every one
// must be told the same choice, the one the file keeps.
func TestAlgoCacheConcurrentPuts(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("LocalAppData", t.TempDir()) // Windows
	p := algoCachePath("NVIDIA H200 (sm_90)", "9.14.0", false)
	const ranks = 8
	for round := 0; round < 20; round++ {
		g := Conv3{C: 8, O: 8, B: round + 1, H: 4, W: 4, Stride: 1}
		caches := make([]*algoCache, ranks)
		for i := range caches {
			caches[i] = loadAlgoCache(p)
		}
		got := make([]Conv3Choice, ranks)
		errs := make([]error, ranks)
		var start, done sync.WaitGroup
		start.Add(1)
		for i := range caches {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				got[i], errs[i] = caches[i].put(g, Conv3Choice{Forward: [2]int32{int32(i), 1}}, nil)
			}()
		}
		start.Done()
		done.Wait()
		kept, ok := loadAlgoCache(p).get(g)
		if !ok {
			t.Fatalf("round %d: the file keeps no choice", round)
		}
		for i := range got {
			if errs[i] != nil {
				t.Fatalf("round %d, rank %d: %v", round, i, errs[i])
			}
			if got[i] != kept {
				t.Fatalf("round %d: rank %d was told %v, the file keeps %v", round, i, got[i], kept)
			}
		}
	}
}
