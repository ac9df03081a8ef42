"""podman 4.3 + conmon 2.1, cgroupfs manager, runtime chosen with the global ``--runtime``.

conmon runs ``create``/``exec`` (with ``--console-socket`` for -t), podman runs
``start``/``kill``/``pause``/``resume``/``delete`` with a near-empty
environment and no ``--root``. Each test runs its scenario with runc and with
pyrunc and requires the same observable behaviour.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import IMAGE, ULIMITS, Podman, assert_same, both, unique, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

# Same options for both runtimes, podman's default seccomp profile included.
OPTS = ["--network", "none", *ULIMITS]
#: PID 1 that exits 0 on SIGTERM (``wait`` is interrupted by the trapped signal).
TRAPPING = ["sh", "-c", "echo started; trap 'echo bye; exit 0' TERM; sleep 300 & wait"]


def start_detached(pm: Podman, rt: str, binary: str, name: str, *cmd: str) -> str:
    """``podman run -d --name NAME``; returns the name once the container is running."""
    pm.track(name, binary)
    r = pm(binary, "run", "-d", "--name", name, *OPTS, IMAGE, *cmd)
    assert r.rc == 0, f"podman run -d failed: {r.err}"
    assert wait_for(lambda: pm.inspect(binary, name, "{{.State.Status}}") == "running", timeout=10)
    return name


def test_run_output_and_exit_code(podman: Podman) -> None:
    """podman run --rm: stdout/stderr separated, the status passed back, nothing left."""
    def scenario(rt: str, binary: str) -> dict:
        name = podman.track(unique("run", rt), binary)
        r = podman(binary, "run", "--rm", "--name", name, *OPTS, IMAGE,
                   "sh", "-c", "echo hello; echo oops >&2; exit 3")
        return {"rc": r.rc, "out": r.lines, "err": [ln for ln in r.err.splitlines() if "oops" in ln],
                "left": podman(binary, "container", "exists", name).rc}

    assert_same(both(scenario), {"rc": 3, "out": ["hello"], "err": ["oops"], "left": 1})


def test_exit_codes(podman: Podman) -> None:
    """Exit statuses, a signal death, and podman's 127/126 mapping of runtime errors."""
    cases = {"zero": ["true"], "one": ["false"], "fortytwo": ["sh", "-c", "exit 42"],
             "killed": ["sh", "-c", "sh -c 'kill -9 $$'; exit $?"],
             "missing": ["no-such-command"], "not_executable": ["/etc"]}

    def scenario(rt: str, binary: str) -> dict:
        got = {}
        for key, cmd in cases.items():
            name = podman.track(unique(f"ec-{key}", rt), binary)
            got[key] = podman(binary, "run", "--rm", "--name", name, *OPTS, IMAGE, *cmd).rc
        return got

    assert_same(both(scenario), {"zero": 0, "one": 1, "fortytwo": 42, "killed": 137, "missing": 127,
                                 "not_executable": 126})


def test_detached_logs_stop_rm(podman: Podman) -> None:
    """run -d, logs, stop (TERM handled: exit 0), stop of a TERM-ignoring init (KILL: 137), rm."""
    def scenario(rt: str, binary: str) -> dict:
        name = start_detached(podman, rt, binary, unique("stop", rt), *TRAPPING)
        got: dict = {}
        wait_for(lambda: "started" in podman(binary, "logs", name).out, timeout=5)
        got["logs_running"] = podman(binary, "logs", name).lines
        got["stop"] = podman(binary, "stop", "-t", "10", name).rc
        got["state"] = podman.inspect(binary, name, "{{.State.Status}} {{.State.ExitCode}}")
        got["logs_stopped"] = podman(binary, "logs", name).lines
        got["rm"] = podman(binary, "rm", name).rc
        got["gone"] = podman(binary, "container", "exists", name).rc
        name2 = start_detached(podman, rt, binary, unique("stop9", rt), "sleep", "300")
        got["stop9"] = podman(binary, "stop", "-t", "1", name2).rc
        got["state9"] = podman.inspect(binary, name2, "{{.State.Status}} {{.State.ExitCode}}")
        return got

    assert_same(both(scenario), {"logs_running": ["started"], "stop": 0, "state": "exited 0",
                                 "logs_stopped": ["started", "bye"], "rm": 0, "gone": 1, "stop9": 0,
                                 "state9": "exited 137"})


def test_kill(podman: Podman) -> None:
    """podman kill: a handled signal (TERM -> exit 0), the default KILL (137), kill of a stopped one."""
    def scenario(rt: str, binary: str) -> dict:
        name = start_detached(podman, rt, binary, unique("kill", rt), *TRAPPING)
        got: dict = {"term": podman(binary, "kill", "-s", "TERM", name).rc}
        got["wait"] = podman(binary, "wait", name).lines
        name2 = start_detached(podman, rt, binary, unique("kill9", rt), "sleep", "300")
        got["kill"] = podman(binary, "kill", name2).rc
        got["wait9"] = podman(binary, "wait", name2).lines
        got["kill_stopped_fails"] = podman(binary, "kill", name2).rc != 0
        return got

    assert_same(both(scenario), {"term": 0, "wait": ["0"], "kill": 0, "wait9": ["137"],
                                 "kill_stopped_fails": True})


def test_exec(podman: Podman) -> None:
    """podman exec: output, status, user, workdir, env, and the 127/126 error mapping."""
    def scenario(rt: str, binary: str) -> dict:
        name = start_detached(podman, rt, binary, unique("exec", rt), "sleep", "300")
        a = podman(binary, "exec", name, "sh", "-c", "echo out; echo err >&2; exit 7")
        b = podman(binary, "exec", "-u", "nobody", "-w", "/tmp", "-e", "E2E=yes", name,
                   "sh", "-c", 'echo "$(id -u) $(pwd) $E2E"')
        c = podman(binary, "exec", "-i", name, "cat", input="piped-stdin\n")
        return {"a": (a.rc, a.lines, "err" in a.err), "b": (b.rc, b.lines), "stdin": (c.rc, c.lines),
                "missing": podman(binary, "exec", name, "no-such-command").rc,
                "not_executable": podman(binary, "exec", name, "/etc").rc,
                "state": podman.inspect(binary, name, "{{.State.Status}}")}

    assert_same(both(scenario), {"a": (7, ["out"], True), "b": (0, ["65534 /tmp yes"]),
                                 "stdin": (0, ["piped-stdin"]), "missing": 127, "not_executable": 126,
                                 "state": "running"})


def test_exec_tty(podman: Podman) -> None:
    """podman exec -t (under script): a pty from the container via conmon's console socket."""
    def scenario(rt: str, binary: str) -> dict:
        name = start_detached(podman, rt, binary, unique("exect", rt), "sleep", "300")
        r = podman(binary, "exec", "-t", name, "sh", "-c", "tty; test -t 0 && echo stdin-tty; exit 8",
                   tty=True)
        return {"rc": r.rc, "out": r.lines}

    assert_same(both(scenario), {"rc": 8, "out": ["/dev/pts/0", "stdin-tty"]})


def test_run_interactive_tty(podman: Podman) -> None:
    """podman run -it (under script): the init's console, and typed input reaches the shell."""
    def scenario(rt: str, binary: str) -> dict:
        name = podman.track(unique("it", rt), binary)
        a = podman(binary, "run", "--rm", "-it", "--name", name, *OPTS, IMAGE,
                   "sh", "-c", "sleep 0.5; tty; test -t 0 && echo stdin-tty; exit 9", tty=True)
        name2 = podman.track(unique("it2", rt), binary)
        b = podman(binary, "run", "--rm", "-it", "--name", name2, *OPTS, IMAGE, "sh",
                   tty=True, input="echo typed-$((6*7))\nexit 5\n")
        return {"a": (a.rc, a.lines), "b": (b.rc, "typed-42" in b.lines)}

    assert_same(both(scenario), {"a": (9, ["/dev/pts/0", "stdin-tty"]), "b": (5, True)})


def test_pause_unpause(podman: Podman) -> None:
    """pause/unpause: podman's status follows the freezer; the container keeps working after."""
    def scenario(rt: str, binary: str) -> dict:
        name = start_detached(podman, rt, binary, unique("pause", rt), "sleep", "300")
        got: dict = {"pause": podman(binary, "pause", name).rc,
                     "paused": podman.inspect(binary, name, "{{.State.Status}}")}
        got["unpause"] = podman(binary, "unpause", name).rc
        got["running"] = podman.inspect(binary, name, "{{.State.Status}}")
        e = podman(binary, "exec", name, "echo", "alive")
        got["exec"] = (e.rc, e.lines)
        return got

    assert_same(both(scenario), {"pause": 0, "paused": "paused", "unpause": 0, "running": "running",
                                 "exec": (0, ["alive"])})


def test_top(podman: Podman) -> None:
    """podman top: the container's processes as seen in its pid namespace."""
    def scenario(rt: str, binary: str) -> dict:
        name = start_detached(podman, rt, binary, unique("top", rt), "sleep", "300")
        r = podman(binary, "top", name, "pid", "user", "args")
        return {"rc": r.rc, "rows": [" ".join(ln.split()) for ln in r.lines]}

    assert_same(both(scenario), {"rc": 0, "rows": ["PID USER COMMAND", "1 root sleep 300"]})


def test_restart(podman: Podman) -> None:
    """podman restart: the init is stopped, the container is started again with a new init."""
    def scenario(rt: str, binary: str) -> dict:
        name = start_detached(podman, rt, binary, unique("restart", rt), *TRAPPING)
        pid1 = podman.inspect(binary, name, "{{.State.Pid}}")
        got: dict = {"restart": podman(binary, "restart", "-t", "10", name).rc}
        wait_for(lambda: podman(binary, "logs", name).lines.count("started") == 2, timeout=5)
        got["state"] = podman.inspect(binary, name, "{{.State.Status}}")
        got["new_pid"] = podman.inspect(binary, name, "{{.State.Pid}}") not in (pid1, "0", None)
        got["logs"] = podman(binary, "logs", name).lines
        e = podman(binary, "exec", name, "echo", "alive")
        got["exec"] = (e.rc, e.lines)
        return got

    assert_same(both(scenario), {"restart": 0, "state": "running", "new_pid": True,
                                 "logs": ["started", "bye", "started"], "exec": (0, ["alive"])})


def test_rm(podman: Podman) -> None:
    """rm refuses a running container, rm -f kills and removes it, rm of an exited one."""
    def scenario(rt: str, binary: str) -> dict:
        name = start_detached(podman, rt, binary, unique("rm", rt), "sleep", "300")
        got: dict = {"rm_running_fails": podman(binary, "rm", name).rc != 0,
                     "still": podman.inspect(binary, name, "{{.State.Status}}")}
        got["rm_f"] = podman(binary, "rm", "-f", "-t", "0", name).rc
        got["gone"] = podman(binary, "container", "exists", name).rc
        name2 = podman.track(unique("rm-exited", rt), binary)
        got["run"] = podman(binary, "run", "--name", name2, *OPTS, IMAGE, "true").rc
        got["rm_exited"] = podman(binary, "rm", name2).rc
        got["gone2"] = podman(binary, "container", "exists", name2).rc
        return got

    assert_same(both(scenario), {"rm_running_fails": True, "still": "running", "rm_f": 0, "gone": 1,
                                 "run": 0, "rm_exited": 0, "gone2": 1})
