package train

import (
	"bytes"
	"context"
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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/internal/cuda"
	"github.com/ncsn-go/ncsn/internal/fsutil"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sde"
)

func TestDSMLossByHand(t *testing.T) {
	// Image 0 (σ=0.5): ½((0.5·1+0.5)² + (0.5·2−1)²) = 0.5.
	// Image 1 (σ=2):   ½((2·0+1)² + (2·(−1)+1)²)   = 1.
	scores := []float32{1, 2, 0, -1}
	z := []float32{0.5, -1, 1, 1}
	mean, per := DSMLoss(scores, z, []float64{0.5, 2})
	if per[0] != 0.5 || per[1] != 1 || mean != 0.75 {
		t.Fatalf("per %v mean %g", per, mean)
	}
}

func tinyConfig(dir string) Config {
	return Config{
		Dataset: "mnist", Preset: "test",
		Model: model.Config{Channels: 1, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4},
		Steps: 6, Batch: 5, LR: 1e-3, EMADecay: 0.9, SigmaMax: 1, SigmaMin: 0.05, Levels: 4, Seed: 3, SaveEvery: 3,
		CkptDir: dir, Keep: 0, Data: tinyData(),
	}
}

func tinyData() *data.Dataset {
	r := rand.New(rand.NewPCG(1, 1))
	d := &data.Dataset{Name: "mnist", N: 20, Channels: 1, Height: 8, Width: 8}
	d.Images = make([]float32, 20*64)
	for i := range d.Images {
		d.Images[i] = float32(r.Float64())
	}
	return d
}

// TestGraphLossMatchesReference: the training graph's loss and per-image
// terms equal DSMLoss computed in Go from the network's own scores.
func TestGraphLossMatchesReference(t *testing.T) {
	sig := []float64{1, 0.3, 0.05}
	loss, per, scores, z := runLossGraph(t, tinyConfig(t.TempDir()).Model, []float64{1, 0.8, 0.5}, sig)
	want, wantPer := DSMLoss(scores, z, sig)
	if math.Abs(loss-want) > 1e-4*want {
		t.Fatalf("graph loss %g, reference %g", loss, want)
	}
	for i := range per {
		if math.Abs(per[i]-wantPer[i]) > 1e-4*wantPer[i] {
			t.Fatalf("image %d: %g vs %g", i, per[i], wantPer[i])
		}
	}
}

// TestGraphSeesNoisedImages: the training graph scores x̃ = m·x + σz, each
// image with its own mean and σ — the scores it gives are the scorer's at
// x̃ computed here (the loss test compared the graph with its own output,
// so a wrong x̃ passed).
func TestGraphSeesNoisedImages(t *testing.T) {
	cfg := tinyConfig(t.TempDir()).Model
	means, sig := []float64{1, 0.8, 0.5}, []float64{1, 0.3, 0.05}
	r := rand.New(rand.NewPCG(4, 4))
	params, _ := model.Init(cfg, r)
	_, _, scores, z := runLossGraph(t, cfg, means, sig)
	// runLossGraph's images: the same generator, after the weights.
	x := make([]float32, len(z))
	for i := range x {
		x[i], _ = float32(r.Float64()), r.NormFloat64()
	}
	sc, err := model.NewScorer(cfg, params, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	d := cfg.Dim()
	for k := range sig {
		xt, want := make([]float64, d), make([]float64, d)
		for j := range xt {
			xt[j] = means[k]*float64(x[k*d+j]) + sig[k]*float64(z[k*d+j])
		}
		if err := sc.Score(xt, sig[k], want); err != nil {
			t.Fatal(err)
		}
		var num, den float64
		for j := range want {
			e := float64(scores[k*d+j]) - want[j]
			num, den = num+e*e, den+want[j]*want[j]
		}
		if rel := math.Sqrt(num / den); !(rel < 1e-5) {
			t.Errorf("image %d (m %g, σ %g): the graph's scores differ from the scorer's at m·x + σz by %.3g (relative L2)", k, means[k], sig[k], rel)
		}
	}
}

// runLossGraph runs the DSM training graph of a network of cfg (random
// weights) on 3 random 8×8 images noised with the given means and σs; it
// returns the mean and per-image losses, the network's scores and the noise.
func runLossGraph(t *testing.T, cfg model.Config, means, sig []float64) (float64, []float64, []float32, []float32) {
	t.Helper()
	r := rand.New(rand.NewPCG(4, 4))
	params, _ := model.Init(cfg, r)
	g, err := newDSMGraph(cfg, params, len(sig))
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	x := make([]float32, len(sig)*cfg.Dim())
	z := make([]float32, len(x))
	for i := range x {
		x[i], z[i] = float32(r.Float64()), float32(r.NormFloat64())
	}
	loss, per, err := g.run(x, z, nil, means, sig)
	if err != nil {
		t.Fatal(err)
	}
	scores := make([]float32, len(x))
	if err := g.net.ReadOutput(scores); err != nil {
		t.Fatal(err)
	}
	return loss, per, scores, z
}

// inOneGoAndResumed trains tinyConfig's 6 steps, changed by set, in dir in
// one go, and in another folder 3 steps and then, resumed, to 6; it
// returns both runs' last checkpoints.
func inOneGoAndResumed(t *testing.T, dir string, set func(*Config)) (a, b *checkpoint.State) {
	t.Helper()
	other := t.TempDir()
	ca, cb := tinyConfig(dir), tinyConfig(other)
	set(&ca)
	set(&cb)
	if _, err := Run(context.Background(), ca); err != nil {
		t.Fatal(err)
	}
	cb.Steps = 3
	if _, err := Run(context.Background(), cb); err != nil {
		t.Fatal(err)
	}
	cb.Steps = ca.Steps
	if _, err := Run(context.Background(), cb); err != nil {
		t.Fatal(err)
	}
	return final(t, dir), final(t, other)
}

// sameTrainingState reports whether two checkpoints hold the same bits of
// everything a run continues from: weights, EMA, Adam's moments and step,
// the RNG.
func sameTrainingState(a, b *checkpoint.State) bool {
	return reflect.DeepEqual(a.Weights, b.Weights) && reflect.DeepEqual(a.EMA, b.EMA) && reflect.DeepEqual(a.M, b.M) &&
		reflect.DeepEqual(a.V, b.V) && bytes.Equal(a.RNG, b.RNG) && a.AdamT == b.AdamT
}

func final(t *testing.T, dir string) *checkpoint.State {
	t.Helper()
	p, err := checkpoint.Latest(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := checkpoint.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestResumeIsExact: 6 steps in one go, and 3 steps then a resume to 6, end
// with bit-identical weights, EMA, optimizer moments and RNG state.
func TestResumeIsExact(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if _, err := Run(context.Background(), tinyConfig(a)); err != nil {
		t.Fatal(err)
	}
	cb := tinyConfig(b)
	cb.Steps = 3
	if _, err := Run(context.Background(), cb); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cb.Steps, cb.Log = 6, &log
	res, err := Run(context.Background(), cb)
	if err != nil {
		t.Fatal(err)
	}
	// The first line, after the device's in a -tags gpu build.
	lines := strings.SplitN(log.String(), "\n", 3)
	if cuda.Built && !strings.HasPrefix(lines[0], "resuming from") && len(lines) > 1 {
		lines = lines[1:]
	}
	if !strings.HasPrefix(lines[0], "resuming from "+filepath.Join(b, checkpoint.FileName(3))) {
		t.Fatalf("first line: %q", lines[0])
	}
	if res.Step != 6 {
		t.Fatalf("ended at step %d", res.Step)
	}
	sa, sb := final(t, a), final(t, b)
	if sa.Step != 6 || sb.Step != 6 {
		t.Fatalf("steps %d %d", sa.Step, sb.Step)
	}
	if !sameTrainingState(sa, sb) {
		t.Fatal("resumed run differs from the uninterrupted one")
	}
	// The run did train: weights moved from their initial values.
	init, _ := model.Init(tinyConfig(a).Model, rand.New(rand.NewPCG(3, 0x6e63736e)))
	if reflect.DeepEqual(init, sa.Weights) {
		t.Fatal("weights never changed")
	}
	// The CSV holds one row per step.
	csv, _ := os.ReadFile(filepath.Join(b, csvName))
	if n := strings.Count(string(csv), "\n"); n != 7 {
		t.Fatalf("CSV has %d lines, want header + 6", n)
	}
}

// TestScheduleResumes: with a warm-up and cosine decay, a resumed run is
// still exact, and the schedule does change the result.
func TestScheduleResumes(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	sched := func(dir string, steps int) Config {
		cfg := tinyConfig(dir)
		cfg.Steps, cfg.LRWarmup, cfg.LRDecay = steps, 2, "cosine"
		cfg.EMANoWarmup = true
		return cfg
	}
	for _, cfg := range []Config{sched(a, 6), sched(b, 3), sched(b, 6), tinyConfig(c)} {
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	sa, sb, sc := final(t, a), final(t, b), final(t, c)
	if !reflect.DeepEqual(sa.Weights, sb.Weights) || !reflect.DeepEqual(sa.EMA, sb.EMA) || !reflect.DeepEqual(sa.M, sb.M) {
		t.Fatal("resumed scheduled run differs from the uninterrupted one")
	}
	if reflect.DeepEqual(sa.Weights, sc.Weights) {
		t.Fatal("the schedule changed nothing")
	}
	// The same run with the EMA's warm-up: the same weights, another average.
	d := sched(t.TempDir(), 6)
	d.EMANoWarmup = false
	if _, err := Run(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	sd := final(t, d.CkptDir)
	if !reflect.DeepEqual(sa.Weights, sd.Weights) || reflect.DeepEqual(sa.EMA, sd.EMA) {
		t.Fatal("-ema-warmup=false should change the average and nothing else")
	}
}

// TestGuideKept: GuideAt keeps the EMA of its step in every later
// checkpoint (bit-identical to that step's EMA, and not the latest EMA), with
// the recommended autoguidance weight; earlier checkpoints have none; a
// resume across the guide's step keeps the same guide, and a longer resume
// after it keeps it too. Without GuideAt nothing changes.
func TestGuideKept(t *testing.T) {
	guided := func(dir string, steps int) Config {
		c := tinyConfig(dir)
		c.Steps, c.SaveEvery, c.GuideAt, c.SampleAutoguide = steps, 1, 0.5, 2
		c.SampleSampler, c.SampleSteps, c.SampleChurn = "heun", 5, 1
		return c
	}
	a := t.TempDir()
	var log bytes.Buffer
	ca := guided(a, 6)
	ca.Log = &log
	if _, err := Run(context.Background(), ca); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "the EMA of step 3 kept as autoguidance's guide") {
		t.Fatalf("first line: %q", strings.SplitN(log.String(), "\n", 2)[0])
	}
	// A preset's fraction that comes at no step says so (it was left out silently).
	log.Reset()
	tiny := guided(t.TempDir(), 6)
	tiny.GuideAt, tiny.SampleAutoguide, tiny.Log = 0.01, 0, &log
	if _, err := Run(context.Background(), tiny); err != nil || !strings.Contains(log.String(), "no guide kept (-guide-at 0.01 of 6 steps comes at no step") {
		t.Fatalf("-guide-at 0.01 of 6 steps: %v, first line %q", err, strings.SplitN(log.String(), "\n", 2)[0])
	}
	// One step: the fraction to 6 figures, "1 step" (it read "0.3333333333333333 of 1 steps").
	log.Reset()
	single := guided(t.TempDir(), 1)
	single.GuideAt, single.SampleAutoguide, single.Log = 1.0/3, 0, &log
	if _, err := Run(context.Background(), single); err != nil || !strings.Contains(log.String(), "no guide kept (-guide-at 0.333333 of 1 step comes at no step") {
		t.Fatalf("-guide-at 1/3 of 1 step: %v, first line %q", err, strings.SplitN(log.String(), "\n", 2)[0])
	}
	load := func(dir string, step int) *checkpoint.State {
		t.Helper()
		st, err := checkpoint.Load(filepath.Join(dir, checkpoint.FileName(step)))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	at3 := load(a, 3)
	for step := 1; step <= 6; step++ {
		st := load(a, step)
		if step < 3 { // no guide yet: the unguided sampler at the same cost
			if st.Guide != nil || st.GuideStep != 0 || st.SampleAutoguide != 0 || st.SampleSteps != 10 || st.SampleChurn != 2 {
				t.Fatalf("step %d: a guide of step %d before its step, or sampling %d steps churn %g", step, st.GuideStep, st.SampleSteps, st.SampleChurn)
			}
			continue
		}
		if st.GuideStep != 3 || st.SampleAutoguide != 2 || st.SampleSteps != 5 || st.SampleChurn != 1 || !reflect.DeepEqual(st.Guide, at3.EMA) {
			t.Fatalf("step %d: guide of step %d, w %g, equal to step 3's EMA: %v", step, st.GuideStep, st.SampleAutoguide, reflect.DeepEqual(st.Guide, at3.EMA))
		}
	}
	if reflect.DeepEqual(load(a, 6).EMA, at3.EMA) {
		t.Fatal("the EMA never moved after the guide's step")
	}
	// Stopped at step 2 (its checkpoint alone), resumed to 6: the same
	// guide, bit for bit.
	b := t.TempDir()
	copyFile(t, filepath.Join(a, checkpoint.FileName(2)), filepath.Join(b, checkpoint.FileName(2)))
	if _, err := Run(context.Background(), guided(b, 6)); err != nil {
		t.Fatal(err)
	}
	if sb := final(t, b); sb.GuideStep != 3 || !reflect.DeepEqual(sb.Guide, at3.EMA) || !reflect.DeepEqual(sb.EMA, load(a, 6).EMA) {
		t.Fatalf("resumed run: guide of step %d, differs from the uninterrupted run's", sb.GuideStep)
	}
	// A run of 2 steps keeps its guide at step 1; resumed to 6 the guide
	// moves to step 3; resumed at step 6 to 12 it moves to step 6 (now);
	// resumed at 12 to 14 (guide step 7, passed) it stays.
	c := t.TempDir()
	for _, tc := range []struct{ steps, guide int }{{2, 1}, {6, 3}, {12, 6}, {14, 6}} {
		if _, err := Run(context.Background(), guided(c, tc.steps)); err != nil {
			t.Fatal(err)
		}
		sc := final(t, c)
		want := load(c, tc.guide).EMA
		if sc.Step != tc.steps || sc.GuideStep != tc.guide || !reflect.DeepEqual(sc.Guide, want) {
			t.Fatalf("-steps %d: at step %d, guide of step %d, want %d", tc.steps, sc.Step, sc.GuideStep, tc.guide)
		}
	}
	// Resumed from step 2 with -steps 3, whose guide step (2) it is at: the
	// guide is that EMA. Resumed from step 4 with -steps 5 (guide step 2,
	// passed without a guide): none, and the unguided sampler. One step
	// (guide step 1 = the last): none.
	for _, tc := range []struct{ from, steps, guide int }{{2, 3, 2}, {4, 5, 0}} {
		d := t.TempDir()
		from := load(a, tc.from)
		from.Guide, from.GuideStep, from.SampleAutoguide = nil, 0, 0
		if _, err := checkpoint.Save(d, from); err != nil {
			t.Fatal(err)
		}
		if _, err := Run(context.Background(), guided(d, tc.steps)); err != nil {
			t.Fatal(err)
		}
		sd := final(t, d)
		if sd.GuideStep != tc.guide || (tc.guide == 0) != (sd.Guide == nil) || tc.guide == 0 && (sd.SampleAutoguide != 0 || sd.SampleSteps != 10) {
			t.Fatalf("from %d to %d: guide of step %d, w %g, %d sampling steps", tc.from, tc.steps, sd.GuideStep, sd.SampleAutoguide, sd.SampleSteps)
		}
		if tc.guide > 0 && !reflect.DeepEqual(sd.Guide, load(a, tc.guide).EMA) {
			t.Fatalf("from %d to %d: the guide is not step %d's EMA", tc.from, tc.steps, tc.guide)
		}
	}
	one := guided(t.TempDir(), 1)
	if _, err := Run(context.Background(), one); err != nil {
		t.Fatal(err)
	}
	if so := final(t, one.CkptDir); so.Guide != nil {
		t.Fatalf("a one-step run kept its only EMA (step %d) as the guide", so.GuideStep)
	}
	// A contradicting -guide-at on resume is refused.
	cm := guided(b, 14)
	cm.GuideAt, cm.Set = 0.25, map[string]bool{"guide-at": true}
	if _, err := Run(context.Background(), cm); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "-guide-at 0.5") {
		t.Fatalf("other -guide-at: %v", err)
	}
	// Without GuideAt: no guide, the same training.
	d := tinyConfig(t.TempDir())
	d.SaveEvery = 1
	if _, err := Run(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if sd := final(t, d.CkptDir); sd.Guide != nil || !reflect.DeepEqual(sd.EMA, load(a, 6).EMA) {
		t.Fatal("without -guide-at: a guide, or other weights")
	}
}

// TestKeepGuide: the MNIST default recommends autoguidance by its guide;
// -guide-at 0 gives it up for the unguided sampler at the same cost.
func TestKeepGuide(t *testing.T) {
	c, err := Preset("default", "mnist")
	if err != nil {
		t.Fatal(err)
	}
	if c.GuideAt != 1.0/3 || c.SampleAutoguide != 2 || c.SampleSampler != "heun" || c.SampleSteps != 150 || c.SampleChurn != 60 {
		t.Fatalf("default: guide at %g, w %g, %s %d churn %g", c.GuideAt, c.SampleAutoguide, c.SampleSampler, c.SampleSteps, c.SampleChurn)
	}
	c.KeepGuide(0)
	if c.GuideAt != 0 || c.SampleAutoguide != 0 || c.SampleSteps != 300 || c.SampleChurn != 120 {
		t.Fatalf("-guide-at 0: guide at %g, w %g, %d steps churn %g", c.GuideAt, c.SampleAutoguide, c.SampleSteps, c.SampleChurn)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c, _ = Preset("default", "mnist")
	if err := c.UseClassifier(); err != nil || c.GuideAt != 0 || c.SampleAutoguide != 0 {
		t.Fatalf("classifier: %v, guide at %g, w %g", err, c.GuideAt, c.SampleAutoguide)
	}
	c, _ = Preset("default", "mnist")
	if err := c.UseSDE("vp"); err != nil || c.SampleAutoguide != 0 || c.SampleSampler != "" {
		t.Fatalf("-sde vp: %v, w %g, sampler %q", err, c.SampleAutoguide, c.SampleSampler)
	}
}

func TestResumeMismatch(t *testing.T) {
	dir := t.TempDir()
	if _, err := Run(context.Background(), tinyConfig(dir)); err != nil {
		t.Fatal(err)
	}
	c := tinyConfig(dir)
	c.Steps = 9
	c.Dataset = "cifar10"
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "trained on mnist") {
		t.Fatalf("other dataset: %v", err)
	}
	c = tinyConfig(dir)
	c.Steps, c.Batch, c.Set = 9, 7, map[string]bool{"batch": true}
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "-batch 5") {
		t.Fatalf("other batch: %v", err)
	}
	// A Go caller (Set nil) gives every setting of its Config: another
	// batch, seed or learning rate is refused likewise (the run went on
	// with the checkpoint's, saying nothing).
	for name, mod := range map[string]func(*Config){
		"batch": func(c *Config) { c.Batch = 7 },
		"seed":  func(c *Config) { c.Seed = 8 },
		"lr":    func(c *Config) { c.LR = 1e-2 },
		"ema":   func(c *Config) { c.EMADecay = 0.5 },
		"base":  func(c *Config) { c.Model.Base = 8 },
	} {
		c = tinyConfig(dir)
		c.Steps = 9
		mod(&c)
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "-"+name+" ") {
			t.Fatalf("Go caller, other %s: %v", name, err)
		}
	}
	// ... and the settings that have no flag (they were passed over).
	for field, mod := range map[string]func(*Config){
		"SigmaMin 0.05":        func(c *Config) { c.SigmaMin = 0.01 },
		"Model.EmbDim 8":       func(c *Config) { c.Model.EmbDim = 16 },
		"Model.FourierScale 4": func(c *Config) { c.Model.FourierScale = 1 },
	} {
		c = tinyConfig(dir)
		c.Steps = 9
		mod(&c)
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "was trained with "+field+";") {
			t.Fatalf("Go caller, other %s: %v", field, err)
		}
	}
	// A σ_max given (not from the data) is compared exactly, not as printed.
	c = tinyConfig(dir)
	c.Steps, c.SigmaMax, c.Set = 9, 1.00001, map[string]bool{"sigma-max": true}
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "-sigma-max 1;") {
		t.Fatalf("-sigma-max 1.00001 on a run of -sigma-max 1: %v", err)
	}
	// ... but its branch (Resume into another folder) takes its learning rate.
	c = tinyConfig(t.TempDir())
	c.Steps, c.LR, c.Resume = 9, 1e-2, filepath.Join(dir, checkpoint.FileName(6))
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatalf("Go caller's branch with another lr: %v", err)
	}
	var extra trainExtra
	if err := json.Unmarshal(final(t, c.CkptDir).Train, &extra); err != nil || extra.LR != 1e-2 {
		t.Fatalf("the branch's lr: %g (%v)", extra.LR, err)
	}
	c = tinyConfig(dir)
	c.Steps, c.Set = 9, map[string]bool{"mult": true}
	c.Model.Mult = append(append([]int(nil), c.Model.Mult...), 2)
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "-mult") {
		t.Fatalf("other multipliers: %v", err)
	}
	c = tinyConfig(dir)
	c.Steps, c.EMADecay, c.Set = 9, 0.99, map[string]bool{"ema": true}
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "-ema 0.9") {
		t.Fatalf("other EMA decay: %v", err)
	}
	c = tinyConfig(dir)
	c.Steps, c.EMANoWarmup, c.Set = 9, true, map[string]bool{"ema-warmup": true}
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "-ema-warmup=true; -ema-warmup=false") {
		t.Fatalf("other EMA warm-up: %v", err)
	}
	c = tinyConfig(dir)
	c.Steps, c.LRDecay, c.Set = 9, "cosine", map[string]bool{"lr-decay": true}
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "-lr-decay none") {
		t.Fatalf("other schedule: %v", err)
	}
	c = tinyConfig(dir)
	c.Steps = 9
	d := *c.Data
	d.Height, d.Width, d.N = 4, 4, 80
	c.Data = &d
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "mnist's images are 1×4×4, and the network of "+filepath.Join(dir, "ckpt-00000006.ckpt")+" takes 1×8×8") {
		t.Fatalf("other image size: %v", err)
	}
	// A fresh run whose data does not fit the network has no checkpoint
	// to blame: a config error.
	c.Fresh, c.CkptDir = true, t.TempDir()
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) || errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "mnist's images are 1×4×4, and the network is set up for 1×8×8") {
		t.Fatalf("fresh run, other image size: %v", err)
	}
	// Nothing to do when the checkpoint already reached -steps.
	c = tinyConfig(dir)
	if res, err := Run(context.Background(), c); err != nil || res.Step != 6 {
		t.Fatalf("rerun: %v", err)
	}
}

func TestFreshArchives(t *testing.T) {
	dir := t.TempDir()
	if _, err := Run(context.Background(), tinyConfig(dir)); err != nil {
		t.Fatal(err)
	}
	c := tinyConfig(dir)
	c.Fresh, c.Steps = true, 3
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	arch, _ := filepath.Glob(filepath.Join(dir, "archive-*", checkpoint.FileName(6)))
	if len(arch) != 1 {
		t.Fatal("the earlier run's final checkpoint was not archived")
	}
	if s := final(t, dir); s.Step != 3 {
		t.Fatalf("fresh run ended at %d", s.Step)
	}
}

// TestFreshThatCannotStartKeepsTheRun: a -fresh (or -fresh -wipe) run
// that fails before its first step — too few images, images of another
// shape, a folder among the files -wipe would delete — leaves the earlier
// run where it was (-wipe deleted it first).
func TestFreshThatCannotStartKeepsTheRun(t *testing.T) {
	dir := t.TempDir()
	if _, err := Run(context.Background(), tinyConfig(dir)); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(dir)
	for _, bad := range []func(*Config){
		func(c *Config) { c.Batch = 30 }, // 20 images
		func(c *Config) { c.Model.Height, c.Model.Width = 16, 16 },
	} {
		for _, wipe := range []bool{false, true} {
			c := tinyConfig(dir)
			c.Fresh, c.Wipe = true, wipe
			bad(&c)
			if _, err := Run(context.Background(), c); err == nil {
				t.Fatal("the run started")
			}
			after, _ := os.ReadDir(dir)
			if !reflect.DeepEqual(names(before), names(after)) {
				t.Fatalf("-fresh (wipe %v) that could not start: the folder held %v, now %v", wipe, names(before), names(after))
			}
		}
	}
	if s := final(t, dir); s.Step != 6 {
		t.Fatalf("the earlier run: step %d", s.Step)
	}
	// A folder named like a file of the run (train.csv) stops -wipe before
	// it deletes anything (it deleted the checkpoints and latest, then
	// failed on the folder).
	os.Remove(filepath.Join(dir, csvName))
	os.MkdirAll(filepath.Join(dir, csvName, "x"), 0o755)
	before, _ = os.ReadDir(dir)
	c := tinyConfig(dir)
	c.Fresh, c.Wipe = true, true
	if _, err := Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), "is a folder, not a file of a run") {
		t.Fatalf("-fresh -wipe over a folder named %s: %v", csvName, err)
	}
	if after, _ := os.ReadDir(dir); !reflect.DeepEqual(names(before), names(after)) {
		t.Fatalf("-fresh -wipe that was refused: the folder held %v, now %v", names(before), names(after))
	}
	// A file that cannot be moved part way (the third) leaves the folder
	// as it was, with -wipe or without: the files already moved go back.
	os.RemoveAll(filepath.Join(dir, csvName))
	before, _ = os.ReadDir(dir)
	defer func() { rename = os.Rename }()
	for _, wipe := range []bool{false, true} {
		n := 0
		rename = func(from, to string) error {
			if n++; n == 3 {
				return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EACCES}
			}
			return os.Rename(from, to)
		}
		c := tinyConfig(dir)
		c.Fresh, c.Wipe = true, wipe
		if _, err := Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), "(nothing was moved)") {
			t.Fatalf("-fresh (wipe %v) whose third rename fails: %v", wipe, err)
		}
		if after, _ := os.ReadDir(dir); !reflect.DeepEqual(names(before), names(after)) {
			t.Fatalf("-fresh (wipe %v) whose third rename fails: the folder held %v, now %v", wipe, names(before), names(after))
		}
	}
	// Where a file cannot go back either, the error names it and says
	// what to do (it named the first only, and left the others unmoved).
	n := 0
	rename = func(from, to string) error {
		if n++; n == 3 || n == 4 { // latest; then ckpt 3 back
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EACCES}
		}
		return os.Rename(from, to)
	}
	c = tinyConfig(dir)
	c.Fresh = true
	_, err := Run(context.Background(), c)
	rename = os.Rename
	if err == nil || !strings.Contains(err.Error(), "and "+checkpoint.FileName(3)+" could not go back from "+filepath.Join(dir, "archive-")) || !strings.Contains(err.Error(), "move them back by hand") {
		t.Fatalf("-fresh whose third rename and first move back fail: %v", err)
	}
	back, _ := filepath.Glob(filepath.Join(dir, "archive-*", checkpoint.FileName(3)))
	if len(back) != 1 || os.Rename(back[0], filepath.Join(dir, checkpoint.FileName(3))) != nil {
		t.Fatalf("the checkpoint that could not go back is not in the archive: %v", back)
	}
	if after, _ := os.ReadDir(dir); !reflect.DeepEqual(names(before), names(slices.DeleteFunc(after, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), "archive-") }))) {
		t.Fatalf("the folder held %v, now %v", names(before), names(after))
	}
	if s := final(t, dir); s.Step != 6 {
		t.Fatalf("the earlier run: step %d", s.Step)
	}
	// -wipe deletes the earlier run only once the new one has its
	// train.csv: one that cannot be made (its name taken by a folder once
	// the earlier files are out of the way) leaves them in the archive.
	c = tinyConfig(dir)
	c.Fresh, c.Wipe = true, true
	c.Log = hookWriter{"starting a fresh run", func() { os.MkdirAll(filepath.Join(dir, csvName, "x"), 0o755) }}
	_, err = Run(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "-wipe deleted nothing: the earlier run's files are in "+filepath.Join(dir, "archive-")) {
		t.Fatalf("-fresh -wipe whose train.csv cannot be made: %v", err)
	}
	arch, _ := filepath.Glob(filepath.Join(dir, "archive-*", checkpoint.FileName(6)))
	if len(arch) != 1 {
		t.Fatalf("the earlier run's last checkpoint is not in an archive: %v", arch)
	}
}

func names(es []os.DirEntry) []string {
	var n []string
	for _, e := range es {
		n = append(n, e.Name())
	}
	return n
}

// TestInterruptedSaysHowToResume: an interrupted run's last line says how
// to resume it; with -fresh -wipe "the same command" deleted the run it had
// just saved, and with -resume it was refused.
func TestInterruptedSaysHowToResume(t *testing.T) {
	defer func() { wrapObjective = nil }()
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(*Config) {}, "the same command resumes it"},
		{func(c *Config) { c.Fresh = true }, "the same command without -fresh resumes it"},
		{func(c *Config) { c.Fresh, c.Wipe = true, true }, "the same command without -fresh -wipe resumes it"},
		{func(c *Config) { c.Resume = "from" }, "the same command without -resume resumes it"},
	} {
		dir := t.TempDir()
		from := tinyConfig(dir)
		from.Steps = 3
		if _, err := Run(context.Background(), from); err != nil {
			t.Fatal(err)
		}
		cfg := tinyConfig(filepath.Join(dir, "next"))
		c.mod(&cfg)
		if cfg.Resume != "" {
			cfg.Resume = filepath.Join(dir, checkpoint.FileName(3))
		}
		var log bytes.Buffer
		cfg.Log = &log
		ctx := cancelAtStep(1)
		if _, err := Run(ctx, cfg); !errors.Is(err, ErrInterrupted) || !strings.Contains(log.String(), "; "+c.want) {
			t.Errorf("%v; log %q, want %q", err, log.String(), c.want)
		}
	}
}

func TestInterruptSaves(t *testing.T) {
	dir := t.TempDir()
	ctx := cancelAtStep(2)
	defer func() { wrapObjective = nil }()
	c := tinyConfig(dir)
	c.Steps, c.SaveEvery = 10, 100
	_, err := Run(ctx, c)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v", err)
	}
	if p, err := checkpoint.Latest(dir); err != nil || filepath.Base(p) != checkpoint.FileName(2) {
		t.Fatalf("not the step reached saved: %s, %v", p, err)
	}
}

// cancelAtStep sets wrapObjective to cancel the context it returns in the
// objective's run of the given step of the session (reset it after).
func cancelAtStep(step int) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	wrapObjective = func(r *run, g objective) objective {
		return &cancellingObjective{objective: g, after: step, cancel: cancel}
	}
	return ctx
}

// cancellingObjective cancels the run's context in its run number after.
type cancellingObjective struct {
	objective
	after, n int
	cancel   func()
}

func (c *cancellingObjective) run(x, z []float32, labels []int, means, sigmas []float64) (float64, []float64, error) {
	if c.n++; c.n == c.after {
		c.cancel()
	}
	return c.objective.run(x, z, labels, means, sigmas)
}

// TestBranchChangesOptimiser: -resume FILE into a new folder may change
// -lr and -max-grad-norm (a branch: said, and saved with its checkpoints);
// a resume in the run's own folder, bare or by -resume, may not; a
// -resume through a link to the run's own folder is its own folder (it was
// refused as "another run").
func TestBranchChangesOptimiser(t *testing.T) {
	dir := t.TempDir()
	a := tinyConfig(filepath.Join(dir, "a"))
	a.Steps = 4
	if _, err := Run(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	from := filepath.Join(dir, "a", checkpoint.FileName(4))
	set := map[string]bool{"lr": true, "max-grad-norm": true, "steps": true}

	b := tinyConfig(filepath.Join(dir, "b"))
	b.Resume, b.Steps, b.LR, b.MaxGradNorm, b.Set = from, 6, a.LR/10, 1, set
	var log bytes.Buffer
	b.Log = &log
	if _, err := Run(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), fmt.Sprintf("a branch in %s: -lr %g (was %g), -max-grad-norm 1 (was 0)", b.CkptDir, b.LR, a.LR)) {
		t.Errorf("the branch is not said:\n%s", log.String())
	}
	var saved Config
	if err := json.Unmarshal(final(t, b.CkptDir).Train, &saved); err != nil || saved.LR != b.LR || saved.MaxGradNorm != 1 {
		t.Fatalf("the branch's checkpoint holds lr %g, max-grad-norm %g (%v)", saved.LR, saved.MaxGradNorm, err)
	}
	// Resumed bare there, it keeps the branch's values.
	b2 := tinyConfig(b.CkptDir)
	b2.Steps, b2.Set = 7, map[string]bool{"steps": true}
	if _, err := Run(context.Background(), b2); err != nil {
		t.Fatalf("the branch resumed: %v", err)
	}

	for name, c := range map[string]Config{
		"bare": func() Config { c := tinyConfig(a.CkptDir); c.Steps, c.LR, c.Set = 6, a.LR/10, set; return c }(),
		"-resume": func() Config {
			c := tinyConfig(a.CkptDir)
			c.Resume, c.Steps, c.LR, c.Set = from, 6, a.LR/10, set
			return c
		}(),
	} {
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "into a new -ckpt-dir branches") {
			t.Errorf("%s in the run's own folder with another -lr: %v", name, err)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(a.CkptDir, link); err != nil {
		t.Fatal(err)
	}
	c := tinyConfig(a.CkptDir)
	c.Resume, c.Steps, c.Set = filepath.Join(link, checkpoint.FileName(4)), 5, map[string]bool{"steps": true}
	if _, err := Run(context.Background(), c); err != nil {
		t.Errorf("-resume through a link to the run's own folder: %v", err)
	}
}

// TestInterruptBeforeTheFirstStep: a run stopped while its data loads
// leaves its folder as it was — -fresh -wipe deleted the earlier run
// there, and saved an untrained checkpoint — and a fresh run in an empty
// folder saves nothing.
func TestInterruptBeforeTheFirstStep(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.Steps = 2
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	before := folderState(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, mod := range []func(*Config){
		func(c *Config) {},
		func(c *Config) { c.Fresh = true },
		func(c *Config) { c.Fresh, c.Wipe = true, true },
		func(c *Config) { c.Steps = 4 },
	} {
		c := tinyConfig(dir)
		c.Steps = 3
		mod(&c)
		var log bytes.Buffer
		c.Log = &log
		if _, err := Run(ctx, c); !errors.Is(err, ErrInterrupted) {
			t.Fatalf("%+v: got %v", c, err)
		}
		if after := folderState(t, dir); !reflect.DeepEqual(after, before) {
			var diff []string
			for p, b := range before {
				if a, ok := after[p]; !ok || a != b {
					diff = append(diff, fmt.Sprintf("%s (there after: %v)", p, ok))
				}
			}
			for p := range after {
				if _, ok := before[p]; !ok {
					diff = append(diff, p+" (new)")
				}
			}
			t.Fatalf("fresh %v wipe %v: the folder changed: %v\n%s", c.Fresh, c.Wipe, diff, log.String())
		}
		if !strings.Contains(log.String(), "interrupted before the first step") {
			t.Errorf("the log does not say so:\n%s", log.String())
		}
	}
	empty := filepath.Join(t.TempDir(), "new")
	c = tinyConfig(empty)
	if _, err := Run(ctx, c); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("a new folder: got %v", err)
	}
	if ckpts, _ := filepath.Glob(filepath.Join(empty, "ckpt-*")); len(ckpts) != 0 {
		t.Errorf("a run stopped before its first step saved %v", ckpts)
	}
	// -sigmas-from-data's distance pass (20 s on MNIST) stops at the signal
	// (the first Ctrl-C waited for it to end).
	c = tinyConfig(empty)
	c.SigmasFromData, c.SigmaMin = true, 0.01
	var log bytes.Buffer
	c.Log = &log
	if _, err := Run(ctx, c); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("-sigmas-from-data: got %v", err)
	}
	if strings.Contains(log.String(), "σ from the data") || !strings.Contains(log.String(), "interrupted before the first step") {
		t.Errorf("-sigmas-from-data: the distance pass was not cut short:\n%s", log.String())
	}
}

// TestInterruptAsTheFolderIsClaimed: a stop signal that comes after the
// check before the folder is claimed, but before the first step, saves no
// untrained checkpoint (it did, fixing settings that a corrected command
// then contradicted).
func TestInterruptAsTheFolderIsClaimed(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.Steps = 2
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	c.Steps, c.Fresh, c.Wipe = 3, true, true
	var log bytes.Buffer
	c.Log = &log
	if _, err := Run(&laterCancelled{Context: context.Background()}, c); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v", err)
	}
	if ckpts, _ := filepath.Glob(filepath.Join(dir, "ckpt-*")); len(ckpts) != 0 || !strings.Contains(log.String(), "interrupted before the first step: nothing saved") {
		t.Fatalf("checkpoints %v:\n%s", ckpts, log.String())
	}
}

// laterCancelled is a context cancelled from the second time its Err is
// asked for.
type laterCancelled struct {
	context.Context
	asked int
}

func (c *laterCancelled) Err() error {
	if c.asked++; c.asked > 1 {
		return context.Canceled
	}
	return nil
}

// folderState is each file's name and contents under dir, but the lock
// file's (each run that takes the folder writes its pid and time there).
func folderState(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == checkpoint.LockName {
			return err
		}
		b, err := os.ReadFile(p)
		m[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConfigErrors(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.Steps = 0 },
		func(c *Config) { c.Batch = -1 },
		func(c *Config) { c.LR = 0 },
		func(c *Config) { c.Wipe = true },
		func(c *Config) { c.Fresh, c.Resume = true, "x" },
		func(c *Config) { c.SigmaMin = 2 },
		func(c *Config) { c.SigmaMax = math.Inf(1) },
		func(c *Config) { c.Levels = 1 },
		func(c *Config) { c.Device = "tpu" },
		func(c *Config) { c.LRWarmup = -1 },
		func(c *Config) { c.LRDecay = "linear" },
		func(c *Config) { c.EMADecay = 1 },
		func(c *Config) { c.GuideAt = 1 },
		func(c *Config) { c.GuideAt = -0.5 },
		func(c *Config) { c.GuideAt = math.NaN() },
		func(c *Config) { c.SampleAutoguide = 2 }, // no guide kept
		func(c *Config) { c.SDE = "VE" },
		func(c *Config) { c.GuideAt, c.SampleAutoguide = 0.5, 0.5 }, // w below 1
	} {
		c := tinyConfig(t.TempDir())
		mod(&c)
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("config accepted")
		}
	}
	// An unknown process is named as one, whatever else the preset sets
	// (with EDM's preconditioning it said "-sde bogus scales the image").
	edm, _ := Preset("default", "mnist")
	edm.SDE, edm.CkptDir = "bogus", t.TempDir()
	if err := edm.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `-sde "bogus": unknown process`) {
		t.Errorf("-sde bogus: %v", err)
	}
	// The sampling a run recommends is checked before it trains (the first
	// save refused it, and every step before was lost).
	for name, mod := range map[string]func(*Config){
		"sampler": func(c *Config) { c.SampleSampler = "bogus" },
		"steps":   func(c *Config) { c.SampleSteps = -5 },
		"churn":   func(c *Config) { c.SampleSampler, c.SampleChurn = "heun", -1 },
		"eps":     func(c *Config) { c.SampleEps = math.NaN() },
	} {
		var out bytes.Buffer
		c := tinyConfig(t.TempDir())
		c.Log = &out
		mod(&c)
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "recommended sampl") || strings.Contains(out.String(), "step ") {
			t.Errorf("recommended %s: %v\n%s", name, err, out.String())
		}
	}
	// A library caller's Config.Data whose fields disagree is refused (it
	// panicked, or trained on the values past the slice's length).
	for name, mod := range map[string]func(*data.Dataset){
		"short":         func(d *data.Dataset) { d.Images = d.Images[:10] },
		"short, longer": func(d *data.Dataset) { d.Images = d.Images[:len(d.Images)-64] },
		"labels":        func(d *data.Dataset) { d.Labels = make([]uint8, 3) },
		"no shape":      func(d *data.Dataset) { d.Channels = 0 },
	} {
		dir := t.TempDir()
		c := tinyConfig(dir)
		mod(c.Data)
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "data: ") {
			t.Errorf("Config.Data %s: %v", name, err)
		}
		if ckpts, _ := checkpoint.List(dir); len(ckpts) != 0 {
			t.Errorf("Config.Data %s: saved %v", name, ckpts)
		}
	}
	if _, err := Preset("huge", "mnist"); err == nil {
		t.Error("unknown preset accepted")
	}
	if _, err := Preset("long", "cifar10"); err == nil {
		t.Error("-preset long accepted for cifar10")
	}
	// long is the default recipe trained for 12,000 steps.
	for _, ds := range []string{"mnist", "fashion"} {
		def, err1 := Preset("default", ds)
		long, err2 := Preset("long", ds)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v, %v", ds, err1, err2)
		}
		if long.Steps != 12000 {
			t.Errorf("%s: long preset %d steps, want 12000", ds, long.Steps)
		}
		if ds == "mnist" { // sampled as measured: Heun 300/120, unguided (its guide is kept)
			if long.SampleSteps != 300 || long.SampleChurn != 120 || long.SampleAutoguide != 0 || long.GuideAt != 1.0/3 {
				t.Errorf("mnist long samples by %d steps, churn %g, autoguidance %g, guide at %g", long.SampleSteps, long.SampleChurn, long.SampleAutoguide, long.GuideAt)
			}
			long.SampleSteps, long.SampleChurn, long.SampleAutoguide = def.SampleSteps, def.SampleChurn, def.SampleAutoguide
		}
		long.Steps, long.Preset = def.Steps, def.Preset
		if !reflect.DeepEqual(def, long) {
			t.Errorf("%s: long preset differs from the default beyond its steps:\n%+v\n%+v", ds, long, def)
		}
	}
	c := tinyConfig(t.TempDir())
	c.Device = "cuda"
	if err := c.Validate(); cuda.Built == (err != nil) {
		t.Errorf("-device cuda in a build with gpu %v: %v", cuda.Built, err)
	}
}

// TestDeviceFailsFirst: a device that cannot be opened fails the run before
// its folder, its data or a checkpoint is touched (it failed after the data's
// download before).
func TestDeviceFailsFirst(t *testing.T) {
	saved := openDevice
	defer func() { openDevice = saved }()
	openDevice = func(string, io.Writer) (*cuda.Device, error) { return nil, errors.New("no GPU here") }
	dir := filepath.Join(t.TempDir(), "run")
	c := tinyConfig(dir)
	// Device "" passes Validate in every build; the stub fails it as a
	// missing GPU fails -device cuda in a gpu build.
	c.Device, c.Data, c.Dataset = "", nil, "folder:"+filepath.Join(t.TempDir(), "missing")
	var log bytes.Buffer
	c.Log = &log
	_, err := Run(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "no GPU here") {
		t.Fatalf("got %v, want the device's error", err)
	}
	if _, serr := os.Stat(dir); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("the run's folder exists after the device failed: %v", serr)
	}
	if log.Len() > 0 {
		t.Errorf("the run wrote before its device failed:\n%s", log.String())
	}
	// A folder another trainer holds is said to be busy, whatever the
	// device (on a GPU in exclusive mode the device would fail too).
	os.MkdirAll(dir, 0o755)
	l, err := fsutil.TryLock(filepath.Join(dir, lockName))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrBusy) {
		t.Errorf("a busy folder and a failing device: %v, want ErrBusy", err)
	}
}

// TestSigmasFromData: the schedule comes from the data's largest pairwise
// distance and is saved with the checkpoint, sampling defaults included.
func TestSigmasFromData(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.SigmasFromData, c.Steps = true, 2
	var log bytes.Buffer
	c.Log = &log
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	dmax, _, _, _ := data.MaxPairwiseDistance(context.Background(), c.Data, nil)
	st := final(t, dir)
	if st.Sigmas[0] != dmax || st.Sigmas[len(st.Sigmas)-1] != c.SigmaMin || len(st.Sigmas) < 3 {
		t.Fatalf("sigmas %v, max distance %g", st.Sigmas, dmax)
	}
	if st.SampleSteps != 5 || !(st.SampleEps > 0) {
		t.Fatalf("sampling defaults T=%d ε=%g", st.SampleSteps, st.SampleEps)
	}
	if !strings.Contains(log.String(), "σ from the data (NCSNv2)") {
		t.Fatalf("values not printed: %q", log.String())
	}

	// On the VE process σ₁ is its σ_max, and nothing else is taken; the
	// run's first line names no σ_max of before (it said σ 5 →).
	dir = t.TempDir()
	c = tinyConfig(dir)
	if err := c.UseSDE("ve"); err != nil {
		t.Fatal(err)
	}
	c.SigmasFromData, c.Steps, c.SigmaMax = true, 2, 5
	c.SigmaDist, c.Model.Precond, c.Model.SigmaData = SigmaDistLogNormal, model.PrecondEDM, 0.5 // said on the first line (it was not, with σ from the data)
	log.Reset()
	c.Log = &log
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	st = final(t, dir)
	if !strings.Contains(log.String(), "(the data's, above) → 0.01 (log-normal σ's, P_mean ") {
		t.Fatalf("VE: the first line does not say the σ's are log-normal:\n%s", log.String())
	}
	if st.Process.SigmaMax != dmax || st.Sigmas != nil {
		t.Fatalf("VE: σ_max %g, sigmas %v; max distance %g", st.Process.SigmaMax, st.Sigmas, dmax)
	}
	if l := log.String(); !strings.Contains(l, "takes σ₁ = ") || !strings.Contains(l, "on the VE process, σ from σ₁ (the data's, above) → ") || strings.Contains(l, "σ 5 →") {
		t.Fatalf("VE: the log does not say which σ_max it takes:\n%s", l)
	}
}

// TestContinuousProcesses: each continuous SDE trains (t ~ U(ε, 1), images
// noised as m(t)x + s(t)z), resumes bit-exactly, records its process in the
// checkpoint and logs its losses per tenth of t.
func TestContinuousProcesses(t *testing.T) {
	for _, name := range []string{"ve", "vp", "subvp"} {
		t.Run(name, func(t *testing.T) {
			a := t.TempDir()
			sa, sb := inOneGoAndResumed(t, a, func(c *Config) {
				if err := c.UseSDE(name); err != nil {
					t.Fatal(err)
				}
			})
			if !sameTrainingState(sa, sb) {
				t.Fatal("resumed run differs from the uninterrupted one")
			}
			if sa.Process.Name != name || sa.Sigmas != nil {
				t.Fatalf("process %+v, sigmas %v", sa.Process, sa.Sigmas)
			}
			rows := lossColumns(t, a)
			if len(rows) != 7 || len(rows[0]) != 2+tBuckets || rows[0][2] != "loss_t_0.0" {
				t.Fatalf("train.csv header %v, %d rows", rows[0], len(rows))
			}
			for _, r := range rows[1:] {
				if l, err := strconv.ParseFloat(r[1], 64); err != nil || !(l > 0) {
					t.Fatalf("loss %q", r[1])
				}
			}
		})
	}
	c := tinyConfig(t.TempDir())
	if err := c.UseSDE("edm"); err == nil {
		t.Fatal("unknown process accepted")
	}
	c.UseSDE("vp")
	c.SigmasFromData = true
	if _, err := Run(context.Background(), c); err == nil {
		t.Fatal("-sigmas-from-data with vp accepted")
	}
}

func TestFlipRows(t *testing.T) {
	img := []float32{1, 2, 3, 4, 5, 6} // two rows of three
	flipRows(img, 3)
	if want := []float32{3, 2, 1, 6, 5, 4}; !reflect.DeepEqual(img, want) {
		t.Fatalf("flipped %v, want %v", img, want)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestResumeKeepsItsPreset: resumed without -preset, a run keeps its own
// preset's steps and save interval (here the saved ones: "test" is no
// preset of Preset's), not those of the preset the command line defaults
// to; -steps still changes them, and a contradicting -preset is refused.
func TestResumeKeepsItsPreset(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.Steps, c.SaveEvery = 4, 2
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	d := tinyConfig(dir)
	d.Preset, d.Steps, d.SaveEvery = "default", 3600, 400 // cmd/train's defaults, -preset not given
	res, err := Run(context.Background(), d)
	if err != nil || res.Step != 4 {
		t.Fatalf("resumed without -preset: step %v, %v", res, err)
	}
	d.Steps, d.Set = 6, map[string]bool{"steps": true}
	if res, err := Run(context.Background(), d); err != nil || res.Step != 6 {
		t.Fatalf("-steps 6: %v, %v", res, err)
	}
	if _, err := checkpoint.Load(filepath.Join(dir, checkpoint.FileName(6))); err != nil {
		t.Fatalf("no checkpoint at step 6 (the run's save interval 2): %v", err)
	}
	d.Set = map[string]bool{"preset": true}
	if _, err := Run(context.Background(), d); !errors.Is(err, ErrMismatch) {
		t.Fatalf("-preset default on a test run: %v", err)
	}
	d.Preset, d.SigmasFromData, d.Set = "test", true, map[string]bool{"sigmas-from-data": true}
	if _, err := Run(context.Background(), d); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "-sigmas-from-data=false") {
		t.Fatalf("-sigmas-from-data on a run without: %v", err)
	}
}

// TestResumeKeepsItsPlan: a resume without -steps, -save-every or -keep
// keeps the run's own (a -steps 300 run resumed by a bare command stopped
// at the preset's 20, and the default -keep 5 pruned checkpoints a -keep 0
// run had kept); given, they change; pruning says what it removed, once.
func TestResumeKeepsItsPlan(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.Steps, c.SaveEvery, c.Keep = 4, 1, 0
	c.Set = map[string]bool{"steps": true, "save-every": true, "keep": true}
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	d := tinyConfig(dir)
	d.Steps, d.SaveEvery, d.Keep, d.Set = 6, 3, 1, map[string]bool{} // a bare command's defaults
	if res, err := Run(context.Background(), d); err != nil || res.Step != 4 {
		t.Fatalf("a bare resume: %+v, %v; want the run's own 4 steps", res, err)
	}
	d.Set = map[string]bool{"steps": true}
	if res, err := Run(context.Background(), d); err != nil || res.Step != 6 {
		t.Fatalf("-steps 6: %+v, %v", res, err)
	}
	if all, _ := checkpoint.List(dir); len(all) != 6 {
		t.Fatalf("%d checkpoints after -steps 6; want 6 (the run's -save-every 1 and -keep 0)", len(all))
	}
	var log bytes.Buffer
	d.Log, d.Steps, d.Keep, d.Set = &log, 8, 2, map[string]bool{"steps": true, "keep": true}
	if _, err := Run(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	all, _ := checkpoint.List(dir)
	if len(all) != 2 || strings.Count(log.String(), "note: keeping the newest 2 checkpoints (-keep 2; 0 keeps all): removed "+checkpoint.FileName(1)+", ") != 1 {
		t.Fatalf("-keep 2: %d checkpoints, log:\n%s", len(all), log.String())
	}
	// On a terminal the note starts a line of its own (it was written onto
	// the end of the progress bar's).
	log.Reset()
	d.Steps, d.Bar, d.Set["bar"] = 10, true, true
	if _, err := Run(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	at := strings.Index(out, "note: keeping the newest 2")
	if at < 0 || !strings.Contains(out[:at], "%") || !strings.ContainsAny(out[at-1:at], "\r\n") {
		t.Fatalf("the note beside the progress bar: %q", out)
	}
}

// TestResumeNeverOverwrites: -resume refuses a -ckpt-dir holding another
// run's checkpoints, and an earlier checkpoint of its own folder where
// later ones would be overwritten, leaving every file as it was; it
// continues the newest checkpoint of its folder, and any into a new one.
func TestResumeNeverOverwrites(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		cfg := tinyConfig(dir)
		cfg.Steps, cfg.SaveEvery = 4, 2
		if dir == b {
			cfg.Seed = 9
		}
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := os.ReadFile(filepath.Join(b, checkpoint.FileName(4)))
	resume := func(dir string, step, to int) error {
		cfg := tinyConfig(dir)
		cfg.Steps, cfg.SaveEvery, cfg.Resume = to, 2, filepath.Join(a, checkpoint.FileName(step))
		_, err := Run(context.Background(), cfg)
		return err
	}
	if err := resume(b, 2, 6); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "already holds another run (2 checkpoints, the last ckpt-00000004.ckpt)") {
		t.Fatalf("into another run's folder: %v", err)
	}
	if err := resume(a, 2, 6); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "holds later checkpoints (to ckpt-00000004.ckpt)") || !strings.Contains(err.Error(), "-ckpt-dir NEW branches from it") {
		t.Fatalf("an earlier checkpoint of its own folder: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(b, checkpoint.FileName(4))); !bytes.Equal(before, after) {
		t.Fatal("the other run's checkpoint changed")
	}
	if err := resume(a, 4, 6); err != nil {
		t.Fatalf("the newest checkpoint of its folder: %v", err)
	}
	if err := resume(c, 2, 4); err != nil {
		t.Fatalf("into a new folder: %v", err)
	}
	// Another run's checkpoint copied into the folder: it became the run,
	// the two runs' rows mixed in train.csv, and a's own were pruned.
	other, err := checkpoint.Load(filepath.Join(b, checkpoint.FileName(4)))
	if err != nil {
		t.Fatal(err)
	}
	other.Step = 8 // after a's last
	saved, err := checkpoint.Save(t.TempDir(), other)
	if err != nil {
		t.Fatal(err)
	}
	colleague := filepath.Join(a, "colleague.ckpt")
	if b, err := os.ReadFile(saved); err != nil || os.WriteFile(colleague, b, 0o644) != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig(a)
	cfg.Steps, cfg.SaveEvery, cfg.Resume = 10, 2, colleague
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "is not of the run in "+a+" (against its last checkpoint, ckpt-00000006.ckpt: its seed is 9, not 3)") {
		t.Fatalf("another run's checkpoint copied in: %v", err)
	}
	// Steps of nine digits: ckpt-100000000.ckpt is after ckpt-99999999.ckpt
	// (as text, before: it was overwritten).
	d := t.TempDir()
	st, err := checkpoint.Load(filepath.Join(a, checkpoint.FileName(4)))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []int{99999999, 100000000} {
		st.Step = step
		if _, err := checkpoint.Save(d, st); err != nil {
			t.Fatal(err)
		}
	}
	cfg = tinyConfig(d)
	cfg.Steps, cfg.SaveEvery, cfg.Resume = 100000001, 1, filepath.Join(d, checkpoint.FileName(99999999))
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "holds later checkpoints (to ckpt-100000000.ckpt)") {
		t.Fatalf("an earlier checkpoint at step 10⁸: %v", err)
	}
}

// TestFailedRunLeavesNoFolder: a run that fails before writing anything
// removes the -ckpt-dir it created (lock file included); a folder that was
// there stays.
func TestFailedRunLeavesNoFolder(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "new")
	cfg := tinyConfig(dir)
	cfg.Resume = filepath.Join(parent, "none.ckpt")
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("resumed a missing file")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the failed run left %s: %v", dir, err)
	}
	cfg.CkptDir = parent
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("resumed a missing file")
	}
	if _, err := os.Stat(parent); err != nil {
		t.Fatalf("the folder that was there is gone: %v", err)
	}
}

// TestCorruptNewestSaysHow: a damaged newest checkpoint stops the resume
// with the way round it, and that way resumes from the one before.
func TestCorruptNewestSaysHow(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.Steps, c.SaveEvery = 4, 2
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	newest := filepath.Join(dir, checkpoint.FileName(4))
	b, _ := os.ReadFile(newest)
	b[len(b)/2] ^= 1
	os.WriteFile(newest, b, 0o644)
	c.Steps = 6
	_, err := Run(context.Background(), c)
	if !errors.Is(err, checkpoint.ErrCorrupt) || !strings.Contains(err.Error(), "move "+checkpoint.FileName(4)+" out of "+dir+", and delete "+filepath.Join(dir, "latest")+" where it names it") {
		t.Fatalf("a corrupt newest checkpoint: %v", err)
	}
	os.Rename(newest, filepath.Join(t.TempDir(), "aside.ckpt"))
	if _, err := Run(context.Background(), c); !errors.Is(err, checkpoint.ErrCorrupt) || !strings.Contains(err.Error(), "delete it to take the newest there, "+checkpoint.FileName(2)) {
		t.Fatalf("latest naming the moved file: %v", err)
	}
	os.Remove(filepath.Join(dir, "latest"))
	var log bytes.Buffer
	c.Log = &log
	if res, err := Run(context.Background(), c); err != nil || res.Step != 6 || !strings.Contains(log.String(), "resuming from "+filepath.Join(dir, checkpoint.FileName(2))) {
		t.Fatalf("after the moves: %+v, %v\n%s", res, err, log.String())
	}
}

// TestScheduleFromSameImages: σ from a set of one image, or of copies of
// one, is a one-line error naming the set and why, not NCSNv2's "bad
// schedule: … need σ₁ = 0 > σ_L".
func TestScheduleFromSameImages(t *testing.T) {
	for _, n := range []int{1, 3} {
		ds := &data.Dataset{Name: "folder:/pics", Images: make([]float32, n*4), N: n, Channels: 1, Height: 2, Width: 2}
		for i := range ds.Images {
			ds.Images[i] = float32(i % 4)
		}
		_, err := ScheduleFromData(context.Background(), ds, 0.01, 5, io.Discard)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "folder:/pics: the noise scales come from the data's spread") || !strings.Contains(err.Error(), "at least two different images") {
			t.Errorf("%d images: %v", n, err)
		}
	}
}

// TestScheduleTooManyLevelsEarly: a σ_L so small that even a lower bound
// on σ₁ needs more levels than a ladder may have is refused before the
// exact pass over every pair (66 s on MNIST for -sigma-min 1e-300).
func TestScheduleTooManyLevelsEarly(t *testing.T) {
	ds := &data.Dataset{Name: "folder:/pics", Images: make([]float32, 3*4), N: 3, Channels: 1, Height: 2, Width: 2}
	for i := range ds.Images {
		ds.Images[i] = float32(i)
	}
	var log bytes.Buffer
	_, err := ScheduleFromData(context.Background(), ds, 1e-300, 5, &log)
	if !errors.Is(err, sde.ErrSchedule) || !strings.Contains(err.Error(), "give a larger σ_L") || !strings.Contains(err.Error(), "folder:/pics's first image") {
		t.Fatalf("σ_L 1e-300: %v", err)
	}
	if strings.Contains(log.String(), "computing the largest pairwise distance") {
		t.Fatalf("the exact pass was begun: %q", log.String())
	}
	if _, err := ScheduleFromData(context.Background(), ds, 0.01, 5, io.Discard); err != nil {
		t.Fatalf("σ_L 0.01: %v", err)
	}
}

// TestTimeLeft: the log's estimate of the time left, also for a run far
// too long to finish (it printed -2562047h47m16s).
func TestTimeLeft(t *testing.T) {
	for secs, want := range map[float64]string{0: "0s", 61.4: "1m1s", 5e13: "more than 100 years", math.Inf(1): "more than 100 years"} {
		if got := timeLeft(secs); got != want {
			t.Errorf("timeLeft(%g) = %q, want %q", secs, got, want)
		}
	}
}

// TestLatestNotRewritten: where `latest` still names an older checkpoint
// than the run's newest (its rewrite failed after the checkpoint was
// saved, as on a full disk), the run resumes from the newest, says so, and
// ends with the bits of an uninterrupted run (it resumed from the older one,
// training again the steps already saved).
func TestLatestNotRewritten(t *testing.T) {
	want, dir, c := sixAndFour(t)
	latest := filepath.Join(dir, "latest") // as the save of step 2 left it
	os.WriteFile(latest, []byte(checkpoint.FileName(2)+"\n"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(latest, old, old)
	var log bytes.Buffer
	c.Log, c.Steps = &log, 6
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "names "+checkpoint.FileName(2)+", but "+checkpoint.FileName(4)+" is newer and was saved after it") ||
		!strings.Contains(log.String(), "resuming from "+filepath.Join(dir, checkpoint.FileName(4))) {
		t.Fatalf("log:\n%s", log.String())
	}
	sameState(t, final(t, want), final(t, dir))
}

// TestLatestNotRewrittenAfterANewPlan: the newest checkpoint of a run
// resumed with another -steps, -save-every and -keep (checkpoint.RunMayChange
// names train's own JSON keys) is still taken as the run's own where
// `latest`'s rewrite failed; one of a run with another -lr, copied in, is
// not: it is passed over, naming the setting.
func TestLatestNotRewrittenAfterANewPlan(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	c := tinyConfig(dir)
	c.Steps, c.SaveEvery = 2, 2
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	c.Steps, c.SaveEvery, c.Keep, c.Set = 4, 1, 5, map[string]bool{"steps": true, "save-every": true, "keep": true}
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	setLatest := func() {
		latest := filepath.Join(dir, "latest")
		os.WriteFile(latest, []byte(checkpoint.FileName(2)+"\n"), 0o644)
		old := time.Now().Add(-time.Hour)
		os.Chtimes(latest, old, old)
	}
	setLatest()
	p, note, err := checkpoint.Current(dir)
	if err != nil || filepath.Base(p) != checkpoint.FileName(4) || !strings.Contains(note, "saved after it") {
		t.Fatalf("the run's own step 4, saved under another plan, not taken: %q %q %v", p, note, err)
	}
	o := tinyConfig(other)
	o.Steps, o.SaveEvery, o.LR = 6, 6, 2e-3
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(other, checkpoint.FileName(6)))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, checkpoint.FileName(6)), b, 0o644)
	setLatest()
	p, note, err = checkpoint.Current(dir)
	if err != nil || filepath.Base(p) != checkpoint.FileName(2) || !strings.Contains(note, "its training config has lr 0.002, not 0.001: passed over") {
		t.Fatalf("another -lr's checkpoint taken as the run's: %q %q %v", p, note, err)
	}
}

// TestLatestEditedBack: a `latest` edited by hand to go back to an earlier
// checkpoint is followed, and the run's later checkpoints are moved to an
// archive with a copy of the log: the branch then saves and prunes its
// own (pruning, which keeps the newest steps, deleted the new branch's
// checkpoints and kept the old ones, which it also overwrote one by one);
// a run there with nothing to do moves nothing (it archived them too).
func TestLatestEditedBack(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.Steps, c.SaveEvery = 10, 2
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	oldLog, _ := os.ReadFile(filepath.Join(dir, csvName))
	os.WriteFile(filepath.Join(dir, "latest"), []byte(checkpoint.FileName(4)+"\n"), 0o644)
	// A run with nothing to do (at step 4 of -steps 4) moves nothing.
	var idle bytes.Buffer
	c.Steps, c.Log, c.Set = 4, &idle, map[string]bool{"steps": true}
	if _, err := Run(context.Background(), c); err != nil || !strings.Contains(idle.String(), "nothing to do") {
		t.Fatalf("%v, log:\n%s", err, idle.String())
	}
	if all, _ := checkpoint.List(dir); len(all) != 5 {
		t.Fatalf("a run with nothing to do left %v", all)
	}
	var log bytes.Buffer
	c.Steps, c.Keep, c.Log = 8, 2, &log
	c.Set = map[string]bool{"steps": true, "keep": true}
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "holds 3 checkpoints after step 4, where latest points ("+checkpoint.FileName(6)+" to "+checkpoint.FileName(10)+")") {
		t.Fatalf("log:\n%s", log.String())
	}
	kept, _ := checkpoint.List(dir)
	if len(kept) != 2 || filepath.Base(kept[0]) != checkpoint.FileName(6) || filepath.Base(kept[1]) != checkpoint.FileName(8) {
		t.Fatalf("the folder keeps %v", kept)
	}
	if s := final(t, dir); s.Step != 8 {
		t.Fatalf("ended at %d", s.Step)
	}
	arch, _ := filepath.Glob(filepath.Join(dir, "archive-*"))
	if len(arch) != 1 {
		t.Fatalf("archives %v", arch)
	}
	moved, _ := checkpoint.List(arch[0])
	if len(moved) != 3 || filepath.Base(moved[2]) != checkpoint.FileName(10) {
		t.Fatalf("archived %v", moved)
	}
	if b, _ := os.ReadFile(filepath.Join(arch[0], csvName)); !bytes.Equal(b, oldLog) {
		t.Fatal("the archived log is not the old branch's")
	}
}

// TestDamagedLog: a train.csv emptied gets its header back (rows were
// appended headerless, which cmd/plot then refused); one that is not a
// training log, or has a broken row, stops the run with the way round it.
func TestDamagedLog(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.Steps, c.SaveEvery = 2, 2
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, csvName)
	os.WriteFile(log, nil, 0o644)
	c.Steps = 3
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(log); !bytes.HasPrefix(b, []byte("step,loss,")) || bytes.Count(b, []byte("\n")) != 2 {
		t.Fatalf("an emptied log after a step:\n%s", b)
	}
	for _, bad := range []string{"notes,not,a,log\n", "step,loss\n1,2\n3\n"} {
		os.WriteFile(log, []byte(bad), 0o644)
		c.Steps++
		if _, err := Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), "move it aside to go on with a new one") {
			t.Errorf("%q: %v", bad, err)
		}
		if b, _ := os.ReadFile(log); string(b) != bad {
			t.Errorf("%q became %q", bad, b)
		}
	}
	// Only the header of another run (killed in its first step) whose noise
	// levels were others: a new run writes its own header (its rows went
	// under the old one, and its resume was refused), and a log of rows
	// under other columns is refused, not appended to.
	other := t.TempDir()
	const stale = "step,loss,images_per_s,elapsed_s,loss_t_0.0,loss_t_0.5\n"
	os.WriteFile(filepath.Join(other, csvName), []byte(stale), 0o644)
	oc := tinyConfig(other)
	oc.Steps, oc.SaveEvery = 2, 2
	if _, err := Run(context.Background(), oc); err != nil {
		t.Fatal(err)
	}
	oc.Steps = 3
	if _, err := Run(context.Background(), oc); err != nil {
		t.Fatalf("resuming after a stale header: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(other, csvName)); bytes.HasPrefix(b, []byte(stale)) || bytes.Count(b, []byte("\n")) != 4 {
		t.Fatalf("the log after a stale header:\n%s", b)
	}
	b, _ := os.ReadFile(filepath.Join(other, csvName))
	head, rest, _ := bytes.Cut(b, []byte("\n"))
	renamed := bytes.Replace(head, []byte("loss_"), []byte("lost_"), 1)
	os.WriteFile(filepath.Join(other, csvName), append(append(renamed, '\n'), rest...), 0o644)
	oc.Steps = 4
	if _, err := Run(context.Background(), oc); err == nil || !strings.Contains(err.Error(), "another run's log; move it aside") {
		t.Errorf("rows under other columns: %v", err)
	}
	// A row mended by hand whose step is not a number is refused, not
	// dropped with the rows after the checkpoint.
	os.Remove(log)
	c.Steps++
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(log)
	rows := bytes.SplitAfter(good, []byte("\n"))
	rows[1] = append([]byte("one"), rows[1][bytes.IndexByte(rows[1], ','):]...)
	edited := bytes.Join(rows, nil)
	os.WriteFile(log, edited, 0o644)
	c.Steps++
	if _, err := Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), `row 2 has step "one", not a step number`) {
		t.Errorf("a row with a step that is not a number: %v", err)
	}
	if b, _ := os.ReadFile(log); !bytes.Equal(b, edited) {
		t.Error("the refused resume changed the log")
	}
	os.WriteFile(log, good, 0o644)
	// A deleted log is said (the resume began a new one without a word,
	// and cmd/plot's curves then started mid-run).
	os.Remove(log)
	var out bytes.Buffer
	c.Steps, c.Log = c.Steps+1, &out
	if _, err := Run(context.Background(), c); err != nil || !strings.Contains(out.String(), "has no training log (train.csv): a new one begins at step") {
		t.Fatalf("a deleted log: %v\n%s", err, out.String())
	}
}

// lossColumn is the step and loss of each row of dir's training log.
func lossColumn(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, csvName))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
		f := strings.Split(line, ",")
		out = append(out, f[0]+","+f[1])
	}
	return out
}

// sixAndFour runs 6 steps in one folder and 4 (saving every 2) in another,
// and returns the folders and the second run's config.
func sixAndFour(t *testing.T) (six, four string, c Config) {
	six, four = t.TempDir(), t.TempDir()
	c = tinyConfig(six)
	c.Steps, c.SaveEvery = 6, 2
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	c = tinyConfig(four)
	c.Steps, c.SaveEvery = 4, 2
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return six, four, c
}

// TestTornLogResumes: a process killed while writing a row of train.csv
// leaves the row cut short; the next run resumes, drops it with the rows
// past its checkpoint, and the log tells an uninterrupted run's losses.
func TestTornLogResumes(t *testing.T) {
	straight, dir, c := sixAndFour(t)
	log := filepath.Join(dir, csvName)
	b, _ := os.ReadFile(log)
	// Step 5 written, step 6 torn, then the kill (the checkpoint is step 4's).
	rows := strings.Split(strings.TrimSpace(string(b)), "\n")
	torn := append(b, []byte("5"+rows[len(rows)-1][1:]+"\n6,61.2")...)
	if err := os.WriteFile(log, torn, 0o644); err != nil {
		t.Fatal(err)
	}
	c.Steps = 6
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatalf("resuming after a torn row: %v", err)
	}
	if got, want := lossColumn(t, dir), lossColumn(t, straight); !slices.Equal(got, want) {
		t.Fatalf("log after the resume:\n%v\nuninterrupted:\n%v", got, want)
	}
}

// TestLogWithoutCheckpointKept: a train.csv in a -ckpt-dir without
// checkpoints (another run's, or one killed before its first save) is moved
// into an archive folder by a fresh start, and refuses a -resume from
// elsewhere; it is never cut.
func TestLogWithoutCheckpointKept(t *testing.T) {
	other, dir := t.TempDir(), t.TempDir()
	c := tinyConfig(other)
	c.Steps, c.SaveEvery, c.Seed = 4, 2, 9
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(filepath.Join(other, csvName))
	os.WriteFile(filepath.Join(dir, csvName), old, 0o644)
	c = tinyConfig(dir)
	c.Steps, c.SaveEvery, c.Resume = 4, 2, filepath.Join(other, checkpoint.FileName(2))
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "of 4 rows and no checkpoint") {
		t.Fatalf("-resume into a folder holding only a log: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, csvName)); !bytes.Equal(b, old) {
		t.Fatal("the refused resume changed the log")
	}
	var buf bytes.Buffer
	c.Resume, c.Steps, c.Log = "", 3, &buf
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	arch, _ := filepath.Glob(filepath.Join(dir, "archive-*", csvName))
	if len(arch) != 1 {
		t.Fatalf("archived logs %v; the run said:\n%s", arch, buf.String())
	}
	if b, _ := os.ReadFile(arch[0]); !bytes.Equal(b, old) {
		t.Fatal("the archived log is not the earlier one")
	}
	if !strings.Contains(buf.String(), "no checkpoint of its run: moved to ") {
		t.Errorf("the run did not say where the log went:\n%s", buf.String())
	}
	if n := len(lossColumn(t, dir)); n != 3 {
		t.Errorf("the new log has %d rows, want 3", n)
	}
	// The same -resume run again after a kill before its first save finds
	// only its own later rows: it goes on, and cuts them back.
	branch := t.TempDir()
	lines := strings.SplitAfter(string(old), "\n")
	os.WriteFile(filepath.Join(branch, csvName), []byte(lines[0]+lines[3]+lines[4][:10]), 0o644) // rows 3 and a torn 4
	c = tinyConfig(branch)
	c.Steps, c.SaveEvery, c.Seed, c.Resume = 4, 2, 9, filepath.Join(other, checkpoint.FileName(2))
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatalf("the same -resume again: %v", err)
	}
	if got, want := lossColumn(t, branch), lossColumn(t, other); !slices.Equal(got, want[2:]) {
		t.Errorf("the branch's log %v, want %v", got, want[2:])
	}
	// Another branch's log (from step 3: its first row is 4), no
	// checkpoint: a -resume from step 2 is refused (it was cut to nothing).
	later := t.TempDir()
	kept := lines[0] + lines[4]
	os.WriteFile(filepath.Join(later, csvName), []byte(kept), 0o644)
	c.CkptDir = later
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "of 1 row and no checkpoint") {
		t.Fatalf("-resume into a folder holding another branch's log: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(later, csvName)); string(b) != kept {
		t.Fatal("the refused resume changed the other branch's log")
	}
}

// TestLogRowsWrittenAtOnce: each row is in the file, whole, as soon as it
// is logged (a kill loses no row before it; cmd/plot sees it).
func TestLogRowsWrittenAtOnce(t *testing.T) {
	dir := t.TempDir()
	l, err := openCSV(dir, []string{"a"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if err := l.row(1, 2.5, 100, 1, []float64{2.5}, []int{0}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, csvName)); !strings.HasSuffix(string(b), "\n1,2.5,100.0,1.0,2.5\n") {
		t.Fatalf("the log before close: %q", b)
	}
}

// TestArchiveNames: two archives made in the same second get two folders.
func TestArchiveNames(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	a, err := newArchive(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newArchive(dir, now)
	if err != nil || a == b {
		t.Fatalf("second archive %q (%v), first %q", b, err, a)
	}
}

// TestCkptDirInImageFolderRefused: nothing is written into a folder
// dataset's image folder, checkpoints included.
func TestCkptDirInImageFolderRefused(t *testing.T) {
	pics := t.TempDir()
	c, err := Preset("default", "folder:"+pics)
	if err != nil {
		t.Fatal(err)
	}
	c.CkptDir = filepath.Join(pics, "run")
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "is inside the image folder") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(c.CkptDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused run made its folder: %v", err)
	}
	c.CkptDir = pics + "-run" // beside it is fine
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestBareResumeTakesTheRunsOwn: a resume without -dataset continues the
// run's dataset (a Fashion-MNIST run was refused as "not mnist", pointed at
// -fresh); a -dataset given that contradicts it is still refused. A run
// begun with -steps is not told, on a bare resume, that its step count is
// not its preset's (the note is for counts the preset changed since).
func TestBareResumeTakesTheRunsOwn(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.Dataset, c.Steps = "fashion", 3
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	c = tinyConfig(dir)
	c.Set = map[string]bool{"dataset": true, "steps": true}
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "trained on fashion, not mnist") {
		t.Fatalf("-dataset mnist given: %v", err)
	}
	c.Set = map[string]bool{"steps": true}
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatalf("no -dataset given: %v", err)
	}
	if s := final(t, dir); s.Step != 6 || s.Dataset != "fashion" {
		t.Fatalf("step %d of %s", s.Step, s.Dataset)
	}
	// With its data folder: not the default data/mnist of the command line,
	// whose MNIST files the fetcher took for corrupt Fashion-MNIST ones.
	c.DataDir, c.Log = "data/mnist", io.Discard
	for _, given := range []bool{false, true} {
		c.Set["data-dir"] = given
		r, err := start(c)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{false: "data/fashion", true: "data/mnist"}[given]; r.cfg.DataDir != want {
			t.Fatalf("-data-dir given %v: data folder %q, want %q", given, r.cfg.DataDir, want)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir = t.TempDir()
	c = tinyConfig(dir)
	c.Preset, c.Set = "default", map[string]bool{"steps": true}
	defer func() { wrapObjective = nil }()
	if _, err := Run(cancelAtStep(1), c); !errors.Is(err, ErrInterrupted) {
		t.Fatal(err)
	}
	wrapObjective = nil
	var log bytes.Buffer
	c = tinyConfig(dir)
	c.Preset, c.Set, c.Log = "default", map[string]bool{}, &log
	if _, err := Run(ctx, c); !errors.Is(err, ErrInterrupted) || strings.Contains(log.String(), "preset's") || !strings.Contains(log.String(), "at step 1 of 6") {
		t.Fatalf("%v; log %q", err, log.String())
	}
}

// TestReplanNote: a resume with another step count says what else changes
// (it changed silently: a cosine decay restarted from 0, a guide dropped).
func TestReplanNote(t *testing.T) {
	base := tinyConfig("")
	base.Steps, base.LR = 30, 1e-3
	for _, c := range []struct {
		name               string
		mod                func(*Config)
		steps, at, guideAt int
		want               string
	}{
		{"same steps", func(*Config) {}, 30, 10, 0, ""},
		{"done", func(*Config) {}, 20, 25, 0, ""},
		{"cosine", func(c *Config) { c.LRDecay = "cosine" }, 40, 30, 0, "the cosine decay now ends at step 40 (learning rate at step 30: 0.000146, was 0)"},
		{"guide moves", func(c *Config) { c.GuideAt = 0.5 }, 60, 10, 0, "autoguidance's guide will be the EMA of step 30 (was to be 15)"},
		{"guide stays", func(c *Config) { c.GuideAt = 0.5 }, 60, 40, 15, "the guide stays the EMA of step 15"},
		{"guide replaced at its step", func(c *Config) { c.GuideAt = 0.5 }, 60, 30, 15, "autoguidance's guide will be the EMA of step 30, replacing that of step 15"},
		{"guide lost", func(c *Config) { c.Steps, c.GuideAt = 300, 1.0/3 }, 60, 55, 0, "the new plan's guide step 20 is behind, so the run keeps no autoguidance guide"},
		{"too few", func(c *Config) { c.GuideAt = 0.5 }, 1, 0, 0, "no autoguidance guide is kept (too few steps for one)"},
	} {
		saved := base
		c.mod(&saved)
		keep := saved
		keep.Steps = c.steps
		got := replanNote(saved, keep, &checkpoint.State{Step: c.at, GuideStep: c.guideAt})
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestFolderMovedResumes: a folder run whose images moved resumes with
// -dataset folder:NEWPATH, saying so, and records the new path (it was
// refused, with -fresh — which archives the run — as the way on); a
// -dataset of another kind is still refused.
func TestFolderMovedResumes(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.Dataset, c.Steps = "folder:/old/pics", 3
	c.Data.Name = c.Dataset
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	c.Dataset, c.Steps, c.Log = "folder:/new/pics", 6, &out
	c.Data.Name = c.Dataset
	c.Set = map[string]bool{"dataset": true, "steps": true}
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatalf("-dataset folder:NEW: %v", err)
	}
	if !strings.Contains(out.String(), "was trained on folder:/old/pics; it goes on with the images of folder:/new/pics") {
		t.Fatalf("no note of the move:\n%s", out.String())
	}
	if s := final(t, dir); s.Step != 6 || s.Dataset != "folder:/new/pics" {
		t.Fatalf("step %d of %s", s.Step, s.Dataset)
	}
	// The checkpoints before and after the move are of one run: without
	// latest the newest is taken (it was "checkpoints of two runs").
	os.Remove(filepath.Join(dir, "latest"))
	if p, err := checkpoint.Latest(dir); err != nil || filepath.Base(p) != checkpoint.FileName(6) {
		t.Fatalf("no latest, a moved folder run: %s, %v", p, err)
	}
	c.Dataset, c.Steps = "mnist", 9
	c.Data.Name = c.Dataset
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "trained on folder:/new/pics, not mnist") {
		t.Fatalf("a folder run resumed as mnist: %v", err)
	}
	// A Go caller, which always gives a Dataset, goes on with another
	// folder only where the run's is gone: another folder beside it is
	// another dataset.
	there := t.TempDir()
	d := tinyConfig(t.TempDir())
	d.Dataset, d.Steps = "folder:"+there, 3
	d.Data.Name = d.Dataset
	if _, err := Run(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	d.Dataset, d.Steps = "folder:"+t.TempDir(), 6
	d.Data.Name = d.Dataset
	if _, err := Run(context.Background(), d); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "was trained on folder:"+there) {
		t.Fatalf("a Go caller's other folder, the run's still there: %v", err)
	}
	os.Remove(there)
	if _, err := Run(context.Background(), d); err != nil {
		t.Fatalf("a Go caller's other folder, the run's gone: %v", err)
	}
}

// TestResumeAFolder: -resume given a run's folder says to give a file, or
// -ckpt-dir (it said "checkpoint: open DIR: not a regular file").
func TestResumeAFolder(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.Steps = 3
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	c = tinyConfig(t.TempDir())
	c.Resume, c.Steps = dir, 6
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "-resume "+dir+" is a folder; it takes a checkpoint file (-ckpt-dir "+dir+" resumes") {
		t.Fatalf("-resume DIR: %v", err)
	}
}

// TestResumeOtherSamplerName: a checkpoint recommending a sampler of
// another build (a Go caller's name) resumes without the recommendation,
// saying so (Validate refused the run's plan).
func TestResumeOtherSamplerName(t *testing.T) {
	c := tinyConfig(t.TempDir())
	c.Steps = 3
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	st := final(t, c.CkptDir)
	var tc map[string]any
	json.Unmarshal(st.Train, &tc)
	tc["sample_sampler"] = "ALD"
	st.Train, _ = json.Marshal(tc)
	st.SampleSampler = "ALD"
	other := t.TempDir()
	if _, err := checkpoint.Save(other, st); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	c.CkptDir, c.Steps, c.Log = other, 5, &log
	if _, err := Run(context.Background(), c); err != nil || !strings.Contains(log.String(), `recommends a sampler this build does not have ("ALD"): the run goes on recommending none`) {
		t.Fatalf("%v\n%s", err, log.String())
	}
}

// TestForeignNewestWithoutLatest: where `latest` is gone, a checkpoint of
// another run named after the run's last (copied in) is not taken for the
// run's newest: it was resumed, sampled and the run's own pruned. The
// refusal says what to write; written, the run goes on.
func TestForeignNewestWithoutLatest(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		cfg := tinyConfig(dir)
		cfg.Steps, cfg.SaveEvery = 4, 2
		if dir == b {
			cfg.Seed, cfg.Steps = 9, 6
		}
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(a, "latest"))
	if raw, err := os.ReadFile(filepath.Join(b, checkpoint.FileName(6))); err != nil || os.WriteFile(filepath.Join(a, checkpoint.FileName(6)), raw, 0o644) != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig(a)
	cfg.Steps, cfg.SaveEvery = 8, 2
	_, err := Run(context.Background(), cfg)
	if !errors.Is(err, checkpoint.ErrMixed) || !strings.Contains(err.Error(), "its newest checkpoint ckpt-00000006.ckpt is not of the run of ckpt-00000004.ckpt before it (its seed is 9, not 3): write the name of the one to go on from into "+filepath.Join(a, "latest")) {
		t.Fatalf("a foreign newest checkpoint, no latest: %v", err)
	}
	if _, err := checkpoint.Latest(a); !errors.Is(err, checkpoint.ErrMixed) {
		t.Fatalf("Latest (what cmd/sample reads): %v", err)
	}
	os.WriteFile(filepath.Join(a, "latest"), []byte(checkpoint.FileName(4)+"\n"), 0o644)
	var log bytes.Buffer
	cfg.Log = &log
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatalf("with latest written: %v", err)
	}
	if !strings.Contains(log.String(), "resuming from") || !strings.Contains(log.String(), checkpoint.FileName(4)) {
		t.Fatalf("with latest written, the log: %s", log.String())
	}
}
