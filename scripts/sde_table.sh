#!/usr/bin/env bash
# The README's table "continuous time on MNIST": each trained family × a few
# samplers and step counts, scored by cmd/eval at n samples (seed 0), plus
# bits/dim of n test images for the continuous families. Prints one markdown
# row per setting (and keeps the JSON lines in $out).
# Usage: scripts/sde_table.sh NCSN_CKPT VE_CKPT VP_CKPT SUBVP_CKPT [n, default 256]
# (checkpoint files or folders; "-" skips a family). DATASET (default mnist)
# is the data they were trained on.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need 4 "$@"
ncsn=$1 ve=$2 vp=$3 subvp=$4 n=${5:-256}
out=${OUT:-checkpoints/sde_table.jsonl}
mkdir -p "$(dirname "$out")"
build eval
row() { # family, checkpoint, then cmd/eval flags
  local fam=$1 ck=$2; shift 2
  [ "$ck" = "-" ] && return 0
  local js
  js=$(eval_json "$fam $*" -dataset "${DATASET:-mnist}" -samples "$ck" -n "$n" "$@")
  echo "{\"family\":\"$fam\",\"flags\":\"$*\",\"result\":$js}" >> "$out"
  python3 - "$fam" "$*" "$js" <<'PY'
import json, sys
fam, flags, r = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if "bpd" in r:
    print(f"| {fam} | bits/dim ({flags}) | {r['evals']} | {r['seconds']:.0f} | | | {r['bpd']:.3f} ± {r['bpd_se']:.3f} |")
else:
    print(f"| {fam} | {flags} | {r['evals']} | {r['sample_seconds']:.0f} | {100*r['conf_ge_0_9']:.1f}% | {r['class_entropy']:.3f} | {r['fid']:.1f} (floor {r['fid_floor']:.1f}) |")
PY
}
echo "| model | sampler | network evaluations | seconds | conf ≥ 0.9 | class entropy | Fréchet distance / bits per dim |"
echo "|---|---|---|---|---|---|---|"
row ncsn "$ncsn" -sampler ald
row ve "$ve" -sampler pc -steps 500
row ve "$ve" -sampler pc -steps 100
row ve "$ve" -sampler em -steps 1000
row ve "$ve" -sampler em -steps 250
row ve "$ve" -sampler ode
row vp "$vp" -sampler ddpm -steps 1000
row vp "$vp" -sampler em -steps 250
row vp "$vp" -sampler pc -steps 250
row vp "$vp" -sampler ddim -steps 100
row vp "$vp" -sampler ddim -steps 50
row vp "$vp" -sampler ddim -steps 25
row vp "$vp" -sampler ode
row subvp "$subvp" -sampler pc -steps 125
row subvp "$subvp" -sampler pc -steps 250
row subvp "$subvp" -sampler em -steps 250
row subvp "$subvp" -sampler ode
row ve "$ve" -bpd
row vp "$vp" -bpd
row subvp "$subvp" -bpd
