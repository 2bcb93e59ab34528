package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-nope"}, 2, "not defined"},
		{[]string{"-churn-noise", "0", "-samples", "x"}, 2, "-churn-noise 0 must be > 0"},
		{[]string{"-churn-max", "0", "-samples", "x"}, 2, "-churn-max 0 would churn at no σ"},
		{[]string{"-tol", "0", "-bpd", "-samples", "x"}, 2, "-tol 0 must be from 1e-10"}, // was the default, silently
		{[]string{"-snr", "0", "-samples", "x"}, 2, "-snr 0 must be > 0"},
		{[]string{"-class", "", "-samples", "x"}, 2, "-class is empty"},
		{[]string{"-dataset", "svhn", "-samples", "x"}, 1, "unknown dataset"},
		{[]string{"-dataset", "mnist"}, 1, "no -samples"},
		{[]string{"x"}, 2, "unexpected argument"},
		{[]string{"-dataset", "", "-samples", "x"}, 2, "-dataset is empty"},
		{[]string{"-samples", "x", "-autoguide", "y", "-autoguide-weight", "0"}, 2, "-autoguide-weight 0 must be"},
		{[]string{"-samples", "x", "-grey"}, 2, "-size, -grey and -nn-out go with -dataset folder:PATH"},
		{[]string{"-samples", "x", "-guidance", "3"}, 2, "-guidance and -classifier go with -class"}, // was ignored
		{[]string{"-samples", "x", "-classifier", "y"}, 2, "-guidance and -classifier go with -class"},
		{[]string{"-samples", "../../eval/testdata/png-garbage.png", "-n", "3"}, 1, "-n is for drawing samples from a checkpoint"},
		{[]string{"-samples", "../../eval", "-n", "3"}, 1, "-n is for drawing samples from a checkpoint, and -samples ../../eval holds none (cmd/train saves them in its -ckpt-dir: train first), nor PNGs"}, // "holds images"
		{[]string{"-samples", "../../eval/testdata/png-garbage.png", "-raw"}, 1, "-raw is for drawing samples from a checkpoint"},
		{[]string{"-samples", "../../eval/testdata/png-garbage.png", "-denoise=false"}, 1, "-denoise is for drawing samples from a checkpoint"},
		{[]string{"-samples", "../../eval/testdata/png-garbage.png", "-autoguide", "self"}, 1, "-autoguide is for drawing samples from a checkpoint, and -samples ../../eval/testdata/png-garbage.png is not one (nor a folder of them)"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errb.String())
		}
	}
}
