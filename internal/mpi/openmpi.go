//go:build mpi && cgo

package mpi

/*
#cgo pkg-config: ompi-c
#include <mpi.h>
#include <stdlib.h>

static int ncsn_init(void) {
	int done = 0;
	MPI_Initialized(&done);
	if (done) return MPI_SUCCESS;
	return MPI_Init(NULL, NULL);
}
static int ncsn_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int ncsn_size(int *s) { return MPI_Comm_size(MPI_COMM_WORLD, s); }
static int ncsn_local_rank(int *r) {
	MPI_Comm local;
	int rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
	if (rc != MPI_SUCCESS) return rc;
	rc = MPI_Comm_rank(local, r);
	MPI_Comm_free(&local);
	return rc;
}
static int ncsn_allreduce_f32(float *buf, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static int ncsn_bcast(void *buf, int n, int root) {
	return MPI_Bcast(buf, n, MPI_BYTE, root, MPI_COMM_WORLD);
}
static int ncsn_finalize(void) { return MPI_Finalize(); }
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// Built says whether this build has MPI.
const Built = true

type world struct{ rank, size, local int }

// Init starts MPI (once per process) and returns MPI_COMM_WORLD. MPI calls
// stay on the OS thread that made this one (the thread level is
// MPI_THREAD_SINGLE), so Init locks the calling goroutine to its thread: call
// it from main's goroutine, which must make every later call.
func Init() (Comm, error) {
	runtime.LockOSThread()
	if rc := C.ncsn_init(); rc != C.MPI_SUCCESS {
		return nil, fmt.Errorf("mpi: MPI_Init failed (%d)", int(rc))
	}
	var r, s C.int
	if rc := C.ncsn_rank(&r); rc != C.MPI_SUCCESS {
		return nil, fmt.Errorf("mpi: MPI_Comm_rank failed (%d)", int(rc))
	}
	if rc := C.ncsn_size(&s); rc != C.MPI_SUCCESS {
		return nil, fmt.Errorf("mpi: MPI_Comm_size failed (%d)", int(rc))
	}
	var l C.int
	if rc := C.ncsn_local_rank(&l); rc != C.MPI_SUCCESS {
		return nil, fmt.Errorf("mpi: MPI_Comm_split_type failed (%d)", int(rc))
	}
	return &world{rank: int(r), size: int(s), local: int(l)}, nil
}

func (w *world) Rank() int { return w.rank }
func (w *world) Size() int { return w.size }

// LocalRank is this process's index among the ranks on its machine.
func (w *world) LocalRank() int { return w.local }

// The buffers are Go memory passed for the duration of the call only, which
// cgo permits (they hold no Go pointers).
func (w *world) AllReduceSum(buf []float32) error {
	for len(buf) > 0 {
		n := min(len(buf), 1<<30)
		if rc := C.ncsn_allreduce_f32((*C.float)(unsafe.Pointer(&buf[0])), C.int(n)); rc != C.MPI_SUCCESS {
			return fmt.Errorf("mpi: MPI_Allreduce failed (%d)", int(rc))
		}
		buf = buf[n:]
	}
	return nil
}

func (w *world) Broadcast(buf []byte, root int) error {
	for len(buf) > 0 {
		n := min(len(buf), 1<<30)
		if rc := C.ncsn_bcast(unsafe.Pointer(&buf[0]), C.int(n), C.int(root)); rc != C.MPI_SUCCESS {
			return fmt.Errorf("mpi: MPI_Bcast failed (%d)", int(rc))
		}
		buf = buf[n:]
	}
	return nil
}

func (w *world) Finalize() error {
	if rc := C.ncsn_finalize(); rc != C.MPI_SUCCESS {
		return fmt.Errorf("mpi: MPI_Finalize failed (%d)", int(rc))
	}
	return nil
}
