#!/usr/bin/env bash
# Open MPI's rsh agent for the hosts of scripts/emulated_hosts.sh: `emulated_rsh.sh [options] HOST CMD...`
# runs CMD inside HOST's network namespace (HOST is its address 10.77.0.(10+i)) with the UTS host
# name kumo-hI, as ssh would on a real host. Options ssh would take (-x, -o ...) are ignored.
set -euo pipefail
while [[ "${1:-}" == -* ]]; do
    case "$1" in -o | -p | -l | -i) shift 2 ;; *) shift ;; esac
done
host=$1
shift
i=$((${host##*.} - 10))
exec ip netns exec "kumo-h$i" unshare --uts /bin/sh -c "hostname kumo-h$i && exec /bin/sh -c \"\$0\"" "$*"
