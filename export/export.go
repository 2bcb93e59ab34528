// Package export carries a model's weights across to PyTorch and back as a
// safetensors file (package safetensors) under the state_dict names and
// layouts of the reference network ../shared/bench/torch_ref.py (ScoreNet):
// Export writes a checkpoint's EMA (or raw) weights with the model
// configuration, the diffusion process and the noise levels in the file's
// metadata; Import turns such a file, or one PyTorch wrote for that
// network, into a checkpoint that cmd/sample draws from and cmd/train can
// resume from (with a fresh optimiser: the file holds no Adam state). A
// checkpoint's own autoguidance guide (checkpoint.State.Guide) and the
// autoguidance it recommends stay behind.
//
// scripts/torch_safetensors.py reads the files on the Python side.
package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/generate"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/safetensors"
	"github.com/ncsn-go/ncsn/sde"
	"github.com/ncsn-go/ncsn/train"
)

// ErrConfig is wrapped by errors in what the user asked for.
var ErrConfig = errors.New("export: bad config")

// ErrMismatch is wrapped by errors where a file's tensors do not match the
// network they are meant for: a missing, extra or misshapen tensor.
var ErrMismatch = errors.New("export: weights do not match the network")

// ErrUnsupported is wrapped when the reference network has no place for
// the model: EDM's preconditioning, or GroupNorm groups it counts otherwise.
var ErrUnsupported = errors.New("export: the reference network cannot hold this model")

// Metadata keys of the files Export writes. Values are strings (JSON where
// structured), as the format requires.
const (
	MetaTorch   = "torch_ref"     // ScoreNet's constructor arguments: {"C":…,"base":…,"mult":[…],"emb":…}
	MetaModel   = "ncsn.model"    // model.Config
	MetaProcess = "ncsn.process"  // sde.Spec
	MetaSigmas  = "ncsn.sigmas"   // NCSN's noise levels, largest first
	MetaDataset = "ncsn.dataset"  // dataset name
	MetaStep    = "ncsn.step"     // training step of the weights
	MetaWeights = "ncsn.weights"  // "ema" or "raw"
	MetaTrain   = "ncsn.train"    // the training configuration
	MetaSample  = "ncsn.sampling" // sampling: the checkpoint's sampling defaults
)

// Config is one export or import.
type Config struct {
	// Ckpt is a checkpoint file or folder (its latest) to export; Out the
	// safetensors file to write. Weights is "ema" (default) or "raw".
	Ckpt, Out, Weights string
	// Import is a safetensors file to import into the checkpoint folder
	// OutDir. ModelConfig, if set, is a JSON file of the model configuration
	// (model.Config) for files without our metadata; otherwise the
	// architecture is read from the tensors' shapes and the image size from
	// Dataset's. Dataset and SDE name the data and process for such files
	// (default mnist, ncsn).
	Import, OutDir, ModelConfig, Dataset, SDE string
	// Force allows overwriting an existing -out file.
	Force bool
	Log   io.Writer
}

// Export writes c.Ckpt's weights to c.Out.
func Export(c Config) error {
	if c.Log == nil {
		c.Log = io.Discard
	}
	switch c.Weights {
	case "":
		c.Weights = "ema"
	case "ema", "raw":
	default:
		return fmt.Errorf("%w: -weights %q must be ema or raw", ErrConfig, c.Weights)
	}
	if c.Out == "" {
		return fmt.Errorf("%w: -out is needed (the safetensors file to write)", ErrConfig)
	}
	if c.Ckpt == "" {
		return fmt.Errorf("%w: -ckpt is empty; give a checkpoint file or a run's folder", ErrConfig)
	}
	if strings.HasSuffix(c.Out, "/") || strings.HasSuffix(c.Out, string(filepath.Separator)) {
		// It made the folder, then failed renaming the file onto it.
		return fmt.Errorf("%w: -out %s names a folder; give a file name (like %s)", ErrConfig, c.Out, filepath.Join(c.Out, "model.safetensors"))
	}
	if checkpoint.IsRunFileName(filepath.Base(c.Out)) {
		// In a run's folder every command took it for the run's own (its
		// newest checkpoint, latest, its log), and failed on it.
		return fmt.Errorf("%w: -out %s is named as a run's own file (a checkpoint, latest, lock or train.csv); give the safetensors file another name (like model.safetensors)", ErrConfig, c.Out)
	}
	if err := noClobber(c.Out, c.Force); err != nil {
		return err
	}
	st, path, err := checkpoint.LoadFrom(c.Ckpt)
	if err != nil {
		return err
	}
	weights := st.EMA
	if c.Weights == "raw" {
		weights = st.Weights
	}
	f, err := ToFile(st, weights)
	if err != nil {
		return err
	}
	f.Metadata[MetaWeights] = c.Weights
	if err := fsutil.WriteAtomic(c.Out, func(w io.Writer) error { return safetensors.Encode(w, f) }); err != nil {
		return fmt.Errorf("export: writing %s: %w", c.Out, err)
	}
	fmt.Fprintf(c.Log, "wrote %s: %d tensors, %d values (%s weights of %s, step %d)\n", c.Out, len(f.Tensors), weights.Count(), c.Weights, path, st.Step)
	if st.Guide != nil {
		rec := "no sampler (cmd/sample takes the process's default)"
		if u := unguided(st); u.Sampler != "" {
			rec = fmt.Sprintf("%s at %d steps, S_churn %g, unguided", u.Sampler, u.Steps, u.Churn)
		}
		fmt.Fprintf(c.Log, "note: the guide (the EMA of step %d, for autoguidance) is not exported; the file recommends %s\n", st.GuideStep, rec)
	}
	return nil
}

// noClobber refuses an -out that exists, but for an earlier safetensors
// file with force: a checkpoint, a run's latest or train.csv, or anything
// else, is never replaced.
func noClobber(path string, force bool) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return nil
	case fi.IsDir():
		return fmt.Errorf("%w: -out %s is a folder; give a file name", ErrConfig, path)
	case !fi.Mode().IsRegular() || !safetensors.Looks(path):
		return fmt.Errorf("%w: -out %s exists and is not a safetensors file: not replaced, -force or not (remove it, or give another name)", ErrConfig, path)
	case !force:
		return fmt.Errorf("%w: %s exists; choose another -out, or -force to replace it", ErrConfig, path)
	}
	return nil
}

// ToFile lays out weights (of st's model) under the reference network's
// names, with st's configuration in the metadata.
func ToFile(st *checkpoint.State, weights model.Params) (*safetensors.File, error) {
	if st == nil {
		return nil, errors.New("export: no checkpoint state")
	}
	names, err := model.TorchNames(st.Model)
	if err != nil {
		return nil, err
	}
	if st.Model.Precond != model.PrecondNCSNv2 {
		return nil, fmt.Errorf("%w: it computes s = F/σ, and this model's score has %s preconditioning (train with -precond ncsnv2 for a model to export)", ErrUnsupported, st.Model.Precond)
	}
	if c, ok := model.TorchGroupsDiffer(st.Model); ok {
		return nil, fmt.Errorf("%w: its GroupNorm takes min(8, C) groups, which does not divide C = %d (base %d, mult %v)",
			ErrUnsupported, c, st.Model.Base, st.Model.Mult)
	}
	if len(names) != len(weights) {
		return nil, fmt.Errorf("%w: %d tensors, the architecture has %d", ErrMismatch, len(weights), len(names))
	}
	f := &safetensors.File{Metadata: map[string]string{"format": "pt"}}
	for i, n := range names {
		p := weights[i]
		t := safetensors.Tensor{Name: n.Key, Shape: p.Shape, Data: p.Data}
		if n.Transposed {
			t.Shape, t.Data = []int{p.Shape[1], p.Shape[0]}, transpose(p.Data, p.Shape[0], p.Shape[1])
		}
		f.Tensors = append(f.Tensors, t)
	}
	m := st.Model
	meta := map[string]any{
		MetaTorch:   map[string]any{"C": m.Channels, "base": m.Base, "mult": m.Mult, "emb": m.EmbDim},
		MetaModel:   m,
		MetaProcess: st.Process,
		MetaSigmas:  st.Sigmas,
		MetaSample:  unguided(st),
	}
	for k, v := range meta {
		js, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		f.Metadata[k] = string(js)
	}
	f.Metadata[MetaDataset] = st.Dataset
	f.Metadata[MetaStep] = strconv.Itoa(st.Step)
	if len(st.Train) > 0 {
		f.Metadata[MetaTrain] = string(st.Train)
	}
	return f, nil
}

// unguided is st's recommended sampling without its guide, which the file
// does not carry (checkpoint.State.DropGuide).
func unguided(st *checkpoint.State) sampling {
	s := *st
	s.DropGuide()
	return sampling{Eps: s.SampleEps, Steps: s.SampleSteps, Sampler: s.SampleSampler, Churn: s.SampleChurn}
}

// transpose returns the (c, r) transpose of an (r, c) row-major matrix.
func transpose(a []float32, r, c int) []float32 {
	out := make([]float32, len(a))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out[j*r+i] = a[i*c+j]
		}
	}
	return out
}

// Import writes c.Import's weights as a checkpoint in c.OutDir and returns
// its path.
func Import(c Config) (_ string, err error) {
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.OutDir == "" {
		return "", fmt.Errorf("%w: -out is needed (the checkpoint folder to write)", ErrConfig)
	}
	if fi, err := os.Stat(c.Import); err == nil && fi.IsDir() {
		return "", fmt.Errorf("%w: -import %s is a folder; give the .safetensors file", ErrConfig, c.Import)
	}
	in, err := fsutil.OpenRegular(c.Import)
	if err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	f, err := safetensors.Decode(in)
	in.Close()
	if err != nil && fsutil.HasMagic(c.Import, checkpoint.Magic) {
		return "", fmt.Errorf("%w: -import %s is one of our checkpoints already, not a safetensors file: give it to -ckpt or -resume as it is", ErrConfig, c.Import)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.Import, err)
	}
	st, err := FromFile(f, c)
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.Import, err)
	}
	_, statErr := os.Stat(c.OutDir)
	// NewDir: a stop signal's RemoveOwnTemps removes the folder it made,
	// and the lock in it, as the deferred removal below does for a failure
	// (Ctrl-C mid-save left the folder holding its lock).
	dropMade, err := fsutil.NewDir(c.OutDir, checkpoint.LockName)
	if err != nil {
		return "", fmt.Errorf("export: -out %s: %w", c.OutDir, err)
	}
	defer dropMade() // last: it keeps a folder that holds the import, and removes the parents it made
	// A trainer's folder is its own while it runs, checkpoint or not.
	lock, err := fsutil.TryLock(filepath.Join(c.OutDir, checkpoint.LockName))
	if le := (*fsutil.LockedError)(nil); errors.As(err, &le) {
		return "", fmt.Errorf("%w: %s is in use by another process (%s): a trainer, or another import; import into another folder", ErrConfig, c.OutDir, le.Holder)
	} else if err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	defer lock.Unlock()
	if errors.Is(statErr, os.ErrNotExist) {
		// A failed import leaves no folder it made: with the lock held, the
		// folder is this process's alone (this runs before the unlock).
		defer func() {
			if err != nil {
				os.Remove(filepath.Join(c.OutDir, checkpoint.LockName))
				os.Remove(c.OutDir)
			}
		}()
	}
	if existing, _ := checkpoint.List(c.OutDir); len(existing) > 0 {
		return "", fmt.Errorf("%w: %s already holds checkpoints (%s); import into an empty folder", ErrConfig, c.OutDir, filepath.Base(existing[len(existing)-1]))
	}
	// Another run's log: a run resumed from the import would cut it down to
	// the imported step, and then add its own rows to the other run's.
	if _, err := os.Lstat(filepath.Join(c.OutDir, checkpoint.LogName)); err == nil {
		return "", fmt.Errorf("%w: %s holds another run's training log (%s); import into an empty folder, or move the log away", ErrConfig, c.OutDir, checkpoint.LogName)
	}
	// The folder has no checkpoint: a latest there is not one's pointer (a
	// user's file, or a run's left after its checkpoints were removed), and
	// Save would replace it.
	if _, err := os.Lstat(filepath.Join(c.OutDir, "latest")); err == nil {
		return "", fmt.Errorf("%w: %s holds a file latest but no checkpoint; import into an empty folder, or move it away", ErrConfig, c.OutDir)
	}
	path, err := checkpoint.Save(c.OutDir, st)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(c.Log, "wrote %s: %s model, %d weights, step %d; it holds no optimiser state: training resumed from it starts a fresh Adam (moments zero) from step %d\n",
		path, st.Dataset, st.Weights.Count(), st.Step, st.Step)
	return path, nil
}

// The noise ladder of ../shared/bench/torch_ref.py's trainer (its --s1,
// --sL and --L defaults): an imported file without our metadata was trained
// on it.
const (
	refSigmaMax = 1.0
	refSigmaMin = 0.01
	refLevels   = 10
)

// FromFile builds a checkpoint state from a safetensors file: the model
// configuration, process and noise levels from its metadata where present
// (else from c), the weights by the reference network's names. Weights and
// EMA are both the file's tensors; the optimiser state is empty.
func FromFile(f *safetensors.File, c Config) (*checkpoint.State, error) {
	meta := f.Metadata
	for _, o := range []struct{ flag, given, key string }{
		{"-dataset", c.Dataset, MetaDataset}, {"-sde", c.SDE, MetaProcess}, {"-config", c.ModelConfig, MetaModel},
	} {
		if o.given != "" && meta[o.key] != "" {
			return nil, fmt.Errorf("%w: %s %s: the file's metadata gives it (%s); the flag is for files without", ErrConfig, o.flag, o.given, o.key)
		}
	}
	st := &checkpoint.State{Dataset: meta[MetaDataset]}
	if st.Dataset == "" {
		st.Dataset = c.Dataset
	}
	if st.Dataset == "" {
		st.Dataset = "mnist"
	}
	tc, err := train.Preset("default", st.Dataset)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	// A file without our metadata is the reference's: its network has the
	// plain F/σ head and its trainer NCSN's ladder σ₁ = 1, σ_L = 0.01, L = 10
	// (torch_ref.py's defaults), whatever our preset trains.
	tc.Model.Precond, tc.Model.SigmaData = "", 0
	tc.SigmaMax, tc.SigmaMin, tc.Levels = refSigmaMax, refSigmaMin, refLevels
	switch {
	case c.ModelConfig != "":
		b, err := fsutil.ReadRegular(c.ModelConfig)
		if err != nil {
			return nil, fmt.Errorf("export: -config: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields() // a misspelt key was dropped, leaving "image shape 0×0×0"
		if err := dec.Decode(&st.Model); err != nil {
			return nil, fmt.Errorf("%w: -config %s: %v (the keys are model.Config's: channels, height, width, base, mult, emb_dim, fourier_scale)", ErrConfig, c.ModelConfig, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%w: -config %s: more after the configuration's JSON object", ErrConfig, c.ModelConfig)
		}
		// A file without metadata is the reference's network, which has
		// neither EDM's preconditioning nor a classifier's head (an edm
		// -config made other scores from the same weights).
		if st.Model.Precond != "" || st.Model.SigmaData != 0 || st.Model.Classes != 0 {
			return nil, fmt.Errorf("%w: -config %s: precond, sigma_data and classes describe networks the PyTorch reference cannot hold (its head is F/σ)", ErrConfig, c.ModelConfig)
		}
	case meta[MetaModel] != "":
		if err := json.Unmarshal([]byte(meta[MetaModel]), &st.Model); err != nil {
			return nil, fmt.Errorf("%w: metadata %s: %v", ErrMismatch, MetaModel, err)
		}
	default:
		if st.Model, err = inferModel(f, tc.Model); err != nil {
			return nil, err
		}
	}
	// The channels first: a CIFAR-10 file imported as MNIST's failed as
	// "28×28 images cannot be halved 3 times".
	if _, folder := data.IsFolder(st.Dataset); !folder && st.Model.Channels > 0 && st.Model.Channels != tc.Model.Channels {
		hint := ""
		if meta[MetaDataset] == "" && c.Dataset == "" {
			hint = " (give -dataset: cifar10 for 3 channels, mnist or fashion for 1)"
		}
		return nil, fmt.Errorf("%w: the network takes %d channel(s) and %s has %d%s", ErrMismatch, st.Model.Channels, st.Dataset, tc.Model.Channels, hint)
	}
	if err := st.Model.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMismatch, err)
	}
	if _, folder := data.IsFolder(st.Dataset); !folder && (st.Model.Height != tc.Model.Height || st.Model.Width != tc.Model.Width) {
		// A 32×32 -config with MNIST drew 32×32 "MNIST" images, and its
		// training was refused only later.
		return nil, fmt.Errorf("%w: the network takes %d×%d images and %s's are %d×%d", ErrMismatch, st.Model.Height, st.Model.Width, st.Dataset, tc.Model.Height, tc.Model.Width)
	}
	if js := meta[MetaProcess]; js != "" {
		if err := json.Unmarshal([]byte(js), &st.Process); err != nil {
			return nil, fmt.Errorf("%w: metadata %s: %v", ErrMismatch, MetaProcess, err)
		}
		if js := meta[MetaSigmas]; js != "" {
			if err := json.Unmarshal([]byte(js), &st.Sigmas); err != nil {
				return nil, fmt.Errorf("%w: metadata %s: %v", ErrMismatch, MetaSigmas, err)
			}
			// Checked here, naming the key: such a ladder was imported and
			// refused only by the samplers, or as a "corrupt" checkpoint.
			if err := checkpoint.CheckLadder(st.Sigmas, &st.Process); err != nil {
				return nil, fmt.Errorf("%w: metadata %s: %v", ErrMismatch, MetaSigmas, err)
			}
		}
		// The training config made below where the file has none follows
		// the file's process (it was the preset's, log-normal VE, which a
		// resume then refused, or trained on the wrong process).
		if err := tc.UseSDE(st.Process.Name); err != nil {
			return nil, fmt.Errorf("%w: metadata %s: %v", ErrMismatch, MetaProcess, err)
		}
		switch p := st.Process; p.Name {
		case "ve":
			tc.SigmaMax, tc.SigmaMin = p.SigmaMax, p.SigmaMin
		case "vp", "subvp":
			tc.BetaMin, tc.BetaMax = p.BetaMin, p.BetaMax
		case "ncsn":
			s := st.Sigmas
			if len(s) == 0 {
				s = p.Sigmas
			}
			if len(s) >= 2 {
				tc.SigmaMax, tc.SigmaMin, tc.Levels = s[0], s[len(s)-1], len(s)
			}
		}
	} else {
		name := c.SDE
		if name == "" {
			name = "ncsn"
		}
		if err := tc.UseSDE(name); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		if name == "ve" {
			// The reference was trained at σ 1 → 0.01: VE's own default
			// (σ_max 25, 50 for CIFAR-10) started the samplers at noise
			// the network never saw.
			tc.SigmaMax, tc.SigmaMin = refSigmaMax, refSigmaMin
		}
		if name == "ncsn" {
			if st.Sigmas, err = sde.Geometric(tc.SigmaMax, tc.SigmaMin, tc.Levels); err != nil {
				return nil, err
			}
		}
		p, err := tc.Process(st.Sigmas)
		if err != nil {
			return nil, err
		}
		st.Process = p.Spec()
	}
	if _, err := sde.New(st.Process); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMismatch, err)
	}
	if st.Process.Name == "ncsn" && st.Sigmas == nil {
		st.Sigmas = st.Process.Sigmas
	}
	if js := meta[MetaSample]; js != "" {
		var s sampling
		if err := json.Unmarshal([]byte(js), &s); err != nil {
			return nil, fmt.Errorf("%w: metadata %s: %v", ErrMismatch, MetaSample, err)
		}
		if !(s.Churn >= 0) || math.IsInf(s.Churn, 0) || !(s.Eps >= 0) || math.IsInf(s.Eps, 0) || s.Steps < 0 || s.Steps > checkpoint.MaxSampleSteps ||
			(s.Sampler != "" && !slices.Contains(generate.Samplers, s.Sampler)) {
			return nil, fmt.Errorf("%w: metadata %s: sampler %q, %d steps, churn %g, ε %g (samplers: %s; the numbers finite, ≥ 0; steps at most %d)",
				ErrMismatch, MetaSample, s.Sampler, s.Steps, s.Churn, s.Eps, strings.Join(generate.Samplers, ", "), checkpoint.MaxSampleSteps)
		}
		st.SampleEps, st.SampleSteps, st.SampleSampler, st.SampleChurn = s.Eps, s.Steps, s.Sampler, s.Churn
	}
	if s := meta[MetaStep]; s != "" {
		if st.Step, err = strconv.Atoi(s); err != nil || st.Step < 0 {
			return nil, fmt.Errorf("%w: metadata %s = %q", ErrMismatch, MetaStep, s)
		}
	}
	if js := meta[MetaTrain]; js != "" {
		// Read as a resume reads it, so that one that is not a training
		// config fails here, naming the file; its values are checked when
		// the imported checkpoint is resumed (train refuses a bad plan).
		var saved train.Config
		if err := json.Unmarshal([]byte(js), &saved); err != nil {
			return nil, fmt.Errorf("%w: metadata %s: %v", ErrMismatch, MetaTrain, err)
		}
		st.Train = json.RawMessage(js)
	} else {
		tc.Model = st.Model
		tc.Preset = "imported"
		if st.Train, err = json.Marshal(tc); err != nil {
			return nil, err
		}
	}
	var seed struct {
		Seed uint64 `json:"seed"`
	}
	json.Unmarshal(st.Train, &seed)
	if st.RNG, err = rand.NewPCG(seed.Seed, 0x6e63736e).MarshalBinary(); err != nil {
		return nil, err
	}
	if st.Weights, err = weightsFrom(f, st.Model); err != nil {
		return nil, err
	}
	st.EMA = st.Weights.Clone()
	for _, p := range st.Weights {
		st.M = append(st.M, make([]float32, len(p.Data)))
		st.V = append(st.V, make([]float32, len(p.Data)))
	}
	return st, nil
}

// weightsFrom reads every parameter of cfg from f by its PyTorch name; a
// missing, extra or misshapen tensor is an error naming it.
func weightsFrom(f *safetensors.File, cfg model.Config) (model.Params, error) {
	names, err := model.TorchNames(cfg)
	if err != nil {
		return nil, err
	}
	// Every name and shape is checked before the network's values are
	// allocated: a configuration (from the file's metadata, -config, or
	// tensors of no bytes) may ask for far more than the file holds, and
	// ran out of memory.
	shapes, err := model.Shapes(cfg)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	tensors := make([]*safetensors.Tensor, len(names))
	for i, n := range names {
		t, ok := f.Get(n.Key)
		if !ok {
			return nil, fmt.Errorf("%w: tensor %s (our %s) is missing", ErrMismatch, n.Key, n.Name)
		}
		used[n.Key] = true
		want := shapes[i].Shape
		if n.Transposed {
			want = []int{want[1], want[0]}
		}
		if !sameShape(t.Shape, want) {
			return nil, fmt.Errorf("%w: tensor %s is %v, the network (base %d, mult %v, emb %d, %d channels) wants %v",
				ErrMismatch, n.Key, t.Shape, cfg.Base, cfg.Mult, cfg.EmbDim, cfg.Channels, want)
		}
		tensors[i] = t
	}
	for _, t := range f.Tensors {
		if !used[t.Name] {
			return nil, fmt.Errorf("%w: tensor %s %v is not part of the network", ErrMismatch, t.Name, t.Shape)
		}
	}
	ps, err := model.Layout(cfg)
	if err != nil {
		return nil, err
	}
	for i, n := range names {
		p, t := ps[i], tensors[i]
		want := p.Shape
		if n.Transposed {
			want = []int{p.Shape[1], p.Shape[0]}
		}
		if len(t.Data) != len(p.Data) {
			return nil, fmt.Errorf("%w: tensor %s holds %d values, its shape %v needs %d", ErrMismatch, n.Key, len(t.Data), t.Shape, len(p.Data))
		}
		for j, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				// Named by the file's key (the checkpoint's refusal named
				// ours, out.c.b, at its save).
				return nil, fmt.Errorf("%w: tensor %s holds %g at index %d (NaN, infinite, or beyond float32's range in the file's %s)", ErrMismatch, n.Key, v, j, t.DType)
			}
		}
		if n.Transposed {
			copy(p.Data, transpose(t.Data, want[0], want[1]))
		} else {
			copy(p.Data, t.Data)
		}
		p.Fixed = n.Name == "emb.freq"
	}
	return ps, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// inferModel reads the architecture from the tensors' shapes: channels and
// base from inc.weight, the embedding from W, the channel multipliers from
// enc.i.c1.weight; the image size and Fourier scale come from def.
func inferModel(f *safetensors.File, def model.Config) (model.Config, error) {
	cfg := def
	inc, ok := f.Get("inc.weight")
	if !ok || len(inc.Shape) != 4 {
		return cfg, fmt.Errorf("%w: no 4-dimensional tensor inc.weight to read the architecture from (is this the reference ScoreNet's state_dict?)", ErrMismatch)
	}
	cfg.Base, cfg.Channels = inc.Shape[0], inc.Shape[1]
	w, ok := f.Get("W")
	if !ok || len(w.Shape) != 1 {
		return cfg, fmt.Errorf("%w: no 1-dimensional tensor W (the Fourier frequencies)", ErrMismatch)
	}
	cfg.EmbDim = 2 * w.Shape[0]
	cfg.Mult = nil
	for i := 0; ; i++ {
		t, ok := f.Get(fmt.Sprintf("enc.%d.c1.weight", i))
		if !ok {
			break
		}
		if len(t.Shape) != 4 || cfg.Base == 0 || t.Shape[0]%cfg.Base != 0 {
			return cfg, fmt.Errorf("%w: tensor enc.%d.c1.weight is %v, not a multiple of base %d channels", ErrMismatch, i, t.Shape, cfg.Base)
		}
		cfg.Mult = append(cfg.Mult, t.Shape[0]/cfg.Base)
	}
	if len(cfg.Mult) == 0 {
		return cfg, fmt.Errorf("%w: no encoder blocks (enc.0.c1.weight)", ErrMismatch)
	}
	return cfg, nil
}

// sampling is a checkpoint's recommended sampling (metadata MetaSample):
// annealed Langevin dynamics' ε and T, or a named sampler with its steps
// and S_churn.
type sampling struct {
	Eps     float64 `json:"eps"`
	Steps   int     `json:"steps"`
	Sampler string  `json:"sampler,omitempty"`
	Churn   float64 `json:"churn,omitempty"`
}
