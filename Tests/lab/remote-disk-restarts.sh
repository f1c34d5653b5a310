#!/usr/bin/env bash
# Usage (inside the lab): Tests/lab/remote-disk-restarts.sh [TARGET_KILLS [INITIATOR_KILLS]]
#
# The remote disk's kill-and-restart proof with a fast front-end instead of
# nested guests: vireo-target serves a file-backed export over rxe0,
# vireo-initiator serves it as a 2-queue vhost-user-blk socket, and
# `vireo-bench blk --verify --reconnect` connects to that socket as a VMM
# does and keeps a verified random read/write load (4 KiB, qd 16 per queue)
# running through all of it:
#  1. TARGET_KILLS (default 10) times: the target is SIGKILLed under load and
#     restarted; both initiator queues must log the loss and reconnect
#     (held requests resubmitted) before the next kill;
#  2. INITIATOR_KILLS (default 10) times: the initiator is SIGKILLed under
#     load and restarted on the same socket; the bench must reconnect
#     (re-negotiate, same memory and rings) and issue again what was in
#     flight, with the same data, before the next kill.
# Then the bench reads back every block it wrote. Passes only with 0 I/O
# errors, 0 mismatches (every write acknowledged before any kill reads back
# as its last acknowledged generation), at least INITIATOR_KILLS bench
# reconnects, and both daemons alive at the end. Seconds per loop.
#
# Binaries: $VIREO_BIN (default <repo>/.build/debug). Logs: $VIREO_LAB_OUT/remote-disk-restarts/.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${VIREO_BIN:-$repo/.build/debug}
addr=${VIREO_LAB_ADDR:-10.99.0.1}
port=${VIREO_TEST_PORT:-4420}
target_kills=${1:-10}
initiator_kills=${2:-10}
queues=2
work=$(mktemp -d /tmp/vireo-rr.XXXXXX)
logs=${VIREO_LAB_OUT:-$work}/remote-disk-restarts
mkdir -p "$logs"
# shellcheck source=backend.sh
source "$repo/Tests/lab/backend.sh"
bk_log=$logs/initiator.log
target_pid= bench_pid=
cleanup() {
    [[ -n $bench_pid ]] && kill -KILL "$bench_pid" 2>/dev/null
    bk_stop TERM
    [[ -n $target_pid ]] && kill -TERM "$target_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
note() { echo "remote-disk-restarts: $*"; }
die() { note "FAIL: $*"; for f in "$logs"/*.log; do echo "---- $f"; tail -n 25 "$f"; done; exit 1; }
count() { grep -c -- "$1" "$2" 2>/dev/null || true; }   # count PATTERN FILE
wait_count() { # wait_count PATTERN FILE N SECONDS: until FILE has N lines matching
    local i
    for ((i = 0; i < $4 * 10; i++)); do
        (($(count "$1" "$2") >= $3)) && return 0
        sleep 0.1
    done
    return 1
}
bench_alive() { [[ -n $bench_pid ]] && bk_alive "$bench_pid"; }

[[ -x $bin/vireo-target && -x $bin/vireo-initiator && -x $bin/vireo-bench ]] || die "no binaries in $bin (swift build first)"
[[ $target_kills =~ ^[0-9]+$ && $initiator_kills =~ ^[0-9]+$ ]] || die "TARGET_KILLS and INITIATOR_KILLS are counts"

start_target() {
    local before
    before=$(count "serving " "$logs/target.log")
    "$bin/vireo-target" serve --listen "$addr:$port" --export "name=vol0,file=$work/vol0.img,size=64M" \
        >>"$logs/target.log" 2>&1 &
    target_pid=$!
    wait_count "serving " "$logs/target.log" $((before + 1)) 60 || die "the target did not start serving within 60 s"
    kill -0 "$target_pid" 2>/dev/null || die "the target exited after starting"
}

start_target
bk_expand "$bin/vireo-initiator serve --disk socket={sock},target=$addr:$port,export=vol0,queues=$queues,loss-timeout=120s" \
    "$work/vol0.sock" "$work"
bk_start "remote-disk-restarts" || die "the initiator did not serve its socket"

"$bin/vireo-bench" blk --socket "$work/vol0.sock" --rw randrw --read-percent 50 --bs 4K --qd 16 --queues $queues \
    --span 16M --verify --runtime 3000 --ramp 0 --reconnect 60 --stop-file "$work/stop" --label restarts \
    --json "$logs/bench.json" >"$logs/bench.out" 2>"$logs/bench.log" &
bench_pid=$!
wait_count "load running" "$logs/bench.log" 1 60 || die "vireo-bench did not start its load within 60 s"
note "target, initiator and vireo-bench up; $target_kills target kills, then $initiator_kills initiator kills"

# restart_loop WHAT COUNT LOG PATTERN N LOADED CMD...: COUNT times, under
# load, CMD kills and restarts WHAT; LOG must then gain N lines matching
# PATTERN (the reconnects) within 60 s, before the next kill, and the last N
# lines of LOG matching LOADED (a regex with one number: requests in flight
# when the connection was lost) must name at least one request, or the kill
# was not under load.
restart_loop() {
    local what=$1 kills=$2 log=$3 pattern=$4 per=$5 loaded=$6 i n held t0=$SECONDS
    shift 6
    for ((i = 1; i <= kills; i++)); do
        sleep "1.$((RANDOM % 10))"
        bench_alive || die "vireo-bench exited before $what kill $i"
        n=$(count "$pattern" "$log")
        "$@"
        wait_count "$pattern" "$log" $((n + per)) 60 ||
            die "$what kill $i: no reconnect within 60 s (expected $per more '$pattern' lines in $log)"
        held=$(grep -o "$loaded" "$log" | tail -n "$per" | tr -cs '0-9' ' ' | awk '{for (f = 1; f <= NF; f++) s += $f} END {print s + 0}')
        ((held > 0)) || die "$what kill $i: no request was in flight (the kill was not under load)"
        total_held=$((total_held + held))
    done
    note "$kills $what SIGKILLs + restarts in $((SECONDS - t0)) s; $total_held request(s) in flight across them"
}
total_held=0
kill_target() {
    kill -KILL "$target_pid"
    wait "$target_pid" 2>/dev/null
    sleep 0.5
    start_target
}
kill_initiator() {
    bk_stop KILL
    bk_start "remote-disk-restarts" || die "the restarted initiator did not serve its socket"
}

# 1. Target SIGKILL + restart under load: both initiator queues reconnect
#    and resubmit what they held.
restart_loop target "$target_kills" "$bk_log" "reconnected to" $queues "([0-9]* were in flight)" kill_target
# 2. Initiator SIGKILL + restart under load: the bench reconnects and issues
#    again what was in flight.
total_held=0
restart_loop initiator "$initiator_kills" "$logs/bench.log" "reconnected after" 1 "with [0-9]* request" kill_initiator

# End the load; the bench reads back every block it wrote.
touch "$work/stop"
for ((i = 0; i < 3000; i++)); do bench_alive || break; sleep 0.1; done
bench_alive && die "vireo-bench did not finish its read-back within 300 s"
wait "$bench_pid"; rc=$?
bench_pid=
sed 's/^/  /' "$logs/bench.out"
grep "reconnected after" "$logs/bench.log" | sed 's/^/  /'
((rc == 0)) || die "vireo-bench exited $rc (I/O errors, mismatches or a lost connection: see above)"
json=$(cat "$logs/bench.json" 2>/dev/null)
field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$json"; }
errors=$(field errors) reconnects=$(field reconnects) verified=$(field verified_blocks)
acked=$(field acknowledged_writes) reissued=$(field reissued)
[[ $errors == 0 ]] || die "vireo-bench reported ${errors:-no count of} error(s)"
((${reconnects:-0} >= initiator_kills)) || die "vireo-bench reconnected ${reconnects:-0} time(s), expected $initiator_kills"
((${verified:-0} > 0 && ${acked:-0} > 0)) || die "no write acknowledged or no block verified: the load did not run"
bk_alive "$bk_pid" || die "the initiator died"
kill -0 "$target_pid" 2>/dev/null || die "the target died"
note "verify: $acked write(s) acknowledged, $verified block read(s) checked against the last acknowledged write, 0 errors;" \
    "$reconnects bench reconnect(s), $reissued request(s) issued again"
note "PASS ($target_kills target kills, $initiator_kills initiator kills)"
