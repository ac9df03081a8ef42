"""dockerd 20.10 with ``--add-runtime pyrunc=<venv>/bin/pyrunc`` (and runc registered the same way).

dockerd hands the runtime path to containerd's io.containerd.runc.v2 shim as
its ``BinaryName`` option, so this is also the shim-option integration. The
daemon runs with ``--iptables=false --bridge=none``; containers use
``--network none``. Each test runs its scenario with runc and with pyrunc and
requires the same observable behaviour.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    DOCKER_RUNTIMES,
    IMAGE,
    ULIMITS,
    Docker,
    assert_same,
    both,
    unique,
    wait_for,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]


def opts(rt: str) -> list[str]:
    """The same options for both runtimes (each caller's default seccomp profile included); only
    --runtime differs."""
    return ["--runtime", DOCKER_RUNTIMES[rt], "--network", "none", "--pull", "never", *ULIMITS]


def start_detached(dk: Docker, rt: str, name: str, *cmd: str) -> str:
    """``docker run -d --name NAME``; returns the name once the container is running."""
    dk.track(name)
    r = dk("run", "-d", "--name", name, *opts(rt), IMAGE, *cmd)
    assert r.rc == 0, f"docker run -d failed: {r.err}"
    assert wait_for(lambda: dk.inspect(name, "{{.State.Status}}") == "running", timeout=10)
    return name


def test_runtime_used(docker: Docker) -> None:
    """The container really ran under the runtime asked for (HostConfig and the shim's runtime file)."""
    def scenario(rt: str, binary: str) -> dict:
        name = start_detached(docker, rt, unique("which", rt), "sleep", "300")
        return {"runtime": docker.inspect(name, "{{.HostConfig.Runtime}}") == DOCKER_RUNTIMES[rt]}

    assert_same(both(scenario), {"runtime": True})


def test_run_output_and_exit_codes(docker: Docker) -> None:
    """docker run --rm: stdout/stderr, exit statuses, a signal death, a missing command."""
    def scenario(rt: str, binary: str) -> dict:
        docker.track(name := unique("run", rt))
        r = docker("run", "--rm", "--name", name, *opts(rt), IMAGE, "sh", "-c", "echo hello; echo oops >&2; exit 3")
        got: dict = {"run": (r.rc, r.lines, "oops" in r.err)}
        for key, cmd in {"zero": ["true"], "fortytwo": ["sh", "-c", "exit 42"],
                         "killed": ["sh", "-c", "sh -c 'kill -9 $$'; exit $?"],
                         "missing": ["no-such-command"]}.items():
            docker.track(n := unique(f"ec-{key}", rt))
            got[key] = docker("run", "--rm", "--name", n, *opts(rt), IMAGE, *cmd).rc
        return got

    assert_same(both(scenario), {"run": (3, ["hello"], True), "zero": 0, "fortytwo": 42, "killed": 137,
                                 "missing": 127})


def test_exec(docker: Docker) -> None:
    """docker exec: output, status, user, workdir, env, stdin, a missing command."""
    def scenario(rt: str, binary: str) -> dict:
        name = start_detached(docker, rt, unique("exec", rt), "sleep", "300")
        a = docker("exec", name, "sh", "-c", "echo out; echo err >&2; exit 7")
        b = docker("exec", "-u", "nobody", "-w", "/tmp", "-e", "E2E=yes", name,
                   "sh", "-c", 'echo "$(id -u) $(pwd) $E2E"')
        c = docker("exec", name, "no-such-command")
        return {"a": (a.rc, a.lines, "err" in a.err), "b": (b.rc, b.lines), "missing": c.rc,
                "state": docker.inspect(name, "{{.State.Status}}")}

    assert_same(both(scenario), {"a": (7, ["out"], True), "b": (0, ["65534 /tmp yes"]), "missing": 126,
                                 "state": "running"})


def test_run_tty_and_exec_tty(docker: Docker) -> None:
    """docker run -t and exec -t (under script): a pty from the container, statuses passed back."""
    def scenario(rt: str, binary: str) -> dict:
        docker.track(name := unique("tty", rt))
        a = docker("run", "--rm", "-t", "--name", name, *opts(rt), IMAGE,
                   "sh", "-c", "sleep 0.3; tty; test -t 1 && echo stdout-tty; exit 9", tty=True)
        name2 = start_detached(docker, rt, unique("exect", rt), "sleep", "300")
        b = docker("exec", "-t", name2, "sh", "-c", "sleep 0.3; tty; exit 4", tty=True)
        return {"run_t": (a.rc, a.lines), "exec_t": (b.rc, b.lines)}

    assert_same(both(scenario), {"run_t": (9, ["/dev/pts/0", "stdout-tty"]), "exec_t": (4, ["/dev/pts/0"])})


def test_stop_and_rm(docker: Docker) -> None:
    """stop (TERM handled: 0; TERM ignored: KILL after the timeout, 137), logs, rm, rm -f."""
    def scenario(rt: str, binary: str) -> dict:
        name = start_detached(docker, rt, unique("stop", rt), "sh", "-c",
                              "echo started; trap 'echo bye; exit 0' TERM; sleep 300 & wait")
        got: dict = {"stop": docker("stop", "-t", "10", name).rc}
        got["state"] = docker.inspect(name, "{{.State.Status}} {{.State.ExitCode}}")
        got["logs"] = docker("logs", name).lines
        got["rm"] = docker("rm", name).rc
        got["gone"] = docker.inspect(name, "{{.Id}}")
        name2 = start_detached(docker, rt, unique("stop9", rt), "sleep", "300")
        got["stop9"] = docker("stop", "-t", "1", name2).rc
        got["state9"] = docker.inspect(name2, "{{.State.Status}} {{.State.ExitCode}}")
        name3 = start_detached(docker, rt, unique("rmf", rt), "sleep", "300")
        got["rm_running_fails"] = docker("rm", name3).rc != 0
        got["rm_f"] = docker("rm", "-f", name3).rc
        got["gone3"] = docker.inspect(name3, "{{.Id}}")
        return got

    assert_same(both(scenario), {"stop": 0, "state": "exited 0", "logs": ["started", "bye"], "rm": 0,
                                 "gone": None, "stop9": 0, "state9": "exited 137", "rm_running_fails": True,
                                 "rm_f": 0, "gone3": None})
