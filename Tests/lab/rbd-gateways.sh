#!/usr/bin/env bash
# Usage (inside the lab): Tests/lab/rbd-gateways.sh [KILLS]
#
# A gateway group fails over without a guest error. On a single-node Ceph
# cluster with cephx (deploy/ceph/micro-cluster), two vireo-target gateways
# (ports 4420 and 4421, each client.vireo) export image rbd/vol0 as vol0 in
# group g0; vireo-initiator serves one disk with both paths
# (target=A,B) and `vireo-bench blk --verify` keeps a verified random
# read/write load on it. KILLS times (default 3), in a row: the gateway
# carrying the I/O is SIGKILLed mid-write; both queues must move to the other
# path (the exclusive lock is broken and the dead gateway blocklisted before
# the survivor writes); the killed one is restarted as the standby. Then the
# active gateway's client is blocklisted while it lives on: it reopens the image
# on a new client and the initiator reconnects to it. The load must see no I/O
# error; at the end it reads back every block, FLUSHes, and an
# independent librbd client (`rbd export`) must hold every acknowledged write.
#
# Binaries: $VIREO_BIN (default <repo>/.build/debug). Logs: $VIREO_LAB_OUT/rbd-gateways/.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${VIREO_BIN:-$repo/.build/debug}
addr=${VIREO_LAB_ADDR:-10.99.0.1}
kills=${1:-3}
work=$(mktemp -d /tmp/vireo-gw.XXXXXX)
logs=${VIREO_LAB_OUT:-$work}/rbd-gateways
rm -rf "$logs"; mkdir -p "$logs"
# shellcheck source=backend.sh
source "$repo/Tests/lab/backend.sh"
bk_log=$logs/initiator.log
declare -A gw_pid=()
bench_pid=
cleanup() {
    [[ -n $bench_pid ]] && kill -KILL "$bench_pid" 2>/dev/null
    bk_stop TERM
    for p in "${gw_pid[@]}"; do kill -TERM "$p" 2>/dev/null; done
    wait 2>/dev/null
    "$repo/deploy/ceph/micro-cluster" stop "$work/ceph"
    cp "$work"/ceph/log/*.log "$logs/" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
note() { echo "rbd-gateways: $*"; }
die() { note "FAIL: $*"; for f in "$logs"/{gw-4420,gw-4421,initiator,bench}.log; do [[ -f $f ]] && { echo "---- $f"; tail -n 30 "$f"; }; done; exit 1; }
count() { grep -c -- "$1" "$2" 2>/dev/null || true; }
wait_count() { local i; for ((i = 0; i < $4 * 10; i++)); do (($(count "$1" "$2") >= $3)) && return 0; sleep 0.1; done; return 1; }

[[ -x $bin/vireo-target && -x $bin/vireo-initiator && -x $bin/vireo-bench ]] || die "no binaries in $bin (swift build first)"
t0=$SECONDS
conf=$("$repo/deploy/ceph/micro-cluster" start "$work/ceph" --cephx) || die "the Ceph cluster did not start"
rbd -c "$conf" create rbd/vol0 --size 64M || die "rbd create"
note "Ceph cluster (cephx) up in $((SECONDS - t0)) s"

start_gateway() { # start_gateway PORT
    local port=$1 log=$logs/gw-$1.log before
    before=$(count "serving " "$log")
    cat >"$work/gw-$port.toml" <<TOML
listen = "$addr:$port"
[[ceph_cluster]]
name = "lab"
conf = "$conf"
client = "vireo"
keyring = "$work/ceph/client.vireo.keyring"
[[export]]
name = "vol0"
rbd = "rbd/vol0"
group = "g0"
io_timeout = 60
allow_any_host = true
TOML
    "$bin/vireo-target" serve --config "$work/gw-$port.toml" >>"$log" 2>&1 &
    gw_pid[$port]=$!
    wait_count "serving " "$log" $((before + 1)) 90 || die "gateway $port did not start serving"
}
start_gateway 4420
start_gateway 4421

bk_expand "$bin/vireo-initiator serve --disk socket={sock},target=$addr:4420,$addr:4421,export=vol0,queues=2,loss-timeout=120s" \
    "$work/vol0.sock" "$work"
bk_start rbd-gateways || die "the initiator did not serve its socket"

"$bin/vireo-bench" blk --socket "$work/vol0.sock" --rw randrw --read-percent 50 --bs 4K --qd 8 --queues 2 \
    --span 16M --verify --runtime 3000 --ramp 0 --stop-file "$work/stop" --written-map "$work/written.map" \
    --label gateways --json "$logs/bench.json" >"$logs/bench.out" 2>"$logs/bench.log" &
bench_pid=$!
wait_count "load running" "$logs/bench.log" 1 60 || die "vireo-bench did not start its load"
note "two gateways, initiator with both paths, verified load running"

active=4420 standby=4421
for ((i = 1; i <= kills; i++)); do
    sleep "3.$((RANDOM % 10))"
    kill -0 "$bench_pid" 2>/dev/null || die "vireo-bench exited before kill $i"
    n=$(count "reconnected to $addr:$standby" "$bk_log")
    t=$SECONDS
    kill -KILL "${gw_pid[$active]}"
    wait "${gw_pid[$active]}" 2>/dev/null
    wait_count "reconnected to $addr:$standby" "$bk_log" $((n + 2)) 90 ||
        die "kill $i (gateway $active): both queues did not move to $standby within 90 s"
    held=$(grep -o "resubmitting [0-9]* held" "$bk_log" | tail -n 2 | tr -cd '0-9 ' | awk '{for (f = 1; f <= NF; f++) s += $f} END {print s + 0}')
    note "kill $i: gateway $active SIGKILLed, both queues on $standby after $((SECONDS - t)) s, $held request(s) resubmitted"
    start_gateway "$active"
    tmp=$active; active=$standby; standby=$tmp
done

# A gateway the cluster fences while it lives on (an operator's blocklist here; a partition
# during which another gateway broke its lock does the same): its image watch breaks or an
# operation fails with EBLOCKLISTED, it reopens the image on a new client and cuts its
# connections, and the initiator reconnects to it; the load sees no error.
sleep 2
# The active gateway's cluster client (its log names it) and that client's address (its watch).
client=$(grep -o "rbd rbd/vol0 (cluster [a-z]*, client\.[0-9]*" "$logs/gw-$active.log" | tail -n 1 | grep -o "client\.[0-9]*")
rbd -c "$conf" status rbd/vol0 >"$logs/status.txt" 2>&1
locker=$(sed -n "s/.*watcher=\([^ ]*\) $client .*/\1/p" "$logs/status.txt" | head -n 1)
[[ -n $client && -n $locker ]] || die "no watcher of rbd/vol0 for gateway $active's ${client:-client}: $(cat "$logs/status.txt")"
r=$(count "reopened rbd" "$logs/gw-$active.log")
n=$(count "reconnected to $addr:$active" "$bk_log")
t=$SECONDS
command ceph -c "$conf" osd blocklist add "$locker" >"$logs/blocklist-add.txt" 2>&1 || die "ceph osd blocklist add $locker: $(cat "$logs/blocklist-add.txt")"
wait_count "reopened rbd" "$logs/gw-$active.log" $((r + 1)) 60 ||
    die "gateway $active did not reopen rbd/vol0 after its client ($locker) was blocklisted"
wait_count "reconnected to $addr:$active" "$bk_log" $((n + 2)) 60 ||
    die "both queues did not reconnect to gateway $active after it reopened the image"
kill -0 "$bench_pid" 2>/dev/null || die "vireo-bench exited after the blocklist"
note "gateway $active's client $locker blocklisted: image reopened on a new client, both queues back after $((SECONDS - t)) s"
sleep 2

touch "$work/stop"
for ((i = 0; i < 3000; i++)); do kill -0 "$bench_pid" 2>/dev/null || break; sleep 0.1; done
wait "$bench_pid"; rc=$?
bench_pid=
sed 's/^/  /' "$logs/bench.out"
((rc == 0)) || die "vireo-bench exited $rc (I/O errors or mismatches: see above)"
grep -q '"flushed_queues":2' "$logs/bench.json" || die "the final FLUSH did not complete on both queues"
rbd -c "$conf" export rbd/vol0 "$work/vol0.raw" >/dev/null 2>&1 || die "rbd export"
"$bin/vireo-bench" check-image --image "$work/vol0.raw" --map "$work/written.map" >"$logs/check-image.out" \
    || die "rbd export does not hold every acknowledged write: $(cat "$logs/check-image.out")"
command ceph -c "$conf" osd blocklist ls >"$logs/blocklist.txt" 2>&1
blocklisted=$(grep -c "^[0-9]" "$logs/blocklist.txt" || true)
note "$(cat "$logs/check-image.out"); $blocklisted client(s) blocklisted (the dead gateways, fenced)"
# Both gateways stop on SIGTERM, the fenced one too (librbd holds its lock-waiting writes for
# ever; closing that image would wait for them).
for port in "${!gw_pid[@]}"; do
    kill -TERM "${gw_pid[$port]}" 2>/dev/null
    for ((i = 0; i < 300; i++)); do kill -0 "${gw_pid[$port]}" 2>/dev/null || break; sleep 0.1; done
    kill -0 "${gw_pid[$port]}" 2>/dev/null && { kill -KILL "${gw_pid[$port]}"; die "gateway $port did not exit within 30 s of SIGTERM"; }
    wait "${gw_pid[$port]}" 2>/dev/null
done
gw_pid=()
note "PASS ($kills gateway kills, no guest I/O error)"
