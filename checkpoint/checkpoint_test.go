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
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/safetensors"
	"github.com/ncsn-go/ncsn/sde"
)

func tinyState(t testing.TB, step int) *State {
	t.Helper()
	cfg := model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 1}
	r := rand.New(rand.NewPCG(uint64(step), 1))
	w, err := model.Init(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	s := &State{Model: cfg, Dataset: "mnist", Process: sde.Spec{Name: "ncsn", Sigmas: []float64{1, 0.1}}, Sigmas: []float64{1, 0.1}, Train: []byte(`{"batch":4}`), Step: step, AdamT: step,
		Weights: w, EMA: w.Clone(), RNG: []byte{1, 2, 3}}
	for i, p := range w {
		s.EMA[i].Data[0] += 1
		m, v := make([]float32, len(p.Data)), make([]float32, len(p.Data))
		m[0], v[len(v)-1] = float32(i), float32(2*i)
		s.M, s.V = append(s.M, m), append(s.V, v)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := tinyState(t, 7)
	s.SampleSampler, s.SampleSteps, s.SampleChurn = "heun", 300, 120
	var b bytes.Buffer
	if err := Encode(&b, s); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatal("decoded state differs")
	}
}

// withGuide gives s a guide of its own, kept at step at, and recommends
// autoguidance at w 2.
func withGuide(s *State, at int) *State {
	s.Guide, s.GuideStep, s.SampleAutoguide = s.EMA.Clone(), at, 2
	for i := range s.Guide {
		s.Guide[i].Data[len(s.Guide[i].Data)-1] -= float32(i + 1)
	}
	return s
}

// TestGuide: a state with its own guide is written as format version 2 and
// read back whole; one without stays version 1 (what earlier programs
// read); an inconsistent guide is refused before anything is written.
func TestGuide(t *testing.T) {
	s := withGuide(tinyState(t, 7), 4)
	var b bytes.Buffer
	if err := Encode(&b, s); err != nil {
		t.Fatal(err)
	}
	if v := binary.LittleEndian.Uint32(b.Bytes()[8:12]); v != 2 {
		t.Fatalf("format version %d, want 2", v)
	}
	got, err := Decode(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatal("decoded state differs")
	}
	if v := binary.LittleEndian.Uint32(encoded(t)[8:12]); v != 1 {
		t.Fatalf("a state without a guide written as version %d, want 1", v)
	}
	for _, tc := range []struct {
		name string
		edit func(*State)
		want string
	}{
		{"short-guide", func(s *State) { s.Guide = s.Guide[1:] }, "guide tensors"},
		{"no-guide-step", func(s *State) { s.GuideStep = 0 }, "guide tensors at step 0"},
		{"guide-size", func(s *State) { s.Guide[2].Data = s.Guide[2].Data[1:] }, "guide tensor"},
		{"nan-guide", func(s *State) { s.Guide[1].Data[0] = float32(math.NaN()) }, "non-finite"},
		{"guide-after-step", func(s *State) { s.GuideStep = 8 }, "refusing to write an unreadable state"},
		{"weight-below-1", func(s *State) { s.SampleAutoguide = 0.5 }, "refusing to write an unreadable state"},
		{"recommended-without-guide", func(s *State) { s.Guide, s.GuideStep = nil, 0 }, "refusing to write an unreadable state"},
		// Read back, 10¹² recommended steps ran out of memory or for ever.
		{"steps-beyond-bound", func(s *State) { s.SampleSteps = MaxSampleSteps + 1 }, "refusing to write an unreadable state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := withGuide(tinyState(t, 7), 4)
			tc.edit(s)
			var b bytes.Buffer
			if err := Encode(&b, s); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "corrupt or truncated") || b.Len() != 0 {
				t.Fatalf("got %v (%d bytes written), want %q", err, b.Len(), tc.want)
			}
		})
	}
}

// TestDropGuide: without its guide a state recommends the Heun sampler it
// halved for the guide at its full steps and churn, and nothing else moves.
func TestDropGuide(t *testing.T) {
	s := withGuide(tinyState(t, 7), 4)
	s.SampleSampler, s.SampleSteps, s.SampleChurn = "heun", 150, 60
	s.DropGuide()
	if s.Guide != nil || s.GuideStep != 0 || s.SampleAutoguide != 0 || s.SampleSteps != 300 || s.SampleChurn != 120 || s.SampleSampler != "heun" {
		t.Fatalf("dropped: guide %v step %d w %g, %s %d churn %g", s.Guide != nil, s.GuideStep, s.SampleAutoguide, s.SampleSampler, s.SampleSteps, s.SampleChurn)
	}
	s.DropGuide() // no recommendation left: nothing doubles again
	if s.SampleSteps != 300 || s.SampleChurn != 120 {
		t.Fatalf("dropped twice: %d steps, churn %g", s.SampleSteps, s.SampleChurn)
	}
	var b bytes.Buffer
	if err := Encode(&b, s); err != nil {
		t.Fatal(err)
	}
}

// TestRoundTripProcess: a continuous process is saved and read back; an
// NCSN ladder is stored as it always was (the sigmas alone).
func TestRoundTripProcess(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   sde.Spec
		sigmas []float64
	}{
		{"vp", sde.Spec{Name: "vp", BetaMin: 0.1, BetaMax: 20}, nil},
		{"ve", sde.Spec{Name: "ve", SigmaMin: 0.01, SigmaMax: 25, MinT: 1e-3}, nil},
		{"ncsn", sde.Spec{Name: "ncsn", Sigmas: []float64{1, 0.1}}, []float64{1, 0.1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tinyState(t, 5)
			s.Process, s.Sigmas = tc.spec, tc.sigmas
			var b bytes.Buffer
			if err := Encode(&b, s); err != nil {
				t.Fatal(err)
			}
			if got := bytes.Contains(b.Bytes(), []byte(`"process"`)); got != (tc.name != "ncsn") {
				t.Fatalf("process recorded: %v", got)
			}
			got, err := Decode(&b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Process, tc.spec) || !reflect.DeepEqual(got.Sigmas, tc.sigmas) {
				t.Fatalf("process %+v sigmas %v", got.Process, got.Sigmas)
			}
		})
	}
}

func encoded(t *testing.T) []byte {
	var b bytes.Buffer
	if err := Encode(&b, tinyState(t, 3)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCorrupt: every damaged file is an ErrCorrupt that names the file.
func TestCorrupt(t *testing.T) {
	good := encoded(t)
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 0x40
		return b
	}
	other := tinyState(t, 3)
	other.Model.Base = 8 // header says base 8, tensors are base 4
	var ob bytes.Buffer
	Encode(&ob, other)
	ver := append([]byte(nil), good...)
	ver[8] = 0
	var gb bytes.Buffer
	if err := Encode(&gb, withGuide(tinyState(t, 3), 2)); err != nil {
		t.Fatal(err)
	}
	guided := gb.Bytes()
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"magic", append([]byte("PNG\x00\x00\x00\x00\x00"), good[8:]...), "bad magic"},
		{"version", ver, "format version 0"},
		{"huge-architecture", withHeader(t, good, func(h map[string]any) { h["model"].(map[string]any)["base"] = 1000 }), "tensor data"},
		{"no-sigmas", withHeader(t, good, func(h map[string]any) { h["sigmas"] = []float64{} }), "no noise levels"},
		{"bad-process", withHeader(t, good, func(h map[string]any) { h["process"] = map[string]any{"name": "vp", "beta_min": -1} }), "β_min = -1"},
		{"negative-sigma", withHeader(t, good, func(h map[string]any) { h["sigmas"] = []float64{1, -1} }), "noise level -1"},
		{"rising-sigmas", withHeader(t, good, func(h map[string]any) {
			h["process"] = map[string]any{"name": "ve", "sigma_min": 0.01, "sigma_max": 25}
			h["sigmas"] = []float64{0.1, 1}
		}), "must decrease"},
		{"other-ladder", withHeader(t, good, func(h map[string]any) {
			h["process"] = map[string]any{"name": "ncsn", "sigmas": []float64{1, 0.1}}
			h["sigmas"] = []float64{2, 0.1}
		}), "differ from the process's"},
		{"negative-step", withHeader(t, good, func(h map[string]any) { h["step"] = -4 }), "step -4"},
		{"negative-churn", withHeader(t, good, func(h map[string]any) { h["sample_churn"] = -2 }), "churn -2"},
		{"long-sampler", withHeader(t, good, func(h map[string]any) { h["sample_sampler"] = strings.Repeat("x", 40) }), "sampler"},
		{"truncated-half", good[:len(good)/2], "checksum"},
		{"truncated-end", good[:len(good)-1], "checksum"},
		{"flipped-header", flip(30), "checksum"},
		{"flipped-data", flip(len(good) - 100), "checksum"},
		{"trailing", append(append([]byte(nil), good...), 0), "checksum"},
		{"other-architecture", ob.Bytes(), "architecture"},
		{"guide-step-without-guide", withHeader(t, good, func(h map[string]any) { h["guide_step"] = 2 }), "format version 1 with guide step 2"},
		{"recommended-guide-missing", withHeader(t, good, func(h map[string]any) { h["sample_autoguide"] = 2 }), "autoguidance weight 2"},
		{"guide-after-step", withHeader(t, guided, func(h map[string]any) { h["guide_step"] = 9 }), "guide step 9 at step 3"},
		{"guide-weight-below-1", withHeader(t, guided, func(h map[string]any) { h["sample_autoguide"] = 0.5 }), "autoguidance weight 0.5"},
		{"version-2-without-guide", withHeader(t, guided, func(h map[string]any) { delete(h, "guide_step"); delete(h, "sample_autoguide") }), "format version 2 with guide step 0"},
		{"guide-truncated", withHeader(t, guided[:len(guided)-4], func(map[string]any) {}) /* the guide's last value cut */, "tensor data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), tc.name+".ckpt")
			os.WriteFile(p, tc.data, 0o644)
			_, err := Load(p)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q should name %s and say %q", err, p, tc.want)
			}
		})
	}
}

func TestSaveLatestKeep(t *testing.T) {
	dir := t.TempDir()
	if _, err := Latest(dir); !errors.Is(err, ErrNone) {
		t.Fatalf("empty folder: %v", err)
	}
	for _, step := range []int{10, 20, 30, 40} {
		if _, err := Save(dir, tinyState(t, step)); err != nil {
			t.Fatal(err)
		}
		if _, err := Prune(dir, 2); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := List(dir)
	if len(all) != 2 || filepath.Base(all[0]) != FileName(30) || filepath.Base(all[1]) != FileName(40) {
		t.Fatalf("kept %v", all)
	}
	p, err := Latest(dir)
	if err != nil || filepath.Base(p) != FileName(40) {
		t.Fatalf("latest %q %v", p, err)
	}
	if r, err := Resolve(dir); err != nil || r != p {
		t.Fatalf("resolve dir: %q %v", r, err)
	}
	// A path that is not there says so, and where checkpoints come from.
	gone := filepath.Join(dir, "none")
	if _, err := Resolve(gone); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), gone+": no such file or folder (cmd/train saves") {
		t.Fatalf("resolve a path that is not there: %v", err)
	}
	s, err := Load(p)
	if err != nil || s.Step != 40 {
		t.Fatalf("load latest: %v", err)
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("left %s", e.Name())
		}
	}
	os.WriteFile(filepath.Join(dir, "latest"), []byte("../../etc/passwd\n"), 0o644)
	if _, err := Latest(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad pointer: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "latest"), []byte("garbage\n"), 0o644)
	if _, err := Latest(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "latest names garbage, which is not there") {
		t.Fatalf("a pointer to nothing: %v", err)
	}
}

// withHeader returns a copy of a good file with its JSON header edited and a
// valid checksum: what a buggy or hostile writer could produce.
func withHeader(t *testing.T, good []byte, edit func(map[string]any)) []byte {
	t.Helper()
	hl := binary.LittleEndian.Uint64(good[12:20])
	var h map[string]any
	if err := json.Unmarshal(good[20:20+hl], &h); err != nil {
		t.Fatal(err)
	}
	edit(h)
	js, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.Write(good[:12])
	binary.Write(&b, binary.LittleEndian, uint64(len(js)))
	b.Write(js)
	b.Write(good[20+hl : len(good)-sha256.Size])
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

// TestNewerVersion: a file of a future format is not called corrupt.
func TestNewerVersion(t *testing.T) {
	b := encoded(t)
	binary.LittleEndian.PutUint32(b[8:12], Version+1)
	p := filepath.Join(t.TempDir(), "future.ckpt")
	os.WriteFile(p, b, 0o644)
	_, err := Load(p)
	if !errors.Is(err, ErrNewer) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "newer version") || !strings.Contains(err.Error(), fmt.Sprintf("format version %d", Version+1)) {
		t.Fatalf("message %q", err)
	}
}

// TestNonFiniteNotSaved: a state with a NaN or Inf weight is refused, nothing
// is written and `latest` keeps naming the last good checkpoint.
func TestNonFiniteNotSaved(t *testing.T) {
	dir := t.TempDir()
	if _, err := Save(dir, tinyState(t, 1)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  func(s *State)
	}{
		{"nan-weight", func(s *State) { s.Weights[3].Data[2] = float32(math.NaN()) }},
		{"inf-ema", func(s *State) { s.EMA[5].Data[0] = float32(math.Inf(-1)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tinyState(t, 2)
			tc.set(s)
			if _, err := Save(dir, s); !errors.Is(err, ErrNonFinite) {
				t.Fatalf("got %v", err)
			}
			all, _ := List(dir)
			p, _ := Latest(dir)
			if len(all) != 1 || filepath.Base(p) != FileName(1) {
				t.Fatalf("files %v, latest %s", all, p)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 2 {
				t.Fatalf("%d entries left in the folder", len(ents))
			}
		})
	}
}

// TestRefusedBeforeTheFolder: a state Save refuses (none, a NaN, parts of
// different sizes) makes no folder; Encode refuses the same; pruning a
// folder with no checkpoint removes nothing and is no error.
func TestRefusedBeforeTheFolder(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    func() *State
	}{
		{"nil", func() *State { return nil }},
		{"nan", func() *State {
			s := tinyState(t, 1)
			s.M[0][0] = float32(math.NaN())
			s.Weights[1].Data[0] = float32(math.NaN())
			return s
		}},
		{"short-moment", func() *State { s := tinyState(t, 1); s.V[2] = s.V[2][:1]; return s }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			if _, err := Save(dir, tc.s()); err == nil {
				t.Fatal("saved")
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("folder: %v", err)
			}
			if err := Encode(io.Discard, tc.s()); err == nil {
				t.Fatal("encoded")
			}
		})
	}
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "missing")} {
		if removed, err := Prune(dir, 2); err != nil || len(removed) != 0 {
			t.Fatalf("Prune(%s): %v, %v", dir, removed, err)
		}
	}
}

// TestCurrent: a folder's current checkpoint is the one `latest` names,
// or the run's newest where `latest` was last written before it (its
// rewrite failed: a full disk between the two writes), with a note naming
// both; a `latest` edited after the newest (going back to an earlier
// checkpoint), or naming a user's own file, is followed.
func TestCurrent(t *testing.T) {
	dir := t.TempDir()
	for _, step := range []int{10, 20} {
		if _, err := Save(dir, tinyState(t, step)); err != nil {
			t.Fatal(err)
		}
	}
	if p, note, err := Current(dir); err != nil || filepath.Base(p) != FileName(20) || note != "" {
		t.Fatalf("%q %q %v", p, note, err)
	}
	latest := filepath.Join(dir, "latest")
	os.WriteFile(latest, []byte(FileName(10)+"\n"), 0o644) // an edit: followed
	if p, note, err := Current(dir); err != nil || filepath.Base(p) != FileName(10) || note != "" {
		t.Fatalf("an edited latest: %q %q %v", p, note, err)
	}
	old := time.Now().Add(-time.Hour) // as left by the save of step 10
	os.Chtimes(latest, old, old)
	p, note, err := Current(dir)
	if err != nil || filepath.Base(p) != FileName(20) || !strings.Contains(note, "names "+FileName(10)+", but "+FileName(20)+" is newer and was saved after it") {
		t.Fatalf("a latest not rewritten: %q %q %v", p, note, err)
	}
	if r, err := Resolve(dir); err != nil || r != p {
		t.Fatalf("resolve: %q %v", r, err)
	}
	os.Rename(filepath.Join(dir, FileName(10)), filepath.Join(dir, "ckpt-best.ckpt"))
	os.WriteFile(latest, []byte("ckpt-best.ckpt\n"), 0o644)
	os.Chtimes(latest, old, old)
	if p, note, err := Current(dir); err != nil || filepath.Base(p) != "ckpt-best.ckpt" || note != "" {
		t.Fatalf("a user's file: %q %q %v", p, note, err)
	}
}

// TestCurrentPassesOverOtherRuns: a later file that cannot be the run's —
// a checkpoint copied in from a run of another seed, network or dataset,
// a safetensors file or a folder given a checkpoint's name — is passed over
// with a note, where it became the run (a run of seed 7 resumed as seed 1's).
func TestCurrentPassesOverOtherRuns(t *testing.T) {
	for _, c := range []struct {
		name, why string
		make      func(t *testing.T, p string)
	}{
		{"seed", "its seed is 7, not 1", func(t *testing.T, p string) {
			s := tinyState(t, 30)
			s.Train = []byte(`{"batch":4,"seed":7}`)
			saveAs(t, p, s)
		}},
		{"network", "its network is another", func(t *testing.T, p string) {
			s := tinyState(t, 30)
			s.Train = []byte(`{"batch":4,"seed":1}`)
			s.Model.Base = 8
			s.Weights, _ = model.Init(s.Model, rand.New(rand.NewPCG(1, 1)))
			s.EMA, s.M, s.V = s.Weights.Clone(), nil, nil
			for _, w := range s.Weights {
				s.M, s.V = append(s.M, make([]float32, len(w.Data))), append(s.V, make([]float32, len(w.Data)))
			}
			saveAs(t, p, s)
		}},
		{"dataset", "it was trained on fashion, not mnist", func(t *testing.T, p string) {
			s := tinyState(t, 30)
			s.Train, s.Dataset = []byte(`{"batch":4,"seed":1}`), "fashion"
			saveAs(t, p, s)
		}},
		{"safetensors", "it is not a checkpoint", func(t *testing.T, p string) {
			os.WriteFile(p, []byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\":{}}"), 0o644)
		}},
		{"folder", "it is not a regular file", func(t *testing.T, p string) { os.Mkdir(p, 0o755) }},
		{"batch", "its training config has batch 8, not 4", func(t *testing.T, p string) {
			s := tinyState(t, 30)
			s.Train = []byte(`{"batch":8,"seed":1}`)
			saveAs(t, p, s)
		}},
		{"a setting the older lacks", `its training config has lr_warmup 500, not none`, func(t *testing.T, p string) {
			s := tinyState(t, 30)
			s.Train = []byte(`{"batch":4,"seed":1,"lr_warmup":500}`)
			saveAs(t, p, s)
		}},
		{"same run, another plan", "", func(t *testing.T, p string) {
			s := tinyState(t, 30)
			s.Train = []byte(`{"batch":4,"seed":1,"steps":90,"save_every":5,"keep":2,"elapsed_seconds":12.5,"lr_decay":""}`)
			saveAs(t, p, s)
		}},
		{"same run", "", func(t *testing.T, p string) {
			s := tinyState(t, 30)
			s.Train = []byte(`{"batch":4,"seed":1}`)
			saveAs(t, p, s)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := tinyState(t, 20)
			s.Train = []byte(`{"batch":4,"seed":1}`)
			if _, err := Save(dir, s); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-time.Hour)
			os.Chtimes(filepath.Join(dir, "latest"), old, old)
			c.make(t, filepath.Join(dir, FileName(30)))
			p, note, err := Current(dir)
			if c.why == "" {
				if err != nil || filepath.Base(p) != FileName(30) || !strings.Contains(note, "saved after it") {
					t.Fatalf("the run's own newer file not taken: %q %q %v", p, note, err)
				}
				return
			}
			if err != nil || filepath.Base(p) != FileName(20) || !strings.Contains(note, FileName(30)+" is newer, but "+c.why+": passed over") {
				t.Fatalf("%q %q %v", p, note, err)
			}
		})
	}
}

// saveAs writes s as a checkpoint file at p.
func saveAs(t *testing.T, p string, s *State) {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPruneKeepsLatest: pruning never deletes the checkpoint `latest` names,
// even when it is not among the newest files, and reports failures.
func TestPruneKeepsLatest(t *testing.T) {
	dir := t.TempDir()
	for _, step := range []int{10, 20, 30} {
		if _, err := Save(dir, tinyState(t, step)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "latest"), []byte(FileName(10)+"\n"), 0o644)
	if _, err := Prune(dir, 1); err != nil {
		t.Fatal(err)
	}
	all, _ := List(dir)
	if len(all) != 2 || filepath.Base(all[0]) != FileName(10) || filepath.Base(all[1]) != FileName(30) {
		t.Fatalf("kept %v", all)
	}
	// A removal that fails (here a non-empty folder with a checkpoint's name)
	// is reported, not ignored.
	stuck := filepath.Join(dir, FileName(5))
	os.MkdirAll(filepath.Join(stuck, "x"), 0o755)
	if _, err := Prune(dir, 1); err == nil || !strings.Contains(err.Error(), FileName(5)) {
		t.Fatalf("a failed removal was not reported: %v", err)
	}
}

// TestSafetensorsGiven: an exported file given where a checkpoint goes
// says how to import it, not only that it is "corrupt".
func TestSafetensorsGiven(t *testing.T) {
	var b bytes.Buffer
	if err := safetensors.Encode(&b, &safetensors.File{Tensors: []safetensors.Tensor{{Name: "w", Shape: []int{2}, Data: []float32{1, 2}}}}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "m.safetensors")
	os.WriteFile(p, b.Bytes(), 0o644)
	if _, err := Load(p); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "it is a safetensors file; import it") {
		t.Fatalf("%v", err)
	}
}

// TestListOnlyTheRunsFiles: a folder's name is taken literally (run[1]
// never lists, prunes or resumes run1's files) and only the names Save
// gives are the run's: a user's ckpt-best.ckpt or a copy named
// ckpt-00000010-good.ckpt is never pruned nor taken as the newest.
func TestListOnlyTheRunsFiles(t *testing.T) {
	root := t.TempDir()
	sibling, dir := filepath.Join(root, "run1"), filepath.Join(root, "run[1]")
	for _, step := range []int{1, 2, 3} {
		if _, err := Save(sibling, tinyState(t, step)); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(dir, 0o755)
	if all, err := List(dir); err != nil || len(all) != 0 {
		t.Fatalf("run[1] lists %v, %v", all, err)
	}
	if _, err := Latest(dir); !errors.Is(err, ErrNone) {
		t.Fatalf("run[1]'s latest: %v", err)
	}
	for _, step := range []int{10, 20, 30, 100000000} {
		if _, err := Save(dir, tinyState(t, step)); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, FileName(10)))
	for _, name := range []string{"ckpt-best.ckpt", "ckpt-00000010-good.ckpt", "ckpt-000000010.ckpt", "ckpt-0000001x.ckpt"} {
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	os.Remove(filepath.Join(dir, "latest"))
	if p, err := Latest(dir); err != nil || filepath.Base(p) != FileName(100000000) {
		t.Fatalf("newest without latest: %s, %v", p, err)
	}
	removed, err := Prune(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range removed {
		if filepath.Dir(p) != dir {
			t.Fatalf("pruning run[1] removed %s", p)
		}
	}
	all, _ := List(dir)
	var names []string
	for _, p := range all {
		names = append(names, filepath.Base(p))
	}
	if strings.Join(names, " ") != FileName(30)+" "+FileName(100000000) {
		t.Fatalf("kept %v", names)
	}
	for _, name := range []string{"ckpt-best.ckpt", "ckpt-00000010-good.ckpt", "ckpt-000000010.ckpt", "ckpt-0000001x.ckpt"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("a user's file was pruned: %v", err)
		}
	}
	if all, _ := List(sibling); len(all) != 3 {
		t.Fatalf("run1 holds %d checkpoints after run[1]'s pruning", len(all))
	}
}

// TestOtherSamplerNameRead: a checkpoint recommending a sampler name of
// another build (a Go caller's, 16 bytes at most) is read: refusing it made
// every checkpoint of such a run "corrupt".
func TestOtherSamplerNameRead(t *testing.T) {
	s := tinyState(t, 5)
	s.SampleSampler = "ALD"
	var b bytes.Buffer
	if err := Encode(&b, s); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&b)
	if err != nil || got.SampleSampler != "ALD" {
		t.Fatalf("%v, %+v", err, got)
	}
}
