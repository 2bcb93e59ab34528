package train

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/internal/mpi"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/optim"
	"github.com/ncsn-go/ncsn/sde"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("train: bad config")

// Config is one training run. The fields with JSON names are saved in every
// checkpoint; the others say where things are and how to report.
type Config struct {
	Dataset string       `json:"dataset"`
	Preset  string       `json:"preset"`
	Model   model.Config `json:"model"`
	Steps   int          `json:"steps"` // total steps to reach
	// StepsChosen: Steps was given (-steps), not taken from the preset; a
	// resume then does not set it beside the preset's count.
	StepsChosen bool    `json:"steps_chosen,omitempty"`
	Batch       int     `json:"batch"`
	LR          float64 `json:"lr"`
	EMADecay    float64 `json:"ema_decay"`
	// EMANoWarmup: the moving average decays by EMADecay from the first
	// step, without the warm-up min(EMADecay, (1+t)/(10+t)) (optim.EMADecay).
	EMANoWarmup bool `json:"ema_no_warmup,omitempty"`
	// LRWarmup steps ramp the learning rate up linearly from LR/LRWarmup;
	// LRDecay "cosine" then decays it to 0 at step Steps ("" or "none": it
	// stays at LR). See optim.ScheduledLR.
	LRWarmup int    `json:"lr_warmup,omitempty"`
	LRDecay  string `json:"lr_decay,omitempty"`
	// SDE names the diffusion process (package sde): "" or "ncsn" for
	// NCSN's discrete ladder of Levels noise levels from SigmaMax to
	// SigmaMin; "ve" for the continuous VE SDE between the same σ's; "vp"
	// and "subvp" for the VP and sub-VP SDEs with β from BetaMin to BetaMax.
	SDE      string  `json:"sde,omitempty"`
	SigmaMax float64 `json:"sigma_max"`
	SigmaMin float64 `json:"sigma_min"`
	Levels   int     `json:"levels"`
	// SigmaDist is how a continuous VE run draws each image's σ: "" (t
	// uniform in (ε, 1), so ln σ uniform between SigmaMin and SigmaMax) or
	// "lognormal", EDM's ln σ ~ N(P_mean, P_std²) carried to the data's σ_data
	// (sde.EDMTrainingSigma; with -precond edm).
	SigmaDist string `json:"sigma_dist,omitempty"`
	// PMean and PStd are the "lognormal" draw's mean and spread of ln σ
	// before the σ_data scaling (sde.EDMTrainingSigma). PStd 0 (checkpoints
	// from before they were saved) means EDM's −1.2 and 1.2: LogNormal.
	PMean     float64 `json:"p_mean,omitempty"`
	PStd      float64 `json:"p_std,omitempty"`
	BetaMin   float64 `json:"beta_min,omitempty"`
	BetaMax   float64 `json:"beta_max,omitempty"`
	Seed      uint64  `json:"seed"`
	SaveEvery int     `json:"save_every"`
	// SigmasFromData replaces σ₁, L and the sampling ε by NCSNv2's rules
	// applied to the training set (σ_L stays SigmaMin, T = 5).
	SigmasFromData bool `json:"sigmas_from_data,omitempty"`
	// MaxGradNorm, when positive, scales each step's gradients down to this
	// Euclidean norm when they exceed it.
	MaxGradNorm float64 `json:"max_grad_norm,omitempty"`
	// Sampling defaults saved with the checkpoint ("" and 0: the sampler's
	// own): the sampler (cmd/sample's -sampler; "": ald for NCSN, pc for the
	// continuous processes), its steps (ald: T per level; a named
	// continuous sampler: -steps), ald's ε and heun's S_churn.
	SampleSampler string  `json:"sample_sampler,omitempty"`
	SampleEps     float64 `json:"sample_eps,omitempty"`
	SampleSteps   int     `json:"sample_steps,omitempty"`
	SampleChurn   float64 `json:"sample_churn,omitempty"`
	// GuideAt, in (0, 1), keeps the EMA weights as they are at that fraction
	// of Steps in every later checkpoint (checkpoint.State.Guide): a
	// less-trained version of the same network, autoguidance's guide
	// (cmd/sample -autoguide self). A resume with more steps moves the guide
	// to that fraction of them where the run has not passed it yet. SampleAutoguide is the weight w the
	// checkpoint recommends for its own sampler with that guide (0: none).
	GuideAt         float64 `json:"guide_at,omitempty"`
	SampleAutoguide float64 `json:"sample_autoguide,omitempty"`
	// A folder of images (Dataset "folder:PATH"): the side the images are
	// resized to (32 or 64), one grey channel instead of RGB, random
	// horizontal flips (CIFAR-10 takes them too); and the source the run started from (image count
	// and a digest of the files' names, sizes and times), so that a resume
	// can say the folder has changed.
	ImageSize    int    `json:"image_size,omitempty"`
	Grey         bool   `json:"grey,omitempty"`
	Flip         bool   `json:"flip,omitempty"`
	SourceImages int    `json:"source_images,omitempty"`
	SourceDigest string `json:"source_digest,omitempty"`
	// DataParallel: trained over MPI ranks (Comm), each image of a batch
	// drawn from its own stream derived from (seed, step, image).
	DataParallel bool `json:"data_parallel,omitempty"`
	// Ranks is how many MPI ranks the run's last session had (0: one
	// process): a resume on another number sums the gradients in another
	// order, and says its bits will differ.
	Ranks int `json:"ranks,omitempty"`
	// Classifier trains a noise-conditional classifier p(y | x̃, σ) on the
	// dataset's labels instead of a score network (Model.Classes > 0): the
	// same noise levels or times, the cross-entropy loss. Classifier
	// guidance (cmd/sample -class) uses it.
	Classifier bool `json:"classifier,omitempty"`

	DataDir string `json:"-"`
	CkptDir string `json:"-"`
	// Device is where the network (score model or classifier) trains:
	// "cpu", "cuda" (the first GPU; a build with -tags gpu), "cuda:N" (GPU
	// N), or "" (the GPU where the build has the tag and one is found).
	// Under MPI (Comm) "cuda" and "" take each rank's GPU by its rank on
	// its machine, wrapping around the GPUs there. Checkpoints are the same
	// files either way.
	Device string `json:"-"`
	// Keep is how many checkpoints are kept (0 keeps all); saved, so that
	// a resume without -keep prunes as the run did (files written before it
	// was saved read as 0: keep all).
	Keep   int    `json:"keep"`
	Fresh  bool   `json:"-"` // start over; earlier checkpoints are archived
	Wipe   bool   `json:"-"` // with Fresh: delete earlier checkpoints instead
	Resume string `json:"-"` // resume from this file
	// Set names the settings the user gave explicitly (flag names); on resume
	// they must agree with the checkpoint's (ErrMismatch otherwise), and
	// Steps, SaveEvery and Keep not named come from the checkpoint. A nil
	// Set (a Go caller's Config) gives every setting: each that shapes the
	// computation must agree with the checkpoint's — all but the Preset's
	// name, a zero Model.SigmaData and, for a run that took them from its
	// data, SigmaMax and Levels —, LR and MaxGradNorm may differ only in a
	// branch (Resume into another CkptDir), and Steps, SaveEvery and Keep
	// are taken as given when Preset is the checkpoint's. An empty Set (no
	// setting given) resumes with every setting of the checkpoint, as a
	// bare cmd/train does.
	Set map[string]bool `json:"-"`
	// Log receives progress lines; Bar draws a progress bar on it.
	Log io.Writer `json:"-"`
	Bar bool      `json:"-"`
	// Data, when set, is used instead of loading Dataset (tests).
	Data *data.Dataset `json:"-"`
	// Comm, when set, spreads each batch over the ranks of an MPI job
	// (package internal/mpi, build tag mpi); rank 0 alone writes.
	Comm mpi.Comm `json:"-"`
}

// SigmaDistLogNormal names EDM's log-normal training distribution of σ
// (Config.SigmaDist).
const SigmaDistLogNormal = "lognormal"

// LogNormal returns the P_mean and P_std of the log-normal σ's: c's, or
// EDM's (sde.EDMPMean, sde.EDMPStd) where c has none (PStd 0).
func (c Config) LogNormal() (pMean, pStd float64) {
	if c.PStd == 0 {
		return sde.EDMPMean, sde.EDMPStd
	}
	return c.PMean, c.PStd
}

// DropLogNormal makes c draw its σ's as its process does (t uniform), for
// the settings that log-normal σ's do not go with.
func (c *Config) DropLogNormal() {
	c.SigmaDist, c.PMean, c.PStd = "", 0, 0
}

// Datasets are the built-in datasets the trainer knows; "folder:PATH" names
// a folder of the user's images.
var Datasets = []string{"mnist", "fashion", "cifar10"}

// MaxSigma bounds -sigma-max: NCSNv2's rule gives σ₁ ≈ 50 for CIFAR-10 and
// about 100 for 64×64 images in [0, 1]; far larger noise only loses
// float32 precision (σ = 1e300 trains, and samples NaN).
const MaxSigma = 1e4

// Resuming reports whether Run would resume a run with cfg: -resume, or a
// checkpoint in CkptDir without -fresh (a damaged one too: Run then says
// so). A command checks its flags' combinations only for a fresh run; a
// resume compares each flag given with its checkpoint's value.
func Resuming(cfg Config) bool {
	if cfg.Resume != "" {
		return true
	}
	if cfg.Fresh {
		return false
	}
	_, err := checkpoint.Latest(cfg.CkptDir)
	return !errors.Is(err, checkpoint.ErrNone)
}

// Preset returns the configuration of a named preset for a dataset.
//
//   - default (mnist, fashion): the network of ../shared/bench/torch_ref.py at
//     base 16, batch 128, EMA 0.999; MNIST 3600 steps saved every 400 (15
//     minutes on 2 cores, README.md), Fashion-MNIST 4000 steps saved every
//     500 (not cut with MNIST's: its figures are for 4000); with the best of
//     BENCHMARKS.md's experiments (issue 15),
//     EDM's recipe (Karras et al. 2022): the VE process from σ_max = 5 to
//     0.01 with each image's σ drawn from EDM's log-normal distribution,
//     EDM's preconditioning (σ_data from the data), Adam 2e-3, and the
//     checkpoint keeps an earlier EMA as autoguidance's guide (GuideAt:
//     Fashion-MNIST half-way, MNIST a third of the way). MNIST: P_mean
//     −0.8, and the checkpoint recommends EDM's
//     Heun sampler, 150 steps with S_churn = 60, autoguided by that guide at
//     w = 2 (598 evaluations; a checkpoint without its guide yet recommends
//     Heun 300 with S_churn = 120 unguided); Fashion-MNIST: EDM's P_mean
//     −1.2, Heun 300 steps with S_churn = 120 (599 evaluations), unguided.
//   - default (cifar10): the same network for 32×32 colour at base 32,
//     batch 64, 2000 steps: a CPU budget (README.md says what to expect).
//   - ncsnv2 (cifar10): NCSNv2's CIFAR-10 settings for long runs on bigger
//     machines: σ₁=50, σ_L=0.01, L=232, batch 128, Adam 1e-4, EMA 0.999,
//     300k steps, sampling T=5 and NCSNv2's step_lr 6.2e-6 (ε = 1.24e-5 here);
//     our U-Net at base 128 stands in for their RefineNet.
//   - default (folder:PATH): the CIFAR-10 network (base 32) at the folder's
//     image size (UseImages: 32, or 64 with a fourth level), batch 64,
//     2000 steps, and NCSN's σ ladder chosen from the images by NCSNv2's
//     rules (σ_L = 0.01).
//   - long (mnist, fashion): the default for 12000 steps (MNIST: saved every
//     400), under an hour on 2 cores, sampled by Heun 300 steps with
//     S_churn = 120, unguided (its guide is kept).
//   - edm (mnist, fashion): the default's recipe with EDM's P_mean −1.2,
//     4000 steps, sampled by Heun 300 steps with S_churn = 120, unguided.
//   - ladder (mnist, fashion): the default before EDM's recipe (4000 steps,
//     no guide kept). MNIST:
//     EDM's preconditioning on NCSN's ladder σ₁=5, σ_L=0.01, L=12, Adam
//     2e-3, annealed Langevin dynamics with T=50, ε=8e-5 (601 evaluations);
//     Fashion-MNIST: NCSN's F/σ on σ₁=1, L=10, Adam 1e-3, T=100, ε=4e-5.
//   - smoke: a tiny network and batch that trains a few steps in seconds.
func Preset(name, dataset string) (Config, error) {
	c := Config{
		Dataset: dataset, Preset: name, Model: model.MNIST(16),
		Steps: 4000, Batch: 128, LR: 1e-3, EMADecay: 0.999,
		SigmaMax: 1, SigmaMin: 0.01, Levels: 10, Seed: 0, SaveEvery: 500,
		DataDir: DefaultDataDir(dataset), CkptDir: "checkpoints", Keep: 5,
	}
	switch dataset {
	case "mnist", "fashion":
		// EDM's recipe (issue 15): the VE process from σ 5 to 0.01 with σ
		// drawn log-normally, EDM's preconditioning, Heun's sampler with
		// churn. Levels is the ladder -sde ncsn trains. MNIST's log-normal
		// mean is moved up from EDM's −1.2 to −0.8 (BENCHMARKS.md: more
		// confident digits at the same cost; not measured on Fashion-MNIST).
		c.SDE, c.SigmaDist, c.LR = "ve", SigmaDistLogNormal, 2e-3
		c.PMean, c.PStd = sde.EDMPMean, sde.EDMPStd
		c.Model.Precond, c.SigmaMax, c.Levels = model.PrecondEDM, 5, 12
		c.SampleSampler, c.SampleSteps, c.SampleChurn = "heun", 300, 120
		// The run keeps its EMA of half-way as autoguidance's guide.
		c.GuideAt = 0.5
		if dataset == "mnist" {
			// Autoguidance (Karras et al. 2024) by the EMA of a third of
			// the run, w 2, on half the Heun steps and churn: 598
			// evaluations (599 unguided), more confident digits
			// (BENCHMARKS.md; on Fashion-MNIST more confident but farther,
			// so not its recommendation).
			c.PMean = -0.8
			c.GuideAt = 1.0 / 3
			c.SampleSteps, c.SampleChurn, c.SampleAutoguide = 150, 60, 2
			// 3600 steps: ≤ 15 minutes on 2 cores of the slower machine
			// measured (an Intel Xeon, ~530 images/s); saved every 400.
			c.Steps, c.SaveEvery = 3600, 400
		}
	case "cifar10":
		c.Model = model.CIFAR10(32)
		c.Steps, c.Batch, c.SaveEvery = 2000, 64, 250
	default:
		path, ok := data.IsFolder(dataset)
		if !ok {
			return Config{}, fmt.Errorf("%w: unknown dataset %q (mnist, fashion, cifar10 or folder:PATH)", ErrConfig, dataset)
		}
		if path == "" {
			return Config{}, fmt.Errorf("%w: -dataset folder: needs a path (folder:PATH)", ErrConfig)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return Config{}, fmt.Errorf("%w: -dataset %s: %v", ErrConfig, dataset, err)
		}
		c.Dataset = data.FolderPrefix + abs
		c.Model = model.CIFAR10(32)
		c.ImageSize = 32
		c.Steps, c.Batch, c.SaveEvery = 2000, 64, 250
		c.SigmasFromData = true
	}
	switch {
	case name == "default":
	case name == "long" && (dataset == "mnist" || dataset == "fashion"):
		// The default recipe for ≤ 60 minutes on 2 cores (README.md): the
		// EMA then reaches its full decay (step 8990) and averages over the
		// last ~1000 steps. MNIST's P_mean −0.8 as the default's (measured
		// at 12,000 steps too: BENCHMARKS.md), sampled as measured there
		// (Heun 300 steps, churn 120, unguided; its guide is kept).
		c.Steps = 12000
		c.SampleSteps, c.SampleChurn, c.SampleAutoguide = 300, 120, 0
	case name == "edm" && (dataset == "mnist" || dataset == "fashion"):
		// The default's recipe with EDM's own log-normal σ's (the default
		// of stop 18, before P_mean moved up), trained and sampled as it
		// was: 4000 steps, Heun 300 with churn 120, unguided.
		c.PMean = sde.EDMPMean
		c.Steps, c.SaveEvery = 4000, 500
		c.SampleSteps, c.SampleChurn, c.SampleAutoguide = 300, 120, 0
	case name == "ladder" && dataset == "mnist":
		c.SDE = ""
		c.DropLogNormal()
		c.SampleSampler, c.SampleSteps, c.SampleChurn, c.SampleEps = "", 50, 0, 8e-5
		c.Steps, c.SaveEvery = 4000, 500
		c.GuideAt, c.SampleAutoguide = 0, 0 // the earlier default, as it was
	case name == "ladder" && dataset == "fashion":
		c.SDE, c.LR = "", 1e-3
		c.DropLogNormal()
		c.Model.Precond, c.SigmaMax, c.Levels = "", 1, 10
		c.SampleSampler, c.SampleSteps, c.SampleChurn, c.SampleAutoguide = "", 0, 0, 0
		c.GuideAt = 0
	case name == "smoke":
		c.Model.Base, c.Model.EmbDim = 8, 32
		c.Steps, c.Batch, c.SaveEvery = 20, 16, 10
	case name == "ncsnv2" && dataset == "cifar10":
		c.Model = model.CIFAR10(128, 1, 2, 2, 2)
		c.SigmaMax, c.SigmaMin, c.Levels = 50, 0.01, 232
		c.Batch, c.LR, c.Steps, c.SaveEvery = 128, 1e-4, 300000, 5000
		c.SampleSteps, c.SampleEps = 5, 2*6.2e-6
		c.Flip = true // NCSNv2's random_flip
	default:
		return Config{}, fmt.Errorf("%w: unknown preset %q for %s (default, smoke, long for mnist and fashion, edm and ladder for mnist and fashion, or ncsnv2 for cifar10)", ErrConfig, name, dataset)
	}
	return c, nil
}

// KeepGuide sets GuideAt. Without a guide (at = 0) a recommended autoguided
// sampler becomes the same sampler unguided at the same number of network
// evaluations (checkpoint.Unguided).
func (c *Config) KeepGuide(at float64) {
	c.GuideAt = at
	if at == 0 && c.SampleAutoguide != 0 {
		c.SampleAutoguide = 0
		c.SampleSteps, c.SampleChurn = checkpoint.Unguided(c.SampleSteps, c.SampleChurn)
	}
}

// UseImages sets the image size (32 or 64), colour and flips of a folder
// dataset, and the network to match: three resolution levels at 32, four
// (channel multipliers 1, 2, 2, 2) at 64. CIFAR-10 takes flips too (the
// ncsnv2 preset's, as NCSNv2's random_flip): flip true, or given (Set),
// replaces the preset's.
func (c *Config) UseImages(size int, grey, flip bool) error {
	if _, ok := data.IsFolder(c.Dataset); !ok {
		if size != 0 || grey {
			return fmt.Errorf("%w: -size and -grey are for folder datasets (-dataset folder:PATH)", ErrConfig)
		}
		if c.Dataset != "cifar10" && (flip || c.Set["flip"]) {
			// A mirrored digit is another glyph or none.
			return fmt.Errorf("%w: -flip is for CIFAR-10 and folder datasets, not %s", ErrConfig, c.Dataset)
		}
		if flip || c.Set["flip"] {
			c.Flip = flip
		}
		return nil
	}
	if size == 0 {
		size = 32
	}
	if size != 32 && size != 64 {
		return fmt.Errorf("%w: -size %d: folders train at 32 or 64", ErrConfig, size)
	}
	c.ImageSize, c.Grey, c.Flip = size, grey, flip
	c.Model.Height, c.Model.Width = size, size
	c.Model.Channels = 3
	if grey {
		c.Model.Channels = 1
	}
	c.Model.Mult = []int{1, 2, 2}
	if size == 64 {
		c.Model.Mult = []int{1, 2, 2, 2}
	}
	return nil
}

// Classes is the number of classes of the built-in datasets.
const Classes = 10

// UseClassifier makes c a run that trains a noise-conditional classifier
// of the dataset's classes with the preset's network, encoder half only.
func (c *Config) UseClassifier() error {
	if _, ok := data.IsFolder(c.Dataset); ok {
		return fmt.Errorf("%w: -classifier needs labelled images; a folder dataset has none (mnist, fashion, cifar10)", ErrConfig)
	}
	c.Classifier = true
	c.Model.Classes = Classes
	// A classifier is no score model: it neither keeps nor is a guide.
	c.GuideAt, c.SampleAutoguide = 0, 0
	// The classifier's network has no score head: a preset's EDM
	// preconditioning does not apply (-precond edm with it is refused).
	c.Model.Precond, c.Model.SigmaData = "", 0
	// Nor do its log-normal σ's (they go with EDM's loss): the classifier
	// draws t as its process does.
	c.DropLogNormal()
	return nil
}

// DefaultDataDir is where a dataset's files go without -data-dir:
// data/NAME, and for a folder of images its decoded cache's folder.
func DefaultDataDir(dataset string) string {
	if _, ok := data.IsFolder(dataset); ok {
		return data.DefaultCacheDir
	}
	return "data/" + dataset
}

// UseSDE switches c to the named diffusion process with its default
// parameters: for "ve" σ from 0.01 to 25 (above the largest pairwise distance
// of MNIST and Fashion-MNIST, NCSNv2's technique 1) or 50 for CIFAR-10 (as
// score_sde), for "vp" and "subvp" β from 0.1 to 20; each with score_sde's
// plain F/σ network. "ncsn" keeps the preset's ladder and network. A
// preset's log-normal σ's and its named sampler (the edm preset's) give way
// to the process's defaults.
func (c *Config) UseSDE(name string) error {
	spec, err := sde.Default(name)
	if err != nil {
		return fmt.Errorf("%w: -sde: %v", ErrConfig, err)
	}
	// A preset's σ distribution and named sampler go with its process (the
	// edm preset's log-normal VE and Heun sampler): -sde gives them up.
	if c.SampleSampler != "" {
		c.SampleSampler, c.SampleSteps, c.SampleChurn, c.SampleAutoguide = "", 0, 0, 0
	}
	c.DropLogNormal()
	c.SDE = name
	switch name {
	case "ve":
		c.SigmaMax, c.SigmaMin = spec.SigmaMax, spec.SigmaMin
		if c.Dataset == "cifar10" {
			c.SigmaMax = 50
		}
		// A folder's σ_max comes from its images (NCSNv2's technique 1,
		// SigmasFromData, set by its preset).
	case "vp", "subvp":
		c.BetaMin, c.BetaMax = spec.BetaMin, spec.BetaMax
		c.SigmasFromData = false
	}
	if name == "ve" || name == "vp" || name == "subvp" {
		// The continuous-time processes train score_sde's F/σ network unless
		// -precond edm asks otherwise (it suits ve, x̃ = x + σz; vp and subvp
		// scale the image and refuse it): a preset's EDM gives way.
		c.Model.Precond, c.Model.SigmaData = "", 0
	}
	return nil
}

// Process returns the diffusion process c trains on (for "ncsn", sigmas are
// its levels).
func (c Config) Process(sigmas []float64) (sde.Process, error) {
	var spec sde.Spec
	switch c.SDE {
	case "", "ncsn":
		spec = sde.Spec{Name: "ncsn", Sigmas: sigmas}
	case "ve":
		spec = sde.Spec{Name: "ve", SigmaMin: c.SigmaMin, SigmaMax: c.SigmaMax}
	default:
		spec = sde.Spec{Name: c.SDE, BetaMin: c.BetaMin, BetaMax: c.BetaMax}
	}
	p, err := sde.New(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return p, nil
}

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	switch {
	case c.Steps < 1:
		return fmt.Errorf("%w: -steps %d must be positive", ErrConfig, c.Steps)
	case c.Batch < 1:
		return fmt.Errorf("%w: -batch %d must be positive", ErrConfig, c.Batch)
	case c.SaveEvery < 1:
		return fmt.Errorf("%w: -save-every %d must be positive", ErrConfig, c.SaveEvery)
	case !(c.LR > 0 && !math.IsInf(c.LR, 0)):
		return fmt.Errorf("%w: -lr %g must be a positive finite learning rate", ErrConfig, c.LR)
	case c.Keep < 0:
		return fmt.Errorf("%w: -keep %d must be ≥ 0 (0 keeps every checkpoint)", ErrConfig, c.Keep)
	case (c.SDE == "" || c.SDE == "ncsn") && !(c.SigmaMax > c.SigmaMin && c.SigmaMin > 0 && c.SigmaMax <= MaxSigma):
		return fmt.Errorf("%w: -sigma-max %g must be above σ_L = %g and at most %g (images are in [0, 1])", ErrConfig, c.SigmaMax, c.SigmaMin, float64(MaxSigma))
	case c.SDE == "ve" && !(c.SigmaMax > c.SigmaMin && c.SigmaMin > 0 && c.SigmaMax <= MaxSigma):
		return fmt.Errorf("%w: -sigma-max %g must be above the VE process's σ_min = %g and at most %g (images are in [0, 1])", ErrConfig, c.SigmaMax, c.SigmaMin, float64(MaxSigma))
	case (c.SDE == "" || c.SDE == "ncsn") && (c.Levels < 2 || c.Levels > sde.MaxLevels):
		return fmt.Errorf("%w: -levels %d must be from 2 to %d", ErrConfig, c.Levels, sde.MaxLevels)
	case !(c.EMADecay >= 0 && c.EMADecay < 1):
		return fmt.Errorf("%w: -ema %g must be in [0,1)", ErrConfig, c.EMADecay)
	case c.LRWarmup < 0:
		return fmt.Errorf("%w: -lr-warmup %d must be ≥ 0", ErrConfig, c.LRWarmup)
	case c.LRWarmup >= c.Steps && c.LRWarmup > 0:
		return fmt.Errorf("%w: -lr-warmup %d must be shorter than the run's -steps %d (the learning rate would never reach -lr)", ErrConfig, c.LRWarmup, c.Steps)
	case c.LRDecay != "" && !slices.Contains(optim.Schedules, c.LRDecay):
		return fmt.Errorf("%w: unknown -lr-decay %q (%s)", ErrConfig, c.LRDecay, strings.Join(optim.Schedules, " or "))
	case !(c.MaxGradNorm >= 0) || math.IsInf(c.MaxGradNorm, 0):
		return fmt.Errorf("%w: -max-grad-norm %g must be a finite number ≥ 0 (0: no clipping)", ErrConfig, c.MaxGradNorm)
	case c.CkptDir == "":
		return fmt.Errorf("%w: empty -ckpt-dir", ErrConfig)
	case ckptInFolder(c):
		path, _ := data.IsFolder(c.Dataset)
		return fmt.Errorf("%w: -ckpt-dir %s is inside the image folder %s, where nothing is written; give one outside it (a run kept there: move its folder out, and give that)", ErrConfig, c.CkptDir, path)
	case c.Wipe && !c.Fresh:
		return fmt.Errorf("%w: -wipe only goes with -fresh", ErrConfig)
	case c.Fresh && c.Resume != "":
		return fmt.Errorf("%w: -fresh and -resume contradict each other", ErrConfig)
	case c.Device != "cpu" && badDevice(c.Device) != nil: // (a cheap parse, done twice)
		return fmt.Errorf("%w: %w", ErrConfig, badDevice(c.Device))
	case c.Device != "" && c.Device != "cpu" && !cuda.Built:
		return fmt.Errorf("%w: -device %s: %v; build with -tags gpu (go run -tags gpu ./cmd/train ...)", ErrConfig, c.Device, cuda.ErrNotBuilt)
	case c.Classifier != c.Model.IsClassifier():
		return fmt.Errorf("%w: a classifier run needs a network with classes (UseClassifier)", ErrConfig)
	case !slices.Contains([]string{"", "ncsn", "ve", "vp", "subvp"}, c.SDE):
		// Before the combinations below (with EDM's preconditioning it
		// said "-sde bogus scales the image").
		return fmt.Errorf("%w: -sde %q: unknown process (ncsn, ve, vp or subvp)", ErrConfig, c.SDE)
	case c.SigmasFromData && c.SDE != "" && c.SDE != "ncsn" && c.SDE != "ve":
		return fmt.Errorf("%w: -sigmas-from-data chooses NCSN's ladder or VE's σ_max; it does not go with -sde %s", ErrConfig, c.SDE)
	case c.Model.Precond == model.PrecondEDM && c.Classifier:
		return fmt.Errorf("%w: -precond edm is for score models, not the classifier", ErrConfig)
	case c.Model.Precond == model.PrecondEDM && c.SDE != "" && c.SDE != "ncsn" && c.SDE != "ve":
		return fmt.Errorf("%w: -precond edm needs -sde ncsn or ve (x̃ = x + σz); -sde %s scales the image", ErrConfig, c.SDE)
	case c.Model.Precond == model.PrecondEDM && (c.Model.SigmaData < 0 || math.IsNaN(c.Model.SigmaData) || math.IsInf(c.Model.SigmaData, 0)):
		return fmt.Errorf("%w: -sigma-data %g must be a positive finite number (0: from the data)", ErrConfig, c.Model.SigmaData)
	case c.Model.Precond != model.PrecondEDM && c.Model.SigmaData != 0:
		return fmt.Errorf("%w: -sigma-data goes with -precond edm", ErrConfig)
	case c.SigmaDist != "" && c.SigmaDist != SigmaDistLogNormal:
		return fmt.Errorf("%w: unknown -sigma-dist %q (uniform, or lognormal)", ErrConfig, c.SigmaDist)
	case c.SigmaDist == SigmaDistLogNormal && (c.SDE != "ve" || c.Model.Precond != model.PrecondEDM):
		return fmt.Errorf("%w: -sigma-dist lognormal is EDM's: it needs -sde ve and -precond edm", ErrConfig)
	case c.SigmaDist != SigmaDistLogNormal && (c.PMean != 0 || c.PStd != 0):
		return fmt.Errorf("%w: -p-mean and -p-std shape the log-normal σ's; they go with -sigma-dist lognormal", ErrConfig)
	case math.IsNaN(c.PMean) || math.IsInf(c.PMean, 0) || math.Abs(c.PMean) > 10:
		return fmt.Errorf("%w: -p-mean %g must be a number in [−10, 10] (EDM's: −1.2)", ErrConfig, c.PMean)
	case c.PStd < 0 || math.IsNaN(c.PStd) || c.PStd > 10 || c.PMean != 0 && c.PStd == 0:
		return fmt.Errorf("%w: -p-std %g must be in (0, 10] (EDM's: 1.2)", ErrConfig, c.PStd)
	case !(c.GuideAt >= 0 && c.GuideAt < 1):
		return fmt.Errorf("%w: -guide-at %g must be a fraction of -steps in (0, 1), or 0 for no guide", ErrConfig, c.GuideAt)
	case c.GuideAt > 0 && c.Classifier:
		return fmt.Errorf("%w: -guide-at keeps a score model's guide; a classifier has none", ErrConfig)
	case c.SampleSampler != "" && !slices.Contains(checkpoint.Samplers, c.SampleSampler):
		// Checked before the run: the first save refused it, and the
		// steps before it were lost.
		return fmt.Errorf("%w: recommended sampler %q: not one of %s", ErrConfig, c.SampleSampler, strings.Join(checkpoint.Samplers, ", "))
	case c.SampleSteps < 0 || c.SampleSteps > checkpoint.MaxSampleSteps:
		return fmt.Errorf("%w: recommended sampling steps %d must be from 0 (the sampler's default) to %d", ErrConfig, c.SampleSteps, checkpoint.MaxSampleSteps)
	case !(c.SampleEps >= 0) || math.IsInf(c.SampleEps, 0) || !(c.SampleChurn >= 0) || math.IsInf(c.SampleChurn, 0):
		return fmt.Errorf("%w: recommended sampling ε %g and S_churn %g must be finite numbers ≥ 0", ErrConfig, c.SampleEps, c.SampleChurn)
	case c.SampleAutoguide != 0 && (c.GuideAt == 0 || !(c.SampleAutoguide >= 1 && c.SampleAutoguide <= 100)):
		return fmt.Errorf("%w: recommended autoguidance weight %g needs a guide (-guide-at) and a weight from 1 to 100", ErrConfig, c.SampleAutoguide)
	}
	if c.SDE != "" && c.SDE != "ncsn" {
		if _, err := c.Process(nil); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	m := c.Model
	if m.Precond == model.PrecondEDM && m.SigmaData == 0 {
		m.SigmaData = 1 // chosen from the training set when the run starts
	}
	if err := m.Validate(); err != nil {
		// Named by the flags that shape the network (the error said
		// "cannot be halved 5 times" of -mult's six levels).
		mult := strings.Trim(strings.ReplaceAll(fmt.Sprint(m.Mult), " ", ","), "[]")
		return fmt.Errorf("%w: %w (-base %d -mult %s)", ErrConfig, err, m.Base, mult)
	}
	return nil
}

// badDevice says what is wrong with a -device that is not "cpu" (nil: "",
// "cuda" or "cuda:N").
func badDevice(name string) error {
	_, err := cuda.ParseDevice(name)
	return err
}

// ckptInFolder reports whether a folder dataset's run would write its
// checkpoints into the image folder.
func ckptInFolder(c Config) bool {
	path, ok := data.IsFolder(c.Dataset)
	return ok && path != "" && data.Within(path, c.CkptDir)
}
