#!/usr/bin/env bash
# The README's table "class-conditional sampling": N samples of each MNIST
# class by classifier guidance at each weight w (0 = unguided, the same
# sampler and seed), scored by cmd/eval: the fraction its own clean-image
# classifier assigns to the class asked for, per class, conf ≥ 0.9, class
# entropy and Fréchet distance. Prints one markdown row per w (and the
# per-class counts), keeps the JSON lines in $out.
# Usage: scripts/guidance_table.sh SCORE_CKPT CLASSIFIER_CKPT [n per class, default 26] [w ...]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need 2 "$@"
score=$1 clf=$2 n=${3:-26}
shift $(( $# < 3 ? $# : 3 ))
ws=("$@")
[ ${#ws[@]} -eq 0 ] && ws=(0 1 2 4)
out=${OUT:-checkpoints/guidance_table.jsonl}
mkdir -p "$(dirname "$out")"
build eval
echo "| w | samples | seconds | right class | per class (right of $n) | conf ≥ 0.9 | class entropy | Fréchet distance |"
echo "|---|---|---|---|---|---|---|---|"
for w in "${ws[@]}"; do
  js=$(eval_json "w $w" -dataset mnist -samples "$score" -classifier "$clf" -class all -guidance "$w" -n "$n")
  echo "{\"w\":$w,\"result\":$js}" >> "$out"
  python3 - "$w" "$js" <<'PY'
import json, sys
w, r = sys.argv[1], json.loads(sys.argv[2])
per = " ".join(f"{k['class']}:{k['right']}" for k in r["per_class"])
print(f"| {w} | {r['n']} | {r['sample_seconds']:.0f} | {100*r['right_class']:.1f}% | {per} | {100*r['conf_ge_0_9']:.1f}% | {r['class_entropy']:.3f} | {r['fid']:.1f} (floor {r['fid_floor']:.1f}) |")
PY
done
