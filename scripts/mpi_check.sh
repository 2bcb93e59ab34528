#!/usr/bin/env bash
# Data-parallel training over MPI, checked on this machine (CI runs it):
# the binding's tests on 2 ranks, then cmd/train built with -tags mpi run as
# 1 rank × 16 and 2 ranks × 8 (same losses at every step, close weights), a
# 2-rank run stopped and resumed, and one killed with SIGKILL after its first
# checkpoint and resumed (both bit-identical to an uninterrupted run), and
# the in-process tests; and cmd/train built with both tags (-tags mpi,gpu):
# 2 ranks on the CPU emulation of the GPU kernels (NCSN_CUDA_EMULATE=1) and on
# two fake GPUs, one each (=driver), against 1 rank there and 2 on the CPU, and 2 ranks without
# a GPU (all on the CPU); and a resume whose second rank has no copy of the
# run's folder.
# Needs Open MPI (Debian: libopenmpi-dev openmpi-bin) and MNIST in data/mnist.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mpirun >/dev/null || ! pkg-config --exists ompi-c 2>/dev/null; then
  echo "mpi_check: needs Open MPI: apt-get install libopenmpi-dev openmpi-bin pkg-config" >&2
  exit 1
fi
out=checkpoints/mpi
mkdir -p "$out"
mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
go vet -tags mpi ./internal/mpi ./train ./cmd/train
go vet -tags mpi,gpu ./internal/mpi ./train ./cmd/train   # data-parallel on GPUs: both tags build together
go test -tags mpi -c -o "$out/mpi.test" ./internal/mpi
"${mpirun[@]}" -np 2 "$out/mpi.test" -test.v 2>&1 | grep -E '^(--- |ok|PASS|FAIL)' | sort | uniq -c
go build -tags mpi -o "$out/train-mpi" ./cmd/train
go build -tags mpi,gpu -o "$out/train-mpi-gpu" ./cmd/train
NCSN_REQUIRE_MPI=1 NCSN_MPI_TRAIN="$PWD/$out/train-mpi" NCSN_MPI_TRAIN_GPU="$PWD/$out/train-mpi-gpu" go test -count=1 -tags gpu \
  -run 'TestMPIEquivalence|TestMPIKilledAndResumed|TestMPIStopSignal|TestMPIOnEmulatedDevices|TestDataParallelInProcess|TestReduceAveragesGradients' -v ./train \
  | grep -E '_test.go|^(--- |ok|FAIL)'
# Both tags, no GPU here and no emulation: rank 0 says so, and every rank trains on the CPU.
rm -rf "$out/gpu-ranks"
"${mpirun[@]}" -np 2 "$out/train-mpi-gpu" -dataset mnist -preset smoke -batch 16 -steps 2 -ckpt-dir "$out/gpu-ranks" 2>&1 |
  grep -E '^(no GPU|device:|data-parallel|done)'
# A rank without the run's folder (as on another machine: each rank here in a
# folder of its own) takes the run as rank 0 has it: a resume restating the
# ladder run's own -levels is not refused there ("-sde ve is continuous").
ranks="$PWD/$out/ranks"
rm -rf "$ranks" && mkdir -p "$ranks/r0" "$ranks/r1"
(cd "$ranks/r0" && "$ranks/../train-mpi" -dataset mnist -data-dir "$OLDPWD/data/mnist" -preset smoke -sde ncsn -levels 12 -steps 2 -ckpt-dir ck 2>&1 | grep -E '^done')
"${mpirun[@]}" -np 2 sh -c "cd '$ranks'/r\$OMPI_COMM_WORLD_RANK && exec '$ranks/../train-mpi' -dataset mnist -data-dir '$PWD/data/mnist' -preset smoke -levels 12 -steps 4 -ckpt-dir ck" 2>&1 |
  grep -E '^(resuming|done)'
# A rank's error says whose it is (mpirun interleaves every rank's lines):
# rank 1's -lr contradicts rank 0's run.
rm -rf "$out/bad-rank"
if "${mpirun[@]}" -np 2 sh -c "x=''; [ \"\$OMPI_COMM_WORLD_RANK\" = 1 ] && x='-lr 0.5'; exec '$PWD/$out/train-mpi' -dataset mnist -preset smoke -steps 2 -ckpt-dir '$PWD/$out/bad-rank' \$x" > "$out/bad-rank.log" 2>&1; then
  echo "mpi_check: rank 1's contradicting -lr was not refused" >&2
  exit 1
fi
grep -E '^rank [01] of 2: train: ' "$out/bad-rank.log" | cut -c1-80
grep -q '^rank 1 of 2: train: .*-lr 0.5 contradicts' "$out/bad-rank.log"
