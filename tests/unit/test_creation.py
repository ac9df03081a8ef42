"""The creation frame shared by create and restore (process/creation.py), errors.Boundary, the
typed state record and the channel's declared message kinds: their rules, without a container
(tests/integration/test_crash.py and test_bad_input.py prove the same on real ones)."""

from __future__ import annotations

import errno
import marshal
import os

import pytest

from pyrunc.errors import CREATE, RESTORE, Boundary, ChildError, InvalidID, PyruncError
from pyrunc.process.channel import Channel
from pyrunc.process.creation import Creation
from pyrunc.state import Record, StateDir, oci_state


def test_failure_unwinds_newest_first_then_always_and_stamps_once(tmp_path):
    sd = StateDir(str(tmp_path / "root"), "c1")
    calls = []
    with pytest.raises(PyruncError) as info:
        with Creation(sd, CREATE) as c:
            c.reserve()
            assert sd.exists()
            c.always(calls.append, "always")
            c.undo(calls.append, "first")
            c.undo(calls.append, "second")
            raise PyruncError("boom", step="mount")
    assert calls == ["second", "first", "always"]
    assert not sd.exists()  # reserve's undo ran last
    assert info.value.line() == "container c1: mount: boom"


def test_success_runs_only_always(tmp_path):
    sd = StateDir(str(tmp_path / "root"), "c1")
    calls = []
    with Creation(sd, CREATE) as c:
        c.reserve()
        c.undo(calls.append, "undo")
        c.always(calls.append, "always")
    assert calls == ["always"]
    assert sd.exists() and sd.lock_fd is None  # kept, and unlocked


def test_a_failing_undo_is_a_warning_and_the_rest_still_runs(tmp_path, capfd):
    sd = StateDir(str(tmp_path / "root"), "c1")

    def broken():
        raise PyruncError("rmdir x: Device or resource busy", step="destroy cgroup")

    with pytest.raises(PyruncError, match="original"):
        with Creation(sd, CREATE) as c:
            c.reserve()
            c.undo(broken)
            raise PyruncError("original")
    assert not sd.exists()
    assert "container c1: cleanup: rmdir x: Device or resource busy" in capfd.readouterr().err


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.EROFS])
def test_an_os_error_no_step_caught_names_the_running_step(tmp_path, code):
    """A full or read-only state filesystem, a quota, the fd limit: any open, write or mkfifo of a
    creation meets them, so the frame names the step that ran (Creation.at), keeps the errno and
    unwinds, instead of an "internal error: OSError" line (issue 24)."""
    sd = StateDir(str(tmp_path / "root"), "c1")
    with pytest.raises(PyruncError) as info:
        with Creation(sd, CREATE) as c:
            c.reserve()
            c.at("make exec fifo")
            raise OSError(code, os.strerror(code), sd.fifo)
    assert info.value.line() == f"container c1: make exec fifo: {sd.fifo}: {os.strerror(code)}"
    assert info.value.errno == code
    assert not sd.exists()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_state_writes_name_save_state(tmp_path, monkeypatch, code):
    """The record's write (the temp file, then rename) on a full filesystem or over a quota."""
    sd = StateDir(str(tmp_path / "root"), "c1")

    def full(fd, data):
        raise OSError(code, os.strerror(code))

    with pytest.raises(PyruncError) as info:
        with Creation(sd, CREATE) as c:
            c.reserve()
            monkeypatch.setattr(os, "write", full)
            c.new_record("/rootfs", systemd_cgroup=False)
    monkeypatch.undo()
    assert info.value.line() == f"container c1: save state: write state file in {sd.path}: {os.strerror(code)}"
    assert not sd.exists()


def test_reserve_that_cannot_lock_leaves_no_directory(tmp_path, monkeypatch):
    """mkdir won, then the lock's open met the fd limit: the new directory goes again."""
    sd = StateDir(str(tmp_path / "root"), "c1")

    def no_fds():
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(sd, "lock", no_fds)
    with pytest.raises(PyruncError) as info:
        with Creation(sd, CREATE) as c:
            c.reserve()
    assert info.value.line().startswith("container c1: reserve state directory: lock state directory ")
    assert info.value.errno == errno.EMFILE
    assert not sd.exists()


def test_stage_errors_nest_under_the_operation_and_restore_nests_all(tmp_path):
    for operation, nest, error, line in [
        (CREATE, False, ChildError("bad mount", step="mount_filesystems"),
         "container c: create: mount_filesystems: bad mount"),
        (CREATE, False, PyruncError("no cgroup", step="create cgroup"), "container c: create cgroup: no cgroup"),
        (CREATE, False, PyruncError("no step"), "container c: create: no step"),
        (RESTORE, True, PyruncError("no cgroup", step="create cgroup"),
         "container c: restore: create cgroup: no cgroup"),
        (RESTORE, True, PyruncError("exists", step="restore"), "container c: restore: exists"),
    ]:
        sd = StateDir(str(tmp_path / operation), "c")
        with pytest.raises(PyruncError) as info:
            with Creation(sd, operation, nest=nest):
                raise error
        assert info.value.line() == line


def test_boundary_fills_once_and_sets_the_exit_code():
    e = PyruncError("x", step="join namespaces", container="other")
    with pytest.raises(PyruncError):
        with Boundary("c", "exec", nest=True, exit_code=255):
            raise e
    assert (e.container, e.step, e.exit_code) == ("other", "exec: join namespaces", 255)
    with pytest.raises(PyruncError):
        with Boundary("d", "exec", nest=True):
            raise e  # a second boundary changes nothing it already has
    assert e.line() == "container other: exec: join namespaces: x"
    bad = InvalidID("../x")
    with pytest.raises(InvalidID):
        with Boundary("../x", "delete"):
            raise bad
    assert bad.line() == "delete: invalid container ID format"  # a bad id is never echoed


def test_record_round_trips_with_the_names_on_disk():
    r = Record("c1", bundle="/b", rootfs="/b/rootfs", config={"ociVersion": "1.2.0", "annotations": {"a": "1"},
                                                              "hooks": {"poststop": []}}, pid=7)
    r.creating = True
    d = r.to_dict()
    assert d["ociVersion"] == "1.2.0" and d["creating"] is True and "oci_version" not in d
    back = Record.from_dict(marshal.loads(marshal.dumps(d)))
    assert back.to_dict() == d
    r.creating = False
    assert "creating" not in r.to_dict()
    with pytest.raises(AttributeError):
        r.bundel = "/typo"  # __slots__: a misspelt field is an error, not a new key
    assert Record.from_dict({"pid": 3, "cgroup": {"driver": "v1"}}).pid == 3  # a recovery record


def test_one_oci_state_builder():
    r = Record("c1", bundle="/b", rootfs="/r", config={"annotations": {"k": "v"}}, pid=42)
    r.created = "2026-01-01T00:00:00.000000000Z"
    assert list(oci_state(r, "creating")) == ["ociVersion", "id", "status", "pid", "bundle", "annotations"]
    full = oci_state(r, "running", full=True)
    assert list(full) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner",
                          "annotations"]
    assert oci_state(r, "stopped", full=True)["pid"] == 0
    assert oci_state(r, "stopped", pid=r.pid)["pid"] == 42


def test_channel_refuses_an_undeclared_kind():
    a, b = Channel.pair()
    try:
        with pytest.raises(ValueError, match="unknown sync message kind 'fault'"):
            a.send("fault")
        a.send("ready", timeline=[])
        assert b.recv()["type"] == "ready"
    finally:
        a.close()
        b.close()


def test_an_undo_at_the_fd_limit_runs_again_once_the_creation_closed_its_fds(tmp_path):
    """At EMFILE the state directory's removal cannot list it: the fds the creation holds are
    closed first (its ``always`` list), then the undo runs again; nothing is left."""
    sd = StateDir(str(tmp_path / "root"), "c1")
    calls = []
    tries = []

    def remove_needs_an_fd():
        tries.append(1)
        if not calls:
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE), sd.path)
        sd.remove()

    with pytest.raises(PyruncError, match="Too many open files"):
        with Creation(sd, CREATE) as c:
            c.reserve()
            c.undo(remove_needs_an_fd)
            c.always(calls.append, "closed")
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
    assert tries == [1, 1] and calls == ["closed"]
    assert not sd.exists()
