package train

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncsn-go/ncsn/checkpoint"
)

// mpiTrainer returns mpirun and a cmd/train built with -tags mpi (named by
// NCSN_MPI_TRAIN), or skips; CI sets NCSN_REQUIRE_MPI=1 so it cannot skip
// there.
func mpiTrainer(t *testing.T) (mpirun, bin string) {
	t.Helper()
	bin = os.Getenv("NCSN_MPI_TRAIN")
	mpirun, err := exec.LookPath("mpirun")
	if bin == "" || err != nil {
		msg := "needs mpirun and NCSN_MPI_TRAIN=a cmd/train built with -tags mpi (scripts/mpi_check.sh)"
		if os.Getenv("NCSN_REQUIRE_MPI") == "1" {
			t.Fatal(msg + " (NCSN_REQUIRE_MPI=1)")
		}
		t.Skip(msg)
	}
	return mpirun, bin
}

func mpiRun(t *testing.T, mpirun, bin string, np int, dir string, steps int) string {
	t.Helper()
	cmd := exec.Command(mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", string(rune('0'+np)),
		bin, "-dataset", "mnist", "-preset", "smoke", "-base", "16", "-batch", "16", "-save-every", "100", "-steps", itoa(steps), "-ckpt-dir", dir)
	cmd.Dir = filepath.Join("..") // the data folder of the repository
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mpirun -np %d: %v\n%s", np, err, out)
	}
	return string(out)
}

func itoa(n int) string {
	var b []byte
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// Data-parallel training over MPI computes what one process computes: 2
// ranks × 8 images give the losses of 1 rank × 16 at every step of 12 and
// close weights; a 2-rank run stopped at step 6 and resumed gives the
// uninterrupted 2-rank run's weights bit for bit; rank 0 alone writes (one
// train.csv, one row per step).
func TestMPIEquivalence(t *testing.T) {
	mpirun, bin := mpiTrainer(t)
	dir := t.TempDir()
	one, two, resumed := filepath.Join(dir, "np1"), filepath.Join(dir, "np2"), filepath.Join(dir, "np2-resumed")
	mpiRun(t, mpirun, bin, 1, one, 12)
	out := mpiRun(t, mpirun, bin, 2, two, 12)
	if !strings.Contains(out, "data-parallel over 2 MPI ranks: 8 images of each batch of 16 per rank") {
		t.Fatalf("no data-parallel line:\n%s", out)
	}
	mpiRun(t, mpirun, bin, 2, resumed, 6)
	mpiRun(t, mpirun, bin, 2, resumed, 12)
	load := func(d string) *checkpoint.State {
		p, err := checkpoint.Latest(d)
		if err != nil {
			t.Fatal(err)
		}
		st, err := checkpoint.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Step != 12 {
			t.Fatalf("%s at step %d", p, st.Step)
		}
		return st
	}
	a, b, c := load(one), load(two), load(resumed)
	// The losses of every step agree to the 6 digits train.csv keeps, and
	// the weights to rounding: the same images and noise, gradients
	// averaged to rounding (TestReduceAveragesGradients checks the
	// averaging exactly). Adam divides each gradient by its own running
	// size, so where a gradient is near zero a rounding difference flips
	// the sign of a whole step of ±lr, and such differences spread: hence
	// -base 16, two channels per GroupNorm group. The smoke preset's base 8
	// has one, and then the biases before each GroupNorm have no gradient
	// but float32 noise (on AMD's Zen, where OpenBLAS rounds a product's
	// rows by their number, the weights then differed by 4·10⁻³ and the
	// losses in the 6th digit by step 9; with base 16, 8·10⁻⁸).
	la, _ := os.ReadFile(filepath.Join(one, "train.csv"))
	lb, _ := os.ReadFile(filepath.Join(two, "train.csv"))
	ra, rb := strings.Split(string(la), "\n"), strings.Split(string(lb), "\n")
	if len(rb) != 14 {
		t.Fatalf("2 ranks' train.csv has %d lines, want a header and 12 rows (rank 0 alone writes)", len(rb)-1)
	}
	for i := 1; i <= 12; i++ {
		if fa, fb := strings.Split(ra[i], ",")[1], strings.Split(rb[i], ",")[1]; fa != fb {
			t.Errorf("step %d: loss %s with 1 rank, %s with 2", i, fa, fb)
		}
	}
	var num, den, maxAbs float64
	for i, p := range a.Weights {
		for j, v := range p.Data {
			e := float64(v - b.Weights[i].Data[j])
			num += e * e
			den += float64(v) * float64(v)
			maxAbs = math.Max(maxAbs, math.Abs(e))
		}
	}
	rel := math.Sqrt(num / den)
	t.Logf("1 rank × 16 against 2 ranks × 8 after 12 steps: relative L2 %.3g, largest difference %.3g (lr 1e-3)", rel, maxAbs)
	if !(rel < 1e-4) {
		t.Errorf("weights differ by %.3g (relative L2)", rel)
	}
	for i, p := range b.Weights {
		if !bytes.Equal(f32(p.Data), f32(c.Weights[i].Data)) || !bytes.Equal(f32(b.EMA[i].Data), f32(c.EMA[i].Data)) {
			t.Fatalf("%s: the resumed 2-rank run differs from the uninterrupted one", p.Name)
		}
	}
}

func f32(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		u := math.Float32bits(x)
		b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
	}
	return b
}

// TestSameWeights compares the latest checkpoints of two folders named by
// NCSN_SAME_WEIGHTS ("DIR1 DIR2") weight for weight, bit for bit, and their
// train.csv losses: scripts/mpi_netns.sh uses it to check that a run across
// two hosts computed what the same ranks compute on one.
func TestSameWeights(t *testing.T) {
	dirs := strings.Fields(os.Getenv("NCSN_SAME_WEIGHTS"))
	if len(dirs) != 2 {
		t.Skip("set NCSN_SAME_WEIGHTS='DIR1 DIR2' (scripts/mpi_netns.sh)")
	}
	a, b := lastState(t, dirs[0]), lastState(t, dirs[1])
	if a.Step != b.Step {
		t.Fatalf("steps %d and %d", a.Step, b.Step)
	}
	for i, p := range a.Weights {
		if !bytes.Equal(f32(p.Data), f32(b.Weights[i].Data)) || !bytes.Equal(f32(a.EMA[i].Data), f32(b.EMA[i].Data)) {
			t.Fatalf("%s differs", p.Name)
		}
	}
	la, _ := os.ReadFile(filepath.Join(dirs[0], "train.csv"))
	lb, _ := os.ReadFile(filepath.Join(dirs[1], "train.csv"))
	ra, rb := strings.Split(string(la), "\n"), strings.Split(string(lb), "\n")
	if len(ra) != len(rb) {
		t.Fatalf("train.csv: %d and %d lines", len(ra), len(rb))
	}
	for i := 1; i < len(ra); i++ {
		if ra[i] == "" {
			continue
		}
		if fa, fb := strings.Split(ra[i], ",")[1], strings.Split(rb[i], ",")[1]; fa != fb {
			t.Errorf("train.csv row %d: loss %s and %s", i, fa, fb)
		}
	}
	t.Logf("%s and %s: identical weights and EMA at step %d", dirs[0], dirs[1], a.Step)
}
