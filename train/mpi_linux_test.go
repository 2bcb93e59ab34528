package train

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncsn-go/ncsn/checkpoint"
)

// A 2-rank run killed with SIGKILL (the whole job: mpirun and both ranks)
// after its first checkpoint, then resumed, ends with the weights of an
// uninterrupted 2-rank run, bit for bit. (The network of mpiRun's runs:
// -base 16.)
func TestMPIKilledAndResumed(t *testing.T) {
	mpirun, bin := mpiTrainer(t)
	dir := t.TempDir()
	killed, whole := filepath.Join(dir, "killed"), filepath.Join(dir, "whole")
	const steps = 30
	mpiRun(t, mpirun, bin, 2, whole, steps)

	cmd := exec.Command(mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2",
		bin, "-dataset", "mnist", "-preset", "smoke", "-base", "16", "-batch", "16", "-save-every", "6", "-steps", "100000", "-ckpt-dir", killed)
	cmd.Dir = ".."
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := checkpoint.Latest(killed); err == nil {
			break
		}
		if time.Now().After(deadline) {
			killAll(t, killed)
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatal("no checkpoint within 2 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// mpirun starts the ranks in sessions of their own: kill them by their
	// command line, and mpirun by its group.
	killAll(t, killed)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	for start := time.Now(); len(pidsOf(killed)) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatal("the killed ranks are still running")
		}
	}
	p, err := checkpoint.Latest(killed)
	if err != nil {
		t.Fatal(err)
	}
	at, err := checkpoint.Load(p)
	if err != nil {
		t.Fatalf("the checkpoint left by the kill: %v", err)
	}
	if at.Step >= steps {
		t.Fatalf("killed at step %d, past the %d compared", at.Step, steps)
	}
	t.Logf("killed after step %d; resuming to %d", at.Step, steps)
	mpiRun(t, mpirun, bin, 2, killed, steps)
	a, b := lastState(t, whole), lastState(t, killed)
	for i, p := range a.Weights {
		if string(f32(p.Data)) != string(f32(b.Weights[i].Data)) || string(f32(a.EMA[i].Data)) != string(f32(b.EMA[i].Data)) {
			t.Fatalf("%s: the killed and resumed run differs from the uninterrupted one", p.Name)
		}
	}
	if _, err := os.Stat(filepath.Join(killed, "train.csv")); err != nil {
		t.Fatal(err)
	}
}

// A 2-rank run sent SIGUSR1 through mpirun (which forwards it to every
// rank as it is, where its Ctrl-C reaches them as SIGTERM and a SIGKILL a
// second later) saves a checkpoint of the step both ranks reached, says so,
// and mpirun exits with the ranks' status 130.
func TestMPIStopSignal(t *testing.T) {
	mpirun, bin := mpiTrainer(t)
	dir := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2",
		bin, "-dataset", "mnist", "-preset", "smoke", "-base", "16", "-batch", "16", "-save-every", "100000", "-steps", "100000", "-ckpt-dir", dir)
	cmd.Dir = ".."
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		killAll(t, dir)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if b, _ := os.ReadFile(filepath.Join(dir, "train.csv")); strings.Count(string(b), "\n") > 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3 steps within 2 minutes:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGUSR1)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("still running a minute after SIGUSR1:\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("mpirun exit status %d, want 130:\n%s", code, out.String())
	}
	p, err := checkpoint.Latest(dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	st, err := checkpoint.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := "interrupted at step " + itoa(st.Step) + " of 100000; saved "; !strings.Contains(out.String(), want) {
		t.Fatalf("no %q:\n%s", want, out.String())
	}
	t.Logf("stopped at step %d", st.Step)
}

// pidsOf lists the processes whose command line mentions s.
func pidsOf(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killAll(t *testing.T, s string) {
	for _, pid := range pidsOf(s) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Data-parallel training on devices over real MPI: cmd/train built with
// -tags mpi,gpu (NCSN_MPI_TRAIN_GPU) run by mpirun with every rank's device
// the CPU emulation of the kernels (cuda.EmulateEnv=1), and then two fake
// GPUs (EmulateEnv=driver), one per rank. 2 ranks × 8 images
// log the losses of 1 rank × 8 on a device and of 2 ranks on the CPU, to
// the 6 digits train.csv keeps, at each of 3 steps; their weights agree to
// float32 rounding. (A resume on devices, exact, is TestDataParallelOnDevice's:
// each process here compiles the emulation, some seconds.) (Base 16: two channels per GroupNorm group,
// as TestTrainOnDevice has it; with one, the biases before GroupNorm have
// gradients that are zero but for float32 noise, which Adam turns into
// whole steps that differ between the device and the CPU.)
func TestMPIOnEmulatedDevices(t *testing.T) {
	mpirun, _ := mpiTrainer(t)
	bin := os.Getenv("NCSN_MPI_TRAIN_GPU")
	if bin == "" {
		msg := "needs NCSN_MPI_TRAIN_GPU=a cmd/train built with -tags mpi,gpu (scripts/mpi_check.sh)"
		if os.Getenv("NCSN_REQUIRE_MPI") == "1" {
			t.Fatal(msg + " (NCSN_REQUIRE_MPI=1)")
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	emulate := "1"
	run := func(np int, sub string, steps int, device string) string {
		t.Helper()
		args := []string{"--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-x", "NCSN_CUDA_EMULATE", "-x", "NCSN_FAKE_GPUS", "-np", itoa(np),
			bin, "-dataset", "mnist", "-preset", "smoke", "-base", "16", "-batch", "16", "-save-every", "100", "-steps", itoa(steps),
			"-ckpt-dir", filepath.Join(dir, sub)}
		if device != "" { // "": the default (-device "" is refused)
			args = append(args, "-device", device)
		}
		cmd := exec.Command(mpirun, args...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "NCSN_CUDA_EMULATE="+emulate, "NCSN_FAKE_GPUS=2")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mpirun -np %d: %v\n%s", np, err, out)
		}
		return string(out)
	}
	out := run(2, "two", 3, "cuda")
	if !strings.Contains(out, "device: CPU emulation") || !strings.Contains(out, "data-parallel on GPUs") {
		t.Fatalf("2 ranks did not train on the emulated device:\n%s", out)
	}
	run(1, "one", 3, "cuda")
	run(2, "cpu", 3, "cpu")
	losses := func(sub string) []string {
		b, err := os.ReadFile(filepath.Join(dir, sub, "train.csv"))
		if err != nil {
			t.Fatal(err)
		}
		var l []string
		for _, row := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
			l = append(l, strings.Split(row, ",")[1])
		}
		return l
	}
	two := losses("two")
	if len(two) != 3 {
		t.Fatalf("2 ranks logged %d steps", len(two))
	}
	// The same on two fake GPUs (the driver code; NCSN_CUDA_EMULATE=driver),
	// each rank taking the GPU of its index, as no -device names one (rank
	// 0 logs: its GPU 0, and the rule).
	emulate = "driver"
	out = run(2, "fake", 3, "")
	if !strings.Contains(out, "device: GPU fake GPU 0 (CPU emulation) (cuda:0 of 2") || !strings.Contains(out, "data-parallel on GPUs: each rank on GPU (its index among the ranks on its machine) mod 2") {
		t.Fatalf("2 ranks did not take the fake GPUs by their index:\n%s", out)
	}
	for _, sub := range []string{"one", "cpu", "fake"} {
		if l := losses(sub); strings.Join(l, " ") != strings.Join(two, " ") {
			t.Errorf("losses: 2 ranks on devices %v, %s %v", two, sub, l)
		}
	}
	a, b := lastState(t, filepath.Join(dir, "two")), lastState(t, filepath.Join(dir, "cpu"))
	if !onDevice(a.Arith) || onDevice(b.Arith) {
		t.Fatalf("arithmetic paths %q (devices) and %q (CPU)", a.Arith, b.Arith)
	}
	closeTo(t, "weights, 2 ranks on devices against the CPU", b.Weights, a.Weights)
}
