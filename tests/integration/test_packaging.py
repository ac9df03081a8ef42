"""pyrunc installed as a Python user installs it: a wheel, a fresh venv, no Makefile.

The Makefile's launcher and precompiled bundle are an optimisation (pyrunc/launcher.py,
pyrunc/bundle.py); this proves they are never a requirement. The wheel is built offline from a
copy of the tree (a PEP 517 build writes build/ and *.egg-info where it runs, and the tree may
be in use) with Debian's pip, setuptools and wheel (`--no-build-isolation`). The venv is made
from Debian's python3.11 without system site-packages, and pip installs pyrunc from a local
wheelhouse with `--no-index`: the runtime dependencies pyproject.toml declares come from wheels
of the copies this test's own interpreter has, so no network is needed and pip itself checks
that what is declared can be satisfied. Then the installed `pyrunc` (pip's console script, not
our launcher) answers --version and --help, writes a spec, and runs a real container.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, run_to_files

pytestmark = [pytest.mark.slow]

SYSTEM_PYTHON = "/usr/bin/python3.11"
SOURCES = ("pyproject.toml", "README.md", "pyrunc")
# Hermetic pip: no config file (this machine's points at local indexes), no index at all.
PIP_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PIP_CONFIG_FILE": os.devnull,
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "HOME": "/nonexistent"}


def sh(*cmd: str | Path, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=PIP_ENV, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


def declared_dependencies() -> dict[str, str]:
    """pyproject.toml's runtime requirements: {distribution name: requirement}."""
    with open(REPO / "pyproject.toml", "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    return {d.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower(): d for d in deps}


def third_party_imports() -> set[str]:
    """Top-level modules pyrunc imports anywhere (lazily too) that are neither stdlib nor pyrunc."""
    found = set()
    for path in (REPO / "pyrunc").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            found.update(n.split(".")[0] for n in names)
    return {n for n in found if n and n != "pyrunc" and n not in sys.stdlib_module_names}


def wheel_tag(dist: importlib.metadata.Distribution) -> str:
    """The compressed tag of the wheel a distribution was installed from (py3-none-any)."""
    tags = [line.split(":", 1)[1].strip().split("-") for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]
    assert tags, f"{dist.metadata['Name']} was not installed from a wheel"
    return "-".join(".".join(sorted({t[i] for t in tags})) for i in range(3))


def repack(name: str, out: Path) -> Path:
    """A wheel of an installed pure-Python distribution, rebuilt from its RECORD (with a new RECORD)."""
    dist = importlib.metadata.distribution(name)
    files = [f for f in dist.files or [] if f.parts[0] != ".." and "__pycache__" not in f.parts
             and f.name not in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")]
    dist_info = next(f.parts[0] for f in files if f.name == "METADATA")
    wheel = out / f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-{wheel_tag(dist)}.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            data = Path(f.locate()).read_bytes()
            z.writestr(f.as_posix(), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{f.as_posix()},sha256={digest},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        z.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    """pyrunc's wheel, built from a copy of the tree, and wheels of its declared dependencies."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"{SYSTEM_PYTHON} is not installed (apt-get install python3.11)")
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import importlib.util as u, sys; "
                            "sys.exit(not all(u.find_spec(m) for m in ('pip', 'setuptools', 'wheel')))"],
                           capture_output=True)
    if probe.returncode:
        pytest.skip("Debian's pip, setuptools and wheel are needed to build offline (apt-get install python3-pip)")
    work = tmp_path_factory.mktemp("pkg")
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    house = work / "wheels"
    sh(SYSTEM_PYTHON, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
       "-w", house, src)
    for dep in dependency_closure(declared_dependencies()):
        try:
            repack(dep, house)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(f"{dep} is not installed here to make an offline wheel of (make test-setup)")
    return house


def dependency_closure(names) -> set[str]:
    """The declared dependencies and theirs (jsonschema brings attrs, referencing, ...), as this
    interpreter has them installed; a requirement behind a marker that is not installed here
    (an extra, an older Python's backport) is one pip will not ask for either."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for req in importlib.metadata.requires(name) or []:
            spec, _, marker = req.partition(";")
            if "extra" in marker:
                continue
            dep = spec.split("(")[0].split(">")[0].split("<")[0].split("=")[0].split("!")[0].split("~")[0]
            dep = dep.split("[")[0].strip().lower()
            if marker.strip():
                try:
                    importlib.metadata.distribution(dep)
                except importlib.metadata.PackageNotFoundError:
                    continue
            todo.append(dep)
    return seen


@pytest.fixture(scope="module")
def venv(wheelhouse, tmp_path_factory) -> Path:
    """A fresh venv from Debian's python3.11 with pyrunc pip-installed from the wheelhouse only."""
    v = tmp_path_factory.mktemp("venv") / "v"
    sh(SYSTEM_PYTHON, "-m", "venv", v)
    sh(v / "bin" / "pip", "install", "-q", "--no-index", "--find-links", wheelhouse, "pyrunc")
    return v


def test_the_wheel_declares_exactly_what_pyrunc_imports(wheelhouse):
    """Requires-Dist lists the third-party modules pyrunc imports, no more; every module ships."""
    (wheel,) = wheelhouse.glob("pyrunc-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    required = {line.split(":", 1)[1].split(";")[0].split("(")[0].split(">")[0].split("<")[0].strip().lower()
                for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line}
    assert required == set(declared_dependencies()) == third_party_imports()
    assert "pyrunc = pyrunc.cli:run_and_exit" in entry
    shipped = {n for n in names if n.startswith("pyrunc/")}
    sources = {p.relative_to(REPO).as_posix() for p in (REPO / "pyrunc").rglob("*.py")}
    assert sources == {n for n in shipped if n.endswith(".py")}
    assert not {n for n in shipped if "__pycache__" in n or n.endswith(".marshal")}, "build artefacts shipped"


def test_pip_install_gives_the_command_and_the_module(venv, tmp_path):
    """`pyrunc` is pip's console script (no launcher, no bundle) and `import pyrunc` is the venv's."""
    exe = venv / "bin" / "pyrunc"
    assert "-IS" not in exe.read_text().splitlines()[0], "the Makefile's launcher, not pip's script"
    site = Path(sh(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                .stdout.strip())
    assert not list(site.glob("pyrunc/__pycache__/bundle.*.marshal")), "a precompiled bundle in a pip install"
    p = sh(exe, "--version", cwd=tmp_path)
    assert p.stdout.startswith("pyrunc version ") and "spec: " in p.stdout
    assert sh(venv / "bin" / "python", "-m", "pyrunc", "--version", cwd=tmp_path).stdout == p.stdout
    p = sh(venv / "bin" / "python", "-c", "import pyrunc, jeepney, pyroute2; print(pyrunc.__file__)", cwd=tmp_path)
    assert p.stdout.strip() == str(site / "pyrunc" / "__init__.py")
    assert sh(exe, "create", "--help", cwd=tmp_path).stdout.startswith("NAME:\n   pyrunc create")
    sh(venv / "bin" / "pip", "check")


def test_pip_installed_pyrunc_runs_a_container(venv, tmp_path, rootfs_template):
    """spec, then run: the installed command drives a real container and leaves nothing."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    exe, root, bundle = venv / "bin" / "pyrunc", tmp_path / "root", tmp_path / "bundle"
    bundle.mkdir()
    sh(exe, "spec", "--bundle", bundle)
    cfg = json.loads((bundle / "config.json").read_text())
    assert cfg["process"]["args"] == ["sh"] and cfg["root"]["path"] == "rootfs"
    cfg["process"].update(terminal=False, args=["sh", "-c", "echo hello from $(hostname); exit 7"])
    cfg["linux"]["cgroupsPath"] = f"pyrunc-pkg-{os.getpid()}"
    (bundle / "config.json").write_text(json.dumps(cfg))
    shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
    p = run_to_files([str(exe), "--root", str(root), "run", "pkg"], cwd=bundle, timeout=60, env=PIP_ENV)
    try:
        assert (p.returncode, p.stdout, p.stderr) == (7, "hello from pyrunc\n", "")
        assert sh(exe, "--root", root, "list", "-q").stdout == ""
    finally:
        subprocess.run([str(exe), "--root", str(root), "delete", "--force", "pkg"], capture_output=True, timeout=30)
