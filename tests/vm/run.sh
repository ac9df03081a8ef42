#!/bin/sh
# Run the cgroup v2 lane inside a throw-away pure-v2 QEMU guest.
# usage: tests/vm/run.sh [extra pytest args...]   (needs root; ~10 s boot, emulated; the lane takes 2-4 min)
# VM_TESTS overrides which tests run (default: tests/vm and the eBPF device filter unit tests).
# The guest is emulated (TCG; nested KVM fails on these VMs); RUN_IN_VM_ACCEL=kvm opts in.
# The guest runner is tests/vm/run-in-vm (our copy of the team tool, so make test needs no ../shared).
# VM_ARGS passes options to it: VM_ARGS=--selinux boots the SELinux guest (test_vm_lane.py does).
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
runner="$here/tests/vm/run-in-vm"
[ -x "$runner" ] || runner="$here/../shared/vmtest/run-in-vm"
tests=${VM_TESTS:-"tests/vm tests/unit/test_devices_bpf.py"}
# shellcheck disable=SC2086  # $tests and $VM_ARGS are lists
exec "$runner" ${VM_ARGS:-} --timeout "${VM_TIMEOUT:-780}" --cwd "$here" -- \
  "$here/.venv/bin/python" -m pytest -q -p no:cacheprovider $tests "$@"
