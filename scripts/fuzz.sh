#!/usr/bin/env bash
# Runs every fuzz target of the project for a fixed time each (default 20s):
# the readers of IDX files, CIFAR-10 batches, the npm PNG rebuild, checkpoints,
# the classifier cache and the PNGs given to cmd/eval. A crash fails the run
# and Go writes the input that caused it to the package's testdata/fuzz/.
# Usage: scripts/fuzz.sh [fuzztime, e.g. 20s or 10m] [package pattern]
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-20s}
filter=${2:-.}
targets=$(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' . | sed -E 's#^\./(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]+)#\1 \2#' | grep -E "$filter" | sort)
[ -n "$targets" ] || { echo "fuzz: no targets match $filter"; exit 1; }
n=0
while read -r pkg fn; do
  echo "fuzz: $fn in ./$pkg for $fuzztime"
  go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" -fuzzminimizetime 10s "./$pkg" 2>&1 | grep -vE '^fuzz: elapsed' || { echo "fuzz: $fn in ./$pkg FAILED"; exit 1; }
  n=$((n + 1))
done <<< "$targets"
echo "fuzz: $n targets ran for $fuzztime each"
