"""Read-only bind mounts as the runtime spec and the CRI mean them, side by side with runc 1.5.1.

``ro`` makes the mount itself read-only: a mount below the bind source (carried along by
``rbind``) keeps its own flags. ``rro`` makes the whole tree read-only (mount_setattr with
AT_RECURSIVE). Kubernetes depends on the difference: containerd passes a hostPath volume as
``["rbind", "rprivate", "ro"]`` and asks for recursive read-only separately (critest 1.36,
"should support non-recursive readonly mounts" and its recursive twin).

Each case runs the same bundle under pyrunc, runc 1.5.1 (../shared/oracle, skipped where absent)
and Debian's runc 1.1.5, and asserts the same explicit outcome for all three: the host has a
tmpfs mounted below the bind source, the container tries to write to the bind and to the
tmpfs below it and reads its own mountinfo.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.oracles import BINARIES, runtime_named

pytestmark = pytest.mark.root


@pytest.fixture(params=list(BINARIES))
def rt(request, tmp_path):
    """pyrunc and the two runcs, each with a private --root."""
    yield from runtime_named(request.param, tmp_path)


@pytest.fixture
def source_with_submount(tmp_path):
    """A bind source directory with a tmpfs mounted on its ``sub`` directory (on the host)."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "f").write_text("top\n")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=755", "i25-sub", str(src / "sub")],
                   check=True, capture_output=True)
    try:
        (src / "sub" / "g").write_text("below\n")
        yield src
    finally:
        subprocess.run(["umount", "-l", str(src / "sub")], capture_output=True)


PROBE = (
    "for p in /data /data/sub; do touch $p/new 2>/dev/null && echo \"$p rw\" || echo \"$p ro\"; done; "
    "awk '$5 == \"/data\" || $5 == \"/data/sub\" {print \"opts\", $5, $6}' /proc/self/mountinfo"
)


def probe(rt, bundle, options: list[str]) -> dict[str, tuple[str, str]]:
    """{path: (write outcome, mount options' rw/ro)} for /data and /data/sub in the container."""
    bundle.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(bundle.path.parent / "src"),
                                    "options": options})
    bundle.config["process"]["args"] = ["sh", "-c", PROBE]
    p = rt("run", "ro1", bundle=bundle)
    assert p.returncode == 0, f"{rt.name}: {p.stderr}"
    wrote: dict[str, str] = {}
    flags: dict[str, str] = {}
    for line in p.stdout.splitlines():
        f = line.split()
        if f[0] == "opts":
            flags[f[1]] = "ro" if "ro" in f[2].split(",") else "rw"
        else:
            wrote[f[0]] = f[1]
    return {path: (wrote.get(path, "?"), flags.get(path, "absent")) for path in ("/data", "/data/sub")}


# options -> (/data, /data/sub) as (write outcome, mountinfo flag); "absent": not mounted there
CASES = {
    "rbind-ro": (["rbind", "ro"], {"/data": ("ro", "ro"), "/data/sub": ("rw", "rw")}),
    "cri-hostpath-ro": (["rbind", "rprivate", "ro"], {"/data": ("ro", "ro"), "/data/sub": ("rw", "rw")}),
    "rbind-rro": (["rbind", "rro"], {"/data": ("ro", "ro"), "/data/sub": ("ro", "ro")}),
    "cri-recursive-ro": (["rbind", "rprivate", "ro", "rro"], {"/data": ("ro", "ro"), "/data/sub": ("ro", "ro")}),
    "bind-ro": (["bind", "ro"], {"/data": ("ro", "ro"), "/data/sub": ("ro", "absent")}),
}
#: runc 1.1.5 has rro (1.1.0) but no AT_RECURSIVE on a plain bind: same expectations.


@pytest.mark.parametrize("case", list(CASES))
def test_ro_is_the_mount_rro_is_the_tree(rt, bundle, source_with_submount, case):
    """``ro`` leaves a submount of an rbind source as it is; ``rro`` makes it read-only too."""
    options, expect = CASES[case]
    assert source_with_submount == bundle.path.parent / "src"
    got = probe(rt, bundle, options)
    assert got == expect, f"{rt.name} with {options}: {got}"
    assert not (source_with_submount / "new").exists()
    wrote_below = (source_with_submount / "sub" / "new").exists()
    assert wrote_below == (expect["/data/sub"][0] == "rw")
