"""CVE-2019-5736 end to end: a container tries to overwrite the runtime's interpreter (T1b).

The runtime under attack is pyrunc running on a disposable copy of the interpreter (never the
host's), reached the three ways issue 24 lists, with and without a user namespace:

- ``entrypoint``: a container's program is ``/evil``, a script starting ``#!/proc/self/exe``: the
  kernel runs the init's own executable as the container's process;
- ``exec``: the same script run by `exec` (the tenant's executable);
- ``ptrace-created``: a container with CAP_SYS_PTRACE sharing the pid namespace of a `created`
  container opens /proc/PID/exe of the waiting init;
- ``ptrace-exec``: the same container opens /proc/PID/exe of `exec`'s tenant while it runs;
- ``exec-userns``: the ``exec`` shape in a user namespace, the copy owned by the container's root
  (so only the runtime's protection stands in the way).

A watcher loop in the attacking container (busybox sh, PID 1) holds every executable it can
open that is not busybox, and once its process is gone retries appending to it through
/proc/self/fd for seconds. Each scenario asserts the watcher did hold the runtime's executable
(else it proved nothing), that it never wrote, and that the copy's sha256 is unchanged.

Two ways of starting the runtime: ``launcher`` (pyrunc/launcher.c built for the copy: the overlay
made in C) and ``python`` (the launcher script run by the copy directly: pyrunc/selfexe.py makes
the overlay and re-executes).

Shown failing on the code before the fix (commit 3f125a3, the ``python`` way, since it has no
C launcher): every scenario's watcher wrote PWNED into the copy (see the commit message).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, Bundle, Runtime
from tests.security.conftest import second_bundle

WATCHER = r"""
seen=" "
while :; do
  for p in /proc/[0-9]*; do
    n=${p#/proc/}
    case "$seen" in *" $n "*) continue;; esac
    l=$(readlink $p/exe 2>/dev/null) || continue
    case "$l" in */busybox|"") continue;; esac
    seen="$seen$n "
    ( echo "HELD $n $l" >> /tmp/log
      i=0
      while [ $i -lt 150 ]; do
        if echo PWNED 2>>/tmp/err >> /proc/self/fd/7; then echo "WROTE $n $l" >> /tmp/log; exit; fi
        i=$((i+1)); sleep 0.02
      done
      echo "GAVE-UP $n $l: $(tail -1 /tmp/err)" >> /tmp/log ) 7<$p/exe 2>/dev/null &
  done
done
"""
# Long enough for the watcher to see it; the stdlib comes from a read-only bind of the host's.
EVIL = "#!/proc/self/exe\nimport time\ntime.sleep(1.5)\n"
STDLIB = os.path.dirname(os.__file__)
USERNS_ROOT = 100000


def glibc_mounts(rootfs: Path) -> list[dict]:
    """The interpreter is dynamically linked: its loader and libraries must exist in the image
    for the kernel to run it there (as they do in any glibc image), so they are bound read-only
    from the host, merged-/usr style."""
    arch = sysconfig.get_config_var("MULTIARCH") or ""
    dirs = [d for d in ("/usr/lib64", f"/usr/lib/{arch}", STDLIB) if arch and os.path.isdir(d)]
    for link in ("lib", "lib64"):
        if os.path.islink(f"/{link}") and not os.path.lexists(rootfs / link):
            os.symlink(os.readlink(f"/{link}"), rootfs / link)
    for d in dirs:  # made here: a mapped root may not create them in a rootfs the host's root owns
        (rootfs / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return [{"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro"]} for d in dirs]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Victim:
    """A copy of the interpreter with the launcher script, and a pyrunc command running on it."""

    def __init__(self, base: Path, how: str):
        self.dir = base / "victim"
        self.dir.mkdir()
        real = os.path.realpath(sys.executable)
        self.python = self.dir / os.path.basename(real)
        shutil.copy2(real, self.python)
        # A venv-style home, so the copy finds the host's stdlib without warnings.
        (self.dir / "pyvenv.cfg").write_text(f"home = {os.path.dirname(real)}\n")
        from pyrunc import launcher

        self.script = self.dir / "pyrunc-launcher.py"
        self.script.write_text(launcher.render(str(self.python), str(REPO), sysconfig.get_paths()["purelib"]))
        self.command = self.dir / "pyrunc"
        if how == "launcher":
            if not (shutil.which("cc") or shutil.which("gcc")) or not hasattr(launcher, "build"):
                pytest.skip("no C compiler (or no C launcher in this pyrunc)")
            problem = launcher.build(str(self.command), str(self.python), str(self.script))
            assert problem is None, problem
        else:
            self.command.write_text(f'#!/bin/sh\nexec "{self.python}" -IS "{self.script}" "$@"\n')
            self.command.chmod(0o755)
        self.hash = sha256(self.python)

    def assert_unchanged(self) -> None:
        assert sha256(self.python) == self.hash, "the container overwrote the runtime's interpreter"


@pytest.fixture(params=["launcher", "python"])
def victim(request, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    return Victim(tmp_path, request.param)


@pytest.fixture
def rt(victim, tmp_path):
    r = Runtime(str(victim.command), tmp_path / "victim-root", "pyrunc-victim")
    yield r
    r.cleanup()


def attacker(bundle: Bundle, *, ptrace: bool = False, userns: bool = False) -> Bundle:
    """The watcher's container: /evil in its rootfs, the host's glibc and stdlib read-only, /tmp
    for logs."""
    (bundle.rootfs / "evil").write_text(EVIL)
    (bundle.rootfs / "evil").chmod(0o755)
    (bundle.rootfs / "tmp").chmod(0o1777)
    bundle.config["mounts"] += glibc_mounts(bundle.rootfs)
    bundle.config["process"]["args"] = ["sh", "-c", WATCHER]
    if ptrace:
        caps = bundle.config["process"]["capabilities"]
        for which in ("bounding", "effective", "permitted"):
            caps[which] = [*caps[which], "CAP_SYS_PTRACE"]
    if userns:
        from tests.integration.test_userns_timens import add_userns

        add_userns(bundle, USERNS_ROOT)
    bundle.write()
    return bundle


def joining_pid_ns(bundle: Bundle, path: Path, pid: int, args: list[str]) -> Bundle:
    b = second_bundle(bundle, path, args)
    b.config["linux"]["namespaces"] = [ns if ns["type"] != "pid" else {"type": "pid", "path": f"/proc/{pid}/ns/pid"}
                                       for ns in b.config["linux"]["namespaces"]]
    b.write()
    return b


def log_of(bundle: Bundle) -> str:
    log = bundle.rootfs / "tmp" / "log"
    return log.read_text() if log.exists() else ""


def wait_for(bundle: Bundle, word: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_of(bundle)
        if word in text:
            return text
        time.sleep(0.1)
    return log_of(bundle)


def settle(bundle: Bundle) -> str:
    """Give every holder time to write or give up (150 tries, 20 ms apart)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text = log_of(bundle)
        held = text.count("HELD ")
        if held and text.count("WROTE ") + text.count("GAVE-UP ") >= held:
            return text
        time.sleep(0.2)
    return log_of(bundle)


def judge(victim: Victim, bundle: Bundle, expect: str) -> None:
    text = settle(bundle)
    assert "WROTE" not in text, f"the container wrote the runtime's executable:\n{text}"
    victim.assert_unchanged()
    assert expect in text, f"the watcher never held the runtime's executable: the attack proved nothing\n{text}"


@pytest.mark.cve("CVE-2019-5736")
def test_entrypoint_proc_self_exe(rt, victim, bundle, tmp_path):
    """The init execs `#!/proc/self/exe`: its own executable becomes the container's process."""
    attacker(bundle)
    rt("run", "-d", "watch", bundle=bundle, check=True)
    pid = rt.state("watch")["pid"]
    v = joining_pid_ns(bundle, tmp_path / "v", pid, ["/evil"])
    rt("run", "-d", "entry", bundle=v, check=True)
    judge(victim, bundle, "HELD")


@pytest.mark.cve("CVE-2019-5736")
@pytest.mark.parametrize("userns", [False, True], ids=["", "userns"])
def test_exec_proc_self_exe(rt, victim, bundle, userns):
    """`exec` runs `#!/proc/self/exe`: the tenant's executable becomes the container's process.

    In a user namespace the copy belongs to the container's root, so only the protection stops
    the write (the host's interpreter belongs to a root the container does not map)."""
    attacker(bundle, userns=userns)
    if userns:
        os.chown(victim.python, USERNS_ROOT, USERNS_ROOT)
        victim.hash = sha256(victim.python)
    rt("run", "-d", "watch", bundle=bundle, check=True)
    time.sleep(0.3)
    p = rt("exec", "watch", "/evil")
    assert "Traceback" not in p.stderr
    judge(victim, bundle, "HELD")


@pytest.mark.cve("CVE-2019-5736")
def test_ptrace_opens_the_created_init(rt, victim, bundle, tmp_path):
    """CAP_SYS_PTRACE in a container sharing the pid namespace of a `created` one: the waiting
    init's /proc/PID/exe is held, then the init execs its program and is deleted."""
    attacker(bundle, ptrace=True)
    rt("run", "-d", "watch", bundle=bundle, check=True)
    pid = rt.state("watch")["pid"]
    v = joining_pid_ns(bundle, tmp_path / "v", pid, ["true"])
    rt("create", "waiting", bundle=v, check=True)
    init = rt.state("waiting")["pid"]
    text = wait_for(bundle, "HELD", 10)
    rt("start", "waiting", check=True)
    rt("delete", "--force", "waiting")
    assert "HELD" in text, f"the watcher never held the waiting init ({init}): {text}"
    judge(victim, bundle, "HELD")


@pytest.mark.cve("CVE-2019-5736")
def test_ptrace_opens_the_exec_tenant(rt, victim, bundle):
    """CAP_SYS_PTRACE in the container: /proc/PID/exe of `exec`'s tenant, caught while it runs."""
    attacker(bundle, ptrace=True)
    rt("run", "-d", "watch", bundle=bundle, check=True)
    time.sleep(0.3)
    for _ in range(60):
        rt("exec", "watch", "true")
        if "HELD" in log_of(bundle):
            break
    judge(victim, bundle, "HELD")


@pytest.mark.cve("CVE-2019-5736")
def test_waiting_init_runs_from_a_read_only_copy(pyrunc, bundle):
    """T1a, deterministic: the `created` init's executable (the installed pyrunc) is a file the
    kernel refuses to open for writing, because of its filesystem (a read-only overlay) or its
    seals (a memfd), never because it happens to be busy; and its protection is one
    pyrunc/selfexe.py recognises."""
    import errno

    from pyrunc import selfexe

    bundle.config["process"]["args"] = ["sleep", "100"]
    pyrunc("create", "sealed", bundle=bundle, check=True)
    pid = pyrunc.state("sealed")["pid"]
    fd = os.open(f"/proc/{pid}/exe", os.O_RDONLY | os.O_CLOEXEC)
    try:
        how = selfexe.protection(fd)
        assert how in ("overlay", "memfd"), os.readlink(f"/proc/{pid}/exe")
        with pytest.raises(OSError) as e:
            os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_CLOEXEC)
        # A sealed memfd in use may say ETXTBSY first; its seals refuse the write after that.
        want = (errno.EROFS,) if how == "overlay" else (errno.EPERM, errno.ETXTBSY)
        assert e.value.errno in want, e.value
    finally:
        os.close(fd)
