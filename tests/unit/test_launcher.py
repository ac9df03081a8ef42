"""The `pyrunc` command is our isolated launcher, not pip's script (which imports re and site)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess

import pytest

from pyrunc import launcher
from tests.conftest import PYRUNC, REPO

SCRIPT = REPO / ".venv" / "bin" / "pyrunc-launcher.py"


def test_installed_command_is_the_lean_launcher():
    """The script runs the venv's python isolated; the command is the C launcher built for it
    (or, without a compiler, the script itself)."""
    first = open(SCRIPT).readline().strip()
    assert first == f"#!{REPO / '.venv' / 'bin' / 'python'} -IS", first
    data = open(PYRUNC, "rb").read()
    if shutil.which("cc") or shutil.which("gcc"):
        assert data[:4] == b"\x7fELF", "the Makefile had a compiler but did not build the C launcher"
        if platform.machine() in NOLIBC_MACHINES:
            # glibc's start-up would cost every call ~0.6 ms here (launcher.c says why)
            assert b"glibc" not in data.lower(), "the C launcher was linked against glibc"
    else:
        assert open(PYRUNC).read() == open(SCRIPT).read()


def test_c_launcher_passes_arguments_and_exit_status_through():
    p = subprocess.run([PYRUNC, "--root", "/nonexistent-pyrunc-root", "state", "no-such-ctr"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "no-such-ctr" in p.stderr, p.stderr
    p = subprocess.run([PYRUNC, "--version"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("pyrunc version"), p


def test_launcher_imports_no_re_or_site_for_state():
    p = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-IS", "-X", "importtime", str(SCRIPT),
                        "--root", "/nonexistent-pyrunc-root", "list"],
                       capture_output=True, text=True, timeout=30)
    modules = {line.rsplit("|", 1)[-1].strip() for line in p.stderr.splitlines() if "|" in line}
    assert p.returncode == 0, p.stderr
    assert not modules & {"re", "site", "json", "enum", "ctypes", "dataclasses", "subprocess"}, modules


def test_launcher_turns_gc_off_before_importing_pyrunc():
    """The collections during ~60 module imports cost ~1 ms a call (docs/PERFORMANCE.md)."""
    text = open(SCRIPT).read()
    assert "gc.disable()" in text and text.index("gc.disable()") < text.index("import pyrunc")


def test_long_lived_commands_turn_gc_back_on():
    import gc

    from pyrunc.foreground import stay_for_the_container

    gc.disable()
    try:
        stay_for_the_container()
        assert gc.isenabled()
    finally:
        gc.enable()


NOLIBC_MACHINES = ("x86_64", "aarch64")
VENV_PYTHON = str(REPO / ".venv" / "bin" / "python")
PROBE = f"""import json, os, sys
sys.path.insert(0, {str(REPO)!r})
from pyrunc.selfexe import protection
print(json.dumps([sys.argv[1:], os.environ.get("PYRUNC_PROBE"), protection(), sys.executable]))
sys.exit(7)
"""


def _variants() -> list:
    out = [pytest.param(launcher.LIBC_VARIANTS[0], id="libc-static")]
    if platform.machine() in NOLIBC_MACHINES:
        out.insert(0, pytest.param(launcher.NOLIBC_FLAGS, id="nolibc"))
    return out


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler")
@pytest.mark.parametrize("flags", _variants())
def test_each_launcher_build_passes_arguments_environment_and_status(tmp_path, flags):
    """Built each way, the launcher hands the script every argument byte for byte, the caller's
    environment and the script's exit status; for create/run/exec it runs the interpreter from
    the read-only overlay, for other commands from its own file."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    binary = str(tmp_path / "pyrunc")
    assert launcher.build(binary, VENV_PYTHON, str(script), variants=(flags,)) is None
    env = dict(os.environ, PYRUNC_PROBE="from the caller")
    for args, expected in ((["--root", "a b", "", "exec", "\u00fc"], "overlay"), (["state", "x"], None)):
        p = subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=30)
        assert p.returncode == 7, p.stderr
        argv, probe, protection, executable = json.loads(p.stdout)
        assert argv == args and probe == "from the caller"
        assert executable == VENV_PYTHON  # argv[0] kept: CPython finds the venv from it
        if os.geteuid() == 0:
            assert protection == expected


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler")
@pytest.mark.parametrize("flags", _variants())
def test_launcher_without_its_interpreter_says_so_in_one_line(tmp_path, flags):
    binary = str(tmp_path / "pyrunc")
    missing = str(tmp_path / "gone" / "python")
    assert launcher.build(binary, missing, str(tmp_path / "script.py"), variants=(flags,)) is None
    p = subprocess.run([binary, "state", "x"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 127
    assert p.stderr == f"pyrunc: exec {missing}: no such file (rebuild the venv: make)\n", p.stderr
