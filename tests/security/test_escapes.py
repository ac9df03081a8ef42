"""Escape classes: one regression test (or a few) per class in SECURITY.md, each with a real container.

The rootfs and the container's processes are the attacker; config.json and the caller are trusted.
Every test asserts on the host side (a sentinel directory, the host mount table, the host's
/dev/null, the interpreter binary) and most also look from inside the container.

Each test was shown once to fail on a deliberately weakened build: a scratch copy of the repository
(/tmp/weak, never /work/main) with one defence removed, run with
``PYTHONPATH=/tmp/weak python -m pytest tests/security``. The weakening is named in each docstring
under "Weakened:". runc 1.1.5 is the oracle only where it is known not to be vulnerable; the /dev,
/dev/null, /dev/console and host-/dev/null-chown scenarios run pyrunc only (runc 1.1.5 is affected
and could damage the host).
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import Bundle, mounts_snapshot, run_to_files
from tests.integration.test_terminal import read_until
from tests.security.conftest import Sentinel, own_pid_procfs, second_bundle, tree_snapshot, without_dev_mount

DENIED = "Permission denied"


def probe(rt, bundle: Bundle, script: str, cid: str = "s1", *args: str, **kw):
    """Run `sh -c script` in a fresh container; the caller decides what failure means."""
    bundle.config["process"]["args"] = ["sh", "-c", script]
    return rt("run", *args, cid, bundle=bundle, **kw)


def status_of(rt, cid: str) -> str:
    return json.loads(rt("state", cid, check=True).stdout)["status"]


# ---------------------------------------------------------------------------------------------
# CVE-2024-21626: leaked fds and cwd = /proc/self/fd/N  (T3)


@pytest.mark.cve("CVE-2024-21626")
def test_cwd_through_proc_self_fd_never_reaches_the_host(pyrunc, bundle, tmp_path, sentinel):
    """cwd=/proc/self/fd/N for N in 3..12, with a host directory fd leaked by the caller as well.

    Every run either fails or shows the container's own files: the sentinel placed in the state
    root, the bundle and the caller's leaked directory never appears.

    Weakened (shown): pyrunc/process/init.py close_foreign_fds made a no-op and the
    CLOSE_RANGE_CLOEXEC in exec_process removed: the caller's fd reaches the init and the container (fd census below fails
    with an extra entry, and cwd=/proc/self/fd/N of that fd lists the host directory).
    """
    pyrunc.root.mkdir(parents=True, exist_ok=True)
    for d in (pyrunc.root, bundle.path):
        (d / "SENTINEL-host-only").write_text("x")
    leaked = os.open(sentinel.path, os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(leaked, True)
    try:
        for n in range(3, 13):
            bundle.config["process"]["cwd"] = f"/proc/self/fd/{n}"
            bundle.config["process"]["args"] = ["sh", "-c", "pwd -P; ls -a . .. ../.. /; cat ../../../etc/hostname"]
            bundle.write()
            p = run_to_files(pyrunc.cmd("run", f"cwd{n}"), cwd=bundle.path, timeout=60, pass_fds=(leaked,))
            pyrunc.ids.add(f"cwd{n}")
            assert "Traceback" not in p.stderr
            assert "SENTINEL" not in p.stdout, f"cwd=/proc/self/fd/{n} reached the host: {p.stdout}"
            if p.returncode == 0:
                assert "rootfs" in p.stdout or p.stdout.startswith("/"), p.stdout
        # And the fd census of the program itself: only stdio and ls's own directory fd.
        bundle.config["process"]["cwd"] = "/"
        bundle.config["process"]["args"] = ["ls", "/proc/self/fd"]
        bundle.write()
        p = run_to_files(pyrunc.cmd("run", "census"), cwd=bundle.path, timeout=60, pass_fds=(leaked,))
        pyrunc.ids.add("census")
        assert p.returncode == 0, p.stderr
        assert sorted(p.stdout.split(), key=int) == ["0", "1", "2", "3"], p.stdout
    finally:
        os.close(leaked)


@pytest.mark.cve("CVE-2024-21626")
@pytest.mark.cve("CVE-2016-9962")
def test_waiting_init_holds_no_host_directory_or_file(pyrunc, bundle, tmp_path):
    """Fd census of the init waiting in `created`, from the host (runc create.bats' allow-list).

    Only stdio, pipes, sockets, anon inodes, the exec fifo and the init's private subset=pid
    procfs of the container's own pid namespace (what it reopens the fifo through, linux/procfs.py;
    it shows nothing the container's /proc does not): a directory fd (a cgroup dir, the state dir,
    the bundle, the host's /proc) or a host regular file is what a container process would escape
    through.

    Weakened (shown): pyrunc/process/init.py close_foreign_fds made a no-op: the caller's leaked
    directory fd (and the state dir lock fd) stay in the init and this census fails.
    """
    leaked = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(leaked, True)
    bundle.config["process"]["args"] = ["sleep", "100"]
    bundle.write()
    try:
        p = run_to_files(pyrunc.cmd("create", "fds1"), cwd=bundle.path, timeout=60, pass_fds=(leaked,))
    finally:
        os.close(leaked)
    pyrunc.ids.add("fds1")
    assert p.returncode == 0, p.stderr
    pid = pyrunc.state("fds1")["pid"]
    fifo = str(pyrunc.root / "fds1" / "exec.fifo")
    bad = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        path = f"/proc/{pid}/fd/{name}"
        target = os.readlink(path)
        if target.split(":", 1)[0] in ("pipe", "socket", "anon_inode") or target in ("/dev/null", fifo):
            continue
        if own_pid_procfs(pid, int(name)):
            continue
        st = os.stat(path)
        if int(name) <= 2 and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode) or stat.S_ISREG(st.st_mode)):
            continue  # stdio is whatever the caller passed (here: temp files)
        bad.append((name, target))
    assert bad == [], f"the waiting init holds host objects: {bad}"


# ---------------------------------------------------------------------------------------------
# CVE-2021-30465 / CVE-2024-45310 / CVE-2019-18837: mount destinations through symlinks (T5, T4)


@pytest.mark.cve("CVE-2021-30465")
@pytest.mark.cve("CVE-2024-45310")
def test_mount_destinations_through_symlinks_stay_inside(runtime, bundle, sentinel):
    """Absolute and relative symlinks at mount destinations resolve inside the rootfs.

    /evil -> <sentinel> (absolute) and /evil2 -> ../../../../../<sentinel> (relative); a tmpfs on
    /evil, a tmpfs on /evil2/sub and a bind of a host file on /evil/f. The host sentinel is
    untouched (fixture), and the mounts appear at rootfs<sentinel> inside the container.

    Weakened (shown): pyrunc/rootfs/resolve.py _openat2_in_root calling openat2 with resolve=0 and
    verify_under accepting paths outside the root: the tmpfs lands on the host path (as seen from
    the container's mount namespace) and the mount-point assertion fails.
    """
    target = str(sentinel.path)
    os.symlink(target, bundle.rootfs / "evil")
    os.symlink("../../../../../../../.." + target, bundle.rootfs / "evil2")
    src = sentinel.path.parent / "bindsrc"
    src.write_text("bound\n")
    bundle.config["mounts"] += [
        {"destination": "/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/evil2/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/evil/f", "type": "bind", "source": str(src), "options": ["bind"]},
    ]
    p = probe(runtime, bundle, f"awk '{{print $5}}' /proc/self/mountinfo; cat {target}/f; ls {target}")
    assert p.returncode == 0, p.stderr
    points = p.stdout.split()
    assert target in points and f"{target}/sub" in points and f"{target}/f" in points, p.stdout
    assert "bound" in points
    assert "SENTINEL-host-only" not in points


def _renameat2_exchange():
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]

    def exchange(a: str, b: str) -> None:
        fn(-100, a.encode(), -100, b.encode(), 2)  # AT_FDCWD, RENAME_EXCHANGE

    return exchange


@pytest.mark.race
@pytest.mark.cve("CVE-2021-30465")
def test_mount_destination_swapped_during_create(pyrunc, bundle, tmp_path, sentinel):
    """A shared volume whose directory is swapped with a symlink to the host in a tight loop.

    The volume V is bound at /v; a tmpfs goes on /v/a/t. A host thread RENAME_EXCHANGEs V/a (a
    directory) and V/alink (-> the host sentinel) while containers are created 30 times. Each run
    fails cleanly or mounts inside the rootfs; the host sentinel and host mounts never change.
    Evidence, not proof: paired with the deterministic test above.

    Weakened: with only the lookup weakened as above this race test still passed (mount points
    that do not exist yet are created by the O_NOFOLLOW component walk, which stayed safe); the
    deterministic test above is the one that failed. Kept as evidence for the creation path.
    """
    vol = tmp_path / "vol"
    (vol / "a").mkdir(parents=True)
    os.symlink(str(sentinel.path), vol / "alink")
    bundle.config["mounts"] += [
        {"destination": "/v", "type": "bind", "source": str(vol), "options": ["rbind"]},
        {"destination": "/v/a/t", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
    ]
    bundle.config["process"]["args"] = ["awk", "$9 == \"tmpfs\" {print $5}", "/proc/self/mountinfo"]
    bundle.write()
    host_before = mounts_snapshot(str(tmp_path))
    exchange = _renameat2_exchange()
    stop = threading.Event()

    def racer() -> None:
        while not stop.is_set():
            exchange(str(vol / "a"), str(vol / "alink"))

    t = threading.Thread(target=racer, daemon=True)
    t.start()
    ok = 0
    try:
        for i in range(30):
            p = pyrunc("run", f"race{i}", bundle=bundle)
            assert "Traceback" not in p.stderr
            if p.returncode == 0:
                ok += 1
                points = p.stdout.split()
                assert "/v/a/t" in points or f"{sentinel.path}/t" in points or "/v/alink/t" in points, p.stdout
            else:
                assert len(p.stderr.strip().splitlines()) == 1, p.stderr
            sentinel.assert_untouched()
            assert mounts_snapshot(str(tmp_path)) == host_before
    finally:
        stop.set()
        t.join()
    assert ok > 0, "no run succeeded at all: the race test proved nothing"


# ---------------------------------------------------------------------------------------------
# CVE-2019-5736 / CVE-2016-9962: /proc/PID/exe of a runtime process (T1a, T2)

PROC_PROBE = ("for f in exe cwd root; do readlink /proc/1/$f >/dev/null 2>&1 && echo OPEN-$f $(readlink /proc/1/$f); done; "
              "for f in /proc/1/fd/*; do readlink $f >/dev/null 2>&1 && echo OPEN-fd $f; done; "
              "cat /proc/1/environ >/dev/null 2>&1 && echo OPEN-environ; "
              "head -c1 /proc/1/maps >/dev/null 2>&1 && echo OPEN-maps; "
              "head -c1 /proc/1/exe >/dev/null 2>&1 && echo OPEN-exe-file; "
              "cat /proc/1/comm; echo probed")


@pytest.mark.cve("CVE-2019-5736")
@pytest.mark.cve("CVE-2016-9962")
def test_created_init_is_unreachable_from_a_container_sharing_its_pid_ns(pyrunc, bundle, tmp_path):
    """A second container joins the pid namespace of a `created` one and attacks its waiting init.

    PID 1 there is the Python interpreter blocked on the exec fifo. readlink/open of exe, cwd,
    root, the fd/N links, environ and maps must all be refused (listing the fd/ names is allowed by
    the kernel to a same-uid root, as it is for runc's init) (non-dumpable: the kernel wants
    CAP_SYS_PTRACE, which the container lacks). The interpreter's hash is checked by a fixture.

    Weakened (shown): pyrunc/process/init.py stage1 without linux.set_dumpable(False): the probes
    succeed (OPEN-exe /usr/bin/python3.11 ...) and the test fails.
    """
    bundle.config["process"]["args"] = ["sleep", "100"]
    pyrunc("create", "victim", bundle=bundle, check=True)
    pid = pyrunc.state("victim")["pid"]
    b2 = second_bundle(bundle, tmp_path / "b2", ["sh", "-c", PROC_PROBE])
    b2.config["linux"]["namespaces"] = [ns if ns["type"] != "pid" else {"type": "pid", "path": f"/proc/{pid}/ns/pid"}
                                        for ns in b2.config["linux"]["namespaces"]]
    p = pyrunc("run", "attacker", bundle=b2)
    assert p.returncode == 0, p.stderr
    assert "probed" in p.stdout
    assert "OPEN-" not in p.stdout, p.stdout
    assert status_of(pyrunc, "victim") == "created"


@pytest.mark.cve("CVE-2016-9962")
def test_exec_into_created_container_cannot_read_the_waiting_init(pyrunc, bundle):
    """`exec` a probe into a created container: the same /proc/1 reads, all refused (T2).

    Weakened (shown): as above (no set_dumpable(False) in stage1 or the joiner): OPEN-* appear.
    """
    bundle.config["process"]["args"] = ["sleep", "100"]
    pyrunc("create", "victim", bundle=bundle, check=True)
    p = pyrunc("exec", "victim", "sh", "-c", PROC_PROBE)
    assert p.returncode == 0, p.stderr
    assert "probed" in p.stdout
    assert "OPEN-" not in p.stdout, p.stdout


@pytest.mark.cve("CVE-2019-5736")
def test_waiting_init_of_non_root_user_is_non_dumpable(pyrunc, bundle):
    """Host-side sign of non-dumpable: /proc/PID/environ stays root-owned although the uid is 1000.

    (The /proc/PID directory itself always shows the euid; the per-process files follow dumpable.)
    The uid switch happens before the init waits, and the kernel resets dumpable to
    fs.suid_dumpable on it: this checks the init did not end up dumpable after all.

    Weakened: removing set_dumpable(False) from stage1 does NOT fail this test (shown): the kernel
    resets dumpable to fs.suid_dumpable (0) on the uid change anyway. It guards the other way of
    breaking it, a PR_SET_DUMPABLE 1 after switch_user; the root-init tests above cover stage1.
    """
    bundle.config["process"]["args"] = ["sleep", "100"]
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    pyrunc("create", "nd", bundle=bundle, check=True)
    pid = pyrunc.state("nd")["pid"]
    with open(f"/proc/{pid}/status") as f:
        uid_line = next(line for line in f if line.startswith("Uid:"))
    assert uid_line.split()[1] == "1000"
    assert os.stat(f"/proc/{pid}/environ").st_uid == 0
    assert os.stat(f"/proc/{pid}/fd").st_uid == 0


@pytest.mark.race
@pytest.mark.cve("CVE-2019-5736")
def test_exec_process_is_unreachable_from_a_racing_loop(pyrunc, bundle):
    """A loop inside the container watches /proc for any non-busybox exe while `exec` runs 20 times.

    The exec joiner is a host Python interpreter inside the container's pid namespace until it
    execs; any exe link the loop can read that is not busybox is a runtime process exposed.

    Weakened (shown): set_dumpable(False) removed from stage1 and the tenant joiner: the loop
    records the Python interpreter's path.
    """
    loop = ("while :; do for p in /proc/[0-9]*; do l=$(readlink $p/exe 2>/dev/null) || continue; "
            "case $l in */busybox) ;; *) echo \"$p $l\" >> /seen;; esac; done; done")
    bundle.config["process"]["args"] = ["sh", "-c", loop]
    pyrunc("run", "-d", "watched", bundle=bundle, check=True)
    time.sleep(0.3)
    failed = []
    for _ in range(20):
        e = pyrunc("exec", "watched", "true")
        if e.returncode != 0:
            failed.append(e.stderr.strip())
    p = pyrunc("exec", "watched", "sh", "-c", "cat /seen 2>/dev/null; echo end")
    assert p.stdout.strip().splitlines()[-1:] == ["end"], p.stderr
    assert p.stdout.strip().splitlines() == ["end"], f"runtime processes seen from the container: {p.stdout}"
    # Not a security property, but a bug this load exposed once (joiner "pid" vs tenant "exec"
    # on one channel, see the report): every exec must succeed.
    assert failed == [], failed


# ---------------------------------------------------------------------------------------------
# CVE-2025-31133 / CVE-2025-52565 / CVE-2026-41579: /dev/null, /dev/console, /dev as symlinks


@pytest.mark.cve("CVE-2025-31133")
@pytest.mark.parametrize("replacement", ["symlink", "regular-file"])
def test_masked_path_with_dev_null_replaced(pyrunc, bundle, replacement):
    """The image's /dev/null is a symlink to a procfs file (or a plain file) and /etc/secret is masked.

    Either create fails naming /dev/null, or /etc/secret is the real null device, empty, and the
    domainname the symlink pointed at (harmless stand-in for core_pattern) is unchanged.
    pyrunc only: runc 1.1.5 is vulnerable.

    Weakened (shown): pyrunc/rootfs/__init__.py open_dev_null without the S_ISCHR/rdev check and
    without O_NOFOLLOW: the container writes "pwn" through /etc/secret into its
    domainname (symlink) or reads the planted file (regular file).
    """
    without_dev_mount(bundle)
    null = bundle.rootfs / "dev" / "null"
    if replacement == "symlink":
        os.symlink("/proc/sys/kernel/domainname", null)
    else:
        null.write_text("planted\n")
    (bundle.rootfs / "etc" / "secret").write_text("secret\n")
    bundle.config["domainname"] = "safe.example"
    bundle.config["linux"]["maskedPaths"] = ["/etc/secret"]
    bundle.config["linux"]["readonlyPaths"] = []
    p = probe(pyrunc, bundle, "stat -c '%F %t:%T' /etc/secret; cat /etc/secret; echo; "
                              "echo pwn > /etc/secret 2>/dev/null; cat /proc/sys/kernel/domainname")
    assert "Traceback" not in p.stderr
    if p.returncode != 0:
        assert "/dev/null" in p.stderr, p.stderr
        return
    lines = p.stdout.splitlines()
    assert lines[0] == "character special file 1:3", p.stdout
    assert lines[1] == "", "a masked file reads empty"
    assert lines[2] == "safe.example", p.stdout


@pytest.mark.cve("CVE-2025-52565")
def test_dev_console_symlink_with_terminal(pyrunc, bundle, tmp_path):
    """terminal:true, image /dev/console -> /proc/sys/kernel/domainname, no /dev tmpfs.

    /dev/console must be the pty (char major 136, not the image's symlink), and no mount may land
    on the symlink's target (/proc/sys/kernel/domainname: a harmless stand-in for core_pattern).
    pyrunc only: runc 1.1.5 is vulnerable.

    FAILS ON THE CURRENT BUILD (reported bug): set_up_console's create_file_in_root resolves the
    existing symlink inside the root and the pty is bound over /proc/sys/kernel/domainname (twice:
    readonlyPaths remounts it), bypassing the /proc mount policy; /dev/console stays a symlink.
    No host file is touched (the target is the container's procfs), but a runtime mount lands
    where the image chose.
    """
    without_dev_mount(bundle)
    os.symlink("/proc/sys/kernel/domainname", bundle.rootfs / "dev" / "console")
    bundle.config["mounts"].append({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                                    "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]})
    bundle.config["domainname"] = "safe.example"
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["args"] = ["sh", "-c", "stat -c 'T %F %t' /dev/console; "
                                        "echo N $(grep -c ' /proc/sys/kernel/domainname ' /proc/self/mountinfo); "
                                        "echo done"]
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(30)
    p = pyrunc("create", "--console-socket", path, "con1", bundle=bundle)
    if p.returncode != 0:
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        return
    conn, _ = server.accept()
    _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
    master = fds[0]
    try:
        pyrunc("start", "con1", check=True)
        out = read_until(master, b"done").replace(b"\r", b"").decode()
    finally:
        os.close(master)
        conn.close()
        server.close()
    assert "T character special file 88" in out, out
    assert "N 0" in out, f"a runtime mount landed on the symlink's target: {out}"


@pytest.mark.cve("CVE-2026-41579")
@pytest.mark.parametrize("style", ["absolute", "relative"])
def test_dev_symlinked_outside_is_not_populated(pyrunc, bundle, sentinel, style):
    """The image's /dev is a symlink out of the rootfs to a host directory holding a `ptmx` marker.

    Run fails or succeeds; either way the host directory is unchanged (no device nodes, no
    /dev/fd links, the marker still a file). pyrunc only: runc 1.1.5 is vulnerable.

    Weakened (shown): pyrunc/rootfs/devices.py create_devices opening /dev with
    os.open(rootfs + "/dev") (host-side lookup): links and nodes appear in the sentinel.
    """
    (sentinel.path / "ptmx").write_text("marker\n")
    sentinel.before = tree_snapshot(sentinel.path)
    dev = bundle.rootfs / "dev"
    dev.rmdir()
    os.symlink(str(sentinel.path) if style == "absolute" else "../../../../../../.." + str(sentinel.path), dev)
    without_dev_mount(bundle)
    p = probe(pyrunc, bundle, "ls /dev")
    assert "Traceback" not in p.stderr
    # the sentinel fixture asserts the host directory is unchanged


# ---------------------------------------------------------------------------------------------
# CVE-2019-16884 / CVE-2025-52881: procfs writes redirected by mounts (T6, T12)


@pytest.mark.cve("CVE-2019-16884")
def test_bind_over_proc_is_refused(runtime, bundle, tmp_path):
    """A bind of a host directory (with a fake self/attr/current) over /proc after the proc mount.

    Weakened (shown): pyrunc/rootfs/mounts.py check_proc_policy returning at once: create succeeds
    with a fake /proc and the test fails.
    """
    fake = tmp_path / "fakeproc"
    (fake / "self" / "attr").mkdir(parents=True)
    (fake / "self" / "attr" / "current").write_text("unconfined\n")
    bundle.config["mounts"].append({"destination": "/proc", "type": "bind", "source": str(fake),
                                    "options": ["rbind"]})
    p = probe(runtime, bundle, "cat /proc/self/attr/current")
    assert p.returncode != 0, p.stdout
    assert "proc" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.cve("CVE-2025-52881")
@pytest.mark.parametrize("dest", ["/proc/sys", "/proc/sys/kernel", "/proc/self/attr", "/proc/sysrq-trigger"])
def test_mount_over_procfs_cannot_redirect_sysctl_writes(pyrunc, bundle, tmp_path, dest):
    """A bind of a host directory/file over part of /proc, plus a sysctl pyrunc writes later.

    Either create fails (the destination is inside /proc and not on the lxcfs allow-list), or the
    write still reaches the real procfs: the host file is unchanged and the container's domainname
    (read from the host through its uts namespace) is the sysctl value.

    Weakened (shown): pyrunc/rootfs/mounts.py check_proc_policy returning at once: the sysctl
    write lands in the host directory's file (/proc/sys, /proc/sys/kernel, /proc/sysrq-trigger
    cases fail; /proc/self/attr then fails to mount for another reason).
    """
    fake = tmp_path / "fake"
    (fake / "kernel").mkdir(parents=True)
    (fake / "domainname").write_text("host-file\n")
    (fake / "kernel" / "domainname").write_text("host-file\n")
    src = fake / "domainname" if dest == "/proc/sysrq-trigger" else fake
    bundle.config["mounts"].append({"destination": dest, "type": "bind", "source": str(src), "options": ["bind"]})
    bundle.config["linux"]["sysctl"] = {"kernel.domainname": "from-sysctl"}
    bundle.config["process"]["args"] = ["sleep", "100"]
    p = pyrunc("create", "pw", bundle=bundle)
    assert (fake / "kernel" / "domainname").read_text() == "host-file\n"
    assert (fake / "domainname").read_text() == "host-file\n"
    if p.returncode != 0:
        assert "inside /proc" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        return
    pid = pyrunc.state("pw")["pid"]
    got = run_to_files(["nsenter", "-t", str(pid), "-u", "cat", "/proc/sys/kernel/domainname"], timeout=10)
    assert got.stdout.strip() == "from-sysctl"


# ---------------------------------------------------------------------------------------------
# CVE-2022-29162: inherited capabilities (T8)


def _caps(text: str) -> dict[str, int]:
    return {k: int(v, 16) for k, v in (line.split(":\t") for line in text.splitlines() if line.startswith("Cap"))}


@pytest.mark.cve("CVE-2022-29162")
@pytest.mark.parametrize("inheritable", [[], ["CAP_KILL"]])
def test_inheritable_and_ambient_exactly_as_configured(runtime, bundle, inheritable):
    """CapInh of the init and of `exec --cap` equals the config, CapAmb is empty.

    Weakened (shown): pyrunc/security/capabilities.py CapPlan with inheritable = permitted: CapInh gains
    CAP_AUDIT_WRITE|CAP_KILL|CAP_NET_BIND_SERVICE and the test fails.
    """
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    bundle.config["process"]["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps,
                                                "inheritable": inheritable}
    want = (1 << 5) if inheritable else 0
    bundle.config["process"]["args"] = ["sleep", "100"]
    runtime("run", "-d", "caps", bundle=bundle, check=True)
    with open(f"/proc/{runtime.state('caps')['pid']}/status") as f:
        init = _caps(f.read())
    assert init["CapInh"] == want and init["CapAmb"] == 0, init
    p = runtime("exec", "--cap", "CAP_SYS_CHROOT", "caps", "grep", "^Cap", "/proc/self/status")
    assert p.returncode == 0, p.stderr
    ex = _caps(p.stdout)
    assert ex["CapInh"] == want and ex["CapAmb"] == 0, ex
    assert ex["CapEff"] & (1 << 18), "exec --cap adds to the effective set"


# ---------------------------------------------------------------------------------------------
# CVE-2023-25809 and release_agent: cgroupfs writable from inside (T9)

ALL_CAPS_BUT_PTRACE = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
                       "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT",
                       "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP", "CAP_SYS_ADMIN"]
CGROUP_PROBE = ("awk '$5 ~ \"^/sys/fs/cgroup\" {for (i = 7; i <= NF; i++) if ($i == \"-\") print \"M\", $5, $6, $(i+1)}' "
                "/proc/self/mountinfo; "
                "for d in /sys/fs/cgroup/*/; do mkdir $d/pyrunc-escape 2>/dev/null && echo MKDIR $d; done; "
                "for f in $(find /sys/fs/cgroup -maxdepth 2 -name release_agent); do "
                "echo /x > $f 2>/dev/null && echo WROTE $f; done; echo probed")


@pytest.mark.cve("CVE-2023-25809")
@pytest.mark.parametrize("cgroupns", [True, False])
def test_cgroup_mount_is_read_only_inside(runtime, bundle, cgroupns):
    """With CAP_SYS_ADMIN and DAC_OVERRIDE, only the read-only mount stops cgroupfs writes.

    Every cgroup/cgroup2 mount at or under /sys/fs/cgroup is `ro`; mkdir in every hierarchy and
    release_agent writes fail. With and without a cgroup namespace.

    Weakened (shown): pyrunc/rootfs/mounts.py mount_cgroup with MS_RDONLY dropped from `flags`:
    the hierarchies are rw and MKDIR lines appear.
    """
    bundle.config["process"]["capabilities"] = {k: ALL_CAPS_BUT_PTRACE for k in ("bounding", "effective", "permitted")}
    bundle.config["process"]["noNewPrivileges"] = True
    if not cgroupns:
        bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"]
                                                if ns["type"] != "cgroup"]
    p = probe(runtime, bundle, CGROUP_PROBE)
    assert p.returncode == 0, p.stderr
    assert "probed" in p.stdout
    mounts = [line.split() for line in p.stdout.splitlines() if line.startswith("M ")]
    assert mounts, "no cgroup mount found"
    for _, point, opts, fstype in mounts:
        if fstype.startswith("cgroup"):  # runc leaves the tmpfs holding them rw: harmless
            assert "ro" in opts.split(","), f"{point} is writable ({opts})"
    assert "MKDIR" not in p.stdout and "WROTE" not in p.stdout, p.stdout


SYS_RBIND_PROBE = (
    "awk '$5 ~ \"^/sys/fs/cgroup\" {for (i = 7; i <= NF; i++) if ($i == \"-\") print \"M\", $5, $3, $6, $(i+1)}' "
    "/proc/self/mountinfo; "
    "for p in $(awk '$5 ~ \"^/sys/fs/cgroup\" {print $5}' /proc/self/mountinfo | sort -u); do "
    "test -e $p && echo D $p $(stat -c '%d' $p); done; "
    "for d in $(find /sys/fs/cgroup -maxdepth 2 -type d); do mkdir $d/NAME 2>/dev/null && echo MKDIR $d; done; "
    "for f in $(find /sys/fs/cgroup -maxdepth 2 -name release_agent); do "
    "echo /x > $f 2>/dev/null && echo WROTE $f; done; echo probed")


def reachable_cgroup_mounts(out: str) -> dict[str, tuple[str, str]]:
    """{mount point: (options, fstype)} of the mount a path under /sys/fs/cgroup reaches in the
    container: the last mount at that point whose device is the one the path stats to (a host
    hierarchy carried by the /sys rbind and covered by the cgroup mount's tmpfs is not reachable)."""
    entries: dict[str, list[tuple[str, str, str]]] = {}
    devs: dict[str, int] = {}
    for line in out.splitlines():
        f = line.split()
        if f[:1] == ["M"]:
            entries.setdefault(f[1], []).append((f[2], f[3], f[4]))
        elif f[:1] == ["D"]:
            devs[f[1]] = int(f[2])
    reached = {}
    for point, dev in devs.items():
        for majmin, opts, fstype in reversed(entries.get(point, [])):
            major, minor = (int(x) for x in majmin.split(":"))
            if os.makedev(major, minor) == dev:
                reached[point] = (opts, fstype)
                break
    return reached


@pytest.fixture(params=["pyrunc", "runc-1.5.1"])
def pyrunc_or_runc15(request, tmp_path):
    from tests.oracles import runtime_named

    yield from runtime_named(request.param, tmp_path)


@pytest.mark.cve("CVE-2023-25809")
@pytest.mark.parametrize("userns", [True, False], ids=["userns", "no-userns"])
@pytest.mark.parametrize("cgroupns", [True, False], ids=["cgroupns", "no-cgroupns"])
def test_sys_rbind_ro_leaves_no_writable_cgroup_submount(pyrunc_or_runc15, bundle, userns, cgroupns):
    """/sys as an `rbind,ro` bind of the host's /sys, the cgroup mount on /sys/fs/cgroup: nothing
    of the host's cgroupfs is writable from inside, in a user namespace or not, with a cgroup
    namespace or not; pyrunc and runc 1.5.1 alike.

    `ro` on an rbind makes only the bind's own mount read-only (the spec, the CRI and runc:
    tests/integration/test_readonly_mounts.py), so the host's cgroup hierarchies arrive under
    the container's /sys writable. The protection is where runc keeps it (CVE-2023-25809's fix,
    `mountCgroupV1`/`mountCgroupV2` in runc's libcontainer/rootfs_linux.go): the cgroup mount
    that follows covers /sys/fs/cgroup, and each hierarchy (or the cgroup2 bind a user namespace
    without a cgroup namespace falls back to) is remounted read-only. The user namespace maps
    the container's root to the host's, so a host hierarchy left writable would really be
    writable (as the rootless user's own cgroup was in the advisory).

    Weakened (shown): pyrunc/rootfs/mounts.py mount_cgroup without the `bind_remount` of each
    v1 hierarchy: both no-cgroupns cases fail for pyrunc (the own-cgroup binds are reachable rw
    and mkdir works in every hierarchy); runc 1.5.1 passes all four.
    """
    rt = pyrunc_or_runc15
    name = f"i25-escape-{os.getpid()}"
    mounts = [m for m in bundle.config["mounts"] if not m["destination"].startswith("/sys")]
    mounts.append({"destination": "/sys", "type": "bind", "source": "/sys",
                   "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                   "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    bundle.config["mounts"] = mounts
    namespaces = [ns for ns in bundle.config["linux"]["namespaces"] if cgroupns or ns["type"] != "cgroup"]
    if userns:
        namespaces.append({"type": "user"})
        bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
        bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    bundle.config["linux"]["namespaces"] = namespaces
    bundle.config["linux"]["maskedPaths"] = []
    bundle.config["process"]["capabilities"] = {k: ALL_CAPS_BUT_PTRACE for k in ("bounding", "effective", "permitted")}
    try:
        p = probe(rt, bundle, SYS_RBIND_PROBE.replace("NAME", name))
    finally:
        made = [d for d, _, _ in os.walk("/sys/fs/cgroup") if os.path.basename(d) == name]
        for d in made:
            os.rmdir(d)
    assert p.returncode == 0, f"{rt.name}: {p.stderr}"
    assert "probed" in p.stdout
    assert not made, f"{rt.name}: the container made host cgroups: {made}\n{p.stdout}"
    assert "WROTE" not in p.stdout, f"{rt.name}: {p.stdout}"
    reached = reachable_cgroup_mounts(p.stdout)
    assert reached, f"{rt.name}: no mount reachable under /sys/fs/cgroup: {p.stdout}"
    # mkdir may succeed in the container's own tmpfs at /sys/fs/cgroup (runc leaves it writable);
    # in a directory of a cgroup filesystem it is an escape (the runtime's delete may have
    # removed the child cgroup on the host already, so the output is the evidence).
    mkdirs = [line.split()[1] for line in p.stdout.splitlines() if line.startswith("MKDIR ")]
    on_cgroupfs = [d for d in mkdirs
                   if reached[max((pt for pt in reached if d == pt or d.startswith(pt + "/")), key=len)][1]
                   .startswith("cgroup")]
    assert not on_cgroupfs, f"{rt.name}: mkdir worked in host cgroups: {on_cgroupfs}"
    writable = {point: v for point, v in reached.items()
                if v[1].startswith("cgroup") and "ro" not in v[0].split(",")}
    assert not writable, f"{rt.name}: writable cgroupfs reachable inside: {writable}"


# ---------------------------------------------------------------------------------------------
# runc #3674: the host's /dev/null chowned through stdio


def test_host_dev_null_stdio_with_non_root_user(pyrunc, bundle):
    """stdio on the host's /dev/null and process.user 1000: the host /dev/null keeps root 0666.

    The conftest guard (host_dev_null_untouched) checks identity too; this asserts the exact
    owner and mode. pyrunc only: runc 1.1.5 chowns the host /dev/null (#3674).

    Weakened (shown): an fchown of fds 0-2 to the container uid in switch_user
    (pyrunc/process/init.py): the host /dev/null became 1000:1000 and this test and the guard
    failed (the host node was chowned back to root:root by hand afterwards).
    """
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["args"] = ["sh", "-c", "ls -l /proc/self/fd/ >/dev/null"]
    bundle.write()
    with open("/dev/null", "r+b") as null:
        p = run_subprocess_null(pyrunc.cmd("run", "dn"), bundle.path, null)
    pyrunc.ids.add("dn")
    assert p == 0
    st = os.stat("/dev/null")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_rdev) == (0, 0, 0o666, os.makedev(1, 3))


def run_subprocess_null(cmd: list[str], cwd: Path, null) -> int:
    import subprocess

    return subprocess.run(cmd, stdin=null, stdout=null, stderr=null, cwd=cwd, timeout=60).returncode


def test_sentinel_fixture_detects_changes(tmp_path):
    """The sentinel check itself must fire, or every test above passes vacuously."""
    s = Sentinel(tmp_path / "s")
    (s.path / "new").write_text("x")
    with pytest.raises(AssertionError):
        s.assert_untouched()
