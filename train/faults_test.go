package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ncsn-go/ncsn/checkpoint"
	"github.com/ncsn-go/ncsn/internal/blas"
	"github.com/ncsn-go/ncsn/internal/fsutil"
)

// TestMain lets the test binary act as a separate trainer process (for the
// kill -9, full-disk and two-writer tests): with TRAIN_CHILD_DIR set it trains
// tinyConfig in that folder up to TRAIN_CHILD_STEPS and exits 0 when done, 1
// on an error (printed on one line).
func TestMain(m *testing.M) {
	if dir := os.Getenv("TRAIN_CHILD_DIR"); dir != "" {
		os.Exit(childTrainer(dir))
	}
	os.Exit(m.Run())
}

func childTrainer(dir string) int {
	if lim := os.Getenv("TRAIN_CHILD_FILE_LIMIT"); lim != "" {
		n, _ := strconv.Atoi(lim)
		if err := setFileSizeLimit(n); err != nil {
			fmt.Println("child:", err)
			return 3
		}
	}
	c := faultConfig(dir)
	c.Steps, _ = strconv.Atoi(os.Getenv("TRAIN_CHILD_STEPS"))
	c.Log = os.Stdout // "starting a fresh run" or "resuming" once it holds the folder
	fmt.Println("child: training")
	if _, err := Run(context.Background(), c); err != nil {
		fmt.Println(err)
		return 1
	}
	return 0
}

// faultConfig is the tiny run of the fault tests: saves every 7 steps, so a
// kill usually loses steps that the resume must recompute exactly.
func faultConfig(dir string) Config {
	c := tinyConfig(dir)
	c.SaveEvery, c.Keep = 7, 3
	return c
}

// child is this test binary run again as a trainer. Where the tests run
// under an emulator (go test -exec), NCSN_TEST_EXEC names it for the child
// too (CI's arm64 run: "qemu-aarch64").
func child(t *testing.T, dir string, steps int, env ...string) *exec.Cmd {
	args := append(strings.Fields(os.Getenv("NCSN_TEST_EXEC")), os.Args[0], "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), append([]string{"TRAIN_CHILD_DIR=" + dir, "TRAIN_CHILD_STEPS=" + strconv.Itoa(steps)}, env...)...)
	return cmd
}

// sameState fails unless two checkpoints hold the same bits of everything a
// run continues from.
func sameState(t *testing.T, a, b *checkpoint.State) {
	t.Helper()
	if a.Step != b.Step || a.AdamT != b.AdamT || !bytes.Equal(a.RNG, b.RNG) ||
		!reflect.DeepEqual(a.Weights, b.Weights) || !reflect.DeepEqual(a.EMA, b.EMA) ||
		!reflect.DeepEqual(a.M, b.M) || !reflect.DeepEqual(a.V, b.V) {
		t.Fatalf("states differ (steps %d and %d)", a.Step, b.Step)
	}
}

// lossColumns is train.csv without its speed and time columns, which differ
// between runs.
func lossColumns(t *testing.T, dir string) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, csvName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		rows[i] = append(r[:2:2], r[4:]...)
	}
	return rows
}

// TestKillAnywhereResumesExactly: a trainer killed with SIGKILL at random
// moments (in a step, in a save, in the CSV) and resumed each time ends with
// the bits of an uninterrupted run, and train.csv tells the same history.
func TestKillAnywhereResumesExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a trainer process a few dozen times (-short)")
	}
	const steps = 600
	want := t.TempDir()
	c := faultConfig(want)
	c.Steps = steps
	t0 := time.Now()
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	// Each start lives for a random time up to its start-up plus a quarter
	// of the whole run, so several kills land before the run can finish.
	span := 100*time.Millisecond + time.Since(t0)/4

	dir := t.TempDir()
	r := rand.New(rand.NewPCG(11, 12))
	kills, done := 0, false
	for try := 0; try < 60 && !done; try++ {
		cmd := child(t, dir, steps)
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("trainer failed: %v: %s", err, out.String())
			}
			done = true
		case <-time.After(time.Duration(r.Float64() * float64(span))):
			cmd.Process.Kill()
			if err := <-exited; err == nil {
				done = true // it finished first
			} else {
				kills++
			}
		}
	}
	if !done {
		t.Fatalf("the trainer did not finish in 60 starts (%d kills)", kills)
	}
	if kills < 3 {
		t.Fatalf("only %d kills landed: the test did not test much", kills)
	}
	t.Logf("%d kills before the run finished", kills)
	sameState(t, final(t, want), final(t, dir))
	if a, b := lossColumns(t, want), lossColumns(t, dir); !reflect.DeepEqual(a, b) {
		t.Fatalf("train.csv: %d rows uninterrupted, %d after the kills, or their losses differ", len(a), len(b))
	}
	// The partial files of killed saves were cleared by the next start.
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// TestSecondTrainerRefused: while one process trains in a folder, a second
// trainer on the same folder stops at once with an error naming the first;
// after the first is killed, training there works again.
func TestSecondTrainerRefused(t *testing.T) {
	dir := t.TempDir()
	l, err := fsutil.TryLock(filepath.Join(dir, lockName)) // stands in for a trainer of this process
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), faultConfig(dir)); !errors.Is(err, ErrBusy) ||
		!strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("got %v", err)
	}
	l.Unlock()

	// A real second process holds the folder while it trains.
	cmd := child(t, dir, 1_000_000)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// The child prints its start-up lines once it holds the folder.
	lines := bufio.NewScanner(out)
	for lines.Scan() && !strings.HasPrefix(lines.Text(), "starting a fresh run") {
	}
	go io.Copy(io.Discard, out)
	if _, err := Run(context.Background(), faultConfig(dir)); !errors.Is(err, ErrBusy) ||
		!strings.Contains(err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Fatalf("the second trainer was not refused, or the error does not name the first (pid %d): %v", cmd.Process.Pid, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	c := faultConfig(dir)
	c.Steps = 1 << 30
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // resume, then stop at once: the folder is free again
	if _, err := Run(ctx, c); err != nil && !errors.Is(err, ErrInterrupted) {
		t.Fatalf("after the first trainer died: %v", err)
	}
}

// TestDivergenceStops: a learning rate that drives the loss to NaN stops the
// run with an error naming the step and the noise level; every checkpoint
// left is finite and earlier than that step, and the good ones were not
// pruned away by bad ones.
func TestDivergenceStops(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.LR, c.Steps, c.SaveEvery, c.Keep = 3e4, 500, 2, 2
	_, err := Run(context.Background(), c)
	if !errors.Is(err, ErrNonFinite) {
		t.Fatalf("got %v", err)
	}
	var bad int
	if _, serr := fmt.Sscanf(err.Error()[strings.Index(err.Error(), "step "):], "step %d:", &bad); serr != nil {
		t.Fatalf("no step in %q", err)
	}
	if !strings.Contains(err.Error(), "noise level") || !strings.Contains(err.Error(), "σ = ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("message %q", err)
	}
	all, _ := checkpoint.List(dir)
	if len(all) != 2 {
		t.Fatalf("%d checkpoints kept, want 2: %v", len(all), all)
	}
	for _, p := range all {
		s, err := checkpoint.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if s.Step >= bad {
			t.Fatalf("%s is from step %d, at or after the bad step %d", p, s.Step, bad)
		}
		for _, w := range append(s.Weights, s.EMA...) {
			for _, v := range w.Data {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s: %s holds %g", p, w.Name, v)
				}
			}
		}
	}
	if last := final(t, dir); last.Step < bad-c.SaveEvery {
		t.Fatalf("the newest checkpoint is from step %d, the bad step %d: good ones were lost", last.Step, bad)
	}
	rows := lossColumns(t, dir)
	if n, _ := strconv.Atoi(rows[len(rows)-1][0]); n != bad-1 {
		t.Fatalf("train.csv ends at step %d, the bad step is %d", n, bad)
	}
}

// TestArithPathRecorded: checkpoints name the arithmetic path that computed
// them, and a resume on another path says so in one line and continues.
func TestArithPathRecorded(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.Steps = 3
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	s := final(t, dir)
	if s.Arith != ArithPath() || s.Arith == "" {
		t.Fatalf("recorded %q, this process runs %q", s.Arith, ArithPath())
	}
	s.Arith = "elsewhere+other"
	if _, err := checkpoint.Save(dir, s); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	c.Steps, c.Log = 6, &log
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, "elsewhere+other") {
			notes = append(notes, l)
		}
	}
	if len(notes) != 1 || !strings.Contains(notes[0], ArithPath()) {
		t.Fatalf("notes %q in %q", notes, log.String())
	}
	// The checkpoints then say the run was mixed (they said this path only,
	// and a resume on it, after one on another path, said nothing).
	mixed := "mixed: elsewhere+other, then " + ArithPath()
	if s := final(t, dir); s.Step != 6 || s.Arith != mixed {
		t.Fatalf("continued to step %d on %q, want %q", s.Step, s.Arith, mixed)
	}
	log.Reset()
	c.Steps = 8
	if _, err := Run(context.Background(), c); err != nil || !strings.Contains(log.String(), "computed on the "+mixed+" arithmetic path") {
		t.Fatalf("a resume on this path after a mixed run: %v\n%s", err, log.String())
	}
	if s := final(t, dir); s.Arith != mixed {
		t.Fatalf("recorded %q, want %q", s.Arith, mixed)
	}
	for _, c := range []struct{ was, now, want string }{
		{"a", "b", "mixed: a, then b"},
		{"mixed: a, then b", "a", "mixed: a, then b, then a"},
		{"mixed: a, then b, then a, then b", "c", "mixed: a, then …, then b, then c"},
	} {
		if got := mixedArith(c.was, c.now); got != c.want {
			t.Errorf("mixedArith(%q, %q) = %q, want %q", c.was, c.now, got, c.want)
		}
	}
}

// TestGradientClipping: -max-grad-norm is applied (a tiny norm changes the
// trajectory), saved with the checkpoint, and a contradicting value on resume
// is refused. Without it, scale 1 leaves Adam's arithmetic exactly as it was.
func TestGradientClipping(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	ca, cb := tinyConfig(a), tinyConfig(b)
	cb.MaxGradNorm = 1e-6
	for _, c := range []Config{ca, cb} {
		if _, err := Run(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	sa, sb := final(t, a), final(t, b)
	if reflect.DeepEqual(sa.Weights, sb.Weights) {
		t.Fatal("clipping changed nothing")
	}
	var saved Config
	if err := json.Unmarshal(sb.Train, &saved); err != nil || saved.MaxGradNorm != 1e-6 {
		t.Fatalf("not saved (%v): %s", err, sb.Train)
	}
	cb.Steps, cb.MaxGradNorm, cb.Set = 9, 1, map[string]bool{"max-grad-norm": true}
	if _, err := Run(context.Background(), cb); !errors.Is(err, ErrMismatch) {
		t.Fatalf("contradicting -max-grad-norm: %v", err)
	}

}

// TestSameArith: a path names OpenBLAS's core and a non-x86-64 build (a
// resume on another CPU's OpenBLAS kernels changed the bits unannounced);
// a checkpoint named before that, by its SIMD set and library alone, is
// taken as the same path where those agree.
func TestSameArith(t *testing.T) {
	if c := blas.Core(); c != "" && !strings.Contains(ArithPath(), "/"+c) {
		t.Errorf("ArithPath %q does not name OpenBLAS's core %q", ArithPath(), c)
	}
	for _, tc := range []struct {
		ckpt, now string
		same      bool
	}{
		{"avx512+openblas/Cooperlake", "avx512+openblas/Cooperlake", true},
		{"avx512+openblas/Cooperlake", "avx512+openblas/SkylakeX", false},
		{"avx512+openblas", "avx512+openblas/SkylakeX", true}, // named before 2026-11-29
		{"avx2+openblas", "avx512+openblas/SkylakeX", false},
		{"avx2+openblas", "avx2-div+openblas/Haswell", false}, // the AVX2 sigmoid's bits changed
		{"avx2+gonum", "avx2-div+gonum", false},
		{"avx512+blas", "avx512+openblas/Cooperlake", true}, // libblas.so.3, OpenBLAS
		{"avx512+blas", "avx512+blas", true},
		{"avx512+openblas", "avx512+openblas (amd64 v3+)", false},
		{"portable+gonum", "portable+gonum (arm64)", false}, // named before: taken for x86-64's
		{"portable+gonum (arm64)", "portable+gonum", false},
		{"avx512+openblas (amd64 v3+)", "avx512+openblas", false},
		{"mixed: avx2+openblas, then avx512+openblas", "avx512+openblas/Cooperlake", false},
	} {
		if got := sameArith(tc.ckpt, tc.now); got != tc.same {
			t.Errorf("sameArith(%q, %q) = %v", tc.ckpt, tc.now, got)
		}
	}
}
