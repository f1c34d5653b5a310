#!/usr/bin/env bash
# Usage: Tests/lab/host-vmm-suite.sh   (as root, on the host; no RDMA needed)
#
# The vhost-user backend against real VMM peers, without the lab: the same
# scripts the lab runs nested (Tests/lab/guest-suite.sh), with our backends
# (vireo-initiator local-disk / loopback-net). A QEMU guest writes and
# verifies its disk, then the backend is SIGKILLed mid-workload and
# restarted; a guest's virtio-net link comes up; DPDK testpmd connects as a
# virtio-user frontend. Nested in the lab (TCG in TCG) these take ~25 min on
# 2 cores; directly on the host under TCG ~1-2 min, so CI runs them here and
# the lab keeps what needs RDMA. VIREO_TEST_NESTED=1 makes deploy/test run
# them in the lab too.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${VIREO_BIN:-$repo/.build/debug}
# DPDK needs hugepages: mount hugetlbfs and reserve a few if none are.
if [[ $EUID -eq 0 ]]; then
    mkdir -p /dev/hugepages
    mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages
    (( $(cat /proc/sys/vm/nr_hugepages) >= 256 )) || echo 256 >/proc/sys/vm/nr_hugepages
fi
export VIREO_BLK_BACKEND="$bin/vireo-initiator local-disk --socket {sock} --size {size} --queues 2 --file {dir}/disk.img"
export VIREO_NET_BACKEND="$bin/vireo-initiator loopback-net --socket {sock}"
export VIREO_LAB_OUT=${VIREO_LAB_OUT:-$(mktemp -d /tmp/vireo-vmm.XXXXXX)}
exec "$repo/Tests/lab/guest-suite.sh" "$@"
