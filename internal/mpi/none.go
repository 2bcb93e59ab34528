//go:build !mpi || !cgo

package mpi

// Init reports ErrNoMPI: this build has no MPI.
func Init() (Comm, error) { return nil, ErrNoMPI }

// Built says whether this build has MPI.
const Built = false
