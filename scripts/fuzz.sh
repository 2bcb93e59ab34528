#!/usr/bin/env bash
# Runs every fuzz target of the project for a fixed time each (default 20s):
# the readers of IDX files, CIFAR-10 batches, the npm PNG rebuild, checkpoints,
# the classifier cache, the PNGs given to cmd/eval, safetensors files and the
# train.csv given to cmd/plot. A crash fails the run
# and Go writes the input that caused it to the package's testdata/fuzz/.
# Usage: scripts/fuzz.sh [fuzztime, e.g. 20s or 10m] [package pattern]
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-20s}
filter=${2:-.}
filter=${filter#./} # a Go package path (./data, ./data/...) names the package too
filter=${filter%/...}
# (grep's "no match" ended the script before the message below)
targets=$(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' . | sed -E 's#^\./(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]+)#\1 \2#' | { grep -E "$filter" || true; } | sort)
[ -n "$targets" ] || { echo "fuzz: no targets match $filter"; exit 1; }
# Go 1.26's fuzz coordinator can end a run at the -fuzztime deadline with
# "context deadline exceeded" and no failing input (golang/go#75804, fixed in
# Go 1.27): such a run counts as passed; any other failure, or a failing
# input written to testdata/fuzz, fails this script.
n=0
while read -r pkg fn; do
  echo "fuzz: $fn in ./$pkg for $fuzztime"
  corpus="$pkg/testdata/fuzz/$fn"
  before=$(ls "$corpus" 2>/dev/null | sort || true) # no corpus folder yet: empty
  if out=$(go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" -fuzzminimizetime 10s "./$pkg" 2>&1); then
    echo "$out" | grep -vE '^fuzz: elapsed'
  else
    after=$(ls "$corpus" 2>/dev/null | sort || true)
    echo "$out" | grep -vE '^fuzz: elapsed'
    if [ "$before" = "$after" ] && echo "$out" | grep -q 'context deadline exceeded' && ! echo "$out" | grep -q 'Failing input'; then
      echo "fuzz: $fn stopped at its deadline with no failing input (golang/go#75804): passed"
    else
      echo "fuzz: $fn in ./$pkg FAILED"
      exit 1
    fi
  fi
  n=$((n + 1))
done <<< "$targets"
echo "fuzz: $n targets ran for $fuzztime each"
