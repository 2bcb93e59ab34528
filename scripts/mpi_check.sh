#!/usr/bin/env bash
# Data-parallel training over MPI, checked on this machine (CI runs it):
# the binding's tests on 2 ranks, then cmd/train built with -tags mpi run as
# 1 rank × 16 and 2 ranks × 8 (same losses at every step, close weights), a
# 2-rank run stopped and resumed, and one killed with SIGKILL after its first
# checkpoint and resumed (both bit-identical to an uninterrupted run), and
# the in-process tests.
# Needs Open MPI (Debian: libopenmpi-dev openmpi-bin) and MNIST in data/mnist.
set -euo pipefail
cd "$(dirname "$0")/.."
out=checkpoints/mpi
mkdir -p "$out"
mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
go vet -tags mpi ./internal/mpi ./train ./cmd/train
go test -tags mpi -c -o "$out/mpi.test" ./internal/mpi
"${mpirun[@]}" -np 2 "$out/mpi.test" -test.v 2>&1 | grep -E '^(--- |ok|PASS|FAIL)' | sort | uniq -c
go build -tags mpi -o "$out/train-mpi" ./cmd/train
NCSN_REQUIRE_MPI=1 NCSN_MPI_TRAIN="$PWD/$out/train-mpi" go test -count=1 -run 'TestMPIEquivalence|TestMPIKilledAndResumed|TestDataParallelInProcess|TestReduceAveragesGradients' -v ./train \
  | grep -E '_test.go|^(--- |ok|FAIL)'
