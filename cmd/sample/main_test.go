package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ckpt")
	os.WriteFile(bad, []byte("NCSNCKPTgarbage"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-n", "x"}, 2, "invalid value"},
		{[]string{"-ckpt", ""}, 2, "-ckpt is empty"},
		{[]string{"-data-dir", dir}, 2, "-data-dir goes with -inpaint test:N"},
		{[]string{"-ckpt", filepath.Join(dir, "none")}, 1, "none"},
		{[]string{"-ckpt", bad, "-out", filepath.Join(dir, "g.png")}, 1, bad},
		{[]string{"-ckpt", dir}, 1, "no checkpoint"},
		{[]string{"-ckpt", bad, "-n", "0"}, 1, "-n 0"},
		{[]string{"-ckpt", bad, "-autoguide", "none", "-autoguide-weight", "2"}, 1, "-autoguide none turns it off"},
		{[]string{"-ckpt", bad, "-autoguide", bad, "-autoguide-weight", "0.5"}, 1, "from 1 (no guidance) to 100"},
		{[]string{"-ckpt", bad, "-autoguide", bad, "-autoguide-weight", "0"}, 2, "-autoguide-weight 0 must be"},
		{[]string{"-ckpt", bad, "-autoguide-weight", "0"}, 2, "-autoguide-weight 0 must be"},
		// 0 meant the default (no limit; a scale of 1), silently.
		{[]string{"-ckpt", bad, "-churn", "5", "-churn-max", "0"}, 2, "-churn-max 0 would churn at no σ"},
		{[]string{"-ckpt", bad, "-churn", "5", "-churn-noise", "0"}, 2, "-churn-noise 0 must be > 0"},
		{[]string{"-ckpt", bad, "-eps", "0"}, 2, "-eps 0 must be > 0"},
		{[]string{"-ckpt", bad, "-class", ""}, 2, "-class is empty"}, // 64 unguided samples, silently
		{[]string{"-ckpt", bad, "-autoguide", ""}, 2, "-autoguide is empty"},
		{[]string{"-ckpt", bad, "-sampler", ""}, 2, "-sampler is empty"},        // the recommended sampler, silently
		{[]string{"-ckpt", bad, "-colorize", ""}, 2, "-colorize is empty"},      // plain samples, silently
		{[]string{"-ckpt", bad, "-inpaint", ""}, 2, "-inpaint is empty"},        // plain samples, silently
		{[]string{"-ckpt", bad, "-out", "", "-gif", ""}, 1, "nothing to write"}, // both mean none
		{[]string{"-ckpt", bad, "-sampler", "pc", "-snr", "0"}, 2, "-sampler em is pc without its corrector"},
		{[]string{"-ckpt", bad, "-sampler", "ode", "-tol", "0"}, 2, "-tol 0 must be from 1e-10"},
		{[]string{"-ckpt", bad, "-sampler", "em", "-steps", "0"}, 2, "-steps 0 must be ≥ 1"},
		{[]string{"-ckpt", bad, "-steps-per-level", "-0"}, 2, "-steps-per-level 0 must be ≥ 1"},
	} {
		var out bytes.Buffer
		if code := run(tc.args, &out); code != tc.code || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d and %q", tc.args, code, out.String(), tc.code, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "g.png")); err == nil {
		t.Error("a PNG was written for a bad checkpoint")
	}
}
