#!/usr/bin/env bash
# Usage (inside the lab): Tests/lab/remote-net-testpmd.sh
#
# DPDK testpmd through a target network, no guest: vireo-target serves lan0
# over rxe0; two vireo-initiator processes each serve one vhost-user NIC on
# it (A 52:54:00:00:0a:01, B 52:54:00:00:0b:01); two testpmd instances are
# their virtio-user front-ends. A generates frames to B's MAC (flowgen with
# --eth-peer: it transmits like txonly, and also polls its RX queue, counting
# and dropping what comes back, which txonly never does); B runs macswap, so
# every frame it gets goes back to A. After $VIREO_TP_SECONDS (default 5) of
# forwarding, A then B stop (SIGINT: they print their accumulated stats);
# as each front-end leaves, its NIC drops its connection and the target logs
# that port's counters ("left network lan0: rx N frames/..., tx N frames/...").
#
# PASS: frames flowed both ways (A TX, B RX, B TX, A RX all > 0), and for
# each port the target's counters match testpmd's within what can be in
# flight:
#  - target rx(port) <= its testpmd TX <= rx + sent_slack. sent_slack = the
#    virtio ring size (256: frames still in the TX ring when the front-end
#    left, which the NIC drops and counts as txDroppedLinkDown) + the network's
#    receive buffers (256: frames the target's RNIC had already taken in
#    when the port left, whose completions the switch never processed; seen
#    on a busy machine: A TX exceeded rx(A) by 320);
#  - testpmd RX <= target tx(port) <= RX + slack (frames that landed after
#    the front-end stopped polling), slack = the ring size.
#
# Binaries: $VIREO_BIN (default <repo>/.build/debug). Logs: $VIREO_LAB_OUT/remote-net-testpmd/.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${VIREO_BIN:-$repo/.build/debug}
addr=${VIREO_LAB_ADDR:-10.99.0.1}
port=${VIREO_TEST_PORT:-4423}
secs=${VIREO_TP_SECONDS:-5}
slack=256                   # the virtio ring size
sent_slack=$((slack + 256)) # + the network's receive_buffers (the default)
work=$(mktemp -d /tmp/vireo-rt.XXXXXX)
logs=${VIREO_LAB_OUT:-$work}/remote-net-testpmd
mkdir -p "$logs"
rm -f "$logs"/*
declare -A pid=()
cleanup() {
    for k in "${!pid[@]}"; do kill -KILL "${pid[$k]}" 2>/dev/null; done
    wait 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT
note() { echo "remote-net-testpmd: $*"; }
die() { note "FAIL: $*"; for f in "$logs"/*; do echo "---- $f"; tail -n 25 "$f"; done; exit 1; }
alive() { kill -0 "$1" 2>/dev/null; }
# stop KEY SIGNAL: signal a process and wait up to 20 s for it to exit.
stop() {
    local p=${pid[$1]:-}; [[ -n $p ]] || return 0
    kill "-$2" "$p" 2>/dev/null
    for _ in $(seq 100); do alive "$p" || break; sleep 0.2; done
    alive "$p" && { note "$1 ignored SIG$2 for 20 s: killing it"; kill -KILL "$p" 2>/dev/null; }
    wait "$p" 2>/dev/null
    unset "pid[$1]"
}

[[ -x $bin/vireo-target && -x $bin/vireo-initiator ]] || die "no binaries in $bin (swift build first)"
command -v dpdk-testpmd >/dev/null || { note "dpdk-testpmd not found (deploy/lab/install-deps)"; exit 125; }

"$bin/vireo-target" serve --listen "$addr:$port" --network name=lan0,mtu=1500 >"$logs/target.log" 2>&1 &
pid[target]=$!
declare -A mac=([a]=52:54:00:00:0a:01 [b]=52:54:00:00:0b:01)
for g in a b; do
    for _ in $(seq 1 100); do grep -q "serving" "$logs/target.log" && break; sleep 0.1; done
    "$bin/vireo-initiator" serve --nic "socket=$work/$g.sock,target=$addr:$port,network=lan0,mac=${mac[$g]}" \
        >"$logs/initiator-$g.log" 2>&1 &
    pid[init-$g]=$!
done
for g in a b; do
    for _ in $(seq 1 600); do [[ -S $work/$g.sock ]] && break; sleep 0.1; done
    [[ -S $work/$g.sock ]] || die "initiator $g did not create its socket"
done

# Two lcores each (a main and a forwarding one), forwarding on different vCPUs.
testpmd() {  # testpmd NAME MAIN_LCORE MODE [ARGS...]
    local g=$1 main=$2 mode=$3; shift 3
    dpdk-testpmd -l 0,1 --main-lcore "$main" --no-pci --single-file-segments --file-prefix "vireo-rt-$g-$$" \
        --vdev "net_virtio_user0,path=$work/$g.sock,queues=1,queue_size=256,mac=${mac[$g]}" \
        -- --forward-mode="$mode" --total-num-mbufs 4096 --stats-period 2 "$@" </dev/null >"$logs/testpmd-$g.log" 2>&1 &
    pid[tp-$g]=$!
}
t0=$SECONDS
testpmd b 0 macswap
testpmd a 1 flowgen --eth-peer="0,${mac[b]}" --txpkts=64
# Up: the port started and forwarding began (EAL init is slow under TCG).
up() { grep -q 'forwards packets on' "$logs/testpmd-$1.log"; }
until up a && up b; do
    for g in a b; do alive "${pid[tp-$g]}" || die "testpmd $g exited during start-up"; done
    ((SECONDS - t0 < 180)) || die "testpmd did not start forwarding within 180 s"
    sleep 0.5
done
note "both testpmd ports up after $((SECONDS - t0)) s; forwarding ${secs} s"
sleep "$secs"

# A port that left before A stops is a start-up quiesce: testpmd may stop and
# start its port while it starts up (seen on a busy machine: B's NIC dropped
# and reconnected before forwarding began), with no traffic counted to it.
before=$(grep -c "left network lan0" "$logs/target.log")
# A stops first; B keeps swapping what is still in flight for a moment.
stop tp-a INT
sleep 2
stop tp-b INT
for _ in $(seq 50); do (($(grep -c "left network lan0" "$logs/target.log") >= before + 2)) && break; sleep 0.2; done
stop init-a TERM
stop init-b TERM
# A front-end leaving quiesces its NIC, which drops its connection (the
# port leaves, its counters logged) and reconnects quietly. A left first, so
# the target's first "left" line after the start-up ones is A's port, the
# second B's; the later ones are the reconnected ports leaving with their
# initiators (no traffic).
mapfile -t left < <(grep "left network lan0" "$logs/target.log" | tail -n +$((before + 1)))
stop target TERM
((${#left[@]} >= 2)) || die "expected 2 'left network lan0' lines in the target log after A stopped, found ${#left[@]}"

acc() {  # acc NAME FIELD: testpmd's accumulated RX-packets / TX-packets
    sed -n '/Accumulated forward statistics/,/+++++*$/p' "$logs/testpmd-$1.log" \
        | sed -n "s/.*$2: *\([0-9]*\).*/\1/p" | tail -n1
}
tgt() {  # tgt LINE rx|tx: frames in a target "left" line
    sed -n "s/.* $2 \([0-9]*\) frames.*/\1/p" <<<"$1"
}
a_tx=$(acc a TX-packets) a_rx=$(acc a RX-packets) b_tx=$(acc b TX-packets) b_rx=$(acc b RX-packets)
ta_rx=$(tgt "${left[0]}" rx) ta_tx=$(tgt "${left[0]}" tx) tb_rx=$(tgt "${left[1]}" rx) tb_tx=$(tgt "${left[1]}" tx)
note "testpmd A (flowgen): TX ${a_tx:-?} RX ${a_rx:-?} | testpmd B (macswap): RX ${b_rx:-?} TX ${b_tx:-?}"
note "target port A: ${left[0]#*lan0: }"
note "target port B: ${left[1]#*lan0: }"
for v in a_tx a_rx b_tx b_rx ta_rx ta_tx tb_rx tb_tx; do [[ -n ${!v} ]] || die "could not read $v"; done
fail=0
check() {  # check WHAT LOW HIGH VALUE: LOW <= VALUE <= HIGH
    if (($2 <= $4 && $4 <= $3)); then note "ok: $1 ($2 <= $4 <= $3)"; else note "MISMATCH: $1 ($4 not in $2..$3)"; fail=1; fi
}
((a_tx > 0 && b_rx > 0 && b_tx > 0 && a_rx > 0)) || { note "frames did not flow both ways"; fail=1; }
check "A's frames sent: target rx(A) <= A TX <= rx(A) + $sent_slack" "$ta_rx" $((ta_rx + sent_slack)) "$a_tx"
check "frames to B: B RX <= target tx(B) <= B RX + $slack" "$b_rx" $((b_rx + slack)) "$tb_tx"
check "B's frames sent: target rx(B) <= B TX <= rx(B) + $sent_slack" "$tb_rx" $((tb_rx + sent_slack)) "$b_tx"
check "frames to A: A RX <= target tx(A) <= A RX + $slack" "$a_rx" $((a_rx + slack)) "$ta_tx"
((fail == 0)) || die "counters do not match"
note "PASS ($((SECONDS - t0)) s)"
