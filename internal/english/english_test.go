package english

import "testing"

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "0 steps"}, {1, "1 step"}, {2, "2 steps"}, {-1, "-1 steps"}} {
		if got := Count(tc.n, "step"); got != tc.want {
			t.Errorf("Count(%d): %q, want %q", tc.n, got, tc.want)
		}
	}
}
