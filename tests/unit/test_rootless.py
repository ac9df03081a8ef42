"""Rootless detection, the state root rule and when id mappings need newuidmap/newgidmap."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyrunc import rootless, state
from pyrunc.errors import UsageError
from pyrunc.userns import needs_mapping_tool


def test_explicit_modes_win():
    assert rootless.detect("true") is True
    assert rootless.detect("false") is False
    with pytest.raises(UsageError):
        rootless.detect("yes")


@pytest.mark.skipif(os.geteuid() != 0, reason="root in the initial user namespace")
def test_root_in_the_initial_namespace_is_not_rootless():
    assert rootless.in_initial_userns()
    assert rootless.detect("auto") is False


@pytest.mark.skipif(os.geteuid() != 0, reason="root in the initial user namespace")
def test_root_inside_a_new_user_namespace_is_rootless():
    """How rootless podman runs the runtime: uid 0, but in a namespace that maps few ids."""
    repo = str(Path(__file__).resolve().parents[2])
    code = (f"import sys; sys.path.insert(0, {repo!r}); from pyrunc import rootless; "
            "print(rootless.in_initial_userns(), rootless.detect('auto'))")
    p = subprocess.run(["unshare", "--user", "--map-root-user", sys.executable, "-c", code],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False", "True"]


def test_state_root_rules(monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert state.default_root() == "/run/user/1000/pyrunc"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert state.default_root() == state.DEFAULT_ROOT, "no XDG_RUNTIME_DIR: runc's fallback"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    monkeypatch.setattr(rootless, "in_initial_userns", lambda: True)
    assert state.default_root() == state.DEFAULT_ROOT, "real root keeps /run/pyrunc"
    monkeypatch.setattr(rootless, "in_initial_userns", lambda: False)
    monkeypatch.setenv("USER", "alice")
    assert state.default_root() == "/run/user/1000/pyrunc", "root in podman's namespace"
    monkeypatch.setenv("USER", "root")
    assert state.default_root() == state.DEFAULT_ROOT, "a root shell that only unshared"


def test_only_the_own_id_alone_is_written_directly():
    assert not needs_mapping_tool([{"containerID": 0, "hostID": 1000, "size": 1}], 1000)
    assert not needs_mapping_tool([{"containerID": 5, "hostID": 1000, "size": 1}], 1000)
    assert needs_mapping_tool([{"containerID": 0, "hostID": 1001, "size": 1}], 1000)
    assert needs_mapping_tool([{"containerID": 0, "hostID": 1000, "size": 2}], 1000)
    assert needs_mapping_tool([{"containerID": 0, "hostID": 1000, "size": 1},
                               {"containerID": 1, "hostID": 100000, "size": 65536}], 1000)


def test_config_checks_name_the_unmapped_id():
    from pyrunc.errors import PyruncError

    cfg = {"process": {"user": {"uid": 0, "gid": 0, "additionalGids": [7]}},
           "linux": {"namespaces": [{"type": "user"}],
                     "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                     "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}}
    with pytest.raises(PyruncError, match=r"process.user.additionalGids 7 is not mapped by linux.gidMappings"):
        rootless.check_config(cfg)
    cfg["process"]["user"]["additionalGids"] = []
    rootless.check_config(cfg)
