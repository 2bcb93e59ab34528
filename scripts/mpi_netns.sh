#!/usr/bin/env bash
# Data-parallel training across two "hosts": two network namespaces on this
# machine joined by a veth pair (10.77.0.1 and 10.77.0.2; nothing else is
# reachable), mpirun in the first starting a rank on each over TCP — its
# remote-shell agent enters the other namespace instead of ssh-ing to it. The
# run must end with the weights, bit for bit, of the same two ranks on one
# host. Needs root (ip netns), Open MPI, and MNIST in data/mnist.
# Usage: scripts/mpi_netns.sh [steps, default 12]
#        scripts/mpi_netns.sh bench   (times the all-reduce between the namespaces instead)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-12}
out=checkpoints/mpi-netns
bin=$PWD/$out/train-mpi
mkdir -p "$out"
go build -tags mpi -o "$bin" ./cmd/train
h1=ncsn-h1 h2=ncsn-h2
cleanup() { ip netns del $h1 2>/dev/null || true; ip netns del $h2 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add $h1
ip netns add $h2
ip link add ncsn-v1 type veth peer name ncsn-v2
ip link set ncsn-v1 netns $h1
ip link set ncsn-v2 netns $h2
ip -n $h1 addr add 10.77.0.1/24 dev ncsn-v1
ip -n $h2 addr add 10.77.0.2/24 dev ncsn-v2
for ns in $h1 $h2; do ip -n $ns link set lo up; done
ip -n $h1 link set ncsn-v1 up
ip -n $h2 link set ncsn-v2 up
ip -n $h1 neigh show >/dev/null
# The "remote shell": called as AGENT HOST COMMAND..., it runs the command in
# that host's namespace.
agent=$PWD/$out/netns-agent
cat > "$agent" <<AGENT
#!/bin/sh
host=\$1; shift
case \$host in 10.77.0.1) ns=$h1 ;; 10.77.0.2) ns=$h2 ;; *) echo "netns-agent: unknown host \$host" >&2; exit 1 ;; esac
exec ip netns exec \$ns sh -c "\$*"
AGENT
chmod +x "$agent"
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 -wdir "$PWD")
hosts=(--host 10.77.0.1,10.77.0.2 --mca plm_rsh_agent "$agent" --mca btl tcp,self
  --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24)
if [ "$steps" = bench ]; then
  go test -tags mpi -c -o "$out/mpi.test" ./internal/mpi
  ip netns exec $h1 "${mpi[@]}" "${hosts[@]}" "$out/mpi.test" -test.run '^$' -test.bench AllReduce -test.benchtime 20x
  exit 0
fi
# Each rank is the first on its "host" (what picks its GPU under -tags gpu).
go test -tags mpi -c -o "$out/mpi.test" ./internal/mpi
ip netns exec $h1 env NCSN_LOCAL_RANKS="0 0" "${mpi[@]}" "${hosts[@]}" -x NCSN_LOCAL_RANKS "$out/mpi.test" -test.run LocalRank -test.v 2>&1 |
  grep -E '^(--- |ok|FAIL|PASS)|local rank' | sort | uniq -c
run=("$bin" -dataset mnist -preset smoke -batch 16 -save-every 100 -steps "$steps")
rm -rf "$out/hosts" "$out/local"
t0=$(date +%s%N)
ip netns exec $h1 "${mpi[@]}" "${hosts[@]}" "${run[@]}" -ckpt-dir "$out/hosts"
t1=$(date +%s%N)
"${mpi[@]}" "${run[@]}" -ckpt-dir "$out/local"
t2=$(date +%s%N)
echo "mpi-netns: $steps steps across two namespaces in $(( (t1 - t0) / 1000000 )) ms, on one host in $(( (t2 - t1) / 1000000 )) ms"
NCSN_SAME_WEIGHTS="$PWD/$out/hosts $PWD/$out/local" go test -count=1 -run TestSameWeights -v ./train | grep -E 'identical|differs|FAIL|ok'
