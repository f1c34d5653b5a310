#!/usr/bin/env bash
# Usage (inside the lab, one boot for everything):
#   deploy/lab/lab run --timeout 3600 -- Tests/lab/guest-suite.sh [NAME...]
#
# Runs the vhost-user harness scripts one after another and prints a summary
# (exit status and seconds per script). NAMEs select a subset: blk,
# blk-kill-restart, blk-kill-restart-packed, net, virtio-user (default: all). Backends come from
# VIREO_BLK_BACKEND / VIREO_NET_BACKEND as in each script. Exit 0 only if
# every selected script exited 0.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
declare -A cmd=(
    [blk]="$here/vhost-user-blk-guest.sh"
    [blk-kill-restart]="$here/vhost-user-blk-guest.sh --kill-restart"
    [blk-kill-restart-packed]="env VIREO_BLK_PACKED=1 $here/vhost-user-blk-guest.sh --kill-restart"
    [net]="$here/vhost-user-net-guest.sh"
    [virtio-user]="$here/dpdk-virtio-user.sh"
)
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(blk blk-kill-restart blk-kill-restart-packed net virtio-user)
for n in "${names[@]}"; do
    [[ -n ${cmd[$n]:-} ]] || { echo "guest-suite: unknown test $n (${!cmd[*]})" >&2; exit 2; }
done

summary=() fail=0
for n in "${names[@]}"; do
    echo "======== $n: ${cmd[$n]}"
    s=$SECONDS rc=0
    ${cmd[$n]} || rc=$?
    summary+=("$(printf '%-18s exit %-3s %4ss' "$n" "$rc" "$((SECONDS - s))")")
    [[ $rc == 0 ]] || fail=1
done
echo "======== summary"
printf '  %s\n' "${summary[@]}"
exit "$fail"
