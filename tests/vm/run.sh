#!/bin/sh
# Run the cgroup v2 tests (tests/vm) inside a throw-away pure-v2 QEMU guest.
# usage: tests/vm/run.sh [pytest args...]   (needs root; ~10 s boot)
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
exec "$here/../shared/vmtest/run-in-vm" --cwd "$here" -- \
  "$here/.venv/bin/python" -m pytest -q -p no:cacheprovider tests/vm "$@"
