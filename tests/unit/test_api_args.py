"""The Python API's argument checks and its place in the package, without making anything.

Every bad argument raises InvalidArgument (a ValueError and a pyrunc.Error) or a ConfigError
with JSON pointers, before any state, cgroup, fd or process exists: these run unprivileged,
against a state root that must stay empty.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import pyrunc
from pyrunc import api
from pyrunc.spec.default import default_config
from tests.unit.test_import_graph import graph


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(default_config(False)))
    return tmp_path


def test_the_package_serves_exactly_the_api_names():
    assert sorted(pyrunc._API) == sorted(api.__all__)
    for name in api.__all__:
        assert getattr(pyrunc, name) is getattr(api, name)
    with pytest.raises(AttributeError):
        pyrunc.no_such_name  # noqa: B018
    assert set(api.__all__) <= set(dir(pyrunc))


def test_import_pyrunc_loads_no_api_until_asked():
    code = ("import sys, pyrunc; print('pyrunc.api' in sys.modules); pyrunc.run; "
            "print('pyrunc.api' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(pyrunc.__file__)))
    assert out.stdout.split() == ["False", "True"]


def test_the_cli_and_the_api_do_not_import_each_other():
    edges = graph()
    for module, imports in edges.items():
        if module.startswith("pyrunc.cli"):
            assert not any(m.startswith("pyrunc.api") for m in imports), module
        if module.startswith("pyrunc.api"):
            assert not any(m.startswith("pyrunc.cli") for m in imports), module


def test_errors_form_one_family():
    assert issubclass(pyrunc.InvalidArgument, ValueError)
    assert issubclass(pyrunc.InvalidArgument, pyrunc.Error)
    assert issubclass(pyrunc.TimeoutExpired, TimeoutError)
    assert pyrunc.WrongState is pyrunc.WrongStatus and pyrunc.Error is pyrunc.PyruncError
    for name in api.__all__:
        value = getattr(pyrunc, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, pyrunc.Error), name


BAD_RUNS = [
    ({}, "give a bundle, a rootfs or a config"),
    ({"args": "echo hi"}, "args must be a list of str"),
    ({"args": []}, "args must not be empty"),
    ({"args": ["echo", 1]}, "args must hold only str"),
    ({"args": ["a\0b"]}, "NUL"),
    ({"args": ["true"], "timeout": 0}, "timeout must be a positive number"),
    ({"args": ["true"], "timeout": float("nan")}, "timeout"),
    ({"args": ["true"], "timeout": True}, "timeout"),
    ({"args": ["true"], "memory": "lots"}, "memory must be bytes or a size"),
    ({"args": ["true"], "memory": 0}, "memory must be a positive size"),
    ({"args": ["true"], "pids": 0}, "pids must be a positive int"),
    ({"args": ["true"], "cpus": -1}, "cpus must be a positive number"),
    ({"args": ["true"], "cpus": float("inf")}, "cpus"),
    ({"args": ["true"], "env": {"A=B": "c"}}, "env must map names"),
    ({"args": ["true"], "env": ["NOEQUALS"]}, "NAME=value"),
    ({"args": ["true"], "cwd": "relative"}, "cwd must be an absolute path"),
    ({"args": ["true"], "user": "root"}, "user must be a uid"),
    ({"args": ["true"], "user": (0, -1)}, "user must be a uid"),
    ({"args": ["true"], "capture": True, "stdout": -1}, "capture=True cannot be combined"),
    ({"args": ["true"], "input": "text"}, "input is a str"),
    ({"args": ["true"], "input": 5}, "input must be bytes"),
    ({"args": ["true"], "input": b"x", "stdin": -3}, "input cannot be combined with stdin"),
    ({"args": ["true"], "stdout": "file.txt"}, "stdout must be None, PIPE"),
    ({"args": ["true"], "stdout": 999}, "fd 999 is not open"),
    ({"args": ["true"], "stdin": -2}, "only stderr can go to stdout"),
    ({"args": ["true"], "check": 1}, "check and systemd_cgroup must be True or False"),
    ({"args": ["true"], "rootless": "yes"}, "rootless must be True, False or None"),
    ({"args": ["true"], "root": "/"}, "root must not be /"),
    ({"args": ["true"], "resources": [1]}, "resources must be a dict"),
    ({"args": ["true"], "resources": {"pids": {"limit": float("nan")}}}, "resources is not JSON data"),
]


@pytest.mark.parametrize("kwargs,message", BAD_RUNS)
def test_bad_arguments_raise_invalid_argument_before_anything(bundle, tmp_path, kwargs, message):
    root = tmp_path / "state"
    kwargs = {"root": str(root), **kwargs}
    target = {} if "args" not in kwargs else {"bundle": str(bundle)}
    with pytest.raises(pyrunc.InvalidArgument) as e:
        pyrunc.run(**target, **kwargs)
    assert message in e.value.cause
    assert not root.exists()


def test_bad_ids_and_paths(bundle, tmp_path):
    root = str(tmp_path / "state")
    with pytest.raises(pyrunc.InvalidID):
        pyrunc.run(str(bundle), ["true"], id="../escape", root=root)
    with pytest.raises(pyrunc.InvalidArgument, match="is not a directory"):
        pyrunc.run(str(tmp_path / "nope"), ["true"], root=root)
    with pytest.raises(pyrunc.InvalidArgument, match="not both"):
        pyrunc.run(str(bundle), ["true"], rootfs=str(bundle / "rootfs"), root=root)
    with pytest.raises(pyrunc.InvalidArgument, match="config must be a dict"):
        pyrunc.run(config=["x"], root=root)
    assert not os.path.exists(root)


def test_a_bad_config_names_every_pointer_and_the_callers_dict_is_untouched(bundle, tmp_path):
    cfg = default_config(False)
    cfg["process"]["args"] = "echo hi"
    cfg["hostname"] = 7
    before = json.dumps(cfg)
    with pytest.raises(pyrunc.ConfigError) as e:
        pyrunc.run(config=cfg, bundle=str(bundle), root=str(tmp_path / "state"))
    assert sorted(e.value.pointers) == ["/hostname", "/process/args"]
    assert json.dumps(cfg) == before
    with pytest.raises(pyrunc.InvalidArgument, match="not JSON data"):  # JSON cannot say a set
        pyrunc.run(config={"ociVersion": "1.0.0", "x": {1, 2}}, root=str(tmp_path / "state"))


def test_a_bundle_without_config_json_is_one_config_error(tmp_path):
    with pytest.raises(pyrunc.ConfigError) as e:
        pyrunc.run(str(tmp_path), ["true"], root=str(tmp_path / "state"))
    assert "config.json" in str(e.value)


def test_container_handles_check_their_arguments(tmp_path):
    root = str(tmp_path / "state")
    with pytest.raises(pyrunc.InvalidID):
        pyrunc.Container("a/b", root=root)
    c = pyrunc.Container("x", root=root)
    with pytest.raises(pyrunc.InvalidArgument, match="signal"):
        c.kill(0)
    with pytest.raises(pyrunc.InvalidArgument):
        c.kill("NOPE")
    with pytest.raises(pyrunc.InvalidArgument, match="interval"):
        c.events(interval=0)
    with pytest.raises(pyrunc.InvalidArgument, match="nothing to update"):
        c.update()
    with pytest.raises(pyrunc.InvalidArgument, match="force"):
        c.delete(force="yes")
    with pytest.raises(pyrunc.NotFound):
        c.start()
    with pytest.raises(pyrunc.NotFound):
        _ = c.status
    assert pyrunc.Container.list(root=root) == []


def test_completed_run_reads_like_subprocess():
    r = pyrunc.CompletedRun("c", ["sh"], -9, b"out", None)
    assert r.exit_status == 137
    with pytest.raises(pyrunc.ProcessFailed) as e:
        r.check_returncode()
    assert (e.value.returncode, e.value.stdout, e.value.container) == (-9, b"out", "c")
    assert "returncode=-9" in repr(r) and "stdout=b'out'" in repr(r)
    pyrunc.CompletedRun("c", ["true"], 0).check_returncode()
