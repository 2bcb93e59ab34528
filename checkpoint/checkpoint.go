// Package checkpoint saves and loads training state: one self-checking file
// per checkpoint (format version, configs, step, weights, EMA weights,
// optimizer moments, an earlier EMA kept as autoguidance's guide where the
// run keeps one, RNG state, SHA-256 of it all), written atomically, with a
// `latest` pointer beside it.
package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/safetensors"
	"github.com/ncsn-go/ncsn/sde"
)

// Version is the newest file format version this code writes and reads.
// Version 2 adds an embedded guide (State.Guide) after the tensors; a state
// without one is still written as version 1, which every earlier program
// reads.
const Version = 2

// versionNoGuide is the format of a state without a guide.
const versionNoGuide = 1

// Magic is the 8 bytes every checkpoint file begins with.
const Magic = "NCSNCKPT"

var magic = [8]byte([]byte(Magic))

// ErrCorrupt is wrapped by every error about an unreadable checkpoint.
var ErrCorrupt = errors.New("checkpoint: corrupt or truncated file")

// ErrMixed is returned by Latest when a folder has no `latest` and its
// newest checkpoint is not of the run of the one before it.
var ErrMixed = errors.New("checkpoint: checkpoints of two runs")

// ErrNone is returned by Latest when a folder holds no checkpoint.
var ErrNone = errors.New("checkpoint: no checkpoint")

// ErrNewer is wrapped when a file was written by a newer version of this
// program, in a format this one cannot read.
var ErrNewer = errors.New("checkpoint: written by a newer version of this program")

// ErrNonFinite is wrapped when a state to be saved holds NaN or Inf weights:
// such a state is never written, so it can never displace a good checkpoint.
var ErrNonFinite = errors.New("checkpoint: non-finite weights")

// State is everything a run needs to continue exactly where it stopped, and
// everything sampling needs.
type State struct {
	Model   model.Config
	Dataset string
	// Process is the diffusion process the model was trained on; Sigmas are
	// the noise levels of an NCSN ladder (files without a process hold one).
	Process sde.Spec
	Sigmas  []float64
	// Train is the training configuration, kept as JSON so this package does
	// not depend on the trainer.
	Train json.RawMessage
	// Sampling defaults recommended with this model ("" and 0: the
	// sampler's own): the sampler's name, its steps (annealed Langevin
	// dynamics: T per level; the continuous-time samplers: -steps), ALD's
	// step size ε and heun's S_churn.
	SampleSampler string
	SampleEps     float64
	SampleSteps   int
	SampleChurn   float64
	// SampleAutoguide is the recommended autoguidance weight w for the
	// checkpoint's own sampler, guided by Guide (0: none).
	SampleAutoguide float64
	Step            int
	// AdamT is the optimizer's step count; M and V its moments, in Params order.
	AdamT   int
	Weights model.Params
	EMA     model.Params
	M, V    [][]float32
	RNG     []byte // the PCG generator's state (MarshalBinary)
	// Arith names the arithmetic path that computed the state (convolution
	// kernels and BLAS): a resume is bit-exact only on the same path.
	Arith string
	// Guide is the EMA weights as they were at step GuideStep of this run,
	// kept for autoguidance (a less-trained version of the same network);
	// nil and 0 when the run keeps none.
	Guide     model.Params
	GuideStep int
}

type header struct {
	Model   model.Config    `json:"model"`
	Dataset string          `json:"dataset"`
	Process *sde.Spec       `json:"process,omitempty"`
	Sigmas  []float64       `json:"sigmas"`
	Train   json.RawMessage `json:"train"`
	Eps     float64         `json:"sample_eps,omitempty"`
	T       int             `json:"sample_steps,omitempty"`
	Sampler string          `json:"sample_sampler,omitempty"`
	Churn   float64         `json:"sample_churn,omitempty"`
	Guided  float64         `json:"sample_autoguide,omitempty"`
	Step    int             `json:"step"`
	AdamT   int             `json:"adam_t"`
	RNG     []byte          `json:"rng"`
	Arith   string          `json:"arith,omitempty"`
	// GuideStep > 0: the tensors are followed by the guide's (version 2).
	GuideStep int          `json:"guide_step,omitempty"`
	Tensors   []tensorInfo `json:"tensors"`
}

type tensorInfo struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

// checked returns s's header and format version, or what makes s
// unwritable: Encode and Save refuse it before writing anything.
func (s *State) checked() (header, uint32, error) {
	if s == nil {
		return header{}, 0, errors.New("checkpoint: no state to write")
	}
	if len(s.EMA) != len(s.Weights) || len(s.M) != len(s.Weights) || len(s.V) != len(s.Weights) {
		return header{}, 0, fmt.Errorf("checkpoint: %d weights, %d EMA, %d/%d moments", len(s.Weights), len(s.EMA), len(s.M), len(s.V))
	}
	for i, p := range s.Weights {
		for _, x := range [][]float32{s.EMA[i].Data, s.M[i], s.V[i]} {
			if len(x) != len(p.Data) {
				return header{}, 0, fmt.Errorf("checkpoint: tensor %s has parts of different sizes", p.Name)
			}
		}
		if k := firstNonFinite(p.Data); k >= 0 {
			return header{}, 0, fmt.Errorf("%w: %s[%d] = %g", ErrNonFinite, p.Name, k, p.Data[k])
		}
		if k := firstNonFinite(s.EMA[i].Data); k >= 0 {
			return header{}, 0, fmt.Errorf("%w: EMA %s[%d] = %g", ErrNonFinite, p.Name, k, s.EMA[i].Data[k])
		}
	}
	version := versionNoGuide
	if s.Guide != nil {
		if len(s.Guide) != len(s.Weights) || s.GuideStep <= 0 {
			return header{}, 0, fmt.Errorf("checkpoint: %d weights, %d guide tensors at step %d", len(s.Weights), len(s.Guide), s.GuideStep)
		}
		for i, p := range s.Guide {
			if len(p.Data) != len(s.Weights[i].Data) {
				return header{}, 0, fmt.Errorf("checkpoint: guide tensor %s has %d values, the weights %d", p.Name, len(p.Data), len(s.Weights[i].Data))
			}
			if k := firstNonFinite(p.Data); k >= 0 {
				return header{}, 0, fmt.Errorf("%w: guide %s[%d] = %g", ErrNonFinite, p.Name, k, p.Data[k])
			}
		}
		version = Version
	}
	h := header{Model: s.Model, Dataset: s.Dataset, Process: s.processSpec(), Sigmas: s.Sigmas, Train: s.Train, Eps: s.SampleEps, T: s.SampleSteps, Sampler: s.SampleSampler, Churn: s.SampleChurn, Guided: s.SampleAutoguide, Step: s.Step, AdamT: s.AdamT, RNG: s.RNG, Arith: s.Arith}
	if s.Guide != nil {
		h.GuideStep = s.GuideStep
	}
	// Never write what Decode would refuse.
	if err := h.check(); err != nil {
		// Not "corrupt or truncated file": nothing was read.
		return header{}, 0, fmt.Errorf("checkpoint: refusing to write an unreadable state: %s", strings.TrimPrefix(err.Error(), ErrCorrupt.Error()+": "))
	}
	for _, p := range s.Weights {
		h.Tensors = append(h.Tensors, tensorInfo{p.Name, p.Shape})
	}
	return h, uint32(version), nil
}

// Encode writes s in the checkpoint format.
func Encode(w io.Writer, s *State) error {
	h, version, err := s.checked()
	if err != nil {
		return err
	}
	js, err := json.Marshal(h)
	if err != nil {
		return err
	}
	sum := sha256.New()
	mw := io.MultiWriter(w, sum)
	var pre bytes.Buffer
	pre.Write(magic[:])
	binary.Write(&pre, binary.LittleEndian, version)
	binary.Write(&pre, binary.LittleEndian, uint64(len(js)))
	pre.Write(js)
	if _, err := mw.Write(pre.Bytes()); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	put := func(x []float32) error {
		for len(x) > 0 {
			n := min(len(x), cap(buf)/4)
			buf = buf[:4*n]
			for i, v := range x[:n] {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			if _, err := mw.Write(buf); err != nil {
				return err
			}
			x = x[n:]
		}
		return nil
	}
	for i := range s.Weights {
		for _, x := range [][]float32{s.Weights[i].Data, s.EMA[i].Data, s.M[i], s.V[i]} {
			if err := put(x); err != nil {
				return err
			}
		}
	}
	for _, p := range s.Guide {
		if err := put(p.Data); err != nil {
			return err
		}
	}
	_, err = w.Write(sum.Sum(nil))
	return err
}

// Decode reads a checkpoint, checking its magic, version, layout and checksum.
func Decode(r io.Reader) (*State, error) {
	all, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	const pre = 8 + 4 + 8
	if len(all) < pre+sha256.Size {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, len(all))
	}
	if !bytes.Equal(all[:8], magic[:]) {
		return nil, fmt.Errorf("%w: not a checkpoint (bad magic)", ErrCorrupt)
	}
	v := binary.LittleEndian.Uint32(all[8:12])
	if v > Version {
		return nil, fmt.Errorf("%w (format version %d; this one reads versions up to %d): update the program to use it", ErrNewer, v, Version)
	} else if v < versionNoGuide {
		return nil, fmt.Errorf("%w: format version %d, this program reads versions %d to %d", ErrCorrupt, v, versionNoGuide, Version)
	}
	body, tail := all[:len(all)-sha256.Size], all[len(all)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], tail) {
		return nil, fmt.Errorf("%w: checksum mismatch (truncated or damaged)", ErrCorrupt)
	}
	hl := binary.LittleEndian.Uint64(all[12:20])
	if hl > uint64(len(body)-pre) {
		return nil, fmt.Errorf("%w: header length %d beyond the file", ErrCorrupt, hl)
	}
	var h header
	if err := json.Unmarshal(body[pre:pre+int(hl)], &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	if err := h.check(); err != nil {
		return nil, err
	}
	if guided := h.GuideStep > 0; guided != (v == Version) {
		return nil, fmt.Errorf("%w: format version %d with guide step %d", ErrCorrupt, v, h.GuideStep)
	}
	data := body[pre+int(hl):]
	// The tensors' size follows from the architecture: check it against the
	// file before allocating anything of that size.
	size, err := model.LayoutSize(h.Model)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	want := 4 * 4 * uint64(size)
	if h.GuideStep > 0 {
		want += 4 * uint64(size)
	}
	if uint64(len(data)) != want {
		return nil, fmt.Errorf("%w: %d bytes of tensor data, the architecture needs %d", ErrCorrupt, len(data), want)
	}
	layout, err := model.Layout(h.Model)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if len(layout) != len(h.Tensors) {
		return nil, fmt.Errorf("%w: %d tensors, the architecture has %d", ErrCorrupt, len(h.Tensors), len(layout))
	}
	s := &State{Model: h.Model, Dataset: h.Dataset, Process: h.process(), Sigmas: h.Sigmas, Train: h.Train, SampleEps: h.Eps, SampleSteps: h.T, SampleSampler: h.Sampler, SampleChurn: h.Churn, SampleAutoguide: h.Guided, Step: h.Step, AdamT: h.AdamT, RNG: h.RNG, Arith: h.Arith}
	s.Weights, s.EMA = layout, layout.Clone()
	get := func(x []float32) error {
		if len(data) < 4*len(x) {
			return fmt.Errorf("%w: tensor data ends early", ErrCorrupt)
		}
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		data = data[4*len(x):]
		return nil
	}
	for i, p := range layout {
		if h.Tensors[i].Name != p.Name || !equalInts(h.Tensors[i].Shape, p.Shape) {
			return nil, fmt.Errorf("%w: tensor %d is %s%v, the architecture wants %s%v", ErrCorrupt, i, h.Tensors[i].Name, h.Tensors[i].Shape, p.Name, p.Shape)
		}
		m, v := make([]float32, len(p.Data)), make([]float32, len(p.Data))
		for _, x := range [][]float32{p.Data, s.EMA[i].Data, m, v} {
			if err := get(x); err != nil {
				return nil, err
			}
		}
		s.M, s.V = append(s.M, m), append(s.V, v)
	}
	if h.GuideStep > 0 {
		s.Guide, s.GuideStep = layout.Clone(), h.GuideStep
		for _, p := range s.Guide {
			if err := get(p.Data); err != nil {
				return nil, err
			}
		}
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last tensor", ErrCorrupt, len(data))
	}
	return s, nil
}

// check rejects header values no writer produces.
func (h *header) check() error {
	if err := h.Model.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	for _, s := range h.Sigmas {
		if !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("%w: noise level %g", ErrCorrupt, s)
		}
	}
	if err := CheckLadder(h.Sigmas, h.Process); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if h.Process == nil && len(h.Sigmas) == 0 {
		return fmt.Errorf("%w: no noise levels", ErrCorrupt)
	}
	if _, err := sde.New(h.process()); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if h.Step < 0 || h.AdamT < 0 || h.T < 0 || h.T > MaxSampleSteps || !(h.Eps >= 0) || math.IsInf(h.Eps, 0) || !(h.Churn >= 0) || math.IsInf(h.Churn, 0) || len(h.Sampler) > 16 {
		return fmt.Errorf("%w: step %d, optimizer step %d, sampling T %d ε %g churn %g sampler %.20q", ErrCorrupt, h.Step, h.AdamT, h.T, h.Eps, h.Churn, h.Sampler)
	}
	if h.GuideStep < 0 || h.GuideStep > h.Step || !(h.Guided == 0 || h.Guided >= 1 && h.Guided <= 100) || h.Guided > 0 && h.GuideStep == 0 {
		return fmt.Errorf("%w: guide step %d at step %d, autoguidance weight %g", ErrCorrupt, h.GuideStep, h.Step, h.Guided)
	}
	return nil
}

// process is the header's process; files written before processes were
// recorded hold NCSN's ladder.
func (h *header) process() sde.Spec {
	if h.Process != nil {
		return *h.Process
	}
	return sde.Spec{Name: "ncsn", Sigmas: h.Sigmas}
}

// DropGuide removes the guide and the autoguidance recommended with it; a
// recommended Heun sampler then keeps its cost unguided, at twice its
// steps and S_churn (the setting it halved for the guide's evaluations).
func (s *State) DropGuide() {
	if s.SampleAutoguide != 0 {
		s.SampleSteps, s.SampleChurn = Unguided(s.SampleSteps, s.SampleChurn)
	}
	s.Guide, s.GuideStep, s.SampleAutoguide = nil, 0, 0
}

// GuideStep is the step at which a run of steps steps keeps its EMA as
// autoguidance's guide for the fraction at (train's -guide-at): 0 (none)
// without one, and where it would not come before the last step (the guide
// would be the model itself).
func GuideStep(at float64, steps int) int {
	k := int(math.Round(at * float64(steps)))
	if at <= 0 || k < 1 || k >= steps {
		return 0
	}
	return k
}

// Unguided is the Heun sampler that costs as many network evaluations as
// an autoguided one of steps and S_churn (which evaluates two networks per
// step): twice the steps, and S_churn scaled with them.
func Unguided(steps int, churn float64) (int, float64) { return 2 * steps, 2 * churn }

// processSpec is the process to record: none for an NCSN ladder that Sigmas
// already hold (the files stay as they were), else the spec.
func (s *State) processSpec() *sde.Spec {
	if s.Process.Name == "" || (s.Process.Name == "ncsn" && s.Process.MinT == 0 && slices.Equal(s.Process.Sigmas, s.Sigmas)) {
		return nil
	}
	p := s.Process
	return &p
}

// firstNonFinite is the index of the first NaN or Inf in x, or -1.
func firstNonFinite(x []float32) int {
	for i, v := range x {
		if v-v != 0 { // NaN or ±Inf
			return i
		}
	}
	return -1
}

func equalInts(a, b []int) bool {
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

// Load reads the checkpoint at path; errors name the file.
func Load(path string) (*State, error) {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	s, err := Decode(f)
	if err != nil && filepath.Base(path) == latestName {
		return nil, fmt.Errorf("%s: %w: it is its folder's pointer to the newest checkpoint; give the folder (%s) or a ckpt-*.ckpt file", path, ErrCorrupt, filepath.Dir(path))
	}
	if err != nil && safetensors.Looks(path) {
		return nil, fmt.Errorf("%s: %w: it is a safetensors file; import it into a checkpoint folder first (go run ./cmd/export -import %s -out DIR)", path, ErrCorrupt, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Samplers are the names of the samplers a checkpoint may recommend (State.SampleSampler;
// package generate runs each). A file naming another (a Go caller's, of 16
// bytes at most) is read, not refused: generate passes the name over, and a
// resume goes on without it.
var Samplers = []string{"ald", "em", "pc", "ode", "ddpm", "ddim", "heun"}

// MaxSampleSteps bounds the sampling steps a checkpoint recommends (its T),
// as generate.MaxSteps bounds -steps: a file naming 10¹² ran out of memory
// or sampled for ever.
const MaxSampleSteps = 1_000_000

// FileName is the name of the checkpoint of a step.
func FileName(step int) string { return fmt.Sprintf("ckpt-%08d.ckpt", step) }

const latestName = "latest"

// Save writes s into dir as FileName(s.Step) atomically and then points
// `latest` at it, making dir if need be. A state Encode refuses is refused
// before dir is made. A failed save (a full disk, say) leaves the folder as it was:
// `latest` still names the previous checkpoint, and no partial file remains.
func Save(dir string, s *State) (string, error) {
	if _, _, err := s.checked(); err != nil { // before the folder is made
		return "", err
	}
	path := filepath.Join(dir, FileName(s.Step))
	if err := fsutil.WriteAtomic(path, func(w io.Writer) error { return Encode(w, s) }); err != nil {
		return "", fmt.Errorf("checkpoint: writing %s: %w", path, err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, latestName), []byte(FileName(s.Step)+"\n")); err != nil {
		return "", fmt.Errorf("checkpoint: writing %s: %w", filepath.Join(dir, latestName), err)
	}
	return path, nil
}

// LockName is the file of a run's folder whose lock (fsutil.TryLock) keeps
// a second writer out: the trainer holds it while it runs, and an import
// into the folder takes it too.
const LockName = "lock"

// LogName is the run's training log in its folder, one row per step (the
// trainer writes it; cmd/plot draws it).
const LogName = "train.csv"

// IsRunFileName reports whether name (a base name) is one a run's folder
// gives its own files: a checkpoint's (FileName), latest, LockName or
// LogName. Another file given such a name in a run's folder is taken for
// the run's own.
func IsRunFileName(name string) bool {
	_, ckpt := StepOf(name)
	return ckpt || name == latestName || name == LockName || name == LogName
}

// Prune deletes the oldest checkpoints of dir beyond the newest keep (keep ≤ 0
// keeps all) and returns those it deleted. The one `latest` names is never
// deleted.
func Prune(dir string, keep int) (removed []string, err error) {
	if keep <= 0 {
		return nil, nil
	}
	all, err := List(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: listing %s: %w", dir, err)
	}
	if len(all) <= keep {
		return nil, nil
	}
	latest, err := Latest(dir)
	if err != nil && !errors.Is(err, ErrNone) { // none: the newest keep stay
		return nil, err
	}
	var errs []error
	for _, p := range all[:max(0, len(all)-keep)] {
		if p == latest {
			continue
		}
		if err := os.Remove(p); err != nil {
			errs = append(errs, err)
		} else {
			removed = append(removed, p)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("checkpoint: pruning %s: %w", dir, err)
	}
	return removed, nil
}

// List returns the checkpoint files of dir, oldest step first: the files
// named as FileName names them (ckpt-, the step's digits, .ckpt). Other
// files, such as a user's ckpt-best.ckpt or ckpt-00000400-good.ckpt copy,
// are not the run's: never listed, so never pruned, archived or taken as
// the newest.
func List(dir string) ([]string, error) {
	m, err := fsutil.Glob(dir, "ckpt-*.ckpt")
	if err != nil {
		return nil, err
	}
	type file struct {
		path string
		step int
	}
	var fs []file
	for _, p := range m {
		if step, ok := StepOf(filepath.Base(p)); ok {
			fs = append(fs, file{p, step})
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].step < fs[j].step })
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.path
	}
	return out, nil
}

// StepOf returns the step of a checkpoint file's name as FileName writes
// it, and whether name is one.
func StepOf(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "ckpt-")
	if !ok {
		return 0, false
	}
	if digits, ok = strings.CutSuffix(digits, ".ckpt"); !ok || len(digits) < 8 || len(digits) > 18 {
		return 0, false
	}
	step := 0
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, false
		}
		step = step*10 + int(r-'0')
	}
	if FileName(step) != name {
		return 0, false // e.g. ckpt-000000001.ckpt: not a name FileName gives
	}
	return step, true
}

// Latest returns the path `latest` in dir points to, or ErrNone.
func Latest(dir string) (string, error) {
	b, err := readPointer(filepath.Join(dir, latestName))
	if errors.Is(err, os.ErrNotExist) {
		all, _ := List(dir)
		if len(all) == 0 {
			return "", fmt.Errorf("%w in %s", ErrNone, dir)
		}
		newest := all[len(all)-1]
		if len(all) > 1 {
			// A checkpoint copied in from another run became the run
			// (sampled, resumed, its own checkpoints pruned) where
			// `latest` had been deleted.
			if why := OtherRun(all[len(all)-2], newest); why != "" {
				return "", fmt.Errorf("%w: %s has no %s, and its newest checkpoint %s is not of the run of %s before it (%s): write the name of the one to go on from into %s", ErrMixed,
					dir, latestName, filepath.Base(newest), filepath.Base(all[len(all)-2]), why, filepath.Join(dir, latestName))
			}
		}
		return newest, nil
	}
	if errors.Is(err, ErrCorrupt) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	name := strings.TrimSpace(string(b))
	if name == "" || name == "." || name == ".." || name == latestName || name == LockName || name == LogName || strings.ContainsAny(name, "/\\\x00") {
		hint := ""
		if all, _ := List(dir); len(all) > 0 {
			hint = fmt.Sprintf(" (delete it to take the newest there, %s)", filepath.Base(all[len(all)-1]))
		}
		return "", fmt.Errorf("%w: %s does not name a checkpoint file%s", ErrCorrupt, filepath.Join(dir, latestName), hint)
	}
	p := filepath.Join(dir, name)
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		hint := ""
		if all, _ := List(dir); len(all) > 0 {
			hint = fmt.Sprintf(" (delete it to take the newest there, %s)", filepath.Base(all[len(all)-1]))
		}
		return "", fmt.Errorf("%w: %s names %s, which is not there%s", ErrCorrupt, filepath.Join(dir, latestName), name, hint)
	}
	if err != nil && errors.Is(err, fs.ErrPermission) {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if err != nil || !fi.Mode().IsRegular() {
		// A folder, a pipe (which hung the reader), a name too long.
		return "", fmt.Errorf("%w: %s names %.64q, which is not a checkpoint file", ErrCorrupt, filepath.Join(dir, latestName), name)
	}
	return p, nil
}

// Current returns the checkpoint a run in dir continues from: the one
// `latest` names, or the run's newest where that is newer and was saved
// after `latest` was last written — its rewrite failed (the disk filled
// between the two writes; Save writes the checkpoint whole first) — with a
// note saying so ("" otherwise). A `latest` written after the newest
// checkpoint (a user's edit, to go back to an earlier one) is followed, as
// is one naming a file of the user's (not one FileName gives). The newest
// is taken only where it is a file of the same run — the same network,
// data, process, seed and training config but for what a resume may change
// (sameRun, RunMayChange) —, and a later file that is not (a
// checkpoint copied in from another run, another file given its name) is
// passed over with a note: it became the run.
func Current(dir string) (path, note string, err error) {
	latest, err := Latest(dir)
	if err != nil {
		return "", "", err
	}
	all, err := List(dir)
	if err != nil || len(all) == 0 {
		return latest, "", nil
	}
	newest := all[len(all)-1]
	was, ok := StepOf(filepath.Base(latest))
	if now, _ := StepOf(filepath.Base(newest)); !ok || now <= was {
		return latest, "", nil
	}
	lf, err1 := os.Stat(filepath.Join(dir, latestName))
	nf, err2 := os.Stat(newest)
	if err1 != nil || err2 != nil || !lf.ModTime().Before(nf.ModTime()) {
		return latest, "", nil
	}
	if why := sameRun(latest, newest); why != "" {
		return latest, fmt.Sprintf("%s names %s and is followed; %s is newer, but %s: passed over",
			filepath.Join(dir, latestName), filepath.Base(latest), filepath.Base(newest), why), nil
	}
	// Told apart by the files' times only: a copy that did not keep them
	// (scp -r without -p) can make an edit look older than the checkpoint.
	return newest, fmt.Sprintf("%s names %s, but %s is newer and was saved after it (its rewrite failed, as when the disk fills between the two writes; if you wrote %s to go back, a copy of the folder that did not keep the files' times hid that: write it again)",
		filepath.Join(dir, latestName), filepath.Base(latest), filepath.Base(newest), latestName), nil
}

// sameRun is "" where the checkpoint at newer can be the continuation of the
// one at older — a regular file, of the same network, dataset, process,
// seed and training config (but for RunMayChange), at a later step —, else
// why not. A newer file whose header cannot be
// read is not (it would only fail to load); where older's cannot, newer is
// taken as before.
func sameRun(older, newer string) string {
	hn, why := peekHeader(newer)
	if why != "" {
		return "it " + why
	}
	ho, why := peekHeader(older)
	if why != "" {
		return ""
	}
	if hn.Step <= ho.Step {
		return fmt.Sprintf("it holds step %d, not after %d", hn.Step, ho.Step)
	}
	return runDiffers(ho, hn)
}

// OtherRun is "" where the checkpoints at a and b may be of one run, at any
// steps — the same network, dataset, process, seed and training config but
// for RunMayChange —, else why b is not, as "its seed is 7, not 0". Where
// either header cannot be read it is "" (loading it will say why).
func OtherRun(a, b string) string {
	ha, why := peekHeader(a)
	if why != "" {
		return ""
	}
	hb, why := peekHeader(b)
	if why != "" {
		return ""
	}
	return runDiffers(ha, hb)
}

// runDiffers is "" where the headers older and newer are of one run (but
// for their steps), else why newer is not.
func runDiffers(ho, hn *header) string {
	seed := func(h *header) string {
		var t struct {
			Seed *uint64 `json:"seed"`
		}
		if json.Unmarshal(h.Train, &t) != nil || t.Seed == nil {
			return "?"
		}
		return strconv.FormatUint(*t.Seed, 10)
	}
	// A folder's path may change within a run (its images moved, or read
	// on another machine: the run resumes with -dataset folder:NEW); what
	// the images hold is the run's source digest, which may change too.
	_, newFolder := data.IsFolder(hn.Dataset)
	_, oldFolder := data.IsFolder(ho.Dataset)
	folders := newFolder && oldFolder
	switch {
	case !reflect.DeepEqual(hn.Model, ho.Model):
		return "its network is another"
	case hn.Dataset != ho.Dataset && !folders:
		return fmt.Sprintf("it was trained on %s, not %s", hn.Dataset, ho.Dataset)
	case !reflect.DeepEqual(hn.Process, ho.Process) || !slices.Equal(hn.Sigmas, ho.Sigmas):
		return "its diffusion process is another"
	case seed(hn) != seed(ho):
		return fmt.Sprintf("its seed is %s, not %s", seed(hn), seed(ho))
	}
	if folders {
		return trainingDiffers(hn.Train, ho.Train, "dataset")
	}
	return trainingDiffers(hn.Train, ho.Train)
}

// RunMayChange lists the keys of a checkpoint's training config (State.Train)
// that may differ between two checkpoints of one run: what a resume in the
// run's own folder may change (the step count to reach and whether it was
// chosen, the save interval, how many checkpoints are kept, whether it runs
// under MPI, the count and digest of a folder dataset that changed since)
// and the time trained so far. Every other key is the run's own.
var RunMayChange = []string{"steps", "steps_chosen", "save_every", "keep", "data_parallel", "ranks", "source_images", "source_digest", "elapsed_seconds"}

// trainingDiffers is "" where the training configs newer and older (JSON
// objects) agree in every key but RunMayChange's and alsoMayChange's, else the first that does
// not, as "its training config has lr 0.001, not 0.002". A key one of them
// lacks counts as its zero value (omitempty). Configs that are not JSON
// objects are not compared.
func trainingDiffers(newer, older json.RawMessage, alsoMayChange ...string) string {
	var n, o map[string]json.RawMessage
	if json.Unmarshal(newer, &n) != nil || json.Unmarshal(older, &o) != nil {
		return ""
	}
	keys := make([]string, 0, len(n)+len(o))
	for k := range n {
		keys = append(keys, k)
	}
	for k := range o {
		if _, ok := n[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(RunMayChange, k) || slices.Contains(alsoMayChange, k) {
			continue
		}
		a, b := jsonValue(n[k]), jsonValue(o[k])
		if !reflect.DeepEqual(a, b) {
			return fmt.Sprintf("its training config has %s %s, not %s", k, compactJSON(n[k]), compactJSON(o[k]))
		}
	}
	return ""
}

// jsonValue decodes raw into Go values, a missing or zero value (null, 0,
// "", false, [] or {}) as nil.
func jsonValue(raw json.RawMessage) any {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return nil
	}
	switch x := v.(type) {
	case float64:
		if x == 0 {
			return nil
		}
	case string:
		if x == "" {
			return nil
		}
	case bool:
		if !x {
			return nil
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
	}
	return v
}

// compactJSON is raw without white space, cut at 40 bytes, or "none".
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if len(raw) == 0 || json.Compact(&b, raw) != nil {
		return "none"
	}
	s := b.String()
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// DatasetOf is the dataset of the checkpoint a -ckpt argument names (a
// file, or a folder's current checkpoint), read from its header alone.
func DatasetOf(path string) (string, error) {
	p, err := Resolve(path)
	if err != nil {
		return "", err
	}
	h, why := peekHeader(p)
	if why != "" {
		return "", fmt.Errorf("%w: %s %s", ErrCorrupt, p, why)
	}
	return h.Dataset, nil
}

// ModelOf is the network of the checkpoint a -ckpt argument names, read
// from its header alone.
func ModelOf(path string) (model.Config, error) {
	p, err := Resolve(path)
	if err != nil {
		return model.Config{}, err
	}
	h, why := peekHeader(p)
	if why != "" {
		return model.Config{}, fmt.Errorf("%w: %s %s", ErrCorrupt, p, why)
	}
	return h.Model, nil
}

// peekHeader reads the header of the checkpoint at path (not its tensors,
// nor its checksum), or says why it cannot ("is not a checkpoint").
func peekHeader(path string) (*header, string) {
	f, err := fsutil.OpenRegular(path)
	if errors.Is(err, fsutil.ErrNotRegular) {
		return nil, "is not a regular file"
	}
	if err != nil {
		return nil, "cannot be read"
	}
	defer f.Close()
	var pre [20]byte
	if _, err := io.ReadFull(f, pre[:]); err != nil || !bytes.Equal(pre[:8], magic[:]) {
		return nil, "is not a checkpoint"
	}
	hl := binary.LittleEndian.Uint64(pre[12:20])
	if fi, err := f.Stat(); err != nil || hl > uint64(fi.Size()) {
		return nil, "is not a checkpoint (its header is longer than the file)"
	}
	b := make([]byte, hl)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, "is cut short"
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, "has a damaged header"
	}
	return &h, ""
}

// LoadFrom loads the checkpoint that a -ckpt argument names (Resolve: a
// file, or a folder's latest) and returns it with its file's path.
func LoadFrom(path string) (*State, string, error) {
	p, err := Resolve(path)
	if err != nil {
		return nil, "", err
	}
	st, err := Load(p)
	if errors.Is(err, ErrCorrupt) && p != path { // a folder's current checkpoint
		if prev := before(path, p); prev != "" {
			err = fmt.Errorf("%w; the run's checkpoint before it can be given instead: %s", err, prev)
		}
	}
	return st, p, err
}

// before is the newest of dir's checkpoints older than the one at p ("" if
// none).
func before(dir, p string) string {
	step, ok := StepOf(filepath.Base(p))
	all, err := List(dir)
	if !ok || err != nil {
		return ""
	}
	prev := ""
	for _, q := range all { // oldest first
		if s, _ := StepOf(filepath.Base(q)); s < step {
			prev = q
		}
	}
	return prev
}

// Resolve turns a -ckpt argument (a file, or a folder holding checkpoints:
// its Current one) into a file path.
func Resolve(path string) (string, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", notThere{path, err}
	}
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if fi.IsDir() {
		p, _, err := Current(path)
		return p, err
	}
	return path, nil
}

// notThere is Resolve's error for a path that is not there: it says where
// checkpoints come from, and wraps the stat error (fs.ErrNotExist).
type notThere struct {
	path string
	err  error
}

func (e notThere) Error() string {
	return fmt.Sprintf("checkpoint: %s: no such file or folder (cmd/train saves its checkpoints in -ckpt-dir, checkpoints by default)", e.path)
}

func (e notThere) Unwrap() error { return e.err }

// readPointer reads the pointer file at path: a regular file (a named pipe
// waited for a writer for ever) of a name's length (/dev/zero through a
// link ran out of memory).
func readPointer(path string) ([]byte, error) {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err == nil && len(b) > 4096 {
		err = fmt.Errorf("%w: %s is over 4096 bytes: not a pointer to a checkpoint", ErrCorrupt, path)
	}
	return b, err
}

// CheckLadder checks an NCSN ladder as a State holds it (Sigmas, beside
// its process, when that is not nil): at least two levels, positive,
// finite and decreasing, and the process's own levels where it is an ncsn
// one that has them. No ladder at all is no error. Samplers refused such a
// ladder only once a checkpoint holding it was used.
func CheckLadder(sigmas []float64, process *sde.Spec) error {
	if len(sigmas) == 0 {
		return nil
	}
	if _, err := sde.New(sde.Spec{Name: "ncsn", Sigmas: sigmas}); err != nil {
		return err
	}
	if process != nil && process.Name == "ncsn" && len(process.Sigmas) > 0 && !slices.Equal(process.Sigmas, sigmas) {
		return fmt.Errorf("the %d noise levels differ from the process's %d (σ %g → %g against %g → %g)",
			len(sigmas), len(process.Sigmas), sigmas[0], sigmas[len(sigmas)-1], process.Sigmas[0], process.Sigmas[len(process.Sigmas)-1])
	}
	return nil
}
