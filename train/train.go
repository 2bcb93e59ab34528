package train

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/blas"
	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/internal/english"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/internal/kernel"
	"github.com/ncsn-go/ncsn/internal/mpi"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/optim"
	"github.com/ncsn-go/ncsn/sde"
	"github.com/schollz/progressbar/v3"
)

// ErrInterrupted is returned when the context ends a run; the state at that
// point has been saved where a step had run since the last save (a run
// stopped before its first step saves nothing).
var ErrInterrupted = errors.New("train: interrupted")

// ErrMismatch is wrapped when a checkpoint does not fit the requested run.
var ErrMismatch = errors.New("train: checkpoint does not match")

// ErrNonFinite is wrapped when a step's loss or gradient is NaN or Inf: the
// run stops before that step changes anything, and saves nothing more.
var ErrNonFinite = errors.New("train: non-finite")

// ErrBusy is wrapped when another process is training in the same
// checkpoint folder.
var ErrBusy = errors.New("train: checkpoint folder in use")

// Result says where a run ended.
type Result struct {
	Step       int
	Checkpoint string
	Loss       float64 // mean loss of the last step
}

// run is the live state of a training run.
type run struct {
	bar     *progressbar.ProgressBar // the loop's, on a terminal (nil: none)
	cfg     Config
	sigmas  []float64   // NCSN's levels; nil for a continuous process
	proc    sde.Process // set when the loop starts
	weights model.Params
	ema     model.Params
	opt     *optim.Adam
	pcg     *rand.PCG
	rng     *rand.Rand
	step    int
	elapsed float64 // training seconds before this session
	log     io.Writer
	arith   string // the arithmetic path of this process
	// ckptArith is the arithmetic path of the checkpoint resumed from ("":
	// a fresh run, or one saved before checkpoints recorded it).
	ckptArith string
	ckpt      string        // the newest checkpoint of the run, saved or resumed from
	dp        *dataParallel // nil for one process
	dev       *cuda.Device  // the device Run opened; nil for the CPU
	fresh     string        // a fresh run's first line, written once its data is loaded
	hint      string        // how an interrupted run resumes (resumeHint)
	later     bool          // a run resumed from the folder's latest sets later checkpoints aside (setLaterAside)
	aside     bool          // a fresh run sets the folder's earlier files aside (setAside) before its first step
	// prunedSaid: the first pruning of this session was said.
	prunedSaid bool
	// guide is the EMA as it was at step guideStep (Config.GuideAt); nil
	// until the run has passed that step.
	guide     model.Params
	guideStep int
}

// guideStep is the step at which a run keeps its EMA as the guide
// (checkpoint.GuideStep).
func (c Config) guideStep() int { return checkpoint.GuideStep(c.GuideAt, c.Steps) }

// keepGuide keeps the EMA as the guide when the run is at the guide's step
// of its current -steps. A run resumed with more steps thus moves its guide
// to the new fraction while that is still ahead, and keeps the one it has
// otherwise.
func (r *run) keepGuide(g objective) error {
	if k := r.cfg.guideStep(); k == 0 || r.step != k || r.guideStep == k {
		return nil
	}
	if err := syncFrom(g, r); err != nil {
		return err
	}
	r.guide, r.guideStep = r.ema.Clone(), r.step
	return nil
}

// lockName is the lock file that keeps a second trainer out of a folder.
const lockName = checkpoint.LockName

// ArithPath names the arithmetic path this process computes on: the
// convolution kernels and the BLAS, with the CPU core OpenBLAS chose its
// kernels for, and the architecture where it is not plain x86-64 (arm64,
// or a GOAMD64=v3 build, fuses Go's multiply-adds): "avx512+openblas/
// Cooperlake", "portable+gonum (arm64)". Resumes are bit-exact only on one
// path.
func ArithPath() string {
	p := kernel.Path() + "+" + blas.Name()
	if c := blas.Core(); c != "" {
		p += "/" + c
	}
	if a := archLevel(); a != "" {
		p += " (" + a + ")"
	}
	return p
}

// archLevel is the architecture and level this binary was built for where
// its Go arithmetic may differ from plain x86-64's: "" for GOAMD64=v1 or
// v2, "amd64 v3+" from v3, where Go fuses multiply-adds (v2 gave the same
// bits as v1, v3 others).
func archLevel() string {
	if runtime.GOARCH != "amd64" {
		return runtime.GOARCH
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOAMD64" && s.Value >= "v3" {
				return "amd64 v3+"
			}
		}
	}
	return ""
}

// sameArith reports whether a checkpoint computed on the path ckpt gives the
// bits of one computed on now. A path named before its OpenBLAS core and
// architecture were (2026-11-29: "avx512+openblas") is taken as now's where
// the rest agrees — "blas" as "openblas", the name a library that is
// OpenBLAS under another file name had then. (The AVX2 set's bits changed
// that day, and its name with them: "avx2" is not "avx2-div".)
func sameArith(ckpt, now string) bool {
	if ckpt == now {
		return true
	}
	if strings.ContainsAny(ckpt, "/(") || strings.HasPrefix(ckpt, "mixed: ") {
		return false
	}
	// Named before: by the SIMD set and library alone, of a plain x86-64
	// build (the most likely; another build's note is the safer mistake).
	if strings.Contains(now, " (") {
		return false
	}
	base, _, _ := strings.Cut(now, "/")
	return ckpt == base || strings.HasSuffix(ckpt, "+blas") && strings.TrimSuffix(ckpt, "+blas")+"+openblas" == base
}

// Run trains until cfg.Steps, resuming from a checkpoint where there is one
// (see Config), saving every cfg.SaveEvery steps, at the end, and when ctx is
// cancelled (then it returns ErrInterrupted).
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	// Under data parallelism a rank's bad config is told to the others in
	// the first agreement (they waited for it for ever).
	dp, err := newDataParallel(cfg)
	if verr := cfg.planless(dp).Validate(); verr != nil {
		err = verr
	}
	if err != nil && dp == nil {
		return nil, err
	}
	_, statErr := os.Stat(cfg.CkptDir)
	created := errors.Is(statErr, os.ErrNotExist)
	if dp != nil {
		cfg.DataParallel, cfg.Ranks = true, dp.size
		if dp.rank != 0 { // rank 0 alone writes and reports
			cfg.Log, cfg.Bar = io.Discard, false
			return runRank(ctx, cfg, dp, err)
		}
	}
	// A -resume file that is not there fails before any folder or device.
	// Rank 0 alone reads it (the others start from its state: their
	// machines need no copy), and tells them in the first agreement.
	var lock *fsutil.Lock
	if err == nil && cfg.Resume != "" {
		if _, err = os.Stat(cfg.Resume); err != nil {
			err = fmt.Errorf("train: -resume: %w", err)
		}
	}
	if err == nil {
		lock, err = takeFolder(cfg, created)
	}
	if dp != nil { // the other ranks wait for rank 0 to have the folder (runRank)
		if aerr := dp.agree(err, "start"); err == nil && aerr != nil {
			releaseFolder(cfg, lock, created, true)
			err = aerr
		}
	}
	if err != nil {
		return nil, err
	}
	defer func() { releaseFolder(cfg, lock, created, err != nil) }()
	// The device, once the folder is this run's (a second trainer is told
	// the folder is busy, not that the GPU is) and before any checkpoint or
	// download: a -device cuda that cannot work leaves nothing behind.
	dev, err := pickDevice(cfg, dp)
	if err != nil {
		return nil, err
	}
	if dev != nil {
		defer dev.Close()
	}
	r, err := start(cfg)
	if dp != nil {
		r, err = dp.share(r, err, cfg)
		// A rank that cannot take rank 0's state (a flag of its own that
		// contradicts it) tells the others, which waited for it.
		err = dp.agree(err, "start from rank 0's state")
	}
	if err != nil {
		return nil, err
	}
	r.dev = dev
	return r.train(ctx, cfg, dp)
}

// planless is c as a rank other than 0 of dp checks it: the run's plan
// (-steps, -save-every, -keep) is rank 0's (share), so this rank's own is
// neither used nor refused (resumeState checks the plan it takes).
func (c Config) planless(dp *dataParallel) Config {
	if dp != nil && dp.rank != 0 {
		c.Steps, c.SaveEvery, c.Keep = max(c.LRWarmup+1, 1), 1, 0
	}
	return c
}

// takeFolder makes cfg.CkptDir this process's: made where it is not
// there (created), locked against a second trainer — the lock is the
// operating system's, so it goes away with this process however it ends —
// checked to take new files, and cleared of the partial files of a save
// that a killed process never finished. Where it fails it holds no lock
// and leaves no folder it made.
func takeFolder(cfg Config, created bool) (lock *fsutil.Lock, err error) {
	if err := os.MkdirAll(cfg.CkptDir, 0o755); err != nil {
		return nil, fmt.Errorf("train: -ckpt-dir: %w", err)
	}
	lock, err = fsutil.TryLock(filepath.Join(cfg.CkptDir, lockName))
	if le := (*fsutil.LockedError)(nil); errors.As(err, &le) {
		return nil, fmt.Errorf("%w: %s is in use by another process (%s); wait for it to end, or use another -ckpt-dir",
			ErrBusy, cfg.CkptDir, le.Holder)
	}
	if err != nil {
		if created { // TryLock may have made the lock file before it failed
			os.Remove(filepath.Join(cfg.CkptDir, lockName))
			os.Remove(cfg.CkptDir)
		}
		return nil, fmt.Errorf("train: %w", err)
	}
	// A folder that takes no files fails now, not at the first save.
	if err := fsutil.CheckWritableDir("-ckpt-dir", cfg.CkptDir, cfg.CkptDir); err != nil {
		releaseFolder(cfg, lock, created, true)
		return nil, fmt.Errorf("train: %w", err)
	}
	if n, err := fsutil.RemoveTemps(cfg.CkptDir, "ckpt-*.ckpt", "latest", csvName); err != nil {
		releaseFolder(cfg, lock, created, true)
		return nil, fmt.Errorf("train: %w", err)
	} else if n > 0 {
		fmt.Fprintf(cfg.Log, "removed %d partial files of an interrupted save from %s\n", n, cfg.CkptDir)
	}
	return lock, nil
}

// releaseFolder releases takeFolder's lock; a run that failed before
// writing anything leaves no folder it made (Remove takes only an empty
// one). The lock file goes while the lock is still held: removed after, it
// could be a second trainer's, taken in between. (Windows deletes no file
// that is open: there it goes after.)
func releaseFolder(cfg Config, lock *fsutil.Lock, created, failed bool) {
	name := filepath.Join(cfg.CkptDir, lockName)
	var gone error
	if failed && created {
		gone = os.Remove(name)
	}
	lock.Unlock()
	if failed && created {
		if gone != nil && !errors.Is(gone, fs.ErrNotExist) {
			os.Remove(name)
		}
		os.Remove(cfg.CkptDir)
	}
}

// runRank is a run on a rank other than 0: it starts from rank 0's state
// and writes nothing. bad is its own config's error, if any.
func runRank(ctx context.Context, cfg Config, dp *dataParallel, bad error) (*Result, error) {
	if err := dp.agree(bad, "start"); err != nil { // rank 0 takes the folder (takeFolder)
		return nil, err
	}
	dev, err := pickDevice(cfg, dp)
	if err != nil {
		return nil, err
	}
	if dev != nil {
		defer dev.Close()
	}
	r, err := dp.share(nil, nil, cfg)
	if err = dp.agree(err, "start from rank 0's state"); err != nil {
		return nil, err
	}
	r.dev = dev
	return r.train(ctx, cfg, dp)
}

// pickDevice opens the device of cfg.Device: nil for the CPU. Under MPI
// (dp), "cuda" and "" take the GPU of the rank's index among the ranks on
// its machine, wrapping around the GPUs found there (with
// CUDA_VISIBLE_DEVICES set per rank, each rank's first; "" falls back to
// the CPU where that GPU cannot be opened, as it does in one process). Every
// rank must train on a device or every rank on the CPU — the ranks' Adam
// steps must compute the same bits to keep their weights the same — and
// where one rank fails to open its device, every rank returns an error
// (one all-reduce tells them), none waits for it.
func pickDevice(cfg Config, dp *dataParallel) (*cuda.Device, error) {
	name, n := cfg.Device, 0
	if dp != nil && (name == "" || name == "cuda") && cuda.Built {
		var err error
		if n, err = deviceCount(); err == nil && n > 0 {
			name = fmt.Sprintf("cuda:%d", mpi.LocalRank(dp.comm)%n)
		} // else Pick says why there is none, or fails for "cuda"
	}
	dev, err := openDevice(name, cfg.Log)
	if err != nil && cfg.Device == "" && name != "" && !errors.Is(err, cuda.ErrNotBuilt) && !errors.Is(err, cuda.ErrUnknownDevice) {
		// The GPU this rank took by its index, which no flag named.
		why := err
		if u := errors.Unwrap(err); u != nil {
			why = u // without Pick's "-device cuda:k: "
		}
		fmt.Fprintf(cfg.Log, "no GPU (%v): running on the CPU\n", why)
		dev, err = nil, nil
	}
	if errors.Is(err, cuda.ErrNotBuilt) || errors.Is(err, cuda.ErrUnknownDevice) {
		err = fmt.Errorf("%w: %w", ErrConfig, err)
	} else if err != nil {
		err = fmt.Errorf("train: %w", err)
	}
	if dp == nil {
		return dev, err
	}
	state := []float32{0, 0} // ranks on a device, ranks that failed
	if dev != nil {
		state[0] = 1
	}
	if err != nil {
		state[1] = 1
	}
	if rerr := dp.comm.AllReduceSum(state); rerr != nil && err == nil {
		err = fmt.Errorf("train: %w", rerr)
	}
	on, failed := int(state[0]), int(state[1])
	switch {
	case err != nil: // this rank's own
	case failed > 0:
		err = fmt.Errorf("train: %d of the %d MPI ranks could not open their device (their errors are in their output)", failed, dp.size)
	case on != 0 && on != dp.size:
		err = fmt.Errorf("train: %d of the %d MPI ranks found a GPU: every rank trains on a GPU or every one on the CPU (-device cpu), since their weights must stay the same bits", on, dp.size)
	}
	if err != nil {
		if dev != nil {
			dev.Close()
		}
		return nil, err
	}
	if dp.rank == 0 && dev != nil && n > 0 {
		fmt.Fprintf(cfg.Log, "data-parallel on GPUs: each rank on GPU (its index among the ranks on its machine) mod %d, the GPUs here\n", n)
	}
	return dev, nil
}

// deviceCount is the number of GPUs this process sees (a variable: tests
// play machines with several).
var deviceCount = cuda.DeviceCount

// train loads the data and runs the loop.
func (r *run) train(ctx context.Context, cfg Config, dp *dataParallel) (res *Result, err error) {
	r.dp = dp
	if dp != nil {
		r.cfg.DataParallel, r.cfg.Ranks = true, dp.size
		fmt.Fprintf(r.log, "data-parallel over %d MPI ranks: %d images of each batch of %d per rank\n", dp.size, dp.local, r.cfg.Batch)
	}
	if r.dev == nil { // on a device its line above says how it computes
		fmt.Fprintf(r.log, "backend: %s; %s\n", blas.Backend(), kernel.Describe())
	}
	if r.step >= r.cfg.Steps { // before the data and the objective (and any file moved aside)
		fmt.Fprintf(r.log, "already at step %d, which reaches -steps %d: nothing to do (a larger -steps trains on)\n", r.step, r.cfg.Steps)
		return &Result{Step: r.step}, nil
	}
	// Every rank gets its data and builds its objective (the device's
	// memory), and only once all are ready does rank 0 touch the folder:
	// a run that cannot start neither says it starts nor moves (-wipe:
	// deletes) the earlier run's files (a -fresh -wipe with a mistyped
	// -dataset, or a network too large for the GPU, deleted them, then
	// failed), and no rank waits for one that failed.
	ds, g, err := r.ready(ctx, cfg)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		err = nil // σ from the data, cut short by a stop signal: said below
	}
	if err = dp.agree(err, "start"); err != nil {
		if g != nil {
			g.close()
		}
		return nil, err
	}
	defer func() {
		if g != nil {
			g.close()
		}
	}()
	// A stop signal while the data loaded (σ from the data takes a minute)
	// stops the run before it touches its folder: -fresh -wipe deleted the
	// earlier run, and a fresh run saved an untrained checkpoint whose
	// settings a corrected command then contradicted.
	stop, err := dp.anyRank(ctx.Err() != nil)
	if err != nil {
		return nil, err
	}
	if stop || g == nil {
		if dp == nil || dp.rank == 0 {
			fmt.Fprintf(r.log, "interrupted before the first step: nothing moved, deleted or saved in %s\n", cfg.CkptDir)
		}
		return &Result{Step: r.step}, ErrInterrupted
	}
	if err := dp.sameData(r, ds, cfg); err != nil {
		return nil, err
	}
	logw, err := r.claim(cfg)
	if err = dp.agree(err, "start (rank 0 could not prepare its checkpoint folder)"); err != nil {
		logw.close()
		return nil, err
	}
	defer func() {
		if cerr := logw.close(); cerr != nil && err == nil {
			res, err = nil, cerr
		}
	}()
	r.hint = resumeHint(cfg) // of the command as given (r.cfg is the run's)
	return r.loop(ctx, ds, g, logw)
}

// ready loads the data, checks it against the run, and builds the
// objective the loop steps (nil with the error where it cannot; ctx's error
// where it was cancelled while the noise scales were computed from the data).
func (r *run) ready(ctx context.Context, cfg Config) (ds *data.Dataset, g objective, err error) {
	if ds, err = r.readyData(ctx, cfg); err != nil {
		return nil, nil, err
	}
	if r.proc, err = r.cfg.Process(r.sigmas); err != nil {
		return nil, nil, err
	}
	local := r.cfg.Batch // the images of each batch this process computes
	if r.dp != nil {
		local = r.dp.local
	}
	dev := r.dev // opened by Run (nil where the run trains on the CPU), closed there
	mc := r.cfg.Model
	switch {
	case dev != nil && r.cfg.Classifier:
		r.arith = dev.Arith
		g, err = newClassifierObjective(dev, mc, r.weights, r.ema, r.opt.M, r.opt.V, local)
	case dev != nil:
		r.arith = dev.Arith
		g, err = newDSMObjective(dev, mc, r.weights, r.ema, r.opt.M, r.opt.V, local)
	case r.cfg.Classifier:
		g, err = newClassifierGraph(mc, r.weights, local)
	default:
		g, err = newDSMGraph(mc, r.weights, local)
	}
	if err != nil {
		return nil, nil, err
	}
	if wrapObjective != nil {
		g = wrapObjective(r, g)
	}
	if r.ckptArith != "" && !sameArith(r.ckptArith, r.arith) {
		// Said once the device is known: a resume on the GPU was told it
		// changed to the CPU's path, and a CPU run resumed on one was not.
		fmt.Fprintf(r.log, "note: %s was computed on the %s arithmetic path and this run computes on %s: it continues, but its bits will differ from an uninterrupted run's (float rounding)\n",
			r.ckpt, r.ckptArith, r.arith)
		// Its checkpoints say so from now on: a run that crossed to another
		// path and came back recorded only the last, and its next resume
		// said nothing.
		r.arith = mixedArith(r.ckptArith, r.arith)
	}
	return ds, g, nil
}

// mixedArith names the arithmetic of a run computed on the path was (itself
// perhaps mixed), then on now: "mixed: A, then B" (at most four named).
func mixedArith(was, now string) string {
	const prefix, then = "mixed: ", ", then "
	paths := strings.Split(strings.TrimPrefix(was, prefix), then)
	if paths[len(paths)-1] != now {
		paths = append(paths, now)
	}
	if len(paths) > 4 {
		paths = append([]string{paths[0], "…"}, paths[len(paths)-2:]...)
	}
	return prefix + strings.Join(paths, then)
}

// savingHook, where set, is called as rank 0 (or the one process) begins
// each save (tests make a save slow).
var savingHook func(r *run)

// wrapObjective, where set, wraps each objective ready builds (tests make a
// rank's steps fail).
var wrapObjective func(r *run, g objective) objective

// claim makes the checkpoint folder this run's, once every rank is ready:
// it sets the earlier files aside (setAside, setLaterAside), says the run
// starts, and opens train.csv (rank 0; the others write nothing and get nil).
func (r *run) claim(cfg Config) (*csvLog, error) {
	if r.dp != nil && r.dp.rank != 0 {
		return nil, nil
	}
	var wipe string // -wipe: the archive folder to delete once the run has its log
	var n int
	if r.aside {
		var err error
		if wipe, n, err = setAside(cfg); err != nil {
			return nil, err
		}
	}
	if r.later {
		if err := setLaterAside(cfg, r.step); err != nil {
			return nil, err
		}
	}
	fmt.Fprint(r.log, r.fresh)
	// A resume in the run's own folder without its log (deleted, or an
	// import): said, since cmd/plot's curves then start mid-run.
	if _, err := os.Lstat(filepath.Join(cfg.CkptDir, csvName)); r.step > 0 && errors.Is(err, fs.ErrNotExist) && sameDir(filepath.Dir(r.ckpt), cfg.CkptDir) {
		fmt.Fprintf(r.log, "note: %s has no training log (train.csv): a new one begins at step %d, and cmd/plot's curves with it\n", cfg.CkptDir, r.step)
	}
	logw, err := openCSV(cfg.CkptDir, r.bucketNames(), r.step)
	if err != nil {
		if wipe != "" {
			err = fmt.Errorf("%w (-wipe deleted nothing: the earlier run's files are in %s)", err, wipe)
		}
		return nil, err
	}
	if wipe != "" {
		if err := os.RemoveAll(wipe); err != nil {
			logw.close()
			return nil, fmt.Errorf("train: -fresh -wipe: the earlier run's files were moved to %s, which could not be deleted (all or part of it is left): %w", wipe, err)
		}
		fmt.Fprintf(r.log, "-fresh -wipe: deleted %d files of the earlier run in %s\n", n, cfg.CkptDir)
	}
	return logw, nil
}

// readyData loads the run's data and checks it fits the run (and, at step
// 0, sets what comes from the data: σ schedules, EDM's σ_data).
func (r *run) readyData(ctx context.Context, cfg Config) (ds *data.Dataset, err error) {
	ds = cfg.Data
	if ds == nil {
		if ds, err = loadDataset(ctx, r); err != nil {
			return nil, err
		}
	}
	if err := ds.Check(); err != nil { // a library caller's Config.Data (it panicked, or trained on values past its length)
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if r.cfg.Classifier {
		if ds.Labels == nil {
			return nil, fmt.Errorf("%w: -classifier needs labelled images; %s has none", ErrConfig, ds.Name)
		}
		for i, y := range ds.Labels {
			if int(y) >= r.cfg.Model.Classes {
				return nil, fmt.Errorf("%w: %s: image %d has label %d, beyond the classifier's %d classes", ErrConfig, ds.Name, i, y, r.cfg.Model.Classes)
			}
		}
	}
	if ds.N < r.cfg.Batch {
		how := "give a smaller -batch, or more images"
		if r.step > 0 { // a resume keeps its batch
			how = "the run's batch, which a resume keeps: put images back, or start a new run (-fresh, or another -ckpt-dir) with a smaller -batch"
		}
		return nil, fmt.Errorf("%w: %s has %d images, fewer than the batch of %d (%s)", ErrConfig, ds.Name, ds.N, r.cfg.Batch, how)
	}
	if r.step == 0 && r.cfg.SigmasFromData {
		v, err := ScheduleFromData(ctx, ds, r.cfg.SigmaMin, 5, r.log)
		if err != nil {
			return nil, err
		}
		if r.cfg.SDE == "ve" { // technique 1 only: σ_max
			r.cfg.SigmaMax = v.SigmaMax
			fmt.Fprintf(r.log, "the VE process takes σ₁ = %.4f as its σ_max (L and ε are for NCSN's ladder: -sde ncsn)\n", v.SigmaMax)
		} else {
			if r.sigmas, err = v.Sigmas(); err != nil {
				return nil, err
			}
			r.cfg.SigmaMax, r.cfg.Levels, r.cfg.SampleEps, r.cfg.SampleSteps = v.SigmaMax, v.Levels, v.Eps, v.T
		}
	}
	if r.step == 0 && r.cfg.Model.Precond == model.PrecondEDM && r.cfg.Model.SigmaData == 0 {
		r.cfg.Model.SigmaData = RootMeanSquare(ds)
		fmt.Fprintf(r.log, "EDM preconditioning: σ_data = %.4f, the root mean square of %s's training values\n", r.cfg.Model.SigmaData, ds.Name)
	}
	mc := r.cfg.Model
	if ds.Channels != mc.Channels || ds.Height != mc.Height || ds.Width != mc.Width {
		if r.ckpt == "" { // a fresh run: the network was set up for other images
			return nil, fmt.Errorf("%w: %s's images are %d×%d×%d, and the network is set up for %d×%d×%d", ErrConfig, ds.Name, ds.Channels, ds.Height, ds.Width, mc.Channels, mc.Height, mc.Width)
		}
		return nil, fmt.Errorf("%w: %s's images are %d×%d×%d, and the network of %s takes %d×%d×%d", ErrMismatch, ds.Name, ds.Channels, ds.Height, ds.Width, r.ckpt, mc.Channels, mc.Height, mc.Width)
	}
	return ds, nil
}

// RootMeanSquare is √(mean x²) over every value of ds: EDM's σ_data for
// data that is not centred.
func RootMeanSquare(ds *data.Dataset) float64 {
	var s float64
	for _, v := range ds.Images {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(ds.Images)))
}

// flipRows mirrors an image's rows (of width w) left to right, in place.
func flipRows(img []float32, w int) {
	for row := 0; row+w <= len(img); row += w {
		slices.Reverse(img[row : row+w])
	}
}

func loadDataset(ctx context.Context, r *run) (*data.Dataset, error) {
	cfg := r.cfg
	path, ok := data.IsFolder(cfg.Dataset)
	if !ok {
		// A stop signal stops a download at once (it went on to the next
		// source, or to the end of a slow one).
		return data.Load(cfg.Dataset, data.Options{Dir: cfg.DataDir, Log: cfg.Log, Context: ctx}, "train")
	}
	ds, info, err := data.LoadFolder(data.FolderOptions{Path: path, Size: cfg.ImageSize, Grey: cfg.Grey, CacheDir: cfg.DataDir, Log: cfg.Log, Bar: cfg.Bar})
	if errors.Is(err, fs.ErrNotExist) && r.step > 0 {
		if _, serr := os.Stat(path); serr != nil {
			return nil, fmt.Errorf("%w (the run's image folder is not there: moved? give -dataset folder:PATH where the images are now)", err)
		}
	}
	if err != nil {
		return nil, err
	}
	if r.step > 0 && cfg.SourceDigest != "" && info.Digest != cfg.SourceDigest {
		fmt.Fprintf(r.log, "note: %s has changed since the checkpoint resumed from was saved (%d images then, %d now); training continues on the images it holds now\n",
			info.Path, cfg.SourceImages, info.Images)
	}
	r.cfg.SourceImages, r.cfg.SourceDigest = info.Images, info.Digest
	return ds, nil
}

// start decides between a fresh run and a resumed one, and builds its state.
func start(cfg Config) (*run, error) {
	path := cfg.Resume
	if path == "" && !cfg.Fresh {
		p, note, err := checkpoint.Current(cfg.CkptDir)
		switch {
		case err == nil:
			path = p
			if note != "" {
				fmt.Fprintf(cfg.Log, "note: %s; resuming from %s\n", note, filepath.Base(p))
			}
		case !errors.Is(err, checkpoint.ErrNone):
			return nil, err
		}
	}
	if path != "" {
		return resume(cfg, path)
	}
	// -fresh, or a log without a checkpoint (another run's, or this one's
	// killed before its first save: either way it is kept, not cut): the
	// earlier files are set aside once the run is sure to start (train).
	aside := cfg.Fresh || logRows(cfg.CkptDir) > 0
	cfg.StepsChosen = cfg.Set["steps"]
	var sigmas []float64
	if cfg.SDE == "" || cfg.SDE == "ncsn" {
		var err error
		if sigmas, err = sde.Geometric(cfg.SigmaMax, cfg.SigmaMin, cfg.Levels); err != nil {
			return nil, err
		}
	}
	r := &run{cfg: cfg, sigmas: sigmas, log: cfg.Log, arith: ArithPath(), aside: aside}
	r.pcg = rand.NewPCG(cfg.Seed, 0x6e63736e) // one generator for all randomness; its state is saved
	r.rng = rand.New(r.pcg)
	var err error
	if r.weights, err = model.Init(cfg.Model, r.rng); err != nil {
		return nil, err
	}
	r.ema = r.weights.Clone()
	r.opt = optim.New(cfg.LR, sizes(r.weights))
	what := "score model"
	if cfg.Classifier {
		what = "noise-conditional classifier"
	}
	sched := ""
	if cfg.LRWarmup > 0 {
		sched += fmt.Sprintf(", %d warm-up steps", cfg.LRWarmup)
	}
	if cfg.LRDecay == "cosine" {
		sched += ", cosine decay"
	}
	if cfg.Model.Precond == model.PrecondEDM {
		what += " (EDM preconditioning)"
	}
	switch {
	case cfg.SDE == "ve":
		if cfg.SigmasFromData { // σ_max comes with the data
			what += fmt.Sprintf(" on the VE process, σ from σ₁ (the data's, above) → %g", cfg.SigmaMin)
		} else {
			what += fmt.Sprintf(" on the VE process, σ %g → %g", cfg.SigmaMax, cfg.SigmaMin)
		}
		if cfg.SigmaDist == SigmaDistLogNormal {
			pMean, pStd := cfg.LogNormal()
			what += fmt.Sprintf(" (log-normal σ's, P_mean %g, P_std %g)", pMean, pStd)
		}
	case cfg.SDE == "vp" || cfg.SDE == "subvp":
		what += fmt.Sprintf(" on the %s process, β %g → %g", cfg.SDE, cfg.BetaMin, cfg.BetaMax)
	case len(sigmas) > 0 && !cfg.SigmasFromData:
		what += fmt.Sprintf(" on NCSN's %d levels, σ %g → %g", len(sigmas), sigmas[0], sigmas[len(sigmas)-1])
	}
	guide := ""
	if k := cfg.guideStep(); k > 0 {
		guide = fmt.Sprintf(", the EMA of step %d kept as autoguidance's guide", k)
	} else if cfg.GuideAt > 0 {
		// It was left out without a word.
		guide = fmt.Sprintf(", no guide kept (-guide-at %.6g of %s comes at no step from the first to the one before the last)", cfg.GuideAt, english.Count(cfg.Steps, "step"))
	}
	flips := ""
	if cfg.Flip {
		flips = " (random horizontal flips)"
	}
	r.fresh = fmt.Sprintf("starting a fresh run in %s: %s %s, %s of batch %d%s, %d parameters, Adam lr %g%s, EMA %g%s%s\n",
		cfg.CkptDir, cfg.Dataset, what, english.Count(cfg.Steps, "step"), cfg.Batch, flips, r.weights.Count(), cfg.LR, sched, cfg.EMADecay, emaNote(cfg), guide)
	return r, nil
}

// resumeHint says how an interrupted run resumes: the same command, less
// the flags that would start over (-fresh, -wipe: the next run would
// archive or delete what was just saved) or that name the checkpoint it
// began from (-resume, which the folder now outgrew).
func resumeHint(cfg Config) string {
	switch {
	case cfg.Fresh && cfg.Wipe:
		return "the same command without -fresh -wipe resumes it (with them it would delete this run)"
	case cfg.Fresh:
		return "the same command without -fresh resumes it (with it the run would start over)"
	case cfg.Resume != "":
		return "the same command without -resume resumes it"
	}
	return "the same command resumes it"
}

func sizes(ps model.Params) []int {
	s := make([]int, len(ps))
	for i, p := range ps {
		s[i] = len(p.Data)
	}
	return s
}

// setAside moves an earlier run's files (n of them) into an archive folder,
// so a fresh run never overwrites them silently. With Wipe it returns the
// folder, for the caller to delete once the run has started.
func setAside(cfg Config) (wipe string, n int, err error) {
	old, err := checkpoint.List(cfg.CkptDir)
	if err != nil {
		return "", 0, fmt.Errorf("train: %w", err)
	}
	extra := []string{filepath.Join(cfg.CkptDir, "latest"), filepath.Join(cfg.CkptDir, csvName)}
	var files []string
	files = append(files, old...)
	for _, f := range extra {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return "", 0, nil
	}
	if cfg.Wipe {
		// Only files are deleted, and all or none: a folder among them (a
		// train.csv that is one) is refused before anything is touched.
		for _, f := range files {
			if fi, err := os.Lstat(f); err == nil && fi.IsDir() {
				return "", 0, fmt.Errorf("%w: -fresh -wipe: %s is a folder, not a file of a run: move it away (nothing was deleted)", ErrConfig, f)
			}
		}
	}
	dir, err := newArchive(cfg.CkptDir, time.Now())
	if err != nil {
		return "", 0, fmt.Errorf("train: %w", err)
	}
	if err := moveInto(dir, files); err != nil {
		return "", 0, fmt.Errorf("train: setting the earlier run aside: %w", err)
	}
	if cfg.Wipe {
		// Every file is out of the way; deleting the folder they are in
		// cannot leave part of the run in place.
		return dir, len(files), nil
	}
	if cfg.Fresh {
		fmt.Fprintf(cfg.Log, "-fresh: moved the earlier run's %d files to %s\n", len(files), dir)
	} else {
		fmt.Fprintf(cfg.Log, "note: %s held a %s of %s and no checkpoint of its run: moved to %s\n", cfg.CkptDir, csvName, english.Count(logRows(dir), "row"), dir)
	}
	return "", len(files), nil
}

// rename is os.Rename; tests make it fail part way.
var rename = os.Rename

// moveInto moves files into dir, a folder newArchive has just made, all or
// none: where one cannot be moved, those already moved go back and dir is
// removed. The error says whether that worked, and where it did not, which
// files are left in dir.
func moveInto(dir string, files []string) error {
	for i, f := range files {
		err := rename(f, filepath.Join(dir, filepath.Base(f)))
		if err == nil {
			continue
		}
		var left []string
		var why error
		for _, g := range files[:i] {
			if e := rename(filepath.Join(dir, filepath.Base(g)), g); e != nil {
				left = append(left, filepath.Base(g))
				why = e
			}
		}
		if left != nil {
			return fmt.Errorf("%w; and %s could not go back from %s (%v): move them back by hand before training in that folder", err, strings.Join(left, ", "), dir, why)
		}
		os.RemoveAll(dir) // holds nothing of the run's now
		return fmt.Errorf("%w (nothing was moved)", err)
	}
	return nil
}

// newArchive makes a new folder archive-TIME in dir (archive-TIME-2, -3, …
// where two runs start over in the same second).
func newArchive(dir string, now time.Time) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	name := filepath.Join(dir, "archive-"+now.UTC().Format("20060102-150405"))
	for i := 1; ; i++ {
		try := name
		if i > 1 {
			try = fmt.Sprintf("%s-%d", name, i)
		}
		err := os.Mkdir(try, 0o755)
		if err == nil {
			return try, nil
		}
		if !errors.Is(err, os.ErrExist) || i == 1000 {
			return "", err
		}
	}
}

// emaNote says when the moving average has no warm-up.
func emaNote(cfg Config) string {
	if cfg.EMANoWarmup {
		return " (no warm-up)"
	}
	return ""
}

// timeLeft writes secs seconds as the log's estimate of the time left
// (a time.Duration overflows past 292 years: a huge -steps printed a
// negative one).
func timeLeft(secs float64) string {
	if !(secs < 100*365.25*24*3600) {
		return "more than 100 years"
	}
	return time.Duration(secs * float64(time.Second)).Round(time.Second).String()
}

// resumeFlags are the settings a resumed run takes from its checkpoint; the
// user may not contradict them.
var resumeFlags = []string{"dataset", "preset", "batch", "seed", "lr", "lr-warmup", "lr-decay", "ema", "ema-warmup", "sigma-max", "levels", "base", "mult", "precond", "sigma-data", "max-grad-norm", "sde", "sigma-dist", "p-mean", "p-std", "size", "grey", "flip", "guide-at", "sigmas-from-data"}

// libraryOnly are the settings that shape the computation but have no
// flag (a Go caller's Config sets them), by the Config field they are: a
// resume without Set compares them too (they were passed over, and the run
// went on with the checkpoint's).
var libraryOnly = map[string]string{"sigma-min": "SigmaMin", "beta-min": "BetaMin", "beta-max": "BetaMax", "emb-dim": "Model.EmbDim", "fourier-scale": "Model.FourierScale"}

func resume(cfg Config, path string) (*run, error) {
	st, err := checkpoint.Load(path)
	if errors.Is(err, checkpoint.ErrCorrupt) && cfg.Resume == "" {
		if all, _ := checkpoint.List(cfg.CkptDir); len(all) < 2 {
			return nil, fmt.Errorf("%w; it is the run's only checkpoint: -fresh starts over (moving it into an archive folder)", err)
		}
		return nil, fmt.Errorf("%w; to resume from the checkpoint before it, move %s out of %s, and delete %s where it names it", err, filepath.Base(path), cfg.CkptDir, filepath.Join(cfg.CkptDir, "latest"))
	}
	if err != nil && cfg.Resume != "" {
		if fi, serr := os.Stat(cfg.Resume); serr == nil && fi.IsDir() {
			return nil, fmt.Errorf("%w: -resume %s is a folder; it takes a checkpoint file (-ckpt-dir %s resumes that run's newest)", ErrConfig, cfg.Resume, cfg.Resume)
		}
		return nil, fmt.Errorf("train: -resume: %w", err)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Resume != "" {
		if err := wouldOverwrite(cfg.CkptDir, path, st.Step); err != nil {
			return nil, err
		}
	}
	r, err := resumeState(cfg, st, path)
	if r != nil {
		r.later = cfg.Resume == ""
	}
	return r, err
}

// setLaterAside moves the checkpoints of the folder after the run's step —
// where `latest` was edited by hand to go back, those of the run that went
// on from there — into an archive folder with a copy of train.csv, and
// says so: the resumed run would overwrite them one by one, and pruning,
// which keeps the newest steps, would delete its own new ones instead.
func setLaterAside(cfg Config, step int) error {
	all, err := checkpoint.List(cfg.CkptDir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var later []string
	for _, f := range all {
		if s, ok := checkpoint.StepOf(filepath.Base(f)); ok && s > step {
			later = append(later, f)
		}
	}
	if len(later) == 0 {
		return nil
	}
	dir, err := newArchive(cfg.CkptDir, time.Now())
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	csv := filepath.Join(cfg.CkptDir, csvName)
	if b, err := fsutil.ReadRegular(csv); err == nil {
		if err := fsutil.WriteAtomic(filepath.Join(dir, csvName), func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
			return fmt.Errorf("train: archiving the later checkpoints: %w", err)
		}
	}
	if err := moveInto(dir, later); err != nil {
		return fmt.Errorf("train: archiving the later checkpoints: %w", err)
	}
	which := filepath.Base(later[0])
	if len(later) > 1 {
		which += " to " + filepath.Base(later[len(later)-1])
	}
	fmt.Fprintf(cfg.Log, "note: %s holds %s after step %d, where latest points (%s): moved them, with a copy of %s, to %s; this run goes on from step %d\n",
		cfg.CkptDir, english.Count(len(later), "checkpoint"), step, which, csvName, dir, step)
	return nil
}

// wouldOverwrite refuses a -resume whose run would write over checkpoints
// in dir that are not its own past: any checkpoint there when the file
// comes from another folder, those after its step when it is one of dir's
// own (its later checkpoints and train.csv rows would be replaced), and
// all of them when the file, though in dir, is of another run (copied in:
// the two runs' rows mixed in train.csv, and pruning deleted dir's run).
func wouldOverwrite(dir, path string, step int) error {
	all, err := checkpoint.List(dir)
	if err != nil {
		return nil
	}
	if len(all) == 0 {
		// A log of this branch's own later steps (the same -resume killed
		// before its first save) is cut back to the checkpoint as usual.
		if rows := logRows(dir); rows > 0 && !logAfter(dir, step) {
			return fmt.Errorf("%w: -ckpt-dir %s holds a %s of %s and no checkpoint; resuming %s there would cut it: move it aside or give an empty or new -ckpt-dir", ErrConfig, dir, csvName, english.Count(rows, "row"), path)
		}
		return nil
	}
	last := all[len(all)-1]
	lastStep, _ := checkpoint.StepOf(filepath.Base(last))
	switch {
	case !sameDir(filepath.Dir(path), dir):
		return fmt.Errorf("%w: -ckpt-dir %s already holds another run (%d checkpoints, the last %s); resuming %s there would overwrite them: give an empty or new -ckpt-dir", ErrConfig, dir, len(all), filepath.Base(last), path)
	case lastStep > step: // by number: names compared as text put step 10⁸ before 99999999
		return fmt.Errorf("%w: -resume %s: %s holds later checkpoints (to %s) that this run would overwrite: -resume %[2]s -ckpt-dir NEW branches from it into a new folder", ErrConfig, path, dir, filepath.Base(last))
	}
	if lf, pf := statOrNil(last), statOrNil(path); lf == nil || pf == nil || !os.SameFile(lf, pf) {
		if why := checkpoint.OtherRun(last, path); why != "" {
			return fmt.Errorf("%w: -resume %s is not of the run in %s (against its last checkpoint, %s: %s); resuming it there would mix the two runs' logs and prune that run's checkpoints: -resume %[2]s -ckpt-dir NEW branches from it into a new folder", ErrConfig, path, dir, filepath.Base(last), why)
		}
	}
	return nil
}

// statOrNil is os.Stat's FileInfo of p, nil where it fails.
func statOrNil(p string) os.FileInfo {
	fi, err := os.Stat(p)
	if err != nil {
		return nil
	}
	return fi
}

// sameDir reports whether a and b are one folder: the same absolute path,
// or the same folder reached through symbolic links.
func sameDir(a, b string) bool {
	if x, y := absPath(a), absPath(b); x == y {
		return true
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// absPath is p made absolute where it can be.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// resumeState continues the run of st (read from path) under cfg.
func resumeState(cfg Config, st *checkpoint.State, path string) (*run, error) {
	var extra trainExtra
	if err := json.Unmarshal(st.Train, &extra); err != nil {
		return nil, fmt.Errorf("%s: %w: training config: %v", path, checkpoint.ErrCorrupt, err)
	}
	saved := extra.Config
	if saved.Classifier != cfg.Classifier {
		what := map[bool]string{true: "a noise-conditional classifier", false: "a score model"}
		how := "use another -ckpt-dir"
		if saved.Classifier && cfg.Set != nil && !cfg.Set["classifier"] {
			how = "add -classifier to go on with it, or use another -ckpt-dir" // a bare resume
		}
		return nil, fmt.Errorf("%w: %s holds %s, and this run trains %s (%s)", ErrMismatch, path, what[saved.Classifier], what[cfg.Classifier], how)
	}
	fresh := "use -fresh to start over" // with -resume (which -fresh refuses): drop the flag
	if cfg.Resume != "" {
		fresh = "drop the flag to continue the run as it was"
	}
	// A -resume into another folder is a branch: it may change the
	// optimiser's -lr and -max-grad-norm (after a divergence, the way on
	// from the last good checkpoint); the run's own folder keeps them.
	branch := cfg.Resume != "" && path == cfg.Resume && !sameDir(filepath.Dir(path), cfg.CkptDir)
	if st.Dataset != cfg.Dataset && cfg.Set != nil && !cfg.Set["dataset"] {
		// -dataset not given: the run's own (a bare resume of a Fashion-MNIST
		// run was refused as "not mnist", with -fresh, which would archive it,
		// as the way out).
		cfg.Dataset = st.Dataset
		if !cfg.Set["data-dir"] { // and its data folder (data/mnist was filled with Fashion-MNIST's files)
			cfg.DataDir = DefaultDataDir(st.Dataset)
		}
	}
	oldPath, wasFolder := data.IsFolder(st.Dataset)
	_, isFolder := data.IsFolder(cfg.Dataset)
	moved := cfg.Set["dataset"] // on the command line: given for this
	if cfg.Set == nil {         // a Go caller always gives one: only where the old folder is gone
		_, err := os.Stat(oldPath)
		moved = err != nil
	}
	if wasFolder && isFolder && st.Dataset != cfg.Dataset && moved {
		// The images moved (another path, mount or machine): the run was
		// refused, with -fresh, which archives it, as the way on. What the
		// folder holds now is compared with the checkpoint's (loadDataset's
		// note where it changed).
		fmt.Fprintf(cfg.Log, "note: %s was trained on %s; it goes on with the images of %s\n", path, st.Dataset, cfg.Dataset)
		st.Dataset, saved.Dataset = cfg.Dataset, cfg.Dataset
	}
	if st.Dataset != cfg.Dataset {
		if cfg.Resume != "" {
			return nil, fmt.Errorf("%w: %s was trained on %s, not %s (give -dataset %s)", ErrMismatch, path, st.Dataset, cfg.Dataset, st.Dataset)
		}
		return nil, fmt.Errorf("%w: %s was trained on %s, not %s (use -fresh to start over, or another -ckpt-dir)", ErrMismatch, path, st.Dataset, cfg.Dataset)
	}
	// A Go caller (Set nil) gives every setting in its Config: each is
	// compared (they were all passed over, and the run went on with the
	// checkpoint's), but the preset's name and what a zero value leaves to
	// the data (σ_data 0; σ_max and L of a run that took them from it).
	compares := func(f string) bool {
		if cfg.Set != nil {
			return cfg.Set[f]
		}
		switch f {
		case "preset", "dataset":
			return false
		case "sigma-data":
			return cfg.Model.SigmaData != 0
		case "sigma-max", "levels":
			return !saved.SigmasFromData
		case "p-mean", "p-std": // only of log-normal σ's (-sigma-dist compares the rest)
			return cfg.SigmaDist == SigmaDistLogNormal
		}
		return true
	}
	for _, f := range append(slices.Clone(resumeFlags), slices.Sorted(maps.Keys(libraryOnly))...) {
		if !compares(f) {
			continue
		}
		var a, b any
		switch f {
		case "dataset":
			continue
		case "sigma-min":
			if cfg.SDE != "" && cfg.SDE != "ncsn" && cfg.SDE != "ve" {
				continue
			}
			a, b = cfg.SigmaMin, saved.SigmaMin
		case "beta-min", "beta-max":
			if cfg.SDE != "vp" && cfg.SDE != "subvp" {
				continue
			}
			a, b = cfg.BetaMin, saved.BetaMin
			if f == "beta-max" {
				a, b = cfg.BetaMax, saved.BetaMax
			}
		case "emb-dim":
			a, b = cfg.Model.EmbDim, saved.Model.EmbDim
		case "fourier-scale":
			a, b = cfg.Model.FourierScale, saved.Model.FourierScale
		case "preset":
			a, b = cfg.Preset, saved.Preset
		case "batch":
			a, b = cfg.Batch, saved.Batch
		case "seed":
			a, b = cfg.Seed, saved.Seed
		case "lr", "max-grad-norm":
			if branch {
				continue
			}
			a, b = cfg.LR, saved.LR
			if f == "max-grad-norm" {
				a, b = cfg.MaxGradNorm, saved.MaxGradNorm
			}
		case "lr-warmup":
			a, b = cfg.LRWarmup, saved.LRWarmup
		case "lr-decay":
			a, b = cmp.Or(cfg.LRDecay, "none"), cmp.Or(saved.LRDecay, "none")
		case "ema":
			a, b = cfg.EMADecay, saved.EMADecay
		case "sigma-max":
			a, b = cfg.SigmaMax, saved.SigmaMax
		case "levels":
			a, b = cfg.Levels, saved.Levels
		case "ema-warmup":
			a, b = !cfg.EMANoWarmup, !saved.EMANoWarmup
		case "base":
			a, b = cfg.Model.Base, saved.Model.Base
		case "mult":
			a, b = fmt.Sprint(cfg.Model.Mult), fmt.Sprint(saved.Model.Mult)
		case "precond":
			a, b = cmp.Or(cfg.Model.Precond, "ncsnv2"), cmp.Or(saved.Model.Precond, "ncsnv2")
		case "sigma-data":
			a, b = cfg.Model.SigmaData, saved.Model.SigmaData
		case "sde":
			a, b = cmp.Or(cfg.SDE, "ncsn"), cmp.Or(saved.SDE, "ncsn")
		case "sigma-dist":
			a, b = cmp.Or(cfg.SigmaDist, "uniform"), cmp.Or(saved.SigmaDist, "uniform")
		case "p-mean", "p-std":
			pMean, pStd := cfg.LogNormal()
			sMean, sStd := saved.LogNormal()
			a, b = pMean, sMean
			if f == "p-std" {
				a, b = pStd, sStd
			}
			if saved.SigmaDist != SigmaDistLogNormal {
				b = "none (σ's not log-normal)"
			}
		case "size":
			a, b = cfg.ImageSize, saved.ImageSize
		case "grey":
			a, b = cfg.Grey, saved.Grey
		case "flip":
			a, b = cfg.Flip, saved.Flip
		case "guide-at":
			a, b = cfg.GuideAt, saved.GuideAt
		case "sigmas-from-data":
			a, b = cfg.SigmasFromData, saved.SigmasFromData
		}
		if x, ok := a.(float64); ok && a != b && (f == "sigma-data" || f == "sigma-max" && saved.SigmasFromData) && fmt.Sprintf("%.4f", x) == fmt.Sprintf("%.4f", b) {
			// σ_data and σ_max taken from the data are printed to 4
			// decimals: restated as printed, they are the run's own (a
			// σ_data given is compared as printed too: the run goes on
			// with its own either way).
			fmt.Fprintf(cfg.Log, "note: -%s %g is the run's %g as printed; it goes on with its own\n", f, x, b)
			continue
		}
		if a != b {
			sep := " "
			if _, ok := a.(bool); ok {
				sep = "=" // -flag=false is how a bool flag is given
			}
			how := fresh
			if f == "lr" || f == "max-grad-norm" {
				how += "; -resume FILE into a new -ckpt-dir branches from a checkpoint with another -" + f
			}
			if field, ok := libraryOnly[f]; ok { // no flag: a Go caller's Config
				return nil, fmt.Errorf("%w: %s was trained with %s %v; %v contradicts it (Config.Fresh starts over, or another CkptDir)", ErrMismatch, path, field, b, a)
			}
			return nil, fmt.Errorf("%w: %s was trained with -%s%s%v; -%s%s%v contradicts it (%s)", ErrMismatch, path, f, sep, b, f, sep, a, how)
		}
	}
	// Everything that shapes the computation comes from the checkpoint; only
	// the target step count, the save interval and how many checkpoints are
	// kept are the user's to change, and those not given are the run's own
	// (its plan, not the defaults of the command line). Without Set, a
	// library caller's values count as given when the preset is the run's.
	keep := saved
	given := func(flag string) bool {
		return cfg.Set[flag] || cfg.Set == nil && cfg.Preset == saved.Preset
	}
	keep.Steps, keep.SaveEvery, keep.Keep = cfg.Steps, cfg.SaveEvery, cfg.Keep
	var branched []string
	if branch && compares("lr") && cfg.LR != saved.LR {
		keep.LR = cfg.LR
		branched = append(branched, fmt.Sprintf("-lr %g (was %g)", cfg.LR, saved.LR))
	}
	if branch && compares("max-grad-norm") && cfg.MaxGradNorm != saved.MaxGradNorm {
		keep.MaxGradNorm = cfg.MaxGradNorm
		branched = append(branched, fmt.Sprintf("-max-grad-norm %g (was %g)", cfg.MaxGradNorm, saved.MaxGradNorm))
	}
	if !given("steps") {
		keep.Steps = saved.Steps
	}
	if cfg.Set["steps"] {
		keep.StepsChosen = true
	}
	if !given("save-every") {
		keep.SaveEvery = saved.SaveEvery
	}
	if !given("keep") {
		keep.Keep = saved.Keep
	}
	keep.DataDir, keep.CkptDir, keep.Log, keep.Bar, keep.Data, keep.Set = cfg.DataDir, cfg.CkptDir, cfg.Log, cfg.Bar, cfg.Data, cfg.Set
	keep.Comm = cfg.Comm
	if saved.DataParallel != cfg.DataParallel && st.Step > 0 {
		fmt.Fprintf(cfg.Log, "note: %s was trained %s MPI and this run is %s: it continues with other random draws than an uninterrupted run would make\n",
			path, map[bool]string{true: "under", false: "without"}[saved.DataParallel], map[bool]string{true: "under MPI", false: "one process"}[cfg.DataParallel])
	}
	if saved.DataParallel && cfg.DataParallel && saved.Ranks > 0 && saved.Ranks != cfg.Ranks && st.Step > 0 {
		// The same batches, summed in another order: the exact resume
		// README promised held for the same number only, without a word.
		fmt.Fprintf(cfg.Log, "note: %s was trained on %d MPI ranks and this run has %d: the same batches, with the gradients summed in another order, so its bits will differ from an uninterrupted run's (float rounding)\n", path, saved.Ranks, cfg.Ranks)
	}
	keep.DataParallel, keep.Ranks = cfg.DataParallel, cfg.Ranks
	keep.Model = st.Model
	if keep.SampleSampler != "" && !slices.Contains(checkpoint.Samplers, keep.SampleSampler) {
		// Another build's name (a Go caller's): the checkpoint is read, and
		// the run goes on without the recommendation (Validate refused it).
		fmt.Fprintf(cfg.Log, "note: %s recommends a sampler this build does not have (%q): the run goes on recommending none\n", path, keep.SampleSampler)
		keep.SampleSampler, keep.SampleSteps, keep.SampleChurn, keep.SampleAutoguide = "", 0, 0, 0
	}
	// The plan the run goes on with — the checkpoint's, with this command's
	// step count, save interval and keep — must be a valid one (a file with
	// a good checksum, or imported metadata, resumed lr −1 or EMA decay 7
	// silently). Not the checkpoint's own step count: a rule added since it
	// was saved is then met by a larger -steps.
	if err := keep.Validate(); err != nil {
		return nil, fmt.Errorf("resuming %s: %w", path, err)
	}
	r := &run{cfg: keep, sigmas: st.Sigmas, weights: st.Weights, ema: st.EMA, step: st.Step, log: cfg.Log, arith: ArithPath(), ckpt: path, guide: st.Guide, guideStep: st.GuideStep}
	r.opt = &optim.Adam{LR: keep.LR, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, T: st.AdamT, M: st.M, V: st.V}
	r.pcg = &rand.PCG{}
	if err := r.pcg.UnmarshalBinary(st.RNG); err != nil {
		return nil, fmt.Errorf("%s: %w: RNG state: %v", path, checkpoint.ErrCorrupt, err)
	}
	r.rng = rand.New(r.pcg)
	r.elapsed = extra.ElapsedSeconds
	fmt.Fprintf(r.log, "resuming from %s at step %d of %d\n", path, st.Step, keep.Steps)
	if len(branched) > 0 {
		fmt.Fprintf(r.log, "a branch in %s: %s; its steps from here differ from the run it leaves\n", keep.CkptDir, strings.Join(branched, ", "))
	}
	if note := replanNote(saved, keep, st); note != "" {
		fmt.Fprintf(r.log, "note: -steps %d instead of the run's %d: %s\n", keep.Steps, saved.Steps, note)
	}
	if p, err := Preset(saved.Preset, saved.Dataset); err == nil && !given("steps") && !saved.StepsChosen && p.Steps != saved.Steps && st.Step < saved.Steps {
		fmt.Fprintf(r.log, "note: this run goes on to its own %d steps, not the %s preset's %d (-steps %d stops it there)\n", saved.Steps, saved.Preset, p.Steps, max(p.Steps, st.Step))
	}
	if st.AdamT == 0 && st.Step > 0 {
		fmt.Fprintf(r.log, "note: %s holds no optimiser state (imported weights): Adam starts afresh here\n", path)
	}
	r.ckptArith = st.Arith // compared with this run's once it is known (train)
	return r, nil
}

// replanNote says what a resume with another step count changes beyond
// where the run stops (st: the checkpoint; saved: its run's config; keep:
// the resumed run's): a cosine decay is stretched or squeezed to the new
// end, and autoguidance's guide moves, stays, or is never kept. "" where
// nothing changes.
func replanNote(saved, keep Config, st *checkpoint.State) string {
	if keep.Steps == saved.Steps || st.Step >= keep.Steps {
		return ""
	}
	var parts []string
	if keep.LRDecay == "cosine" {
		was := optim.ScheduledLR(keep.LR, st.Step, keep.LRWarmup, saved.Steps, keep.LRDecay)
		now := optim.ScheduledLR(keep.LR, st.Step, keep.LRWarmup, keep.Steps, keep.LRDecay)
		parts = append(parts, fmt.Sprintf("the cosine decay now ends at step %d (learning rate at step %d: %.3g, was %.3g)", keep.Steps, st.Step, now, was))
	}
	if k, old := keep.guideStep(), saved.guideStep(); k != old {
		switch {
		case k == 0 && st.GuideStep == 0:
			parts = append(parts, "no autoguidance guide is kept (too few steps for one)")
		case k == 0 || st.Step > k && st.GuideStep > 0:
			parts = append(parts, fmt.Sprintf("the guide stays the EMA of step %d", st.GuideStep))
		case st.Step <= k && st.GuideStep > 0: // at k: kept as the run starts (it was said nothing)
			parts = append(parts, fmt.Sprintf("autoguidance's guide will be the EMA of step %d, replacing that of step %d", k, st.GuideStep))
		case st.Step <= k:
			parts = append(parts, fmt.Sprintf("autoguidance's guide will be the EMA of step %d (was to be %d)", k, old))
		case st.Step > k:
			parts = append(parts, fmt.Sprintf("the new plan's guide step %d is behind, so the run keeps no autoguidance guide and its samples go unguided", k))
		}
	}
	return strings.Join(parts, "; ")
}

type trainExtra struct {
	Config
	ElapsedSeconds float64 `json:"elapsed_seconds"`
}

// state is the run as a checkpoint holds it.
func (r *run) state(elapsed float64) (*checkpoint.State, error) {
	js, err := json.Marshal(trainExtra{Config: r.cfg, ElapsedSeconds: elapsed})
	if err != nil {
		return nil, err
	}
	rng, err := r.pcg.MarshalBinary()
	if err != nil {
		return nil, err
	}
	proc := r.proc
	if proc == nil {
		if proc, err = r.cfg.Process(r.sigmas); err != nil {
			return nil, err
		}
	}
	st := &checkpoint.State{
		Model: r.cfg.Model, Dataset: r.cfg.Dataset, Process: proc.Spec(), Sigmas: r.sigmas, Train: js,
		SampleEps: r.cfg.SampleEps, SampleSteps: r.cfg.SampleSteps, SampleSampler: r.cfg.SampleSampler, SampleChurn: r.cfg.SampleChurn,
		Step: r.step, AdamT: r.opt.T, Weights: r.weights, EMA: r.ema, M: r.opt.M, V: r.opt.V, RNG: rng,
		Arith: r.arith,
	}
	// The recommendation of autoguidance goes with its guide; before the
	// guide's step (or where a resume passed it), the unguided sampler.
	st.Guide, st.GuideStep, st.SampleAutoguide = r.guide, r.guideStep, r.cfg.SampleAutoguide
	if r.guide == nil {
		st.DropGuide()
	}
	return st, nil
}

// clearBar clears the progress bar's line before a note, which was
// written onto its end; the bar comes back at its next step.
func (r *run) clearBar() {
	if r.bar != nil {
		r.bar.Clear()
	}
}

func (r *run) save(elapsed float64) (string, error) {
	if r.dp != nil && r.dp.rank != 0 {
		return "", nil
	}
	if savingHook != nil {
		savingHook(r)
	}
	st, err := r.state(elapsed)
	if err != nil {
		return "", err
	}
	path, err := checkpoint.Save(r.cfg.CkptDir, st)
	if err != nil {
		return "", err
	}
	r.ckpt = path
	// A failed prune loses nothing: say so and go on.
	removed, err := checkpoint.Prune(r.cfg.CkptDir, r.cfg.Keep)
	if err != nil {
		r.clearBar()
		fmt.Fprintf(r.log, "warning: %v\n", err)
	}
	if len(removed) > 0 && !r.prunedSaid {
		r.clearBar()
		r.prunedSaid = true
		names := make([]string, len(removed))
		for i, p := range removed {
			names[i] = filepath.Base(p)
		}
		fmt.Fprintf(r.log, "note: keeping the newest %d checkpoints (-keep %d; 0 keeps all): removed %s\n", r.cfg.Keep, r.cfg.Keep, strings.Join(names, ", "))
	}
	return path, nil
}

func (r *run) loop(ctx context.Context, ds *data.Dataset, g objective, logw *csvLog) (res *Result, err error) {
	cfg := r.cfg
	res = &Result{Step: r.step}
	local, from := cfg.Batch, 0 // the images of each batch this process computes
	if r.dp != nil {
		local, from = r.dp.local, r.dp.from
	}
	d := ds.Dim()
	x := make([]float32, local*d)
	z := make([]float32, local*d)
	mean := make([]float64, local)
	sig := make([]float64, local)
	tt := make([]float64, local) // continuous processes: each image's t
	lvl := make([]int, local)    // its level, or its bucket of t
	labels := make([]int, local) // its class (classifiers)
	var bar *progressbar.ProgressBar
	if cfg.Bar {
		bar = progressbar.NewOptions(cfg.Steps,
			progressbar.OptionSetWriter(r.log), progressbar.OptionSetWidth(20),
			progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetRenderBlankState(true), progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish())
		bar.Set(r.step)
		r.bar = bar
		defer func() { r.bar = nil }()
	}
	t0 := time.Now()
	firstStep := r.step
	lastSaved := r.step
	// others: the other ranks' next collective call is a step's all-reduce.
	// A rank that fails then takes part in it (tellFailure), so that none
	// waits for it; computed alike on every rank, so that where all fail
	// alike (a non-finite step) all take part in that one more all-reduce.
	// Here, before the first step (r.step < cfg.Steps), it is.
	others := false
	if r.dp != nil {
		r.dp.n = r.weights.Count()
		others = true
		defer func() {
			if p := recover(); p != nil {
				panic(p) // as it was: the meeting below would not be the others' next call
			}
			if err != nil && others {
				r.dp.tellFailure(cfg.Batch)
			}
			// Every rank meets here as it ends, however it ends, so that
			// none leaves before rank 0's last save: a rank that left
			// first (at a stop, or its own failure) had mpirun stop rank 0
			// a second later part-way through that save (SIGTERM, taken
			// for a second stop signal: no checkpoint).
			err = r.dp.agree(err, "end the run with rank 0's last checkpoint")
		}()
	}
	if err := r.keepGuide(g); err != nil { // resumed at the guide's step (a device's download can fail)
		return nil, err
	}
	stopped := false // by a signal here, or on another rank
	for r.step < cfg.Steps {
		stop := ctx.Err() != nil
		if stop && r.dp == nil {
			stopped = true
			break
		}
		others = true
		if r.dp != nil {
			r.drawImages(ds, from, x, z, labels, mean, sig, tt, lvl)
		} else {
			r.draw(ds, x, z, labels, mean, sig, tt, lvl)
		}
		loss, per, err := g.run(x, z, labels, mean, sig)
		if err != nil {
			return nil, err
		}
		dg, onDevice := g.(*deviceObjective)
		gper, glvl, gtt, gsig := per, lvl, tt, sig
		if r.dp != nil {
			// On a device the gradients come to the host for the
			// all-reduce and their average goes back.
			var grads [][]float32
			var pullErr error
			if onDevice {
				// A rank whose download fails takes part in the
				// all-reduce as failed (the others stop with an error).
				pullErr = dg.pullGrads()
				grads = dg.host
			} else {
				grads = g.grads()
			}
			loss, gper, glvl, gtt, gsig, stop, err = r.dp.reduce(grads, cfg.Batch, r.step, loss, per, lvl, tt, sig, stop, pullErr != nil)
			others = err == nil && pullErr == nil && !stop && r.step+1 < cfg.Steps
			if rf := (*ranksFailed)(nil); errors.As(err, &rf) {
				return nil, r.keepMadeSteps(err, g, logw, lastSaved, r.elapsed+time.Since(t0).Seconds())
			}
			if err != nil {
				return nil, err
			}
			if pullErr != nil {
				return nil, pullErr
			}
			if stop { // every rank stops before the same step
				stopped = true
				break
			}
			if onDevice {
				if err := dg.pushGrads(); err != nil {
					return nil, err
				}
			}
		}
		// Nothing of a non-finite step is applied, logged or saved.
		var norm float64
		if onDevice {
			if norm, err = dg.norm(); err != nil {
				return nil, err
			}
		} else {
			norm = gradNorm(g)
		}
		if err := r.checkFinite(loss, norm, gper, glvl, gtt, gsig); err != nil {
			return nil, err
		}
		scale := 1.0
		if cfg.MaxGradNorm > 0 && norm > cfg.MaxGradNorm {
			scale = cfg.MaxGradNorm / norm
		}
		r.opt.LR = optim.ScheduledLR(cfg.LR, r.step, cfg.LRWarmup, cfg.Steps, cfg.LRDecay)
		r.opt.Begin()
		dec := optim.EMADecay(cfg.EMADecay, r.opt.T, !cfg.EMANoWarmup)
		if onDevice {
			if err := dg.update(r.opt, scale, dec); err != nil {
				return nil, err
			}
		} else {
			for i, p := range r.weights {
				if p.Fixed {
					continue
				}
				if err := r.opt.UpdateScaled(i, p.Data, gradient(g, gradIndex(r.weights, i)), scale); err != nil {
					return nil, fmt.Errorf("train: %s: %w", p.Name, err)
				}
			}
			for i, p := range r.weights {
				if err := optim.UpdateEMA(r.ema[i].Data, p.Data, dec); err != nil {
					return nil, fmt.Errorf("train: %s: %w", p.Name, err)
				}
			}
		}
		r.step++
		if err := r.keepGuide(g); err != nil {
			return nil, err
		}
		res.Step, res.Loss = r.step, loss
		secs := time.Since(t0).Seconds()
		ips := float64((r.step-firstStep)*cfg.Batch) / secs
		if err := logw.row(r.step, loss, ips, r.elapsed+secs, gper, glvl); err != nil {
			if r.ckpt != "" { // the disk filled: say where the run stands
				err = fmt.Errorf("%w; its last checkpoint is %s; %s", err, r.ckpt, r.hint)
			}
			return nil, err
		}
		if bar != nil {
			bar.Describe(fmt.Sprintf("loss %.3f  %.0f img/s", loss, ips))
			bar.Set(r.step)
		} else if r.step%50 == 0 || r.step == cfg.Steps {
			left := float64(cfg.Steps-r.step) * secs / float64(r.step-firstStep)
			fmt.Fprintf(r.log, "step %d/%d loss %.4f %.0f img/s, %s left\n", r.step, cfg.Steps, loss, ips, timeLeft(left))
		}
		if r.step%cfg.SaveEvery == 0 && r.step < cfg.Steps {
			if err := logw.flush(); err != nil {
				return nil, err
			}
			if err := syncFrom(g, r); err != nil {
				return nil, err
			}
			if res.Checkpoint, err = r.save(r.elapsed + secs); err != nil {
				return nil, err
			}
			lastSaved = r.step
		}
	}
	if err := syncFrom(g, r); err != nil {
		return nil, err
	}
	if bar != nil {
		bar.Finish()
	}
	if err := logw.flush(); err != nil {
		return nil, err
	}
	secs := time.Since(t0).Seconds()
	if stopped && r.step == 0 {
		// Stopped as the folder was claimed, before any step: an
		// untrained checkpoint would only fix settings that a corrected
		// command then contradicts.
		fmt.Fprintf(r.log, "interrupted before the first step: nothing saved in %s\n", cfg.CkptDir)
		return res, ErrInterrupted
	}
	if r.step != lastSaved || res.Checkpoint == "" {
		if res.Checkpoint, err = r.save(r.elapsed + secs); err != nil {
			return nil, err
		}
	}
	if stopped {
		fmt.Fprintf(r.log, "interrupted at step %d of %d; saved %s; %s\n", r.step, cfg.Steps, res.Checkpoint, r.hint)
		return res, ErrInterrupted
	}
	fmt.Fprintf(r.log, "done: step %d, loss %.4f, %.0f s this session; saved %s\n", r.step, res.Loss, secs, res.Checkpoint)
	return res, nil
}

// keepMadeSteps is rank 0's answer to other ranks' failure (err): it saves
// the steps made since the last checkpoint (lastSaved) — nothing of the
// failed step was applied — and says so in err, so that the run loses none.
// Other ranks, and a run with nothing new, return err as it is.
func (r *run) keepMadeSteps(err error, g objective, logw *csvLog, lastSaved int, elapsed float64) error {
	if r.dp.rank != 0 {
		return err
	}
	if r.step == lastSaved {
		if r.ckpt != "" { // saved at this step, or resumed from it
			return fmt.Errorf("%w; %s is its last checkpoint; %s", err, r.ckpt, r.hint)
		}
		return err
	}
	if ferr := logw.flush(); ferr != nil {
		return fmt.Errorf("%w; and its log: %v", err, ferr)
	}
	if serr := syncFrom(g, r); serr != nil {
		return fmt.Errorf("%w; and step %d could not be saved: %v", err, r.step, serr)
	}
	path, serr := r.save(elapsed)
	if serr != nil {
		return fmt.Errorf("%w; and step %d could not be saved: %v", err, r.step, serr)
	}
	return fmt.Errorf("%w; saved %s; %s", err, path, r.hint)
}

// syncFrom brings the state of a run on a device back into r.
func syncFrom(g objective, r *run) error {
	if dg, ok := g.(*deviceObjective); ok {
		return dg.sync(r.weights, r.ema, r.opt.M, r.opt.V)
	}
	return nil
}

// checkFinite returns an ErrNonFinite error naming the step and the noise
// level when the loss or the gradient norm of the step being taken is NaN or
// Inf.
func (r *run) checkFinite(loss, norm float64, per []float64, lvl []int, tt, sig []float64) error {
	if !math.IsNaN(loss) && !math.IsInf(loss, 0) && !math.IsNaN(norm) && !math.IsInf(norm, 0) {
		return nil
	}
	what, img := fmt.Sprintf("the loss is %g", loss), 0
	for i, p := range per { // the first image whose loss is non-finite, else the largest
		if math.IsNaN(p) || math.IsInf(p, 0) {
			img = i
			break
		}
		if p > per[img] {
			img = i
		}
	}
	if !math.IsNaN(loss) && !math.IsInf(loss, 0) {
		what = fmt.Sprintf("the gradient norm is %g (largest image loss %g)", norm, per[img])
	}
	// A resume takes the run's -lr and -max-grad-norm; a branch into a new
	// folder may change them (the hint named flags a resume refused).
	last := "no checkpoint was saved (-fresh with a lower -lr, or with -max-grad-norm, starts again)"
	if r.ckpt != "" {
		last = fmt.Sprintf("the last checkpoint is %s (-resume %s -ckpt-dir NEW with a lower -lr, or with -max-grad-norm, branches from it)", r.ckpt, r.ckpt)
	}
	where := fmt.Sprintf("at t = %.4g (σ = %.4g)", tt[img], sig[img])
	if r.sigmas != nil {
		where = fmt.Sprintf("at noise level %d of %d (σ = %.4g)", lvl[img]+1, len(r.sigmas), sig[img])
	}
	return fmt.Errorf("%w: step %d: %s %s; stopped before applying it: %s",
		ErrNonFinite, r.step+1, what, where, last)
}

// tBuckets is the number of columns of train.csv's per-t losses (t in
// [0, 0.1), [0.1, 0.2), …) for continuous processes.
const tBuckets = 10

// bucketNames are train.csv's per-level (NCSN) or per-t loss columns.
func (r *run) bucketNames() []string {
	var names []string
	for _, s := range r.sigmas {
		names = append(names, "loss_sigma_"+strconv.FormatFloat(s, 'g', 4, 64))
	}
	if r.sigmas == nil {
		for k := 0; k < tBuckets; k++ {
			names = append(names, "loss_t_"+strconv.FormatFloat(float64(k)/tBuckets, 'f', 1, 64))
		}
	}
	return names
}

// gradIndex maps a parameter index to its gradient index (fixed parameters
// have no node and no gradient).
func gradIndex(ps model.Params, i int) int {
	k := 0
	for j := 0; j < i; j++ {
		if !ps[j].Fixed {
			k++
		}
	}
	return k
}

// firstDistance is the largest Euclidean distance of ds's first image to
// each of the n that follow it: a lower bound on the largest pairwise one.
func firstDistance(ds *data.Dataset, n int) float64 {
	if ds.N < 2 {
		return 0
	}
	a := ds.Image(0)
	var best float64
	for k := 1; k < min(ds.N, n+1); k++ {
		var s float64
		for i, v := range ds.Image(k) {
			d := float64(v) - float64(a[i])
			s += d * d
		}
		best = max(best, s)
	}
	return math.Sqrt(best)
}

// ScheduleFromData applies NCSNv2's rules to a training set: σ₁ is its
// largest pairwise distance (computed exactly), then γ, L and ε for T steps
// per level. The values are printed to log. A cancelled ctx stops the
// distance pass within a fraction of a second, with ctx's error.
func ScheduleFromData(ctx context.Context, ds *data.Dataset, sigmaMin float64, T int, log io.Writer) (sde.V2, error) {
	// σ₁ is at least the largest distance of the first image to the next
	// few; where even that needs more levels than a ladder may have, the
	// exact pass (a minute on 60,000 images) is not begun.
	if lb := firstDistance(ds, 256); lb > sigmaMin {
		if _, err := sde.NCSNv2(lb, ds.Dim(), sigmaMin, T); err != nil {
			return sde.V2{}, fmt.Errorf("%w (σ₁ here is at least %g, the distance of %s's first image to another)", err, lb, ds.Name)
		}
	}
	fmt.Fprintf(log, "computing the largest pairwise distance of %d images (exact, %d×%d products)...\n", ds.N, ds.N, ds.N)
	t0 := time.Now()
	dmax, i, j, err := data.MaxPairwiseDistance(ctx, ds, nil)
	if err != nil {
		return sde.V2{}, err
	}
	if !(dmax > sigmaMin) {
		return sde.V2{}, fmt.Errorf("%w: %s: the noise scales come from the data's spread, and its %d images lie within %g of each other (σ₁), not above σ_L = %g: it needs at least two different images", ErrConfig, ds.Name, ds.N, dmax, sigmaMin)
	}
	v, err := sde.NCSNv2(dmax, ds.Dim(), sigmaMin, T)
	if err != nil {
		return v, err
	}
	fmt.Fprintf(log, "σ from the data (NCSNv2): σ₁ = %.4f (images %d and %d, %.0f s), γ = %.5f, L = %d down to σ_L = %g; "+
		"T = %d, ε = %.4g (NCSN's step_lr form %.4g), f(ε) = %.4f\n",
		dmax, i, j, time.Since(t0).Seconds(), v.Gamma, v.Levels, v.SigmaMin, v.T, v.Eps, v.EpsNCSN, v.Stationary)
	return v, nil
}

// draw fills one batch from the run's generator, in a fixed order: images
// (and their labels, where the dataset has them), flips, levels (or times),
// noise.
func (r *run) draw(ds *data.Dataset, x, z []float32, labels []int, mean, sig, tt []float64, lvl []int) {
	d := ds.Dim()
	b := len(sig)
	for i := 0; i < b; i++ {
		k := r.rng.IntN(ds.N)
		copy(x[i*d:(i+1)*d], ds.Image(k))
		if ds.Labels != nil {
			labels[i] = int(ds.Labels[k])
		}
	}
	if r.cfg.Flip { // a coin per image, after the images
		for i := 0; i < b; i++ {
			if r.rng.IntN(2) == 1 {
				flipRows(x[i*d:(i+1)*d], ds.Width)
			}
		}
	}
	for i := range sig {
		r.level(r.rng, i, mean, sig, tt, lvl)
	}
	for i := range z {
		z[i] = float32(r.rng.NormFloat64())
	}
}

// drawImages fills this rank's images of the batch, image from+i from its
// own stream (imageRNG): image, flip, level (or time), noise.
func (r *run) drawImages(ds *data.Dataset, from int, x, z []float32, labels []int, mean, sig, tt []float64, lvl []int) {
	d := ds.Dim()
	for i := range sig {
		rng := imageRNG(r.cfg.Seed, r.step, from+i)
		xi := x[i*d : (i+1)*d]
		k := rng.IntN(ds.N)
		copy(xi, ds.Image(k))
		if ds.Labels != nil {
			labels[i] = int(ds.Labels[k])
		}
		if r.cfg.Flip && rng.IntN(2) == 1 {
			flipRows(xi, ds.Width)
		}
		r.level(rng, i, mean, sig, tt, lvl)
		for j := range d {
			z[i*d+j] = float32(rng.NormFloat64())
		}
	}
}

// level draws image i's noise level (NCSN) or time t ~ U(ε, 1).
func (r *run) level(rng *rand.Rand, i int, mean, sig, tt []float64, lvl []int) {
	if r.sigmas != nil { // NCSN: a level per image, m = 1
		lvl[i] = rng.IntN(len(r.sigmas))
		mean[i], sig[i] = 1, r.sigmas[lvl[i]]
		return
	}
	if r.cfg.SigmaDist == SigmaDistLogNormal { // VE: m = 1, σ itself drawn
		pMean, pStd := r.cfg.LogNormal()
		sig[i] = sde.EDMTrainingSigma(rng.NormFloat64(), r.cfg.Model.SigmaData, pMean, pStd)
		mean[i], tt[i] = 1, r.proc.TimeOf(sig[i]) // t may lie outside [0, 1]
		lvl[i] = min(tBuckets-1, max(0, int(math.Floor(tt[i]*tBuckets))))
		return
	}
	tt[i] = sde.TrainingTime(r.proc, rng.Float64())
	mean[i], sig[i] = r.proc.Marginal(tt[i])
	lvl[i] = min(tBuckets-1, int(tt[i]*tBuckets))
}
