package mpi

import "testing"

// TestLaunchRank: the launcher's rank is read before MPI starts, from Open
// MPI's, PMIx's or MPICH's variable; without one it is −1.
func TestLaunchRank(t *testing.T) {
	for _, v := range []string{"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"} {
		t.Setenv(v, "")
	}
	if r := LaunchRank(); r != -1 {
		t.Fatalf("no launcher: %d", r)
	}
	for i, v := range []string{"PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK"} {
		t.Setenv(v, string(rune('1'+i)))
		if r := LaunchRank(); r != i+1 {
			t.Fatalf("%s=%d: %d", v, i+1, r)
		}
	}
	t.Setenv("OMPI_COMM_WORLD_RANK", "x")
	if r := LaunchRank(); r != 2 {
		t.Fatalf("a bad OMPI_COMM_WORLD_RANK passed over for PMIX_RANK=2: %d", r)
	}
}
