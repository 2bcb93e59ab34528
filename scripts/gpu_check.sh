#!/usr/bin/env bash
# The GPU checks of the gpu build, for a machine with an NVIDIA GPU and no Go
# toolchain (README "GPU": how such a machine is reached and what it runs).
#
# Here:   scripts/gpu_check.sh pack    (make gpu-tests: stripped test binaries
#         and commands, xz-packed, the PyTorch reference and 5000 CIFAR-10
#         training images as PNG into gpu-pack/, ≈ 40 MB)
# There:  scripts/gpu_check.sh run     (carry gpu-pack and data/mnist)
#
# run: the GPU, driver and libraries found; every device test on the GPU
# (kernels against float64 references, the score network and its gradients
# against the CPU, a whole training run and a sampling run against the
# CPU's); make bench-gpu's figures (ours and PyTorch eager, both networks,
# our CPU path on the same machine); 200 steps of the default MNIST run on
# the GPU and a grid; 300 steps of the ncsnv2-sized network on the CIFAR-10
# images and a grid. Logs and pictures go to $OUT (or /tmp/gpu-check).
#
# profile: the kernel and network tests, then where a training step's and a
# forward pass's time goes, operator by operator (NCSN_DEVICE_PROFILE=1),
# for both networks; our speed with exact float32 products and with TF32
# tensor cores (NCSN_TF32=1); PyTorch's with its defaults and with TF32
# off (NVIDIA_TF32_OVERRIDE=0).
#
# convs: the kernel, network and training tests with cuDNN's convolutions
# and without; make bench-gpu; our training and forward speed with cuDNN
# off and on, exact and TF32; where the ncsnv2 step goes; 200 MNIST steps
# and 300 CIFAR-10 steps of the ncsnv2 network trained and sampled.
#
# graphs (a whole check of a new build in one call, most needed first, each
# stage cut to what is left of GPU_CHECK_BUDGET seconds, default 540): every
# device test (the kernels, CUDA graph capture, the network, training runs
# of the ladder and of MNIST's default recipe with the guide, the step
# replayed as a graph, annealed Langevin and autoguided Heun against the
# CPU); the default MNIST run (3600 steps, EDM on VE, autoguided Heun) with
# CUDA graphs (without them if that fails), a grid, scored by cmd/eval
# (carry data/mnist/classifier-v1.gob); make bench-gpu (ours with and
# without CUDA graphs beside PyTorch); where the ncsnv2 step goes with TF32
# (the GroupNorm backward); compute-sanitizer's racecheck and synccheck on
# the reducing kernels where installed.
#
# algos: every kernel test, and the device tests with the algorithms
# cuDNN's Find measures (the default, kept per GPU in the user's cache
# folder) and with its heuristics (NCSN_CUDNN=heuristics); one seed trained
# twice in two processes (the same losses, the same samples?); the
# default MNIST run, a grid and cmd/eval; make bench-gpu; the ncsnv2
# network's images/s with Find's and the heuristics' algorithms (and an
# earlier build's, where gpu-pack/old/train.test.xz is there); where its
# step goes; PyTorch's step profiled kernel by kernel
# (scripts/torch_profile.py).
#
# engines: cuDNN's graph API (NCSN_CUDNN=graph; written without a GPU,
# first run on one on 2026-11-28): the convolution tests and the device tests on it, its images/s
# beside Find's legacy algorithms (and beside an earlier build's test
# binary, gpu-pack/old/train.test.xz, where packed: the GroupNorm kernels
# were reworked after c1b6557) for both networks in float32 and TF32,
# PyTorch's ncsnv2 figures in the same call, its plans and profile, and the
# default MNIST run trained on it and scored; then cmd/eval -bpd on the GPU
# (its VJPs, also new) beside the CPU. Before those, the default's
# CUDA graphs (on since this stop, the first run replayed too): the device
# tests with them, and a resume exact with and without.
#
# recheck (2026-11-28): everything the GPU path gained since its last GPU
# run: every kernel and device test (model, train, generate, eval), the
# default MNIST run with a grid and cmd/eval, the graph API's tests,
# make bench-gpu, the graph API's images/s beside Find's, cmd/eval -bpd on
# the GPU beside the CPU, compute-sanitizer on the GroupNorm kernels.
#
# tf32: where the ncsnv2 network's TF32 step goes, ours (Find; the graph
# API on our layout and on NCHW copies, in TF32 and float32, each plan
# naming the configurations passed over) and PyTorch's kernels with its
# defaults, deterministic algorithms only, and benchmark mode (TORCH=0:
# ours only).
#
# layout: the graph API's plans on our channel-major layout beside those on
# NCHW copies: their tests, images/s of both networks kernel by kernel in
# TF32 and float32 beside Find's, the ncsnv2 TF32 profile.
#
# tune: the graph API's plans tuned (NCSN_CUDNN_GRAPH_TUNE=4) beside the
# heuristics' first configuration and Find: their tests, images/s of both
# networks in TF32 and float32, the tuned plans; our TF32 step's kernels
# under Nsight Systems where it is installed (~250 s).
#
# tf32graph: TF32's convolutions on the graph API by default: every kernel
# and device test, make bench-gpu, the default MNIST run in TF32, a grid
# and cmd/eval.
#
# product: the default MNIST run (3600 steps) trained on the GPU, a grid,
# and cmd/eval's scores of 256 samples drawn on the GPU (carry
# data/mnist/classifier-v1.gob too); a run begun on the CPU resumed on the
# GPU; the ncsnv2 training step's profile with TF32.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
pack)
  set -e
  rm -rf gpu-pack && mkdir -p gpu-pack/bin
  for p in internal/cuda model generate train eval; do
    CGO_ENABLED=0 go test -c -tags gpu -ldflags='-s -w' -o "gpu-pack/bin/$(basename $p).test" "./$p"
  done
  for c in train sample eval; do
    CGO_ENABLED=0 go build -tags gpu -ldflags='-s -w' -o "gpu-pack/bin/$c" "./cmd/$c"
  done
  tar -C gpu-pack -cJf gpu-pack/bin.tar.xz bin && rm -rf gpu-pack/bin
  ref=${TORCH_REF:-../shared/bench/torch_ref.py}
  if [ -f "$ref" ]; then cp "$ref" gpu-pack/torch_ref.py; else echo "no $ref: bench-gpu there will time ours only"; fi
  if [ "${NCSN_PACK_CIFAR:-1}" = 1 ] && [ -f data/cifar10/cifar-10-batches-bin/data_batch_1.bin ] && command -v /usr/bin/python3 >/dev/null; then
    /usr/bin/python3 - <<'EOF'
import io, os, tarfile, zlib, struct
# 5000 CIFAR-10 training images (data_batch_1) as PNG files, stdlib only.
raw = open('data/cifar10/cifar-10-batches-bin/data_batch_1.bin', 'rb').read()
def png(rgb):
    rows = b''.join(b'\x00' + rgb[y * 96:(y + 1) * 96] for y in range(32))
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 32, 32, 8, 2, 0, 0, 0)) + \
        chunk(b'IDAT', zlib.compress(rows, 9)) + chunk(b'IEND', b'')
with tarfile.open('gpu-pack/cifar5k.tar.gz', 'w:gz') as tf:
    for i in range(5000):
        r = raw[i * 3073 + 1:(i + 1) * 3073]
        rgb = bytes(v for px in zip(r[0:1024], r[1024:2048], r[2048:3072]) for v in px)
        b = png(rgb)
        ti = tarfile.TarInfo(f'cifar5k/{i:05d}.png'); ti.size = len(b)
        tf.addfile(ti, io.BytesIO(b))
EOF
  fi
  du -sh gpu-pack/*
  echo "packed gpu-pack/; on the GPU machine, with gpu-pack and data/mnist carried: scripts/gpu_check.sh run"
  exit 0 ;;
run|profile|product|convs|graphs|algos|engines|recheck|tf32|layout|tf32graph|tune) ;;
*) echo "usage: scripts/gpu_check.sh pack|run|profile|product|convs|graphs|algos|engines|recheck|tf32|layout|tf32graph|tune" >&2; exit 2 ;;
esac

out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
t0=$(date +%s)
stage() { echo; echo "=== $1 (at $(( $(date +%s) - t0 )) s)"; }
# cap N: N seconds, or what is left of GPU_CHECK_BUDGET (default 540) if
# less (never below 5), so that a stage's log still comes back in time.
budget=${GPU_CHECK_BUDGET:-540}
cap() { local left=$(( budget - ($(date +%s) - t0) )); [ "$left" -lt "$1" ] && echo $(( left > 5 ? left : 5 )) || echo "$1"; }

stage "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
nproc; grep -m1 'model name' /proc/cpuinfo; grep -o -m1 'avx512f' /proc/cpuinfo || echo "no avx512f"
ldconfig -p | grep -E 'libcuda\.so|libnvrtc\.so|libcublas\.so' | head
libs=$(find /usr/local/cuda*/ /usr/local/nvidia /opt /usr/lib/x86_64-linux-gnu /usr/local/lib -maxdepth 8 \( -name 'libnvrtc.so*' -o -name 'libcublas.so*' -o -name 'libcuda.so*' \) 2>/dev/null | head -20)
echo "$libs"
# cuDNN: wherever PyTorch's comes from, else anywhere on the machine.
python3 -c 'import torch; print("torch", torch.__version__, torch.__file__, "cuDNN", torch.backends.cudnn.version())' 2>&1 | tail -1
dnn=$(find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -name 'libcudnn.so.*' -print 2>/dev/null | head -5)
echo "$dnn"
if [ -n "$dnn" ]; then
  libs="$libs"$'\n'"$(echo "$dnn" | head -1)"
  export LD_LIBRARY_PATH=$(dirname "$(echo "$dnn" | head -1)")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
# Every folder holding one of them, for our loader (it also searches the usual ones itself).
export NCSN_CUDA_LIBS=$(echo "$libs" | xargs -r -n1 dirname | awk '!s[$0]++' | paste -sd:)
echo "NCSN_CUDA_LIBS=$NCSN_CUDA_LIBS"

if ! nvidia-smi -L >/dev/null 2>&1 && ! ldconfig -p | grep -q 'libcuda\.so'; then
  # Every stage would skip, and the run end "done" with status 0.
  echo "gpu_check: no GPU here (no nvidia-smi, no libcuda): run checks need an NVIDIA GPU"
  exit 1
fi

stage "unpack"
if [ ! -f gpu-pack/bin.tar.xz ]; then # an earlier pack's binaries in /tmp/gb were run instead
  echo "gpu_check: no gpu-pack/bin.tar.xz: run scripts/gpu_check.sh pack (make gpu-tests) where Go is, and carry gpu-pack"
  exit 1
fi
rm -rf /tmp/gb
mkdir -p /tmp/gb && tar -C /tmp/gb -xJf gpu-pack/bin.tar.xz || python3 -c "import tarfile; tarfile.open('gpu-pack/bin.tar.xz').extractall('/tmp/gb')"
B=/tmp/gb/bin; ls -la $B
export NCSN_TEST_EMU=0 # the CPU emulation is CI's; here only the GPU
# An earlier build's train test binary, where packed (gpu-pack/old).
rm -f /tmp/gb/old.test
if [ -f gpu-pack/old/train.test.xz ]; then xz -dc gpu-pack/old/train.test.xz > /tmp/gb/old.test && chmod +x /tmp/gb/old.test; fi

# conv_speeds "NETS" "TF32S" "MODES": images/s of the train step and the
# forward pass, 20 steps each, kernel by kernel (NCSN_CUDA_GRAPH=0: the
# convolutions compared, not the launches), for each network, NCSN_TF32
# and NCSN_CUDNN mode; mode "old" is the earlier build (skipped where not
# packed) with its default.
conv_speeds() {
  local net tf m bin
  for net in $1; do
    for tf in $2; do
      for m in $3; do
        bin=$B/train.test; [ $m = old ] && { [ -x /tmp/gb/old.test ] || continue; bin=/tmp/gb/old.test; }
        echo "-- $net NCSN_TF32=$tf $m: $(cd train && NCSN_CUDA_GRAPH=0 NCSN_CUDNN=${m/old/on} NCSN_TF32=$tf NCSN_BENCH_NET=$net timeout $(cap 60) $bin -test.run '^$' -test.bench 'BenchmarkDevice(TrainStep|Score)$' -test.benchtime 20x 2>&1 | grep -E '^Benchmark|FAIL|panic|rror' | awk '{printf "%s %s images/s; ", $1, $(NF-1)}')"
      done
    done
  done
}

# short_runs: 200 steps of the default MNIST run and 300 of the ncsnv2-sized
# network on the carried CIFAR-10 images, each sampled into a grid in $out.
short_runs() {
  if [ -d data/mnist ]; then
    stage "MNIST default run on the GPU: 200 steps, 64 samples"
    timeout 120 $B/train -dataset mnist -steps 200 -save-every 200 -device cuda -ckpt-dir /tmp/gpu-mnist 2>&1 | tail -15
    timeout 120 $B/sample -ckpt /tmp/gpu-mnist -device cuda -n 64 -out "$out/mnist_gpu_200.png" 2>&1 | tail -5
  fi
  if [ -f gpu-pack/cifar5k.tar.gz ]; then
    stage "CIFAR-10 images, ncsnv2-sized network on the GPU: 300 steps, 64 samples"
    tar -C /tmp -xzf gpu-pack/cifar5k.tar.gz
    timeout 200 $B/train -dataset folder:/tmp/cifar5k -base 128 -mult 1,2,2,2 -batch 128 -lr 1e-4 -steps 300 -save-every 300 \
      -device cuda -ckpt-dir /tmp/gpu-cifar -data-dir /tmp/gpu-folders 2>&1 | tail -12
    timeout 150 $B/sample -ckpt /tmp/gpu-cifar -device cuda -n 64 -out "$out/cifar_gpu_300.png" 2>&1 | tail -5
  fi
}

if [ "$1" = profile ]; then
  stage "tests"
  (cd internal/cuda && timeout 60 $B/cuda.test -test.count=1 2>&1 | tail -3)
  (cd model && timeout 60 $B/model.test -test.count=1 -test.run 'Device|OnDevice' 2>&1 | tail -3)
  (cd train && timeout 60 $B/train.test -test.count=1 -test.run 'TrainOnDevice' 2>&1 | tail -3)
  for net in mnist ncsnv2; do
    stage "$net: profile"
    (cd train && NCSN_DEVICE_PROFILE=1 NCSN_BENCH_NET=$net timeout 90 $B/train.test -test.run '^$' -test.bench 'Device' -test.benchtime 10x -test.v 2>&1 | grep -v '^=== ')
    for tf in 0 1; do
      stage "$net: ours, NCSN_TF32=$tf"
      (cd train && NCSN_TF32=$tf NCSN_BENCH_NET=$net timeout 60 $B/train.test -test.run '^$' -test.bench 'Device' -test.benchtime 20x 2>&1 | grep -E '^Benchmark|FAIL|panic')
    done
    case $net in mnist) targs="--base 16" ;; *) targs="--channels 3 --size 32 --base 128 --mult 1,2,2,2" ;; esac
    stage "$net: PyTorch defaults"; timeout 60 python3 gpu-pack/torch_ref.py --bench --device cuda --batch 128 $targs
    stage "$net: PyTorch, NVIDIA_TF32_OVERRIDE=0"; NVIDIA_TF32_OVERRIDE=0 timeout 60 python3 gpu-pack/torch_ref.py --bench --device cuda --batch 128 $targs
  done
  stage "done"
  exit 0
fi

if [ "$1" = convs ]; then
  stage "kernel tests (internal/cuda): convolutions on cuDNN and on im2col"
  (cd internal/cuda && timeout 90 $B/cuda.test -test.v -test.count=1 -test.run 'ConvAndLinear|Swap01|Cudnn' 2>&1 | grep -v -E 'not run: CPU emulation|^=== ')
  (cd internal/cuda && timeout 90 $B/cuda.test -test.count=1 2>&1 | tail -3)
  for m in on off; do
    stage "NCSN_CUDNN=$m: network, training run, sampling against the CPU"
    (cd model && NCSN_CUDNN=$m timeout 60 $B/model.test -test.count=1 -test.run 'Device|OnDevice' 2>&1 | tail -3)
    (cd train && NCSN_CUDNN=$m timeout 60 $B/train.test -test.count=1 -test.run 'TrainOnDevice' 2>&1 | tail -3)
    (cd generate && NCSN_CUDNN=$m timeout 60 $B/generate.test -test.count=1 -test.run 'AnnealedOnDevice|AutoguidedHeunOnDevice|PickDevice' 2>&1 | tail -3)
  done
  stage "bench-gpu"
  TRAIN_TEST=$B/train.test TORCH_REF=gpu-pack/torch_ref.py timeout 150 scripts/bench_gpu.sh mnist ncsnv2
  stage "ours: cuDNN off and on"
  for net in mnist ncsnv2; do
    for m in off on; do
      for tf in 0 1; do
        echo "-- $net NCSN_CUDNN=$m NCSN_TF32=$tf: $(cd train && NCSN_CUDNN=$m NCSN_TF32=$tf NCSN_BENCH_NET=$net timeout 60 $B/train.test -test.run '^$' -test.bench 'BenchmarkDevice(TrainStep|Score)$' -test.benchtime 20x 2>&1 | grep -E '^Benchmark|FAIL|panic|rror' | awk '{printf "%s %s images/s; ", $1, $(NF-1)}')"
      done
    done
  done
  stage "ncsnv2: where the step goes, cuDNN, NCSN_TF32=1"
  (cd train && NCSN_TF32=1 NCSN_DEVICE_PROFILE=1 NCSN_BENCH_NET=ncsnv2 timeout 60 $B/train.test -test.run '^$' -test.bench 'DeviceTrainStep' -test.benchtime 10x -test.v 2>&1 | grep -v -E '^=== |^ +C=')
  short_runs
  stage "done"
  exit 0
fi

if [ "$1" = graphs ]; then
  # Most needed first; every stage's limit is cut by cap.
  stage "kernel tests (internal/cuda), CUDA graph capture included"
  (cd internal/cuda && timeout $(cap 90) $B/cuda.test -test.v -test.count=1 2>&1 | grep -E '^(--- |ok|FAIL|PASS|panic)|_test.go')
  stage "network, training runs and sampling against the CPU; graphs against steps one by one"
  (cd model && timeout $(cap 60) $B/model.test -test.v -test.count=1 -test.run 'Device|OnDevice' 2>&1 | grep -E '^(--- |ok|FAIL|PASS|panic)|_test.go')
  (cd train && timeout $(cap 90) $B/train.test -test.v -test.count=1 -test.run 'TrainOnDevice' 2>&1 | grep -E '^(--- |ok|FAIL|PASS|panic)|_test.go')
  (cd generate && timeout $(cap 60) $B/generate.test -test.v -test.count=1 -test.run 'AnnealedOnDevice|AutoguidedHeunOnDevice|PickDevice' 2>&1 | grep -E '^(--- |ok|FAIL|PASS|panic)|_test.go')
  stage "the default MNIST run on the GPU with CUDA graphs (NCSN_CUDA_GRAPH=1)"
  g=1
  NCSN_CUDA_GRAPH=1 timeout $(cap 150) $B/train -dataset mnist -device cuda -ckpt-dir /tmp/gpu-default 2>&1 | grep -E '^step (1200|2400|3600)/|^done|^device|^starting|rror|panic'
  if ! ls /tmp/gpu-default/ckpt-00003600.ckpt >/dev/null 2>&1; then
    echo "no step-3600 checkpoint with graphs: the same run without them"; g=0
    rm -rf /tmp/gpu-default
    timeout $(cap 150) $B/train -dataset mnist -device cuda -ckpt-dir /tmp/gpu-default 2>&1 | grep -E '^step (1200|2400|3600)/|^done|^device|^starting|rror|panic'
  fi
  cp /tmp/gpu-default/train.csv "$out/mnist_gpu_default_train.csv" 2>/dev/null || true
  NCSN_CUDA_GRAPH=$g timeout $(cap 60) $B/sample -ckpt /tmp/gpu-default -device cuda -n 64 -out "$out/mnist_gpu_default.png" 2>&1 | tail -3
  NCSN_CUDA_GRAPH=$g timeout $(cap 120) $B/eval -dataset mnist -samples /tmp/gpu-default -n 256 -seed 0 -device cuda 2>&1 | tail -25
  stage "bench-gpu (ours with and without CUDA graphs; PyTorch)"
  TRAIN_TEST=$B/train.test TORCH_REF=gpu-pack/torch_ref.py timeout $(cap 200) scripts/bench_gpu.sh mnist ncsnv2
  stage "where the ncsnv2 step goes, TF32 (NCSN_DEVICE_PROFILE=1)"
  (cd train && NCSN_TF32=1 NCSN_DEVICE_PROFILE=1 NCSN_BENCH_NET=ncsnv2 timeout $(cap 60) $B/train.test -test.run '^$' -test.bench 'DeviceTrainStep' -test.benchtime 10x -test.v 2>&1 | grep -v -E '^=== |^ +C=' | tail -30)
  if command -v compute-sanitizer >/dev/null; then
    stage "races and barriers in the reducing kernels (compute-sanitizer racecheck, synccheck)"
    for tool in racecheck synccheck; do
      (cd internal/cuda && timeout $(cap 60) compute-sanitizer --tool $tool --print-limit 20 $B/cuda.test -test.count=1 -test.run 'GroupNorm|ParamSet|Capture' 2>&1 | tail -6)
    done
  else
    stage "compute-sanitizer: not installed"
  fi
  stage "done"
  exit 0
fi

if [ "$1" = algos ]; then
  # cuDNN's algorithms measured by its Find (the default since 2026-11-27,
  # kept in the user's cache folder) against its heuristics
  # (NCSN_CUDNN=heuristics); the same seed run twice; PyTorch's step
  # profiled beside ours. gpu-pack/old/train.test.xz (optional): an
  # earlier build's train test binary, timed in the same call.
  rm -rf "${XDG_CACHE_HOME:-$HOME/.cache}/ncsn/cudnn"
  stage "kernel tests: convolutions with cuDNN's Find, its heuristics, im2col"
  (cd internal/cuda && timeout $(cap 90) $B/cuda.test -test.v -test.count=1 2>&1 | grep -E '^(--- FAIL|ok|FAIL|PASS|panic)|_test.go.*(rror|want|differ)' | head -20)
  stage "network, training runs, sampling against the CPU (Find, then heuristics)"
  for m in on heuristics; do
    (cd model && NCSN_CUDNN=$m timeout $(cap 60) $B/model.test -test.count=1 -test.run 'Device|OnDevice' 2>&1 | tail -1)
    (cd train && NCSN_CUDNN=$m timeout $(cap 60) $B/train.test -test.count=1 -test.run 'TrainOnDevice' 2>&1 | tail -1)
    (cd generate && NCSN_CUDNN=$m timeout $(cap 60) $B/generate.test -test.count=1 -test.run 'AnnealedOnDevice|AutoguidedHeunOnDevice' 2>&1 | tail -1)
  done
  stage "the choices kept"
  ls -la "${XDG_CACHE_HOME:-$HOME/.cache}/ncsn/cudnn"; head -c 600 "${XDG_CACHE_HOME:-$HOME/.cache}"/ncsn/cudnn/*float32.json; echo
  stage "one seed, two processes: 300 MNIST steps each, train.csv's losses compared"
  for r in 1 2; do timeout $(cap 60) $B/train -dataset mnist -steps 300 -save-every 300 -device cuda -ckpt-dir /tmp/seed$r 2>&1 | grep -E '^done|rror'; done
  if [ -s /tmp/seed1/train.csv ] && cmp <(cut -d, -f1,2,5- /tmp/seed1/train.csv) <(cut -d, -f1,2,5- /tmp/seed2/train.csv); then echo "the same losses, row for row ($(wc -l < /tmp/seed1/train.csv) rows)"; else echo "DIFFERENT losses"; fi
  for r in 1 2; do timeout $(cap 30) $B/sample -ckpt /tmp/seed$r -device cuda -n 16 -seed 3 -out /tmp/seed$r.png 2>&1 | grep -E 'rror'; done
  [ -s /tmp/seed1.png ] && cmp /tmp/seed1.png /tmp/seed2.png && echo "their samples (seed 3) byte-identical"
  stage "the default MNIST run on the GPU (3600 steps), a grid, cmd/eval"
  timeout $(cap 120) $B/train -dataset mnist -device cuda -ckpt-dir /tmp/gpu-default 2>&1 | grep -E '^step (1200|2400|3600)/|^done|^device|^starting|rror|panic'
  cp /tmp/gpu-default/train.csv "$out/mnist_gpu_default_train.csv" 2>/dev/null || true
  timeout $(cap 60) $B/sample -ckpt /tmp/gpu-default -device cuda -n 64 -out "$out/mnist_gpu_default.png" 2>&1 | tail -2
  timeout $(cap 90) $B/eval -dataset mnist -samples /tmp/gpu-default -n 256 -seed 0 -device cuda 2>&1 | tail -12
  stage "bench-gpu (ours: Find's algorithms, with and without CUDA graphs; PyTorch)"
  TRAIN_TEST=$B/train.test TORCH_REF=gpu-pack/torch_ref.py timeout $(cap 150) scripts/bench_gpu.sh mnist ncsnv2
  stage "ncsnv2 images/s, kernel by kernel: train step, forward (20 steps each), in this call"
  conv_speeds ncsnv2 "0 1" "old heuristics on"
  for tf in 0 1; do
    stage "where the ncsnv2 step goes, NCSN_TF32=$tf, Find's algorithms (kept)"
    (cd train && NCSN_TF32=$tf NCSN_DEVICE_PROFILE=1 NCSN_BENCH_NET=ncsnv2 timeout $(cap 60) $B/train.test -test.run '^$' -test.bench 'DeviceTrainStep' -test.benchtime 10x -test.v 2>&1 | grep -v -E '^=== ' | cut -c1-260)
  done
  for o in default 0; do
    stage "PyTorch's ncsnv2 step profiled (NVIDIA_TF32_OVERRIDE=$o; its own cuDNN)"
    if [ $o = default ]; then env -u LD_LIBRARY_PATH timeout $(cap 60) python3 scripts/torch_profile.py gpu-pack/torch_ref.py
    else env -u LD_LIBRARY_PATH NVIDIA_TF32_OVERRIDE=0 timeout $(cap 60) python3 scripts/torch_profile.py gpu-pack/torch_ref.py; fi
  done
  stage "done"
  exit 0
fi

if [ "$1" = engines ]; then
  # cuDNN's graph API (NCSN_CUDNN=graph, written without a GPU on
  # 2026-11-27): does it plan, is it right, is it faster than Find's legacy
  # algorithms, above all in TF32 on the ncsnv2 network?
  stage "kernel tests: convolutions on the graph API (gpu-graph) beside Find, the heuristics, im2col"
  (cd internal/cuda && timeout $(cap 90) $B/cuda.test -test.v -test.count=1 -test.run 'ConvAndLinear|Cudnn|GraphNotes' 2>&1 | grep -v -E 'not run|^=== ' | grep -E 'graph|FAIL|^(--- |ok|PASS)|panic|rror' | cut -c1-400)
  stage "every kernel test (the GroupNorm kernels reworked since c1b6557); races and barriers"
  (cd internal/cuda && timeout $(cap 60) $B/cuda.test -test.count=1 2>&1 | tail -3)
  if command -v compute-sanitizer >/dev/null; then
    for tool in racecheck synccheck; do
      (cd internal/cuda && timeout $(cap 60) compute-sanitizer --tool $tool --print-limit 20 $B/cuda.test -test.count=1 -test.run 'GroupNorm' 2>&1 | tail -4)
    done
  fi
  stage "CUDA graphs by default (new: the first run replayed too): the device tests, a resume exact with and without graphs"
  (cd model && timeout $(cap 60) $B/model.test -test.count=1 -test.run 'Device' 2>&1 | tail -3)
  (cd train && timeout $(cap 60) $B/train.test -test.v -test.count=1 -test.run 'DeviceResumeIsExact|TrainOnDevice|TrainClassifierOnDevice|DataParallelOnDevice' 2>&1 | grep -E '^\s*--- |^(ok|FAIL|PASS)|panic' | cut -c1-300)
  stage "NCSN_CUDNN=graph: network, training runs, sampling against the CPU"
  (cd model && NCSN_CUDNN=graph timeout $(cap 60) $B/model.test -test.count=1 -test.run 'Device|OnDevice' 2>&1 | tail -3)
  (cd train && NCSN_CUDNN=graph timeout $(cap 60) $B/train.test -test.count=1 -test.run 'TrainOnDevice' 2>&1 | tail -3)
  (cd generate && NCSN_CUDNN=graph timeout $(cap 60) $B/generate.test -test.count=1 -test.run 'AnnealedOnDevice|AutoguidedHeunOnDevice|ClassGuidanceOnDevice' 2>&1 | tail -3)
  stage "images/s, kernel by kernel: an earlier build (old, if packed), Find's legacy algorithms (on), the graph API (graph); 20 steps each"
  conv_speeds "ncsnv2 mnist" "1 0" "old on graph"
  stage "PyTorch in the same call (ncsnv2: defaults, then TF32 off)"
  env -u LD_LIBRARY_PATH timeout $(cap 60) python3 gpu-pack/torch_ref.py --bench --device cuda --batch 128 --channels 3 --size 32 --base 128 --mult 1,2,2,2
  env -u LD_LIBRARY_PATH NVIDIA_TF32_OVERRIDE=0 timeout $(cap 60) python3 gpu-pack/torch_ref.py --bench --device cuda --batch 128 --channels 3 --size 32 --base 128 --mult 1,2,2,2
  stage "ncsnv2, TF32, graph API: the plans and where the step goes"
  (cd train && NCSN_CUDNN=graph NCSN_TF32=1 NCSN_DEVICE_PROFILE=1 NCSN_BENCH_NET=ncsnv2 timeout $(cap 60) $B/train.test -test.run '^$' -test.bench 'DeviceTrainStep' -test.benchtime 10x -test.v 2>&1 | grep -v -E '^=== ' | cut -c1-300)
  stage "the default MNIST run with the graph API (3600 steps; Find's gave 60.2775)"
  NCSN_CUDNN=graph timeout $(cap 90) $B/train -dataset mnist -device cuda -ckpt-dir /tmp/gpu-graph 2>&1 | grep -E '^step (1200|2400|3600)/|^done|^device|rror|panic' | cut -c1-400
  NCSN_CUDNN=graph timeout $(cap 60) $B/eval -dataset mnist -samples /tmp/gpu-graph -n 256 -seed 0 -device cuda 2>&1 | tail -9
  stage "cmd/eval -bpd with the network's VJPs on the GPU (new), beside the CPU path: a VE model of 300 steps, 64 test images"
  timeout $(cap 40) $B/train -dataset mnist -sde ve -steps 300 -device cuda -ckpt-dir /tmp/gpu-ve 2>&1 | grep -E '^done|rror|panic' | cut -c1-300
  for dv in cuda cpu; do timeout $(cap 60) $B/eval -dataset mnist -samples /tmp/gpu-ve -bpd -n 64 -device $dv 2>&1 | grep -E '^\{|rror|panic' | cut -c1-300; done
  stage "done"
  exit 0
fi

if [ "$1" = tf32graph ]; then
  # TF32's convolutions on the graph API by default (2026-11-28): every
  # kernel and device test, make bench-gpu, and the default MNIST run in
  # TF32 with its grid and scores.
  stage "every kernel test (internal/cuda)"
  (cd internal/cuda && timeout $(cap 60) $B/cuda.test -test.count=1 2>&1 | grep -E '^(--- FAIL|ok|FAIL|PASS)|panic|_test.go.*(rror|want|differ)' | head -20)
  stage "every device test: model, train, generate, eval"
  for p in model train generate eval; do
    (cd $p && timeout $(cap 60) $B/$p.test -test.count=1 -test.run 'Device|OnDevice' 2>&1 | grep -E '^(--- FAIL|ok|FAIL|PASS)|panic' | head -10)
  done
  stage "bench-gpu (ours: float32, TF32 on the graph API, CUDA graphs; PyTorch)"
  TRAIN_TEST=$B/train.test TORCH_REF=gpu-pack/torch_ref.py timeout $(cap 120) scripts/bench_gpu.sh mnist ncsnv2
  stage "the default MNIST run in TF32 (NCSN_TF32=1: the graph API), a grid, cmd/eval"
  NCSN_TF32=1 timeout $(cap 60) $B/train -dataset mnist -device cuda -ckpt-dir /tmp/gpu-tf32 2>&1 | grep -E '^step (3600)/|^done|^device|rror|panic|^train: ' | cut -c1-600
  NCSN_TF32=1 timeout $(cap 30) $B/sample -ckpt /tmp/gpu-tf32 -device cuda -n 64 -out "$out/mnist_gpu_tf32.png" 2>&1 | tail -2
  NCSN_TF32=1 timeout $(cap 40) $B/eval -dataset mnist -samples /tmp/gpu-tf32 -n 256 -seed 0 -device cuda 2>&1 | tail -9
  stage "done"
  exit 0
fi

if [ "$1" = layout ]; then
  # The graph API's plans on our channel-major layout, described by its
  # strides (no NCHW copies; new on 2026-11-28), beside those on the NCHW
  # copies (NCSN_CUDNN_GRAPH_LAYOUT=nchw): right on the GPU, and faster?
  stage "kernel tests: convolutions on the graph API, our layout (gpu-graph) and NCHW copies (gpu-graph-nchw)"
  (cd internal/cuda && timeout $(cap 90) $B/cuda.test -test.v -test.count=1 -test.run 'ConvAndLinear|Cudnn|Graph' 2>&1 | grep -E 'graph|FAIL|^(ok|PASS)|panic|rror' | grep -v -E '^=== |not run' | cut -c1-600 | head -40)
  stage "NCSN_CUDNN=graph: network, training runs, sampling against the CPU"
  (cd model && NCSN_CUDNN=graph timeout $(cap 60) $B/model.test -test.count=1 -test.run 'Device|OnDevice' 2>&1 | tail -3)
  (cd train && NCSN_CUDNN=graph timeout $(cap 60) $B/train.test -test.count=1 -test.run 'TrainOnDevice|DeviceResumeIsExact' 2>&1 | tail -3)
  (cd generate && NCSN_CUDNN=graph timeout $(cap 60) $B/generate.test -test.count=1 -test.run 'AnnealedOnDevice|AutoguidedHeunOnDevice' 2>&1 | tail -3)
  stage "images/s kernel by kernel, ncsnv2 then mnist: Find (on), graph API on our layout (graph), on NCHW copies (graph-nchw)"
  for net in ncsnv2 mnist; do
    for tf in 1 0; do
      for m in on graph graph-nchw; do
        lay=ours; [ $m = graph-nchw ] && lay=nchw
        echo "-- $net NCSN_TF32=$tf $m: $(cd train && NCSN_CUDA_GRAPH=0 NCSN_CUDNN=${m%-nchw} NCSN_CUDNN_GRAPH_LAYOUT=$lay NCSN_TF32=$tf NCSN_BENCH_NET=$net timeout $(cap 60) $B/train.test -test.run '^$' -test.bench 'BenchmarkDevice(TrainStep|Score)$' -test.benchtime 20x 2>&1 | grep -E '^Benchmark|FAIL|panic|rror' | awk '{printf "%s %s images/s; ", $1, $(NF-1)}')"
      done
    done
  done
  stage "ncsnv2, TF32, graph API on our layout: the plans and where the step goes"
  (cd train && NCSN_CUDNN=graph NCSN_TF32=1 NCSN_DEVICE_PROFILE=1 NCSN_BENCH_NET=ncsnv2 timeout $(cap 60) $B/train.test -test.run '^$' -test.bench 'DeviceTrainStep' -test.benchtime 10x -test.v 2>&1 | grep -v -E '^=== ' | awk '/phases over 4 steps/{skip=1} /phases over 1[0-9] steps/{skip=0} !skip' | cut -c1-1500)
  stage "done"
  exit 0
fi

if [ "$1" = tune ]; then
  # Each graph-API plan the fastest of the heuristics' first 4 usable
  # configurations, timed on the GPU (NCSN_CUDNN_GRAPH_TUNE=4: each
  # candidate is finalized, and a runtime-compiled engine compiled, so not
  # 16; written on
  # 2026-11-28 without a GPU, tested on the fake GPU only): right, and
  # faster than the first configuration (TF32's default), and in float32
  # than Find? The tuned choices are kept in ~/.cache/ncsn/cudnn, so each
  # tuned speed is measured twice: while tuning, then with the kept choices.
  # Then, where Nsight Systems is installed, our TF32 step's kernels.
  stage "kernel tests with NCSN_CUDNN_GRAPH_TUNE=3"
  (cd internal/cuda && NCSN_CUDNN_GRAPH_TUNE=3 timeout $(cap 90) $B/cuda.test -test.v -test.count=1 -test.run 'ConvAndLinear|Cudnn|Graph' 2>&1 | grep -E 'graph|FAIL|^(ok|PASS)|panic|rror' | grep -v -E '^=== |not run' | cut -c1-600 | head -40)
  (cd train && NCSN_CUDNN=graph NCSN_CUDNN_GRAPH_TUNE=3 timeout $(cap 60) $B/train.test -test.count=1 -test.run 'TrainOnDevice|DeviceResumeIsExact' 2>&1 | tail -3)
  stage "ncsnv2, TF32, tuning (no kept choices): the plans with each candidate's time, and where the step goes"
  rm -f ~/.cache/ncsn/cudnn/*graph-*.json
  (cd train && NCSN_CUDNN=graph NCSN_CUDNN_GRAPH_TUNE=4 NCSN_TF32=1 NCSN_DEVICE_PROFILE=1 NCSN_BENCH_NET=ncsnv2 timeout $(cap 60) $B/train.test -test.run '^$' -test.bench 'DeviceTrainStep' -test.benchtime 10x -test.v 2>&1 | grep -v -E '^=== ' | awk '/phases over 4 steps/{skip=1} /phases over 1[0-9] steps/{skip=0} !skip' | cut -c1-2500)
  stage "images/s kernel by kernel, ncsnv2 then mnist: Find (on), graph API first configuration (graph), tuned over 4 (tune4, twice)"
  for net in ncsnv2 mnist; do
    for tf in 1 0; do
      for m in on graph tune4 tune4; do
        tune=1; [ $m = tune4 ] && tune=4
        echo "-- $net NCSN_TF32=$tf $m: $(cd train && NCSN_CUDA_GRAPH=0 NCSN_CUDNN=${m/tune4/graph} NCSN_CUDNN_GRAPH_TUNE=$tune NCSN_TF32=$tf NCSN_BENCH_NET=$net timeout $(cap 90) $B/train.test -test.run '^$' -test.bench 'BenchmarkDevice(TrainStep|Score)$' -test.benchtime 20x 2>&1 | grep -E '^Benchmark|FAIL|panic|rror' | awk '{printf "%s %s images/s; ", $1, $(NF-1)}')"
      done
    done
  done
  nsys=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys 2>/dev/null | head -1)
  if [ -n "$nsys" ] && [ "$(cap 60)" -ge 60 ]; then
    stage "ncsnv2, TF32 default (graph API, first configuration): our kernels under Nsight Systems, 20 steps"
    (cd train && NCSN_CUDA_GRAPH=0 NCSN_TF32=1 NCSN_BENCH_NET=ncsnv2 timeout $(cap 90) "$nsys" profile -o /tmp/ours-tf32 --force-overwrite true -t cuda $B/train.test -test.run '^$' -test.bench 'BenchmarkDeviceTrainStep$' -test.benchtime 20x > /tmp/nsys.log 2>&1; tail -3 /tmp/nsys.log)
    timeout $(cap 60) "$nsys" stats --report cuda_gpu_kern_sum --format csv /tmp/ours-tf32.nsys-rep 2>/dev/null | head -30 | cut -c1-300
  else
    stage "no Nsight Systems (nsys) here, or no time left for it"
  fi
  stage "done"
  exit 0
fi

if [ "$1" = tf32 ]; then
  # Where the ncsnv2 network's TF32 training step loses to PyTorch's
  # (0.68x on 2026-11-28 with Find's algorithms): ours with Find's legacy
  # algorithms and with the graph API's plans, operator by operator and
  # which engines; PyTorch's
  # kernels with its defaults, with cuDNN's deterministic algorithms only
  # (as ours) and with its benchmark mode.
  # Each plan names the configurations cuDNN's heuristics ranked before it
  # and why they were passed over.
  # NCSN_CUDNN_GRAPH_LAYOUT=nchw: the graph API's plans on NCHW copies
  # only (before 2026-11-28 the only way), not on our layout first.
  for v in "on 1 ours" "graph 1 ours" "graph 1 nchw" "graph 0 ours" "graph 0 nchw"; do
    set -- $v
    stage "ours, ncsnv2, NCSN_CUDNN=$1 NCSN_TF32=$2 NCSN_CUDNN_GRAPH_LAYOUT=$3: where the step goes"
    (cd train && NCSN_CUDNN=$1 NCSN_TF32=$2 NCSN_CUDNN_GRAPH_LAYOUT=$3 NCSN_DEVICE_PROFILE=1 NCSN_BENCH_NET=ncsnv2 timeout $(cap 60) $B/train.test -test.run '^$' -test.bench 'DeviceTrainStep' -test.benchtime 10x -test.v 2>&1 | grep -v -E '^=== ' | awk '/phases over 4 steps/{skip=1} /phases over 1[0-9] steps/{skip=0} !skip' | cut -c1-1500)
  done
  [ "${TORCH:-1}" = 1 ] || { stage "done"; exit 0; }
  for f in "" "--deterministic" "--benchmark" "--deterministic --benchmark"; do
    stage "PyTorch's ncsnv2 step, TF32 defaults ${f:-(no flags)}"
    env -u LD_LIBRARY_PATH timeout $(cap 60) python3 scripts/torch_profile.py gpu-pack/torch_ref.py $f 2>&1 | grep -v -i warn | awk 'NR<=24 || /images\/s/'
  done
  stage "done"
  exit 0
fi

if [ "$1" = recheck ]; then
  # Everything the GPU path gained since its last GPU run (d6d018c,
  # 2026-11-27), most needed first, each stage cut by cap: the reworked
  # GroupNorm kernels, CUDA graphs with the first run replayed, classifier
  # guidance and eval's noisy accuracy and -bpd VJPs on the device, the
  # arithmetic path's name, cuDNN's graph API (NCSN_CUDNN=graph); then the
  # default MNIST run, make bench-gpu and the graph API's speed.
  dtests() { # dtests PKG PATTERN [ENV...]: -v, the verdict lines only
    local pkg=$1 pat=$2; shift 2
    (cd $pkg && env "$@" timeout $(cap 90) $B/$(basename $pkg).test -test.v -test.count=1 -test.run "$pat" 2>&1 | grep -E '^\s*--- (FAIL|PASS|SKIP)|^(ok|FAIL|PASS)$|panic|_test.go:[0-9]+: .*(rror|want|differ|FAIL|got)' | grep -v 'not run: CPU emulation' | cut -c1-300)
  }
  stage "every kernel test (internal/cuda): GroupNorm reworked, capture, cuDNN Find/heuristics/graph API, im2col"
  dtests internal/cuda .
  stage "every device test, the defaults (cuDNN Find, CUDA graphs): model, train, generate, eval"
  dtests model 'Device|OnDevice|GPU'
  dtests train 'Device|OnDevice'
  dtests generate 'Device|OnDevice'
  dtests eval 'Device|OnDevice'
  stage "the default MNIST run on the GPU (3600 steps), a grid, cmd/eval"
  timeout $(cap 120) $B/train -dataset mnist -device cuda -ckpt-dir /tmp/gpu-default 2>&1 | grep -E '^step (1200|2400|3600)/|^done|^device|^starting|rror|panic|note|^train: ' | cut -c1-500
  grep -o '"arith[^,]*' /tmp/gpu-default/config.json 2>/dev/null; cp /tmp/gpu-default/train.csv "$out/mnist_gpu_default_train.csv" 2>/dev/null || true
  timeout $(cap 60) $B/sample -ckpt /tmp/gpu-default -device cuda -n 64 -out "$out/mnist_gpu_default.png" 2>&1 | tail -2
  timeout $(cap 90) $B/eval -dataset mnist -samples /tmp/gpu-default -n 256 -seed 0 -device cuda 2>&1 | tail -9
  stage "NCSN_CUDNN=graph (cuDNN's graph API, never yet on a GPU): kernels, network, training, sampling"
  dtests internal/cuda 'ConvAndLinear|Cudnn|GraphNotes' NCSN_CUDNN=graph
  dtests model 'Device|OnDevice' NCSN_CUDNN=graph
  dtests train 'TrainOnDevice|DeviceResumeIsExact' NCSN_CUDNN=graph
  dtests generate 'AnnealedOnDevice|AutoguidedHeunOnDevice|ClassGuidanceOnDevice' NCSN_CUDNN=graph
  stage "bench-gpu (ours: float32, TF32, graphs; PyTorch defaults and TF32 off)"
  TRAIN_TEST=$B/train.test TORCH_REF=gpu-pack/torch_ref.py timeout $(cap 150) scripts/bench_gpu.sh mnist ncsnv2
  stage "ncsnv2 images/s kernel by kernel: Find's legacy algorithms (on) beside the graph API (graph)"
  conv_speeds ncsnv2 "1 0" "on graph"
  stage "cmd/eval -bpd with the VJPs on the GPU beside the CPU: a VE model of 300 steps, 64 test images"
  timeout $(cap 40) $B/train -dataset mnist -sde ve -steps 300 -device cuda -ckpt-dir /tmp/gpu-ve 2>&1 | grep -E '^done|rror|panic|^train: ' | cut -c1-300
  for dv in cuda cpu; do timeout $(cap 60) $B/eval -dataset mnist -samples /tmp/gpu-ve -bpd -n 64 -device $dv 2>&1 | grep -E 'bits per|network eval|^device|rror|panic|^eval: ' | cut -c1-300; done
  if command -v compute-sanitizer >/dev/null; then
    stage "races and barriers in the reworked GroupNorm kernels (compute-sanitizer)"
    for tool in racecheck synccheck; do
      (cd internal/cuda && timeout $(cap 45) compute-sanitizer --tool $tool --print-limit 20 $B/cuda.test -test.count=1 -test.run 'GroupNorm' 2>&1 | tail -3)
    done
  fi
  stage "the default MNIST run with the graph API (3600 steps)"
  NCSN_CUDNN=graph timeout $(cap 90) $B/train -dataset mnist -device cuda -ckpt-dir /tmp/gpu-graph 2>&1 | grep -E '^step (3600)/|^done|^device|rror|panic|^train: ' | cut -c1-400
  stage "done"
  exit 0
fi

if [ "$1" = product ]; then
  stage "the default MNIST run on the GPU"
  timeout 150 $B/train -dataset mnist -device cuda -ckpt-dir /tmp/gpu-default 2>&1 | grep -E '^step (1000|2000|3000|3600)/|^done|^device|^starting|rror|panic'
  timeout 60 $B/sample -ckpt /tmp/gpu-default -device cuda -n 64 -out "$out/mnist_gpu_default.png" 2>&1 | tail -3
  timeout 90 $B/eval -dataset mnist -samples /tmp/gpu-default -n 256 -seed 0 -device cuda 2>&1 | tail -25
  stage "begun on the CPU (100 steps), resumed on the GPU (to 150)"
  timeout 60 $B/train -dataset mnist -steps 100 -save-every 100 -device cpu -ckpt-dir /tmp/gpu-resume 2>&1 | tail -2
  timeout 60 $B/train -dataset mnist -steps 150 -save-every 50 -device cuda -ckpt-dir /tmp/gpu-resume 2>&1 | tail -4
  stage "ncsnv2 training step with TF32 (NCSN_TF32=1, NCSN_DEVICE_PROFILE=1)"
  (cd train && NCSN_TF32=1 NCSN_DEVICE_PROFILE=1 NCSN_BENCH_NET=ncsnv2 timeout 60 $B/train.test -test.run '^$' -test.bench 'DeviceTrainStep' -test.benchtime 10x -test.v 2>&1 | grep -v '^=== ' | tail -32)
  stage "done"
  exit 0
fi

stage "kernel tests (internal/cuda)"
(cd internal/cuda && timeout 90 $B/cuda.test -test.v -test.count=1 2>&1 | grep -v 'not run: CPU emulation')
if [ $? = 124 ]; then echo "kernel tests hung: stopping"; exit 1; fi
stage "score network and gradients (model)"
(cd model && timeout 60 $B/model.test -test.v -test.count=1 -test.run 'Device|OnDevice' 2>&1 | grep -v 'not run: CPU emulation')
stage "a training run against the CPU's (train)"
(cd train && timeout 60 $B/train.test -test.v -test.count=1 -test.run 'TrainOnDevice|TrainClassifierOnDevice|DataParallelOnDevice' 2>&1 | grep -v 'not run: CPU emulation')
stage "sampling against the CPU (generate)"
(cd generate && timeout 60 $B/generate.test -test.v -test.count=1 -test.run 'AnnealedOnDevice|AutoguidedHeunOnDevice|ClassGuidanceOnDevice|PickDevice' 2>&1 | grep -v 'not run: CPU emulation')

stage "bench-gpu"
TRAIN_TEST=$B/train.test TORCH_REF=gpu-pack/torch_ref.py NCSN_BENCH_CPU=1 timeout 180 scripts/bench_gpu.sh mnist ncsnv2

short_runs
stage "where the ncsnv2 network's training step goes (NCSN_DEVICE_PROFILE=1)"
(cd train && NCSN_DEVICE_PROFILE=1 NCSN_BENCH_NET=ncsnv2 timeout 60 $B/train.test -test.run '^$' -test.bench 'DeviceTrainStep' -test.benchtime 10x -test.v 2>&1 | grep -v '^=== ')
stage "done"
