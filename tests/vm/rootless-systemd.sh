#!/bin/sh
# Rootless --systemd-cgroup through the user's own systemd, pyrunc beside runc 1.5.1, inside the
# `--systemd` QEMU guest. usage: run-in-vm --systemd -- 'sh tests/vm/rootless-systemd.sh REPO RUNC151'
# Driven by tests/integration/test_rootless_systemd_lane.py. For each runtime prints
# "check RUNTIME NAME: VALUE" lines, last "rootless-systemd: ok". The guest's writes (the user, its
# linger, its files) vanish at power-off.
set -eu
repo=${1:?usage: rootless-systemd.sh REPO RUNC151}
runc151=${2:?usage: rootless-systemd.sh REPO RUNC151}
d=$repo
while [ "$d" != / ]; do chmod o+x "$d"; d=$(dirname "$d"); done
name=pyrlsd
useradd --create-home --shell /bin/sh "$name"
uid=$(id -u "$name")
loginctl enable-linger "$name" 2>/dev/null || systemctl start "user@$uid.service"
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
set -u
cd $b
$runc151 spec --rootless
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "1000"]
c["linux"]["resources"] = {"memory": {"limit": 67108864}, "pids": {"limit": 77}}
c["annotations"] = {"org.systemd.property.CollectMode": "'inactive-or-failed'"}
json.dump(c, open("config.json", "w"))
# As rootless podman runs a container: the runtime is root in a user namespace the caller made,
# and the config asks for no user namespace of its own.
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "user"]
for k in ("uidMappings", "gidMappings"):
    c["linux"].pop(k, None)
c["root"]["path"] = "$b/rootfs"
import os
os.makedirs("$home/inns", exist_ok=True)
json.dump(c, open("$home/inns/config.json", "w"))
PY
show() { systemctl --user show "\$1" -p "\$2" --value; }
for rt in pyrunc:$repo/.venv/bin/pyrunc runc-1.5.1:$runc151; do
  n=\${rt%%:*}; P=\${rt#*:}; R="--root /run/user/$uid/\$n"
  \$P \$R --systemd-cgroup run -d sd1 </dev/null >/dev/null 2>\$HOME/err.txt; echo "check \$n run: \$? \$(tr '\n' ' ' <\$HOME/err.txt)"
  pid=\$(\$P \$R state sd1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
  cg=/sys/fs/cgroup\$(sed -n 's/^0:://p' /proc/\$pid/cgroup)
  echo "check \$n cgroup: \$cg"
  echo "check \$n unit cgroup: \$(show runc-sd1.scope ControlGroup)"
  echo "check \$n slice: \$(show runc-sd1.scope Slice)"
  echo "check \$n memory: \$(show runc-sd1.scope MemoryMax) \$(cat \$cg/memory.max)"
  echo "check \$n tasks: \$(show runc-sd1.scope TasksMax) \$(cat \$cg/pids.max)"
  echo "check \$n collect: \$(show runc-sd1.scope CollectMode)"
  echo "check \$n reload: \$(show runc-sd1.scope NeedDaemonReload)"
  \$P \$R --systemd-cgroup update --memory 33554432 sd1 2>&1; echo "check \$n update: \$(show runc-sd1.scope MemoryMax) \$(cat \$cg/memory.max)"
  \$P \$R --systemd-cgroup exec sd1 cat /proc/self/cgroup >/dev/null 2>&1; echo "check \$n exec: \$?"
  \$P \$R --systemd-cgroup pause sd1; echo "check \$n paused: \$(\$P \$R state sd1 | sed -n 's/.*"status": "\([a-z]*\)".*/\1/p')"
  \$P \$R --systemd-cgroup resume sd1
  echo "check \$n stats pids: \$(\$P \$R --systemd-cgroup events --stats sd1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["pids"])')"
  \$P \$R --systemd-cgroup delete --force sd1; echo "check \$n delete: \$?"
  echo "check \$n unit after: \$(show runc-sd1.scope LoadState)"
  [ ! -e "\$cg" ] && echo "check \$n removed: yes" || echo "check \$n removed: no"
  # No session bus address in the environment: both find \$XDG_RUNTIME_DIR/bus themselves.
  env -u DBUS_SESSION_BUS_ADDRESS \$P \$R --systemd-cgroup run -d sd2 </dev/null >/dev/null 2>\$HOME/err.txt; echo "check \$n nobusenv: \$? \$(tr '\n' ' ' <\$HOME/err.txt)"
  \$P \$R --systemd-cgroup delete --force sd2 2>/dev/null
  # No user manager to be found at all: one line, nothing left.
  mkdir -p \$HOME/norun
  XDG_RUNTIME_DIR=\$HOME/norun env -u DBUS_SESSION_BUS_ADDRESS \$P \$R --systemd-cgroup run -d sd3 </dev/null >/dev/null 2>\$HOME/err.txt
  echo "check \$n nobus: \$? \$(grep -vc level=warning \$HOME/err.txt) \$(tr '\n' ' ' <\$HOME/err.txt)"
  echo "check \$n nobus left: \$(\$P \$R list -q | tr '\n' ' ')"
  # Root in a user namespace (unshare -r, as rootless podman calls the runtime): systemd sees
  # the user's uid on the socket, not 0.
  unshare --user --map-root-user sh -c "\$P \$R --systemd-cgroup run -d --bundle $home/inns sd4 </dev/null >/dev/null 2>\$HOME/err.txt; echo \"check \$n userns run: \\\$? \\\$(tr '\n' ' ' <\$HOME/err.txt)\"
    echo \"check \$n userns id: \\\$(id -u)\"
    \$P \$R --systemd-cgroup exec sd4 cat /proc/self/cgroup >/dev/null 2>&1; echo \"check \$n userns exec: \\\$?\""
  echo "check \$n userns unit cgroup: \$(show runc-sd4.scope ControlGroup)"
  echo "check \$n userns memory: \$(show runc-sd4.scope MemoryMax)"
  unshare --user --map-root-user sh -c "\$P \$R --systemd-cgroup delete --force sd4 2>&1; echo \"check \$n userns delete: \\\$?\""
  echo "check \$n userns unit after: \$(show runc-sd4.scope LoadState)"
  # The same with neither XDG_RUNTIME_DIR nor a bus address set: /run/user/<the user's uid>.
  unshare --user --map-root-user env -u XDG_RUNTIME_DIR -u DBUS_SESSION_BUS_ADDRESS sh -c "\$P \$R --systemd-cgroup run -d --bundle $home/inns sd5 </dev/null >/dev/null 2>\$HOME/err.txt; echo \"check \$n userns noenv: \\\$? \\\$(tr '\n' ' ' <\$HOME/err.txt)\"
    \$P \$R --systemd-cgroup delete --force sd5 2>/dev/null"
done
EOF
chown "$name:" "$home/inside.sh"
# The runtimes run in a scope of the user's own manager (as in a login session): systemd --user may
# only move the container's init out of a cgroup the user owns.
su "$name" -c "XDG_RUNTIME_DIR=/run/user/$uid DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$uid/bus \
  systemd-run --user --scope --quiet sh $home/inside.sh"
echo "rootless-systemd: ok"
