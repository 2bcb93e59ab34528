package cli

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  error  // nil, flag.ErrHelp, or any other error (errOther)
		out  string // what the output must hold
		rows int    // its lines
	}{
		{[]string{"-steps", "3"}, nil, "", 0},
		{[]string{"-steps", "abc"}, errOther, `tool: invalid value "abc" for flag -steps: parse error (-h lists the flags)`, 1},
		{[]string{"-seed", "-1"}, errOther, `tool: invalid value "-1" for flag -seed`, 1},
		{[]string{"-nosuch"}, errOther, "tool: flag provided but not defined: -nosuch (-h lists the flags)", 1},
		{[]string{"-h"}, flag.ErrHelp, "Usage of tool:", 5},
	} {
		var out bytes.Buffer
		fs := flag.NewFlagSet("tool", flag.ContinueOnError)
		fs.SetOutput(&out)
		fs.Int("steps", 0, "steps")
		fs.Uint64("seed", 0, "seed")
		err := Parse(fs, tc.args)
		switch {
		case tc.err == nil && err != nil, tc.err == flag.ErrHelp && !errors.Is(err, flag.ErrHelp), tc.err == errOther && (err == nil || errors.Is(err, flag.ErrHelp)):
			t.Errorf("%v: error %v", tc.args, err)
		}
		if got := strings.Count(out.String(), "\n"); got != tc.rows || !strings.Contains(out.String(), tc.out) {
			t.Errorf("%v: %d lines, want %d holding %q:\n%s", tc.args, got, tc.rows, tc.out, out.String())
		}
	}
}

var errOther = errors.New("any other error")

func TestZerosGiven(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "": no error
	}{
		{nil, ""},
		{[]string{"-eps", "2e-5", "-steps", "10", "-churn-min", "0"}, ""}, // -churn-min 0 is a true lower bound
		{[]string{"-eps", "0"}, "-eps 0 must be > 0"},
		{[]string{"-eps", "-0"}, "-eps 0 must be > 0"},
		{[]string{"-steps", "0"}, "-steps 0 must be ≥ 1"},
		{[]string{"-tol", "0.0"}, "-tol 0 must be from"},
		{[]string{"-steps", "5", "-churn-noise", "0"}, "-churn-noise 0 must be > 0"},
	} {
		fs := flag.NewFlagSet("tool", flag.ContinueOnError)
		fs.Float64("eps", 0, "")
		fs.Int("steps", 0, "")
		fs.Float64("tol", 0, "")
		fs.Float64("churn-min", 0, "")
		fs.Float64("churn-noise", 0, "")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := ZerosGiven(fs)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestEmptyGiven(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "": no error
	}{
		{nil, ""},
		{[]string{"-sampler", "heun", "-out", ""}, ""}, // -out "" means no grid
		{[]string{"-sampler", ""}, "-sampler is empty"},
		{[]string{"-out", "", "-inpaint", ""}, "-inpaint is empty"},
		{[]string{"-n", "0", "-inpaint", "x"}, ""}, // not a string flag
	} {
		fs := flag.NewFlagSet("tool", flag.ContinueOnError)
		fs.String("sampler", "", "")
		fs.String("inpaint", "", "")
		fs.String("out", "grid.png", "")
		fs.Int("n", 0, "")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := EmptyGiven(fs, "out")
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
