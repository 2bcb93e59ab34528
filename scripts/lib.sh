# Shared by the table scripts (sourced, not run): building the commands into
# a folder of this run's own, running cmd/eval for its JSON line, and the
# usage check. The caller has cd'd to the repository root under
# `set -euo pipefail`.

# need N "$@": the script's "# Usage:" line and exit 2 where fewer than N
# arguments were given (an unset $1 stopped it with "unbound variable").
need() {
  local n=$1
  shift
  if [ $# -lt "$n" ]; then
    # $0 as started, from wherever it was; the script has cd'd to the root.
    sed -n 's/^# Usage: /usage: /p' "scripts/${0##*/}" >&2
    exit 2
  fi
}

# build CMD...: builds ./cmd/CMD into $BIN, a temporary folder of this run
# (fixed names in /tmp were shared by every script and session: one
# build could replace another's binary mid-table); removed on exit.
BIN=$(mktemp -d "${TMPDIR:-/tmp}/ncsn-scripts-XXXXXX")
trap 'rm -rf "$BIN"' EXIT
build() {
  local c
  for c in "$@"; do
    go build -o "$BIN/$c" "./cmd/$c"
  done
}

# eval_json LABEL FLAGS...: cmd/eval's first line (its JSON) for FLAGS; where
# cmd/eval fails, or prints no JSON, LABEL and its error output on stderr and
# exit 1 (its errors went to /dev/null, and the table stopped after its
# header without a word).
eval_json() {
  local label=$1
  shift
  local log=$BIN/eval.log js # in $BIN: gone with it, also on a stop
  if ! js=$("$BIN/eval" "$@" 2>"$log" | awk 'NR == 1') || [ -z "$js" ] || [ "${js:0:1}" != "{" ]; then
    echo "$(basename "$0"): $label: cmd/eval failed${js:+ (its first line: $js)}:" >&2
    cat "$log" >&2
    exit 1
  fi
  printf '%s\n' "$js"
}
