"""The README's "Using it like runc" block runs as written (with our venv's pyrunc on PATH)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from tests.conftest import REPO


def readme_block(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_using_it_like_runc(tmp_path, rootfs_template, pyrunc):
    if not shutil.which("jq"):
        import pytest

        pytest.skip("jq is not installed")
    script = readme_block("## Using it like runc")
    # The rootfs the first comment asks for; the block itself runs unchanged.
    shutil.copytree(rootfs_template, tmp_path / "bundle" / "rootfs", symlinks=True)
    env = dict(os.environ, PATH=f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}")
    # Our own --root keeps the run private: the block relies on the default root otherwise.
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    (wrapper / "pyrunc").write_text(f'#!/bin/sh\nexec {pyrunc.binary} --root {pyrunc.root} "$@"\n')
    (wrapper / "pyrunc").chmod(0o755)
    env["PATH"] = f"{wrapper}:{env['PATH']}"
    pyrunc.ids.add("demo")
    p = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert "hello" in p.stdout
    assert '"status": "created"' in p.stdout
    assert "sleep 30" in p.stdout, "exec ps shows the container's init"
