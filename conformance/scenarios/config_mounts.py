"""config.md mounts: order, destinations, bind sources, and every Linux mount option we can observe."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..harness import Ctx, Fail, add, parse_mountinfo, scenario
from .common import host_mount, mount_at

MNT = "config.md#mounts"
OPT = "config.md#linux-mount-options"
POSIX = "config.md#posix-platform-mounts"
T = "/mnt/t"


@scenario("mounts-listed-order", MNT, "MUST")
def _(ctx: Ctx) -> None:
    """The runtime MUST mount entries in the listed order: the later of two mounts on one point is on top."""
    ctx.add_mount(T, "tmpfs", "tmpfs", ["size=1m"])
    ctx.add_mount(T, "tmpfs", "tmpfs", ["size=2m"])
    hits = mount_at(ctx, T)
    sizes = [next((o for o in m["super"] if o.startswith("size=")), "") for m in hits]
    ctx.check(sizes == ["size=1024k", "size=2048k"], f"mount order at {T}: {sizes}")


@scenario("mounts-nested-order", MNT, "MUST")
def _(ctx: Ctx) -> None:
    """Entries are mounted in order, so a mount nested in an earlier one is visible on top of it."""
    ctx.add_mount("/mnt/a", "tmpfs", "tmpfs", ["size=1m"])
    ctx.add_mount("/mnt/a/b", "tmpfs", "tmpfs", ["size=2m"])
    out = ctx.probe("cat /proc/self/mountinfo")
    points = [m["point"] for m in parse_mountinfo(out) if m["point"].startswith("/mnt/a")]
    ctx.check(points == ["/mnt/a", "/mnt/a/b"], f"mounts under /mnt/a: {points}")


@scenario("mounts-relative-destination", MNT, "MUST")
def _(ctx: Ctx) -> None:
    """A relative destination MUST be interpreted as relative to '/'."""
    ctx.add_mount("mnt/rel", "tmpfs", "tmpfs", ["size=1m"])
    hits = mount_at(ctx, "/mnt/rel")
    ctx.check(hits[0]["fstype"] == "tmpfs", f"/mnt/rel is {hits[0]['fstype']}")


@scenario("mounts-bind-source-relative-to-bundle", MNT, "MUST")
def _(ctx: Ctx) -> None:
    """A relative bind-mount source is relative to the bundle."""
    (ctx.bundle / "hostdata").mkdir()
    (ctx.bundle / "hostdata" / "f").write_text("from-bundle")
    ctx.add_mount("/data", "none", "hostdata", ["bind"])
    ctx.check(ctx.probe("cat /data/f") == "from-bundle", "bundle-relative bind source not used")


@scenario("mounts-bind-absolute-dir", MNT, "MUST")
def _(ctx: Ctx) -> None:
    """A bind mount ('bind' in options) of an absolute host directory shows the host's files, writable."""
    src = ctx.work / "src"
    src.mkdir()
    (src / "f").write_text("host")
    ctx.add_mount("/data", "none", str(src), ["bind"])
    ctx.check(ctx.probe("cat /data/f; echo new > /data/g") == "host", "bind source not visible")
    ctx.check((src / "g").read_text() == "new\n", "a write through the bind mount did not reach the host")


@scenario("mounts-bind-file", MNT, "MUST")
def _(ctx: Ctx) -> None:
    """A bind mount's source can be a file."""
    src = ctx.work / "file.txt"
    src.write_text("single-file")
    ctx.add_mount("/etc/bound.txt", "none", str(src), ["bind"])
    ctx.check(ctx.probe("cat /etc/bound.txt") == "single-file", "file bind mount not visible")


@scenario("mounts-bind-ro", MNT, "MUST")
def _(ctx: Ctx) -> None:
    """'bind' + 'ro' gives a read-only bind mount (the host data stays untouched)."""
    src = ctx.work / "src"
    src.mkdir()
    ctx.add_mount("/data", "none", str(src), ["bind", "ro"])
    out = ctx.probe("touch /data/x 2>/dev/null && echo rw || echo ro")
    ctx.check(out == "ro\n" and not (src / "x").exists(), f"bind mount is writable: {out!r}")


@scenario("mounts-rbind-recursive", OPT, "MUST")
def _(ctx: Ctx) -> None:
    """'rbind' is a recursive bind mount: a mount below the source is visible too ('bind' alone hides it)."""
    src = ctx.work / "src"
    host_mount(ctx, src / "sub")
    (src / "sub" / "f").write_text("submount")
    ctx.add_mount("/data", "none", str(src), ["rbind"])
    ctx.check(ctx.probe("cat /data/sub/f") == "submount", "submount not carried by rbind")


@scenario("mounts-bind-not-recursive", OPT, "MUST")
def _(ctx: Ctx) -> None:
    """'bind' (not rbind) does not carry the source's submounts."""
    src = ctx.work / "src"
    host_mount(ctx, src / "sub")
    (src / "sub" / "f").write_text("submount")
    ctx.add_mount("/data", "none", str(src), ["bind"])
    ctx.check(ctx.probe("ls /data/sub | wc -l").strip() == "0", "submount visible through a plain bind")


@scenario("mounts-unknown-fstype-errors", POSIX, "MUST")
def _(ctx: Ctx) -> None:
    """A mount type the kernel does not have cannot be applied: create MUST fail and create nothing."""
    ctx.add_mount("/mnt/x", "nosuchfs", "none", [])
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "filesystem type nosuchfs does not exist")


@scenario("mounts-bind-missing-source-errors", MNT, "MUST")
def _(ctx: Ctx) -> None:
    """A bind mount whose source does not exist cannot be applied: create MUST fail and create nothing."""
    ctx.add_mount("/data", "none", str(ctx.work / "missing"), ["bind"])
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "the bind source does not exist")


# -- one tmpfs, one option, one observation --------------------------------------------------------

Judge = Callable[[dict], str]  # mountinfo entry -> "" if fine, else why not


def has(flag: str, where: str = "opts") -> Judge:
    return lambda m: "" if flag in m[where] else f"{flag} missing from {sorted(m[where])}"


def lacks(*flags: str, where: str = "opts") -> Judge:
    return lambda m: "".join(f"{f} present in {sorted(m[where])}; " for f in flags if f in m[where])


def exists(m: dict) -> str:
    return "" if m["fstype"] == "tmpfs" else f"fstype {m['fstype']}"


SIMPLE: list[tuple[str, str, list[str], Judge]] = [
    # (option, level, options given, judge)
    ("ro", "MUST", ["ro"], has("ro")),
    ("rw", "MUST", ["ro", "rw"], has("rw")),
    ("nosuid", "MUST", ["nosuid"], has("nosuid")),
    ("suid", "MUST", ["nosuid", "suid"], lacks("nosuid")),
    ("nodev", "MUST", ["nodev"], has("nodev")),
    ("dev", "MUST", ["nodev", "dev"], lacks("nodev")),
    ("noexec", "MUST", ["noexec"], has("noexec")),
    ("exec", "MUST", ["noexec", "exec"], lacks("noexec")),
    ("noatime", "MUST", ["noatime"], has("noatime")),
    ("atime", "MUST", ["noatime", "atime"], lacks("noatime")),
    ("nodiratime", "MUST", ["nodiratime"], has("nodiratime")),
    ("diratime", "MUST", ["nodiratime", "diratime"], lacks("nodiratime")),
    ("relatime", "MUST", ["relatime"], lambda m: has("relatime")(m) + lacks("noatime")(m)),
    ("strictatime", "MUST", ["strictatime"], lacks("relatime", "noatime")),
    ("norelatime", "MUST", ["norelatime"], exists),
    ("nostrictatime", "MUST", ["strictatime", "nostrictatime"], has("relatime")),
    ("sync", "MUST", ["sync"], has("sync", "super")),
    ("async", "MUST", ["sync", "async"], lacks("sync", where="super")),
    ("dirsync", "MUST", ["dirsync"], has("dirsync", "super")),
    ("lazytime", "MUST", ["lazytime"], has("lazytime", "super")),
    ("nolazytime", "MUST", ["lazytime", "nolazytime"], lacks("lazytime", where="super")),
    ("defaults", "MUST", ["defaults"], lambda m: exists(m) + has("rw")(m)),
    ("loud", "MUST", ["loud"], exists),
    ("silent", "MUST", ["silent"], exists),
    ("iversion", "MUST", ["iversion"], exists),
    ("noiversion", "MUST", ["noiversion"], exists),
    ("nosymfollow", "SHOULD", ["nosymfollow"], has("nosymfollow")),
    ("symfollow", "SHOULD", ["nosymfollow", "symfollow"], lacks("nosymfollow")),
    ("nomand", "MAY", ["nomand"], exists),
    ("fs-specific-size", "SHOULD", ["size=3m"], has("size=3072k", "super")),
    ("fs-specific-mode", "SHOULD", ["mode=711"], has("mode=711", "super")),
]


def _simple(name: str, level: str, options: list[str], judge: Judge) -> None:
    def fn(ctx: Ctx) -> None:
        ctx.add_mount(T, "tmpfs", "tmpfs", options)
        m = mount_at(ctx, T)[-1]
        why = judge(m)
        if why:
            raise Fail(f"options {options}: {why}")

    what = ("unknown options are filesystem-specific data passed to mount(2)" if name.startswith("fs-")
            else f"mount option {name!r} has its mount(8) meaning")
    add(f"mount-opt-{name}", OPT, level, what, fn)


for _args in SIMPLE:
    _simple(*_args)


@scenario("mount-opt-remount", OPT, "MUST")
def _(ctx: Ctx) -> None:
    """'remount' changes the existing mount at the destination instead of stacking a new one."""
    ctx.add_mount(T, "tmpfs", "tmpfs", ["size=1m"])
    ctx.add_mount(T, "tmpfs", "tmpfs", ["remount", "ro"])
    hits = mount_at(ctx, T)
    ctx.check(len(hits) == 1 and "ro" in hits[0]["opts"], f"mounts at {T}: {[sorted(m['opts']) for m in hits]}")


@scenario("mount-opt-tmpcopyup", OPT, "MAY")
def _(ctx: Ctx) -> None:
    """'tmpcopyup' copies the directory's original contents up into the new tmpfs."""
    (ctx.rootfs / "srv" / "seed").mkdir(parents=True)
    (ctx.rootfs / "srv" / "seed" / "keep").write_text("seeded")
    ctx.add_mount("/srv/seed", "tmpfs", "tmpfs", ["tmpcopyup"])
    out = ctx.probe("cat /srv/seed/keep; echo; awk '$5 == \"/srv/seed\" {print \"mounted\"}' /proc/self/mountinfo")
    ctx.check(out.split() == ["seeded", "mounted"], f"tmpcopyup: {out!r}")


def _seed_copyup(ctx: Ctx) -> Path:
    """/srv/seed in the image with owners, modes (setuid, 0700) and symlinks (one aimed out)."""
    d = ctx.rootfs / "srv" / "seed"
    (d / "sub").mkdir(parents=True)
    (d / "keep").write_text("seeded")
    os.chown(d / "keep", 1000, 1000)
    os.chmod(d / "keep", 0o640)
    (d / "suid").write_text("#!/bin/sh\n")
    os.chmod(d / "suid", 0o4755)
    (d / "sub" / "f").write_text("deep")
    os.chown(d / "sub", 1001, 1001)
    os.chmod(d / "sub", 0o700)
    os.symlink("keep", d / "rel")
    os.symlink("../../../../../etc/shadow", d / "out")
    os.chmod(d, 0o751)
    return d


@scenario("mount-opt-tmpcopyup-metadata", OPT, "MAY")
def _(ctx: Ctx) -> None:
    """'tmpcopyup' keeps owners, modes (setuid too) and symlinks (as links), and puts the directory's mode on the tmpfs."""
    _seed_copyup(ctx)
    ctx.add_mount("/srv/seed", "tmpfs", "tmpfs", ["tmpcopyup"])
    out = ctx.probe("cd /srv/seed && for f in . keep suid sub rel out; do stat -c '%n %a %u %g %F' $f; done; "
                    "readlink rel; readlink out")
    want = [". 751 0 0 directory", "keep 640 1000 1000 regular file", "suid 4755 0 0 regular file",
            "sub 700 1001 1001 directory", "rel 777 0 0 symbolic link", "out 777 0 0 symbolic link",
            "keep", "../../../../../etc/shadow"]
    ctx.check(out.splitlines() == want, f"tmpcopyup metadata: {out!r}")


@scenario("mount-opt-tmpcopyup-private-copy", OPT, "MAY")
def _(ctx: Ctx) -> None:
    """Writes into a 'tmpcopyup' tmpfs stay in it: the image's directory is unchanged."""
    d = _seed_copyup(ctx)
    (d / "mine").write_text("seeded")
    ctx.add_mount("/srv/seed", "tmpfs", "tmpfs", ["tmpcopyup"])
    out = ctx.probe("cat /srv/seed/mine; echo; echo changed > /srv/seed/mine && touch /srv/seed/new && "
                    "cat /srv/seed/mine")
    ctx.check(out == "seeded\nchanged\n", f"write into the tmpfs: {out!r}")
    ctx.check((d / "mine").read_text() == "seeded" and not (d / "new").exists(), "the image directory changed")


@scenario("mount-opt-tmpcopyup-ro", OPT, "MAY")
def _(ctx: Ctx) -> None:
    """'tmpcopyup' with 'ro': the content is copied first, then the mount is read-only."""
    _seed_copyup(ctx)
    ctx.add_mount("/srv/seed", "tmpfs", "tmpfs", ["tmpcopyup", "ro"])
    out = ctx.probe("cat /srv/seed/keep 2>/dev/null || stat -c %s /srv/seed/keep; "
                    "touch /srv/seed/x 2>/dev/null && echo rw || echo ro")
    ctx.check(out.split() == ["6", "ro"] or out.split() == ["seeded", "ro"], f"tmpcopyup,ro: {out!r}")


@scenario("mount-opt-tmpcopyup-symlinked-destination", OPT, "MAY")
def _(ctx: Ctx) -> None:
    """A 'tmpcopyup' destination that is a symlink aimed at the host is resolved inside the root."""
    host = ctx.work / "hostdir"
    host.mkdir()
    (host / "secret").write_text("host")
    (ctx.rootfs / "srv").mkdir(exist_ok=True)
    os.symlink("../" * 20 + str(host).lstrip("/"), ctx.rootfs / "srv" / "link")
    ctx.add_mount("/srv/link", "tmpfs", "tmpfs", ["tmpcopyup"])
    out = ctx.probe("ls -a /srv/link | wc -l")
    ctx.check(out.strip() == "2", f"the tmpfs shows host files: {out!r}")
    ctx.check(sorted(os.listdir(host)) == ["secret"], f"the host directory changed: {os.listdir(host)}")


@scenario("mount-opt-idmap-without-mappings-errors", OPT, "MUST")
def _(ctx: Ctx) -> None:
    """'idmap' with no mappings and no user namespace: an error MUST be returned."""
    src = ctx.work / "src"
    src.mkdir()
    ctx.add_mount("/data", "none", str(src), ["bind", "idmap"])
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "idmap without any mapping must be an error")


# -- propagation ------------------------------------------------------------------------------------

def _propagation(name: str, judge: Callable[[dict], str]) -> None:
    def fn(ctx: Ctx) -> None:
        # A shared rootfs makes every bind mount shared unless the option says otherwise.
        ctx.linux["rootfsPropagation"] = "shared"
        src = ctx.work / "src"
        src.mkdir()
        ctx.add_mount("/data", "none", str(src), ["rbind", name])
        m = mount_at(ctx, "/data")[-1]
        why = judge(m)
        if why:
            raise Fail(f"bind with {name!r}: optional fields {m['optional']}: {why}")

    add(f"mount-opt-{name}", OPT, "MUST", f"propagation option {name!r} sets the mount's propagation", fn)


def _shared(m: dict) -> str:
    return "" if any(o.startswith("shared:") for o in m["optional"]) else "not shared"


def _private(m: dict) -> str:
    return "" if not m["optional"] else "not private"


def _slave(m: dict) -> str:
    return "still shared" if any(o.startswith("shared:") for o in m["optional"]) else ""


def _unbindable(m: dict) -> str:
    return "" if "unbindable" in m["optional"] else "not unbindable"


for _n, _j in (("shared", _shared), ("rshared", _shared), ("private", _private), ("rprivate", _private),
               ("slave", _slave), ("rslave", _slave), ("unbindable", _unbindable), ("runbindable", _unbindable)):
    _propagation(_n, _j)


# -- recursive (AT_RECURSIVE) options: judged on the bind mount and on a submount below it ----------

ALLFLAGS = "ro,nosuid,nodev,noexec,noatime,nodiratime,nosymfollow,size=1m"
RECURSIVE: list[tuple[str, str, str, Judge]] = [
    # (option, which submount: plain|flagged, word checked, judge)
    ("rro", "plain", "ro", has("ro")),
    ("rrw", "flagged", "rw", has("rw")),
    ("rnosuid", "plain", "nosuid", has("nosuid")),
    ("rsuid", "flagged", "nosuid", lacks("nosuid")),
    ("rnodev", "plain", "nodev", has("nodev")),
    ("rdev", "flagged", "nodev", lacks("nodev")),
    ("rnoexec", "plain", "noexec", has("noexec")),
    ("rexec", "flagged", "noexec", lacks("noexec")),
    ("rnoatime", "plain", "noatime", has("noatime")),
    ("ratime", "flagged", "noatime", lacks("noatime")),
    ("rnodiratime", "plain", "nodiratime", has("nodiratime")),
    ("rdiratime", "flagged", "nodiratime", lacks("nodiratime")),
    ("rrelatime", "flagged", "relatime", lambda m: has("relatime")(m) + lacks("noatime")(m)),
    ("rstrictatime", "flagged", "strictatime", lacks("relatime", "noatime")),
    ("rnosymfollow", "plain", "nosymfollow", has("nosymfollow")),
    ("rsymfollow", "flagged", "nosymfollow", lacks("nosymfollow")),
]


def _recursive(name: str, which: str, judge: Judge) -> None:
    def fn(ctx: Ctx) -> None:
        src = ctx.work / "src"
        host_mount(ctx, src, options="size=1m")
        host_mount(ctx, src / "sub", options="size=1m" if which == "plain" else ALLFLAGS)
        ctx.add_mount("/data", "none", str(src), ["rbind", name])
        out = ctx.probe("cat /proc/self/mountinfo")
        ms = {m["point"]: m for m in parse_mountinfo(out)}
        for point in ("/data", "/data/sub"):
            if point not in ms:
                raise Fail(f"{point} not mounted (rbind lost the submount?)")
        if which == "plain":
            why = judge(ms["/data"]) + judge(ms["/data/sub"])
        else:
            why = judge(ms["/data/sub"])
        if why:
            raise Fail(f"rbind with {name!r}: {why}")

    add(f"mount-opt-{name}", OPT, "SHOULD",
        f"recursive option {name!r} applies to the bind mount and every mount below it", fn)


for _name, _which, _word, _judge in RECURSIVE:
    _recursive(_name, _which, _judge)
