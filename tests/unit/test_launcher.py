"""The `pyrunc` command is our isolated launcher, not pip's script (which imports re and site)."""

from __future__ import annotations

import shutil
import subprocess

from tests.conftest import PYRUNC, REPO

SCRIPT = REPO / ".venv" / "bin" / "pyrunc-launcher.py"


def test_installed_command_is_the_lean_launcher():
    """The script runs the venv's python isolated; the command is the C launcher built for it
    (or, without a compiler, the script itself)."""
    first = open(SCRIPT).readline().strip()
    assert first == f"#!{REPO / '.venv' / 'bin' / 'python'} -IS", first
    head = open(PYRUNC, "rb").read(4)
    if shutil.which("cc") or shutil.which("gcc"):
        assert head == b"\x7fELF", "the Makefile had a compiler but did not build the C launcher"
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
