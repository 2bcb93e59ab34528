package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// notes is a folder whose density_score.png holds a user's notes, not a
// picture: cmd/toy replaced it before.
func notes(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "density_score.png"), []byte("my notes, not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-nope"}, 2, "not defined"},
		{[]string{"-points", "5", "-out", t.TempDir()}, 2, "toy: -points 5 must be from 100 to 1000000"},
		{[]string{"-points", "100000000000", "-out", t.TempDir()}, 2, "must be from 100 to 1000000"},
		{[]string{"-out", ""}, 2, "-out is empty"},
		{[]string{"x"}, 2, "unexpected argument"},
		{[]string{"-out", notes(t)}, 1, "density_score.png exists and is not a PNG written before: not replaced"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errb.String())
		}
	}
}
