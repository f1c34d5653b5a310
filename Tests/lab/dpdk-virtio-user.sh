#!/usr/bin/env bash
# Usage (inside the lab):
#   deploy/lab/lab run --timeout 900 -- Tests/lab/dpdk-virtio-user.sh
#
# DPDK testpmd as a virtio-user *frontend* (no guest, no QEMU) against a
# vhost-user net backend: testpmd opens --vdev net_virtio_user0,path={sock},
# sends a first burst (--tx-first) and io-forwards whatever comes back, for
# VIREO_VU_SECONDS; then SIGINT makes it print its accumulated statistics.
# PASS = "Port 0 Link up" and accumulated RX-packets > 0 and TX-packets > 0
# (with a backend that loops frames back, the first burst circulates).
#
# Environment:
#   VIREO_NET_BACKEND  backend command template (Tests/lab/backend.sh);
#                      placeholders {sock} {dir} {id}. Default: testpmd with
#                      the vhost PMD (server on {sock}), io forwarding.
#   VIREO_VU_SECONDS   how long the frontend forwards (default 20)
#   VIREO_VU_ARGS      extra EAL args for the frontend (e.g. --no-huge -m 256
#                      outside the lab, where there are no hugepages)
#   VIREO_NET_LCORES   lcores of the default backend (default 0,1); the
#                      frontend uses VIREO_VU_LCORES (default 0,1)
# Logs: $VIREO_LAB_OUT/dpdk-virtio-user/.
set -euo pipefail

prog=dpdk-virtio-user
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
note() { echo "$prog: $*" >&2; }
[[ $# -eq 0 ]] || { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
command -v dpdk-testpmd >/dev/null || { note "dpdk-testpmd not found (deploy/lab/install-deps)"; exit 125; }

secs=${VIREO_VU_SECONDS:-20}
dir=$(mktemp -d "${TMPDIR:-/tmp}/vireo-vu.XXXXXX")
sock=$dir/net.sock
logs=${VIREO_LAB_OUT:-$dir}/$prog
mkdir -p "$logs"
flog=$logs/frontend.log

default_backend="dpdk-testpmd -l ${VIREO_NET_LCORES:-0,1} --no-pci --single-file-segments --file-prefix vireo-vhost-{id} --vdev net_vhost0,iface={sock},queues=1 -- --forward-mode=io --stats-period 5 --total-num-mbufs 2048"
template=${VIREO_NET_BACKEND:-$default_backend}

. "$repo/Tests/lab/backend.sh"
bk_log=$logs/backend.log
: >"$bk_log"
bk_expand "$template" "$sock" "$dir"

fpid=
cleanup() {
    [[ -n $fpid ]] && { kill -KILL "$fpid" 2>/dev/null || true; wait "$fpid" 2>/dev/null || true; }
    bk_stop TERM; rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

bk_start "$prog" || exit 125

# shellcheck disable=SC2206
extra=(${VIREO_VU_ARGS:-})
front=(dpdk-testpmd -l "${VIREO_VU_LCORES:-0,1}" --no-pci --single-file-segments
    --file-prefix "vireo-vu-$$" "${extra[@]}"
    --vdev "net_virtio_user0,path=$sock,queues=1"
    -- --forward-mode=io --tx-first --stats-period 5 --total-num-mbufs 2048)
note "frontend: ${front[*]}"
t0=$(date +%s.%N)
"${front[@]}" </dev/null >"$flog" 2>&1 &
fpid=$!
# Forward for $secs seconds once the port is up (EAL init is slow under TCG).
t_up=
while bk_alive "$fpid"; do
    if [[ -z $t_up ]] && grep -q 'Port 0 Link up' "$flog"; then
        t_up=$(date +%s.%N)
        note "frontend port up after $(awk -v a="$t0" -v b="$t_up" 'BEGIN { printf "%.1f", b - a }')s; forwarding ${secs}s"
    fi
    if [[ -n $t_up && $(awk -v a="$t_up" -v b="$(date +%s.%N)" -v s="$secs" 'BEGIN { print (b - a >= s) }') == 1 ]]; then
        break
    fi
    if [[ -z $t_up && $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print (b - a >= 180) }') == 1 ]]; then
        note "frontend port not up within 180s"; break
    fi
    sleep 0.5
done
kill -INT "$fpid" 2>/dev/null || true
for _ in $(seq 100); do bk_alive "$fpid" || break; sleep 0.2; done
frc=0
if bk_alive "$fpid"; then note "frontend ignored SIGINT for 20s: killing it"; kill -KILL "$fpid" 2>/dev/null || true; fi
wait "$fpid" || frc=$?
fpid=

# Accumulated stats (printed on SIGINT): "RX-packets: N   RX-dropped: ..."
acc=$(sed -n '/Accumulated forward statistics/,/+++++*$/p' "$flog" | tr -s ' ')
rx=$(sed -n 's/.*RX-packets: \([0-9]*\).*/\1/p' <<<"$acc" | tail -n1)
tx=$(sed -n 's/.*TX-packets: \([0-9]*\).*/\1/p' <<<"$acc" | tail -n1)
link=$(grep -m1 'Port 0 Link' "$flog" || true)
bk_alive "$bk_pid" || note "backend died during the test (log: $bk_log)"
bk_stop TERM
grep -E 'RX-packets|TX-packets' "$bk_log" | tail -n 2 | sed 's/^ */  backend: /' >&2 || true
note "frontend: ${link:-no link line} | accumulated RX ${rx:-?} TX ${tx:-?} packets (exit $frc; log: $flog)"
if [[ $link == *"Link up"* && ${rx:-0} -gt 0 && ${tx:-0} -gt 0 ]]; then
    note "PASS (virtio-user frontend <-> backend, frames flow both ways)"
    exit 0
fi
grep -iE 'error|fail|cannot' "$flog" | head -n 10 | sed 's/^/  frontend| /' >&2 || true
note "FAIL"
exit 1
