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
// uninterrupted 2-rank run, bit for bit.
func TestMPIKilledAndResumed(t *testing.T) {
	mpirun, bin := mpiTrainer(t)
	dir := t.TempDir()
	killed, whole := filepath.Join(dir, "killed"), filepath.Join(dir, "whole")
	const steps = 30
	mpiRun(t, mpirun, bin, 2, whole, steps)

	cmd := exec.Command(mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2",
		bin, "-dataset", "mnist", "-preset", "smoke", "-batch", "16", "-save-every", "6", "-steps", "100000", "-ckpt-dir", killed)
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
