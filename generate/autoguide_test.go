package generate

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
)

// TestAutoguidance: guided away from the run's own first checkpoint, the
// sampler evaluates two networks per score, gives the same bits for the same
// seed, and draws other samples than unguided; w = 1 is the unguided sampler
// exactly, at its cost.
func TestAutoguidance(t *testing.T) {
	for _, c := range []struct{ process, sampler string }{{"ncsn", "ald"}, {"ve", "heun"}, {"ve", "pc"}} {
		ck, _ := tinyRun(t, c.process)
		st := loadLatest(t, ck)
		first := filepath.Join(ck, "ckpt-00000001.ckpt")
		base := onlyItsFlags(c.process, Config{N: 3, Seed: 2, StepsPerLevel: 2, Steps: 30, Denoise: true, Sampler: c.sampler})
		draw := func(guide string, w float64) *Result {
			t.Helper()
			cfg := base
			cfg.Autoguide, cfg.AutoguideWeight = guide, w
			res, err := Draw(st, cfg)
			if err != nil {
				t.Fatalf("%s %s -autoguide %q -autoguide-weight %g: %v", c.process, c.sampler, guide, w, err)
			}
			return res
		}
		plain := draw("", 0)
		g := draw(first, 2)
		if g.Evals != 2*plain.Evals {
			t.Fatalf("%s: %d network evaluations guided, %d unguided: want twice", c.process, g.Evals, plain.Evals)
		}
		if again := draw(first, 2); !slices.Equal(again.Images, g.Images) {
			t.Fatalf("%s: the same seed drew other samples", c.process)
		}
		if slices.Equal(g.Images, plain.Images) {
			t.Fatalf("%s: w = 2 left the samples unchanged", c.process)
		}
		if def := draw(first, 0); !slices.Equal(def.Images, g.Images) {
			t.Fatalf("%s: no -autoguide-weight is not DefaultAutoguidance (%g)", c.process, float64(DefaultAutoguidance))
		}
		if one := draw(first, 1); !slices.Equal(one.Images, plain.Images) || one.Evals != plain.Evals {
			t.Fatalf("%s: w = 1 differs from the unguided sampler (%d evaluations against %d)", c.process, one.Evals, plain.Evals)
		}
	}
}

func TestAutoguidanceErrors(t *testing.T) {
	ck, _ := tinyRun(t, "ve")
	st := loadLatest(t, ck)
	first := filepath.Join(ck, "ckpt-00000001.ckpt")
	vp, _ := tinyRun(t, "vp")
	fashion, _ := tinyRunOf(t, "ve", "fashion", 1)
	colour, _ := tinyRunOf(t, "ve", "mnist", 3)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{AutoguideWeight: 2}, "-autoguide-weight goes with -autoguide"},
		{Config{Autoguide: first, AutoguideWeight: 0.5}, "from 1 (no guidance) to 100"},
		{Config{Autoguide: first, AutoguideWeight: -3}, "from 1 (no guidance) to 100"},
		{Config{Autoguide: filepath.Join(t.TempDir(), "missing")}, "(-autoguide takes a checkpoint, self or none)"},
		{Config{Autoguide: "Self"}, "(-autoguide takes a checkpoint, self or none)"},
		{Config{Autoguide: fashion}, "trained on fashion"},
		{Config{Autoguide: vp}, "does not fit the model's noise"},
		{Config{Autoguide: colour}, "draws 3×8×8 images"},
		{Config{Autoguide: tinyClassifier(t, "ve", "mnist")}, "is a classifier"},
	} {
		c.cfg.N, c.cfg.Steps, c.cfg.Sampler = 2, 3, "heun"
		_, err := Draw(st, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want a one-line error with %q", c.cfg, err, c.want)
		}
	}
}

// TestOwnGuide: a checkpoint that keeps a guide of its own run and
// recommends autoguidance gets it with its own sampler, bit for bit what the
// same weights as a separate -autoguide file give; "none" and another
// sampler turn it off, "self" turns it on for any sampler, and
// -autoguide-weight alone changes w.
func TestOwnGuide(t *testing.T) {
	ck, _ := tinyRun(t, "ve")
	st := loadLatest(t, ck)
	first := filepath.Join(ck, "ckpt-00000001.ckpt")
	g, err := checkpoint.Load(first)
	if err != nil {
		t.Fatal(err)
	}
	st.SampleSampler, st.SampleSteps, st.SampleChurn = "heun", 20, 10
	plain := *st
	st.Guide, st.GuideStep, st.SampleAutoguide = g.EMA, g.Step, 2
	draw := func(st *checkpoint.State, c Config) *Result {
		t.Helper()
		c.N, c.Seed = 3, 2
		res, err := Draw(st, c)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		return res
	}
	var log strings.Builder
	rec := draw(st, Config{Log: &log})
	if !strings.Contains(log.String(), "autoguidance: w = 2, guided away from the checkpoint's own EMA of step 1") {
		t.Fatalf("log: %q", log.String())
	}
	unguided := draw(&plain, Config{})
	if rec.Evals != 2*unguided.Evals || rec.Autoguide != AutoguideSelf || rec.AutoguideWeight != 2 || rec.Sampler != "heun" {
		t.Fatalf("recommended: %d evaluations (unguided %d), autoguide %q w %g, %s", rec.Evals, unguided.Evals, rec.Autoguide, rec.AutoguideWeight, rec.Sampler)
	}
	if file := draw(&plain, Config{Autoguide: first}); !slices.Equal(file.Images, rec.Images) {
		t.Fatal("the own guide differs from the same weights given as a file")
	}
	if none := draw(st, Config{Autoguide: AutoguideNone}); !slices.Equal(none.Images, unguided.Images) || none.Autoguide != "" {
		t.Fatal("-autoguide none is not the unguided sampler")
	}
	if w := draw(st, Config{AutoguideWeight: 1.5}); slices.Equal(w.Images, rec.Images) || w.AutoguideWeight != 1.5 || w.Evals != rec.Evals {
		t.Fatal("-autoguide-weight 1.5 did not change the recommended w")
	}
	pc := draw(st, Config{Sampler: "pc", Steps: 10})
	if pc2 := draw(&plain, Config{Sampler: "pc", Steps: 10}); pc.Evals != pc2.Evals || !slices.Equal(pc.Images, pc2.Images) {
		t.Fatal("another sampler than the checkpoint's was autoguided unasked")
	}
	if self := draw(st, Config{Sampler: "pc", Steps: 10, Autoguide: AutoguideSelf}); self.Evals != 2*pc.Evals {
		t.Fatalf("-sampler pc -autoguide self: %d evaluations, want %d", self.Evals, 2*pc.Evals)
	}
	// "self" takes the recommended w; read back from a saved file, the
	// recommendation is the same.
	st.SampleAutoguide = 3
	if self := draw(st, Config{Autoguide: AutoguideSelf}); self.AutoguideWeight != 3 {
		t.Fatalf("-autoguide self: w %g, want the recommended 3", self.AutoguideWeight)
	}
	dir := t.TempDir()
	if _, err := checkpoint.Save(dir, st); err != nil {
		t.Fatal(err)
	}
	saved := loadLatest(t, dir)
	if a, b := draw(saved, Config{}), draw(st, Config{}); !slices.Equal(a.Images, b.Images) || a.AutoguideWeight != 3 {
		t.Fatal("the saved checkpoint draws other samples than the state it was saved from")
	}
	early := plain
	early.Train = json.RawMessage(`{"guide_at":0.5,"steps":40}`)
	// Past the guide step without a guide (resumed with a smaller -steps),
	// and a fraction that comes at no step: there is no later checkpoint to
	// give (it said to give one).
	passed, never := plain, plain
	passed.Train, passed.Step = json.RawMessage(`{"guide_at":0.5,"steps":250}`), 250
	never.Train = json.RawMessage(`{"guide_at":0.99,"steps":20}`)
	own := t.TempDir() // the model's own weights as the guide
	if _, err := checkpoint.Save(own, &plain); err != nil {
		t.Fatal(err)
	}
	// With -raw the model samples its trained weights: a guide whose EMA
	// is those is the model; its own checkpoint, whose EMA differs, is not.
	rawSelf, rawOwn := plain, t.TempDir()
	asGuide := plain
	asGuide.EMA = plain.Weights.Clone()
	if _, err := checkpoint.Save(rawOwn, &asGuide); err != nil {
		t.Fatal(err)
	}
	if _, err := Draw(&plain, Config{N: 2, Autoguide: own, Raw: true, Sampler: "em", Steps: 2}); err != nil {
		t.Fatalf("-raw, guided by its own checkpoint's EMA: %v", err)
	}
	for _, c := range []struct {
		st   *checkpoint.State
		cfg  Config
		want string
	}{
		{&plain, Config{Autoguide: AutoguideSelf}, "keeps no guide"},
		// A run with a guide, saved before its guide step: "train with
		// -guide-at" was no help.
		{&early, Config{Autoguide: AutoguideSelf}, "was saved before the run kept its guide (at step 20, 0.5 of its 40 steps)"},
		{&passed, Config{Autoguide: AutoguideSelf}, "the run kept no guide (-guide-at 0.5 of its 250 steps came at no step"},
		{&never, Config{Autoguide: AutoguideSelf}, "the run kept no guide (-guide-at 0.99 of its 20 steps"},
		{&plain, Config{Autoguide: own}, "holds the model's own weights"},
		{&rawSelf, Config{Autoguide: rawOwn, Raw: true}, "holds the model's own weights"}, // -raw samples the trained weights
		{st, Config{Autoguide: AutoguideNone, AutoguideWeight: 2}, "-autoguide none turns it off"},
		{st, Config{Sampler: "pc", AutoguideWeight: 2}, "recommends no autoguidance for -sampler pc"},
	} {
		c.cfg.N = 2
		if _, err := Draw(c.st, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want a one-line error with %q", c.cfg, err, c.want)
		}
	}
}
