//go:build linux

package cuda

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tsanHarness runs every reducing kernel of kernels.cu — those with
// __shared__ memory and barriers — at block sizes 4, 32 and 256 on small
// inputs. (The others run their threads one after another on one thread:
// nothing for ThreadSanitizer to compare.)
const tsanHarness = `
static unsigned long long tsan_seq;
static float* buf(size_t n, float base) {
	float* p = (float*)malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++) p[i] = base + 0.01f * (float)(i % 97);
	return p;
}
static double* dbuf(size_t n) { // the float64 partial sums of ncsn_sum and ncsn_sumsq_chunks
	double* p = (double*)malloc(n * sizeof(double));
	for (size_t i = 0; i < n; i++) p[i] = 0.25 + 0.01 * (double)(i % 97);
	return p;
}
template <class... A>
static void run(const char* k, unsigned grid, unsigned block, A... a) {
	void* slots[] = {(void*)&a...};
	if (int r = emu_launch(k, grid, 1, 1, block, 1, 1, slots, ++tsan_seq)) {
		fprintf(stderr, "%s: %d %s\n", k, r, emu_error());
		exit(3);
	}
}
int main(int argc, char** argv) {
	if (argc > 1) { // one kernel of one block of 64 threads
		run(argv[1], 1, 64, buf(64, 0));
		return 0;
	}
	for (unsigned b : {4u, 32u, 256u}) {
		int C = 16, B = 3, HW = 49, G = 4, R = 5, N = 300;
		float *x = buf(C * B * HW, 0.5f), *y = buf(C * B * HW, 0), *stats = buf(2 * G * B, 0), *gamma = buf(C, 1), *beta = buf(C, 0);
		run("ncsn_gn_silu", G * B, b, y, stats, x, gamma, beta, C, B, HW, G, 1e-5f);
		float *dy = buf(C * B * HW, -0.3f), *dx = buf(C * B * HW, 0), *part = buf(2 * C * B, 0);
		run("ncsn_gn_silu_grad_x", G * B, b, dx, part, x, dy, gamma, beta, stats, C, B, HW, G);
		run("ncsn_channel_bias_grad", C * B, b, buf(B * C, 0), dy, C, B, HW);
		run("ncsn_residual_loss", B, b, buf(B, 0), buf(C * B * HW, 0), x, buf(B, 0.7f), dy, C, B, HW);
		float* m = buf(R * N, 0.1f);
		run("ncsn_row_sums", R, b, buf(R, 0), m, R, N);
		run("ncsn_sum", 1, b, dbuf(1), dbuf(R * N), R * N);
#ifdef CHUNK_WORDS // (kernels.cu's; the harness serves emu_faults.cu too)
		// Three chunks of one gradient (a ParamSet's table, CHUNK_WORDS
		// words each: the gradient's address, the first index, the length).
		unsigned long long* tab = (unsigned long long*)calloc(3 * CHUNK_WORDS, 8);
		const unsigned long long lo[3] = {0, 700, 1000}, len[3] = {700, 300, 5};
		for (int c = 0; c < 3; c++) {
			tab[c * CHUNK_WORDS + 1] = (unsigned long long)buf(1005, 0.2f);
			tab[c * CHUNK_WORDS + 5] = lo[c];
			tab[c * CHUNK_WORDS + 6] = len[c];
		}
		run("ncsn_sumsq_chunks", 3, b, dbuf(3), (float*)tab);
#endif
	}
	return 0;
}
`

// tsanBuild compiles the emulation of src (named name) with the harness
// under ThreadSanitizer, or skips where g++ cannot (unless
// NCSN_REQUIRE_TSAN=1).
func tsanBuild(t *testing.T, name, src string) string {
	t.Helper()
	skip := func(why string, args ...any) {
		t.Helper()
		if os.Getenv("NCSN_REQUIRE_TSAN") == "1" {
			t.Fatalf(why, args...)
		}
		t.Skipf(why, args...)
	}
	gxx, err := exec.LookPath("g++")
	if err != nil {
		skip("no g++")
	}
	full, err := emuSource(name, src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cpp, bin := filepath.Join(dir, "tsan.cpp"), filepath.Join(dir, "tsan")
	if err := os.WriteFile(cpp, []byte(full+tsanHarness), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gxx, "-std=c++20", "-O1", "-g", "-ffp-contract=off", "-fsanitize=thread", "-DEMU_TSAN", "-o", bin, cpp).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "tsan") {
			skip("g++ -fsanitize=thread: no ThreadSanitizer here (libtsan): %s", firstLine(string(out)))
		}
		t.Fatalf("g++: %v\n%s", err, out)
	}
	return bin
}

func firstLine(s string) string { return strings.SplitN(strings.TrimSpace(s), "\n", 2)[0] }

// tsanRun runs the harness (with args) and returns ThreadSanitizer's
// report, "" for none.
func tsanRun(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TSAN_OPTIONS=exitcode=66 halt_on_error=0")
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "FATAL: ThreadSanitizer") {
		if os.Getenv("NCSN_REQUIRE_TSAN") == "1" {
			t.Fatalf("ThreadSanitizer cannot run here: %s", out)
		}
		t.Skipf("ThreadSanitizer cannot run here: %s", firstLine(string(out)))
	}
	report := string(out)
	if !strings.Contains(report, "WARNING: ThreadSanitizer") {
		report = ""
	}
	if err != nil && report == "" {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	return report
}

// TestKernelsUnderThreadSanitizer: the emulation's fibers, built under
// ThreadSanitizer (emu.h, EMU_TSAN), find no two conflicting accesses in
// one phase of any reducing kernel of kernels.cu, at three block sizes —
// what the shuffled orders cannot see, lost updates included; and the same
// build does report a same-phase race and a lost update in kernels written
// with them (testdata/emu_faults.cu), and nothing in their fixed form.
// About 30 s on 2 cores (two builds).
func TestKernelsUnderThreadSanitizer(t *testing.T) {
	if os.Getenv("NCSN_TEST_EMU") == "0" {
		t.Skip("CPU emulation: off (NCSN_TEST_EMU=0)")
	}
	if testing.Short() {
		t.Skip("-short: two g++ builds with -fsanitize=thread")
	}
	if r := tsanRun(t, tsanBuild(t, "kernels.cu", Source)); r != "" {
		t.Fatalf("kernels.cu:\n%s", r)
	}
	src, err := os.ReadFile("testdata/emu_faults.cu")
	if err != nil {
		t.Fatal(err)
	}
	bin := tsanBuild(t, "emu_faults.cu", string(src))
	for kernel, want := range map[string]string{
		"race":       "emu_faults.cu:8",
		"lostupdate": "emu_faults.cu:54",
		"fixed":      "",
	} {
		r := tsanRun(t, bin, kernel)
		switch {
		case want == "" && r != "":
			t.Errorf("%s: a report on the fixed kernel:\n%s", kernel, r)
		case want != "" && !strings.Contains(r, want):
			t.Errorf("%s: no report at %s:\n%s", kernel, want, r)
		}
	}
}
