package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-nope"}, 2, "not defined"},
		{[]string{"-run", dir}, 1, "train.csv"},
		{[]string{"x"}, 2, "unexpected argument"},
		{[]string{"-smooth", "-5"}, 2, "-smooth -5 must be ≥ 0"},
		{[]string{"-n", "5"}, 2, "-n and -steps-per-level go with -progress"},
		{[]string{"-progress", "-n", "-1"}, 2, "-n -1 must be positive"},
		{[]string{"-out", ""}, 2, "-out must name a folder"},
	} {
		var errb bytes.Buffer
		if code := run(tc.args, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errb.String())
		}
	}
}
