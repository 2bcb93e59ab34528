#!/usr/bin/env bash
# One training experiment of issue 15's campaign: trains a fresh run with the
# given cmd/train flags into checkpoints/exp/NAME (wall-clock seconds measured
# around the trainer alone), then scores its checkpoint with cmd/eval at n
# samples and a fixed seed, with the sampler setting the checkpoint saved.
# Prints one markdown row (name, flags, training seconds, final loss, network
# evaluations, sampling seconds, conf ≥ 0.9, mean conf, class entropy,
# Fréchet distance and its floor); the JSON line is appended to $OUT.
# Usage: scripts/train_experiment.sh NAME [n, default 256] [-- cmd/train flags ...]
# e.g.   scripts/train_experiment.sh ema-nowarm 256 -- -dataset mnist -ema-warmup=false
# SEED (default 0) is the sampling seed. Training times are figures only when
# nothing else ran on the machine meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need 1 "$@"
name=$1 n=${2:-256}
if [ "$n" = "--" ]; then # NAME -- flags: n left at its default
  n=256
  shift
else
  shift $(( $# < 2 ? $# : 2 ))
fi
[ "${1:-}" = "--" ] && shift
flags=("$@")
dataset=mnist
for ((i = 0; i < ${#flags[@]}; i++)); do
  case ${flags[i]} in
    -dataset | --dataset) dataset=${flags[i+1]:-mnist} ;;
    -dataset=* | --dataset=*) dataset=${flags[i]#*=} ;;
  esac
done
dir=checkpoints/exp/$name
out=${OUT:-checkpoints/exp/experiments.jsonl}
mkdir -p "$(dirname "$out")" "$(dirname "$dir")"
build train eval
t0=$(date +%s.%N)
"$BIN/train" -ckpt-dir "$dir" -fresh "${flags[@]}" > "$dir.log" 2>&1 || { tail -3 "$dir.log"; exit 1; }
secs=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.0f}')" "$t0" "$(date +%s.%N)")
loss=$(tail -1 "$dir/train.csv" | cut -d, -f2)
js=$(eval_json "$name" -dataset "$dataset" -samples "$dir" -n "$n" -seed "${SEED:-0}")
echo "{\"name\":\"$name\",\"flags\":\"${flags[*]}\",\"train_seconds\":$secs,\"final_loss\":\"$loss\",\"seed\":${SEED:-0},\"result\":$js}" >> "$out"
python3 - "$name" "${flags[*]}" "$secs" "$loss" "$js" <<'PY'
import json, sys
name, flags, secs, loss, r = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
print(f"| {name} | `{flags}` | {secs} | {loss} | {r['evals']} | {r['sample_seconds']:.0f} | {100*r['conf_ge_0_9']:.1f}% | {r['mean_conf']:.3f} | {r['class_entropy']:.3f} | {r['fid']:.1f} ({r['fid_floor']:.1f}) |")
PY
