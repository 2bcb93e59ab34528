package generate

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
		{Config{Autoguide: filepath.Join(t.TempDir(), "missing")}, "-autoguide"},
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
