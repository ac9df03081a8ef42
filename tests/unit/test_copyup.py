"""tmpcopyup's copy (pyrunc/rootfs/copyup.py): what is kept, and that symlinks are never followed.

Real files on this host's filesystems (no container): a source tree with every kind of entry, a
sentinel directory next to it that symlinks aim at, and a destination directory.
"""

from __future__ import annotations

import os
import stat

import pytest

from pyrunc.rootfs import copyup

T0 = (978307200 * 10**9, 978307200 * 10**9 + 5)


def _open_dir(path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _copy(src, dst) -> None:
    s, d = _open_dir(src), _open_dir(dst)
    try:
        copyup.copy_tree(s, d)
    finally:
        os.close(s)
        os.close(d)


@pytest.fixture
def trees(tmp_path):
    src, dst, sentinel = tmp_path / "src", tmp_path / "dst", tmp_path / "sentinel"
    for d in (src, dst, sentinel):
        d.mkdir()
    (sentinel / "secret").write_text("host")
    yield src, dst, sentinel
    assert sorted(os.listdir(sentinel)) == ["secret"] and (sentinel / "secret").read_text() == "host"


def test_content_modes_owners_times(trees):
    src, dst, _ = trees
    (src / "f").write_text("data")
    os.chown(src / "f", 1000, 1001)
    os.chmod(src / "f", 0o4750)  # after the chown, which would clear setuid
    os.utime(src / "f", ns=T0)
    (src / "sticky").mkdir()
    os.chmod(src / "sticky", 0o1777)
    (src / "ro").mkdir()
    (src / "ro" / "inner").write_bytes(b"\0" * 70000)
    os.chown(src / "ro", 1002, 1002)
    os.chmod(src / "ro", 0o500)  # filled before its mode is applied
    os.utime(src / "ro", ns=T0)
    _copy(src, dst)
    st = os.stat(dst / "f")
    assert (dst / "f").read_text() == "data"
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o4750)
    assert (st.st_atime_ns, st.st_mtime_ns) == T0
    assert stat.S_IMODE(os.stat(dst / "sticky").st_mode) == 0o1777
    st = os.stat(dst / "ro")
    assert (st.st_uid, stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (1002, 0o500, T0[1])
    assert (dst / "ro" / "inner").read_bytes() == b"\0" * 70000


def test_symlinks_are_copied_never_followed(trees):
    src, dst, sentinel = trees
    os.symlink(str(sentinel / "secret"), src / "abs")
    os.symlink("../" * 20 + str(sentinel).lstrip("/"), src / "climb")
    os.symlink(str(sentinel), src / "dirlink")
    os.symlink("nowhere", src / "dangling")
    os.lchown(src / "abs", 1000, 1000)
    _copy(src, dst)
    for name, target in (("abs", str(sentinel / "secret")), ("dangling", "nowhere"),
                         ("dirlink", str(sentinel))):
        assert os.readlink(dst / name) == target
    assert os.readlink(dst / "climb").startswith("../../")
    assert os.lstat(dst / "abs").st_uid == 1000
    assert sorted(os.listdir(dst)) == ["abs", "climb", "dangling", "dirlink"]


def test_special_files_and_xattrs(trees):
    src, dst, _ = trees
    os.mkfifo(src / "fifo")
    os.chmod(src / "fifo", 0o620)
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (src / "x").write_text("x")
    try:
        os.setxattr(src / "x", "user.pyrunc", b"kept")
    except OSError:
        pytest.skip("this filesystem takes no user.* xattrs")
    _copy(src, dst)
    st = os.stat(dst / "fifo")
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620
    st = os.stat(dst / "null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert os.getxattr(dst / "x", "user.pyrunc") == b"kept"


def test_deep_tree_keeps_few_fds_open(trees):
    """Only the current path's directories are open: a deep tree neither recurses nor runs out of fds."""
    src, dst, _ = trees
    depth = 300
    fd = _open_dir(src)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.close(fd)
    before = len(os.listdir("/proc/self/fd"))
    _copy(src, dst)
    assert len(os.listdir("/proc/self/fd")) == before
    assert os.path.isdir(os.path.join(dst, *["d"] * depth))


def test_a_file_swapped_for_a_symlink_is_an_error_not_an_escape(trees, monkeypatch):
    """The inode listed is the one read: a file replaced by a symlink after the listing fails the copy."""
    src, dst, sentinel = trees
    (src / "f").write_text("image")
    real_stat = os.stat

    def swap_after_stat(path, *a, **kw):
        st = real_stat(path, *a, **kw)
        if path == "f":
            os.unlink(src / "f")
            os.symlink(str(sentinel / "secret"), src / "f")
        return st

    monkeypatch.setattr(copyup.os, "stat", swap_after_stat)
    with pytest.raises(copyup.CopyError) as ei:
        _copy(src, dst)
    assert ei.value.filename == "/f"
    assert not (dst / "f").exists() or (dst / "f").read_text() != "host"
