"""Running OCI hooks: the state JSON on stdin, `args`, `env`, `timeout`.

runtime.md: a failing prestart, createRuntime, createContainer,
startContainer or poststart hook is an error that stops the container; a
failing poststop hook is only a warning. Hooks run one after another in the
order listed.
"""

from __future__ import annotations

from .errors import HookError
from .jsonout import dumps

PHASES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def run_hooks(hooks: dict | None, phase: str, state: dict, default_env: dict | None = None) -> None:
    """Run every hook of `phase`; raise HookError naming the phase, index and cause on failure.

    `default_env` is the environment of a hook without `env` (see hook_env)."""
    for index, hook in enumerate((hooks or {}).get(phase) or []):
        run_hook(hook, phase, index, state, default_env)


def hook_env(hook: dict, default_env: dict | None) -> dict | None:
    """A hook's `env` when it has one (an empty list is an empty environment); otherwise what
    runc gives it: the environment of the process that runs it. That is the runtime's own
    (None: inherited) for the hooks the runtime runs, and the container process's for
    createContainer and startContainer, which runc's init runs after taking process.env."""
    if hook.get("env") is None:
        return runtime_env() if default_env is None else default_env
    return dict(e.split("=", 1) for e in hook["env"] if "=" in e)


def runtime_env() -> dict[bytes, bytes]:
    """The environment pyrunc was started with, read back from /proc/self/environ.

    Not os.environ: CPython adds LC_CTYPE=C.UTF-8 to it when started in the C locale (PEP 538
    locale coercion), which runc's hooks would never see."""
    try:
        with open("/proc/self/environ", "rb") as f:
            data = f.read()
    except OSError:
        import os

        return dict(os.environb)
    return dict(item.split(b"=", 1) for item in data.split(b"\0") if b"=" in item)


def run_hook(hook: dict, phase: str, index: int, state: dict, default_env: dict | None = None) -> None:
    # Imported here: most containers have no hooks and subprocess costs ~5 ms. The container
    # init imports it before pivot_root when its config has hooks (preload_for_hooks).
    import subprocess

    path = hook["path"]
    args = hook.get("args") or [path]
    env = hook_env(hook, default_env)
    timeout = hook.get("timeout")
    if timeout is not None:
        # Any integer >= 1 is valid (upstream schema); poll(2) waits at most 2**31-1 ms (24.8 days).
        timeout = min(timeout, (1 << 31) // 1000 - 1)
    where = f"{phase} hook #{index} ({path})"
    data = dumps(state).encode()
    try:
        proc = subprocess.Popen(args, executable=path, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                                cwd=hook_cwd(state))
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


def hook_cwd(state: dict) -> str:
    """The bundle, where it is reachable; inside the container (startContainer) it may not be."""
    import os

    bundle = state.get("bundle") or "/"
    return bundle if os.path.isdir(bundle) else "/"


def run_hooks_warn(hooks: dict | None, phase: str, state: dict, warn) -> None:
    """Every hook of `phase`, each failure only a warning (poststop: runtime.md step 13)."""
    for index, hook in enumerate((hooks or {}).get(phase) or []):
        try:
            run_hook(hook, phase, index, state)
        except HookError as e:
            warn(e.line())


def preload_for_hooks(hooks: dict | None) -> None:
    """Import what running hooks needs now, while the host's modules are still reachable."""
    if any((hooks or {}).get(phase) for phase in PHASES):
        import subprocess  # noqa: F401

