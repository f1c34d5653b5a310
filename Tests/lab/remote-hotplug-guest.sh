#!/usr/bin/env bash
# Usage (inside the lab): Tests/lab/remote-hotplug-guest.sh
#
# The control API's proof with real peers, one nested guest boot for a disk and
# a NIC (issue #14), and the remote-disk and remote-NIC proofs with real
# drivers:
#  1. vireo-target starts with a control socket, network lan0 (TAP uplink
#     vtap0) and no export; `vireoctl target export create` adds vol0 (a 4 MiB
#     file). `vireoctl target config` is saved, the target restarted from that
#     file, and `export list` must read the same.
#  2. vireo-initiator starts with only a control socket; `vireoctl initiator
#     disk create` connects vol0; `vireoctl initiator config` is saved, the
#     initiator restarted from it, and `disk list` must read the same.
#  3. A QEMU guest (nested, TCG, two empty PCIe root ports) boots with no
#     device. QMP chardev-add + device_add vhost-user-blk-pci hot-adds the
#     disk; the guest writes a random pattern over the whole disk with
#     O_DIRECT, reads it back, DISCARDs and WRITE_ZEROes, and prints the hash;
#     the export's file on the target must hash the same. While attached, a
#     `disk delete` without --force must be refused. QMP device_del +
#     chardev-remove, then `disk delete` must succeed and the list be empty.
#  4. The same for a NIC: `nic create`, QMP chardev-add + netdev_add
#     vhost-user + device_add virtio-net-pci; the guest and the target host
#     (through the TAP uplink) ping each other and move $VIREO_NET_BYTES
#     (default 4 MiB) each way with busybox nc, sha256 compared; device_del,
#     netdev_del (which removes the chardev), `nic delete`.
# The guest passes only when each device appeared and was removed.
#
# Binaries: $VIREO_BIN (default <repo>/.build/debug). Logs: $VIREO_LAB_OUT/remote-hotplug-guest/.
set -uo pipefail
t_start=$SECONDS
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${VIREO_BIN:-$repo/.build/debug}
addr=${VIREO_LAB_ADDR:-10.99.0.1}
port=${VIREO_TEST_PORT:-4422}
size=$((4 << 20))
bytes=${VIREO_NET_BYTES:-$((4 << 20))}
mac=52:54:00:00:0c:01
uplink=10.98.0.254
work=$(mktemp -d /tmp/vireo-hp.XXXXXX)
logs=${VIREO_LAB_OUT:-$work}/remote-hotplug-guest
mkdir -p "$logs"
rm -f "$logs"/*
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
note() { echo "remote-hotplug-guest: $*"; }
die() { note "FAIL: $*"; for f in "$logs"/*; do echo "---- $f"; tail -n 25 "$f"; done; exit 1; }
tctl() { "$bin/vireoctl" target "$@" --control-socket "$work/target.ctl"; }
ictl() { "$bin/vireoctl" initiator "$@" --control-socket "$work/initiator.ctl"; }
qmp() { "$repo/Tests/lab/qmp" "$work/qmp.sock" "$@"; }
wait_file() { for _ in $(seq 1 300); do [[ -S $1 ]] && return 0; sleep 0.1; done; return 1; }
console=$logs/guest.console
wait_console() {  # wait_console TEXT SECONDS: until the guest printed TEXT (or died)
    for _ in $(seq 1 "$2"); do
        grep -q "$1" "$console" 2>/dev/null && return 0
        kill -0 "$guest" 2>/dev/null || return 1
        sleep 1
    done
    return 1
}
empty() { python3 -c 'import json, sys; sys.exit(len(json.load(sys.stdin)))'; }  # a JSON array on stdin is empty
stop() { kill -TERM "$1" 2>/dev/null; for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }

[[ -x $bin/vireo-target && -x $bin/vireo-initiator && -x $bin/vireoctl ]] || die "no binaries in $bin (swift build first)"
modprobe ${VIREO_LAB_MODROOT:+-d "$VIREO_LAB_MODROOT"} tun 2>/dev/null || true

# 1. The target: an export added at run time, then a restart from `config`.
"$bin/vireo-target" serve --listen "$addr:$port" --control-socket "$work/target.ctl" \
    --network name=lan0,mtu=1500,tap=vtap0 >>"$logs/target.log" 2>&1 &
target=$!
pids+=("$target")
wait_file "$work/target.ctl" || die "the target did not create its control socket"
tctl export create vol0 --file "$work/vol0.img" --size 4M --allow-any-host >"$logs/vireoctl.log" 2>&1 ||
    die "export create: $(cat "$logs/vireoctl.log")"
tctl export list --json >"$work/exports.before" || die "export list"
tctl config >"$work/target.toml" || die "target config"
stop "$target" || die "the target did not stop on SIGTERM"
"$bin/vireo-target" serve --config "$work/target.toml" >>"$logs/target.log" 2>&1 &
target=$!
pids+=("$target")
wait_file "$work/target.ctl" || die "the target did not come back from its saved config"
tctl export list --json >"$work/exports.after" || die "export list after the restart"
cmp -s "$work/exports.before" "$work/exports.after" || die "export list differs after a restart from config_get: $(diff "$work/exports.before" "$work/exports.after")"
note "target: export vol0 created at run time; restarted from config_get, export list identical"
for _ in $(seq 1 300); do ip link show vtap0 >/dev/null 2>&1 && break; sleep 0.1; done
ip addr add "$uplink/24" dev vtap0 && ip link set vtap0 up || die "could not address the TAP uplink vtap0"

# 2. The initiator: a disk added at run time, then a restart from `config`.
"$bin/vireo-initiator" serve --control-socket "$work/initiator.ctl" >>"$logs/initiator.log" 2>&1 &
initiator=$!
pids+=("$initiator")
wait_file "$work/initiator.ctl" || die "the initiator did not create its control socket"
ictl disk create --socket "$work/disk.sock" --target "$addr:$port" --export vol0 --queues 2 >>"$logs/vireoctl.log" 2>&1 ||
    die "disk create: $(tail -n 3 "$logs/vireoctl.log")"
ictl disk list --json >"$work/disks.before" || die "disk list"
ictl config >"$work/initiator.toml" || die "initiator config"
stop "$initiator" || die "the initiator did not stop on SIGTERM"
"$bin/vireo-initiator" serve --config "$work/initiator.toml" >>"$logs/initiator.log" 2>&1 &
initiator=$!
pids+=("$initiator")
wait_file "$work/disk.sock" || die "the initiator did not serve the disk from its saved config"
ictl disk list --json >"$work/disks.after" || die "disk list after the restart"
cmp -s "$work/disks.before" "$work/disks.after" || die "disk list differs after a restart from config_get: $(diff "$work/disks.before" "$work/disks.after")"
note "initiator: disk created at run time; restarted from config_get, disk list identical"
# SIGHUP reads the same file again: nothing differs, nothing changes, the daemon stays.
kill -HUP "$initiator"
for _ in $(seq 1 50); do grep -q "SIGHUP: reload done" "$logs/initiator.log" && break; sleep 0.1; done
grep -q "SIGHUP: reload done, nothing differed" "$logs/initiator.log" || die "SIGHUP: no 'reload done, nothing differed' in the initiator's log"
kill -0 "$initiator" 2>/dev/null || die "SIGHUP stopped the initiator"
ictl disk list --json >"$work/disks.hup" && cmp -s "$work/disks.before" "$work/disks.hup" || die "disk list changed after a SIGHUP with the same file"
note "initiator: SIGHUP with the same file: nothing differed, still serving"

# 3. The guest: no device at boot; the disk hot-added, verified, removed.
# -no-shutdown: QEMU (and its QMP socket) stays up after the guest powers off
# (qemu-guest stops it 30 s after the result), so the NIC's backend can be
# removed after the guest saw the NIC go.
"$repo/deploy/lab/guest/qemu-guest" --test hotplug --smp 2 \
    --param size=$size --param bs=16384 --param jobs=2 --param discard=1 \
    --param ip=10.98.0.1/24 --param peer=$uplink --param role=both --param bytes="$bytes" \
    --log "$console" --timeout "${VIREO_GUEST_TIMEOUT:-1500}" --quiet -- \
    -qmp "unix:$work/qmp.sock,server=on,wait=off" -no-shutdown \
    -device pcie-root-port,id=rp1,chassis=1,slot=1 -device pcie-root-port,id=rp2,chassis=2,slot=2 \
    >"$logs/guest.log" 2>&1 &
guest=$!
pids+=("$guest")
wait_console "hotplug: waiting for a disk" 900 || die "the guest never got to waiting for a disk"
qmp chardev-add "{\"id\": \"vu0\", \"backend\": {\"type\": \"socket\", \"data\": {\"addr\": {\"type\": \"unix\", \"data\": {\"path\": \"$work/disk.sock\"}}, \"server\": false, \"reconnect\": 1}}}" >/dev/null ||
    die "QMP chardev-add (disk)"
qmp device_add '{"driver": "vhost-user-blk-pci", "id": "disk0", "chardev": "vu0", "bus": "rp1", "num-queues": 2}' >/dev/null ||
    die "QMP device_add vhost-user-blk-pci"
note "disk hot-added (QMP device_add vhost-user-blk-pci)"
if ictl disk delete "$work/disk.sock" >"$work/refused" 2>&1; then die "disk delete succeeded while the VMM was attached"; fi
grep -q "a VMM is attached" "$work/refused" || die "disk delete refused with an unclear message: $(cat "$work/refused")"
note "disk delete while attached: refused ($(head -c 120 "$work/refused"))"
wait_console "hotplug: disk verified" 1200 || die "the guest did not verify the hot-added disk"
want=$(sed -n 's/.*final disk sha256 \([0-9a-f]*\).*/\1/p' "$console" | tail -1)
have=$(sha256sum "$work/vol0.img" | cut -d' ' -f1)
[[ -n $want && $want == "$have" ]] || die "the export's file sha256 $have, the guest saw ${want:-nothing}"
note "disk: the export's file matches the guest's disk ($have)"
qmp device_del '{"id": "disk0"}' >/dev/null || die "QMP device_del disk0"
qmp wait-gone disk0 300 || die "disk0 not released by the guest"
qmp chardev-remove '{"id": "vu0"}' >/dev/null || die "QMP chardev-remove vu0"
deleted=
for _ in $(seq 1 50); do ictl disk delete "$work/disk.sock" >"$work/deleted" 2>&1 && { deleted=1; break; }; sleep 0.2; done
[[ -n $deleted ]] || die "disk delete after device_del: $(cat "$work/deleted")"
ictl disk list --json | empty || die "a disk is still listed after its delete"
wait_console "hotplug: disk removed" 120 || die "the guest did not see its disk go"
note "disk removed (QMP device_del, chardev-remove, vireoctl disk delete)"

# 4. The NIC: hot-added, traffic both ways through the TAP uplink, removed.
wait_console "hotplug: waiting for a NIC" 60 || die "the guest never got to waiting for a NIC"
ictl nic create --socket "$work/net.sock" --target "$addr:$port" --network lan0 --mac $mac >>"$logs/vireoctl.log" 2>&1 ||
    die "nic create: $(tail -n 3 "$logs/vireoctl.log")"
qmp chardev-add "{\"id\": \"vn0\", \"backend\": {\"type\": \"socket\", \"data\": {\"addr\": {\"type\": \"unix\", \"data\": {\"path\": \"$work/net.sock\"}}, \"server\": false, \"reconnect\": 1}}}" >/dev/null ||
    die "QMP chardev-add (nic)"
qmp netdev_add '{"type": "vhost-user", "id": "n0", "chardev": "vn0"}' >/dev/null || die "QMP netdev_add vhost-user"
# vectors=0: QEMU 7.2 under TCG segfaults in vhost_net_start with vhost-user net + MSI-X (qemu-guest).
qmp device_add "{\"driver\": \"virtio-net-pci\", \"id\": \"net0\", \"netdev\": \"n0\", \"mac\": \"$mac\", \"bus\": \"rp2\", \"vectors\": 0}" >/dev/null ||
    die "QMP device_add virtio-net-pci"
note "NIC hot-added (QMP netdev_add vhost-user, device_add virtio-net-pci)"
busybox nc -l -p 5001 -e sh -c "cat > $work/rx" &
hostrx=$!
pids+=("$hostrx")
wait_console "VIREO-GUEST: ping $uplink: reply" 600 || die "the guest got no ping reply from the target host"
busybox ping -c 3 -W 5 10.98.0.1 >"$work/ping" 2>&1 || die "the host got no ping reply from the guest: $(cat "$work/ping")"
note "host -> guest ping: $(tail -n1 "$work/ping")"
head -c "$bytes" /dev/urandom >"$work/tx"
sent=
for _ in $(seq 1 120); do
    busybox nc 10.98.0.1 5001 -e cat "$work/tx" 2>"$work/nc.err" && { sent=1; break; }
    kill -0 "$guest" 2>/dev/null || break
    sleep 1
done
[[ -n $sent ]] || die "the host could not send to the guest: $(cat "$work/nc.err")"
wait_console "hotplug: NIC done" 600 || die "the guest did not finish its NIC test"
for _ in $(seq 1 100); do kill -0 $hostrx 2>/dev/null || break; sleep 0.1; done
guest_sha() { sed -n "s/.*VIREO-GUEST: $1 .* sha256 \([0-9a-f]*\).*/\1/p" "$console"; }
same() {
    [[ -n $2 && $2 == "$3" ]] || die "$1: sha256 differs: sent ${2:-?}, received ${3:-?}"
    note "$1: $bytes bytes, sha256 identical on both sides"
}
same "host -> guest" "$(sha256sum <"$work/tx" | cut -d' ' -f1)" "$(guest_sha received)"
same "guest -> host" "$(guest_sha sent)" "$(sha256sum <"$work/rx" | cut -d' ' -f1)"
qmp device_del '{"id": "net0"}' >/dev/null || die "QMP device_del net0"
qmp wait-gone net0 300 || die "net0 not released by the guest"
# netdev_del of a vhost-user netdev removes its chardev too (QEMU 7.2): no chardev-remove.
qmp netdev_del '{"id": "n0"}' >/dev/null || die "QMP netdev_del n0"
deleted=
for _ in $(seq 1 50); do ictl nic delete "$work/net.sock" >"$work/deleted" 2>&1 && { deleted=1; break; }; sleep 0.2; done
[[ -n $deleted ]] || die "nic delete after device_del: $(cat "$work/deleted")"
ictl nic list --json | empty || die "a NIC is still listed after its delete"
note "NIC removed (QMP device_del, netdev_del, vireoctl nic delete)"

wait "$guest" || { grep "VIREO-GUEST" "$console" | sed 's/^/  [guest] /'; die "the guest did not PASS"; }
grep "VIREO-GUEST" "$console" | sed 's/^/  [guest] /'
grep -hiE "I/O error|blk_update_request|Buffer I/O" "$console" && die "the guest kernel reported an I/O error"
note "PASS ($((SECONDS - t_start)) s)"
