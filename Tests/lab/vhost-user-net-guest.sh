#!/usr/bin/env bash
# Usage (inside the lab):
#   deploy/lab/lab run --timeout 1500 -- Tests/lab/vhost-user-net-guest.sh
#
# Starts a vhost-user net backend on a UNIX socket, boots the nested guest
# with a virtio-net-pci on it (QEMU -netdev vhost-user, QEMU is the client)
# and runs the net-link workload: eth0 appears, comes up (carrier=1,
# operstate=up) within the timeout; the guest prints its MAC and MTU.
# With VIREO_NET_TRAFFIC=1 the guest also sends ARP broadcasts and requires
# tx and rx packet counters to grow (the backend must loop frames back).
#
# Environment:
#   VIREO_NET_BACKEND  backend command template, see Tests/lab/backend.sh for
#                      the contract; placeholders {sock} {dir} {id}.
#                      Default: DPDK testpmd with the vhost PMD as server on
#                      {sock}, io forwarding (frames loop back to the guest),
#                      hugepages + --single-file-segments.
#   VIREO_NET_TRAFFIC  1: also require frames to flow (default 1 with the
#                      default backend, 0 with a custom one)
#   VIREO_NET_LCORES   lcores for the default testpmd (default 0,1)
#   VIREO_GUEST_TIMEOUT guest timeout in seconds (default 1200)
# Logs: $VIREO_LAB_OUT/vhost-user-net-guest/.
set -euo pipefail

prog=vhost-user-net-guest
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
note() { echo "$prog: $*" >&2; }
[[ $# -eq 0 ]] || { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

gtimeout=${VIREO_GUEST_TIMEOUT:-1200}
lcores=${VIREO_NET_LCORES:-0,1}
dir=$(mktemp -d "${TMPDIR:-/tmp}/vireo-net.XXXXXX")
sock=$dir/net.sock
logs=${VIREO_LAB_OUT:-$dir}/$prog
mkdir -p "$logs"
con=$logs/console.log

default_backend="dpdk-testpmd -l $lcores --no-pci --single-file-segments --file-prefix vireo-vhost-{id} --vdev net_vhost0,iface={sock},queues=1 -- --forward-mode=io --stats-period 5 --total-num-mbufs 2048"
if [[ -n ${VIREO_NET_BACKEND:-} ]]; then
    template=$VIREO_NET_BACKEND; traffic=${VIREO_NET_TRAFFIC:-0}
else
    command -v dpdk-testpmd >/dev/null || { note "dpdk-testpmd not found (deploy/lab/install-deps)"; exit 125; }
    template=$default_backend; traffic=${VIREO_NET_TRAFFIC:-1}
fi

. "$repo/Tests/lab/backend.sh"
bk_log=$logs/backend.log
: >"$bk_log"
bk_expand "$template" "$sock" "$dir"

cleanup() { bk_stop TERM; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

bk_start "$prog" || exit 125
t0=$(date +%s.%N)
grc=0
"$repo/deploy/lab/guest/qemu-guest" --test net-link --net "$sock" --log "$con" \
    --timeout "$gtimeout" --param "traffic=$traffic" || grc=$?
total=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
bk_alive "$bk_pid" || { note "FAIL: the backend died during the test (log: $bk_log)"; [[ $grc == 0 ]] && grc=1; }
bk_stop TERM
# testpmd's statistics (default backend): what the backend saw.
grep -E 'RX-packets|TX-packets' "$bk_log" | tail -n 2 | sed 's/^ */  backend: /' >&2 || true
note "backend log: $bk_log"
case $grc in
    0) note "PASS (link up$([[ $traffic == 1 ]] && echo ', frames looped back'); ${total}s)" ;;
    *) note "FAIL (exit $grc; console: $con)" ;;
esac
exit "$grc"
