package generate

import (
	"math"
	"strings"
	"testing"
)

// TestParseClasses: -class out of range says what is wrong (a negative or
// huge class said "the classifier knows 2147483647 classes" before the
// classifier was read).
func TestParseClasses(t *testing.T) {
	for _, tc := range []struct {
		s       string
		classes int
		want    string
	}{
		{"-1", math.MaxInt32, "-class -1: classes are numbered from 0"},
		{"99999999999", math.MaxInt32, "-class 99999999999 is no class number"},
		{"10", 10, "-class 10 out of range: the classifier knows 10 classes (0 to 9)"},
		{"x", 10, `"x" is not a class number`},
	} {
		if _, err := parseClasses(tc.s, tc.classes); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q of %d: %v, want %q", tc.s, tc.classes, err, tc.want)
		}
	}
	if got, err := parseClasses("3, 1", 10); err != nil || len(got) != 2 || got[0] != 3 || got[1] != 1 {
		t.Fatalf("3, 1: %v %v", got, err)
	}
}
