// Package mpi is the communicator of data-parallel training: with the build
// tag mpi (cgo, Open MPI's libmpi) it binds the handful of MPI calls the
// trainer needs — init, rank, size, rank on the machine, in-place all-reduce of float32, broadcast,
// finalize — and without it Init reports that there is no communicator, so
// the default build stays free of cgo.
//
// Our own binding rather than github.com/cpmech/gosl/mpi (the one Go MPI
// package the module proxy serves): gosl's all-reduce is float64 only, which
// would double the bytes sent and need a conversion of every gradient each
// step, and it was last released in 2020; seven calls are little code.
package mpi

import (
	"errors"
	"os"
	"strconv"
)

// Comm is a communicator over the ranks of one job.
type Comm interface {
	// Rank is this process's rank, 0 … Size()−1.
	Rank() int
	// Size is the number of ranks.
	Size() int
	// AllReduceSum replaces buf on every rank by the element-wise sum of
	// every rank's buf.
	AllReduceSum(buf []float32) error
	// Broadcast copies root's buf into every other rank's buf (same length
	// on every rank).
	Broadcast(buf []byte, root int) error
	// Finalize ends MPI; call it once, last.
	Finalize() error
}

// LocalRank is c's index among the ranks on its machine where c knows it
// (MPI_COMM_WORLD does: MPI_Comm_split_type's shared-memory split), else its
// rank. A rank uses it to pick its GPU among its machine's.
func LocalRank(c Comm) int {
	if l, ok := c.(interface{ LocalRank() int }); ok {
		return l.LocalRank()
	}
	return c.Rank()
}

// LaunchRank is the rank the launcher gave this process, read before MPI
// starts from the variables mpirun and its kin set (Open MPI's
// OMPI_COMM_WORLD_RANK, PMIx's PMIX_RANK, MPICH's PMI_RANK), or −1 where
// none is set (not started by a launcher).
func LaunchRank() int {
	for _, v := range []string{"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"} {
		if r, err := strconv.Atoi(os.Getenv(v)); err == nil && r >= 0 {
			return r
		}
	}
	return -1
}

// ErrNoMPI is returned by Init in a build without the mpi tag.
var ErrNoMPI = errors.New("mpi: this program was built without MPI (go build -tags mpi)")

// BroadcastBytes sends root's data, of any length, to every rank and
// returns it there.
func BroadcastBytes(c Comm, data []byte, root int) ([]byte, error) {
	n := make([]byte, 8)
	if c.Rank() == root {
		for i := range 8 {
			n[i] = byte(uint64(len(data)) >> (8 * i))
		}
	}
	if err := c.Broadcast(n, root); err != nil {
		return nil, err
	}
	var size uint64
	for i := range 8 {
		size |= uint64(n[i]) << (8 * i)
	}
	if c.Rank() != root {
		data = make([]byte, size)
	}
	if size == 0 {
		return data, nil
	}
	if err := c.Broadcast(data, root); err != nil {
		return nil, err
	}
	return data, nil
}
