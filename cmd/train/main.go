// Command train fits a noise-conditional score network by denoising score
// matching, on NCSN's noise levels or a continuous-time SDE, checkpointing as
// it goes and resuming from its checkpoints. With -classifier it trains a
// noise-conditional classifier on the same noise instead (for guidance).
//
//	go run ./cmd/train -dataset mnist [-preset default|long|edm|ladder|smoke] [-steps N] ...
//	go run ./cmd/train -dataset mnist -classifier [-sde ve|vp|subvp]
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/cli"
	"github.com/ncsn-go/ncsn/internal/mpi"
	"github.com/ncsn-go/ncsn/train"
	"golang.org/x/term"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

// classifierDir is -classifier's default -ckpt-dir.
const classifierDir = "checkpoints/classifier"

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataset := fs.String("dataset", "mnist", "dataset: mnist, fashion, cifar10, or folder:PATH (your own PNG, JPEG and GIF images)")
	preset := fs.String("preset", "default", "preset: default, long, edm or ladder (mnist, fashion), smoke, or ncsnv2 (cifar10)")
	process := fs.String("sde", "", "diffusion process: ncsn (discrete levels), ve, vp or subvp (continuous time) (default: the preset's: ve for mnist's and fashion's default, long, edm and smoke, ncsn otherwise)")
	dataDir := fs.String("data-dir", "", "data directory (default ./data/<dataset>; for a folder, where its decoded cache goes: ./data/folders)")
	size := fs.Int("size", 0, "folder datasets: image side, 32 or 64 (default 32)")
	grey := fs.Bool("grey", false, "folder datasets: one grey channel instead of colour")
	flip := fs.Bool("flip", false, "random horizontal flips: folder datasets and CIFAR-10 (the ncsnv2 preset's default)")
	ckptDir := fs.String("ckpt-dir", "checkpoints", "checkpoint directory")
	steps := fs.Int("steps", 0, "total number of steps to reach (default: the preset's)")
	batch := fs.Int("batch", 0, "batch size (default: the preset's)")
	base := fs.Int("base", 0, "channels at full resolution (default: the preset's)")
	mult := fs.String("mult", "", "channel multipliers of the resolution levels, comma-separated (default: the preset's, e.g. 1,2,2)")
	precond := fs.String("precond", "", "the score's parameterisation: ncsnv2 (s = F/σ) or edm (Karras et al. 2022's preconditioning) (default: the preset's)")
	sigmaData := fs.Float64("sigma-data", 0, "with -precond edm: σ_data (default: the root mean square of the training values)")
	lr := fs.Float64("lr", 0, "Adam learning rate (default: the preset's)")
	lrWarmup := fs.Int("lr-warmup", 0, "ramp the learning rate up linearly over this many first steps")
	lrDecay := fs.String("lr-decay", "none", "learning-rate decay after the warm-up: none, or cosine (to 0 at -steps)")
	emaWarmup := fs.Bool("ema-warmup", true, "warm the moving average's decay up as min(ema, (1+t)/(10+t)); -ema-warmup=false decays by -ema from the first step")
	ema := fs.Float64("ema", 0, "decay of the weights' moving average that samples (default: the preset's, e.g. 0.999)")
	saveEvery := fs.Int("save-every", 0, "save a checkpoint every this many steps (default: the preset's)")
	seed := fs.Uint64("seed", 0, "random seed")
	keep := fs.Int("keep", 5, "checkpoints to keep (0 keeps all)")
	fresh := fs.Bool("fresh", false, "start over; earlier checkpoints are moved to an archive folder")
	wipe := fs.Bool("wipe", false, "with -fresh: delete earlier checkpoints instead of archiving them")
	resume := fs.String("resume", "", "resume from this checkpoint file")
	maxGradNorm := fs.Float64("max-grad-norm", 0, "clip each step's gradients to this Euclidean norm (0: no clipping)")
	sigmaMax := fs.Float64("sigma-max", 0, "largest noise level: σ₁ of NCSN's geometric ladder, or the VE SDE's σ_max (default: the preset's: 5 for MNIST's and Fashion-MNIST's default; score_sde's 25 with -sde ve, 50 on CIFAR-10)")
	sigmaDist := fs.String("sigma-dist", "", "-sde ve: how each image's σ is drawn: uniform (ln σ uniform from σ_min to σ_max) or lognormal (EDM's, scaled to σ_data; with -precond edm) (default: the preset's, lognormal for mnist's and fashion's but ladder, else uniform)")
	pMean := fs.Float64("p-mean", 0, "with -sigma-dist lognormal: the mean P_mean of ln σ before the σ_data/0.5 scaling (EDM's: −1.2; default: the preset's, −0.8 for mnist)")
	pStd := fs.Float64("p-std", 0, "with -sigma-dist lognormal: the spread P_std of ln σ (default: the preset's, EDM's 1.2)")
	levels := fs.Int("levels", 0, "number of noise levels L of NCSN's ladder, σ₁ down to σ_L = 0.01 (default: the preset's: 12 for -sde ncsn on mnist and fashion and for mnist's ladder, 10 for fashion's ladder and cifar10, 232 for ncsnv2; folder datasets: from the images)")
	fromData := fs.Bool("sigmas-from-data", false, "choose σ₁, L and the sampling ε by NCSNv2's rules from the training set")
	device := fs.String("device", "", "where the network trains (score model or classifier): cpu, or cuda (the first GPU; build with -tags gpu) or cuda:N (GPU N); default: the GPU if the build has it and one is found (under MPI: each rank the GPU of its rank on its machine)")
	guideAt := fs.Float64("guide-at", 0, "keep the EMA weights of this fraction of -steps in every later checkpoint, as autoguidance's guide (cmd/sample -autoguide self); 0: keep none (default: the preset's, 1/3 for mnist, 0.5 for fashion)")
	classifier := fs.Bool("classifier", false, "train a noise-conditional classifier p(y | x, σ) for cmd/sample -class (default -ckpt-dir checkpoints/classifier)")
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "train: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := cli.EmptyGiven(fs); err != nil { // "" would mean the default, silently
		fmt.Fprintln(stderr, "train:", err)
		return 2
	}
	cfg, err := train.Preset(*preset, *dataset)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg.Set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { cfg.Set[f.Name] = true })
	if cfg.Set["size"] && *size == 0 {
		fmt.Fprintln(stderr, "train: -size 0: give 32 or 64 (or leave -size out for 32)")
		return 2
	}
	// Whether this command resumes a run (its own checkpoints decide then,
	// not the preset): under mpirun rank 0's folder decides, and another
	// rank (on another machine, without the folder) goes by rank 0's
	// checks.
	runDir := *ckptDir
	if *classifier && !cfg.Set["ckpt-dir"] {
		runDir = classifierDir
	}
	resuming := func() bool {
		c := cfg
		c.CkptDir, c.Fresh, c.Resume = runDir, *fresh, *resume
		return train.Resuming(c) || mpi.Built && mpi.LaunchRank() > 0
	}
	// The dataset of the checkpoint a resume takes ("" where none is read).
	resumedDataset := func() string {
		p := *resume
		if p == "" {
			p = runDir
		}
		ds, _ := checkpoint.DatasetOf(p)
		return ds
	}
	if err := cfg.UseImages(*size, *grey, *flip); err != nil {
		ds := resumedDataset()
		_, folder := data.IsFolder(ds)
		if cfg.Set["dataset"] || !resuming() || !folder && (ds != "cifar10" || *size != 0 || *grey) {
			fmt.Fprintln(stderr, err)
			return 2
		}
		// A resume without -dataset that restates its folder run's -size,
		// -grey or -flip, or a CIFAR-10 run's -flip: compared with the
		// checkpoint (it was refused as "for folder datasets" by the
		// default dataset's preset).
		cfg.ImageSize, cfg.Grey, cfg.Flip = *size, *grey, *flip
	}
	if cfg.Set["sde"] || cfg.SDE == "" { // the presets but the VE ones (MNIST's, Fashion-MNIST's) train NCSN's ladder
		if err := cfg.UseSDE(cmp.Or(*process, "ncsn")); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	}
	if *classifier {
		if err := cfg.UseClassifier(); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	}
	if cfg.Set["data-dir"] {
		cfg.DataDir = *dataDir
	}
	cfg.CkptDir = runDir
	cfg.Seed, cfg.Keep, cfg.Fresh, cfg.Wipe, cfg.Resume = *seed, *keep, *fresh, *wipe, *resume
	// The flags' combinations are checked for a fresh run, whose settings
	// they are; a resume takes the run's from its checkpoint, and compares
	// each one given with it (a ladder run resumed with its own -levels was
	// refused by the default preset's continuous -sde).
	// Under mpirun the run is rank 0's, fresh or resumed: another rank
	// (on another machine, without the run's folder) took it for fresh
	// and refused a flag that restates the run's own. Rank 0 checks the
	// same flags for all.
	freshRun := !resuming()
	if cfg.Set["steps"] {
		cfg.Steps = *steps
	}
	if cfg.Set["batch"] {
		cfg.Batch = *batch
	}
	if cfg.Set["base"] {
		cfg.Model.Base = *base
	}
	if cfg.Set["mult"] {
		if cfg.Model.Mult, err = parseMult(*mult); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	}
	if cfg.Set["precond"] {
		switch *precond {
		case "ncsnv2":
			cfg.Model.Precond, cfg.Model.SigmaData = "", 0
			if !cfg.Set["sigma-dist"] { // the MNIST and Fashion-MNIST presets' log-normal σ's are EDM's
				cfg.DropLogNormal()
			}
		case "edm":
			cfg.Model.Precond = *precond
		default:
			fmt.Fprintf(stderr, "train: unknown -precond %q (ncsnv2 or edm)\n", *precond)
			return 2
		}
	}
	if cfg.Set["sigma-data"] {
		if freshRun && cfg.Model.Precond != "edm" {
			fmt.Fprintln(stderr, "train: -sigma-data goes with -precond edm")
			return 2
		}
		// Resumed, the run's own preconditioning: -sigma-data is then
		// compared with its checkpoint's (0 where it is not EDM's). Not
		// where no run of these flags can be EDM's.
		edmable := !*classifier && (cfg.SDE == "" || cfg.SDE == "ncsn" || cfg.SDE == "ve")
		if !edmable && cfg.Model.Precond != "edm" {
			fmt.Fprintln(stderr, "train: -sigma-data goes with -precond edm, which trains score models on -sde ncsn or ve")
			return 2
		}
		if !cfg.Set["precond"] {
			cfg.Model.Precond = "edm"
		}
		cfg.Model.SigmaData = *sigmaData
	}
	if cfg.Set["lr"] {
		cfg.LR = *lr
	}
	if cfg.Set["lr-warmup"] {
		cfg.LRWarmup = *lrWarmup
	}
	if cfg.Set["lr-decay"] {
		cfg.LRDecay = *lrDecay
	}
	if cfg.Set["ema"] {
		cfg.EMADecay = *ema
	}
	if cfg.Set["ema-warmup"] {
		cfg.EMANoWarmup = !*emaWarmup
	}
	if cfg.Set["save-every"] {
		cfg.SaveEvery = *saveEvery
	}
	cfg.Device = *device
	if cfg.Set["sigmas-from-data"] {
		cfg.SigmasFromData = *fromData
	}
	if freshRun && cfg.SigmasFromData && (cfg.Set["sigma-max"] || cfg.Set["levels"]) {
		fmt.Fprintln(stderr, "train: -sigmas-from-data chooses σ₁ and L itself; it does not go with -sigma-max or -levels")
		return 2
	}
	continuous := cfg.SDE != "" && cfg.SDE != "ncsn"
	if freshRun && cfg.Set["levels"] && continuous {
		hint := ""
		if !cfg.Set["sde"] {
			hint = " (the preset's; -sde ncsn or -preset ladder train a ladder)"
		}
		fmt.Fprintf(stderr, "train: -levels sets NCSN's ladder; -sde %s is continuous in time%s\n", cfg.SDE, hint)
		return 2
	}
	if freshRun && cfg.Set["sigma-max"] && continuous && cfg.SDE != "ve" {
		fmt.Fprintf(stderr, "train: -sigma-max is for -sde ncsn or ve; -sde %s has no σ\n", cfg.SDE)
		return 2
	}
	if cfg.Set["sigma-max"] {
		cfg.SigmaMax = *sigmaMax
	}
	if cfg.Set["levels"] {
		cfg.Levels = *levels
	}
	cfg.MaxGradNorm = *maxGradNorm
	if freshRun && cfg.Set["sigma-dist"] && cfg.SDE != "ve" {
		fmt.Fprintf(stderr, "train: -sigma-dist is how the VE process draws its σ's; this run trains -sde %s\n", cmp.Or(cfg.SDE, "ncsn"))
		return 2
	}
	if cfg.Set["sigma-dist"] { // uniform is the zero value; the MNIST and Fashion-MNIST presets' is lognormal
		cfg.SigmaDist = *sigmaDist
		switch {
		case *sigmaDist == "uniform":
			cfg.DropLogNormal()
		case *sigmaDist == train.SigmaDistLogNormal && cfg.PStd == 0: // a preset without them: EDM's
			cfg.PMean, cfg.PStd = cfg.LogNormal()
		}
	}
	if freshRun && (cfg.Set["p-mean"] || cfg.Set["p-std"]) && cfg.SigmaDist != train.SigmaDistLogNormal {
		fmt.Fprintln(stderr, "train: -p-mean and -p-std shape the log-normal σ's; this run's σ's are not log-normal (-sigma-dist lognormal with -sde ve -precond edm)")
		return 2
	}
	if cfg.Set["p-mean"] {
		cfg.PMean = *pMean
	}
	if cfg.Set["p-std"] {
		if !(*pStd > 0) {
			fmt.Fprintf(stderr, "train: -p-std %g must be positive (EDM's: 1.2)\n", *pStd)
			return 2
		}
		cfg.PStd = *pStd
	}
	if cfg.Set["guide-at"] {
		cfg.KeepGuide(*guideAt)
		if n := cfg.Steps; freshRun && *guideAt > 0 && *guideAt < 1 && n > 1 && checkpoint.GuideStep(*guideAt, n) == 0 {
			// Given, it kept no guide: sampling then ran unguided, with
			// only a word in the first line. (A fresh run's: a resume's
			// plan is its checkpoint's.)
			fmt.Fprintf(stderr, "train: -guide-at %g of %d steps comes at no step before the last: give a fraction from %.6g (step 1) to %.6g (step %d)\n", *guideAt, n, 1/float64(n), float64(n-1)/float64(n), n-1)
			return 2
		}
	}
	cfg.Log = stderr
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		cfg.Bar = true
	}

	if mpi.Built { // go build -tags mpi: one rank of `mpirun -np N` (or a job of one)
		comm, err := mpi.Init()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		cfg.Comm = comm
	}
	// The first stop signal (signals_unix.go) saves and stops; a second
	// quits at once, for a run stuck in that stop.
	notice := func(s os.Signal) {
		if cfg.Comm == nil || cfg.Comm.Rank() == 0 {
			if cfg.Bar {
				fmt.Fprintln(stderr) // below the progress bar
			}
			again := "a second signal"
			if s == os.Interrupt {
				again = "Ctrl-C again"
			}
			// Before the first step (the data still loading) there is no
			// step to finish: the run's last line says what was done.
			fmt.Fprintf(stderr, "train: %v: stopping; a step under way is finished and saved as a checkpoint (%s, a second or more later, quits at once, without saving)\n", s, again)
		}
	}
	ctx, stop := cli.StopContext(context.Background(), notice, stopSignals...)
	defer stop()
	_, err = train.Run(ctx, cfg)
	if err == nil && cfg.Comm != nil {
		err = cfg.Comm.Finalize() // an error exit skips it, and mpirun stops the other ranks
	}
	if err != nil {
		if errors.Is(err, train.ErrInterrupted) {
			return 130
		}
		if cfg.Comm != nil && cfg.Comm.Size() > 1 {
			// mpirun interleaves every rank's lines: say whose this is.
			fmt.Fprintf(stderr, "rank %d of %d: %v\n", cfg.Comm.Rank(), cfg.Comm.Size(), err)
			return 1
		}
		fmt.Fprintln(stderr, err) // library errors carry their package prefix
		return 1
	}
	return 0
}

// parseMult reads -mult: positive whole numbers separated by commas.
func parseMult(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		m, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || m < 1 {
			return nil, fmt.Errorf("train: -mult %q: want positive whole numbers separated by commas, like 1,2,2", s)
		}
		out = append(out, m)
	}
	return out, nil
}
