package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestBadFlags: bad input is one clear line and a non-zero status, never a
// panic, and nothing is written.
func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-nope"}, 2, "flag provided but not defined"},
		{[]string{"-dataset", "imagenet"}, 2, "unknown dataset"},
		{[]string{"-preset", "huge"}, 2, "unknown preset"},
		{[]string{"-steps", "0", "-ckpt-dir", dir}, 1, "-steps 0"},
		// It kept no guide, and sampling ran unguided, with only a word.
		{[]string{"-preset", "smoke", "-steps", "20", "-guide-at", "0.99", "-ckpt-dir", dir}, 2, "-guide-at 0.99 of 20 steps comes at no step before the last: give a fraction from 0.05 (step 1) to 0.95 (step 19)"},
		{[]string{"-wipe", "-ckpt-dir", dir}, 1, "-wipe only goes with -fresh"},
		{[]string{"-resume", dir + "/none.ckpt", "-ckpt-dir", dir}, 1, "none.ckpt"},
		{[]string{"extra"}, 2, "unexpected argument"},
		// "" meant the default, silently (-sigma-dist "" named -p-mean).
		{[]string{"-sde", "", "-ckpt-dir", dir}, 2, "-sde is empty: give it a value, or leave it out for its default"},
		{[]string{"-sigma-dist", "", "-ckpt-dir", dir}, 2, "-sigma-dist is empty"},
		{[]string{"-resume", "", "-ckpt-dir", dir}, 2, "-resume is empty"},
		{[]string{"-mult", "1,x,2"}, 2, "-mult \"1,x,2\": want positive whole numbers"},
		{[]string{"-mult", "1,0"}, 2, "-mult \"1,0\""},
		{[]string{"-max-grad-norm", "-1", "-ckpt-dir", dir}, 1, "-max-grad-norm -1"},
		{[]string{"-lr-decay", "linear", "-ckpt-dir", dir}, 1, "unknown -lr-decay \"linear\" (none or cosine)"},
		{[]string{"-lr-warmup", "-5", "-ckpt-dir", dir}, 1, "-lr-warmup -5"},
		{[]string{"-ema", "1", "-ckpt-dir", dir}, 1, "-ema 1 must be in [0,1)"},
		{[]string{"-sde", "edm"}, 2, "unknown process \"edm\""},
		{[]string{"-sde", "vp", "-sigmas-from-data", "-ckpt-dir", dir}, 1, "does not go with -sde vp"},
		{[]string{"-sigma-max", "0.005", "-ckpt-dir", dir}, 1, "-sigma-max 0.005 must be above the VE process's σ_min = 0.01"},
		{[]string{"-sigma-max", "0.005", "-preset", "ladder", "-ckpt-dir", dir}, 1, "-sigma-max 0.005 must be above σ_L = 0.01"},
		{[]string{"-sigma-max", "1e300", "-ckpt-dir", dir}, 1, "and at most 10000"},
		{[]string{"-lr", "Inf", "-ckpt-dir", dir}, 1, "-lr +Inf must be a positive finite learning rate"},
		{[]string{"-keep", "-1", "-ckpt-dir", dir}, 1, "-keep -1 must be ≥ 0"},
		{[]string{"-levels", "1", "-sde", "ncsn", "-ckpt-dir", dir}, 1, "-levels 1 must be from 2 to 10000"},
		{[]string{"-levels", "12", "-ckpt-dir", dir}, 2, "-sde ve is continuous in time"},
		{[]string{"-sigma-dist", "lognormal", "-preset", "ladder", "-ckpt-dir", dir}, 2, "-sigma-dist is how the VE process draws its σ's; this run trains -sde ncsn"},
		{[]string{"-sigma-dist", "uniform", "-sde", "subvp", "-ckpt-dir", dir}, 2, "this run trains -sde subvp"},
		{[]string{"-lr-warmup", "1000", "-steps", "20", "-ckpt-dir", dir}, 1, "-lr-warmup 1000 must be shorter than the run's -steps 20"},
		{[]string{"-dataset", "folder:" + dir, "-size", "0", "-ckpt-dir", dir}, 2, "-size 0: give 32 or 64"},
		{[]string{"-p-mean", "-1", "-preset", "ladder", "-ckpt-dir", dir}, 2, "-p-mean and -p-std shape the log-normal σ's; this run's σ's are not log-normal"},
		{[]string{"-p-std", "1", "-sigma-dist", "uniform", "-ckpt-dir", dir}, 2, "this run's σ's are not log-normal"},
		{[]string{"-p-std", "0", "-ckpt-dir", dir}, 2, "-p-std 0 must be positive"},
		{[]string{"-p-mean", "NaN", "-ckpt-dir", dir}, 1, "-p-mean NaN must be a number in"},
		{[]string{"-guide-at", "1", "-ckpt-dir", dir}, 1, "-guide-at 1 must be a fraction of -steps in (0, 1)"},
		{[]string{"-guide-at", "0.5", "-classifier", "-ckpt-dir", dir}, 1, "-guide-at keeps a score model's guide"},
		{[]string{"-levels", "20", "-sigmas-from-data", "-ckpt-dir", dir}, 2, "does not go with -sigma-max or -levels"},
		{[]string{"-levels", "20", "-sde", "ve", "-ckpt-dir", dir}, 2, "-sde ve is continuous in time"},
		{[]string{"-sigma-max", "5", "-sde", "vp", "-ckpt-dir", dir}, 2, "-sde vp has no σ"},
		{[]string{"-flip", "-ckpt-dir", dir}, 2, "-flip is for CIFAR-10 and folder datasets, not mnist"},
		{[]string{"-flip=false", "-dataset", "fashion", "-ckpt-dir", dir}, 2, "-flip is for CIFAR-10 and folder datasets, not fashion"},
		{[]string{"-size", "32", "-dataset", "cifar10", "-ckpt-dir", dir}, 2, "-size and -grey are for folder datasets"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			if code := run(tc.args, &out); code != tc.code || !strings.Contains(out.String(), tc.want) {
				t.Errorf("exit %d, output %q; want exit %d and %q", code, out.String(), tc.code, tc.want)
			}
			if n := strings.Count(strings.TrimSpace(out.String()), "\n"); tc.code == 1 && n != 0 {
				t.Errorf("%d lines: %q", n+1, out.String())
			}
		})
	}
}
