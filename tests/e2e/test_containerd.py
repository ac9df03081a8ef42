"""containerd 1.6 + ctr, io.containerd.runc.v2 shim, runtime chosen with ``--runc-binary``.

``--runc-binary`` is the shim's ``BinaryName`` option, carried in the task
options: the shim then calls the runtime with ``--root /run/containerd/runc/<ns>
--log <bundle>/log.json --log-format json``. Each test runs its scenario with
runc and with pyrunc and requires the same observable behaviour.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import IMAGE, Ctr, assert_same, both, exit_code_from_ctr_delete, unique, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]


def run_fg(ctr: Ctr, binary: str, name: str, *cmd: str, tty: bool = False) -> tuple[int | None, list[str]]:
    """``ctr run --rm`` in the foreground: (exit code, output lines)."""
    ctr.track(name)
    args = ["run", "--rm", "--runc-binary", binary]
    if tty:
        args.append("-t")
    r = ctr(*args, IMAGE, name, *cmd, tty=tty)
    return r.rc, r.lines


def start_detached(ctr: Ctr, binary: str, name: str, *cmd: str) -> None:
    """``ctr run -d`` and wait until the task is RUNNING."""
    ctr.track(name)
    r = ctr("run", "-d", "--runc-binary", binary, IMAGE, name, *cmd)
    assert r.rc == 0, f"ctr run -d failed: {r.err}"
    assert wait_for(lambda: ctr.task_status(name) == "RUNNING", timeout=10), ctr.task_status(name)


def test_run_output_and_exit_code(ctr: Ctr) -> None:
    """Foreground run: stdout and stderr of the container reach ctr, the status comes back."""
    def scenario(rt: str, binary: str) -> dict:
        ctr.track(name := unique("run", rt))
        r = ctr("run", "--rm", "--runc-binary", binary, IMAGE, name,
                "sh", "-c", "echo hello; echo oops >&2; cat /proc/self/cgroup >/dev/null; exit 3")
        return {"rc": r.rc, "out": r.lines, "err": [ln for ln in r.err.splitlines() if "oops" in ln],
                "left": ctr("container", "ls", "-q").lines.count(name)}

    assert_same(both(scenario), {"rc": 3, "out": ["hello"], "err": ["oops"], "left": 0})


def test_exit_codes(ctr: Ctr) -> None:
    """Plain exits, a signal death (128+9) and a command that does not exist."""
    # pid 1 cannot SIGKILL itself, so a child shell dies and the init passes its status on
    cases = {"zero": "exit 0", "one": "exit 1", "fortytwo": "exit 42", "killed": "sh -c 'kill -9 $$'; exit $?"}

    def scenario(rt: str, binary: str) -> dict:
        got: dict = {}
        for key, script in cases.items():
            got[key] = run_fg(ctr, binary, unique(f"ec-{key}", rt), "sh", "-c", script)[0]
        ctr.track(name := unique("ec-missing", rt))
        r = ctr("run", "--rm", "--runc-binary", binary, IMAGE, name, "no-such-command")
        got["missing"] = (r.rc, "executable file not found in $PATH" in r.err)
        ctr.remove(name)
        return got

    assert_same(both(scenario), {"zero": 0, "one": 1, "fortytwo": 42, "killed": 137, "missing": (1, True)})


def test_fast_exit_repeated(ctr: Ctr) -> None:
    """A program that exits at once, several times: start must not lose the race with the reaper.

    The shim (a child subreaper) reaps the container process as soon as it
    exits, possibly before ``start`` has returned.
    """
    def scenario(rt: str, binary: str) -> dict:
        codes = [run_fg(ctr, binary, unique(f"fast{i}", rt), "true")[0] for i in range(8)]
        return {"codes": codes}

    assert_same(both(scenario), {"codes": [0] * 8})


def test_detached_ps_kill_delete(ctr: Ctr) -> None:
    """run -d, task ps (init + a detached exec), kill with a trapped TERM, then KILL, task rm."""
    def scenario(rt: str, binary: str) -> dict:
        name = unique("life", rt)
        # `wait` is interrupted by the trapped TERM; the init then exits 7
        start_detached(ctr, binary, name, "sh", "-c", "trap 'exit 7' TERM; sleep 300 & wait")
        got: dict = {}
        init_pid = next((ln.split()[1] for ln in ctr("task", "ls").lines if ln.split()[0] == name), None)
        wait_for(lambda: len(ctr("task", "ps", name).lines) == 3, timeout=5)
        ps = ctr("task", "ps", name)
        pids = [ln.split()[0] for ln in ps.lines[1:]]
        got["ps"] = (ps.rc, len(pids), init_pid in pids)
        ex = ctr("task", "exec", "--detach", "--exec-id", "bg", name, "sleep", "300")
        got["exec_detach_rc"] = ex.rc
        wait_for(lambda: len(ctr("task", "ps", name).lines) == 4, timeout=5)
        got["ps_count"] = len(ctr("task", "ps", name).lines) - 1
        got["kill_term"] = ctr("task", "kill", "-s", "SIGTERM", name).rc
        got["stopped"] = wait_for(lambda: ctr.task_status(name) == "STOPPED", timeout=10)
        got["exit"] = exit_code_from_ctr_delete(ctr("task", "rm", name))
        got["task_gone"] = ctr.task_status(name) is None
        # a second container: SIGKILL while running
        name2 = unique("life-kill", rt)
        start_detached(ctr, binary, name2, "sleep", "300")
        got["kill9"] = ctr("task", "kill", "-s", "SIGKILL", name2).rc
        got["stopped9"] = wait_for(lambda: ctr.task_status(name2) == "STOPPED", timeout=10)
        got["kill_stopped_rc"] = ctr("task", "kill", "-s", "SIGKILL", name2).rc
        got["exit9"] = exit_code_from_ctr_delete(ctr("task", "rm", name2))
        got["rm"] = ctr("container", "rm", name2).rc
        return got

    assert_same(both(scenario), {
        "ps": (0, 2, True), "exec_detach_rc": 0, "ps_count": 3, "kill_term": 0, "stopped": True,
        "exit": 7, "task_gone": True, "kill9": 0, "stopped9": True, "kill_stopped_rc": 1, "exit9": 137,
        "rm": 0})


def test_exec(ctr: Ctr) -> None:
    """task exec: output, exit status, user, cwd, and a missing command."""
    def scenario(rt: str, binary: str) -> dict:
        name = unique("exec", rt)
        start_detached(ctr, binary, name, "sleep", "300")
        a = ctr("task", "exec", "--exec-id", "e1", name, "sh", "-c", "echo exec-out; echo exec-err >&2; exit 5")
        b = ctr("task", "exec", "--exec-id", "e2", "--user", "65534", "--cwd", "/tmp",
                name, "sh", "-c", 'echo "$(id -u) $(pwd)"')
        c = ctr("task", "exec", "--exec-id", "e3", name, "no-such-command")
        return {"a": (a.rc, a.lines, "exec-err" in a.err), "b": (b.rc, b.lines),
                "missing": (c.rc != 0, "executable file not found" in c.err),
                "still_running": ctr.task_status(name)}

    assert_same(both(scenario), {"a": (5, ["exec-out"], True), "b": (0, ["65534 /tmp"]),
                                 "missing": (True, True), "still_running": "RUNNING"})


def test_exec_tty(ctr: Ctr) -> None:
    """task exec -t (under script for a tty): a pty from the container, exit status back."""
    def scenario(rt: str, binary: str) -> dict:
        name = unique("exect", rt)
        start_detached(ctr, binary, name, "sleep", "300")
        # the short sleep lets ctr's resize land before the process exits (else ctr logs an error)
        r = ctr("task", "exec", "-t", "--exec-id", "t1", name, "sh", "-c",
                "sleep 0.3; tty; test -t 0 && test -t 1 && echo both-tty; exit 6", tty=True)
        return {"rc": r.rc, "out": [ln for ln in r.lines if ln]}

    assert_same(both(scenario), {"rc": 6, "out": ["/dev/pts/0", "both-tty"]})


def test_run_with_tty(ctr: Ctr) -> None:
    """ctr run -t: the container's init gets the console (console socket handed to the shim)."""
    def scenario(rt: str, binary: str) -> dict:
        rc, lines = run_fg(ctr, binary, unique("tty", rt), "sh", "-c",
                           "sleep 0.3; tty; test -t 0 && echo stdin-tty; ls /dev/console >/dev/null && "
                           "echo console; exit 7", tty=True)
        return {"rc": rc, "out": lines}

    assert_same(both(scenario), {"rc": 7, "out": ["/dev/pts/0", "stdin-tty", "console"]})


def test_pause_resume(ctr: Ctr) -> None:
    """task pause / resume: status follows, exec refused while paused, works again after."""
    def scenario(rt: str, binary: str) -> dict:
        name = unique("pause", rt)
        start_detached(ctr, binary, name, "sleep", "300")
        got = {"pause": ctr("task", "pause", name).rc, "paused": ctr.task_status(name)}
        got["exec_paused_fails"] = ctr("task", "exec", "--exec-id", "p1", name, "true", timeout=20).rc != 0
        got["resume"] = ctr("task", "resume", name).rc
        got["resumed"] = ctr.task_status(name)
        e = ctr("task", "exec", "--exec-id", "p2", name, "echo", "alive")
        got["exec_after"] = (e.rc, e.lines)
        got["resume_again_fails"] = ctr("task", "resume", name).rc != 0
        return got

    assert_same(both(scenario), {"pause": 0, "paused": "PAUSED", "exec_paused_fails": True, "resume": 0,
                                 "resumed": "RUNNING", "exec_after": (0, ["alive"]),
                                 "resume_again_fails": True})
