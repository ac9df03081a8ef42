"""`tmpcopyup` (runc's mount extension, used by podman and CRI-O): pyrunc and runc side by side.

A tmpfs with this option starts with the content of the directory it covers. Each test seeds
that directory in the image, runs the same bundle under both runtimes and expects the same
listing from inside; what pyrunc copies beyond runc (FIFOs, device nodes and xattrs, on which
runc fails or which it drops) is checked on pyrunc alone.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import mounts_snapshot

LISTING = ("cd /srv/seed && find . | sort | while read f; do stat -c '%n %a %u %g %F' $f; done; "
           "for l in rel abs out; do readlink $l; done; cat rel sub/deeper/f; stat -c 'root %a %u' .; "
           "awk '$5 == \"/srv/seed\" {print $6}' /proc/self/mountinfo")


def seed(rootfs, name: str = "seed"):
    """/srv/<name> in the image: owners, modes (setuid, 0700), nesting and three kinds of symlink."""
    d = rootfs / "srv" / name
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / "keep").write_text("seeded\n")
    os.chown(d / "keep", 1000, 1000)
    os.chmod(d / "keep", 0o640)
    (d / "suid").write_text("#!/bin/sh\n")
    os.chmod(d / "suid", 0o4755)
    (d / "sub" / "deeper" / "f").write_text("deep\n")
    for p in (d / "sub", d / "sub" / "deeper", d / "sub" / "deeper" / "f"):
        os.chown(p, 1001, 1001)
    os.chmod(d / "sub", 0o700)
    os.symlink("keep", d / "rel")
    os.symlink("/etc/hostname", d / "abs")
    os.symlink("../../../../../etc/shadow", d / "out")
    os.chown(d, 1000, 1000)
    os.chmod(d, 0o751)
    return d


def probe(rt, bundle, script: str, cid: str = "t1") -> str:
    bundle.config["process"]["args"] = ["sh", "-c", script]
    caps = bundle.config["process"]["capabilities"]
    for k in caps:  # root may read the 0640/0700 entries it lists
        caps[k] = sorted(set(caps[k]) | {"CAP_DAC_OVERRIDE"})
    p = rt("run", cid, bundle=bundle)
    assert p.returncode == 0, f"{rt.name}: {p.stderr}"
    return p.stdout


def tmpfs(dest: str, *options: str) -> dict:
    return {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", *options]}


def test_copy_matches_runc(runtime, bundle):
    """Content, owners, modes (setuid kept), nesting, symlinks as symlinks, the directory's mode
    on the tmpfs root; the same under both runtimes."""
    image = seed(bundle.rootfs)
    bundle.config["mounts"].append(tmpfs("/srv/seed", "nosuid", "size=10m"))
    out = probe(runtime, bundle, LISTING)
    assert out.splitlines() == [
        ". 751 0 0 directory",
        "./abs 777 0 0 symbolic link",
        "./keep 640 1000 1000 regular file",
        "./out 777 0 0 symbolic link",
        "./rel 777 0 0 symbolic link",
        "./sub 700 1001 1001 directory",
        "./sub/deeper 755 1001 1001 directory",
        "./sub/deeper/f 644 1001 1001 regular file",
        "./suid 4755 0 0 regular file",
        "keep", "/etc/hostname", "../../../../../etc/shadow",
        "seeded", "deep",
        "root 751 0",
        "rw,nosuid,relatime",
    ]
    assert sorted(os.listdir(image)) == ["abs", "keep", "out", "rel", "sub", "suid"]


def test_writes_go_to_the_tmpfs_not_the_image(runtime, bundle):
    image = seed(bundle.rootfs)
    bundle.config["mounts"].append(tmpfs("/srv/seed"))
    out = probe(runtime, bundle, "echo changed > /srv/seed/keep; touch /srv/seed/new; cat /srv/seed/keep")
    assert out == "changed\n"
    assert (image / "keep").read_text() == "seeded\n" and not (image / "new").exists()


def test_read_only_missing_and_nested(runtime, bundle):
    """`ro` after the copy (a read-only mount over a writable tmpfs, as runc leaves it); a missing
    directory is created and the tmpfs keeps its own mode; a copy-up inside a copy-up."""
    seed(bundle.rootfs)
    bundle.config["mounts"] += [tmpfs("/srv/seed", "ro", "size=10m"), tmpfs("/srv/new"),
                                tmpfs("/srv/seed/sub", "mode=700")]
    out = probe(runtime, bundle,
                "cat /srv/seed/keep; ls /srv/seed/sub/deeper; touch /srv/seed/x 2>/dev/null || echo ro; "
                "stat -c '%a' /srv/new /srv/seed/sub; "
                "awk '$5 ~ \"^/srv/\" {print $5, $6, $NF}' /proc/self/mountinfo")
    # A tmpfs without mode= over a directory of the image takes its mode (0751) in the mount's
    # data under runc 1.5.1 and pyrunc; runc 1.1.5 leaves it to the copy-up.
    seed_data = "rw,size=10240k" if runtime.name == "runc" else "rw,size=10240k,mode=751"
    assert out.splitlines() == ["seeded", "f", "ro", "1777", "700",
                                f"/srv/seed ro,relatime {seed_data}",
                                "/srv/new rw,relatime rw",
                                "/srv/seed/sub rw,relatime rw,mode=700"]


def test_never_follows_a_symlink_out(runtime, bundle, tmp_path):
    """A destination that is a symlink aimed at the host resolves inside the rootfs, and a symlink
    in the copied directory aimed at a host file is copied as a link: the file is never read."""
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "secret").write_text("host secret\n")
    d = bundle.rootfs / "srv" / "seed"
    d.mkdir(parents=True)
    os.symlink(str(host / "secret"), d / "leak")
    os.symlink("../" * 20 + str(host).lstrip("/"), bundle.rootfs / "srv" / "link")
    before = mounts_snapshot(str(tmp_path))
    bundle.config["mounts"] += [tmpfs("/srv/seed"), tmpfs("/srv/link")]
    out = probe(runtime, bundle, "readlink /srv/seed/leak; cat /srv/seed/leak 2>/dev/null || echo unreadable; "
                                 "ls -a /srv/link | wc -l")
    assert out.splitlines() == [str(host / "secret"), "unreadable", "2"]
    assert sorted(os.listdir(host)) == ["secret"] and (host / "secret").read_text() == "host secret\n"
    assert mounts_snapshot(str(tmp_path)) == before


def test_tmpfs_too_small_fails_cleanly(runtime, bundle):
    """A copy that does not fit is an error at create (ENOSPC), and nothing is left behind."""
    d = bundle.rootfs / "srv" / "seed"
    d.mkdir(parents=True)
    (d / "big").write_bytes(os.urandom(256 * 1024))
    bundle.config["mounts"].append(tmpfs("/srv/seed", "size=64k"))
    bundle.config["process"]["args"] = ["true"]
    p = runtime("create", "t2", bundle=bundle)
    assert p.returncode == 1
    assert not (runtime.root / "t2").exists()
    if runtime.name == "pyrunc":
        assert p.stderr.strip().splitlines() == [
            "container t2: create: mount: tmpcopyup /srv/seed: copy /big: No space left on device"]


def test_fifos_devices_and_xattrs_are_kept(pyrunc, bundle):
    """Beyond runc (which fails on a FIFO or a device node and drops xattrs): all three copied."""
    d = bundle.rootfs / "srv" / "seed"
    d.mkdir(parents=True)
    os.mkfifo(d / "fifo")
    os.mknod(d / "null", 0o020666, os.makedev(1, 3))
    (d / "f").write_text("x")
    try:
        os.setxattr(d / "f", "user.pyrunc", b"kept")
    except OSError:
        pytest.skip("the bundle's filesystem takes no user.* xattrs")
    bundle.config["mounts"].append(tmpfs("/srv/seed"))
    bundle.config["process"]["args"] = ["sleep", "100"]
    pyrunc("run", "-d", "t3", bundle=bundle, check=True)
    pid = pyrunc.state("t3")["pid"]
    inside = f"/proc/{pid}/root/srv/seed"
    assert os.getxattr(f"{inside}/f", "user.pyrunc") == b"kept"
    p = pyrunc("exec", "t3", "sh", "-c", "stat -c '%n %F %t:%T' /srv/seed/fifo /srv/seed/null; "
                                         "awk '$5 == \"/srv/seed\" {print $9}' /proc/self/mountinfo")
    assert p.stdout.splitlines() == ["/srv/seed/fifo fifo 0:0", "/srv/seed/null character special file 1:3",
                                     "tmpfs"]

