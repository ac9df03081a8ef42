"""config.md hooks and runtime.md lifecycle steps 3-13: when, where, with what, and what failure does."""

from __future__ import annotations

import os
import time

from ..harness import Ctx, Fail, scenario

HOOKS = "config.md#posix-platform-hooks"
LIFE = "runtime.md#lifecycle"


def _ns(t: str) -> str:
    return os.readlink(f"/proc/self/ns/{t}")


def _records(ctx: Ctx, name: str) -> list[dict]:
    return [r for r in ctx.hook_records() if r["name"] == name]


def _one(ctx: Ctx, name: str) -> dict:
    recs = _records(ctx, name)
    if len(recs) != 1:
        raise Fail(f"hook {name!r} ran {len(recs)} times, want once")
    return recs[0]


def _container_hook(ctx: Ctx, name: str, body: str) -> dict:
    """A startContainer hook that exists only in the container's rootfs and writes to /out."""
    ctx.mount_out()
    script = ctx.rootfs / "bin" / f"conf-{name}.sh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return {"path": f"/bin/conf-{name}.sh", "args": [f"conf-{name}.sh"]}


@scenario("hook-prestart-gets-state", HOOKS, "MUST")
def _(ctx: Ctx) -> None:
    """The state of the container MUST be passed to hooks over stdin (id, bundle, live pid)."""
    ctx.config["hooks"] = {"prestart": [ctx.hook("pre")]}
    ctx.created()
    st = _one(ctx, "pre")["state"]
    ctx.check(st.get("id") == "c1", f"state id {st.get('id')!r}")
    ctx.check(st.get("bundle") == str(ctx.bundle), f"state bundle {st.get('bundle')!r}, want {ctx.bundle}")
    ctx.check(isinstance(st.get("pid"), int) and st["pid"] > 0, f"state pid {st.get('pid')!r}")
    ctx.check(st.get("ociVersion"), "state has no ociVersion")


@scenario("hook-prestart-runtime-namespace", "config.md#prestart", "MUST")
def _(ctx: Ctx) -> None:
    """prestart hooks MUST be executed in the runtime namespace, after the container namespaces exist."""
    ctx.config["hooks"] = {"prestart": [ctx.hook("pre")]}
    ctx.created()
    rec = _one(ctx, "pre")
    ctx.check(rec["ns"]["mnt"] == _ns("mnt") and rec["ns"]["net"] == _ns("net"),
              f"hook ran in {rec['ns']}, not the runtime's namespaces")
    ctx.check(rec["pid_ns_mnt"] and rec["pid_ns_mnt"] != _ns("mnt"),
              "the container's mount namespace did not exist yet when prestart ran")


@scenario("hook-prestart-pid-runtime-view", "runtime.md#state", "MUST")
def _(ctx: Ctx) -> None:
    """For hooks in the runtime namespace, state.pid is the container process's pid as the runtime sees it."""
    ctx.config["hooks"] = {"createRuntime": [ctx.hook("cr")]}
    pid = ctx.created()
    got = _one(ctx, "cr")["state"].get("pid")
    ctx.check(got == pid, f"hook saw pid {got}, the container process is {pid}")


@scenario("hook-createruntime-runtime-namespace", "config.md#createruntime-hooks", "MUST")
def _(ctx: Ctx) -> None:
    """createRuntime hooks MUST be executed in the runtime namespace."""
    ctx.config["hooks"] = {"createRuntime": [ctx.hook("cr")]}
    ctx.created()
    rec = _one(ctx, "cr")
    ctx.check(rec["ns"]["mnt"] == _ns("mnt") and rec["ns"]["net"] == _ns("net"), f"ran in {rec['ns']}")


@scenario("hook-prestart-before-createruntime", "config.md#prestart", "MUST")
def _(ctx: Ctx) -> None:
    """prestart hooks MUST be called before the createRuntime hooks."""
    ctx.config["hooks"] = {"createRuntime": [ctx.hook("cr")], "prestart": [ctx.hook("pre")]}
    ctx.created()
    names = [r["name"] for r in ctx.hook_records()]
    ctx.check(names == ["pre", "cr"], f"hook order {names}")


@scenario("hook-createcontainer-container-namespace", "config.md#createcontainer-hooks", "MUST")
def _(ctx: Ctx) -> None:
    """createContainer hooks MUST be executed in the container namespace (its mount and network ns)."""
    ctx.config["hooks"] = {"createContainer": [ctx.hook("cc")]}
    pid = ctx.created()
    rec = _one(ctx, "cc")
    want = {t: os.readlink(f"/proc/{pid}/ns/{t}") for t in ("mnt", "net")}
    got = {t: rec["ns"][t] for t in ("mnt", "net")}
    ctx.check(got == want, f"hook namespaces {got}, container's {want}")


@scenario("hook-createcontainer-after-createruntime", "config.md#createcontainer-hooks", "MUST")
def _(ctx: Ctx) -> None:
    """createContainer hooks MUST be called after the createRuntime hooks, during create."""
    ctx.config["hooks"] = {"createContainer": [ctx.hook("cc")], "createRuntime": [ctx.hook("cr")]}
    ctx.created()
    names = [r["name"] for r in ctx.hook_records()]
    ctx.check(names == ["cr", "cc"], f"hook order {names} (after create)")


@scenario("hook-startcontainer-path-in-container", "config.md#startcontainer-hooks", "MUST")
def _(ctx: Ctx) -> None:
    """A startContainer hook's path MUST resolve in the container namespace (it exists only in the rootfs)."""
    ctx.config["hooks"] = {"startContainer": [_container_hook(ctx, "sc", "echo ran > /out/sc")]}
    ctx.running()
    ctx.check(ctx.wait_file(ctx.out / "sc", 3), "the in-container startContainer hook did not run")


@scenario("hook-startcontainer-container-namespace", "config.md#startcontainer-hooks", "MUST")
def _(ctx: Ctx) -> None:
    """startContainer hooks MUST be executed in the container namespace."""
    ctx.config["hooks"] = {"startContainer": [_container_hook(
        ctx, "sc", "readlink /proc/self/ns/mnt > /out/sc.mnt; readlink /proc/self/ns/net > /out/sc.net")]}
    pid = ctx.created()
    want = (os.readlink(f"/proc/{pid}/ns/mnt"), os.readlink(f"/proc/{pid}/ns/net"))
    ctx.start()
    ctx.wait_file(ctx.out / "sc.net", 3)
    got = tuple((ctx.out / f).read_text().strip() if (ctx.out / f).exists() else "" for f in ("sc.mnt", "sc.net"))
    ctx.check(got == want, f"hook namespaces {got}, container's {want}")


@scenario("hook-startcontainer-before-program", "config.md#startcontainer-hooks", "MUST")
def _(ctx: Ctx) -> None:
    """startContainer hooks MUST be called before the user-specified process is executed."""
    ctx.config["hooks"] = {"startContainer": [_container_hook(
        ctx, "sc", "test -e /out/prog && echo after > /out/sc || echo before > /out/sc")]}
    ctx.create("c1", ["sh", "-c", "echo ran > /out/prog; sleep 300"])
    ctx.start()
    ctx.wait_file(ctx.out / "prog", 3)
    got = (ctx.out / "sc").read_text().strip() if (ctx.out / "sc").exists() else "hook did not run"
    ctx.check(got == "before", f"startContainer hook ran {got!r} the user program")


@scenario("hook-startcontainer-pid-container-view", "runtime.md#state", "MUST")
def _(ctx: Ctx) -> None:
    """For hooks in the container namespace, state.pid is the pid as seen by the container (1)."""
    ctx.config["hooks"] = {"startContainer": [_container_hook(ctx, "sc", "cat > /out/sc.state")]}
    ctx.running()
    ctx.wait_file(ctx.out / "sc.state", 3)
    import json
    try:
        st = json.loads((ctx.out / "sc.state").read_text())
    except (OSError, ValueError) as e:
        raise Fail(f"no state on the hook's stdin: {e}") from None
    ctx.check(st.get("pid") == 1, f"in-container hook saw pid {st.get('pid')!r}, want 1")


@scenario("hook-poststart-after-program", "config.md#poststart", "MUST")
def _(ctx: Ctx) -> None:
    """poststart hooks MUST be called after the user-specified process is executed (it is already running)."""
    ctx.config["hooks"] = {"poststart": [ctx.hook("ps")]}
    ctx.create("c1", ["sleep", "300"])
    ctx.start()
    rec = _one(ctx, "ps")
    ctx.check(rec["pid_cmdline"].startswith("sleep"),
              f"when poststart ran, the container process was {rec['pid_cmdline']!r}, not the user program")


@scenario("hook-poststart-before-start-returns", "config.md#poststart", "MUST")
def _(ctx: Ctx) -> None:
    """poststart hooks MUST run before the start operation returns, in the runtime namespace."""
    ctx.config["hooks"] = {"poststart": [ctx.hook("ps")]}
    ctx.create("c1", ["sleep", "300"])
    ctx.start()
    recs = _records(ctx, "ps")
    ctx.check(len(recs) == 1, "poststart had not run when start returned")
    ctx.check(recs[0]["ns"]["mnt"] == _ns("mnt"), f"poststart ran in {recs[0]['ns']}")


@scenario("hook-poststop-after-delete", "config.md#poststop", "MUST")
def _(ctx: Ctx) -> None:
    """poststop hooks MUST be called after the container is deleted, before delete returns, in the runtime ns."""
    ctx.config["hooks"] = {"poststop": [ctx.hook("pst")]}
    pid = ctx.created("c1", ["true"])
    ctx.start()
    ctx.wait_status("c1", "stopped")
    ctx.check(not _records(ctx, "pst"), "poststop ran before delete")
    ctx.succeed(ctx.cmd("delete", "c1"), "delete")
    rec = _one(ctx, "pst")
    ctx.check(rec["ns"]["mnt"] == _ns("mnt"), f"poststop ran in {rec['ns']}")
    ctx.check(not os.path.exists(f"/proc/{pid}") or rec["pid_cmdline"] == "" or "<" in rec["pid_cmdline"],
              f"the container process still existed when poststop ran: {rec['pid_cmdline']!r}")


@scenario("hook-listed-order", HOOKS, "MUST")
def _(ctx: Ctx) -> None:
    """Hooks MUST be called in the listed order."""
    ctx.config["hooks"] = {"createRuntime": [ctx.hook(n) for n in ("h3", "h1", "h2")]}
    ctx.created()
    names = [r["name"] for r in ctx.hook_records()]
    ctx.check(names == ["h3", "h1", "h2"], f"hooks ran as {names}")


@scenario("hook-lifecycle-order", LIFE, "MUST")
def _(ctx: Ctx) -> None:
    """Across the lifecycle hooks run prestart, createRuntime, createContainer, poststart, poststop."""
    phases = ("poststop", "poststart", "createContainer", "createRuntime", "prestart")
    ctx.config["hooks"] = {p: [ctx.hook(p)] for p in phases}
    ctx.create("c1", ["sleep", "300"])
    ctx.start()
    ctx.succeed(ctx.cmd("kill", "c1", "KILL"), "kill")
    ctx.wait_status("c1", "stopped")
    ctx.succeed(ctx.cmd("delete", "c1"), "delete")
    names = [r["name"] for r in ctx.hook_records()]
    ctx.check(names == list(reversed(phases)), f"hook order {names}")


@scenario("hook-argv0-and-args", HOOKS, "MUST")
def _(ctx: Ctx) -> None:
    """A hook's args have execv argv semantics: args[0] is argv[0], path is what is executed."""
    marker = ctx.out / "argv"
    script = f"tr '\\0' ' ' < /proc/$$/cmdline > {marker}"
    ctx.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["conf-argv0", "-c", script, "first"]}]}
    ctx.created()
    got = marker.read_text().split() if marker.exists() else ["hook did not run"]
    ctx.check(got[:2] == ["conf-argv0", "-c"] and got[-1] == "first", f"hook argv: {got!r}")


@scenario("hook-env-exact", HOOKS, "MUST")
def _(ctx: Ctx) -> None:
    """A hook's env has environ semantics: it gets the listed variables, not the runtime's environment."""
    hook = ctx.hook("cr", env=["CONF_HOOK=yes", "PATH=/bin"])
    ctx.config["hooks"] = {"createRuntime": [hook]}
    ctx.create("c1", ["sleep", "300"], wrap=["env", "CONF_RUNTIME_ONLY=leak"])
    env = _one(ctx, "cr")["env"]
    ctx.check(env.get("CONF_HOOK") == "yes", f"hook env {env}")
    ctx.check("CONF_RUNTIME_ONLY" not in env, "the runtime's environment leaked into the hook")


@scenario("hook-timeout", HOOKS, "MUST")
def _(ctx: Ctx) -> None:
    """A hook exceeding its timeout is aborted: create fails promptly and creates nothing."""
    ctx.config["hooks"] = {"createRuntime": [ctx.hook("slow", pause=20, timeout=1)]}
    t0 = time.monotonic()
    res = ctx.cmd("create", "c1")
    took = time.monotonic() - t0
    ctx.expect_nothing_created(res, "c1", "the hook timed out")
    ctx.check(took < 10, f"create took {took:.1f}s: the 1s timeout was not enforced")


def _failing(phase: str, anchor: str, step: str) -> None:
    def fn(ctx: Ctx) -> None:
        ctx.mount_out()
        ctx.config["hooks"] = {phase: [ctx.hook("bad", code=3)]}
        ctx.process["args"] = ["sh", "-c", "echo ran > /out/prog"]
        res = ctx.cmd("create", "c1")
        ctx.expect_nothing_created(res, "c1", f"a {phase} hook failed")
        ctx.check(not (ctx.out / "prog").exists(), "the user program ran")

    from ..harness import add
    add(f"hook-{phase.lower()}-failure-errors", f"{LIFE}", "MUST",
        f"step {step}: a failing {phase} hook MUST be an error and the container destroyed", fn)


for _p, _a, _s in (("prestart", "prestart", "3"), ("createRuntime", "createruntime-hooks", "4"),
                   ("createContainer", "createcontainer-hooks", "5")):
    _failing(_p, _a, _s)


@scenario("hook-startcontainer-failure-errors", LIFE, "MUST")
def _(ctx: Ctx) -> None:
    """Step 7: a failing startContainer hook makes start an error; the user program never runs."""
    ctx.config["hooks"] = {"startContainer": [_container_hook(ctx, "bad", "exit 3")]}
    ctx.create("c1", ["sh", "-c", "echo ran > /out/prog; sleep 300"])
    res = ctx.cmd("start", "c1")
    ctx.must_fail(res, "the startContainer hook failed")
    time.sleep(0.3)
    ctx.check(not (ctx.out / "prog").exists(), "the user program ran despite the failed hook")


@scenario("hook-poststart-failure-errors", LIFE, "MUST")
def _(ctx: Ctx) -> None:
    """Step 9: a failing poststart hook MUST make start an error and stop the container."""
    ctx.config["hooks"] = {"poststart": [ctx.hook("bad", code=3)]}
    pid = ctx.created("c1", ["sleep", "300"])
    res = ctx.cmd("start", "c1")
    ctx.must_fail(res, "the poststart hook failed")
    for _ in range(50):
        if not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]:
            return
        time.sleep(0.05)
    raise Fail("the container is still running after its poststart hook failed")


@scenario("hook-poststop-failure-is-warning", LIFE, "MUST")
def _(ctx: Ctx) -> None:
    """Step 13: a failing poststop hook is only a warning: the next hooks run and delete succeeds."""
    ctx.config["hooks"] = {"poststop": [ctx.hook("bad", code=3), ctx.hook("next")]}
    ctx.created("c1", ["true"])
    ctx.start()
    ctx.wait_status("c1", "stopped")
    res = ctx.cmd("delete", "c1")
    ctx.check(res.rc == 0, f"delete failed because of a poststop hook: {res.brief()}")
    ctx.check(_records(ctx, "next"), "the poststop hook after the failing one did not run")
    ctx.check(ctx.cmd("state", "c1").rc != 0, "the container still exists")


@scenario("hook-failure-still-runs-poststop", LIFE, "MUST")
def _(ctx: Ctx) -> None:
    """Step 3 -> 12 -> 13: after a failing prestart hook the lifecycle continues with the poststop hooks."""
    ctx.config["hooks"] = {"prestart": [ctx.hook("bad", code=3)], "poststop": [ctx.hook("pst")]}
    ctx.must_fail(ctx.cmd("create", "c1"), "the prestart hook failed")
    ctx.check(_records(ctx, "pst"), "poststop hooks were not invoked after the failed create")
