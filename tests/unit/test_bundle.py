"""The module bundle (pyrunc/bundle.py): served only while fresh, never instead of a changed file."""

from __future__ import annotations

import subprocess
import sys

from pyrunc import bundle
from tests.conftest import REPO


def run_python(code: str) -> str:
    """Run code in a fresh isolated interpreter (the launcher's -IS) with the repo importable."""
    prelude = f"import sys; sys.path[:0] = [{str(REPO)!r}]\n"
    p = subprocess.run([sys.executable, "-IS", "-c", prelude + code], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_build_covers_every_module(tmp_path):
    path = str(tmp_path / "b.marshal")
    count = bundle.build(path)
    sources = [p for p in (REPO / "pyrunc").rglob("*.py") if "__pycache__" not in p.parts]
    assert count == len(sources)


def test_modules_come_from_the_bundle_with_their_files(tmp_path):
    path = str(tmp_path / "b.marshal")
    bundle.build(path)
    out = run_python(f"""
import pyrunc.bundle as b
b.install({path!r})
import pyrunc.state, pyrunc.cgroups
print(type(pyrunc.state.__spec__.loader).__name__, pyrunc.state.__file__)
print(pyrunc.cgroups.__path__[0], pyrunc.state.check_id.__code__.co_filename)
""")
    state_py = str(REPO / "pyrunc" / "state.py")
    assert out.splitlines() == [f"BundleFinder {state_py}", f"{REPO / 'pyrunc' / 'cgroups'} {state_py}"]


def test_a_changed_source_is_imported_the_usual_way(tmp_path):
    path = str(tmp_path / "b.marshal")
    bundle.build(path)
    out = run_python(f"""
import pyrunc.bundle as b
b.install({path!r})
finder = sys.meta_path[0]
entry = finder.index["pyrunc.state"]
finder.index["pyrunc.state"] = (entry[0], entry[1] - 1, *entry[2:])  # as if edited since the build
import pyrunc.state, pyrunc.proc
print(type(pyrunc.state.__spec__.loader).__name__, type(pyrunc.proc.__spec__.loader).__name__)
""")
    assert out == "SourceFileLoader BundleFinder"


def test_a_missing_or_foreign_bundle_changes_nothing(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a bundle at all")
    out = run_python(f"""
import pyrunc.bundle as b
b.install({str(tmp_path / 'missing')!r}); b.install({str(junk)!r})
import pyrunc.state
print(any(isinstance(f, b.BundleFinder) for f in sys.meta_path), type(pyrunc.state.__spec__.loader).__name__)
""")
    assert out == "False SourceFileLoader"


def test_a_forked_stage_that_closed_every_fd_reopens_the_bundle(tmp_path):
    """Stages close inherited fds (close_range): the finder must not pread a closed or reused fd."""
    path = str(tmp_path / "b.marshal")
    bundle.build(path)
    out = run_python(f"""
import os
import pyrunc.bundle as b
b.install({path!r})
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.closerange(3, 1024)  # the bundle fd too, as close_foreign_fds does
    reused = os.open("/dev/zero", os.O_RDONLY)  # likely takes the bundle's old number
    import pyrunc.cgroups.stats
    os.write(1, type(pyrunc.cgroups.stats.__spec__.loader).__name__.encode())
    os._exit(0)
os.waitpid(pid, 0)
""")
    assert out == "BundleFinder"


def test_uninstall_drops_the_finder(tmp_path):
    path = str(tmp_path / "b.marshal")
    bundle.build(path)
    out = run_python(f"""
import pyrunc.bundle as b
b.install({path!r}); b.uninstall()
import pyrunc.state
print(any(isinstance(f, b.BundleFinder) for f in sys.meta_path), type(pyrunc.state.__spec__.loader).__name__)
""")
    assert out == "False SourceFileLoader"
