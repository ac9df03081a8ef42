"""process.apparmorProfile for real, side by side with runc (inside the QEMU guest: tests/vm/run.sh).

This host's kernel has no AppArmor; the guest's Debian kernel has it on by
default (no extra kernel arguments: CONFIG_LSM lists apparmor and nothing
before it claims /proc/self/attr). The test mounts securityfs if needed and
loads its own profile with apparmor_parser (Debian's `apparmor` package, seen
through the guest's copy of this machine's files), then proves from inside
the container that the profile is the init's and an exec'd process's domain
(/proc/self/attr/current), that a write the profile denies is denied while
others work, and that a profile the kernel has not loaded is one clear line
and nothing left behind. The profile is removed again at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.vm import lsm_race

pytestmark = [pytest.mark.vm, pytest.mark.root]

ENABLED = Path("/sys/module/apparmor/parameters/enabled")
SECURITYFS = Path("/sys/kernel/security")
PARSER = shutil.which("apparmor_parser") or "/usr/sbin/apparmor_parser"
PROFILE = f"pyrunc-vm-test-{os.getpid()}"
OTHER = f"{PROFILE}-other"
# A profile that allows what a container needs and denies writes below /denied.
# attach_disconnected: paths outside the container's mount namespace root stay mediated.
PROFILE_TEXT = """profile {name} flags=(attach_disconnected,mediate_deleted) {{
  file,
  capability,
  network,
  unix,
  signal,
  ptrace,
  mount,
  umount,
  pivot_root,
  deny /denied/** w,
}}
"""


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    try:
        if ENABLED.read_text().strip() != "Y":
            return "AppArmor is not enabled in this kernel"
    except OSError:
        return "this kernel has no AppArmor (only the QEMU guest of tests/vm/run.sh has it here)"
    if not os.path.exists(PARSER):
        return "apparmor_parser is not installed (Debian package apparmor)"
    return None


if _skip_reason():
    pytest.skip(_skip_reason() or "", allow_module_level=True)


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    """Load two test profiles (mounting securityfs first if nobody has); unload them at the end."""
    mounted = False
    if not (SECURITYFS / "apparmor").exists():
        subprocess.run(["mount", "-t", "securityfs", "securityfs", str(SECURITYFS)], check=True)
        mounted = True
    d = tmp_path_factory.mktemp("apparmor")
    files = []
    for name in (PROFILE, OTHER):
        f = d / name
        f.write_text(PROFILE_TEXT.format(name=name))
        p = subprocess.run([PARSER, "-r", str(f)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        files.append(f)
    loaded = (SECURITYFS / "apparmor" / "profiles").read_text()
    assert f"{PROFILE} (enforce)" in loaded, loaded
    yield PROFILE, OTHER
    for f in files:
        subprocess.run([PARSER, "-R", str(f)], capture_output=True)
    if mounted:
        subprocess.run(["umount", str(SECURITYFS)], capture_output=True)


PROBE = ("cat /proc/self/attr/current; cat /proc/self/attr/apparmor/current; "
         "echo x > /denied/f; echo denied=$?; echo x > /tmp/f; echo tmp=$?")


def test_profile_confines_init_and_denies(runtime, bundle, profiles):
    """The init runs in the profile's domain; the denied write fails with EACCES, others work."""
    (bundle.rootfs / "denied").mkdir()
    bundle.config["process"]["apparmorProfile"] = PROFILE
    bundle.config["process"]["args"] = ["sh", "-c", PROBE]
    p = runtime("run", "aa1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:4] == [f"{PROFILE} (enforce)", f"{PROFILE} (enforce)", "denied=1", "tmp=0"], p.stdout
    assert "Permission denied" in p.stderr
    assert not (bundle.rootfs / "denied" / "f").exists()
    assert (bundle.rootfs / "tmp" / "f").exists()


def test_profile_for_a_non_root_user_with_no_new_privileges(runtime, bundle, profiles):
    """The label is still set after the uid switch, the capability drop and no_new_privs."""
    bundle.config["process"]["apparmorProfile"] = PROFILE
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["noNewPrivileges"] = True
    bundle.config["process"]["capabilities"] = {}
    bundle.config["process"]["args"] = ["sh", "-c", "id -u; cat /proc/self/attr/current"]
    p = runtime("run", "aa2", bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:2] == ["1000", f"{PROFILE} (enforce)"], p.stdout


def test_exec_inherits_overrides_and_process_file(runtime, bundle, profiles, tmp_path):
    """exec: the container's profile by default, `--apparmor` overrides it, a process file's own wins."""
    bundle.config["process"]["apparmorProfile"] = PROFILE
    bundle.config["process"]["args"] = ["sleep", "1000"]
    assert runtime("run", "-d", "aa3", bundle=bundle).returncode == 0
    cat = ["cat", "/proc/self/attr/current"]
    same = runtime("exec", "aa3", *cat)
    assert (same.returncode, same.stdout.strip()) == (0, f"{PROFILE} (enforce)"), same.stderr
    other = runtime("exec", "--apparmor", OTHER, "aa3", *cat)
    assert (other.returncode, other.stdout.strip()) == (0, f"{OTHER} (enforce)"), other.stderr
    unconfined = runtime("exec", "--apparmor", "unconfined", "aa3", *cat)
    assert (unconfined.returncode, unconfined.stdout.strip()) == (0, "unconfined"), unconfined.stderr
    proc = dict(bundle.config["process"], args=cat, apparmorProfile=OTHER)
    (tmp_path / "p.json").write_text(json.dumps(proc))
    pf = runtime("exec", "--process", str(tmp_path / "p.json"), "aa3")
    assert (pf.returncode, pf.stdout.strip()) == (0, f"{OTHER} (enforce)"), pf.stderr
    # The init itself is still in its own domain.
    pid = runtime.state("aa3")["pid"]
    assert Path(f"/proc/{pid}/attr/current").read_text().strip() == f"{PROFILE} (enforce)"


def test_missing_profile_is_one_line_and_leaves_nothing(runtime, bundle, profiles):
    """A profile the kernel has not loaded: create fails (as runc's), one line, no state or cgroup left."""
    missing = f"{PROFILE}-not-loaded"
    bundle.config["process"]["apparmorProfile"] = missing
    cgroup = Path("/sys/fs/cgroup") / bundle.config["linux"]["cgroupsPath"]
    p = runtime("create", "aa4", bundle=bundle)
    assert p.returncode == 1
    assert not cgroup.exists()
    assert not (runtime.root / "aa4").exists()
    assert runtime("state", "aa4").returncode != 0
    if runtime.name == "pyrunc":
        lines = [ln for ln in p.stderr.splitlines() if "level=warning" not in ln]
        assert lines == [f"container aa4: create: apply_lsm_labels: apparmor profile {missing!r} is not "
                         "loaded (apparmor_parser -r loads it)"], p.stderr
    else:
        assert "apparmor" in p.stderr, p.stderr


def test_exec_with_a_missing_profile_fails_cleanly(runtime, bundle, profiles):
    """exec --apparmor with a profile not loaded: exec fails, the container keeps running."""
    bundle.config["process"]["args"] = ["sleep", "1000"]
    assert runtime("run", "-d", "aa5", bundle=bundle).returncode == 0
    p = runtime("exec", "--apparmor", f"{PROFILE}-not-loaded", "aa5", "true")
    assert p.returncode != 0
    assert "not-loaded" in p.stderr or "apparmor" in p.stderr, p.stderr
    if runtime.name == "pyrunc":
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert runtime.state("aa5")["status"] == "running"


def test_profile_in_a_user_namespace(runtime, bundle, profiles):
    """Container root mapped to an unprivileged host uid range (docker userns-remap, rootless podman)."""
    lin = bundle.config["linux"]
    lin["namespaces"].append({"type": "user"})
    lin["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    lin["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["mounts"] = [mt for mt in bundle.config["mounts"] if mt["type"] not in ("cgroup", "cgroup2")]
    bundle.config["process"]["apparmorProfile"] = PROFILE
    bundle.config["process"]["args"] = ["sh", "-c", "id -u; cat /proc/self/attr/current; cat /proc/self/uid_map"]
    # The mapped root must be able to reach the rootfs: pytest's own tmp dirs are 0700.
    top = Path(tempfile.mkdtemp(prefix="pyrunc-vm-aa-"))
    try:
        top.chmod(0o755)
        p = runtime("run", "aa6", bundle=bundle.clone(top / "bundle"))
    finally:
        shutil.rmtree(top)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[:3] == ["0", PROFILE, "(enforce)"], p.stdout
    assert p.stdout.split()[3:6] == ["0", "100000", "65536"], p.stdout


def test_profile_write_while_a_co_tenant_swaps_proc(pyrunc, bundle, profiles):
    """30 starts with apparmorProfile while `proc` of the shared rootfs is swapped with a fake tree
    (CVE-2025-52881, tests/vm/lsm_race.py): every container runs confined and no fake attr file
    is written; pyrunc writes the label through its own procfs handle (linux/procfs.py)."""
    ok, problems = lsm_race.race(pyrunc, bundle, "apparmorProfile", PROFILE, f"{PROFILE} (enforce)", runs=30)
    assert problems == [], problems
    assert ok >= 10, f"only {ok} of 30 containers started: the race proved little"
