"""Running OCI hooks: the state JSON on stdin, `args`, `env`, `timeout`.

runtime.md: a failing prestart, createRuntime, createContainer,
startContainer or poststart hook is an error that stops the container; a
failing poststop hook is only a warning. Hooks run one after another in the
order listed.
"""

from __future__ import annotations

import json
import subprocess

from .errors import HookError

PHASES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def run_hooks(hooks: dict | None, phase: str, state: dict) -> None:
    """Run every hook of `phase`; raise HookError naming the phase, index and cause on failure."""
    for index, hook in enumerate((hooks or {}).get(phase) or []):
        run_hook(hook, phase, index, state)


def run_hook(hook: dict, phase: str, index: int, state: dict) -> None:
    path = hook["path"]
    args = hook.get("args") or [path]
    env = dict(e.split("=", 1) for e in hook.get("env") or [] if "=" in e)
    timeout = hook.get("timeout")
    where = f"{phase} hook #{index} ({path})"
    data = json.dumps(state).encode()
    try:
        proc = subprocess.Popen(args, executable=path, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                                cwd=state.get("bundle") or "/")
    except OSError as e:
        raise HookError(f"{where}: {e.strerror}", step=phase) from None
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise HookError(f"{where}: timeout after {timeout}s", step=phase) from None
    except BrokenPipeError:
        out, err = proc.communicate()
    if proc.returncode != 0:
        detail = (err or out).decode("utf-8", "replace").strip().replace("\n", " ")[:500]
        code = (f"exit status {proc.returncode}" if proc.returncode > 0
                else f"killed by signal {-proc.returncode}")
        raise HookError(f"{where}: {code}" + (f": {detail}" if detail else ""), step=phase)


def oci_state(st: dict, status: str, pid: int | None = None) -> dict:
    """The OCI state document (runtime.md "State") for hooks and `pyrunc state`."""
    doc = {
        "ociVersion": st.get("ociVersion", ""),
        "id": st["id"],
        "status": status,
        "pid": st.get("pid", 0) if pid is None else pid,
        "bundle": st["bundle"],
    }
    if st.get("annotations"):
        doc["annotations"] = st["annotations"]
    return doc


