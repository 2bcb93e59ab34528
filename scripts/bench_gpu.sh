#!/usr/bin/env bash
# Speed on a GPU (make bench-gpu): our training step and score evaluation
# (forward pass) in images/s beside PyTorch eager's on the same GPU
# (torch_ref.py --bench --device cuda), for the default MNIST network (base
# 16, batch 128) and the network of the CIFAR-10 ncsnv2 preset (32×32
# colour, base 128, multipliers 1,2,2,2, batch 128). Ours in exact float32
# kernel by kernel (NCSN_CUDA_GRAPH=0, as PyTorch eager runs), with
# NCSN_TF32=1, and with each run's steps replayed as one CUDA graph (our
# default: float32, CUDA graphs); PyTorch with its defaults (its
# convolutions on TF32 tensor cores) and with NVIDIA_TF32_OVERRIDE=0. Each
# network's block ends with three ratio lines (like for like in float32
# and TF32, our graphs against PyTorch's float32) and then
# `ratio train=X.XX forward=Y.YY`: both programs' defaults (ours, with
# graphs, over PyTorch's); the last line is the ncsnv2 network's.
#
# Usage: scripts/bench_gpu.sh [mnist|ncsnv2 ...]   (default: both)
# Environment: TORCH_REF (default ../shared/bench/torch_ref.py), TRAIN_TEST
# (a test binary of ./train built with -tags gpu, for a machine without Go;
# default: built here), BENCHTIME (default 20x), NCSN_BENCH_CPU=1 (also
# time our CPU path on this machine: the train step without Adam, 2 steps).
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${TORCH_REF:-../shared/bench/torch_ref.py}
benchtime=${BENCHTIME:-20x}
nets=("$@")
[ ${#nets[@]} -gt 0 ] || nets=(mnist ncsnv2)

bin=${TRAIN_TEST:-}
if [ -z "$bin" ]; then
  tmpd=$(mktemp -d)
  trap 'rm -rf "$tmpd"' EXIT # 22 MB a run were left
  bin=$tmpd/train.test
  CGO_ENABLED=0 go test -c -tags gpu -o "$bin" ./train
fi
py=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import torch' 2>/dev/null; then py=$p; break; fi
done

metric() { # metric BENCHNAME UNIT < go bench output
  awk -v b="$1" -v u="$2" '$1 ~ "^"b"(-[0-9]+)?$" {for (i=1;i<=NF;i++) if ($(i+1)==u) print $i}'
}

ours() { # ours NET TF32 [GRAPHS] → "train forward" images/s
  local out
  out=$(NCSN_BENCH_NET=$1 NCSN_TF32=$2 NCSN_CUDA_GRAPH=${3:-0} "$bin" -test.run '^$' -test.bench 'BenchmarkDevice(TrainStep|Score)$' -test.benchtime "$benchtime" -test.v 2>&1) || { echo "$out" >&2; return 1; }
  # No device line where nothing ran on a GPU: the reason is said below
  # (grep's failure ended the function first, and the reason with it).
  [ "$2" = 1 ] || echo "$out" | grep -m1 'device:' | sed 's/^ *//' >&2 || true
  local tr fw
  tr=$(echo "$out" | metric BenchmarkDeviceTrainStep images/s)
  fw=$(echo "$out" | metric BenchmarkDeviceScore images/s)
  if [ -z "$tr" ] || [ -z "$fw" ]; then
    echo "$out" | grep -E 'SKIP|no GPU|FAIL|rror' | head -5 >&2
    return 1
  fi
  echo "$tr $fw"
}
torch() { # torch TF32_OVERRIDE ARGS... → "train forward" images/s
  local o=$1 js; shift
  if [ "$o" = default ]; then js=$(PYTHONUNBUFFERED=1 "$py" "$ref" --bench --device cuda --batch 128 "$@")
  else js=$(NVIDIA_TF32_OVERRIDE=0 PYTHONUNBUFFERED=1 "$py" "$ref" --bench --device cuda --batch 128 "$@"); fi
  echo "$js" | "$py" -c 'import json,sys; j=json.load(sys.stdin); print(j["train_img_per_s"], j["fwd_img_per_s"])'
}

for net in "${nets[@]}"; do
  case $net in
    mnist) targs=(--base 16) ;;
    ncsnv2) targs=(--channels 3 --size 32 --base 128 --mult 1,2,2,2) ;;
    *) echo "bench_gpu.sh: unknown network $net (mnist or ncsnv2)" >&2; exit 2 ;;
  esac
  echo "== $net network, batch 128"
  read -r o32t o32f < <(ours "$net" 0) || { echo "no GPU measurement"; exit 1; }
  read -r otft otff < <(ours "$net" 1) || { echo "no GPU measurement"; exit 1; }
  read -r ogrt ogrf < <(ours "$net" 0 1) || { echo "no GPU measurement with CUDA graphs"; ogrt=0; ogrf=0; }
  if [ -z "$py" ] || [ ! -f "$ref" ]; then
    echo "PyTorch reference unavailable (need python3 with torch and $ref)"
    echo "ours: train ${o32t} images/s, forward ${o32f} images/s (float32); ${otft}, ${otff} (NCSN_TF32=1); ${ogrt}, ${ogrf} (NCSN_CUDA_GRAPH=1)"
    continue
  fi
  read -r pdt pdf < <(torch default "${targs[@]}")
  read -r p32t p32f < <(torch fp32 "${targs[@]}")
  echo "PyTorch: torch_ref.py --bench --device cuda ${targs[*]}, its defaults (TF32 convolutions) and with NVIDIA_TF32_OVERRIDE=0"
  printf '%-22s %14s %14s %16s %16s\n' "images/s" "ours float32" "ours TF32" "PyTorch float32" "PyTorch default"
  echo "(ours kernel by kernel, NCSN_CUDA_GRAPH=0; our default, float32 with CUDA graphs, on the graphs line)"
  printf '%-22s %14.1f %14.1f %16.1f %16.1f\n' "train step" "$o32t" "$otft" "$p32t" "$pdt"
  printf '%-22s %14.1f %14.1f %16.1f %16.1f\n' "forward" "$o32f" "$otff" "$p32f" "$pdf"
  printf '%-22s %14.1f %14.1f  (ours float32, each run one CUDA graph: the default)\n' "graphs: train, fwd" "$ogrt" "$ogrf"
  if [ "${NCSN_BENCH_CPU:-}" = 1 ]; then
    cpu=$(NCSN_BENCH_NET=$net "$bin" -test.run '^$' -test.bench 'BenchmarkTrainStep$|BenchmarkScore$' -test.benchtime 2x -test.v 2>&1) || { echo "$cpu"; exit 1; }
    echo "$cpu" | grep -m1 'backend' | sed 's/^ *//' || true
    printf '%-22s %14.1f %14.1f  (CPU path, %d cores; train step without Adam)\n' "our CPU: train, fwd" \
      "$(echo "$cpu" | metric BenchmarkTrainStep images/s)" "$(echo "$cpu" | metric BenchmarkScore images/s)" "$(nproc)"
  fi
  awk -v a="$o32t" -v b="$p32t" -v c="$o32f" -v d="$p32f" 'BEGIN { printf "like for like, float32:  ratio train=%.2f forward=%.2f\n", a/b, c/d }'
  awk -v a="$otft" -v b="$pdt" -v c="$otff" -v d="$pdf" 'BEGIN { printf "like for like, TF32:     ratio train=%.2f forward=%.2f\n", a/b, c/d }'
  awk -v a="$ogrt" -v b="$p32t" -v c="$ogrf" -v d="$p32f" 'BEGIN { printf "CUDA graphs, float32:    ratio train=%.2f forward=%.2f\n", a/b, c/d }'
  awk -v a="$ogrt" -v b="$pdt" -v c="$ogrf" -v d="$pdf" 'BEGIN { printf "ratio train=%.2f forward=%.2f\n", a/b, c/d }'
done
