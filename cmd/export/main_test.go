package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad input: one line naming the flag or file, exit 1 (2 for unparsable
// flags), and nothing written.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ckpt")
	os.WriteFile(bad, []byte("NCSNCKPTgarbage"), 0o644)
	png := filepath.Join(dir, "x.safetensors")
	os.WriteFile(png, []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-force=x"}, 2, "invalid"},
		{[]string{"-ckpt", bad}, 1, "-out is needed"},
		{[]string{"-ckpt", bad, "-out", filepath.Join(dir, "m.safetensors")}, 1, bad},
		{[]string{"-ckpt", bad, "-out", filepath.Join(dir, "m.safetensors"), "-weights", "best"}, 2, "-weights \"best\" must be ema or raw"},
		{[]string{"-ckpt", bad, "-out", filepath.Join(dir, "m.safetensors"), "-weights", ""}, 2, "-weights is empty"}, // was ema, silently
		{[]string{"-import", png, "-out", filepath.Join(dir, "imp"), "-dataset", "foo"}, 2, "-dataset \"foo\": unknown dataset"},
		{[]string{"-import", png, "-out", filepath.Join(dir, "imp"), "-sde", "foo"}, 2, "export: -sde \"foo\": unknown process"},
		{[]string{"-ckpt", bad, "-out", dir + "/nd/"}, 1, "names a folder; give a file name"},
		{[]string{"-ckpt", bad, "-out", png}, 1, png + " exists"},
		{[]string{"-import", png, "-out", filepath.Join(dir, "imp")}, 1, png + ": safetensors: malformed file"},
		{[]string{"-import", filepath.Join(dir, "none"), "-out", filepath.Join(dir, "imp")}, 1, "none"},
		{[]string{"extra"}, 2, "unexpected argument"},
		{[]string{"-ckpt", bad, "-out", dir, "-force"}, 1, "is a folder; give a file name"},
		{[]string{"-ckpt", bad, "-out", filepath.Join(dir, "m.safetensors"), "-sde", "ve"}, 2, "-sde does not go with export"},
		{[]string{"-import", png, "-out", filepath.Join(dir, "imp"), "-weights", "raw"}, 2, "-weights does not go with -import"},
	} {
		var out bytes.Buffer
		code := run(tc.args, &out)
		if code != tc.code || !strings.Contains(out.String(), tc.want) || (code == 1 && strings.Count(out.String(), "\n") != 1) {
			t.Errorf("%v: exit %d, output %q; want exit %d and one line with %q", tc.args, code, out.String(), tc.code, tc.want)
		}
	}
	for _, p := range []string{filepath.Join(dir, "m.safetensors"), filepath.Join(dir, "imp")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
}
