"""Error paths of the exec-label writer (security/lsm.py) with a fake procfs attr file.

The real thing runs in the QEMU guest (tests/vm/test_apparmor.py); this host's
kernel has no AppArmor, so the kernel's answers are faked here.
"""

from __future__ import annotations

import errno
import os

import pytest

from pyrunc.errors import PyruncError
from pyrunc.linux import procfs
from pyrunc.security import lsm


@pytest.fixture
def attr(monkeypatch):
    """Opens of the attr files succeed on a pipe; writes fail with the errno the test sets."""
    state = {"errno": None, "opened": [], "written": []}
    r, w = os.pipe()

    def fake_open(path, flags, *a):
        state["opened"].append(path)
        return os.dup(w)

    def fake_write(fd, data):
        if state["errno"] is not None:
            raise OSError(state["errno"], os.strerror(state["errno"]))
        state["written"].append(data)
        return len(data)

    monkeypatch.setattr(procfs, "open", fake_open)  # the writer goes through our procfs handle
    monkeypatch.setattr(lsm.os, "write", fake_write)
    yield state
    os.close(r)
    os.close(w)


def test_profile_written_as_exec_request_to_the_apparmor_attr(attr):
    lsm.apply_exec_labels({"apparmorProfile": "p1"})
    assert attr["opened"] == ["thread-self/attr/apparmor/exec"]
    assert attr["written"] == [b"exec p1"]


def test_profile_not_loaded_is_named(attr):
    attr["errno"] = errno.ENOENT
    with pytest.raises(PyruncError) as e:
        lsm.apply_exec_labels({"apparmorProfile": "p1"})
    assert e.value.step == "apply_lsm_labels"
    assert "apparmor profile 'p1' is not loaded" in str(e.value)


def test_other_errors_keep_the_kernels_reason(attr):
    attr["errno"] = errno.EACCES
    with pytest.raises(PyruncError) as e:
        lsm.apply_exec_labels({"apparmorProfile": "p1"})
    assert "set apparmor exec label 'exec p1': Permission denied" in str(e.value)


def test_no_attr_file_at_all(monkeypatch):
    def missing(path, flags, *a):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/proc/" + path)

    monkeypatch.setattr(procfs, "open", missing)
    with pytest.raises(PyruncError) as e:
        lsm.apply_exec_labels({"apparmorProfile": "p1"})
    assert "/proc/thread-self/attr/exec" in str(e.value)
