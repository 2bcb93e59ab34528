package cuda

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// -device names a GPU as "", "cuda" (GPU 0) or "cuda:N"; anything else is
// an unknown device, and a GPU asked of a build without the tag says how to
// build.
func TestParseDevice(t *testing.T) {
	for _, c := range []struct {
		name  string
		index int
	}{{"", 0}, {"cuda", 0}, {"cuda:0", 0}, {"cuda:3", 3}, {"cuda:12", 12}} {
		if i, err := ParseDevice(c.name); err != nil || i != c.index {
			t.Errorf("%q: %d, %v; want %d", c.name, i, err, c.index)
		}
	}
	for _, name := range []string{"cpu", "gpu", "CUDA", "cuda:", "cuda:-1", "cuda:01", "cuda:+1", "cuda:x", "cuda: 1", "cuda:1 ", "cuda1"} {
		_, err := ParseDevice(name)
		if !errors.Is(err, ErrUnknownDevice) || !strings.Contains(err.Error(), "-device ") {
			t.Errorf("%q: %v", name, err)
		}
	}
	if d, err := Pick("cpu", io.Discard); d != nil || err != nil {
		t.Errorf("cpu: %v, %v", d, err)
	}
	if _, err := Pick("cuda:x", io.Discard); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("cuda:x: %v", err)
	}
	if !Built {
		_, err := Pick("cuda:1", io.Discard)
		if !errors.Is(err, ErrNotBuilt) || !strings.HasPrefix(err.Error(), "-device cuda:1: ") || !strings.Contains(err.Error(), "-tags gpu") {
			t.Errorf("cuda:1 without the tag: %v", err)
		}
	} else if _, err := Pick("cuda:999", io.Discard); err == nil || !strings.HasPrefix(err.Error(), "-device cuda:999: ") {
		t.Errorf("cuda:999: %v", err) // no machine has 1000 GPUs
	}
}
