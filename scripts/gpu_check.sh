#!/usr/bin/env bash
# The GPU checks of the gpu build, for a machine with an NVIDIA GPU and no Go
# toolchain (DEVELOPERS.md: the device tool). Here: build the test binaries
# (make gpu-tests). There, from the repository root with gpu-bin/ carried:
#
#   scripts/gpu_check.sh run
#
# runs every kernel test on the GPU (and in the CPU emulation if g++ is
# there), NVRTC 12/13 compiling kernels.cu, the score network's graph on the
# GPU against the CPU scorer, and -device's choice; then, if data/mnist is
# there (carry it), 100 steps of the default MNIST run on the GPU and on the
# CPU (their img/s lines), and 64 samples from each. A few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != run ]; then
  make gpu-tests
  echo "built gpu-bin/; on the GPU machine run: scripts/gpu_check.sh run"
  exit 0
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
(cd internal/cuda && ../../gpu-bin/cuda.test -test.v -test.count=1 2>&1 | grep -E '^(=== RUN|--- |\s+\w+_test\.go|ok|FAIL|PASS)')
(cd model && ../gpu-bin/model.test -test.v -test.count=1 -test.run 'DeviceScorer' 2>&1 | grep -E '^(=== RUN|--- |\s+\w+_test\.go|ok|FAIL|PASS)')
(cd generate && ../gpu-bin/generate.test -test.v -test.count=1 -test.run 'PickDevice' 2>&1 | grep -E '^(=== RUN|--- |\s+\w+_test\.go|ok|FAIL|PASS)')
if [ -d data/mnist ]; then
  for dev in cuda cpu; do
    rm -rf "/tmp/gpu-check-$dev"
    gpu-bin/train -dataset mnist -steps 100 -save-every 100 -device "$dev" -ckpt-dir "/tmp/gpu-check-$dev" 2>&1 | grep -E 'device|no GPU|step 100/|done|error|panic'
    gpu-bin/sample -ckpt "/tmp/gpu-check-$dev" -device "$dev" -n 64 -out "/tmp/gpu-check-$dev/grid.png" 2>&1 | grep -E 'device|no GPU|sampler|error'
  done
fi
