#!/usr/bin/env bash
# Usage (inside the lab): Tests/lab/remote-net-guests.sh [--mq-packed]
#
# The virtio-net proof with real peers: vireo-target serves network lan0 over
# rxe0 with a TAP uplink (vtap0, 10.98.0.254/24 on the target host); two
# vireo-initiator processes each serve one vhost-user NIC on lan0; two QEMU
# guests (nested, TCG) on those NICs ping each other, guest A also pings the
# target host through the TAP uplink, then guest B sends $VIREO_NET_BYTES
# (default 64 MiB) to guest A with busybox nc and both print the sha256; the
# hashes must match. Finally the target's counters are printed.
#
# --mq-packed: each NIC has 2 queue pairs (initiator queue-pairs=2, QEMU
# -netdev vhost-user,queues=2 + virtio-net-pci mq=on,packed=on, 2 guest vCPUs
# so Linux uses both pairs); the target must join each NIC's two connections
# into one switch port; per-connection counters are printed. Not in CI (slow).
#
# Binaries: $VIREO_BIN (default <repo>/.build/debug). Logs: $VIREO_LAB_OUT/remote-net-guests/.
set -uo pipefail
mq=0
case ${1:-} in
    --mq-packed) mq=1 ;;
    "") ;;
    *) echo "usage: $0 [--mq-packed]" >&2; exit 2 ;;
esac
t_start=$SECONDS
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${VIREO_BIN:-$repo/.build/debug}
addr=${VIREO_LAB_ADDR:-10.99.0.1}
port=${VIREO_TEST_PORT:-4421}
bytes=${VIREO_NET_BYTES:-$((64 << 20))}
work=$(mktemp -d /tmp/vireo-rn.XXXXXX)
logs=${VIREO_LAB_OUT:-$work}/remote-net-guests
mkdir -p "$logs"
rm -f "$logs"/*
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
note() { echo "remote-net-guests: $*"; }
die() { note "FAIL: $*"; for f in "$logs"/*; do echo "---- $f"; tail -n 25 "$f"; done; exit 1; }

[[ -x $bin/vireo-target && -x $bin/vireo-initiator ]] || die "no binaries in $bin (swift build first)"
modprobe ${VIREO_LAB_MODROOT:+-d "$VIREO_LAB_MODROOT"} tun 2>/dev/null || true

"$bin/vireo-target" serve --listen "$addr:$port" --network name=lan0,mtu=1500,tap=vtap0 >"$logs/target.log" 2>&1 &
target=$!
pids+=("$target")
for _ in $(seq 1 300); do ip link show vtap0 >/dev/null 2>&1 && break; sleep 0.1; done
ip link show vtap0 >/dev/null 2>&1 || die "target did not create its TAP uplink vtap0"
ip addr add 10.98.0.254/24 dev vtap0 && ip link set vtap0 up || die "could not address vtap0"

declare -A mac=([a]=52:54:00:00:0a:01 [b]=52:54:00:00:0b:01)
nic_extra= guest_extra=()
if ((mq)); then nic_extra=,queue-pairs=2; guest_extra=(--net-queues 2 --net-packed --smp 2); fi
for g in a b; do
    "$bin/vireo-initiator" serve --nic "socket=$work/$g.sock,target=$addr:$port,network=lan0,mac=${mac[$g]}$nic_extra" \
        >"$logs/initiator-$g.log" 2>&1 &
    pids+=("$!")
done
for g in a b; do
    for _ in $(seq 1 600); do [[ -S $work/$g.sock ]] && break; sleep 0.1; done
    [[ -S $work/$g.sock ]] || die "initiator $g did not create its socket"
done
note "target (lan0 + vtap0) and two initiators up; booting two guests"

guest() {  # guest NAME IP PEER ROLE [EXTRA...]
    local g=$1 ip=$2 peer=$3 role=$4; shift 4
    "$repo/deploy/lab/guest/qemu-guest" --test net-ping --net "$work/$g.sock" --net-mac "${mac[$g]}" \
        --param "ip=$ip" --param "peer=$peer" --param "role=$role" --param "bytes=$bytes" "${guest_extra[@]}" "$@" \
        --log "$logs/guest-$g.console" --timeout 1200 --quiet >"$logs/guest-$g.log" 2>&1
}
guest a 10.98.0.1/24 10.98.0.2 listen --param uplink=10.98.0.254 &
ga=$!
guest b 10.98.0.2/24 10.98.0.1 send &
gb=$!
rc=0
wait $ga || rc=1
wait $gb || rc=1
for g in a b; do grep "VIREO-GUEST" "$logs/guest-$g.console" | sed "s/^/  [$g] /"; done
((rc == 0)) || die "a guest did not PASS"
rx=$(sed -n 's/.*received .* sha256 \([0-9a-f]*\).*/\1/p' "$logs/guest-a.console")
tx=$(sed -n 's/.*sent .* sha256 \([0-9a-f]*\).*/\1/p' "$logs/guest-b.console")
[[ -n $rx && $rx == "$tx" ]] || die "sha256 differs: sent ${tx:-?}, received ${rx:-?}"
note "guest B -> guest A: $bytes bytes, sha256 identical on both sides ($rx)"
if ((mq)); then
    # Two connections per NIC, joined into one switch port each.
    joined=$(grep -c "queue pair 2 of its NIC" "$logs/target.log")
    ((joined >= 2)) || die "the target did not join each NIC's 2 queue pairs into one port ($joined joins)"
    grep -E "joined network lan0" "$logs/target.log" | sed 's/^.*\] /  target: /'
fi
kill -TERM "$target"; wait "$target" 2>/dev/null
grep -iE "counters|frames|drops" "$logs/target.log" | tail -n $((mq ? 7 : 5)) | sed 's/^/  target: /'
note "PASS ($((SECONDS - t_start)) s)"
