package cuda

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ncsn-go/ncsn/internal/fsutil"
)

// Conv3Choice is the cuDNN algorithm and math type of each direction of a
// 3×3 convolution, as cuDNN's Find chose them; or, in the cache of tuned
// graph-API plans, each direction's configuration ("ours:A3": mode A's
// fourth, on our layout; "" for none).
type Conv3Choice struct {
	Forward, Data, Filter [2]int32   // algorithm, math type
	Graph                 *[3]string `json:",omitempty"`
}

// algoCache is the file in the user's cache folder where the choices
// measured on one GPU with one cuDNN and one arithmetic are kept, so that
// every later run there takes the same algorithms (and so the same bits)
// without measuring again. A cache that cannot be read or written costs a
// measurement per run: the choice then follows that run's timings.
type algoCache struct {
	path    string
	choices map[string]Conv3Choice
}

// algoCachePath is the cache file for a GPU, cuDNN and arithmetic ("" where
// the user has no cache folder).
func algoCachePath(gpu, cudnn string, tf32 bool) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	math := "float32"
	if tf32 {
		math = "tf32"
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, fmt.Sprintf("%s-cudnn%s-%s", gpu, cudnn, math))
	// v1: the rules of dnnChoose (deterministic, ≤ 1 GiB, FMA unless TF32);
	// other rules would take another name.
	return filepath.Join(dir, "ncsn", "cudnn", name+".v1.json")
}

// loadAlgoCache reads path; a missing or damaged file is an empty cache.
func loadAlgoCache(path string) *algoCache {
	c := &algoCache{path: path, choices: map[string]Conv3Choice{}}
	if path == "" {
		return c
	}
	b, err := fsutil.ReadRegular(path)
	if err != nil {
		return c
	}
	var m map[string]Conv3Choice
	if json.Unmarshal(b, &m) == nil && m != nil { // "null" decodes to no map
		c.choices = m
	}
	return c
}

// conv3CacheKey names a geometry in the cache.
func conv3CacheKey(g Conv3) string {
	return fmt.Sprintf("C=%d O=%d B=%d %dx%d stride %d", g.C, g.O, g.B, g.H, g.W, g.Stride)
}

// get returns g's choice, if one is kept.
func (c *algoCache) get(g Conv3) (Conv3Choice, bool) {
	ch, ok := c.choices[conv3CacheKey(g)]
	return ch, ok
}

// put keeps g's choice and writes the file atomically, merged with what
// another process may have written meanwhile, under a lock on the file
// beside it (path + ".lock"). The first choice written
// wins: where the file already holds one for g (another process measured
// it since this one read the file), put returns that one, for the caller
// to take instead of its own, so that both runs use the same algorithms.
// Two exceptions: an entry equal to refused — the one this run read and
// could not use (written by an older build, say) — is replaced by ch (it
// stayed, and failed every later run); and where both are tuned graph
// plans, the directions the file's entry has none for take ch's.
func (c *algoCache) put(g Conv3, ch Conv3Choice, refused *Conv3Choice) (Conv3Choice, error) {
	key := conv3CacheKey(g)
	if c.path == "" {
		c.choices[key] = ch
		return ch, nil
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return ch, err
	}
	// Ranks of a data-parallel run measure the same geometries at once:
	// the lock keeps another process from writing between this read and
	// this write, so that every one of them is told the first choice. Where
	// it cannot be had the put goes on unlocked (the worst case: two runs
	// that keep different algorithms, as without a cache).
	if l, err := fsutil.WaitLock(c.path+".lock", 30*time.Second); err == nil {
		defer l.Unlock()
	}
	merged := loadAlgoCache(c.path).choices
	if first, ok := merged[key]; ok && (refused == nil || !sameChoice(first, *refused)) {
		ch = firstChoice(first, ch)
	}
	for k, v := range c.choices {
		if _, ok := merged[k]; !ok {
			merged[k] = v
		}
	}
	merged[key] = ch
	c.choices = merged
	b, err := json.MarshalIndent(merged, "", " ")
	if err != nil {
		return ch, err
	}
	return ch, fsutil.WriteFileAtomic(c.path, append(b, '\n'))
}

// sameChoice says whether a and b choose the same algorithms and plans.
func sameChoice(a, b Conv3Choice) bool {
	return a.Forward == b.Forward && a.Data == b.Data && a.Filter == b.Filter &&
		(a.Graph == nil) == (b.Graph == nil) && (a.Graph == nil || *a.Graph == *b.Graph)
}

// firstChoice is what put keeps where the file holds first and this run
// chose mine: first, with the graph plans' directions it has none for
// ("") taken from mine.
func firstChoice(first, mine Conv3Choice) Conv3Choice {
	if first.Graph == nil || mine.Graph == nil {
		return first
	}
	g := *first.Graph
	for dir, pos := range g {
		if pos == "" {
			g[dir] = mine.Graph[dir]
		}
	}
	first.Graph = &g
	return first
}
