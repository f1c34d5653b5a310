#!/usr/bin/env bash
# Usage (inside the lab):
#   deploy/lab/lab run --timeout 1500 -- Tests/lab/vhost-user-blk-guest.sh [--kill-restart]
#
# Starts a vhost-user-blk backend on a UNIX socket, boots the nested guest
# (deploy/lab/guest/qemu-guest) on it and runs the blk-verify workload:
# capacity check, whole-disk pseudo-random write + O_DIRECT read-back
# verification, discard and write-zeroes. PASS = the guest's RESULT PASS.
#
# --kill-restart: multi-loop workload with 16 KiB I/Os, 4 concurrent jobs;
#   once the guest has finished its first phase (VIREO_BLK_KILL_AFTER),
#   SIGKILL the backend (its whole process group),
#   wait VIREO_BLK_DOWN seconds (default 2), start it again on the same
#   socket path, and require RESULT PASS with no I/O error in the guest's
#   console. QEMU reconnects (chardev reconnect=1); the backend must resume
#   the rings (INFLIGHT_SHMFD lets it resubmit requests that were in flight).
#
# Environment:
#   VIREO_BLK_BACKEND  backend command template (run with bash -c, in its own
#                      session). Placeholders: {sock} = UNIX socket path the
#                      backend must listen on (vhost-user server side),
#                      {size} = disk size in bytes it must expose, {dir} = a
#                      scratch dir private to this run (persists across the
#                      restart). Default: qemu-storage-daemon exporting the raw
#                      file {dir}/disk.raw (tmpfs) as vhost-user-blk, 2 queues.
#   VIREO_BLK_PACKED   1: a packed virtqueue (packed=on), and the guest must
#                      report it (with --kill-restart: INFLIGHT_SHMFD's packed
#                      layout brings back what was in flight); default 0
#   VIREO_BLK_SIZE     disk size in bytes (default 4194304 = 4 MiB)
#   VIREO_BLK_QUEUES   num-queues for vhost-user-blk-pci (default 2)
#   VIREO_BLK_LOOPS    write/verify loops (default 1; 2 with --kill-restart)
#   VIREO_BLK_BS       guest dd block size (default 65536; 16384 with --kill-restart)
#   VIREO_BLK_JOBS     concurrent dd per phase = requests in flight (default 1;
#                      4 with --kill-restart, so completions can be out of order)
#   VIREO_BLK_DISCARD  guest vireo.discard: auto (default), 1 (require), 0 (skip)
#   VIREO_BLK_DOWN     seconds the backend stays dead in --kill-restart (default 2)
#   VIREO_BLK_KILL_AFTER  grep -E pattern on the guest console that triggers
#                      the kill (default: end of write loop 1, i.e. during the
#                      read-back); e.g. 'phase write loop 2/.* start' with
#                      VIREO_BLK_KILL_DELAY=1 kills during the writes of loop 2
#   VIREO_BLK_KILL_DELAY  seconds to wait after the trigger line (default 0)
#   VIREO_BLK_PROBE    1 (default): in --kill-restart, first query the backend's
#                      protocol features with Tests/lab/vhost-user-probe and
#                      report whether it offers INFLIGHT_SHMFD; 0: don't
#   VIREO_GUEST_TIMEOUT guest timeout in seconds (default 1200: the nested boot
#                      alone took 76-250 s on a loaded 2-core machine)
# Logs: $VIREO_LAB_OUT/vhost-user-blk-guest/ (console, QEMU stderr, backend).
set -euo pipefail

prog=vhost-user-blk-guest
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
note() { echo "$prog: $*" >&2; }
die() { note "$*"; exit 125; }

mode=plain
case ${1:-} in
    --kill-restart) mode=kill-restart ;;
    "") ;;
    *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac

size=${VIREO_BLK_SIZE:-4194304}
queues=${VIREO_BLK_QUEUES:-2}
down=${VIREO_BLK_DOWN:-2}
kill_after=${VIREO_BLK_KILL_AFTER:-'^VIREO-GUEST: phase write loop 1/[0-9]+: '}
kill_delay=${VIREO_BLK_KILL_DELAY:-0}
if [[ $mode == kill-restart ]]; then
    loops=${VIREO_BLK_LOOPS:-2}; bs=${VIREO_BLK_BS:-16384}; jobs=${VIREO_BLK_JOBS:-4}
else
    loops=${VIREO_BLK_LOOPS:-1}; bs=${VIREO_BLK_BS:-65536}; jobs=${VIREO_BLK_JOBS:-1}
fi
discard=${VIREO_BLK_DISCARD:-auto}
gtimeout=${VIREO_GUEST_TIMEOUT:-1200}

dir=$(mktemp -d "${TMPDIR:-/tmp}/vireo-blk.XXXXXX")
sock=$dir/blk.sock
logs=${VIREO_LAB_OUT:-$dir}/$prog
mkdir -p "$logs"
suffix=; [[ $mode == kill-restart ]] && suffix=-kill-restart
con=$logs/console$suffix.log
blog=$logs/backend$suffix.log
: >"$blog"

default_backend="qemu-storage-daemon --blockdev driver=file,node-name=f,filename={dir}/disk.raw,discard=unmap --export type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path={sock},writable=on,num-queues=$queues"
template=${VIREO_BLK_BACKEND:-$default_backend}
if [[ -z ${VIREO_BLK_BACKEND:-} ]]; then
    truncate -s "$size" "$dir/disk.raw"
fi
. "$repo/Tests/lab/backend.sh"
bk_log=$blog
bk_expand "$template" "$sock" "$dir" "$size"

gpid=
cleanup() {
    [[ -n $gpid ]] && { kill "$gpid" 2>/dev/null || true; wait "$gpid" 2>/dev/null || true; }
    bk_stop TERM
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

bk_start "$prog" || exit 125
inflight=unknown
if [[ $mode == kill-restart && ${VIREO_BLK_PROBE:-1} == 1 ]]; then
    # What does the backend offer? (reconnect correctness with requests in
    # flight needs INFLIGHT_SHMFD; without it QEMU rewinds to the used index)
    if probe=$("$repo/Tests/lab/vhost-user-probe" "$sock" 2>&1); then
        note "backend $(grep '^protocol:' <<<"$probe")"
        if grep -qw INFLIGHT_SHMFD <<<"$probe"; then inflight=yes; else inflight=no; fi
    else
        note "probe failed (VIREO_BLK_PROBE=0 to skip): $probe"
    fi
fi
# One vCPU per queue: the guest's virtio-blk driver uses min(queues, CPUs).
layout=split blkopt=--blk
[[ ${VIREO_BLK_PACKED:-0} == 1 ]] && layout=packed blkopt=--blk-packed
gargs=(--test blk-verify "$blkopt" "$sock" --num-queues "$queues" --smp "${VIREO_GUEST_SMP:-$queues}"
    --log "$con" --timeout "$gtimeout"
    --param "size=$size" --param "bs=$bs" --param "loops=$loops" --param "jobs=$jobs" --param "discard=$discard")
: >"$con"
t0=$(date +%s.%N)
"$repo/deploy/lab/guest/qemu-guest" "${gargs[@]}" &
gpid=$!

if [[ $mode == kill-restart ]]; then
    # Wait for the trigger line (default: the first phase is done, so the
    # read-back is running), then pull the backend from under the guest.
    until grep -Eq "$kill_after" "$con" 2>/dev/null; do
        kill -0 "$gpid" 2>/dev/null || break
        sleep 0.2
    done
    sleep "$kill_delay"
    if kill -0 "$gpid" 2>/dev/null; then
        note "guest printed /$kill_after/ (+${kill_delay}s): SIGKILL backend pid $bk_pid (process group)"
        bk_stop KILL
        at_kill=$(grep -c '^VIREO-GUEST: phase ' "$con" || true)
        sleep "$down"
        bk_start "$prog" || exit 125
        killed=1
    else
        killed=0
    fi
fi

grc=0
wait "$gpid" || grc=$?
gpid=
total=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

if [[ $mode == kill-restart ]]; then
    [[ $killed == 1 ]] || { note "FAIL: the guest ended before the backend could be killed"; exit 1; }
    # The phase that was running while the backend was dead.
    spanned=$(grep '^VIREO-GUEST: phase ' "$con" | sed -n "$((at_kill + 1))p" | tr -d '\r')
    errs=$(tr -d '\r' <"$con" | grep -Ei 'I/O error|blk_update_request|critical (medium|target) error|virtio_blk.*(error|fail)|Buffer I/O' || true)
    if [[ -n $errs ]]; then
        note "I/O errors in the guest console:"; sed 's/^/  /' <<<"$errs" >&2
        [[ $grc == 0 ]] && grc=1
        note "FAIL: kill-restart produced guest I/O errors"
    fi
    note "backend offers INFLIGHT_SHMFD: $inflight"
    note "backend SIGKILLed after guest phase line $at_kill, down ${down}s; phase spanning the outage: ${spanned#VIREO-GUEST: }"
fi
note "backend log: $blog"
if [[ $grc == 0 ]] && ! grep -q "disk vda: .* $layout ring" "$con"; then
    note "FAIL: the guest's ring is not $layout: $(grep -o 'disk vda: .*' "$con" | head -1)"
    grc=1
fi
# The guest must use every queue the device offers (one vCPU per queue).
if [[ $grc == 0 ]] && ! grep -q "disk vda: .* $queues queue(s)" "$con"; then
    note "FAIL: the guest does not use all $queues queues: $(grep -o 'disk vda: .*' "$con" | head -1)"
    grc=1
fi
case $grc in
    0) note "PASS ($mode, $layout ring, ${size} bytes, $loops loop(s), bs $bs, $jobs job(s), $queues queue(s); ${total}s)" ;;
    3) note "UNSUPPORTED (see console: $con)" ;;
    *) note "FAIL (exit $grc; console: $con)" ;;
esac
exit "$grc"
