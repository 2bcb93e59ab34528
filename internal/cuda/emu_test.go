//go:build linux

package cuda

import (
	"math"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestEmulatorCatches: the CPU emulation shows, on kernels written with
// those faults (testdata/emu_faults.cu), a read of what another thread
// writes in the same phase (a race: each order of the threads gives other
// values), threads waiting at different barriers, a thread returning
// while others wait at one, shared memory read before this block wrote
// it, a write out of an allocation's bounds or past a shared array's end,
// and a barrier in a kernel it runs without them; and a device goes on
// working after such a launch. (A lost update — threads that read, change
// and write one element in one phase — it does not catch: the race
// detector of TestKernelsUnderThreadSanitizer does.)
func TestEmulatorCatches(t *testing.T) {
	if os.Getenv("NCSN_TEST_EMU") == "0" {
		t.Skip("CPU emulation: off (NCSN_TEST_EMU=0)")
	}
	if _, err := exec.LookPath("g++"); err != nil {
		t.Skip("no g++")
	}
	src, err := os.ReadFile("testdata/emu_faults.cu")
	if err != nil {
		t.Fatal(err)
	}
	lib, err := buildEmu("emu_faults.cu", string(src))
	if err != nil {
		t.Fatal(err)
	}
	// Every __shared__ array of kernels.cu is NaN-filled per block and has
	// its margin; a declaration the rewriting cannot take is an error.
	decls := regexp.MustCompile(`(?m)^\s*__shared__ `).FindAllString(Source, -1)
	fresh, err := emuFresh("kernels.cu", Source)
	if got := strings.Count(fresh, "emu_fresh("); err != nil || len(decls) == 0 || got != len(decls) {
		t.Errorf("kernels.cu: %d __shared__ declarations, %d NaN-filled (%v)", len(decls), got, err)
	}
	for _, bad := range []string{"__shared__ float a[8], b[8];", "__shared__ float a[8][8];", "__shared__ int k;", "x = 1; __shared__ float a[8];"} {
		if _, err := emuFresh("bad.cu", "// ok __shared__\n"+bad); err == nil || !strings.Contains(err.Error(), "bad.cu:2: a __shared__ declaration") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	const n = 64
	block := [3]uint32{n, 1, 1}
	for _, order := range []string{"shuffle", "up", "down"} {
		d, err := newEmulator(lib, emuOrders[order])
		if err != nil {
			t.Fatal(err)
		}
		out, err := d.Alloc(4 * n)
		if err != nil {
			t.Fatal(err)
		}
		run := func(kernel string, blocks uint32, args ...any) error {
			p, err := pack(d.b.argSpace(), args)
			if err != nil {
				t.Fatal(err)
			}
			return d.b.launch(kernel, [3]uint32{blocks, 1, 1}, block, p)
		}
		get := func() []float32 {
			x := make([]float32, out.N)
			if err := d.Download(x, out); err != nil {
				t.Fatal(err)
			}
			return x
		}
		shifted := func(x []float32) bool {
			for i := 0; i < n; i++ {
				if x[i] != float32((i+1)%n) {
					return false
				}
			}
			return true
		}
		if err := run("race", 1, out); err != nil {
			t.Fatalf("%s: race: %v", order, err)
		}
		if shifted(get()) {
			t.Errorf("%s: the racing kernel gave the right values", order)
		}
		for _, c := range []struct {
			kernel string
			blocks uint32
			args   []any
			want   string
		}{
			{"divergent", 1, []any{out}, "wait at different __syncthreads (emu_faults.cu:"},
			{"early", 1, []any{out}, "thread 0 returned while thread"},
			{"oob", 1, []any{out, n - 1}, "emu: oob wrote bytes 252–255 of an allocation of 252 bytes"},
			{"overflow", 1, []any{out}, "block 0 wrote byte 256 of __shared__ s of 256 bytes (emu_faults.cu:"},
			{"serialsync", 1, []any{out}, "__syncthreads (emu_faults.cu:76) in a kernel without __shared__"},
		} {
			args := c.args
			if c.kernel == "oob" {
				small, err := d.Alloc(n - 1)
				if err != nil {
					t.Fatal(err)
				}
				args = []any{small, n - 1}
			}
			err := run(c.kernel, c.blocks, args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %s: error %v, want one with %q", order, c.kernel, err, c.want)
			}
			// The device works on after it.
			if err := run("fixed", 1, out); err != nil {
				t.Fatalf("%s: fixed after %s: %v", order, c.kernel, err)
			}
			if !shifted(get()) {
				t.Errorf("%s: fixed after %s: %v", order, c.kernel, get()[:n])
			}
		}
		// A lost update: every order gives the right sum here (each fiber
		// runs to its barrier unbroken); TestKernelsUnderThreadSanitizer
		// is what sees it.
		if err := run("lostupdate", 1, out); err != nil || get()[0] != n {
			t.Fatalf("%s: lostupdate: %v, %v", order, err, get()[:4])
		}
		if err := run("stale", 4, out); err != nil {
			t.Fatalf("%s: stale: %v", order, err)
		}
		x := get()
		for i, v := range x {
			if (i < n) != (v == 1) || (i >= n && !math.IsNaN(float64(v))) {
				t.Fatalf("%s: stale: out[%d] = %g: only block 0 wrote its shared array", order, i, v)
			}
		}
		d.Close()
	}
}
