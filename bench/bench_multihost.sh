#!/usr/bin/env bash
# Flat against hierarchical data-parallel collectives (the all-reduce; with extra args such as
# `--set parallel.zero_stage=3`, ZeRO's reduce-scatters and all-gathers) across 2 emulated hosts
# × 2 ranks (root; see docs/multihost.md): the inter-host links limited to RATE (default 1gbit), ranks launched
# round-robin, ROUNDS alternating rounds. Prints per run the bytes the hosts sent over the bridge
# and the median step time; `KUMO_DEBUG_HOSTS` gives each rank a host of its own for the
# "unaware" run (no renumbering, no hierarchy: what Kumo did before it knew hosts).
# Usage: bench/bench_multihost.sh [RATE] [ROUNDS] [extra kumo train args...]
set -euo pipefail
cd "$(dirname "$0")/.."
invocation="$0 $*"
rate=${1:-1gbit}
rounds=${2:-2}
shift $(($# > 2 ? 2 : $#))
work=$(mktemp -d)
trap 'scripts/emulated_hosts.sh down; rm -rf "$work"' EXIT
scripts/emulated_hosts.sh up 2 "$rate" 2>/dev/null
scripts/emulated_hosts.sh hostfile 2 2 >"$work/hosts"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 KUMO_HOME=$work/home
# run LABEL "MPIRUN OPTIONS" "KUMO TRAIN SETTINGS" (word-split)
run() {
    local label=$1 mpi=$2 settings=$3
    rm -rf "$work/run"
    local before
    before=$(scripts/emulated_hosts.sh bytes)
    mpirun --hostfile "$work/hosts" -np 4 --map-by node --mca plm_rsh_agent scripts/emulated_rsh.sh \
        --mca oob_tcp_if_include 10.77.0.0/24 --mca btl_tcp_if_include 10.77.0.0/24 $mpi \
        .build/release/kumo train --set model.preset=tiny --set data.synthetic=true --set train.seq_length=32 \
        --set train.threads=1 --set train.steps=8 --set train.micro_batch_size=1 --set train.global_batch_size=4 \
        $settings "${extra[@]}" --run-dir "$work/run" >"$work/out" 2>&1
    local bytes=$(($(scripts/emulated_hosts.sh bytes) - before))
    local step
    step=$(python3 -c "import json,sys; v=sorted(json.loads(l)['step_s'] for l in open(sys.argv[1])); print(v[len(v)//2])" \
        "$work/run/metrics.jsonl")
    printf '%-40s wire %6.1f MB  median step %.3f s\n' "$label" "$(echo "$bytes / 1000000" | bc -l)" "$step"
}
extra=("$@")
echo "# $invocation: 2 hosts x 2 ranks, dp=4, tiny preset, 8 steps, links $rate, $(date -u +%F)"
for round in $(seq 1 "$rounds"); do
    echo "round $round"
    run "flat, unaware of hosts (before)" "-x KUMO_DEBUG_HOSTS=u0,u1,u2,u3" ""
    run "flat, ranks numbered by host" "" "--set parallel.hierarchical=false"
    run "hierarchical (default)" "" ""
done
