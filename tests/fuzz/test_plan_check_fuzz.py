"""`pyrunc plan` and `pyrunc check` on generated and mutated configs (the create fuzzer's inputs).

Property for every config: both commands exit 0 or 1, never with a traceback or "internal
error", check's classes never break ("the X checks failed"), and plan makes nothing (its
--root stays absent). Run in-process through ``pyrunc.cli.main``: no container is made, so
hundreds of examples take seconds.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json

from hypothesis import given
from hypothesis import strategies as st

from pyrunc.cli import main
from tests.fuzz.test_config_fuzz import (
    FIXTURES,
    FUZZ,
    HOSTILE_NUMBERS,
    HOSTILE_STRINGS,
    SECTIONS,
    _fixture_config,
    _paths,
    from_schema,
    json_value,
    pin,
    set_in,
)


def both(bundle, tmp_path, text: str) -> None:
    (bundle.path / "config.json").write_text(text)
    root = tmp_path / "plan-root"
    for argv in (["plan", "--format", "json"], ["check", "--format", "json"], ["plan"], ["check"]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["--root", str(root), *argv, "-b", str(bundle.path), "fz"])
        said = out.getvalue() + err.getvalue()
        assert rc in (0, 1), (argv, rc, said[-2000:])
        assert "Traceback" not in said and "internal error" not in said, (argv, said[-2000:])
        assert "checks failed:" not in said, (argv, said[-2000:])
        if argv == ["check", "--format", "json"] and out.getvalue():
            json.loads(out.getvalue())
        assert not root.exists()


@FUZZ
@given(data=st.data())
def test_schema_shaped_configs(bundle, tmp_path, data):
    pointer, node = data.draw(st.sampled_from(SECTIONS), label="section")
    cfg = copy.deepcopy(bundle.config)
    value = data.draw(from_schema(node), label="value")
    if pointer:
        set_in(cfg, pointer, value)
    else:
        cfg = value
    both(bundle, tmp_path, json.dumps(pin(cfg, bundle, tmp_path)))


@FUZZ
@given(data=st.data())
def test_mutated_real_configs(bundle, tmp_path, data):
    name = data.draw(st.sampled_from(FIXTURES or [None]), label="fixture")
    cfg = _fixture_config(name) if name else copy.deepcopy(bundle.config)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = [p for p in _paths(cfg) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = cfg
        for k in path[:-1]:
            parent = parent[k]
        how = data.draw(st.sampled_from(["delete", "replace", "hostile"]), label="how")
        if how == "delete":
            del parent[path[-1]]
        elif how == "replace":
            parent[path[-1]] = data.draw(json_value(), label="new")
        else:
            parent[path[-1]] = data.draw(st.sampled_from(HOSTILE_STRINGS + HOSTILE_NUMBERS), label="hostile")
    both(bundle, tmp_path, json.dumps(pin(cfg, bundle, tmp_path)))
