#!/usr/bin/env bash
# Usage (inside the lab):
#   Tests/lab/migration-guest.sh [--full [--nic [--nic-packed]] [--restart] [--no-negative-control]]
#
# Live migration of a running guest with Vireo devices, with real QEMU on
# both sides (nested, TCG). Each "host" of the migration is a vireo-initiator
# process serving the VM's devices on sockets of its own, all connected to
# the same vireo-target exports (and network), as one initiator per compute
# host would be (docs/migration.md). Guests get 256 MiB + 8 KiB of memory:
# QEMU 7.2's TCG loses guest writes during a migration otherwise (see $mem).
#
# Default (what CI runs): the remote-disk proof. QEMU A (initiator A) runs
# the blk-verify workload on a Vireo disk (4 write/verify loops over the
# whole disk, a fresh pattern each, then DISCARD and WRITE_ZEROES) and is
# migrated to QEMU B (initiator B) during its second write loop; the guest
# must finish on B with RESULT PASS and no I/O error, and the export's
# backing file must hash as the guest's disk.
#
# --full: two disks (vda on a split ring, vdb on a packed one) and the host
# drives the guest (vireo.test=migrate) with words on its serial console.
# Round 1: A migrates to B; once QEMU has sent all guest RAM, the guest
# writes each disk and reads it back through its page cache: the target
# RDMA-writes that data into guest pages QEMU has already sent, so only the
# initiator's dirty log gets them to B. On B the guest compares its page
# cache and the disks (O_DIRECT) with what it wrote, then writes and
# verifies again: every chunk must match. Round 2, the negative control:
# initiator B runs with the test switch --test-unlogged-device-writes and B
# migrates to C the same way; the guest on C must find stale page-cache
# chunks on both disks while the disks themselves verify.
# --no-negative-control runs round 1 only. --nic adds a NIC on network lan0
# (TAP uplink vtap0, 10.98.0.254 on this host) receiving a paced TCP stream
# (Tests/lab/stream-send, $VIREO_MIG_STREAM_RATE bytes/s) from round 1's
# start until 1 MiB after its switchover: it must still run at the
# switchover, go on on B, and arrive intact (--nic-packed: on packed
# virtqueues, else split). --restart: in round 1, once the
# first pass is done, initiators A and B are SIGKILLed and restarted; QEMU
# reconnects both and the round must still verify.
#
# Binaries: $VIREO_BIN (default <repo>/.build/debug). Logs:
# $VIREO_LAB_OUT/migration-guest/.
set -uo pipefail
rounds=2 full=0 nic=0 restarts=0 nicpacked=0
usage="usage: $0 [--full [--nic [--nic-packed]] [--restart] [--no-negative-control]]"
for a in "$@"; do
    case $a in
        --full) full=1 ;;
        --nic) nic=1 ;;
        --nic-packed) nicpacked=1 ;;
        --restart) restarts=1 ;;
        --no-negative-control) rounds=1 ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done
((full || (nic == 0 && restarts == 0 && rounds == 2))) && ((nic || !nicpacked)) || { echo "$usage" >&2; exit 2; }
t_start=$SECONDS
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${VIREO_BIN:-$repo/.build/debug}
addr=${VIREO_LAB_ADDR:-10.99.0.1}
port=${VIREO_TEST_PORT:-4422}
size=${VIREO_MIG_DISK_BYTES:-$((2 << 20))}
rate=${VIREO_MIG_STREAM_RATE:-262144}
# 256 MiB + 8 KiB of guest memory, not a multiple of 256 KiB: QEMU before 9.0
# loses TCG guest writes made through cached TLB entries after a dirty
# bitmap sync of a RAM block that is (QEMU commit 03bfc2188f, "physmem: Fix
# migration dirty bitmap coherency with TCG memory access"); an unaligned
# block takes the per-page path that resets those TLB entries
# (deploy/lab/guest/tcg-migration-check). KVM hosts are not affected.
mem=262152K
ndev=2
uplink=10.98.0.254 guest_ip=10.98.0.1
mac=52:54:00:00:0c:01
work=$(mktemp -d /tmp/vireo-mig.XXXXXX)
logs=${VIREO_LAB_OUT:-$work}/migration-guest
mkdir -p "$logs"
rm -f "$logs"/*
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
note() { echo "migration-guest: $*"; }
die() { note "FAIL: $*"; for f in "$logs"/*; do echo "---- $f"; tail -n 25 "$f"; done; exit 1; }
qmp() { local h=$1; shift; "$repo/Tests/lab/qmp" "$work/$h.qmp" "$@"; }
# summary FILE: one line from a query-migrate answer.
summary() {
    python3 -c 'import json, sys
m = json.load(open(sys.argv[1])); r = m.get("ram", {})
print("%s ms, downtime %s ms, %d MiB sent, %s passes" % (m.get("total-time"), m.get("downtime"), r.get("transferred", 0) >> 20, r.get("dirty-sync-count")))' "$1"
}

[[ -x $bin/vireo-target && -x $bin/vireo-initiator ]] || die "no binaries in $bin (swift build first)"

if ((!full)); then
    dsize=$((4 << 20))
    "$bin/vireo-target" serve --listen "$addr:$port" --export "name=vol0,file=$work/vol0.img,size=$dsize" \
        >"$logs/target.log" 2>&1 &
    pids+=("$!")
    sleep 2
    for h in a b; do
        "$bin/vireo-initiator" serve --disk "socket=$work/$h.sock,target=$addr:$port,export=vol0,queues=2" \
            >"$logs/initiator-$h.log" 2>&1 &
        pids+=("$!")
    done
    for h in a b; do
        for _ in $(seq 1 600); do [[ -S $work/$h.sock ]] && break; sleep 0.1; done
        [[ -S $work/$h.sock ]] || die "initiator $h did not create its socket"
    done
    common=(--mem "$mem" --test blk-verify --num-queues 2 --param size=$dsize --param loops=4 --param bs=65536 --param discard=1
        --timeout "${VIREO_GUEST_TIMEOUT:-1500}" --quiet)
    "$repo/deploy/lab/guest/qemu-guest" "${common[@]}" --blk "$work/a.sock" --qmp "$work/a.qmp" \
        --log "$logs/guest-a.console" >"$logs/guest-a.log" 2>&1 &
    qa=$!
    pids+=("$qa")
    "$repo/deploy/lab/guest/qemu-guest" "${common[@]}" --blk "$work/b.sock" --qmp "$work/b.qmp" \
        --incoming "unix:$work/mig.sock" --log "$logs/guest-b.console" >"$logs/guest-b.log" 2>&1 &
    qb=$!
    pids+=("$qb")
    for _ in $(seq 1 6000); do
        grep -q "phase write loop 2/" "$logs/guest-a.console" 2>/dev/null && break
        kill -0 $qa 2>/dev/null || die "the guest on A ended before its second write loop"
        sleep 0.2
    done
    grep -q "phase write loop 2/" "$logs/guest-a.console" || die "the guest on A never reached its second write loop"
    note "guest on A in its second write loop; migrating to B"
    qmp a migrate "{\"uri\": \"unix:$work/mig.sock\"}" >/dev/null || die "QMP migrate"
    qmp a wait-migration completed 600 >"$work/done.json" || die "migration: $(cat "$work/done.json")"
    note "migration completed: $(summary "$work/done.json")"
    kill $qa 2>/dev/null
    wait $qb
    grc=$?
    grep "VIREO-GUEST" "$logs/guest-b.console" | sed "s/^/  [b] /"
    ((grc == 0)) || die "the guest did not PASS on B (qemu-guest exit $grc)"
    grep -hiE "I/O error|blk_update_request|Buffer I/O" "$logs"/guest-*.console && die "guest kernel reported an I/O error"
    want=$(sed -n 's/.*final disk sha256 \([0-9a-f]*\).*/\1/p' "$logs/guest-b.console" | tail -1)
    have=$(sha256sum "$work/vol0.img" | cut -d' ' -f1)
    [[ -n $want && $want == "$have" ]] || die "backing file sha256 $have, the guest saw ${want:-nothing}"
    note "the guest finished on B; the export's backing file matches its disk ($have)"
    note "PASS (remote disk, $((SECONDS - t_start)) s)"
    exit 0
fi
targs=(--export "name=vol0,file=$work/vol0.img,size=$size" --export "name=vol1,file=$work/vol1.img,size=$size")
if ((nic)); then
    ndev=3
    modprobe ${VIREO_LAB_MODROOT:+-d "$VIREO_LAB_MODROOT"} tun 2>/dev/null || true
    targs+=(--network name=lan0,mtu=1500,tap=vtap0)
fi
"$bin/vireo-target" serve --listen "$addr:$port" "${targs[@]}" >"$logs/target.log" 2>&1 &
pids+=("$!")
if ((nic)); then
    for _ in $(seq 1 300); do ip link show vtap0 >/dev/null 2>&1 && break; sleep 0.1; done
    ip link show vtap0 >/dev/null 2>&1 || die "target did not create its TAP uplink vtap0"
    ip addr add "$uplink/24" dev vtap0 && ip link set vtap0 up || die "could not address vtap0"
else
    sleep 2
fi

# initiator HOST [EXTRA...]: one compute host's initiator, serving the VM's
# two disks and its NIC on sockets of its own.
initiator() {
    local h=$1; shift
    local dev=(--disk "socket=$work/$h-vda.sock,target=$addr:$port,export=vol0"
        --disk "socket=$work/$h-vdb.sock,target=$addr:$port,export=vol1")
    ((nic)) && dev+=(--nic "socket=$work/$h-net.sock,target=$addr:$port,network=lan0,mac=$mac")
    iargs[$h]="$*"
    "$bin/vireo-initiator" serve "$@" "${dev[@]}" >>"$logs/initiator-$h.log" 2>&1 &
    ipid[$h]=$!
    pids+=("$!")
    for _ in $(seq 1 600); do [[ -S $work/$h-vdb.sock ]] && break; sleep 0.1; done
    [[ -S $work/$h-vdb.sock ]] || die "initiator $h did not create its sockets"
}
declare -A ipid iargs
# restart HOST: SIGKILL that host's initiator and start it again with the
# same arguments; waits until QEMU has reconnected all its devices.
restart() {
    local h=$1 before
    before=$(grep -c "front-end connected" "$logs/initiator-$h.log")
    kill -KILL "${ipid[$h]}"
    wait "${ipid[$h]}" 2>/dev/null
    rm -f "$work/$h"-*.sock
    # shellcheck disable=SC2086 # iargs holds whole words
    initiator "$h" ${iargs[$h]}
    for _ in $(seq 1 300); do
        (($(grep -c "front-end connected" "$logs/initiator-$h.log") >= before + ndev)) && return 0
        sleep 0.2
    done
    die "QEMU $h did not reconnect to the restarted initiator"
}
# qemu HOST [EXTRA...]: the VM's QEMU on that host (the same devices in the
# same order everywhere, as migration requires).
qemu() {
    local h=$1; shift
    local dev=(--blk "$work/$h-vda.sock" --blk-packed "$work/$h-vdb.sock")
    ((nic)) && dev+=(--net "$work/$h-net.sock" --net-mac "$mac"
        --param "ip=$guest_ip/24" --param "peer=$uplink")
    ((nicpacked)) && dev+=(--net-packed)
    "$repo/deploy/lab/guest/qemu-guest" --mem "$mem" --test migrate "${dev[@]}" --qmp "$work/$h.qmp" \
        --console-in "$work/$h.con" --param "rounds=$rounds" --param dirty=spin --kernel-arg init_on_alloc=0 \
        --log "$logs/guest-$h.console" --timeout 1500 --quiet "$@" >"$logs/guest-$h.log" 2>&1 &
    qpid[$h]=$!
    pids+=("$!")
    for _ in $(seq 1 600); do [[ -S $work/$h.qmp ]] && break; sleep 0.1; done
    [[ -S $work/$h.qmp ]] || die "QEMU $h did not open its QMP socket"
}
declare -A qpid
# wait_console HOST PATTERN SECONDS
wait_console() {
    local i
    for ((i = 0; i < $3 * 5; i++)); do
        grep -q "$2" "$logs/guest-$1.console" 2>/dev/null && return 0
        kill -0 "${qpid[$1]}" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}
# tell HOST WORD: WORD as a line on the guest's serial console input on
# HOST, resent until the guest acknowledges it ("control: WORD"; acks
# counts those lines, which end in the console's CR).
acks() { grep -c "VIREO-GUEST: control: $2[[:space:]]*$" "$logs/guest-$1.console" 2>/dev/null; }
tell() {
    local i n
    n=$(acks "$1" "$2")
    for i in $(seq 1 30); do
        python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall((sys.argv[2] + "\n").encode())
time.sleep(1)  # closing at once can drop what the UART has not taken yet
s.close()' \
            "$work/$1.con" "$2" 2>/dev/null
        for _ in $(seq 1 25); do
            (($(acks "$1" "$2") > n)) && return 0
            sleep 0.2
        done
    done
    return 1
}

hosts=(a b c)
initiator a
if ((rounds == 2)); then
    # B is round 2's source, the negative control: the switch matters only
    # while B's sessions log for a migration, i.e. only in round 2.
    initiator b --test-unlogged-device-writes
    initiator c
else
    initiator b
fi
note "target (vol0, vol1$( ((nic)) && echo ", lan0 + vtap0")) and $((rounds + 1)) initiators up; booting the guest on A"
qemu a

for ((k = 1; k <= rounds; k++)); do
    src=${hosts[$((k - 1))]} dst=${hosts[$k]}
    qemu "$dst" --incoming "unix:$work/mig-$k.sock"
    wait_console "$src" "VIREO-GUEST: READY $k" 900 || die "round $k: the guest on $src never got READY"
    note "round $k: guest ready on $src; migrating to $dst"
    if ((k == 1 && nic)); then
        "$repo/Tests/lab/stream-send" "$guest_ip" 5001 "$rate" "$work/stream" 2>"$logs/stream-send.log" &
        sender=$!
        pids+=("$sender")
    fi
    # (init_on_alloc=0 above: Debian's kernel zeroes every page it allocates
    # by default, a CPU write QEMU sees, which hides most unlogged device
    # writes into fresh page-cache pages; without it the disks' RDMA writes
    # are the only writes to those pages.)
    # The guest fills its page cache from the disks only once QEMU has sent
    # all of its RAM (the first pass), so the target RDMA-writes that data
    # into pages already sent; until the fill is done the guest keeps a few
    # pages dirty (vireo.dirty=spin) and 1 MiB/s with a 1 ms downtime limit
    # gives QEMU a threshold below one page, so the migration cannot
    # converge before. Then fast, with room to finish.
    qmp "$src" migrate-set-parameters '{"max-bandwidth": 1048576, "downtime-limit": 1}' >/dev/null ||
        die "round $k: migrate-set-parameters"
    qmp "$src" migrate "{\"uri\": \"unix:$work/mig-$k.sock\"}" >/dev/null || die "round $k: QMP migrate"
    qmp "$src" wait-migration pass 600 >"$work/pass-$k.json" ||
        die "round $k: the first pass did not finish: $(cat "$work/pass-$k.json")"
    if ((k == 1 && restarts)); then
        # Both initiators die and come back while RAM is being copied: QEMU
        # reconnects (and sets the log up again on A's new connection).
        restart "$src"
        restart "$dst"
        qmp "$src" query-migrate >"$work/restarted-$k.json"
        grep -q '"status": "active"' "$work/restarted-$k.json" ||
            die "round $k: the migration did not survive the initiators' restart: $(cat "$work/restarted-$k.json")"
        note "round $k: initiators $src and $dst restarted during the copy; QEMU reconnected, migration still active"
    fi
    tell "$src" fill || die "round $k: the guest on $src did not take 'fill' on its console"
    wait_console "$src" "VIREO-GUEST: FILLED $k" 600 || die "round $k: the guest never filled its page cache"
    qmp "$src" query-migrate >"$work/filled-$k.json"
    grep -q '"status": "active"' "$work/filled-$k.json" ||
        die "round $k: the migration was no longer running when the guest had filled its page cache: $(cat "$work/filled-$k.json")"
    qmp "$src" migrate-set-parameters '{"max-bandwidth": 1073741824, "downtime-limit": 5000}' >/dev/null ||
        die "round $k: migrate-set-parameters"
    qmp "$src" wait-migration completed 600 >"$work/done-$k.json" || die "round $k: $(cat "$work/done-$k.json")"
    note "round $k: migration completed: $(summary "$work/done-$k.json")"
    if ((k == 1 && nic)); then
        # The NIC proof needs frames in flight across the switchover, and
        # more after it on B: 1 MiB more, then the sender closes.
        kill -0 "$sender" 2>/dev/null || die "the stream sender had ended before round 1's switchover"
        at=$(cat "$work/stream" 2>/dev/null)
        ((${at:-0} > 0)) || die "round 1: nothing of the stream had been sent by the switchover"
        for _ in $(seq 1 600); do (($(cat "$work/stream") >= at + (1 << 20))) && break; sleep 0.2; done
        (($(cat "$work/stream") >= at + (1 << 20))) || die "round 1: the stream stalled on B after the switchover ($(cat "$work/stream") bytes sent, $at at the switchover)"
        touch "$work/stream.stop"
        wait "$sender" || die "the stream sender failed: $(cat "$logs/stream-send.log")"
        note "round 1: the stream ran across the switchover ($at bytes sent before it) and went on on B ($(cut -d' ' -f1 "$work/stream") bytes in all)"
    fi
    tell "$dst" migrated || die "round $k: the guest on $dst did not take 'migrated' on its console"
    wait_console "$dst" "VIREO-GUEST: ROUND $k " 900 || die "round $k: no result from the guest on $dst"
    kill "${qpid[$src]}" 2>/dev/null
    wait "${qpid[$src]}" 2>/dev/null
    grep "VIREO-GUEST: ROUND $k " "$logs/guest-$dst.console" | tail -1 | sed "s/^/  [$dst] /"
done

last=${hosts[$rounds]}
wait "${qpid[$last]}"
grc=$?
grep "VIREO-GUEST" "$logs/guest-$last.console" | tail -n 3 | sed "s/^/  [$last] /"
((grc == 0)) || die "the guest did not PASS on $last (qemu-guest exit $grc)"
grep -hiE "I/O error|blk_update_request|Buffer I/O" "$logs"/guest-*.console && die "guest kernel reported an I/O error"

# round K: the numbers on the guest's ROUND line ("vda=N vdb=N" three times).
round() { grep -h "VIREO-GUEST: ROUND $1 " "$logs"/guest-*.console | tail -1 | grep -o '=[0-9]*' | tr -d = | tr '\n' ' '; }
read -r c1a c1b d1a d1b a1a a1b <<<"$(round 1)"
[[ -n ${a1b:-} ]] || die "round 1: no complete ROUND line"
((c1a + c1b + d1a + d1b + a1a + a1b == 0)) ||
    die "round 1: stale or wrong data after the migration (page cache vda=$c1a vdb=$c1b, disk vda=$d1a vdb=$d1b, after vda=$a1a vdb=$a1b chunks)"
layouts=$(grep -hoE "disk vd[ab]: .* ring|eth0 up, .* ring" "$logs/guest-a.console" | sed -e 's/: [0-9]* bytes,//' -e 's/ up, mac [^,]*,//' | tr '\n' ' ')
if ((nic)); then
    want_layout=split
    ((nicpacked)) && want_layout=packed
    grep -q "eth0 up, .* $want_layout ring" "$logs/guest-a.console" || die "the NIC did not run on $want_layout virtqueues"
fi
note "round 1 (A -> B; ${layouts% }): page cache, disks and a fresh write all verify on B"
if ((rounds == 2)); then
    read -r c2a c2b d2a d2b a2a a2b <<<"$(round 2)"
    [[ -n ${a2b:-} ]] || die "round 2: no complete ROUND line"
    ((d2a + d2b + a2a + a2b == 0)) || die "round 2: the disks themselves differ (vda=$d2a vdb=$d2b, after vda=$a2a vdb=$a2b)"
    ((c2a > 0 && c2b > 0)) ||
        die "negative control: with B's target writes unlogged, C's page cache should be stale on both disks (vda=$c2a vdb=$c2b chunks)"
    note "round 2 (negative control, B -> C with --test-unlogged-device-writes): stale page cache on C, vda $c2a and vdb $c2b of $((size / 65536)) chunks; the disks verify"
fi

if ((nic)); then
    read -r sent want <"$work/stream"
    have=$(sed -n 's/.*VIREO-GUEST: stream received \([0-9]*\) bytes sha256 \([0-9a-f]*\).*/\1 \2/p' "$logs/guest-$last.console" | tail -1)
    [[ $have == "$sent $want" ]] || die "stream: sent $sent bytes sha256 $want, the guest received ${have:-nothing}"
    note "stream: $sent bytes sent across the migration arrived intact ($want)"
fi
for h in "${hosts[@]:0:$((rounds + 1))}"; do
    grep -E "LOG_ALL|dirty|migrat" "$logs/initiator-$h.log" | head -n 3 | sed "s/^/  initiator $h: /"
done
note "PASS ($((SECONDS - t_start)) s)"
