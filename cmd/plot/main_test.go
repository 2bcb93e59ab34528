package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ckpt-00000300.ckpt")
	os.WriteFile(ckpt, []byte("x"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-nope"}, 2, "not defined"},
		{[]string{"-run", dir}, 1, "train.csv"},
		{[]string{"-run", ckpt}, 2, "is a file; give the run's folder (" + dir + ")"},
		{[]string{"x"}, 2, "unexpected argument"},
		{[]string{"-smooth", "-5"}, 2, "-smooth -5 must be ≥ 0"},
		{[]string{"-n", "5"}, 2, "-n and -steps-per-level go with -progress"},
		{[]string{"-progress", "-n", "-1"}, 2, "-n -1 must be from 1 to 1024"},
		{[]string{"-progress", "-n", "100000000"}, 2, "-n 100000000 must be from 1 to 1024 (samples per checkpoint)"},
		{[]string{"-progress", "-steps-per-level", "1000000000"}, 2, "-steps-per-level 1000000000 must be from 1 to 1000000 (0: each checkpoint's own)"},
		{[]string{"-out", ""}, 2, "-out is empty"},
	} {
		var errb bytes.Buffer
		if code := run(tc.args, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errb.String())
		}
	}
}
