#!/usr/bin/env bash
# Emulated hosts on one machine, for multi-host tests and benchmarks (run as root):
#   scripts/emulated_hosts.sh up N [RATE DELAY]   N network namespaces kumo-h1..kumo-hN on a bridge, each
#                                                 host 10.77.0.(10+i)/24; RATE/DELAY (e.g. 1gbit 1ms)
#                                                 shape every host's link with tc netem (tbf,
#                                                 rate only, where the kernel has no netem)
#   scripts/emulated_hosts.sh down                removes them
#   scripts/emulated_hosts.sh bytes               bytes sent by all hosts over the bridge so far
#   scripts/emulated_hosts.sh hostfile N SLOTS    an Open MPI hostfile of the N hosts
# mpirun reaches the hosts through scripts/emulated_rsh.sh (--mca plm_rsh_agent), which runs each
# host's Open MPI daemon inside its namespace with its own UTS host name (kumo-hI).
set -euo pipefail
bridge=kumobr0
prefix=10.77.0

up() {
    local n=$1 rate=${2:-} delay=${3:-}
    down
    ip link add "$bridge" type bridge
    ip addr add "$prefix.1/24" dev "$bridge"
    ip link set "$bridge" up
    for i in $(seq 1 "$n"); do
        local ns=kumo-h$i
        ip netns add "$ns"
        ip link add "kumo-h$i-br" type veth peer name eth0 netns "$ns"
        ip link set "kumo-h$i-br" master "$bridge" up
        ip -n "$ns" addr add "$prefix.$((10 + i))/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        if [ -n "$rate" ] && ! ip netns exec "$ns" tc qdisc add dev eth0 root netem rate "$rate" \
            delay "${delay:-0ms}" 2>/dev/null; then
            # Kernels without sch_netem (some VMs) still have the token bucket: the rate, not the delay.
            echo "emulated_hosts.sh: no netem in this kernel: $ns limited to $rate by tbf, without delay" >&2
            ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$rate" burst 256kb latency 100ms
        fi
    done
}

down() {
    for ns in $(ip netns list | awk '/^kumo-h[0-9]+/ {print $1}'); do ip netns del "$ns"; done
    ip link del "$bridge" 2>/dev/null || true
}

bytes() {
    local total=0
    for dev in /sys/class/net/kumo-h*-br; do
        [ -e "$dev" ] || continue
        total=$((total + $(cat "$dev/statistics/rx_bytes")))
    done
    echo "$total"
}

hostfile() {
    for i in $(seq 1 "$1"); do echo "$prefix.$((10 + i)) slots=$2"; done
}

case "${1:-}" in
    up) up "${2:?number of hosts}" "${3:-}" "${4:-}" ;;
    down) down ;;
    bytes) bytes ;;
    hostfile) hostfile "${2:?number of hosts}" "${3:?slots per host}" ;;
    *) sed -n '2,11p' "$0"; exit 2 ;;
esac
