package cuda

import (
	"errors"
	"io"
	"os"
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
	} else if _, cerr := DeviceCount(); cerr == nil && (!errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "no GPU 999")) {
		t.Errorf("cuda:999 where the driver loads: %v", err)
	}
}

// EmulateEnv=1 makes the GPU build's one device the CPU emulation: "cuda"
// and "" open it, "cuda:1" does not exist, DeviceCount is 1.
func TestPickEmulated(t *testing.T) {
	if !Built {
		t.Skip("the emulation stands in for a GPU in the GPU build (-tags gpu)")
	}
	t.Setenv(EmulateEnv, "1")
	if n, err := DeviceCount(); n != 1 || err != nil {
		t.Fatalf("DeviceCount: %d, %v", n, err)
	}
	for _, name := range []string{"", "cuda", "cuda:0"} {
		var log strings.Builder
		d, err := Pick(name, &log)
		if err != nil {
			if strings.Contains(err.Error(), "no g++") {
				t.Skip(err) // no compiler: the emulation cannot be built here
			}
			t.Fatalf("%q: %v", name, err)
		}
		if d == nil || !strings.Contains(log.String(), "device: CPU emulation") {
			t.Fatalf("%q: device %v, log %q", name, d, log.String())
		}
		d.Close()
	}
	if _, err := Pick("cuda:1", io.Discard); !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "-device cuda:1: ") {
		t.Fatalf("cuda:1: %v", err)
	}
}

// TestPickRefusesUnknownSettings: NCSN_TF32 and NCSN_CUDA_EMULATE take the
// values they know or none; NCSN_TF32=true ran in exact float32 without a
// word.
func TestPickRefusesUnknownSettings(t *testing.T) {
	if !Built {
		t.Skip("the settings are read by the GPU build (-tags gpu)")
	}
	for _, c := range []struct{ env, val, want string }{
		{TF32Env, "true", `cuda: NCSN_TF32="true": want 0, 1, or unset`},
		{EmulateEnv, "bogus", `cuda: NCSN_CUDA_EMULATE="bogus": want 0, 1, driver, or unset`},
	} {
		t.Setenv(c.env, c.val)
		for _, name := range []string{"", "cuda"} {
			if _, err := Pick(name, io.Discard); err == nil || err.Error() != c.want {
				t.Errorf("%s=%s, -device %q: %v, want %q", c.env, c.val, name, err, c.want)
			}
		}
		t.Setenv(c.env, "")
	}
}

// TestPickDefaultNotForEveryError: with no -device, only a missing library
// or GPU falls back to the CPU; a setting's typo on a machine with a GPU (the
// fake one here) is an error (it ran on the CPU, "no GPU (…)").
func TestPickDefaultNotForEveryError(t *testing.T) {
	if !Built {
		t.Skip("the GPU build's fallback (-tags gpu)")
	}
	t.Setenv(EmulateEnv, "driver")
	t.Setenv(GraphEnv, "yes")
	var log strings.Builder
	d, err := Pick("", &log)
	if d != nil {
		d.Close()
	}
	if errors.Is(err, ErrNoLibrary) || errors.Is(err, ErrNoDevice) {
		if os.Getenv("NCSN_REQUIRE_NVRTC") == "1" {
			t.Fatal(err)
		}
		t.Skip("no fake GPU: ", err)
	}
	if err == nil || !strings.Contains(err.Error(), "NCSN_CUDA_GRAPH") || !strings.Contains(err.Error(), "-device cpu runs on the CPU") || strings.Contains(log.String(), "running on the CPU") {
		t.Fatalf("a typo in %s: %v; log %q", GraphEnv, err, log.String())
	}
}
