"""Two containers sharing a parent cgroup that one of them created, on this host's real cgroups.

pyrunc removes the empty parents it created (Manager.destroy); a sibling being
created under the same parent at that moment must not fail. Both orders of the
race are forced deterministically by running one manager's step inside the
other's syscall (a wrapper around os.mkdir / the subdirectory check), so the
window is hit every time instead of by luck. Kubernetes hits it with every
pod parent (kubepods/<pod>/<container>) created and removed concurrently;
tests/cri/test_concurrency.py does the same through containerd.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyrunc.cgroups import base, create_manager, detect
from pyrunc.cgroups.base import Manager

pytestmark = [pytest.mark.root]

if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)
LAYOUT = detect.detect()


@pytest.fixture
def parent() -> Iterator[str]:
    """A unique absolute parent path; whatever is left of it is removed afterwards."""
    name = f"pyrunc-parent-race-{os.getpid()}"
    yield "/" + name
    dirs = [Path(h.mountpoint) / name for h in LAYOUT.v1.values()]
    if LAYOUT.unified is not None:
        dirs.append(Path(LAYOUT.unified.mountpoint) / name)
    for d in dirs:
        for sub in sorted(d.glob("*/"), reverse=True):
            if sub.is_dir():
                sub.rmdir()
        if d.is_dir():
            d.rmdir()


def _dirs(m: Manager) -> set[str]:
    return set(m.paths().values())


def _parents(m: Manager) -> set[str]:
    return {os.path.dirname(d) for d in _dirs(m)}


def test_sibling_mkdir_after_the_parent_was_removed(parent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """B finds the parent present (EEXIST), then A's destroy removes it, then B's mkdir below it.

    B must start its walk again, re-create the parent (now B's to remove) and succeed.
    """
    a = create_manager(f"{parent}/a", "race-a", layout=LAYOUT)
    b = create_manager(f"{parent}/b", "race-b", layout=LAYOUT)
    a.create()
    assert _parents(a) <= set(a.save()["created"]), "A must have created the parent for this test"
    real_mkdir = os.mkdir
    fired: list[str] = []

    def mkdir(path, mode=0o777, **kw):
        try:
            return real_mkdir(path, mode, **kw)
        except FileExistsError:
            if path in _parents(b) and not fired:
                fired.append(path)
                a.destroy()  # A leaves: its leaf, then the parent it created and that is now empty
                assert not os.path.isdir(path)
            raise

    monkeypatch.setattr(os, "mkdir", mkdir)
    b.create()
    monkeypatch.undo()
    assert fired, "the race was not forced"
    assert all(os.path.isdir(d) for d in _dirs(b))
    assert _parents(b) <= set(b.save()["created"]), "B re-created the parent, so B must remove it"
    b.destroy()
    assert not any(os.path.isdir(d) for d in _parents(b)), "the parent outlived both containers"


def test_parent_rmdir_while_a_sibling_is_created(parent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A's destroy sees the parent empty, then B creates its leaf in it, then A's rmdir (EBUSY).

    A must leave the parent to B at once (no EBUSY retries, no error); B removes nothing it
    did not create, so the parent stays until the test removes it.
    """
    a = create_manager(f"{parent}/a", "race-a", layout=LAYOUT)
    b = create_manager(f"{parent}/b", "race-b", layout=LAYOUT)
    a.create()
    real_has_subdirs = base._has_subdirs
    fired: list[str] = []

    def has_subdirs(d: str) -> bool:
        seen = real_has_subdirs(d)
        if d in _parents(a) and not fired:
            fired.append(d)
            b.create()  # B arrives between A's look and A's rmdir
        return seen

    monkeypatch.setattr(base, "_has_subdirs", has_subdirs)
    a.destroy()  # must not raise
    monkeypatch.undo()
    assert fired, "the race was not forced"
    assert not any(os.path.isdir(d) for d in _dirs(a))
    assert all(os.path.isdir(d) for d in _dirs(b)), "B's cgroup must be intact"
    b.destroy()
    assert all(os.path.isdir(d) for d in _parents(b)), "B did not create the parent and must not remove it"
