#!/usr/bin/env bash
# Any sampler settings of one trained model, scored by cmd/eval (issue 15's
# experiment tables): each argument is one quoted set of cmd/eval flags
# (e.g. "-sampler heun -steps 100 -churn 40"); N samples at a fixed seed; one
# markdown row each (the flags, network evaluations, sampling seconds,
# conf ≥ 0.9, mean conf, class entropy, Fréchet distance and its floor, the
# class histogram), the JSON lines kept in $OUT.
# Usage: scripts/eval_table.sh CKPT [n, default 256] "FLAGS" ...
# SEED (default 0) is the sampling seed; DATASET (default mnist) the data the
# checkpoint was trained on. Seconds are figures only on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need 1 "$@"
ckpt=$1 n=${2:-256}
shift $(( $# < 2 ? $# : 2 ))
[ $# -eq 0 ] && set -- ""
out=${OUT:-checkpoints/eval_table.jsonl}
mkdir -p "$(dirname "$out")"
build eval
echo "| flags | evaluations | seconds (n) | conf ≥ 0.9 | mean conf | class entropy | Fréchet distance (floor) | digits 0–9 |"
echo "|---|---|---|---|---|---|---|---|"
for flags in "$@"; do
  # shellcheck disable=SC2086 # each argument is a list of flags
  js=$(eval_json "${flags:-the checkpoint’s own sampler}" -dataset "${DATASET:-mnist}" -samples "$ckpt" -n "$n" -seed "${SEED:-0}" $flags)
  echo "{\"ckpt\":\"$ckpt\",\"flags\":\"$flags\",\"seed\":${SEED:-0},\"result\":$js}" >> "$out"
  python3 - "$flags" "$js" <<'PY'
import json, sys
flags, r = sys.argv[1], json.loads(sys.argv[2])
print(f"| `{flags or '(the checkpoint’s)'}` | {r['evals']} | {r['sample_seconds']:.0f} ({r['n']}) | {100*r['conf_ge_0_9']:.1f}% | {r['mean_conf']:.3f} | {r['class_entropy']:.3f} | {r['fid']:.1f} ({r['fid_floor']:.1f}) | {' '.join(map(str, r['class_histogram']))} |")
PY
done
