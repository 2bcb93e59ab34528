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
		{[]string{"-dataset", "svhn", "-samples", "x"}, 1, "unknown dataset"},
		{[]string{"-dataset", "mnist"}, 1, "no -samples"},
		{[]string{"x"}, 2, "unexpected argument"},
		{[]string{"-samples", "x", "-autoguide", "y", "-autoguide-weight", "0"}, 2, "-autoguide-weight 0 must be"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errb.String())
		}
	}
}
