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
		{[]string{"-dataset", "svhn"}, 2, "unknown dataset"},
		{[]string{"-dataset", "folder:/no/such/folder"}, 1, "data: folder"},
		{[]string{"-steps-per-level", "0"}, 2, "must be positive"},
		{[]string{"-sigma-min", "-1"}, 2, "-sigma-min -1 must be in (0, 1)"},
		{[]string{"-sigma-min", "1000"}, 2, "-sigma-min 1000 must be in (0, 1)"},
		{[]string{"-grey"}, 2, "-size and -grey go with -dataset folder:PATH"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errb.String())
		}
	}
}
