#!/usr/bin/env bash
# Usage (inside the lab): Tests/lab/rbd-export.sh [--cephx]
#
# An RBD export end to end, on a single-node Ceph cluster started here
# (deploy/ceph/micro-cluster: one monitor, one memstore OSD, on loopback):
#  1. vireo-target serves image rbd/vol0 (64 MiB) and its snapshot
#     rbd/vol0@base read-only; vireo-initiator serves vol0 as a 2-queue
#     vhost-user-blk socket; `vireo-bench blk --verify` writes and reads back a
#     random load, then FLUSHes each queue and writes its map of acknowledged
#     writes;
#  2. an independent librbd client (`rbd export`) copies the image, and every
#     acknowledged write is found in it (vireo-bench check-image); then a load
#     with WRITE_ZEROES and DISCARD: zeroed blocks read as zeros through both;
#  3. the snapshot export refuses writes and reads the image as it was (zeros);
#  4. `rbd resize` grows the image: the export follows online (the target's
#     update watch), the initiator learns the new capacity;
#  5. the OSD is frozen (SIGSTOP) past the export's io_timeout (5 s): the load
#     gets I/O errors only after it, the target logs them and counts them
#     (vireo_target_cluster_errors_total); the OSD thawed, a verified load runs
#     clean again (the export recovered with the cluster).
# --cephx: the cluster requires cephx, and the target is client.vireo with
# rbd's profile on the pool only.
#
# Binaries: $VIREO_BIN (default <repo>/.build/debug). Logs: $VIREO_LAB_OUT/rbd-export[-cephx]/.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${VIREO_BIN:-$repo/.build/debug}
addr=${VIREO_LAB_ADDR:-10.99.0.1}
port=${VIREO_TEST_PORT:-4420}
cephx=0
[[ ${1:-} == --cephx ]] && cephx=1
name=rbd-export$( ((cephx)) && echo -cephx)
work=$(mktemp -d /tmp/vireo-rbd.XXXXXX)
logs=${VIREO_LAB_OUT:-$work}/$name
rm -rf "$logs"; mkdir -p "$logs"
# shellcheck source=backend.sh
source "$repo/Tests/lab/backend.sh"
bk_log=$logs/initiator.log
target_pid=
cleanup() {
    bk_stop TERM
    [[ -n $target_pid ]] && kill -TERM "$target_pid" 2>/dev/null
    wait 2>/dev/null
    [[ -f $work/ceph/run/osd.pid ]] && kill -CONT "$(cat "$work/ceph/run/osd.pid")" 2>/dev/null
    "$repo/deploy/ceph/micro-cluster" stop "$work/ceph"
    cp "$work"/ceph/log/*.log "$logs/" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
note() { echo "$name: $*"; }
die() { note "FAIL: $*"; for f in "$logs"/{target,initiator,bench*}.log; do [[ -f $f ]] && { echo "---- $f"; tail -n 25 "$f"; }; done; exit 1; }
count() { grep -c -- "$1" "$2" 2>/dev/null || true; }
wait_count() { local i; for ((i = 0; i < $4 * 10; i++)); do (($(count "$1" "$2") >= $3)) && return 0; sleep 0.1; done; return 1; }

[[ -x $bin/vireo-target && -x $bin/vireo-initiator && -x $bin/vireo-bench ]] || die "no binaries in $bin (swift build first)"
t0=$SECONDS
conf=$("$repo/deploy/ceph/micro-cluster" start "$work/ceph" $( ((cephx)) && echo --cephx)) || die "the Ceph cluster did not start"
note "Ceph cluster up in $((SECONDS - t0)) s ($( ((cephx)) && echo cephx || echo 'auth none'))"
admin=(-c "$conf")
rbd "${admin[@]}" create rbd/vol0 --size 64M || die "rbd create"
rbd "${admin[@]}" snap create --no-progress rbd/vol0@base >/dev/null || die "rbd snap create"

client=admin keyring=
if ((cephx)); then client=vireo keyring="keyring = \"$work/ceph/client.vireo.keyring\""; fi
cat >"$work/target.toml" <<TOML
listen = "$addr:$port"
stats_file = "$work/target.prom"
stats_interval = 1
[[ceph_cluster]]
name = "lab"
conf = "$conf"
client = "$client"
$keyring
[[export]]
name = "vol0"
rbd = "rbd/vol0"
io_timeout = 5
allow_any_host = true
[[export]]
name = "base"
rbd = "rbd/vol0@base"
allow_any_host = true
TOML
"$bin/vireo-target" serve --config "$work/target.toml" >>"$logs/target.log" 2>&1 &
target_pid=$!
wait_count "serving " "$logs/target.log" 1 60 || die "the target did not start serving"
grep -q "export vol0: rbd rbd/vol0" "$logs/target.log" || die "the target does not describe vol0 as an rbd export"

bk_expand "$bin/vireo-initiator serve --disk socket={sock},target=$addr:$port,export=vol0,queues=2,loss-timeout=60s" \
    "$work/vol0.sock" "$work"
bk_start "$name" || die "the initiator did not serve its socket"

bench() { # bench LABEL [ARGS...]: a verified 4 KiB randrw load on vol0
    local label=$1; shift
    "$bin/vireo-bench" blk --socket "$work/vol0.sock" --rw randrw --read-percent 50 --bs 4K --qd 8 --queues 2 \
        --span 16M --verify --ramp 0 --label "$label" --json "$logs/bench-$label.json" "$@" \
        >"$logs/bench-$label.out" 2>"$logs/bench-$label.log"
}

# 1+2. Verified load, FLUSH, then an independent librbd client reads the image.
bench load --runtime 5 --written-map "$work/written.map" || die "the verified load failed: $(cat "$logs/bench-load.out")"
grep -q '"flushed_queues":2' "$logs/bench-load.json" || die "the FLUSH after the read-back did not complete on both queues"
acked=$(sed -n 's/.*"verified_blocks":\([0-9]*\).*/\1/p' "$logs/bench-load.json")
rbd "${admin[@]}" export rbd/vol0 "$work/vol0.raw" >/dev/null 2>&1 || die "rbd export"
"$bin/vireo-bench" check-image --image "$work/vol0.raw" --map "$work/written.map" >"$logs/check-image.out" \
    || die "rbd export does not hold every acknowledged write: $(cat "$logs/check-image.out")"
note "verified load through the export ($acked block reads checked), FLUSH on both queues; $(cat "$logs/check-image.out")"

# 2b. WRITE_ZEROES and DISCARD (rbd_aio_write_zeroes, rbd_aio_discard) in a verified load over
# 1 MiB, so most zeroes land on blocks the same run wrote: a zeroed block must read back as
# zeros through Vireo and through librbd.
bench zeroes --runtime 3 --span 1M --zeroes-percent 30 --discard-percent 20 --written-map "$work/zeroes.map" ||
    die "the verified load with zeroes and discards failed: $(cat "$logs/bench-zeroes.out")"
zeroes=$(sed -n 's/.*"acknowledged_zeroes":\([0-9]*\).*/\1/p' "$logs/bench-zeroes.json")
discards=$(sed -n 's/.*"acknowledged_discards":\([0-9]*\).*/\1/p' "$logs/bench-zeroes.json")
((${zeroes:-0} > 0 && ${discards:-0} > 0)) || die "no WRITE_ZEROES or DISCARD was acknowledged ($zeroes, $discards)"
zeroed=$(grep -c " 2147483647$" "$work/zeroes.map" || true)
rbd "${admin[@]}" export rbd/vol0 "$work/vol0-zeroes.raw" >/dev/null 2>&1 || die "rbd export (after zeroes)"
"$bin/vireo-bench" check-image --image "$work/vol0-zeroes.raw" --map "$work/zeroes.map" >"$logs/check-zeroes.out" \
    || die "rbd export does not hold every acknowledged write and zeroing: $(cat "$logs/check-zeroes.out")"
note "$zeroes WRITE_ZEROES and $discards DISCARD acknowledged; $zeroed block(s) last zeroed read as zeros through librbd; $(cat "$logs/check-zeroes.out")"

# 3. The snapshot: read-only, and as it was when taken.
bk_stop TERM
bk_expand "$bin/vireo-initiator serve --disk socket={sock},target=$addr:$port,export=base,queues=1,ro,loss-timeout=60s" \
    "$work/base.sock" "$work"
bk_start "$name" || die "the initiator did not serve the snapshot"
"$bin/vireo-bench" blk --socket "$work/base.sock" --rw randwrite --bs 4K --qd 1 --runtime 1 --ramp 0 \
    >"$logs/bench-snapwrite.out" 2>&1 && die "a write to the snapshot export succeeded"
grep -q "error status" "$logs/bench-snapwrite.out" || die "the snapshot write did not fail with an error status: $(tail -3 "$logs/bench-snapwrite.out")"
note "snapshot export vol0@base refuses writes"
bk_stop TERM

# 4. Online resize through rbd: the export follows.
bk_expand "$bin/vireo-initiator serve --disk socket={sock},target=$addr:$port,export=vol0,queues=2,loss-timeout=60s" \
    "$work/vol0.sock" "$work"
bk_start "$name" || die "the initiator did not serve vol0 again"
bench resize --runtime 120 --stop-file "$work/stop-resize" &
bench_pid=$!
wait_count "load running" "$logs/bench-resize.log" 1 60 || die "the load across the resize did not start"
rbd "${admin[@]}" resize rbd/vol0 --size 96M >/dev/null 2>&1 || die "rbd resize"
wait_count "export vol0: rbd image grew" "$logs/target.log" 1 30 || die "the target did not notice the image grew"
wait_count "to 100663296 bytes" "$bk_log" 1 60 || die "the initiator did not learn the new capacity (96 MiB)"
touch "$work/stop-resize"
wait "$bench_pid" || die "the verified load across the resize failed: $(cat "$logs/bench-resize.out")"
note "rbd resize to 96 MiB reached the initiator online, under a verified load with no error"

# 5. The cluster stalls past io_timeout, then recovers.
osd=$(cat "$work/ceph/run/osd.pid")
errors_before=$(count "the guest gets an I/O error" "$logs/target.log")
kill -STOP "$osd"
t1=$SECONDS
bench stall --runtime 2 && { kill -CONT "$osd"; die "a load with the OSD frozen had no error"; }
stalled=$((SECONDS - t1))
kill -CONT "$osd"
# Each failed command waited io_timeout for the cluster (the target logs how long).
first=$(grep -o "failed after [0-9]* ms" "$logs/target.log" | tr -cd '0-9\n' | sort -n | head -1)
((${first:-0} >= 4900)) || die "a command failed after ${first:-?} ms, before the export's io_timeout of 5 s"
(($(count "the guest gets an I/O error" "$logs/target.log") > errors_before)) || die "the target did not log the cluster errors"
kill -USR1 "$target_pid"; sleep 1
grep -E '^vireo_target_cluster_errors_total [1-9]' "$work/target.prom" >/dev/null || die "vireo_target_cluster_errors_total did not count them"
note "OSD frozen: the first I/O error after $first ms (io_timeout 5 s), logged and counted; the load ended after $stalled s"
# The export recovers when the cluster does: once an independent client is answered again.
t2=$SECONDS
until timeout 20 rbd "${admin[@]}" info rbd/vol0 >/dev/null 2>&1; do
    ((SECONDS - t2 < 180)) || die "the cluster did not answer an rbd client within 180 s of the OSD's thaw"
    sleep 1
done
note "the cluster answers again $((SECONDS - t2)) s after the thaw"
bench recovered --runtime 3 || die "after the OSD thawed the verified load failed: $(cat "$logs/bench-recovered.out")"
note "OSD thawed: a verified load runs clean again"
kill -0 "$target_pid" 2>/dev/null || die "the target died"
note "PASS"
