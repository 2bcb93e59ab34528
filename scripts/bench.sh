#!/usr/bin/env bash
# Speed of the default MNIST network (base 16, batch 128) beside PyTorch's, in
# one run on this machine: one training step (ours: forward and backward,
# without the O(parameters) Adam update; PyTorch's: with its Adam step) and
# one forward pass, in images/s. On a CPU with AVX-512 it first measures the AVX2
# path the same way against PyTorch held to AVX2 (NCSN_SIMD=avx2 for ours,
# ONEDNN_MAX_CPU_ISA=AVX2 and ATEN_CPU_CAPABILITY=avx2 for PyTorch, and
# OPENBLAS_CORETYPE=Haswell for both sides' OpenBLAS), printing
# `ratio avx2 train=X.XX forward=Y.YY`; BENCH_AVX2=0 skips that. The last
# line is always `ratio train=X.XX forward=Y.YY` (ours over PyTorch's, each
# on its best path). Usage: scripts/bench.sh [benchtime, default 20x]
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${1:-20x}
ref=${TORCH_REF:-../shared/bench/torch_ref.py}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"

# PyTorch needs Debian's python3-torch; pick the interpreter that has it.
py=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import torch' 2>/dev/null; then py=$p; break; fi
done

# pair LABEL "GO ENV" "TORCH ENV": both benchmarks, the table, the ratio line.
pair() {
  local label=$1 goenv=$2 ptenv=$3 out js
  out=$(env $goenv go test ./train -run '^$' -bench 'BenchmarkTrainStep$|BenchmarkScore$' -benchtime "$benchtime" -count 1 2>&1) || { echo "$out"; exit 1; }
  echo "$out" | grep -E '^Benchmark|backend' | sed 's/^ *//' | sort -u
  go_train=$(echo "$out" | awk '/^BenchmarkTrainStep/ {for (i=1;i<=NF;i++) if ($(i+1)=="images/s") print $i}')
  go_fwd=$(echo "$out" | awk '/^BenchmarkScore/ {for (i=1;i<=NF;i++) if ($(i+1)=="images/s") print $i}')
  go_rss=$(echo "$out" | awk '/^BenchmarkTrainStep/ {for (i=1;i<=NF;i++) if ($(i+1)=="peak-RSS-MiB") print $i}')
  if [ -z "$py" ] || [ ! -f "$ref" ]; then
    echo "PyTorch reference unavailable (need python3-torch and $ref)"
    echo "ours${label:+ ($label)}: train ${go_train} images/s, forward ${go_fwd} images/s, peak RSS ${go_rss} MiB"
    return
  fi
  js=$(env $ptenv "$py" "$ref" --bench --base 16 --batch 128 --threads "$(nproc)")
  echo "torch_ref.py --bench --base 16${ptenv:+ ($ptenv)}: $js"
  pt_train=$(echo "$js" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["train_img_per_s"])')
  pt_fwd=$(echo "$js" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["fwd_img_per_s"])')
  printf '%-28s %12s %12s\n' "${label:-best path}" "ours" "PyTorch"
  printf '%-28s %12.1f %12.1f\n' "train step, images/s" "$go_train" "$pt_train"
  printf '%-28s %12.1f %12.1f\n' "forward, images/s" "$go_fwd" "$pt_fwd"
  printf '%-28s %12.0f\n' "peak RSS (train), MiB" "$go_rss"
  awk -v l="${label:+$label }" -v a="$go_train" -v b="$pt_train" -v c="$go_fwd" -v d="$pt_fwd" 'BEGIN { printf "ratio %strain=%.2f forward=%.2f\n", l, a/b, c/d }'
}

if [ "${BENCH_AVX2:-1}" != 0 ] && grep -qw avx512f /proc/cpuinfo && grep -qw avx2 /proc/cpuinfo; then
  pair avx2 "NCSN_SIMD=avx2 OPENBLAS_CORETYPE=Haswell" "ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell"
  echo
fi
pair "" "" ""
