package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/model"
)

// fakeWorld is an in-process communicator: n goroutines play the ranks.
type fakeWorld struct {
	n     int
	mu    sync.Mutex
	cond  *sync.Cond
	round int
	count int
	sum   []float32
	bytes []byte
}

type fakeRank struct {
	w    *fakeWorld
	rank int
}

func newFakeWorld(n int) []*fakeRank {
	w := &fakeWorld{n: n}
	w.cond = sync.NewCond(&w.mu)
	ranks := make([]*fakeRank, n)
	for i := range ranks {
		ranks[i] = &fakeRank{w: w, rank: i}
	}
	return ranks
}

func (r *fakeRank) Rank() int { return r.rank }
func (r *fakeRank) Size() int { return r.w.n }

// collective runs f under the lock as this rank's part of one collective,
// and returns once every rank has taken part; finish runs for each rank
// after all have.
func (r *fakeRank) collective(f func(w *fakeWorld), finish func(w *fakeWorld)) {
	w := r.w
	w.mu.Lock()
	defer w.mu.Unlock()
	round := w.round
	f(w)
	w.count++
	if w.count == w.n {
		w.count = 0
		w.round++
		w.cond.Broadcast()
	} else {
		for w.round == round {
			w.cond.Wait()
		}
	}
	finish(w)
	// The last rank to leave resets the shared buffers for the next round.
}

func (r *fakeRank) AllReduceSum(buf []float32) error {
	var mine []float32
	r.collective(func(w *fakeWorld) {
		if w.count == 0 {
			w.sum = make([]float32, len(buf))
		}
		// Ranks add in rank order, as a deterministic reduction would.
		for i, v := range buf {
			w.sum[i] += v
		}
		mine = w.sum
	}, func(w *fakeWorld) { copy(buf, mine) })
	return nil
}

func (r *fakeRank) Broadcast(buf []byte, root int) error {
	var got []byte
	r.collective(func(w *fakeWorld) {
		if w.count == 0 {
			w.bytes = make([]byte, len(buf))
		}
		if r.rank == root {
			copy(w.bytes, buf)
		}
		got = w.bytes
	}, func(w *fakeWorld) { copy(buf, got) })
	return nil
}

func (r *fakeRank) Finalize() error { return nil }

// runRanks trains cfg over n in-process ranks.
func runRanks(t *testing.T, cfg Config, n int) {
	t.Helper()
	for i, err := range rankErrors(cfg, n) {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
}

// rankErrors trains cfg over n in-process ranks and returns each one's error.
func rankErrors(cfg Config, n int) []error {
	errs, _ := rankErrorsEach(cfg, n, nil, 0)
	return errs
}

// rankContext, where set, gives each in-process rank its context.
var rankContext func(rank int) context.Context

// rankReturned, where set, is called as each in-process rank's Run returns.
var rankReturned func(rank int)

// TestDataParallelInterruptBeforeTheFirstStep: a stop signal that reaches
// one rank while the data loads stops every rank before the first step,
// none waiting for another, and rank 0 leaves its folder as it was.
func TestDataParallelInterruptBeforeTheFirstStep(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.Model.Base, c.Batch, c.Steps = 16, 8, 2
	runRanks(t, c, 2)
	before := folderState(t, dir)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	rankContext = func(rank int) context.Context {
		if rank == 1 {
			return cancelled
		}
		return context.Background()
	}
	defer func() { rankContext = nil }()
	c.Steps, c.Fresh, c.Wipe = 4, true, true
	errs, hung := rankErrorsEach(c, 2, nil, time.Minute)
	if hung {
		t.Fatalf("a rank still ran after a minute: %v", errs)
	}
	for i, err := range errs {
		if !errors.Is(err, ErrInterrupted) {
			t.Errorf("rank %d: %v, want ErrInterrupted", i, err)
		}
	}
	if after := folderState(t, dir); !reflect.DeepEqual(after, before) {
		t.Errorf("-fresh -wipe stopped before its first step changed the folder")
	}
}

// rankErrorsEach trains cfg, changed for each rank by each (nil: not),
// over n in-process ranks, and returns each one's error; hung is true
// where some rank had not returned after limit (0: no limit).
func rankErrorsEach(cfg Config, n int, each func(rank int, c *Config), limit time.Duration) (errs []error, hung bool) {
	ranks := newFakeWorld(n)
	errs = make([]error, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range ranks {
		c := cfg
		c.Comm = ranks[i]
		if each != nil {
			each(i, &c)
		}
		ctx := context.Background()
		if rankContext != nil {
			ctx = rankContext(i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := Run(ctx, c)
			if rankReturned != nil {
				rankReturned(i)
			}
			mu.Lock()
			errs[i] = err
			mu.Unlock()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if limit == 0 {
		<-done
		return errs, false
	}
	select {
	case <-done:
		return errs, false
	case <-time.After(limit):
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(errs), true
	}
}

// TestDataParallelFailureStopsEveryRank: where one rank fails — before the
// first step (a rank's config is bad; another trainer holds rank 0's
// folder; its -resume file is not there; another rank's flags contradict rank 0's state; its data does
// not fit; rank 0 cannot open its log) or
// during the run (rank 0's checkpoint save) — every rank returns
// an error and none waits for it (they hung in the all-reduce); a run that
// could not start leaves the earlier run's files where they were.
func TestDataParallelFailureStopsEveryRank(t *testing.T) {
	cfg := func(dir string) Config {
		c := tinyConfig(dir)
		c.Model.Base, c.Batch, c.Steps, c.SaveEvery = 16, 8, 6, 3
		return c
	}
	for _, tc := range []struct {
		name  string
		each  func(rank int, c *Config)
		want  []string // each rank's error contains
		moved bool     // the earlier run was archived: the folder is not as it was
		held  bool     // another trainer holds the folder
	}{
		{"another trainer holds rank 0's folder", func(rank int, c *Config) {},
			[]string{"is in use by another process", "1 of the 2 MPI ranks could not start"}, false, true},
		{"rank 1's config is bad",
			func(rank int, c *Config) {
				if rank == 1 {
					c.LR = -1
				}
			},
			[]string{"1 of the 2 MPI ranks could not start", "-lr -1 must be a positive"}, false, false},
		{"rank 0's -resume file is not there",
			func(rank int, c *Config) {
				if rank == 0 {
					c.Resume = filepath.Join(c.CkptDir, "not-there.ckpt")
				}
			},
			[]string{"-resume: stat", "1 of the 2 MPI ranks could not start"}, false, false},
		{"rank 1's flags contradict rank 0's state",
			func(rank int, c *Config) {
				if rank == 1 {
					c.LR, c.Set = 2e-3, map[string]bool{"lr": true}
				}
			},
			[]string{"1 of the 2 MPI ranks could not start from rank 0's state", "-lr 0.002 contradicts it"}, false, false},
		{"rank 1's data does not fit",
			func(rank int, c *Config) {
				if rank == 1 {
					d := *c.Data
					d.Height, d.Width, d.N = 4, 4, 80
					c.Data = &d
				}
			},
			[]string{"1 of the 2 MPI ranks could not start", "images are 1×4×4, and the network of rank 0's state (step 6) takes 1×8×8"}, false, false},
		{"rank 1's data does not fit a fresh run",
			func(rank int, c *Config) {
				c.Fresh = true
				if rank == 1 {
					d := *c.Data
					d.Height, d.Width, d.N = 4, 4, 80
					c.Data = &d
				}
			},
			[]string{"1 of the 2 MPI ranks could not start", "images are 1×4×4, and the network is set up for 1×8×8"}, false, false},
		{"rank 0 cannot open its train.csv",
			func(rank int, c *Config) {
				c.Fresh = true
				if rank == 0 {
					// Once the earlier run is archived, train.csv's name is
					// a folder with a file: the new log cannot be made.
					c.Log = hookWriter{"-fresh: moved", func() {
						os.MkdirAll(filepath.Join(c.CkptDir, csvName, "x"), 0o755)
					}}
				}
			},
			[]string{csvName, "1 of the 2 MPI ranks could not start (rank 0 could not prepare its checkpoint folder)"}, true, false},
		{"rank 0's save fails",
			func(rank int, c *Config) {
				c.Fresh = true
				if rank == 0 {
					// Once the run starts, its first checkpoint's name is
					// a folder with a file: the save cannot rename onto it.
					c.Log = hookWriter{"starting a fresh run", func() {
						os.MkdirAll(filepath.Join(c.CkptDir, checkpoint.FileName(3), "x"), 0o755)
					}}
				}
			},
			[]string{checkpoint.FileName(3), "1 of the 2 MPI ranks failed (their errors are in their output): stopped after step 3"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base := cfg(dir)
			if _, err := Run(context.Background(), base); err != nil { // the earlier run
				t.Fatal(err)
			}
			if tc.held {
				l, err := fsutil.TryLock(filepath.Join(dir, lockName))
				if err != nil {
					t.Fatal(err)
				}
				defer l.Unlock()
			}
			before, _ := os.ReadDir(dir)
			base.Steps = 12
			errs, hung := rankErrorsEach(base, 2, tc.each, time.Minute)
			if hung {
				t.Fatalf("a rank was still running after a minute (errors so far: %v)", errs)
			}
			for i, err := range errs {
				if err == nil || !strings.Contains(err.Error(), tc.want[i]) {
					t.Errorf("rank %d: %v, want an error with %q", i, err, tc.want[i])
				}
			}
			after, _ := os.ReadDir(dir)
			if tc.moved {
				return
			}
			if !reflect.DeepEqual(names(before), names(after)) {
				t.Fatalf("the folder held %v, now %v", names(before), names(after))
			}
		})
	}
}

// TestDataParallelResumeFromRankZero: rank 0 alone reads a -resume file;
// a rank on a machine without a copy of it trains from rank 0's state (it
// failed alone, before its first all-reduce, and left rank 0 waiting).
func TestDataParallelResumeFromRankZero(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(filepath.Join(dir, "from"))
	c.Model.Base, c.Batch, c.Steps, c.SaveEvery = 16, 8, 3, 3
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	c.CkptDir, c.Steps = filepath.Join(dir, "to"), 6
	c.Resume = filepath.Join(dir, "from", checkpoint.FileName(3))
	errs, hung := rankErrorsEach(c, 2, func(rank int, c *Config) {
		if rank == 1 {
			c.Resume = filepath.Join(dir, "elsewhere", checkpoint.FileName(3))
		}
	}, time.Minute)
	if hung || errs[0] != nil || errs[1] != nil {
		t.Fatalf("hung %v, errors %v", hung, errs)
	}
	if s := lastState(t, c.CkptDir); s.Step != 6 {
		t.Fatalf("the resumed run ended at step %d", s.Step)
	}
}

// TestDataParallelPlanIsRankZeros: a rank given another -steps (or save
// interval) than rank 0 trains rank 0's plan: it made another number of
// steps, and the others waited in the all-reduce for ever. A rank's own
// plan, not used, is not refused either.
func TestDataParallelPlanIsRankZeros(t *testing.T) {
	c := tinyConfig(t.TempDir())
	c.Model.Base, c.Batch, c.Steps, c.SaveEvery = 16, 6, 6, 3
	errs, hung := rankErrorsEach(c, 3, func(rank int, c *Config) {
		if rank == 1 {
			c.Steps, c.SaveEvery, c.Set = 9, 2, map[string]bool{"steps": true, "save-every": true}
		}
		if rank == 2 { // not used, so not refused (every rank was told it was)
			c.Steps, c.SaveEvery, c.Keep = 0, 0, -1
		}
	}, time.Minute)
	if hung || errs[0] != nil || errs[1] != nil || errs[2] != nil {
		t.Fatalf("hung %v, errors %v", hung, errs)
	}
	if s := lastState(t, c.CkptDir); s.Step != 6 {
		t.Fatalf("the run ended at step %d", s.Step)
	}
}

// failingObjective fails its run calls from the after-th on.
type failingObjective struct {
	objective
	after, n int
}

func (f *failingObjective) run(x, z []float32, labels []int, means, sigmas []float64) (float64, []float64, error) {
	if f.n++; f.n > f.after {
		return 0, nil, errors.New("train: the objective failed (a test's)")
	}
	return f.objective.run(x, z, labels, means, sigmas)
}

// TestDataParallelOtherRankFailsSaves: where another rank fails mid-run,
// rank 0 saves the steps made since its last checkpoint (it returned
// without, losing up to -save-every steps), and the run resumed from there
// ends with the bits of an uninterrupted one.
func TestDataParallelOtherRankFailsSaves(t *testing.T) {
	dir := t.TempDir()
	cfg := func(d string) Config {
		c := tinyConfig(filepath.Join(dir, d))
		c.Model.Base, c.Batch, c.Steps, c.SaveEvery = 16, 8, 9, 100
		return c
	}
	runRanks(t, cfg("whole"), 2)
	broken := cfg("broken")
	wrapObjective = func(r *run, g objective) objective {
		if r.dp != nil && r.dp.rank == 1 {
			return &failingObjective{objective: g, after: 5}
		}
		return g
	}
	defer func() { wrapObjective = nil }()
	errs, hung := rankErrorsEach(broken, 2, nil, time.Minute)
	wrapObjective = nil
	if hung {
		t.Fatalf("a rank was still running after a minute (errors so far: %v)", errs)
	}
	saved := filepath.Join(broken.CkptDir, checkpoint.FileName(5))
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "1 of the 2 MPI ranks failed (their errors are in their output): stopped after step 5; saved "+saved+"; the same command resumes it") {
		t.Fatalf("rank 0: %v", errs[0])
	}
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "the objective failed") {
		t.Fatalf("rank 1: %v", errs[1])
	}
	runRanks(t, broken, 2)
	a, b := lastState(t, filepath.Join(dir, "whole")), lastState(t, broken.CkptDir)
	if a.Step != 9 || b.Step != 9 || !reflect.DeepEqual(a.Weights, b.Weights) || !reflect.DeepEqual(a.EMA, b.EMA) {
		t.Fatalf("steps %d and %d: the resumed run's weights differ from the uninterrupted one's", a.Step, b.Step)
	}
}

// hookWriter calls hook (once per match) when a write holds match.
type hookWriter struct {
	match string
	hook  func()
}

func (h hookWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), h.match) {
		h.hook()
	}
	return len(p), nil
}

// The data-parallel loop in one process: 2 ranks × 4 images compute the
// losses of 1 rank × 8 (the same images and noise) and close weights; a
// 2-rank run stopped and resumed is bit-identical to an uninterrupted one;
// only rank 0 writes. (The same over real MPI: TestMPIEquivalence.)
func TestDataParallelInProcess(t *testing.T) {
	dir := t.TempDir()
	cfg := func(d string, steps int) Config {
		// Base 16: two channels per GroupNorm group. With one, the biases
		// before a GroupNorm have no gradient in exact arithmetic, only
		// float32 noise, whose sign depends on the BLAS's summation order
		// (OpenBLAS's Haswell kernels, which it takes on AMD's Zen, round
		// a product's rows by the number of rows: the two runs' signs
		// differed), and Adam turns that sign into a whole step.
		c := tinyConfig(filepath.Join(dir, d))
		c.Model.Base, c.Batch, c.Steps, c.SaveEvery = 16, 8, steps, 100
		return c
	}
	var log bytes.Buffer
	one := cfg("one", 6)
	one.Log = &log
	runRanks(t, one, 1)
	runRanks(t, cfg("two", 6), 2)
	runRanks(t, cfg("one-1", 1), 1)
	runRanks(t, cfg("two-1", 1), 2)
	runRanks(t, cfg("resumed", 3), 2)
	runRanks(t, cfg("resumed", 6), 2)
	if !strings.Contains(log.String(), "data-parallel over 1 MPI ranks") {
		t.Errorf("log: %s", log.String())
	}
	a, b, c := lastState(t, filepath.Join(dir, "one")), lastState(t, filepath.Join(dir, "two")), lastState(t, filepath.Join(dir, "resumed"))
	la, _ := os.ReadFile(filepath.Join(dir, "one", csvName))
	lb, _ := os.ReadFile(filepath.Join(dir, "two", csvName))
	if strings.Count(string(lb), "\n") != 7 {
		t.Fatalf("two ranks' train.csv:\n%s", lb)
	}
	ra, rb := strings.Split(string(la), "\n"), strings.Split(string(lb), "\n")
	for i := 1; i < 7; i++ {
		fa, fb := strings.Split(ra[i], ","), strings.Split(rb[i], ",")
		if fa[1] != fb[1] {
			t.Errorf("step %d: loss %s with 1 rank, %s with 2", i, fa[1], fb[1])
		}
	}
	// One step: the averaged gradient equals the full batch's to rounding,
	// so Adam's first step agrees except where a gradient is ~0 and its
	// sign is rounding (Adam's first step is ±lr whatever the size).
	// Later steps spread such differences (chaotically, through the
	// per-weight normalisation), which is why the losses are compared there.
	a1, b1 := lastState(t, filepath.Join(dir, "one-1")), lastState(t, filepath.Join(dir, "two-1"))
	rel := func(x, y *checkpoint.State) float64 {
		var num, den float64
		for i, p := range x.Weights {
			for j, v := range p.Data {
				e := float64(v - y.Weights[i].Data[j])
				num += e * e
				den += float64(v) * float64(v)
			}
		}
		return math.Sqrt(num / den)
	}
	t.Logf("weights, 1 rank × 8 against 2 ranks × 4: relative L2 %.3g after 1 step, %.3g after 6", rel(a1, b1), rel(a, b))
	if r := rel(a1, b1); !(r < 1e-6) {
		t.Errorf("after one step the weights differ by %.3g (relative L2)", r)
	}
	for i, p := range b.Weights {
		if !bytes.Equal(f32(p.Data), f32(c.Weights[i].Data)) {
			t.Fatalf("%s: a resumed 2-rank run differs", p.Name)
		}
	}
}

func lastState(t *testing.T, dir string) *checkpoint.State {
	t.Helper()
	p, err := checkpoint.Latest(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := checkpoint.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The all-reduce averages the ranks' gradients into the full batch's: two
// graphs on halves of a batch, reduced, give the gradients, loss and
// per-image losses of one graph on the whole batch (to float rounding).
func TestReduceAveragesGradients(t *testing.T) {
	cfg := tinyConfig(t.TempDir())
	cfg.Model.Base = 16 // no gradient zero in exact arithmetic (TestDataParallelInProcess)
	params, err := model.Init(cfg.Model, rand.New(rand.NewPCG(9, 9)))
	if err != nil {
		t.Fatal(err)
	}
	const batch = 6
	d := cfg.Model.Dim()
	r := rand.New(rand.NewPCG(2, 2))
	x, z := make([]float32, batch*d), make([]float32, batch*d)
	for i := range x {
		x[i], z[i] = float32(r.Float64()), float32(r.NormFloat64())
	}
	mean := []float64{1, 1, 1, 1, 1, 1}
	sig := []float64{0.05, 0.3, 1, 0.1, 0.5, 0.07}
	full, err := newDSMGraph(cfg.Model, params, batch)
	if err != nil {
		t.Fatal(err)
	}
	defer full.close()
	wantLoss, wantPer, err := full.run(x, z, nil, mean, sig)
	if err != nil {
		t.Fatal(err)
	}
	ranks := newFakeWorld(2)
	type out struct {
		loss float64
		per  []float64
		g    [][]float32
		err  error
	}
	res := make([]out, 2)
	var wg sync.WaitGroup
	for k := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := batch / 2
			g, err := newDSMGraph(cfg.Model, params.Clone(), h)
			if err != nil {
				res[k].err = err
				return
			}
			defer g.close()
			sl := func(v []float32) []float32 { return v[k*h*d : (k+1)*h*d] }
			loss, per, err := g.run(sl(x), sl(z), nil, mean[k*h:(k+1)*h], sig[k*h:(k+1)*h])
			if err != nil {
				res[k].err = err
				return
			}
			dp := &dataParallel{comm: ranks[k], rank: k, size: 2, local: h, from: k * h, n: params.Count()}
			lvl := make([]int, h)
			loss, per, _, _, _, _, err = dp.reduce(g.grads(), batch, 0, loss, per, lvl, make([]float64, h), sig[k*h:(k+1)*h], false, false)
			res[k] = out{loss: loss, per: per, err: err}
			for _, gr := range g.grads() {
				res[k].g = append(res[k].g, append([]float32(nil), gr...))
			}
		}()
	}
	wg.Wait()
	for k, o := range res {
		if o.err != nil {
			t.Fatal(o.err)
		}
		if math.Abs(o.loss-wantLoss) > 1e-5*math.Abs(wantLoss) {
			t.Errorf("rank %d: loss %g, full batch %g", k, o.loss, wantLoss)
		}
		for i := range wantPer {
			if math.Abs(o.per[i]-wantPer[i]) > 1e-4*math.Abs(wantPer[i]) {
				t.Errorf("rank %d: image %d loss %g, full batch %g", k, i, o.per[i], wantPer[i])
			}
		}
		for j, want := range full.grads() {
			var num, den float64
			for i, v := range want {
				e := float64(o.g[j][i] - v)
				num += e * e
				den += float64(v) * float64(v)
			}
			if rel := math.Sqrt(num / den); !(rel < 1e-5) {
				t.Errorf("rank %d: gradient %d differs from the full batch's by %.3g (relative L2)", k, j, rel)
			}
		}
	}
}

// A training step gives the same bits on any number of cores: the default
// MNIST network (batch 4: its 1×1 convolutions' products, and their
// gradients', are large enough to be cut into blocks), forward and
// backward at GOMAXPROCS 1, 2 and 3.
func TestSameBitsOnAnyCoreCount(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	cfg := model.MNIST(16)
	params, err := model.Init(cfg, rand.New(rand.NewPCG(4, 4)))
	if err != nil {
		t.Fatal(err)
	}
	const batch = 4
	d := cfg.Dim()
	r := rand.New(rand.NewPCG(5, 5))
	x, z := make([]float32, batch*d), make([]float32, batch*d)
	for i := range x {
		x[i], z[i] = float32(r.Float64()), float32(r.NormFloat64())
	}
	mean, sig := []float64{1, 1, 1, 1}, []float64{0.05, 0.3, 1, 3}
	step := func(procs int) ([]float64, [][]float32) {
		runtime.GOMAXPROCS(procs)
		g, err := newDSMGraph(cfg, params.Clone(), batch)
		if err != nil {
			t.Fatal(err)
		}
		defer g.close()
		_, per, err := g.run(x, z, nil, mean, sig)
		if err != nil {
			t.Fatal(err)
		}
		var grads [][]float32
		for _, gr := range g.grads() {
			grads = append(grads, append([]float32(nil), gr...))
		}
		return per, grads
	}
	per1, g1 := step(1)
	for _, procs := range []int{2, 3} {
		per, g := step(procs)
		for i := range per1 {
			if per[i] != per1[i] {
				t.Errorf("%d cores: image %d's loss %v, on one core %v", procs, i, per[i], per1[i])
			}
		}
		for j := range g1 {
			if !bytes.Equal(f32(g[j]), f32(g1[j])) {
				t.Errorf("%d cores: gradient %d differs from one core's", procs, j)
			}
		}
	}
}

// TestDataParallelRanksWaitForTheLastSave: at a stop every rank returns
// only once rank 0's checkpoint is saved (the others returned at once, and
// mpirun then stopped rank 0 a second later, part-way through a slow save:
// no checkpoint); so too where another rank failed.
func TestDataParallelRanksWaitForTheLastSave(t *testing.T) {
	for _, how := range []string{"stop", "failure"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			c := tinyConfig(dir)
			c.Model.Base, c.Batch, c.Steps, c.SaveEvery = 16, 8, 50, 100
			ctx1, cancel1 := context.WithCancel(context.Background())
			defer cancel1()
			rankContext = func(rank int) context.Context {
				if rank == 1 {
					return ctx1
				}
				return context.Background()
			}
			wrapObjective = func(r *run, g objective) objective {
				if r.dp.rank != 1 {
					return g
				}
				if how == "stop" {
					return &cancellingObjective{objective: g, after: 3, cancel: cancel1}
				}
				return &failingObjective{objective: g, after: 3}
			}
			savingHook = func(*run) { time.Sleep(300 * time.Millisecond) }
			var atReturn []string // rank 0's checkpoints as rank 1 returned
			rankReturned = func(rank int) {
				if rank == 1 {
					atReturn, _ = checkpoint.List(dir)
				}
			}
			defer func() { rankContext, wrapObjective, savingHook, rankReturned = nil, nil, nil, nil }()
			errs, hung := rankErrorsEach(c, 2, nil, time.Minute)
			if hung {
				t.Fatalf("a rank still ran after a minute: %v", errs)
			}
			if errs[0] == nil || errs[1] == nil {
				t.Fatalf("errors %v", errs)
			}
			if len(atReturn) != 1 {
				t.Fatalf("rank 1 returned with rank 0's checkpoints %v: before its last save (errors %v)", atReturn, errs)
			}
		})
	}
}

// TestDataParallelSigmaDataIsRankZeros: EDM's σ_data given to rank 0 alone
// is every rank's (the others took it from the data, and trained another
// model without a word): the run ends with the bits of one where every rank
// was given it.
func TestDataParallelSigmaDataIsRankZeros(t *testing.T) {
	cfg := func(dir string) Config {
		c := tinyConfig(dir)
		c.Model.Base, c.Batch, c.Steps, c.SaveEvery = 16, 8, 4, 100
		c.Model.Precond, c.Model.SigmaData = model.PrecondEDM, 0.9
		return c
	}
	all, zero := cfg(t.TempDir()), cfg(t.TempDir())
	runRanks(t, all, 2)
	errs, hung := rankErrorsEach(zero, 2, func(rank int, c *Config) {
		if rank == 1 { // not given: 0, from the data
			c.Model.SigmaData, c.Set = 0, map[string]bool{}
		}
	}, time.Minute)
	if hung || errs[0] != nil || errs[1] != nil {
		t.Fatalf("hung %v, errors %v", hung, errs)
	}
	a, b := lastState(t, all.CkptDir), lastState(t, zero.CkptDir)
	if a.Model.SigmaData != 0.9 || b.Model.SigmaData != 0.9 || !reflect.DeepEqual(a.Weights, b.Weights) {
		t.Fatalf("σ_data %g and %g; the weights differ: %v", a.Model.SigmaData, b.Model.SigmaData, !reflect.DeepEqual(a.Weights, b.Weights))
	}
}

// TestDataParallelSameData: ranks whose images differ (each reads its own
// folder, by its own path) are refused on every rank before the first step
// (they trained another model than the log said, without a word); the
// same images, each rank its own copy, are not.
func TestDataParallelSameData(t *testing.T) {
	c := tinyConfig(t.TempDir())
	c.Model.Base, c.Batch, c.Steps = 16, 8, 2
	errs, hung := rankErrorsEach(c, 2, func(rank int, c *Config) {
		c.Data = tinyData() // a copy each
		if rank == 1 {
			c.Data.Images[5] = 1 - c.Data.Images[5] // another image, in [0, 1]
		}
	}, time.Minute)
	if hung {
		t.Fatalf("hung: %v", errs)
	}
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "rank 1's data is not rank 0's") || errs[0] == nil || !strings.Contains(errs[0].Error(), "could not start with rank 0's data") {
		t.Fatalf("other images on rank 1: %v", errs)
	}
	if all, _ := checkpoint.List(c.CkptDir); len(all) != 0 {
		t.Fatalf("saved %v", all)
	}
	runRanks(t, c, 2) // each rank Config.Data's own copy of the same images
}

// TestDataParallelOtherRankCount: a resume on another number of ranks says
// its bits will differ (the gradients are summed in another order; README
// promised an exact resume for any number); on the same number it says
// nothing.
func TestDataParallelOtherRankCount(t *testing.T) {
	c := tinyConfig(t.TempDir())
	c.Model.Base, c.Batch, c.Steps = 16, 6, 2
	runRanks(t, c, 2)
	for _, tc := range []struct {
		ranks, steps int
		note         bool
	}{{2, 3, false}, {3, 4, true}} {
		var log bytes.Buffer
		c.Steps = tc.steps
		errs, hung := rankErrorsEach(c, tc.ranks, func(rank int, c *Config) {
			if rank == 0 {
				c.Log = &log
			}
		}, time.Minute)
		if hung || slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
			t.Fatalf("%d ranks: hung %v, %v", tc.ranks, hung, errs)
		}
		if got := strings.Contains(log.String(), "MPI ranks and this run has 3: the same batches"); got != tc.note {
			t.Errorf("%d ranks: note %v, want %v:\n%s", tc.ranks, got, tc.note, log.String())
		}
	}
}
