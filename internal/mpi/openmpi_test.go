//go:build mpi && cgo

package mpi

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Run under mpirun (scripts/mpi_check.sh): go test -tags mpi -c, then
// mpirun -np N ./mpi.test. Every rank runs the same tests, in step.
var testWorld Comm

func TestMain(m *testing.M) {
	c, err := Init()
	if err != nil {
		panic(err)
	}
	testWorld = c
	code := m.Run()
	if code == 0 {
		c.Finalize()
	}
	os.Exit(code)
}

func TestAllReduceSum(t *testing.T) {
	n, r := testWorld.Size(), testWorld.Rank()
	buf := make([]float32, 1000)
	for i := range buf {
		buf[i] = float32(r+1) * float32(i)
	}
	if err := testWorld.AllReduceSum(buf); err != nil {
		t.Fatal(err)
	}
	total := float32(n * (n + 1) / 2)
	for i, v := range buf {
		if v != total*float32(i) {
			t.Fatalf("rank %d of %d: element %d = %g, want %g", r, n, i, v, total*float32(i))
		}
	}
}

func TestBroadcastBytes(t *testing.T) {
	var data []byte
	if testWorld.Rank() == 0 {
		data = bytes.Repeat([]byte("ncsn"), 1000)
	}
	got, err := BroadcastBytes(testWorld, data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bytes.Repeat([]byte("ncsn"), 1000)) {
		t.Fatalf("rank %d received %d bytes", testWorld.Rank(), len(got))
	}
}

// BenchmarkAllReduce times the all-reduce of one step's buffer: the default
// MNIST network's gradients (214,801 floats, 0.86 MB) and the CIFAR-10 ncsnv2
// one's (14,509,699 floats, 58 MB). Run with a fixed -test.benchtime=20x so
// every rank does as many.
func BenchmarkAllReduce(b *testing.B) {
	for _, c := range []struct {
		name string
		n    int
	}{{"mnist-default", 214_801}, {"cifar10-ncsnv2", 14_509_699}} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]float32, c.n)
			b.SetBytes(int64(4 * c.n))
			for b.Loop() {
				if err := testWorld.AllReduceSum(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Each rank's index among the ranks on its machine: the rank itself on one
// machine, or as NCSN_LOCAL_RANKS lists them by rank ("0 0": two machines,
// scripts/mpi_netns.sh), and Open MPI's launcher agrees
// (OMPI_COMM_WORLD_LOCAL_RANK).
func TestLocalRank(t *testing.T) {
	if _, ok := testWorld.(interface{ LocalRank() int }); !ok {
		t.Fatal("MPI_COMM_WORLD does not know its local ranks")
	}
	l, r := LocalRank(testWorld), testWorld.Rank()
	want := r
	if w := strings.Fields(os.Getenv("NCSN_LOCAL_RANKS")); len(w) > 0 {
		if len(w) != testWorld.Size() {
			t.Fatalf("NCSN_LOCAL_RANKS=%q for %d ranks", w, testWorld.Size())
		}
		want, _ = strconv.Atoi(w[r])
	}
	if l != want {
		t.Fatalf("rank %d: local rank %d, want %d", r, l, want)
	}
	if env := os.Getenv("OMPI_COMM_WORLD_LOCAL_RANK"); env != "" && env != strconv.Itoa(l) {
		t.Fatalf("rank %d: local rank %d, Open MPI's launcher says %s", r, l, env)
	}
	t.Logf("rank %d: local rank %d", r, l)
}
