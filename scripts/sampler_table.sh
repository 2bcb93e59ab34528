#!/usr/bin/env bash
# Sampler settings of one trained model, scored by cmd/eval (issue 15's
# experiment table): for each "T:ε" pair, annealed Langevin dynamics with T
# steps per noise level and step size ε (and NCSN's final denoising step), N
# samples at a fixed seed; one markdown row each (network evaluations,
# sampling seconds, conf ≥ 0.9, class entropy, Fréchet distance and its
# floor), the JSON lines kept in $OUT.
# Usage: scripts/sampler_table.sh CKPT [n, default 256] [T:ε ...]   (default: 100:4e-5, the sampler's default)
# SEED (default 0) is the sampling seed; DATASET (default mnist) the data the
# checkpoint was trained on (mnist or fashion: cmd/eval has a classifier for each).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need 1 "$@"
ckpt=$1 n=${2:-256}
shift $(( $# < 2 ? $# : 2 ))
sets=("$@")
[ ${#sets[@]} -eq 0 ] && sets=(100:4e-5)
for s in "${sets[@]}"; do # all before the first row (a bad last one came hours in)
  if [[ $s != *:* ]]; then # "2" became ε = 2
    echo "sampler_table.sh: $s: give T:ε, e.g. 100:4e-5" >&2
    exit 2
  fi
done
out=${OUT:-checkpoints/sampler_table.jsonl}
mkdir -p "$(dirname "$out")"
build eval
echo "| T | ε | evaluations | seconds | conf ≥ 0.9 | mean conf | class entropy | Fréchet distance (floor) |"
echo "|---|---|---|---|---|---|---|---|"
for s in "${sets[@]}"; do
  t=${s%%:*} eps=${s#*:}
  js=$(eval_json "$s" -dataset "${DATASET:-mnist}" -samples "$ckpt" -n "$n" -seed "${SEED:-0}" -steps-per-level "$t" -eps "$eps")
  echo "{\"T\":$t,\"eps\":$eps,\"seed\":${SEED:-0},\"result\":$js}" >> "$out"
  python3 - "$t" "$eps" "$js" <<'PY'
import json, sys
t, eps, r = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
print(f"| {t} | {eps} | {r['evals']} | {r['sample_seconds']:.0f} | {100*r['conf_ge_0_9']:.1f}% | {r['mean_conf']:.3f} | {r['class_entropy']:.3f} | {r['fid']:.1f} ({r['fid_floor']:.1f}) |")
PY
done
