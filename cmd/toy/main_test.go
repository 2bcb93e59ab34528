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
		{[]string{"-points", "5", "-out", t.TempDir()}, 1, "-points 5"},
		{[]string{"-points", "100000000000", "-out", t.TempDir()}, 1, "need 100 to 1000000"},
		{[]string{"-out", ""}, 2, "-out must name a folder"},
		{[]string{"x"}, 2, "unexpected argument"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errb.String())
		}
	}
}
