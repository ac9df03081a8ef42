"""runtime.md: state, create/start/kill/delete in every state, errors, and the lifecycle's promises."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

from ..harness import CGROUP_ROOT, Ctx, Fail, find_cgroups, scenario

RT = "runtime.md"
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# -- state ----------------------------------------------------------------------------------------------

@scenario("state-nonexistent-errors", f"{RT}#query-state", "MUST")
def _(ctx: Ctx) -> None:
    """Querying a container that does not exist MUST generate an error."""
    ctx.must_fail(ctx.cmd("state", "no-such-container"), "the container does not exist")


@scenario("state-no-id-errors", f"{RT}#query-state", "MUST")
def _(ctx: Ctx) -> None:
    """state without a container ID MUST generate an error."""
    ctx.must_fail(ctx.cmd("state"), "no ID was given")


@scenario("state-required-fields", f"{RT}#state", "MUST")
def _(ctx: Ctx) -> None:
    """The state has ociVersion, id, status, pid (created) and the absolute bundle path."""
    pid = ctx.created()
    st = ctx.state()
    ctx.check(st.get("id") == "c1", f"id {st.get('id')!r}")
    ctx.check(st.get("status") == "created", f"status {st.get('status')!r}")
    ctx.check(st.get("pid") == pid, f"pid {st.get('pid')!r}")
    ctx.check(st.get("bundle") == str(ctx.bundle), f"bundle {st.get('bundle')!r}, want {ctx.bundle}")
    ctx.check(isinstance(st.get("ociVersion"), str) and SEMVER.match(st["ociVersion"]),
              f"ociVersion {st.get('ociVersion')!r} is not SemVer")


@scenario("state-bundle-absolute-from-relative", f"{RT}#state", "MUST")
def _(ctx: Ctx) -> None:
    """bundle is the absolute path even when create was given a relative --bundle."""
    ctx.process["args"] = ["sleep", "300"]
    ctx.write_config()
    ctx.ids.append("c1")
    ctx.succeed(ctx.cmd("create", "--bundle", ".", "c1", write=False), "create")
    st = ctx.state()
    ctx.check(st.get("bundle") == str(ctx.bundle), f"bundle {st.get('bundle')!r}")


@scenario("state-ociversion-is-the-states", f"{RT}#state", "MUST")
def _(ctx: Ctx) -> None:
    """state.ociVersion is the spec version the *state* complies with, not an echo of config.json's."""
    ctx.config["ociVersion"] = "1.0.0-conformance.probe+echo"
    ctx.created()
    got = ctx.state().get("ociVersion")
    ctx.check(isinstance(got, str) and SEMVER.match(got), f"ociVersion {got!r} is not SemVer")
    ctx.check(got != ctx.config["ociVersion"], f"state ociVersion {got!r} just echoes the config's")


@scenario("state-status-running", f"{RT}#state", "MUST")
def _(ctx: Ctx) -> None:
    """After start, status is running and pid is the user program."""
    pid = ctx.running()
    st = ctx.state()
    ctx.check(st.get("status") == "running", f"status {st.get('status')!r}")
    ctx.check(st.get("pid") == pid and "sleep" in Path(f"/proc/{pid}/cmdline").read_text(),
              "pid is not the user program")


@scenario("state-status-stopped", f"{RT}#state", "MUST")
def _(ctx: Ctx) -> None:
    """When the container process has exited, status is stopped."""
    ctx.create("c1", ["true"])
    ctx.start()
    ctx.wait_status("c1", "stopped")


@scenario("state-pid-in-container-namespaces", f"{RT}#state", "MUST")
def _(ctx: Ctx) -> None:
    """pid is the container process: it lives in the container's pid namespace, as its PID 1."""
    pid = ctx.created()
    ctx.check(os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid"), "pid is in the host pid ns")
    nspid = [line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("NSpid:")]
    ctx.check(nspid and nspid[0].split()[-1] == "1", f"not PID 1 in its namespace: {nspid}")


# -- create ---------------------------------------------------------------------------------------------

@scenario("create-duplicate-id-errors", f"{RT}#create", "MUST")
def _(ctx: Ctx) -> None:
    """An ID that is not unique MUST be an error and the existing container is untouched."""
    pid = ctx.created("c1")
    res = ctx.cmd("create", "c1")
    ctx.must_fail(res, "the ID is in use")
    st = ctx.state("c1")
    ctx.check(st.get("pid") == pid and st.get("status") == "created" and _alive(pid),
              f"the first container changed: {st}")


@scenario("create-invalid-id-errors", f"{RT}#create", "MUST")
def _(ctx: Ctx) -> None:
    """An ID that is not valid ('../escape') MUST be an error and no container is created."""
    res = ctx.cmd("create", "../conf-escape")
    ctx.must_fail(res, "the ID escapes the state directory")
    ctx.check(not (ctx.work / "conf-escape").exists(), "state was written outside --root")
    ctx.check(not find_cgroups(ctx.cgroup), "a cgroup was created")


@scenario("create-does-not-run-program", f"{RT}#create", "MUST")
def _(ctx: Ctx) -> None:
    """process.args MUST NOT be applied until start: create runs nothing, start runs it."""
    ctx.mount_out()
    ctx.create("c1", ["sh", "-c", "echo ran > /out/prog; sleep 300"])
    time.sleep(0.3)
    ctx.check(not (ctx.out / "prog").exists(), "the user program ran at create")
    ctx.start()
    ctx.check(ctx.wait_file(ctx.out / "prog"), "the user program did not run at start")


@scenario("create-applies-mounts", f"{RT}#create", "MUST")
def _(ctx: Ctx) -> None:
    """All properties except process MUST be applied by create: the mounts exist before start."""
    ctx.add_mount("/mnt/t", "tmpfs", "tmpfs", ["size=1m"])
    pid = ctx.created()
    points = [line.split()[4] for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()]
    ctx.check("/mnt/t" in points, "the configured mount is missing after create")


@scenario("create-applies-hostname", f"{RT}#create", "MUST")
def _(ctx: Ctx) -> None:
    """All properties except process MUST be applied by create: the hostname is set before start."""
    ctx.config["hostname"] = "created-host"
    pid = ctx.created()
    out = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"], capture_output=True, text=True).stdout
    ctx.check(out.strip() == "created-host", f"hostname after create: {out.strip()!r}")


@scenario("create-applies-cgroup-limits", f"{RT}#create", "MUST")
def _(ctx: Ctx) -> None:
    """All properties except process MUST be applied by create: cgroup limits are in place before start."""
    ctx.linux["resources"]["pids"] = {"limit": 77}
    pid = ctx.created()
    path = next(line.split(":", 2)[2] for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
                if ":pids:" in line)
    got = (CGROUP_ROOT / "pids" / path.lstrip("/") / "pids.max").read_text().strip()
    ctx.check(got == "77", f"pids.max after create: {got}")


@scenario("config-change-after-create-ignored", f"{RT}#lifecycle", "MUST")
def _(ctx: Ctx) -> None:
    """Updates to config.json after create MUST NOT affect the container."""
    ctx.mount_out()
    ctx.create("c1", ["sh", "-c", "echo original > /out/prog; sleep 300"])
    ctx.process["args"] = ["sh", "-c", "echo changed > /out/prog; sleep 300"]
    ctx.write_config()
    ctx.start()
    ctx.wait_file(ctx.out / "prog")
    got = (ctx.out / "prog").read_text().strip() if (ctx.out / "prog").exists() else "nothing ran"
    ctx.check(got == "original", f"the program run was {got!r}")


# -- start ----------------------------------------------------------------------------------------------

@scenario("start-runs-program", f"{RT}#start", "MUST")
def _(ctx: Ctx) -> None:
    """start MUST run the user-specified program."""
    ctx.mount_out()
    ctx.create("c1", ["sh", "-c", "echo ran > /out/prog"])
    ctx.start()
    ctx.check(ctx.wait_file(ctx.out / "prog"), "the program did not run")


@scenario("start-running-errors", f"{RT}#start", "MUST")
def _(ctx: Ctx) -> None:
    """start on a running container MUST be an error and have no effect."""
    pid = ctx.running()
    ctx.must_fail(ctx.cmd("start", "c1"), "the container is already running")
    ctx.check(_alive(pid) and ctx.state().get("pid") == pid, "the container changed")


@scenario("start-stopped-errors", f"{RT}#start", "MUST")
def _(ctx: Ctx) -> None:
    """start on a stopped container MUST be an error and have no effect."""
    ctx.mount_out()
    ctx.create("c1", ["sh", "-c", "echo x >> /out/runs"])
    ctx.start()
    ctx.wait_status("c1", "stopped")
    ctx.must_fail(ctx.cmd("start", "c1"), "the container is stopped")
    time.sleep(0.2)
    ctx.check((ctx.out / "runs").read_text() == "x\n", "the program ran again")
    ctx.check(ctx.state().get("status") == "stopped", "status changed")


@scenario("start-nonexistent-errors", f"{RT}#start", "MUST")
def _(ctx: Ctx) -> None:
    """start on a container that does not exist MUST be an error."""
    ctx.must_fail(ctx.cmd("start", "no-such"), "the container does not exist")


@scenario("start-no-id-errors", f"{RT}#start", "MUST")
def _(ctx: Ctx) -> None:
    """start without a container ID MUST generate an error."""
    ctx.must_fail(ctx.cmd("start"), "no ID was given")


@scenario("start-without-process-errors", f"{RT}#start", "MUST")
def _(ctx: Ctx) -> None:
    """start MUST generate an error if process was not set."""
    del ctx.config["process"]
    ctx.cmd("create", "c1")  # MAY already fail (pre-create validation); start must fail either way
    ctx.must_fail(ctx.cmd("start", "c1"), "the config has no process")


# -- kill -----------------------------------------------------------------------------------------------

@scenario("kill-delivers-signal", f"{RT}#kill", "MUST")
def _(ctx: Ctx) -> None:
    """kill MUST send the specified signal to the container process."""
    ctx.mount_out()
    ctx.create("c1", ["sh", "-c", "trap 'echo got > /out/usr1; exit 0' USR1; echo ready > /out/ready; "
                                  "while true; do sleep 0.1; done"])
    ctx.start()
    ctx.wait_file(ctx.out / "ready")
    ctx.succeed(ctx.cmd("kill", "c1", "USR1"), "kill")
    ctx.check(ctx.wait_file(ctx.out / "usr1"), "SIGUSR1 was not delivered")


@scenario("kill-numeric-signal", f"{RT}#kill", "MUST")
def _(ctx: Ctx) -> None:
    """kill with a signal number sends that signal (9 stops the container)."""
    pid = ctx.running()
    ctx.succeed(ctx.cmd("kill", "c1", "9"), "kill")
    ctx.wait_status("c1", "stopped")
    ctx.check(not _alive(pid), "the process survived SIGKILL")


@scenario("kill-created", f"{RT}#kill", "MUST")
def _(ctx: Ctx) -> None:
    """kill is allowed on a created container and reaches its process."""
    pid = ctx.created()
    ctx.succeed(ctx.cmd("kill", "c1", "KILL"), "kill")
    for _ in range(100):
        if not _alive(pid):
            return
        time.sleep(0.05)
    raise Fail("the created container's process survived SIGKILL")


@scenario("kill-stopped-errors", f"{RT}#kill", "MUST")
def _(ctx: Ctx) -> None:
    """kill on a stopped container MUST be an error."""
    ctx.create("c1", ["true"])
    ctx.start()
    ctx.wait_status("c1", "stopped")
    ctx.must_fail(ctx.cmd("kill", "c1", "KILL"), "the container is stopped")
    ctx.check(ctx.state().get("status") == "stopped", "status changed")


@scenario("kill-nonexistent-errors", f"{RT}#kill", "MUST")
def _(ctx: Ctx) -> None:
    """kill on a container that does not exist MUST be an error."""
    ctx.must_fail(ctx.cmd("kill", "no-such", "KILL"), "the container does not exist")


@scenario("kill-no-id-errors", f"{RT}#kill", "MUST")
def _(ctx: Ctx) -> None:
    """kill without a container ID MUST generate an error."""
    ctx.must_fail(ctx.cmd("kill"), "no ID was given")


# -- delete ---------------------------------------------------------------------------------------------

@scenario("delete-running-errors", f"{RT}#delete", "MUST")
def _(ctx: Ctx) -> None:
    """delete on a running container MUST be an error and have no effect."""
    pid = ctx.running()
    ctx.must_fail(ctx.cmd("delete", "c1"), "the container is running")
    ctx.check(_alive(pid) and ctx.state().get("status") == "running", "the running container was affected")


@scenario("delete-created-errors", f"{RT}#delete", "MUST")
def _(ctx: Ctx) -> None:
    """delete on a created (not stopped) container MUST be an error and have no effect."""
    pid = ctx.created()
    res = ctx.cmd("delete", "c1")
    ctx.must_fail(res, "the container is created, not stopped")
    ctx.check(_alive(pid), "the created container's process is gone")
    ctx.check(ctx.cmd("state", "c1").rc == 0, "the created container was deleted")


@scenario("delete-stopped-removes-everything", f"{RT}#delete", "MUST")
def _(ctx: Ctx) -> None:
    """Deleting a stopped container MUST delete the resources created by create (state, cgroups)."""
    ctx.linux["resources"]["pids"] = {"limit": 50}
    ctx.create("c1", ["true"])
    ctx.check(find_cgroups(ctx.cgroup), "no cgroup was created (nothing to check)")
    ctx.start()
    ctx.wait_status("c1", "stopped")
    ctx.succeed(ctx.cmd("delete", "c1"), "delete")
    ctx.check(ctx.cmd("state", "c1").rc != 0, "state still answers after delete")
    left = find_cgroups(ctx.cgroup)
    ctx.check(not left, f"cgroup left after delete: {left[:1]}")


@scenario("delete-nonexistent-errors", f"{RT}#delete", "MUST")
def _(ctx: Ctx) -> None:
    """delete on a container that does not exist MUST be an error."""
    ctx.must_fail(ctx.cmd("delete", "no-such"), "the container does not exist")


@scenario("delete-no-id-errors", f"{RT}#delete", "MUST")
def _(ctx: Ctx) -> None:
    """delete without a container ID MUST generate an error."""
    ctx.must_fail(ctx.cmd("delete"), "no ID was given")


@scenario("delete-keeps-bind-source", f"{RT}#delete", "MUST")
def _(ctx: Ctx) -> None:
    """Resources not created by the container (a bind-mount source and its files) MUST NOT be deleted."""
    src = ctx.work / "keep"
    src.mkdir()
    (src / "data").write_text("precious")
    ctx.add_mount("/data", "none", str(src), ["rbind"])
    ctx.create("c1", ["true"])
    ctx.start()
    ctx.wait_status("c1", "stopped")
    ctx.succeed(ctx.cmd("delete", "c1"), "delete")
    ctx.check((src / "data").exists() and (src / "data").read_text() == "precious", "the bind source was removed")


@scenario("delete-keeps-preexisting-cgroup", f"{RT}#delete", "MUST")
def _(ctx: Ctx) -> None:
    """A cgroup that existed before create was not created by the container: delete MUST NOT remove it."""
    pre = CGROUP_ROOT / "pids" / ctx.cgroup
    pre.mkdir()
    ctx.cleanups.append(lambda: pre.rmdir() if pre.is_dir() else None)
    ctx.linux["cgroupsPath"] = "/" + ctx.cgroup
    ctx.create("c1", ["true"])
    ctx.start()
    ctx.wait_status("c1", "stopped")
    ctx.succeed(ctx.cmd("delete", "c1"), "delete")
    ctx.check(pre.is_dir(), f"delete removed the pre-existing {pre}")


@scenario("id-reusable-after-delete", f"{RT}#delete", "MAY")
def _(ctx: Ctx) -> None:
    """Once a container is deleted its ID MAY be used by a subsequent container."""
    ctx.create("c1", ["true"])
    ctx.start()
    ctx.wait_status("c1", "stopped")
    ctx.succeed(ctx.cmd("delete", "c1"), "delete")
    ctx.created("c1")


@scenario("scope-operations-on-own-container", f"{RT}#scope-of-a-container", "MUST")
def _(ctx: Ctx) -> None:
    """The entity that created a container MUST be able to use the operations on it (state, kill, delete)."""
    ctx.created()
    ctx.state()
    ctx.succeed(ctx.cmd("kill", "c1", "KILL"), "kill")
    ctx.wait_status("c1", "stopped")
    ctx.succeed(ctx.cmd("delete", "c1"), "delete")
    ctx.check(ctx.cmd("state", "c1").rc != 0, "still there after delete")


@scenario("state-json-schema-types", f"{RT}#state", "MUST")
def _(ctx: Ctx) -> None:
    """The state JSON's properties have the schema's types (strings, int pid, string-map annotations)."""
    ctx.config["annotations"] = {"k": "v"}
    ctx.created()
    raw = ctx.succeed(ctx.cmd("state", "c1"), "state").out
    st = json.loads(raw)
    for key in ("ociVersion", "id", "status", "bundle"):
        ctx.check(isinstance(st.get(key), str), f"{key} is {type(st.get(key)).__name__}")
    ctx.check(isinstance(st.get("pid"), int), "pid is not an int")
    ann = st.get("annotations", {})
    ctx.check(isinstance(ann, dict) and all(isinstance(v, str) for v in ann.values()), "annotations not a map")
