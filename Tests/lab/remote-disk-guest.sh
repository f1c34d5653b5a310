#!/usr/bin/env bash
# Usage (inside the lab): Tests/lab/remote-disk-guest.sh [--two-with-target-restart]
#
# The remote-disk proof with real peers: vireo-target serves a file-backed
# export over rxe0; vireo-initiator serves it as a vhost-user-blk socket; a
# QEMU guest (nested, TCG) uses it with num-queues=2: writes a random pattern
# over the whole disk with O_DIRECT, reads it back and compares, runs DISCARD
# and WRITE_ZEROES (blkdiscard, blkdiscard -z), then prints the hash of the
# whole disk. After the guest powers off, the export's backing file on the
# target side must hash the same.
#
# --two-with-target-restart: two initiators, two exports, two guests at once,
# several write/verify loops each; the target is SIGKILLed during the
# workload and restarted 2 s later. Both guests must finish with no I/O error
# and no mismatching block, and both backing files must match their guests.
#
# Binaries: $VIREO_BIN (default <repo>/.build/debug). Logs: $VIREO_LAB_OUT/remote-disk-guest/.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${VIREO_BIN:-$repo/.build/debug}
addr=${VIREO_LAB_ADDR:-10.99.0.1}
port=${VIREO_TEST_PORT:-4420}
size=$((4 << 20))
mode=${1:-single}
work=$(mktemp -d /tmp/vireo-rd.XXXXXX)
logs=${VIREO_LAB_OUT:-$work}/remote-disk-guest
mkdir -p "$logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
note() { echo "remote-disk-guest: $*"; }
die() { note "FAIL: $*"; for f in "$logs"/*.log; do echo "---- $f"; tail -n 20 "$f"; done; exit 1; }

[[ -x $bin/vireo-target && -x $bin/vireo-initiator ]] || die "no binaries in $bin (swift build first)"

exports=(vol0)
[[ $mode == --two-with-target-restart ]] && exports=(vol0 vol1)

start_target() {
    local args=(serve --listen "$addr:$port")
    for e in "${exports[@]}"; do args+=(--export "name=$e,file=$work/$e.img,size=$size"); done
    "$bin/vireo-target" "${args[@]}" >>"$logs/target.log" 2>&1 &
    target_pid=$!
    pids+=("$target_pid")
}
wait_socket() { for _ in $(seq 1 600); do [[ -S $1 ]] && return 0; sleep 0.1; done; return 1; }

start_target
sleep 2
for e in "${exports[@]}"; do
    "$bin/vireo-initiator" serve --disk "socket=$work/$e.sock,target=$addr:$port,export=$e,queues=2" \
        >>"$logs/initiator-$e.log" 2>&1 &
    pids+=("$!")
done
for e in "${exports[@]}"; do wait_socket "$work/$e.sock" || die "initiator for $e did not create its socket"; done
note "target and ${#exports[@]} initiator(s) up"

loops=1 jobs=1
[[ $mode == --two-with-target-restart ]] && { loops=4; jobs=2; }
gpids=()
for e in "${exports[@]}"; do
    "$repo/deploy/lab/guest/qemu-guest" --test blk-verify --blk "$work/$e.sock" --num-queues 2 --smp 2 \
        --param size=$size --param loops=$loops --param jobs=$jobs --param bs=16384 --param discard=1 \
        --log "$logs/guest-$e.console" --timeout "${VIREO_GUEST_TIMEOUT:-1500}" --quiet >"$logs/guest-$e.log" 2>&1 &
    gpids+=("$!")
done

if [[ $mode == --two-with-target-restart ]]; then
    # Kill the target while both guests are in their write/verify loops.
    for _ in $(seq 1 1800); do
        grep -q "phase write loop 2/" "$logs/guest-vol0.console" 2>/dev/null && break
        sleep 0.2
    done
    grep -q "phase write loop 2/" "$logs/guest-vol0.console" || die "guest never reached loop 2"
    kill -9 "$target_pid"
    note "target SIGKILLed during the guests' workload; restarting in 2 s"
    sleep 2
    start_target
fi

rc=0
for i in "${!exports[@]}"; do
    wait "${gpids[$i]}" || rc=1
    e=${exports[$i]}
    grep "VIREO-GUEST" "$logs/guest-$e.console" | sed "s/^/  [$e] /"
done
((rc == 0)) || die "a guest did not PASS"
grep -hiE "I/O error|blk_update_request|Buffer I/O" "$logs"/guest-*.console && die "guest kernel reported an I/O error"

# The export's backing file must hold exactly what the guest saw.
for e in "${exports[@]}"; do
    want=$(sed -n 's/.*final disk sha256 \([0-9a-f]*\).*/\1/p' "$logs/guest-$e.console" | tail -1)
    have=$(sha256sum "$work/$e.img" | cut -d' ' -f1)
    [[ -n $want && $want == "$have" ]] || die "$e: backing file sha256 $have, guest saw ${want:-nothing}"
    note "$e: backing file on the target matches the guest's disk ($have)"
done
note "PASS ($mode)"
