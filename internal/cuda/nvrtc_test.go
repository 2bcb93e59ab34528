//go:build linux

package cuda

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestNVRTCCompilesEveryKernel: NVRTC compiles kernels.cu and the PTX
// defines every kernel. Skipped where no libnvrtc loads, unless
// NCSN_REQUIRE_NVRTC=1 (CI installs Debian's libnvrtc11.2).
func TestNVRTCCompilesEveryKernel(t *testing.T) {
	v, err := NVRTCVersion()
	if errors.Is(err, ErrNoLibrary) {
		if os.Getenv("NCSN_REQUIRE_NVRTC") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Log(v)
	ptx, err := Compile(Source, "compute_75")
	if err != nil {
		t.Fatal(err)
	}
	names := kernelNames()
	if len(names) < 7 {
		t.Fatalf("found %d kernels in the source", len(names))
	}
	for _, k := range names {
		if !strings.Contains(string(ptx), ".entry "+k+"(") {
			t.Errorf("PTX has no entry %s", k)
		}
	}
	// Machine code for a real architecture: an ELF image (what Open loads
	// first; its driver then needs no compiler of its own).
	bin, err := Compile(Source, "sm_75")
	if err != nil {
		t.Fatal(err)
	}
	if len(bin) < 4 || string(bin[:4]) != "\x7fELF" {
		t.Fatalf("CUBIN for sm_75 is not an ELF image (%d bytes)", len(bin))
	}
	if _, err := Compile(Source+"\n__global__ void broken( { }\n", "compute_75"); err == nil || !strings.Contains(err.Error(), "kernels.cu") {
		t.Fatalf("a syntax error compiled: %v", err)
	}
}
