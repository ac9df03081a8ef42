"""config-linux.md: filesystems, namespaces, devices, sysctl, seccomp, propagation, masked/readonly paths."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..harness import BUSYBOX, Ctx, Fail, Holder, Skip, add, parse_mountinfo, scenario
from .common import mount_at

CL = "config-linux.md"
NS = f"{CL}#namespaces"
# OCI type -> /proc/PID/ns name, unshare(1) flag
NS_TYPES = {"pid": ("pid", "--pid"), "network": ("net", "--net"), "ipc": ("ipc", "--ipc"),
            "uts": ("uts", "--uts"), "mount": ("mnt", "--mount"), "cgroup": ("cgroup", "--cgroup")}


def _set_ns(ctx: Ctx, typ: str, entry: dict | None) -> None:
    nss = [n for n in ctx.linux["namespaces"] if n["type"] != typ]
    if entry is not None:
        nss.append(entry)
    ctx.linux["namespaces"] = nss


# -- default filesystems ----------------------------------------------------------------------------

def _default_fs(point: str, fstype: str) -> None:
    def fn(ctx: Ctx) -> None:
        m = mount_at(ctx, point)[-1]
        ctx.check(m["fstype"] == fstype, f"{point} is {m['fstype']}, want {fstype}")

    add(f"default-fs-{point.strip('/').replace('/', '-')}", f"{CL}#default-filesystems", "SHOULD",
        f"{point} is available as {fstype}", fn)


for _p, _t in (("/proc", "proc"), ("/sys", "sysfs"), ("/dev/pts", "devpts"), ("/dev/shm", "tmpfs")):
    _default_fs(_p, _t)


# -- namespaces -----------------------------------------------------------------------------------

def _ns_new(typ: str) -> None:
    link = NS_TYPES[typ][0]

    def fn(ctx: Ctx) -> None:
        pid = ctx.running()
        mine, theirs = os.readlink(f"/proc/self/ns/{link}"), os.readlink(f"/proc/{pid}/ns/{link}")
        ctx.check(mine != theirs, f"{typ}: container shares the runtime's namespace {mine}")

    add(f"ns-{typ}-new", NS, "MUST", f"a {typ} entry without path creates a new {typ} namespace", fn)


def _ns_inherit(typ: str) -> None:
    link = NS_TYPES[typ][0]

    def fn(ctx: Ctx) -> None:
        _set_ns(ctx, typ, None)
        pid = ctx.running()
        mine, theirs = os.readlink(f"/proc/self/ns/{link}"), os.readlink(f"/proc/{pid}/ns/{link}")
        ctx.check(mine == theirs, f"{typ} not listed, yet the container got a new namespace {theirs}")

    add(f"ns-{typ}-inherit", NS, "MUST", f"without a {typ} entry the container inherits the runtime's", fn)


def _ns_join(typ: str) -> None:
    link, flag = NS_TYPES[typ]

    def fn(ctx: Ctx) -> None:
        holder = Holder([flag, "--fork"] if typ == "pid" else [flag])
        ctx.cleanups.append(holder.close)
        _set_ns(ctx, typ, {"type": typ, "path": holder.ns(link)})
        pid = ctx.running()
        want, got = os.readlink(holder.ns(link)), os.readlink(f"/proc/{pid}/ns/{link}")
        ctx.check(want != os.readlink(f"/proc/self/ns/{link}"), "the holder did not get its own namespace")
        ctx.check(got == want, f"{typ}: container is in {got}, path names {want}")

    add(f"ns-{typ}-join-path", NS, "MUST",
        f"with a path, the container process MUST be placed in that {typ} namespace", fn)


for _typ in NS_TYPES:
    _ns_new(_typ)
    if _typ != "mount":  # inheriting the host mount namespace would pivot_root the host
        _ns_inherit(_typ)
    if _typ != "mount":
        _ns_join(_typ)


@scenario("ns-user-new-with-mappings", f"{CL}#user-namespace-mappings", "MUST")
def _(ctx: Ctx) -> None:
    """A user namespace with uidMappings/gidMappings: the container's uid_map and gid_map are the mappings."""
    ctx.linux["namespaces"].append({"type": "user"})
    ctx.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    ctx.linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    (ctx.rootfs / "bin" / "busybox").unlink()  # our own copy: the template's inode is shared
    shutil.copy2(BUSYBOX, ctx.rootfs / "bin" / "busybox")
    for p in ctx.bundle.rglob("*"):
        try:
            os.lchown(p, 100000, 200000)
        except OSError:
            pass
    os.lchown(ctx.bundle / "rootfs", 100000, 200000)
    ctx.config["mounts"] = [m for m in ctx.config["mounts"] if m["destination"] not in ("/sys",)]
    pid = ctx.running()
    uid_map = Path(f"/proc/{pid}/uid_map").read_text().split()
    gid_map = Path(f"/proc/{pid}/gid_map").read_text().split()
    ctx.check(uid_map == ["0", "100000", "65536"], f"uid_map {uid_map}")
    ctx.check(gid_map == ["0", "200000", "65536"], f"gid_map {gid_map}")
    ctx.check(os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user"), "no new user ns")


@scenario("ns-time-offsets", f"{CL}#offset-for-time-namespace", "MUST")
def _(ctx: Ctx) -> None:
    """A time namespace with timeOffsets: CLOCK_MONOTONIC and CLOCK_BOOTTIME are shifted in the container."""
    ctx.linux["namespaces"].append({"type": "time"})
    ctx.linux["timeOffsets"] = {"monotonic": {"secs": 86400 * 400}, "boottime": {"secs": 86400 * 400}}
    out = ctx.probe("cut -d. -f1 /proc/uptime")
    host = float(Path("/proc/uptime").read_text().split()[0])
    ctx.check(int(out.strip()) >= host + 86400 * 399, f"uptime in the container {out.strip()}, host {host:.0f}")


@scenario("ns-duplicate-type-errors", NS, "MUST")
def _(ctx: Ctx) -> None:
    """Duplicated namespaces with the same type MUST generate an error."""
    ctx.linux["namespaces"].append({"type": "network"})
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "network is listed twice")


@scenario("ns-path-wrong-type-errors", NS, "MUST")
def _(ctx: Ctx) -> None:
    """A path not associated with a namespace of type `type` MUST generate an error."""
    _set_ns(ctx, "network", {"type": "network", "path": "/proc/self/ns/uts"})
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "the network path is a uts namespace")


@scenario("ns-path-not-a-namespace-errors", NS, "MUST")
def _(ctx: Ctx) -> None:
    """A path that is no namespace at all MUST generate an error."""
    (ctx.work / "plain").write_text("x")
    _set_ns(ctx, "ipc", {"type": "ipc", "path": str(ctx.work / "plain")})
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "the ipc path is a regular file")


@scenario("ns-path-missing-errors", NS, "MUST")
def _(ctx: Ctx) -> None:
    """A namespace path that does not exist cannot be joined: create MUST fail and create nothing."""
    _set_ns(ctx, "uts", {"type": "uts", "path": str(ctx.work / "no-such-ns")})
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "the uts path does not exist")


# -- devices ----------------------------------------------------------------------------------------

DEV = f"{CL}#devices"


def _device(name: str, entry: dict, script: str, want: str, title: str, allow: bool = True) -> None:
    def fn(ctx: Ctx) -> None:
        ctx.linux["devices"] = [entry]
        if allow and entry["type"] in ("c", "b", "u"):
            ctx.linux["resources"]["devices"].append(
                {"allow": True, "type": "b" if entry["type"] == "b" else "c",
                 "major": entry["major"], "minor": entry["minor"], "access": "rwm"})
        out = ctx.probe(script)
        ctx.check(out.strip() == want, f"got {out.strip()!r}, want {want!r}")

    add(f"device-{name}", DEV, "MUST", title, fn)


_device("char", {"path": "/dev/conf-null", "type": "c", "major": 1, "minor": 3},
        "stat -c '%F %t:%T' /dev/conf-null", "character special file 1:3", "a 'c' device is a character device")
_device("block", {"path": "/dev/conf-loop", "type": "b", "major": 7, "minor": 200},
        "stat -c '%F %t:%T' /dev/conf-loop", "block special file 7:c8", "a 'b' device is a block device")
_device("unbuffered", {"path": "/dev/conf-u", "type": "u", "major": 1, "minor": 5},
        "stat -c '%F %t:%T' /dev/conf-u", "character special file 1:5", "a 'u' device is an (unbuffered) char device")
_device("fifo", {"path": "/dev/conf-fifo", "type": "p"},
        "stat -c '%F' /dev/conf-fifo", "fifo", "a 'p' device is a FIFO")
_device("mode-owner", {"path": "/dev/conf-m", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640,
                       "uid": 12, "gid": 34},
        "stat -c '%a %u %g' /dev/conf-m", "640 12 34", "fileMode, uid and gid are the device node's")
_device("outside-dev", {"path": "/srv/conf-zero", "type": "c", "major": 1, "minor": 5},
        "head -c 4 /srv/conf-zero | od -An -tx1", "00 00 00 00", "a device path MAY be outside /dev and works")
_device("usable", {"path": "/dev/conf-full", "type": "c", "major": 1, "minor": 7},
        "echo x > /dev/conf-full 2>/dev/null && echo wrote || echo ENOSPC", "ENOSPC",
        "a listed device is available: /dev/full semantics through a new node")


@scenario("device-existing-file-mismatch-errors", DEV, "MUST")
def _(ctx: Ctx) -> None:
    """A file already at a device's path that does not match the device MUST be an error."""
    (ctx.rootfs / "etc" / "notadevice").write_text("regular file")
    ctx.linux["devices"] = [{"path": "/etc/notadevice", "type": "c", "major": 1, "minor": 3}]
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "a regular file exists at the device path")


def _default_device(name: str, majmin: str) -> None:
    def fn(ctx: Ctx) -> None:
        out = ctx.probe(f"stat -L -c '%F %t:%T' /dev/{name}")
        maj, mnr = (int(x) for x in majmin.split(":"))
        want = f"character special file {maj:x}:{mnr:x}"
        ctx.check(out.strip() == want, f"/dev/{name}: {out.strip()!r}, want {want!r}")

    add(f"default-device-{name}", f"{CL}#default-devices", "MUST", f"/dev/{name} ({majmin}) is supplied", fn)


for _n, _mm in (("null", "1:3"), ("zero", "1:5"), ("full", "1:7"), ("random", "1:8"), ("urandom", "1:9"),
                ("tty", "5:0")):
    _default_device(_n, _mm)


@scenario("default-device-ptmx", f"{CL}#default-devices", "MUST")
def _(ctx: Ctx) -> None:
    """/dev/ptmx is a bind mount or symlink of the container's /dev/pts/ptmx."""
    out = ctx.probe("readlink /dev/ptmx || true; stat -L -c '%d:%i' /dev/ptmx /dev/pts/ptmx")
    lines = out.split()
    ctx.check(len(lines) >= 2 and lines[-1] == lines[-2], f"/dev/ptmx is not /dev/pts/ptmx: {out!r}")


@scenario("default-devices-usable", f"{CL}#default-devices", "MUST")
def _(ctx: Ctx) -> None:
    """The default devices are usable under a deny-all device cgroup list (reads and writes work)."""
    out = ctx.probe("echo x > /dev/null && head -c1 /dev/zero | wc -c && head -c1 /dev/urandom | wc -c "
                    "&& head -c1 /dev/random | wc -c && echo ok")
    ctx.check(out.split() == ["1", "1", "1", "ok"], f"default devices unusable: {out!r}")


# -- sysctl -----------------------------------------------------------------------------------------

SYSCTLS = {  # namespaced sysctls and values that differ from the kernel defaults
    "net.ipv4.ip_forward": "1",
    "net.ipv4.ping_group_range": "0\t1000",
    "net.core.somaxconn": "1234",
    "net.ipv4.tcp_syncookies": "0",
    "net.ipv4.ip_local_port_range": "20000\t30000",
    "net.ipv6.conf.all.disable_ipv6": "1",
    "kernel.shmmax": "12345678",
    "kernel.shmmni": "2048",
    "kernel.msgmax": "4096",
    "kernel.msgmnb": "8192",
    "kernel.msgmni": "999",
    "kernel.sem": "100\t1000\t50\t64",
    "fs.mqueue.queues_max": "77",
    "fs.mqueue.msg_max": "33",
}


def _sysctl(key: str, value: str) -> None:
    def fn(ctx: Ctx) -> None:
        path = "/proc/sys/" + key.replace(".", "/")
        if not os.path.exists(path):
            raise Skip(f"{path} does not exist on this kernel")
        host_before = Path(path).read_text()
        ctx.linux["sysctl"] = {key: value.replace("\t", " ")}
        out = ctx.probe(f"cat {path}")
        ctx.check(out.split() == value.split(), f"{key} = {out.strip()!r}, want {value!r}")
        ctx.check(Path(path).read_text() == host_before, f"the host's {key} changed")

    add(f"sysctl-{key}", f"{CL}#sysctl", "MUST", f"sysctl {key} is set in the container only", fn)


for _k, _v in SYSCTLS.items():
    _sysctl(_k, _v)


@scenario("sysctl-nonexistent-errors", f"{CL}#sysctl", "MUST")
def _(ctx: Ctx) -> None:
    """A sysctl that does not exist cannot be applied: create MUST fail and create nothing."""
    ctx.linux["sysctl"] = {"net.ipv4.conf.all.no_such_knob": "1"}
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "the sysctl does not exist")


# -- seccomp ----------------------------------------------------------------------------------------

SEC = f"{CL}#seccomp"


@scenario("seccomp-errno-rule", SEC, "MUST")
def _(ctx: Ctx) -> None:
    """A seccomp rule returning an errno applies to the process (mkdir fails with that errno)."""
    ctx.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                          "errnoRet": 1}]}
    out = ctx.probe("mkdir /tmp/x 2>&1; grep ^Seccomp: /proc/self/status")
    ctx.check("Operation not permitted" in out and "Seccomp:\t2" in out, f"seccomp not applied: {out!r}")


@scenario("seccomp-errnoret", SEC, "MUST")
def _(ctx: Ctx) -> None:
    """errnoRet is the errno a matching syscall returns (EACCES here, not the default EPERM)."""
    ctx.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                          "errnoRet": 13}]}
    out = ctx.probe("mkdir /tmp/x 2>&1; test -d /tmp/x && echo made || echo absent")
    ctx.check("Permission denied" in out and "absent" in out, f"errnoRet not honoured: {out!r}")


@scenario("seccomp-kill-process", SEC, "MUST")
def _(ctx: Ctx) -> None:
    """SCMP_ACT_KILL_PROCESS on a syscall kills the process that makes it."""
    ctx.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    ctx.process["args"] = ["sh", "-c", "echo $PPID; echo survived"]
    res = ctx.cmd("run", "c1")
    ctx.check(res.rc != 0 and "survived" not in res.out, f"getppid was not fatal: {res.brief()}")
    ctx.check(res.rc in (128 + 31, 128 + 9, 159, 137) or res.rc > 128, f"exit status {res.rc}")


# -- rootfs propagation -------------------------------------------------------------------------------

def _rootfs_prop(value: str, judge) -> None:
    def fn(ctx: Ctx) -> None:
        ctx.linux["rootfsPropagation"] = value
        m = mount_at(ctx, "/")[-1]
        why = judge(m["optional"])
        if why:
            raise Fail(f"rootfsPropagation {value}: / has {m['optional']}: {why}")

    add(f"rootfs-propagation-{value}", f"{CL}#rootfs-mount-propagation", "MUST",
        f"rootfsPropagation {value!r} is the propagation of the container's / mount", fn)


_rootfs_prop("shared", lambda o: "" if any(x.startswith("shared:") for x in o) else "not shared")
_rootfs_prop("slave", lambda o: "" if any(x.startswith("master:") for x in o)
             and not any(x.startswith("shared:") for x in o) else "not a slave")
_rootfs_prop("private", lambda o: "" if not o else "not private")
_rootfs_prop("unbindable", lambda o: "" if "unbindable" in o else "not unbindable")
_rootfs_prop("rshared", lambda o: "" if any(x.startswith("shared:") for x in o) else "not shared")


@scenario("rootfs-propagation-rshared-submounts", f"{CL}#rootfs-mount-propagation", "MUST")
def _(ctx: Ctx) -> None:
    """rootfsPropagation 'rshared' reaches the mounts below / too (/proc, /dev)."""
    ctx.linux["rootfsPropagation"] = "rshared"
    for point in ("/proc", "/dev"):
        m = mount_at(ctx, point)[-1]
        ctx.check(any(x.startswith("shared:") for x in m["optional"]), f"{point} is {m['optional']}, not shared")


@scenario("rootfs-propagation-private-no-pivot-errors", f"{CL}#rootfs-mount-propagation", "MAY")
def _(ctx: Ctx) -> None:
    """rootfsPropagation [r]private with --no-pivot: an error (runc's rule: unsafe without pivot_root)."""
    ctx.linux["rootfsPropagation"] = "rprivate"
    ctx.expect_nothing_created(ctx.cmd("create", "--no-pivot", "c1"), "c1",
                               "[r]private root propagation without pivot_root is refused")


# -- masked and readonly paths -------------------------------------------------------------------------

def _masked(path: str, inside_rootfs: bool = False) -> None:
    def fn(ctx: Ctx) -> None:
        if inside_rootfs:
            target = ctx.rootfs / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.endswith("/"):
                target.mkdir(exist_ok=True)
                (target / "secret").write_text("secret")
            else:
                target.write_text("secret")
        elif not os.path.exists(path):
            raise Skip(f"{path} does not exist on this kernel")
        p = path.rstrip("/")
        ctx.linux["maskedPaths"] = [p]
        # Some of these read as empty anyway on a given host (no ACPI...), so "empty" alone proves
        # nothing: the path must also be mounted over. timeout: an unmasked /proc/kmsg blocks.
        out = ctx.probe(f"if [ -d {p} ]; then echo dir $(ls -A {p} | wc -l); "
                        f"else echo file $(timeout 2 cat {p} 2>/dev/null | wc -c); fi; cat /proc/self/mountinfo")
        first, _, rest = out.partition("\n")
        kind, n = first.split()
        ctx.check(n == "0", f"{p} still readable ({kind} with {n} entries/bytes)")
        ctx.check(any(m["point"] == p for m in parse_mountinfo(rest)), f"nothing is mounted over {p}")

    name = path.strip("/").replace("/", "-")
    add(f"masked-{name}", f"{CL}#masked-paths", "MUST", f"maskedPaths: {path} cannot be read", fn)


# The usual masked paths; only those this kernel has can be judged, so only those are scenarios here.
for _m in ("/proc/acpi", "/proc/keys", "/proc/timer_list", "/proc/kcore", "/proc/sched_debug",
           "/proc/scsi", "/sys/firmware", "/proc/interrupts", "/proc/kmsg", "/proc/latency_stats",
           "/proc/timer_stats", "/proc/asound", "/proc/sysrq-trigger"):
    if os.path.exists(_m):
        _masked(_m)
_masked("/etc/secret-file", inside_rootfs=True)
_masked("/srv/secret-dir/", inside_rootfs=True)


@scenario("masked-dir-read-only", f"{CL}#masked-paths", "MAY")
def _(ctx: Ctx) -> None:
    """A masked directory cannot be written to either (nothing can be put where it hides)."""
    (ctx.rootfs / "srv" / "hidden").mkdir(parents=True)
    ctx.linux["maskedPaths"] = ["/srv/hidden"]
    ctx.process["capabilities"] = {k: ["CAP_DAC_OVERRIDE"] for k in ("bounding", "effective", "permitted")}
    out = ctx.probe("touch /srv/hidden/x 2>&1; mkdir /srv/hidden/d 2>&1; ls -A /srv/hidden | wc -l")
    ctx.check("Read-only file system" in out and out.strip().endswith("0"), f"writable: {out!r}")


@scenario("masked-dirs-share-one-tmpfs", f"{CL}#masked-paths", "MAY")
def _(ctx: Ctx) -> None:
    """Masked directories share one read-only tmpfs (runc 1.5: not one superblock per directory)."""
    for d in ("a", "b", "c"):
        (ctx.rootfs / "srv" / d).mkdir(parents=True)
    ctx.linux["maskedPaths"] = ["/srv/a", "/srv/b", "/srv/c"]
    out = ctx.probe("cat /proc/self/mountinfo")
    devs = {line.split()[2] for line in out.splitlines() if line.split()[4] in ("/srv/a", "/srv/b", "/srv/c")}
    ctx.check(len(devs) == 1, f"masked directories on {len(devs)} superblocks: {sorted(devs)}")


@scenario("masked-nonexistent-ignored", f"{CL}#masked-paths", "MAY")
def _(ctx: Ctx) -> None:
    """A masked path that does not exist is nothing to mask: the container still runs."""
    ctx.linux["maskedPaths"] = ["/proc/acpi", "/does/not/exist"]
    ctx.check(ctx.probe("echo ok") == "ok\n", "unexpected output")


def _readonly(path: str, probe_write: str) -> None:
    def fn(ctx: Ctx) -> None:
        if path.startswith("/proc") and not os.path.exists(path):
            raise Skip(f"{path} does not exist on this kernel")
        if not path.startswith(("/proc", "/sys")):
            (ctx.rootfs / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        ctx.linux["readonlyPaths"] = [path]
        ctx.process["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE", "CAP_NET_ADMIN"]
                                       for k in ("bounding", "effective", "permitted")}
        out = ctx.probe(f"({probe_write}) 2>/dev/null && echo writable || echo readonly; "
                        "cat /proc/self/mountinfo")
        first, _, rest = out.partition("\n")
        ms = [m for m in parse_mountinfo(rest) if m["point"] == path]
        ctx.check(ms and "ro" in ms[-1]["opts"], f"{path} is not a read-only mount")
        ctx.check(first == "readonly", f"write to {path} succeeded")

    add(f"readonly-{path.strip('/').replace('/', '-')}", f"{CL}#readonly-paths", "MUST",
        f"readonlyPaths: {path} is read-only", fn)


_readonly("/proc/sys", "echo 1 > /proc/sys/net/ipv4/ip_forward")
_readonly("/proc/bus", "true > /proc/bus/conf-x || touch /proc/bus/x")
_readonly("/proc/fs", "touch /proc/fs/x")
_readonly("/proc/irq", "touch /proc/irq/x")
_readonly("/srv/ro-dir", "touch /srv/ro-dir/x")


# -- personality, netDevices, mountLabel-free bits ----------------------------------------------------

@scenario("personality-linux32", f"{CL}#personality", "MUST")
def _(ctx: Ctx) -> None:
    """personality LINUX32 makes uname report a 32-bit machine."""
    if os.uname().machine != "x86_64":
        raise Skip("needs an x86_64 host")
    ctx.linux["personality"] = {"domain": "LINUX32"}
    out = ctx.probe("uname -m")
    ctx.check(out.strip() in ("i686", "i386"), f"uname -m is {out.strip()!r}")


@scenario("net-device-moved-and-renamed", f"{CL}#network-devices", "MUST")
def _(ctx: Ctx) -> None:
    """netDevices: a host interface is moved into the container's network namespace under its new name."""
    name = f"cf{os.getpid() % 10000}x{ctx.cgroup.rsplit('-', 1)[-1]}"[:14] + "v"
    peer = name[:-1] + "p"
    r = subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", peer],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Skip(f"cannot create a veth pair: {r.stderr.strip()}")
    # deleting either end deletes the pair, wherever the other end went
    ctx.cleanups.append(lambda: subprocess.run(["ip", "link", "del", peer], capture_output=True))
    ctx.linux["netDevices"] = {name: {"name": "conf0"}}
    out = ctx.probe("ip -o link show conf0 | wc -l")
    ctx.check(out.strip() == "1", "conf0 is not in the container")
