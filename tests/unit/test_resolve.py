"""The in-root resolver never hands back an fd outside the rootfs, with openat2 and with the fallback walk.

Every test builds a temp rootfs with a *sentinel* directory next to it; symlinks in the rootfs
point at the sentinel by absolute path or by climbing with ``..``. The sentinel must never change
and every fd returned must read back (via /proc/self/fd) as inside the rootfs.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import threading
import time

import pytest

from pyrunc.linux import mount as m
from pyrunc.linux._libc import fn
from pyrunc.rootfs import resolve as r


@pytest.fixture(params=["openat2", "fallback"])
def mode(request, monkeypatch) -> str:
    """Run each test twice: kernel openat2, and the forced component walk."""
    monkeypatch.setattr(r, "force_fallback", request.param == "fallback")
    return request.param


@pytest.fixture
def tree(tmp_path):
    """(rootfs path, root O_PATH fd, sentinel path) with the sentinel snapshotted for the teardown check."""
    root = tmp_path / "rootfs"
    sentinel = tmp_path / "sentinel"
    root.mkdir()
    sentinel.mkdir()
    (sentinel / "secret").write_text("host")
    (root / "etc").mkdir()
    (root / "etc" / "file").write_text("in")
    fd = r.open_root(str(root))
    yield str(root), fd, str(sentinel)
    os.close(fd)
    assert sorted(os.listdir(sentinel)) == ["secret"]
    assert (sentinel / "secret").read_text() == "host"


def real(fd: int) -> str:
    """Where an fd really is; closes it (tests only need the answer)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def errno_of(func, *args, **kw) -> int:
    """Run a call expected to fail and return its errno."""
    with pytest.raises(OSError) as ei:
        fd = func(*args, **kw)
        os.close(fd)
    return ei.value.errno


def test_plain_paths(mode, tree) -> None:
    root, fd, _ = tree
    assert real(r.resolve(fd, "/etc/file")) == f"{root}/etc/file"
    assert real(r.resolve(fd, "etc//./file")) == f"{root}/etc/file"
    assert real(r.resolve(fd, "/")) == root
    assert real(r.resolve(fd, "")) == root


def test_dotdot_in_request_clamps_at_root(mode, tree) -> None:
    root, fd, _ = tree
    assert real(r.resolve(fd, "../../../../etc/file")) == f"{root}/etc/file"
    assert real(r.resolve(fd, "/etc/../../..")) == root


def test_absolute_symlink_to_sentinel_stays_inside(mode, tree) -> None:
    root, fd, sentinel = tree
    os.symlink(sentinel, f"{root}/abs")
    assert errno_of(r.resolve, fd, "/abs/secret") == errno.ENOENT
    os.makedirs(f"{root}{sentinel}")
    assert real(r.resolve(fd, "/abs")) == f"{root}{sentinel}"


def test_absolute_symlinks_to_host_roots(mode, tree) -> None:
    root, fd, _ = tree
    os.symlink("/", f"{root}/slash")
    os.symlink("/etc", f"{root}/etclink")
    assert real(r.resolve(fd, "/slash")) == root
    assert real(r.resolve(fd, "/etclink/file")) == f"{root}/etc/file"


def test_relative_symlink_climbing_out_is_clamped(mode, tree) -> None:
    root, fd, sentinel = tree
    os.symlink("../../../../../..", f"{root}/etc/up")
    os.symlink("../../../../sentinel", f"{root}/etc/sen")
    assert real(r.resolve(fd, "/etc/up")) == root
    assert real(r.resolve(fd, "/etc/up/etc/file")) == f"{root}/etc/file"
    assert errno_of(r.resolve, fd, "/etc/sen/secret") == errno.ENOENT


@pytest.mark.parametrize("links", [{"a": "b", "b": "a"}, {"a": "a"}, {"a": "a/x"}])
def test_symlink_loops_are_eloop(mode, tree, links) -> None:
    root, fd, _ = tree
    for name, target in links.items():
        os.symlink(target, f"{root}/{name}")
    assert errno_of(r.resolve, fd, "/a") == errno.ELOOP
    assert errno_of(r.mkdir_all_in_root, fd, "/a/b/c") == errno.ELOOP


def test_long_symlink_chain_is_eloop(mode, tree) -> None:
    root, fd, _ = tree
    for i in range(41):
        os.symlink(f"l{i + 1}", f"{root}/l{i}")
    os.mkdir(f"{root}/l41")
    assert errno_of(r.resolve, fd, "/l0") == errno.ELOOP
    assert real(r.resolve(fd, "/l5")) == f"{root}/l41"


def test_dangling_symlinks_are_created_inside(mode, tree) -> None:
    """Middle and last components that dangle get their target made inside the root."""
    root, fd, sentinel = tree
    os.symlink(f"{sentinel}/made", f"{root}/last")
    os.symlink("/var/lib", f"{root}/mid")
    assert real(r.mkdir_all_in_root(fd, "/last")) == f"{root}{sentinel}/made"
    assert real(r.mkdir_all_in_root(fd, "/mid/x/y")) == f"{root}/var/lib/x/y"
    assert not os.path.exists(f"{sentinel}/made")


def test_create_file_through_dangling_symlink(mode, tree) -> None:
    root, fd, sentinel = tree
    os.symlink(f"{sentinel}/newfile", f"{root}/etc/f")
    out = r.create_file_in_root(fd, "/etc/f")
    assert stat.S_ISREG(os.fstat(out).st_mode)
    assert real(out) == f"{root}{sentinel}/newfile"


def test_file_where_directory_expected(mode, tree) -> None:
    _, fd, _ = tree
    assert errno_of(r.resolve, fd, "/etc/file/x") == errno.ENOTDIR
    assert errno_of(r.resolve, fd, "/etc/file/") == errno.ENOTDIR
    assert errno_of(r.resolve, fd, "/etc/file", directory=True) == errno.ENOTDIR
    assert errno_of(r.mkdir_all_in_root, fd, "/etc/file/sub") == errno.ENOTDIR
    assert errno_of(r.mkdir_all_in_root, fd, "/etc/file") == errno.ENOTDIR


def test_nul_bytes_are_a_clean_error(mode, tree) -> None:
    _, fd, _ = tree
    assert errno_of(r.resolve, fd, "/etc\x00/file") == errno.EINVAL
    assert errno_of(r.mkdir_all_in_root, fd, "/x\x00y") == errno.EINVAL


def test_overlong_names(mode, tree) -> None:
    _, fd, _ = tree
    assert errno_of(r.mkdir_all_in_root, fd, "/" + "n" * 256) == errno.ENAMETOOLONG


def test_magic_link_text_is_not_followed(mode, tree) -> None:
    """Image symlinks to /proc/self/root or /proc/self/fd/N resolve in-root (no /proc there)."""
    root, fd, _ = tree
    os.symlink("/proc/self/root", f"{root}/pr")
    os.symlink(f"/proc/self/fd/{fd}", f"{root}/pfd")
    assert errno_of(r.resolve, fd, "/pr/etc") == errno.ENOENT
    assert errno_of(r.resolve, fd, "/pfd") == errno.ENOENT


def test_fifo_is_never_opened_for_io(mode, tree) -> None:
    """A FIFO at a destination would block open(); O_PATH must return at once."""
    root, fd, _ = tree
    os.mkfifo(f"{root}/fifo")
    t0 = time.monotonic()
    out = r.resolve(fd, "/fifo")
    assert stat.S_ISFIFO(os.fstat(out).st_mode)
    os.close(out)
    assert time.monotonic() - t0 < 2


def test_existing_paths_are_opened_not_recreated(mode, tree) -> None:
    root, fd, _ = tree
    ino = os.stat(f"{root}/etc").st_ino
    out = r.mkdir_all_in_root(fd, "/etc")
    assert os.fstat(out).st_ino == ino
    os.close(out)
    out = r.create_file_in_root(fd, "/etc/file")
    assert open(f"{root}/etc/file").read() == "in"
    os.close(out)


def test_open_parent_in_root(mode, tree) -> None:
    root, fd, _ = tree
    pfd, name = r.open_parent_in_root(fd, "/dev/net/tun")
    assert name == "tun" and real(pfd) == f"{root}/dev/net"
    assert errno_of(lambda: r.open_parent_in_root(fd, "/dev/..")[0]) == errno.EINVAL


def test_verify_under_rejects_outside_fds(tree) -> None:
    _, fd, sentinel = tree
    out = os.open(sentinel, os.O_PATH)
    try:
        with pytest.raises(OSError) as ei:
            r.verify_under(out, fd, "x")
        assert ei.value.errno == errno.EXDEV
    finally:
        os.close(out)


def test_fallback_only_on_enosys(tree, monkeypatch) -> None:
    """ENOSYS from openat2 switches to the walk; any other error is final (no downgrade)."""
    root, fd, _ = tree
    calls = []

    def enosys(*a, **k):
        calls.append(a)
        raise OSError(errno.ENOSYS, "nope")

    monkeypatch.setattr(r, "_have_openat2", None)
    monkeypatch.setattr(m, "openat2", enosys)
    assert real(r.resolve(fd, "/etc/file")) == f"{root}/etc/file"
    assert calls and r._have_openat2 is False

    def eperm(*a, **k):
        raise OSError(errno.EPERM, "seccomp")

    monkeypatch.setattr(r, "_have_openat2", True)
    monkeypatch.setattr(m, "openat2", eperm)
    assert errno_of(r.resolve, fd, "/etc/file") == errno.EPERM


def test_eagain_is_retried(tree, monkeypatch) -> None:
    root, fd, _ = tree
    real_openat2 = m.openat2
    n = {"left": 3}

    def flaky(*a, **k):
        if n["left"]:
            n["left"] -= 1
            raise OSError(errno.EAGAIN, "busy")
        return real_openat2(*a, **k)

    monkeypatch.setattr(r, "_have_openat2", True)
    monkeypatch.setattr(m, "openat2", flaky)
    assert real(r.resolve(fd, "/etc/file")) == f"{root}/etc/file"


_renameat2 = fn("renameat2", ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                ctypes.c_char_p, ctypes.c_uint)
RENAME_EXCHANGE = 2


@pytest.mark.slow
def test_rename_exchange_race_never_escapes(mode, tree) -> None:
    """A racer swaps a directory with a symlink to the sentinel while we mkdir_all beneath it."""
    root, fd, sentinel = tree
    os.mkdir(f"{root}/v")
    os.mkdir(f"{root}/v/a")
    os.symlink(sentinel, f"{root}/v/alink")
    stop = threading.Event()

    def racer() -> None:
        a, b = f"{root}/v/a".encode(), f"{root}/v/alink".encode()
        while not stop.is_set():
            _renameat2(m.AT_FDCWD, a, m.AT_FDCWD, b, RENAME_EXCHANGE)

    t = threading.Thread(target=racer)
    t.start()
    try:
        for i in range(1500):
            try:
                out = r.mkdir_all_in_root(fd, f"/v/a/d{i % 7}/sub")
            except OSError:
                continue
            path = real(out)
            assert path.startswith(root + "/"), path
    finally:
        stop.set()
        t.join()


def test_parents_of_a_new_file_are_searchable_directories(tmp_path):
    """A file mount point in a new directory: the directories get 0755, the file its own mode."""
    import stat as st

    from pyrunc.rootfs import resolve as r

    root = tmp_path / "root"
    root.mkdir()
    old = os.umask(0)
    try:
        root_fd = r.open_root(str(root))
        try:
            os.close(r.create_file_in_root(root_fd, "/run/notify/notify.sock", 0o644))
        finally:
            os.close(root_fd)
    finally:
        os.umask(old)
    assert st.S_IMODE(os.stat(root / "run").st_mode) == 0o755
    assert st.S_IMODE(os.stat(root / "run" / "notify").st_mode) == 0o755
    assert st.S_IMODE(os.stat(root / "run" / "notify" / "notify.sock").st_mode) == 0o644


def _read_in_root(fd: int, path: str) -> str:
    f = r.open_in_root(fd, path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert not stat.S_ISLNK(os.fstat(f).st_mode)
        return os.read(f, 100).decode()
    finally:
        os.close(f)


def test_open_in_root_follows_symlinks_inside(mode, tree) -> None:
    """An image's /etc/passwd may be a symlink (issue 12 #7): followed, for reading, in the root."""
    root, fd, _ = tree
    os.makedirs(f"{root}/usr/share")
    with open(f"{root}/usr/share/passwd", "w") as f:
        f.write("shared")
    os.symlink("../usr/share/passwd", f"{root}/etc/rel")
    os.symlink("/usr/share/passwd", f"{root}/etc/abs")
    os.symlink("/../../../../usr/share/passwd", f"{root}/etc/climb")
    for name in ("rel", "abs", "climb"):
        assert _read_in_root(fd, f"/etc/{name}") == "shared"


def test_open_in_root_never_reads_outside(mode, tree) -> None:
    """Symlinks at the sentinel by absolute path or by climbing resolve in the root: not found."""
    root, fd, sentinel = tree
    os.symlink(f"{sentinel}/secret", f"{root}/etc/abs")
    os.symlink("../" * 30 + sentinel.lstrip("/") + "/secret", f"{root}/etc/climb")
    os.symlink(f"/proc/self/fd/{fd}/../../sentinel/secret", f"{root}/etc/magic")
    for name in ("abs", "climb", "magic"):
        assert errno_of(r.open_in_root, fd, f"/etc/{name}") == errno.ENOENT


def test_open_in_root_refuses_magic_links(tree) -> None:
    """Even where a real /proc is inside the root (here: the host's), /proc/self/fd/N is not
    followed, so a process holding runtime fds (exec) cannot be pointed at them."""
    _, _, sentinel = tree
    host_root = r.open_root("/")
    secret = os.open(f"{sentinel}/secret", os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert errno_of(r.open_in_root, host_root, f"/proc/self/fd/{secret}") == errno.ELOOP
    finally:
        os.close(secret)
        os.close(host_root)
