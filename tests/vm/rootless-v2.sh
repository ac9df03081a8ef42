#!/bin/sh
# Rootless pyrunc with a delegated cgroup v2 subtree, inside the `--systemd` QEMU guest.
# usage (from the repo): tests/vm/run-in-vm --systemd --timeout 600 -- 'sh tests/vm/rootless-v2.sh REPO'
# Driven by tests/integration/test_rootless_v2_lane.py. The guest's writes vanish at power-off, so
# the user, its linger and its files need no clean-up. Prints "check NAME: VALUE" lines and, last,
# "rootless-v2: ok"; any failure exits non-zero with the failing step.
set -eu
repo=${1:?usage: rootless-v2.sh REPO}
P=$repo/.venv/bin/pyrunc
# A clone in a private directory (mktemp -d is 0700): let the user traverse to it. The guest's
# writes vanish at power-off, so the host's modes are untouched.
d=$repo
while [ "$d" != / ]; do chmod o+x "$d"; d=$(dirname "$d"); done
name=pyrlv2
useradd --create-home --shell /bin/sh "$name"
uid=$(id -u "$name")
# Lingering starts user@UID.service: the user's systemd, which owns (is delegated) its subtree.
loginctl enable-linger "$name"
i=0
until [ -S "/run/user/$uid/bus" ]; do
  i=$((i + 1)); [ $i -lt 120 ] || { echo "no user bus for $name" >&2; exit 1; }; sleep 0.5
done
home=$(getent passwd "$name" | cut -d: -f6)
b=$home/bundle
mkdir -p "$b/rootfs/bin"
cp /bin/busybox "$b/rootfs/bin/"
for a in sh cat sleep id; do ln -s busybox "$b/rootfs/bin/$a"; done
chown -R "$name:" "$b"

cat >"$home/inside.sh" <<EOF
set -eu
cd $b
runc spec --rootless
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "1000"]
c["linux"]["resources"] = {"memory": {"limit": 67108864}, "pids": {"limit": 77}}
json.dump(c, open("config.json", "w"))
PY
echo "check scope: \$(cat /proc/self/cgroup)"
$P run -d v2c
pid=\$($P state v2c | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
cg=/sys/fs/cgroup\$(sed -n 's/^0:://p' /proc/\$pid/cgroup)
echo "check cgroup: \$cg"
echo "check memory.max: \$(cat \$cg/memory.max)"
echo "check pids.max: \$(cat \$cg/pids.max)"
$P exec v2c cat /proc/self/cgroup >/dev/null
$P pause v2c
echo "check paused: \$($P state v2c | sed -n 's/.*"status": "\([a-z]*\)".*/\1/p')"
$P resume v2c
echo "check resumed: \$($P state v2c | sed -n 's/.*"status": "\([a-z]*\)".*/\1/p')"
echo "check ps: \$($P ps v2c | tail -n +2 | wc -l)"
$P delete --force v2c
[ ! -e "\$cg" ] && echo "check removed: yes" || echo "check removed: no"
EOF
chown "$name:" "$home/inside.sh"
su "$name" -c "XDG_RUNTIME_DIR=/run/user/$uid DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$uid/bus \
  systemd-run --user --scope --quiet -p Delegate=yes sh $home/inside.sh"
# Outside the delegated subtree (su's session scope belongs to root): no cgroup, so limits are
# refused by name and a config without them still runs.
cat >"$home/outside.sh" <<EOF
cd $b
echo "check session: \$(cat /proc/self/cgroup)"
$P run v2n >/dev/null 2>\$HOME/err.txt; echo "check limited rc: \$?"
echo "check limited error: \$(grep -v level=warning \$HOME/err.txt)"
echo "check limited state: \$(ls /run/user/$uid/pyrunc)"
python3 - <<'PY'
import json
c = json.load(open("config.json"))
del c["linux"]["resources"]
c["process"]["args"] = ["id", "-u"]
json.dump(c, open("config.json", "w"))
PY
echo "check unlimited: \$($P run v2u 2>/dev/null)"
EOF
chown "$name:" "$home/outside.sh"
su "$name" -c "XDG_RUNTIME_DIR=/run/user/$uid sh $home/outside.sh"
echo "rootless-v2: ok"
