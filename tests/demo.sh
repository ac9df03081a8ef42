#!/bin/bash
# Build a busybox bundle in $1 and run it with pyrunc: what `make demo` shows.
set -euo pipefail
dir=${1:-build/demo}
here=$(cd "$(dirname "$0")/.." && pwd)
pyrunc="$here/.venv/bin/pyrunc"
rm -rf "$dir"; mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc"
cp "$(command -v busybox)" "$dir/rootfs/bin/busybox"
for applet in $(busybox --list); do [ "$applet" = busybox ] || ln -s busybox "$dir/rootfs/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir/rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$dir/rootfs/etc/group"
cd "$dir"
"$pyrunc" spec
jq '.process.terminal = false
  | .process.args = ["sh", "-c", "echo \"hello from pyrunc: $(hostname), pid $$, uid $(id -u)\"; echo mounts: $(cut -d\" \" -f2 /proc/mounts | tr \"\\n\" \" \"); echo caps: $(grep CapEff /proc/self/status)"]' \
  config.json > config.json.new && mv config.json.new config.json
echo "+ pyrunc run demo-$$"
"$pyrunc" run "demo-$$"
echo "+ exit status $?"
