"""The busybox root filesystem every test, conformance scenario and demo runs.

One builder, so the suites agree on what a container sees: busybox-static
with relative applet links (absolute ones would point at the host's busybox),
passwd and group with root and nobody, and the usual empty mount points.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
MOUNT_POINTS = ("bin", "etc", "proc", "sys", "dev", "tmp", "root")


def build_rootfs(dest: Path, extra_dirs: tuple[str, ...] = ()) -> Path:
    for d in MOUNT_POINTS + extra_dirs:
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout
    for name in applets.split():
        if name != "busybox" and not (dest / "bin" / name).exists():
            os.symlink("busybox", dest / "bin" / name)
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (dest / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
    (dest / "etc" / "hostname").write_text("rootfs\n")
    return dest
