package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/data"
	"github.com/ncsn-go/ncsn/model"
	"github.com/ncsn-go/ncsn/sde"
)

func edmConfig(dir string) Config {
	c := tinyConfig(dir)
	c.Model.Precond = model.PrecondEDM
	return c
}

// TestEDMLoss: with EDM preconditioning the graph's per-image loss is
// DSMLoss of the network's own scores times (σ/c_out)², which is
// ½‖D − x‖²/c_out².
func TestEDMLoss(t *testing.T) {
	cfg := edmConfig(t.TempDir())
	cfg.Model.SigmaData = 0.5
	sig := []float64{1, 0.3, 0.05}
	loss, per, scores, z := runLossGraph(t, cfg.Model, []float64{1, 1, 1}, sig)
	_, plain := DSMLoss(scores, z, sig)
	var mean float64
	for i := range per {
		k := sde.EDMPreconditioning(sig[i], 0.5).LossScale
		want := k * k * plain[i]
		mean += want / 3
		if math.Abs(per[i]-want) > 1e-4*want {
			t.Fatalf("image %d: loss %g, want (σ/c_out)²·%g = %g", i, per[i], plain[i], want)
		}
	}
	if math.Abs(loss-mean) > 1e-4*mean {
		t.Fatalf("mean loss %g, want %g", loss, mean)
	}
}

// TestEDMRun: σ_data comes from the data and is saved; a resumed EDM run is
// exact; the preconditioning changes the training; a contradicting -precond
// on resume is an error.
func TestEDMRun(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	var log bytes.Buffer
	ca := edmConfig(a)
	ca.Log = &log
	if _, err := Run(context.Background(), ca); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "EDM preconditioning") || !strings.Contains(log.String(), "σ_data = ") {
		t.Fatalf("log does not state the preconditioning:\n%s", log.String())
	}
	sa := final(t, a)
	if want := RootMeanSquare(tinyData()); sa.Model.Precond != model.PrecondEDM || sa.Model.SigmaData != want {
		t.Fatalf("saved %q, σ_data %g; want edm, %g", sa.Model.Precond, sa.Model.SigmaData, want)
	}
	cb := edmConfig(b)
	cb.Steps = 3
	for _, steps := range []int{3, 6} {
		cb.Steps = steps
		if _, err := Run(context.Background(), cb); err != nil {
			t.Fatal(err)
		}
	}
	sb := final(t, b)
	if !reflect.DeepEqual(sa.Weights, sb.Weights) || !reflect.DeepEqual(sa.EMA, sb.EMA) || !reflect.DeepEqual(sa.M, sb.M) {
		t.Fatal("resumed EDM run differs from the uninterrupted one")
	}
	if _, err := Run(context.Background(), tinyConfig(c)); err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(final(t, c).Weights, sa.Weights) {
		t.Fatal("EDM preconditioning changed nothing")
	}
	cr := tinyConfig(a)
	cr.Steps, cr.Set = 9, map[string]bool{"precond": true}
	if _, err := Run(context.Background(), cr); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "-precond edm; -precond ncsnv2") {
		t.Fatalf("other preconditioning on resume: %v", err)
	}
	cr = edmConfig(a)
	cr.Steps, cr.Model.SigmaData, cr.Set = 9, 0.3, map[string]bool{"sigma-data": true}
	if _, err := Run(context.Background(), cr); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "-sigma-data") {
		t.Fatalf("other σ_data on resume: %v", err)
	}
	// Restated as the log printed it (4 decimals), σ_data from the data is
	// the run's own: it goes on with the exact value.
	printed, _ := strconv.ParseFloat(fmt.Sprintf("%.4f", sa.Model.SigmaData), 64)
	if printed == sa.Model.SigmaData {
		t.Fatalf("σ_data %g has no more than 4 decimals: the test needs another", printed)
	}
	cr = edmConfig(a)
	log.Reset()
	cr.Steps, cr.Model.SigmaData, cr.Set, cr.Log = 7, printed, map[string]bool{"sigma-data": true}, &log
	if _, err := Run(context.Background(), cr); err != nil || !strings.Contains(log.String(), "as printed; it goes on with its own") {
		t.Fatalf("σ_data restated as printed: %v\n%s", err, log.String())
	}
	if got := final(t, a).Model.SigmaData; got != sa.Model.SigmaData {
		t.Fatalf("σ_data %g after the resume, was %g", got, sa.Model.SigmaData)
	}
}

func TestEDMConfigErrors(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"vp":                 func(c *Config) { c.SDE = "vp" },
		"negative σ_data":    func(c *Config) { c.Model.SigmaData = -1 },
		"infinite σ_data":    func(c *Config) { c.Model.SigmaData = math.Inf(1) },
		"σ_data without EDM": func(c *Config) { c.Model.Precond, c.Model.SigmaData = "", 0.3 },
		"unknown":            func(c *Config) { c.Model.Precond = "vdm" },
	} {
		c := edmConfig(t.TempDir())
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) && !errors.Is(err, model.ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Asked for together (-classifier -precond edm: the flag is applied
	// after UseClassifier) they are refused; a preset's EDM gives way to the
	// classifier and to the continuous-time processes.
	c := edmConfig(t.TempDir())
	c.Classifier, c.Model.Classes = true, Classes
	if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "not the classifier") {
		t.Errorf("EDM classifier: %v", err)
	}
	mnist, err := Preset("default", "mnist")
	if err != nil || mnist.Model.Precond != model.PrecondEDM {
		t.Fatalf("the MNIST preset: %v, precond %q", err, mnist.Model.Precond)
	}
	for name, use := range map[string]func(*Config) error{
		"-classifier": (*Config).UseClassifier,
		"-sde vp":     func(c *Config) error { return c.UseSDE("vp") },
		"-sde subvp":  func(c *Config) error { return c.UseSDE("subvp") },
		"-sde ve":     func(c *Config) error { return c.UseSDE("ve") },
	} {
		c := mnist
		c.CkptDir = t.TempDir()
		if err := use(&c); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil || c.Model.Precond != "" {
			t.Errorf("the MNIST preset with %s: %v, precond %q", name, err, c.Model.Precond)
		}
	}
	ncsn := mnist
	if err := ncsn.UseSDE("ncsn"); err != nil || ncsn.Model.Precond != model.PrecondEDM {
		t.Errorf("the MNIST preset with -sde ncsn: %v, precond %q", err, ncsn.Model.Precond)
	}
	c = edmConfig(t.TempDir())
	c.SDE = "ve"
	if err := c.Validate(); err != nil {
		t.Errorf("edm with ve: %v", err)
	}
}

// TestLogNormalSigmaRun: -sigma-dist lognormal trains (and resumes exactly),
// draws other σ's than the uniform default, is saved and checked on resume,
// and is refused without VE and EDM.
func TestLogNormalSigmaRun(t *testing.T) {
	cfgOf := func(dir string, dist string) Config {
		c := edmConfig(dir)
		if err := c.UseSDE("ve"); err != nil {
			t.Fatal(err)
		}
		c.Model.Precond, c.SigmaDist = model.PrecondEDM, dist
		return c
	}
	a, b, u := t.TempDir(), t.TempDir(), t.TempDir()
	if _, err := Run(context.Background(), cfgOf(a, SigmaDistLogNormal)); err != nil {
		t.Fatal(err)
	}
	sa := final(t, a)
	cb := cfgOf(b, SigmaDistLogNormal)
	for _, steps := range []int{3, 6} {
		cb.Steps = steps
		if _, err := Run(context.Background(), cb); err != nil {
			t.Fatal(err)
		}
	}
	if sb := final(t, b); !reflect.DeepEqual(sa.Weights, sb.Weights) || !reflect.DeepEqual(sa.EMA, sb.EMA) {
		t.Fatal("resumed log-normal run differs from the uninterrupted one")
	}
	if _, err := Run(context.Background(), cfgOf(u, "")); err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(final(t, u).Weights, sa.Weights) {
		t.Fatal("the log-normal σ's changed nothing")
	}
	cr := cfgOf(a, "")
	cr.Steps, cr.Set = 9, map[string]bool{"sigma-dist": true}
	if _, err := Run(context.Background(), cr); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "-sigma-dist lognormal; -sigma-dist uniform") {
		t.Fatalf("other σ distribution on resume: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"unknown":     func(c *Config) { c.SigmaDist = "cauchy" },
		"without EDM": func(c *Config) { c.Model.Precond, c.Model.SigmaData = "", 0 },
		"on NCSN":     func(c *Config) { c.SDE = "" },
	} {
		c := cfgOf(t.TempDir(), SigmaDistLogNormal)
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "-sigma-dist") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestEDMPreset: the edm preset is the log-normal VE with EDM's
// preconditioning and recommends heun; -sde gives its σ distribution and
// sampler up; the recommendation reaches the checkpoint.
func TestEDMPreset(t *testing.T) {
	c, err := Preset("edm", "mnist")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.SDE != "ve" || c.SigmaDist != SigmaDistLogNormal || c.Model.Precond != model.PrecondEDM || c.SigmaMax != 5 ||
		c.SampleSampler != "heun" || c.SampleSteps != 300 || c.SampleChurn != 120 || c.Steps != 4000 {
		t.Fatalf("edm preset: %+v", c)
	}
	// It is MNIST's (and Fashion-MNIST's) default and long recipe, and
	// smoke's process; ladder is the previous default.
	for _, name := range []string{"default", "long", "smoke"} {
		p, err := Preset(name, "mnist")
		if err != nil || p.SDE != "ve" || p.SigmaDist != SigmaDistLogNormal || p.Model.Precond != model.PrecondEDM || p.SampleSampler != "heun" || p.LR != 2e-3 {
			t.Errorf("mnist %s: %v, %+v", name, err, p)
		}
	}
	// The default is edm with P_mean moved up from EDM's −1.2 to −0.8,
	// 3600 steps saved every 400, and Heun at half the steps and churn
	// autoguided by its EMA of a third of the way (MNIST only); edm keeps EDM's.
	if pm, ps := c.LogNormal(); pm != -1.2 || ps != 1.2 {
		t.Errorf("edm: P_mean %g, P_std %g, want EDM's −1.2, 1.2", pm, ps)
	}
	if d, _ := Preset("default", "mnist"); !reflect.DeepEqual(d, func() Config {
		c.Preset, c.PMean, c.Steps, c.SaveEvery = "default", -0.8, 3600, 400
		c.SampleSteps, c.SampleChurn, c.SampleAutoguide = 150, 60, 2
		return c
	}()) {
		t.Errorf("the default and edm presets differ in more than P_mean, steps and sampler:\n%+v\n%+v", d, c)
	}
	if l, _ := Preset("long", "mnist"); l.PMean != -0.8 || l.PStd != 1.2 {
		t.Errorf("mnist long: P_mean %g, P_std %g, want the default's −0.8, 1.2", l.PMean, l.PStd)
	}
	for _, name := range []string{"default", "long", "edm"} {
		if f, _ := Preset(name, "fashion"); f.PMean != -1.2 || f.PStd != 1.2 {
			t.Errorf("fashion %s: P_mean %g, P_std %g, want EDM's (not measured there)", name, f.PMean, f.PStd)
		}
	}
	if l, _ := Preset("long", "mnist"); l.Steps != 12000 {
		t.Errorf("long: %d steps", l.Steps)
	}
	ladder, err := Preset("ladder", "mnist")
	if err != nil || ladder.SDE != "" || ladder.SigmaDist != "" || ladder.Model.Precond != model.PrecondEDM || ladder.SigmaMax != 5 || ladder.Levels != 12 ||
		ladder.SampleSampler != "" || ladder.SampleSteps != 50 || ladder.SampleEps != 8e-5 || ladder.LR != 2e-3 || ladder.Validate() != nil {
		t.Errorf("ladder: %v, %+v", err, ladder)
	}
	if f, _ := Preset("default", "fashion"); f.SDE != "ve" || f.SigmaDist != SigmaDistLogNormal || f.Model.Precond != model.PrecondEDM || f.SampleSampler != "heun" || f.LR != 2e-3 {
		t.Errorf("fashion: %+v", f)
	}
	if f, err := Preset("ladder", "fashion"); err != nil || f.SDE != "" || f.SigmaDist != "" || f.Model.Precond != "" || f.SampleSampler != "" ||
		f.LR != 1e-3 || f.SigmaMax != 1 || f.Levels != 10 || f.SampleSteps != 0 || f.SampleEps != 0 || f.Validate() != nil {
		t.Errorf("fashion's ladder: %v, %+v", err, f)
	}
	for _, name := range []string{"edm", "ladder"} {
		if _, err := Preset(name, "cifar10"); !errors.Is(err, ErrConfig) {
			t.Errorf("%s preset for cifar10: %v", name, err)
		}
	}
	for _, name := range []string{"ncsn", "ve", "vp"} {
		c, _ := Preset("edm", "mnist")
		if err := c.UseSDE(name); err != nil {
			t.Fatal(err)
		}
		if c.SigmaDist != "" || c.PMean != 0 || c.PStd != 0 || c.SampleSampler != "" || c.SampleSteps != 0 || c.SampleChurn != 0 {
			t.Errorf("-sde %s kept the preset's σ distribution or sampler: %+v", name, c)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("-sde %s: %v", name, err)
		}
	}
	dir := t.TempDir()
	tc := edmConfig(dir)
	if err := tc.UseSDE("ve"); err != nil {
		t.Fatal(err)
	}
	tc.Model.Precond, tc.SigmaDist = model.PrecondEDM, SigmaDistLogNormal
	tc.SampleSampler, tc.SampleSteps, tc.SampleChurn = "heun", 300, 120
	if _, err := Run(context.Background(), tc); err != nil {
		t.Fatal(err)
	}
	if st := final(t, dir); st.SampleSampler != "heun" || st.SampleSteps != 300 || st.SampleChurn != 120 {
		t.Errorf("saved sampler %q, steps %d, churn %g", st.SampleSampler, st.SampleSteps, st.SampleChurn)
	}
}

// TestLogNormalParams: P_mean and P_std shape the log-normal σ's; EDM's
// values given explicitly train the same bits as none given (checkpoints of
// before they were saved); they are saved, checked on resume, and refused
// where the σ's are not log-normal.
func TestLogNormalParams(t *testing.T) {
	cfgOf := func(dir string, pMean, pStd float64) Config {
		c := edmConfig(dir)
		if err := c.UseSDE("ve"); err != nil {
			t.Fatal(err)
		}
		c.Model.Precond, c.SigmaDist, c.PMean, c.PStd = model.PrecondEDM, SigmaDistLogNormal, pMean, pStd
		return c
	}
	none, edm, moved := t.TempDir(), t.TempDir(), t.TempDir()
	for _, c := range map[string]Config{none: cfgOf(none, 0, 0), edm: cfgOf(edm, -1.2, 1.2), moved: cfgOf(moved, -0.8, 1.2)} {
		if _, err := Run(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	sn, se, sm := final(t, none), final(t, edm), final(t, moved)
	if !reflect.DeepEqual(sn.Weights, se.Weights) {
		t.Error("EDM's P_mean and P_std given explicitly trained other weights than none given")
	}
	if reflect.DeepEqual(sm.Weights, se.Weights) {
		t.Error("P_mean −0.8 changed nothing")
	}
	if pm, ps := savedConfig(t, moved).LogNormal(); pm != -0.8 || ps != 1.2 {
		t.Errorf("saved P_mean %g, P_std %g", pm, ps)
	}
	// Resume: the saved values hold; a contradicting flag is refused, one
	// that agrees (EDM's against a checkpoint that has none) is not.
	cr := cfgOf(moved, -1, 1.2)
	cr.Steps, cr.Set = 4, map[string]bool{"p-mean": true}
	if _, err := Run(context.Background(), cr); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "-p-mean -0.8; -p-mean -1 contradicts") {
		t.Errorf("other P_mean on resume: %v", err)
	}
	cr = cfgOf(none, -1.2, 1.2)
	cr.Steps, cr.Set = 4, map[string]bool{"p-mean": true, "p-std": true}
	if _, err := Run(context.Background(), cr); err != nil {
		t.Errorf("EDM's P_mean on resume of a run with none saved: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"uniform σ's":    func(c *Config) { c.SigmaDist = "" },
		"NaN P_mean":     func(c *Config) { c.PMean = math.NaN() },
		"huge P_mean":    func(c *Config) { c.PMean = 40 },
		"negative P_std": func(c *Config) { c.PStd = -1 },
		"P_mean alone":   func(c *Config) { c.PStd = 0 },
		"infinite P_std": func(c *Config) { c.PStd = math.Inf(1) },
	} {
		c := cfgOf(t.TempDir(), -0.8, 1.2)
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "-p-") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// What drops the log-normal σ's drops its parameters too.
	for name, use := range map[string]func(*Config) error{
		"-classifier": (*Config).UseClassifier,
		"-sde vp":     func(c *Config) error { return c.UseSDE("vp") },
	} {
		c := cfgOf(t.TempDir(), -0.8, 1.2)
		if err := use(&c); err != nil || c.PMean != 0 || c.PStd != 0 || c.Validate() != nil {
			t.Errorf("%s: %v, P_mean %g, P_std %g, %v", name, err, c.PMean, c.PStd, c.Validate())
		}
	}
}

// savedConfig is the training config saved with dir's latest checkpoint.
func savedConfig(t *testing.T, dir string) Config {
	t.Helper()
	var extra trainExtra
	if err := json.Unmarshal(final(t, dir).Train, &extra); err != nil {
		t.Fatal(err)
	}
	return extra.Config
}

// TestCIFARFlips: the ncsnv2 preset flips its images, as NCSNv2's
// random_flip (it did not, though README called it NCSNv2's settings);
// CIFAR-10 takes -flip and -flip=false; the digits' datasets refuse it.
func TestCIFARFlips(t *testing.T) {
	c, err := Preset("ncsnv2", "cifar10")
	if err != nil || !c.Flip {
		t.Fatalf("ncsnv2: flip %v, %v", c.Flip, err)
	}
	c.Set = map[string]bool{"flip": true}
	if err := c.UseImages(0, false, false); err != nil || c.Flip {
		t.Fatalf("ncsnv2 -flip=false: flip %v, %v", c.Flip, err)
	}
	d, _ := Preset("default", "cifar10")
	if d.Flip {
		t.Fatal("the default CIFAR-10 preset flips")
	}
	if err := d.UseImages(0, false, true); err != nil || !d.Flip {
		t.Fatalf("cifar10 -flip: flip %v, %v", d.Flip, err)
	}
	d.Set = nil
	if err := d.UseImages(0, false, false); err != nil || !d.Flip {
		t.Fatalf("no -flip given kept the flips: %v, %v", d.Flip, err)
	}
	// The start-up line says so.
	var log strings.Builder
	f := Config{Dataset: "cifar10", Preset: "test", Flip: true,
		Model: model.Config{Channels: 3, Height: 8, Width: 8, Base: 4, Mult: []int{1, 2}, EmbDim: 8, FourierScale: 4},
		Steps: 1, Batch: 2, LR: 1e-3, EMADecay: 0.9, SigmaMax: 1, SigmaMin: 0.05, Levels: 3, SaveEvery: 1, CkptDir: t.TempDir(), Log: &log,
		Data: &data.Dataset{Name: "cifar10", N: 4, Channels: 3, Height: 8, Width: 8, Images: make([]float32, 4*3*64)}}
	if _, err := Run(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "1 step of batch 2 (random horizontal flips), ") {
		t.Fatalf("the start-up line does not say the flips:\n%s", log.String())
	}
	for _, ds := range []string{"mnist", "fashion"} {
		m, _ := Preset("default", ds)
		if err := m.UseImages(0, false, true); !errors.Is(err, ErrConfig) {
			t.Errorf("%s -flip: %v", ds, err)
		}
	}
}

// TestConfigErrorsWrapErrConfig: a bad network or process in a Config is
// ErrConfig, as the package says of every configuration error (they came
// back bare); a hand-built dataset holding a value outside [0, 1] is
// refused naming the image (NaN surfaced as an error about σ_data).
func TestConfigErrorsWrapErrConfig(t *testing.T) {
	c, err := Preset("smoke", "mnist")
	if err != nil {
		t.Fatal(err)
	}
	c.Model.Base = 0
	if err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("base 0: %v", err)
	}
	v, _ := Preset("smoke", "mnist")
	if err := v.UseSDE("vp"); err != nil {
		t.Fatal(err)
	}
	v.BetaMax = -1
	if err := v.Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("β_max −1: %v", err)
	}
	d := &data.Dataset{Name: "mine", N: 2, Channels: 1, Height: 2, Width: 2, Images: make([]float32, 8)}
	d.Images[5] = float32(math.NaN())
	if err := d.Check(); err == nil || !strings.Contains(err.Error(), "data: mine: image 1 holds NaN; values are in [0, 1]") {
		t.Errorf("NaN: %v", err)
	}
	d.Images[5] = 1.5
	if err := d.Check(); err == nil {
		t.Error("1.5 taken")
	}
}
