"""The images the CRI lane imports: one busybox layer, one config per name, one OCI archive.

No registry is reachable here, so every image the lane and critest ask for is
a local stand-in built from busybox-static. Unlike the e2e image
(tests/e2e/images.sh) the applets are hard links, not symlinks: critest masks
``/bin/ls`` style paths, and masking a symlink masks busybox itself. Debian's
busybox lacks ``pgrep`` and ``ipcs``, which critest runs inside containers, so
small shell stand-ins reading /proc take their place.

Everything is deterministic (fixed mtimes, owners, order), so a rebuild gives
the same digests and a re-import is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

BUSYBOX = shutil.which("busybox") or "/bin/busybox"

#: The pod sandbox ("pause") image named by the CRI config's sandbox_image.
PAUSE = "localhost/pyrunc-cri-pause:1"
#: The image the lane's own containers run.
BUSYBOX_IMAGE = "localhost/pyrunc-cri-busybox:1"
_SH = {"Cmd": ["sh"]}
# nginx/httpd stand-in: a web server in the background, a pid file and a "master process" in its
# command line (critest's HostPID/ContainerPID specs look for both), a line on stdout and stderr
# (its log specs wait for output), and an exit on SIGTERM.
_WEB = {"Entrypoint": ["sh", "-c", "echo $$ >/var/run/nginx.pid; echo web stand-in up; echo web stand-in up >&2; "
                                   "httpd -p 80 -h /www; trap 'exit 0' TERM; while :; do sleep 1; done",
                       "nginx: master process"], "ExposedPorts": {"80/tcp": {}}}
#: name -> image config overrides. The critest names are stand-ins for the images critest 1.26 asks for.
IMAGES: dict[str, dict] = {
    PAUSE: {"Entrypoint": ["/bin/sleep", "inf"]},
    BUSYBOX_IMAGE: _SH,
    "registry.k8s.io/e2e-test-images/busybox:1.29-2": _SH,
    "registry.k8s.io/e2e-test-images/nginx:1.14-2": _WEB,
    "registry.k8s.io/e2e-test-images/httpd:2.4.39-4": _WEB,
    # critest expects "Effective uid: 0" from a setuid-root program run as uid 1000 (no_new_privs
    # off) and "Effective uid: 1000" with no_new_privs on.
    "registry.k8s.io/e2e-test-images/nonewprivs:1.3": {
        "Entrypoint": ["/usr/local/bin/busybox-suid", "sh", "-c", 'echo "Effective uid: $(id -u)"']},
    "gcr.io/k8s-staging-cri-tools/test-image-predefined-group:latest": {**_SH, "User": "1000"},
}

PGREP = """#!/bin/sh
# pgrep stand-in (Debian's busybox has none): pids whose command name matches $1
[ $# -ge 1 ] || exit 2
pat=$1; found=1
for d in /proc/[0-9]*; do
    comm=$(cat "$d/comm" 2>/dev/null) || continue
    case "$comm" in *$pat*) echo "${d#/proc/}"; found=0 ;; esac
done
exit $found
"""

IPCS = """#!/bin/sh
# ipcs stand-in (Debian's busybox has none): System V segments as /proc/sysvipc lists them
echo "------ Shared Memory Segments --------"
tail -n +2 /proc/sysvipc/shm 2>/dev/null
echo "------ Semaphore Arrays --------"
tail -n +2 /proc/sysvipc/sem 2>/dev/null
echo "------ Message Queues --------"
tail -n +2 /proc/sysvipc/msg 2>/dev/null
exit 0
"""


def build_rootfs(dest: Path) -> Path:
    """busybox with hard-linked applets, the stand-ins, users and the usual mount points."""
    for d in ("bin", "etc", "dev", "proc", "sys", "run", "root", "home", "var/tmp", "usr/local/bin", "www", "var/run"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    (dest / "tmp").mkdir(mode=0o1777, exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    os.chmod(dest / "var/tmp", 0o1777)
    bb = dest / "bin" / "busybox"
    shutil.copyfile(BUSYBOX, bb)
    os.chmod(bb, 0o755)
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in applets:
        if name != "busybox":
            os.link(bb, dest / "bin" / name)
    for name, text in (("pgrep", PGREP), ("ipcs", IPCS)):
        (dest / "bin" / name).write_text(text)
        os.chmod(dest / "bin" / name, 0o755)
    suid = dest / "usr/local/bin/busybox-suid"
    shutil.copyfile(BUSYBOX, suid)
    os.chmod(suid, 0o4755)
    os.symlink("bin", dest / "sbin")
    os.symlink("../bin", dest / "usr/bin")
    os.symlink("../bin", dest / "usr/sbin")
    (dest / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home:/bin/sh\n"
                                     "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (dest / "etc/group").write_text("root:x:0:\nuser:x:1000:\ngroup50000:x:50000:user\nnobody:x:65534:\n")
    (dest / "www/index.html").write_text("pyrunc\n")
    return dest


def _blob(blobs: Path, data: bytes) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (blobs / digest.split(":")[1]).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def _dumps(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build_archive(work: Path) -> Path:
    """Build the rootfs, its layer and every image of ``IMAGES`` into one OCI archive; return it."""
    rootfs = build_rootfs(work / "rootfs")
    subprocess.run(["find", str(rootfs), "-exec", "touch", "-h", "-d", "@0", "{}", "+"], check=True)
    layer_tar = work / "layer.tar"
    subprocess.run(["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner",
                    "--format=posix", "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
                    "-C", str(rootfs), "-cf", str(layer_tar), "."], check=True)
    oci = work / "oci"
    blobs = oci / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layer = _blob(blobs, layer_tar.read_bytes())
    manifests = []
    for name, overrides in IMAGES.items():
        config = {"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
                  "config": {"Env": ["PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "WorkingDir": "/",
                             **overrides},
                  "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}
        cfg = _blob(blobs, _dumps(config))
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}]}
        man = _blob(blobs, _dumps(manifest))
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", **man,
                          "platform": {"architecture": "amd64", "os": "linux"},
                          "annotations": {"io.containerd.image.name": name,
                                          "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]}})
    (oci / "index.json").write_bytes(_dumps({"schemaVersion": 2, "manifests": manifests}))
    (oci / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    archive = work / "images.oci.tar"
    subprocess.run(["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner",
                    "-C", str(oci), "-cf", str(archive), "oci-layout", "index.json", "blobs"], check=True)
    shutil.rmtree(rootfs)
    return archive
