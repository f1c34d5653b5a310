#!/usr/bin/env bash
# Usage (inside the lab): Tests/lab/remote-net-guests.sh [--one | --mq-packed]
#
# The virtio-net proof with real peers: vireo-target serves network lan0 over
# rxe0 with a TAP uplink (vtap0, 10.98.0.254/24 on the target host);
# vireo-initiator processes each serve one vhost-user NIC on lan0 to a QEMU
# guest (nested, TCG). Finally the target's counters are printed.
#
# Default: two guests on two NICs ping each other, guest A also pings the
# target host through the TAP uplink, then guest B sends $VIREO_NET_BYTES
# (default 64 MiB) to guest A with busybox nc and both print the sha256; the
# hashes must match.
#
# --one (what CI runs: one nested boot): one guest talks to the target host
# through the TAP uplink. The guest pings the host, the host pings the guest,
# then the host sends $VIREO_NET_BYTES (default 4 MiB) to the guest with
# busybox nc and the guest sends as many fresh bytes back; each side's sha256
# of what it sent must match the other side's of what it received.
#
# --mq-packed: two guests, each NIC with 2 queue pairs (initiator
# queue-pairs=2, QEMU -netdev vhost-user,queues=2 + virtio-net-pci
# mq=on,packed=on, 2 guest vCPUs so Linux uses both pairs); the target must
# join each NIC's two connections into one switch port; per-connection
# counters are printed. Not in CI (slow).
#
# Binaries: $VIREO_BIN (default <repo>/.build/debug). Logs: $VIREO_LAB_OUT/remote-net-guests/.
set -uo pipefail
mq=0 one=0
case ${1:-} in
    --mq-packed) mq=1 ;;
    --one) one=1 ;;
    "") ;;
    *) echo "usage: $0 [--one | --mq-packed]" >&2; exit 2 ;;
esac
t_start=$SECONDS
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${VIREO_BIN:-$repo/.build/debug}
addr=${VIREO_LAB_ADDR:-10.99.0.1}
port=${VIREO_TEST_PORT:-4421}
bytes=${VIREO_NET_BYTES:-$((one ? 4 << 20 : 64 << 20))}
guests=(a b)
((one)) && guests=(a)
uplink=10.98.0.254
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
ip addr add "$uplink/24" dev vtap0 && ip link set vtap0 up || die "could not address vtap0"

declare -A mac=([a]=52:54:00:00:0a:01 [b]=52:54:00:00:0b:01)
nic_extra= guest_extra=()
if ((mq)); then nic_extra=,queue-pairs=2; guest_extra=(--net-queues 2 --net-packed --smp 2); fi
for g in "${guests[@]}"; do
    "$bin/vireo-initiator" serve --nic "socket=$work/$g.sock,target=$addr:$port,network=lan0,mac=${mac[$g]}$nic_extra" \
        >"$logs/initiator-$g.log" 2>&1 &
    pids+=("$!")
done
for g in "${guests[@]}"; do
    for _ in $(seq 1 600); do [[ -S $work/$g.sock ]] && break; sleep 0.1; done
    [[ -S $work/$g.sock ]] || die "initiator $g did not create its socket"
done
note "target (lan0 + vtap0) and ${#guests[@]} initiator(s) up; booting ${#guests[@]} guest(s)"

guest() {  # guest NAME IP PEER ROLE [EXTRA...]
    local g=$1 ip=$2 peer=$3 role=$4; shift 4
    "$repo/deploy/lab/guest/qemu-guest" --test net-ping --net "$work/$g.sock" --net-mac "${mac[$g]}" \
        --param "ip=$ip" --param "peer=$peer" --param "role=$role" --param "bytes=$bytes" "${guest_extra[@]}" "$@" \
        --log "$logs/guest-$g.console" --timeout 1200 --quiet >"$logs/guest-$g.log" 2>&1
}
# guest_sha received|sent GUEST: the sha256 on that guest's line.
guest_sha() { sed -n "s/.*VIREO-GUEST: $1 .* sha256 \([0-9a-f]*\).*/\1/p" "$logs/guest-$2.console"; }
same() {  # same WHAT SENT RECEIVED
    [[ -n $2 && $2 == "$3" ]] || die "$1: sha256 differs: sent ${2:-?}, received ${3:-?}"
    note "$1: $bytes bytes, sha256 identical on both sides ($2)"
}

rc=0
if ((one)); then
    # The host end: busybox nc (the lab has no other nc), listening for the
    # guest's bytes before the guest can send them.
    busybox nc -l -p 5001 -e sh -c "cat > $work/rx" &
    hostrx=$!
    pids+=("$hostrx")
    guest a 10.98.0.1/24 "$uplink" both &
    ga=$!
    pids+=("$ga")
    for _ in $(seq 1 1500); do
        grep -q "VIREO-GUEST: ping $uplink: reply" "$logs/guest-a.console" 2>/dev/null && break
        kill -0 $ga 2>/dev/null || break
        sleep 1
    done
    if grep -q "VIREO-GUEST: ping $uplink: reply" "$logs/guest-a.console" 2>/dev/null; then
        busybox ping -c 3 -W 5 10.98.0.1 >"$work/ping" 2>&1 || { cat "$work/ping"; die "the host got no ping reply from the guest"; }
        note "host -> guest ping: $(tail -n1 "$work/ping")"
        head -c "$bytes" /dev/urandom >"$work/tx"
        sent=
        for _ in $(seq 1 120); do
            busybox nc 10.98.0.1 5001 -e cat "$work/tx" 2>"$work/nc.err" && { sent=1; break; }
            kill -0 $ga 2>/dev/null || break
            sleep 1
        done
        [[ -n $sent ]] || note "host could not send to the guest: $(cat "$work/nc.err")"
    fi
    wait $ga || rc=1
    grep "VIREO-GUEST" "$logs/guest-a.console" | sed "s/^/  [a] /"
    ((rc == 0)) || die "the guest did not PASS"
    for _ in $(seq 1 100); do kill -0 $hostrx 2>/dev/null || break; sleep 0.1; done
    same "host -> guest" "$(sha256sum <"$work/tx" | cut -d' ' -f1)" "$(guest_sha received a)"
    same "guest -> host" "$(guest_sha sent a)" "$(sha256sum <"$work/rx" | cut -d' ' -f1)"
else
    guest a 10.98.0.1/24 10.98.0.2 listen --param uplink="$uplink" &
    ga=$!
    guest b 10.98.0.2/24 10.98.0.1 send &
    gb=$!
    pids+=("$ga" "$gb")
    wait $ga || rc=1
    wait $gb || rc=1
    for g in a b; do grep "VIREO-GUEST" "$logs/guest-$g.console" | sed "s/^/  [$g] /"; done
    ((rc == 0)) || die "a guest did not PASS"
    same "guest B -> guest A" "$(guest_sha sent b)" "$(guest_sha received a)"
fi
if ((mq)); then
    # Two connections per NIC, joined into one switch port each.
    joined=$(grep -c "queue pair 2 of its NIC" "$logs/target.log")
    ((joined >= 2)) || die "the target did not join each NIC's 2 queue pairs into one port ($joined joins)"
    grep -E "joined network lan0" "$logs/target.log" | sed 's/^.*\] /  target: /'
fi
kill -TERM "$target"; wait "$target" 2>/dev/null
grep -iE "counters|frames|drops" "$logs/target.log" | tail -n $((mq ? 7 : 5)) | sed 's/^/  target: /'
note "PASS ($((SECONDS - t_start)) s)"
