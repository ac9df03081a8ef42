"""config.md: root, process (args, env, cwd, rlimits, capabilities, user...), hostname, annotations."""

from __future__ import annotations

import os
import resource

from ..harness import Ctx, Skip, add, scenario
from .common import CAP_NAMES, host_caps, last_cap, status_field

CFG = "config.md"


# -- root ---------------------------------------------------------------------------------------

@scenario("root-path-relative", f"{CFG}#root", "MUST")
def _(ctx: Ctx) -> None:
    """A relative root.path is resolved against the bundle."""
    (ctx.rootfs / "etc" / "marker").write_text("bundle-rootfs\n")
    ctx.check(ctx.probe("cat /etc/marker") == "bundle-rootfs\n", "container does not see the bundle's rootfs")


@scenario("root-path-absolute", f"{CFG}#root", "MUST")
def _(ctx: Ctx) -> None:
    """An absolute root.path names the root filesystem."""
    alt = ctx.bundle / "other-root"
    ctx.rootfs.rename(alt)
    (alt / "etc" / "marker").write_text("absolute\n")
    ctx.config["root"]["path"] = str(alt)
    ctx.check(ctx.probe("cat /etc/marker") == "absolute\n", "absolute root.path not used")


@scenario("root-path-missing-errors", f"{CFG}#root", "MUST")
def _(ctx: Ctx) -> None:
    """A directory MUST exist at root.path: a missing one is an error and nothing is created."""
    ctx.config["root"]["path"] = "no-such-rootfs"
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "root.path does not exist")


@scenario("root-readonly-true", f"{CFG}#root", "MUST")
def _(ctx: Ctx) -> None:
    """root.readonly true: the root filesystem MUST be read-only inside the container."""
    ctx.config["root"]["readonly"] = True
    out = ctx.probe("touch /newfile 2>/dev/null && echo writable || echo readonly; "
                    "awk '$5 == \"/\" {print $6}' /proc/self/mountinfo")
    lines = out.split()
    ctx.check(lines[:1] == ["readonly"], f"root is writable: {out!r}")
    ctx.check(not (ctx.rootfs / "newfile").exists(), "a file appeared in the host rootfs")


@scenario("root-readonly-default-false", f"{CFG}#root", "MUST")
def _(ctx: Ctx) -> None:
    """root.readonly defaults to false: the root filesystem is writable."""
    del ctx.config["root"]["readonly"]
    ctx.probe("touch /newfile")
    ctx.check((ctx.rootfs / "newfile").exists(), "write inside the container did not reach the rootfs")


# -- process ------------------------------------------------------------------------------------

@scenario("process-args-exec", f"{CFG}#process", "MUST")
def _(ctx: Ctx) -> None:
    """args are passed as argv to the user program, unchanged (spaces, quotes, empty strings)."""
    ctx.process["args"] = ["sh", "-c", 'for a in "$@"; do echo "[$a]"; done', "zero", "a b", "", "'q'"]
    out = ctx.succeed(ctx.cmd("run", "c1"), "run").out
    ctx.check(out == "[a b]\n[]\n['q']\n", f"argv mangled: {out!r}")


@scenario("process-args-path-lookup", f"{CFG}#process", "MUST")
def _(ctx: Ctx) -> None:
    """args[0] has execvp's *file* semantics: a bare name is looked up in the container's PATH."""
    (ctx.rootfs / "opt" / "tools").mkdir(parents=True)
    os.symlink("/bin/busybox", ctx.rootfs / "opt" / "tools" / "whoami")
    ctx.process["env"] = ["PATH=/opt/tools"]
    ctx.process["args"] = ["whoami"]
    out = ctx.succeed(ctx.cmd("run", "c1"), "run").out
    ctx.check(out.strip() == "root", f"PATH lookup of args[0] failed: {out!r}")


@scenario("process-env-exact", f"{CFG}#process", "MUST")
def _(ctx: Ctx) -> None:
    """env has environ semantics: the program sees the listed variables (values with '=' and spaces intact)."""
    ctx.process["env"] = ["PATH=/bin", "A=1", "B=x=y", "C=with space"]
    ctx.process["args"] = ["env"]
    out = ctx.succeed(ctx.cmd("run", "c1"), "run").out.splitlines()
    for want in ("PATH=/bin", "A=1", "B=x=y", "C=with space"):
        ctx.check(want in out, f"{want!r} missing from the environment: {out}")
    leaked = [v for v in out if v.split("=", 1)[0] in ("PYTHONPATH", "SUDO_USER", "LS_COLORS")]
    ctx.check(not leaked, f"runtime's own environment leaked in: {leaked}")


@scenario("process-cwd", f"{CFG}#process", "MUST")
def _(ctx: Ctx) -> None:
    """cwd is the working directory of the executable."""
    (ctx.rootfs / "srv" / "app").mkdir(parents=True)
    ctx.process["cwd"] = "/srv/app"
    ctx.check(ctx.probe("pwd") == "/srv/app\n", "wrong working directory")


@scenario("process-consolesize-ignored-without-terminal", f"{CFG}#process", "MUST")
def _(ctx: Ctx) -> None:
    """consoleSize MUST be ignored when terminal is false: the run works and stdio is no tty."""
    ctx.process["terminal"] = False
    ctx.process["consoleSize"] = {"height": 40, "width": 100}
    out = ctx.probe("test -t 1 && echo tty || echo notty")
    ctx.check(out == "notty\n", f"stdout is a terminal: {out!r}")


# -- rlimits --------------------------------------------------------------------------------------

RLIMITS = {  # type -> (/proc/PID/limits row, wanted soft, wanted hard): values a busybox probe survives
    "RLIMIT_CPU": ("Max cpu time", 3000, 4000),
    "RLIMIT_FSIZE": ("Max file size", 1 << 30, 1 << 31),
    "RLIMIT_DATA": ("Max data size", 1 << 32, 1 << 33),
    "RLIMIT_STACK": ("Max stack size", 6 << 20, 16 << 20),
    "RLIMIT_CORE": ("Max core file size", 1 << 20, 1 << 21),
    "RLIMIT_RSS": ("Max resident set", 1 << 30, 1 << 31),
    "RLIMIT_NPROC": ("Max processes", 4000, 5000),
    "RLIMIT_NOFILE": ("Max open files", 300, 400),
    "RLIMIT_MEMLOCK": ("Max locked memory", 1 << 16, 1 << 17),
    "RLIMIT_AS": ("Max address space", 1 << 34, 1 << 35),
    "RLIMIT_LOCKS": ("Max file locks", 500, 600),
    "RLIMIT_SIGPENDING": ("Max pending signals", 900, 1000),
    "RLIMIT_MSGQUEUE": ("Max msgqueue size", 40960, 81920),
    "RLIMIT_NICE": ("Max nice priority", 0, 0),
    "RLIMIT_RTPRIO": ("Max realtime priority", 0, 0),
    "RLIMIT_RTTIME": ("Max realtime timeout", 1000000, 2000000),
}


def _own_limit(row: str) -> tuple[int, int]:
    """The caller's (soft, hard) for a /proc/self/limits row; unlimited as RLIM_INFINITY."""
    for line in open("/proc/self/limits"):
        if line.startswith(row):
            vals = line[len(row):].split()[:2]
            return tuple(resource.RLIM_INFINITY if v == "unlimited" else int(v) for v in vals)  # type: ignore
    raise Skip(f"no {row!r} row in /proc/self/limits")


def _rlimit_scenario(rtype: str) -> None:
    row, soft, hard = RLIMITS[rtype]

    def fn(ctx: Ctx) -> None:
        cur_soft, cur_hard = _own_limit(row)
        h = hard if cur_hard == resource.RLIM_INFINITY else min(hard, cur_hard)
        s = min(soft, h)
        if (s, h) == (cur_soft, cur_hard):
            raise Skip(f"host hard limit {cur_hard} leaves no value distinguishable from the caller's "
                       "(no CAP_SYS_RESOURCE to raise it)")
        ctx.process["rlimits"] = [{"type": rtype, "soft": s, "hard": h}]
        out = ctx.probe("cat /proc/self/limits")
        line = next((ln for ln in out.splitlines() if ln.startswith(row)), "")
        got = line[len(row):].split()[:2]
        want = [str(s), str(h)]
        ctx.check(got == want, f"{rtype}: soft/hard {got}, configured {want}")

    add(f"rlimit-{rtype[7:].lower()}", f"{CFG}#posix-process", "MUST",
        f"{rtype}: rlim_cur and rlim_max MUST match the configured soft and hard", fn)


for _t in RLIMITS:
    _rlimit_scenario(_t)


@scenario("rlimit-duplicate-type-errors", f"{CFG}#posix-process", "MUST")
def _(ctx: Ctx) -> None:
    """Duplicated rlimits entries with the same type MUST generate an error."""
    ctx.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
                              {"type": "RLIMIT_NOFILE", "soft": 150, "hard": 250}]
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "rlimits has a duplicated type")


@scenario("rlimit-unknown-type-errors", f"{CFG}#posix-process", "MUST")
def _(ctx: Ctx) -> None:
    """An rlimit type that cannot be mapped to a kernel interface MUST generate an error."""
    ctx.process["rlimits"] = [{"type": "RLIMIT_NOT_A_LIMIT", "soft": 1, "hard": 1}]
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "the rlimit type does not exist")


# -- user -----------------------------------------------------------------------------------------

@scenario("user-uid-gid", f"{CFG}#posix-platform-user", "MUST")
def _(ctx: Ctx) -> None:
    """uid and gid are the process's real, effective, saved and filesystem ids."""
    ctx.process["user"] = {"uid": 1234, "gid": 4321}
    out = ctx.probe("grep -E '^(Uid|Gid)' /proc/self/status")
    ctx.check(status_field(out, "Uid").split() == ["1234"] * 4, f"Uid: {out!r}")
    ctx.check(status_field(out, "Gid").split() == ["4321"] * 4, f"Gid: {out!r}")


@scenario("user-additional-gids", f"{CFG}#posix-platform-user", "MUST")
def _(ctx: Ctx) -> None:
    """additionalGids are added to the process (and nothing else is)."""
    ctx.process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [7, 70, 700]}
    out = ctx.probe("grep ^Groups /proc/self/status")
    groups = sorted(int(g) for g in status_field(out, "Groups").split())
    ctx.check(groups == [7, 70, 700], f"supplementary groups {groups}, want [7, 70, 700]")


@scenario("user-no-additional-gids-clears-groups", f"{CFG}#posix-platform-user", "MUST")
def _(ctx: Ctx) -> None:
    """Without additionalGids the runtime's supplementary groups do not leak into the container."""
    ctx.process["user"] = {"uid": 1000, "gid": 1000}
    out = ctx.probe("grep ^Groups /proc/self/status")
    groups = [g for g in status_field(out, "Groups").split() if g != "1000"]
    ctx.check(not groups, f"unexpected supplementary groups {groups}")


@scenario("user-umask", f"{CFG}#posix-platform-user", "MUST")
def _(ctx: Ctx) -> None:
    """umask is the umask of the process."""
    ctx.process["user"] = {"uid": 0, "gid": 0, "umask": 0o027}
    out = ctx.probe("grep ^Umask /proc/self/status")
    ctx.check(status_field(out, "Umask") == "0027", f"umask: {out!r}")


@scenario("user-umask-unset-inherited", f"{CFG}#posix-platform-user", "SHOULD")
def _(ctx: Ctx) -> None:
    """Without umask, the umask should not be changed from the calling process' umask."""
    ctx.process["args"] = ["sh", "-c", "grep ^Umask /proc/self/status"]
    out = ctx.succeed(ctx.cmd("run", "c1", umask=0o007), "run").out
    ctx.check(status_field(out, "Umask") == "0007", f"caller's umask 0007 not kept: {out!r}")


# -- capabilities -------------------------------------------------------------------------------

def _cap_scenario(bit: int, name: str) -> None:
    def fn(ctx: Ctx) -> None:
        if not host_caps() >> bit & 1:
            raise Skip(f"{name} is not in the caller's bounding set")
        ctx.process["capabilities"] = {k: [name] for k in ("bounding", "effective", "permitted")}
        out = ctx.probe("grep ^Cap /proc/self/status")
        for key in ("CapBnd", "CapPrm", "CapEff"):
            got = int(status_field(out, key), 16)
            ctx.check(got == 1 << bit, f"{key}={got:#x}, want only {name} ({1 << bit:#x})")

    add(f"cap-{name[4:].lower()}", f"{CFG}#linux-process", "MUST",
        f"capabilities: {name} alone in bounding/effective/permitted is exactly what the process gets", fn)


for _bit, _name in enumerate(CAP_NAMES[: last_cap() + 1]):
    if _name != "CAP_SYS_RESOURCE":
        _cap_scenario(_bit, _name)


@scenario("cap-inheritable-set", f"{CFG}#linux-process", "MUST")
def _(ctx: Ctx) -> None:
    """capabilities.inheritable is the process's inheritable set."""
    caps = ["CAP_CHOWN", "CAP_KILL"]
    ctx.process["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps}
    out = ctx.probe("grep ^CapInh /proc/self/status")
    ctx.check(int(status_field(out, "CapInh"), 16) == 0b100001, f"CapInh: {out!r}")


@scenario("cap-ambient-non-root", f"{CFG}#linux-process", "MUST")
def _(ctx: Ctx) -> None:
    """capabilities.ambient are kept for a non-root user across exec."""
    caps = ["CAP_NET_BIND_SERVICE"]
    ctx.process["user"] = {"uid": 1000, "gid": 1000}
    ctx.process["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted", "inheritable", "ambient")}
    out = ctx.probe("grep -E '^Cap(Amb|Eff)' /proc/self/status")
    ctx.check(int(status_field(out, "CapAmb"), 16) == 1 << 10, f"CapAmb: {out!r}")
    ctx.check(int(status_field(out, "CapEff"), 16) == 1 << 10, f"CapEff: {out!r}")


@scenario("cap-bounding-only", f"{CFG}#linux-process", "MUST")
def _(ctx: Ctx) -> None:
    """capabilities.bounding limits the bounding set even when the other sets are empty."""
    ctx.process["user"] = {"uid": 1000, "gid": 1000}
    ctx.process["capabilities"] = {"bounding": ["CAP_CHOWN", "CAP_SETUID"]}
    out = ctx.probe("grep -E '^Cap(Bnd|Eff)' /proc/self/status")
    ctx.check(int(status_field(out, "CapBnd"), 16) == (1 | 1 << 7), f"CapBnd: {out!r}")
    ctx.check(int(status_field(out, "CapEff"), 16) == 0, f"CapEff: {out!r}")


@scenario("cap-empty-drops-all", f"{CFG}#linux-process", "MUST")
def _(ctx: Ctx) -> None:
    """An empty capabilities object keeps no capability at all."""
    ctx.process["capabilities"] = {k: [] for k in ("bounding", "effective", "permitted", "inheritable", "ambient")}
    out = ctx.probe("grep ^Cap /proc/self/status")
    for key in ("CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"):
        ctx.check(int(status_field(out, key), 16) == 0, f"{key} not empty: {out!r}")


@scenario("cap-unknown-is-warning", f"{CFG}#linux-process", "SHOULD")
def _(ctx: Ctx) -> None:
    """A capability unknown to the kernel MUST be logged as a warning; the runtime SHOULD NOT fail."""
    ctx.process["capabilities"] = {k: ["CAP_KILL", "CAP_NOT_A_REAL_CAPABILITY"]
                                   for k in ("bounding", "effective", "permitted")}
    ctx.process["args"] = ["sh", "-c", "grep ^CapEff /proc/self/status"]
    res = ctx.cmd("run", "c1")
    ctx.check(res.rc == 0, f"run failed on an unknown capability instead of warning: {res.brief()}")
    ctx.check(int(status_field(res.out, "CapEff"), 16) == 1 << 5, f"CAP_KILL not applied: {res.out!r}")


@scenario("cap-ungrantable-is-warning", f"{CFG}#linux-process", "SHOULD")
def _(ctx: Ctx) -> None:
    """A capability the runtime cannot grant (not in its own bounding set) is a warning, not a failure."""
    if host_caps() >> 24 & 1:
        raise Skip("the caller holds CAP_SYS_RESOURCE, nothing is ungrantable here")
    ctx.process["capabilities"] = {k: ["CAP_KILL", "CAP_SYS_RESOURCE"] for k in ("bounding", "effective", "permitted")}
    ctx.process["args"] = ["sh", "-c", "grep ^CapEff /proc/self/status"]
    res = ctx.cmd("run", "c1")
    ctx.check(res.rc == 0, f"run failed on an ungrantable capability: {res.brief()}")
    ctx.check(int(status_field(res.out, "CapEff"), 16) == 1 << 5, f"CapEff: {res.out!r}")


# -- other process fields -------------------------------------------------------------------------

@scenario("no-new-privileges-true", f"{CFG}#linux-process", "MUST")
def _(ctx: Ctx) -> None:
    """noNewPrivileges true sets no_new_privs on the process."""
    ctx.process["noNewPrivileges"] = True
    out = ctx.probe("grep ^NoNewPrivs /proc/self/status")
    ctx.check(status_field(out, "NoNewPrivs") == "1", f"NoNewPrivs: {out!r}")


@scenario("no-new-privileges-false", f"{CFG}#linux-process", "MUST")
def _(ctx: Ctx) -> None:
    """noNewPrivileges false leaves no_new_privs clear."""
    ctx.process["noNewPrivileges"] = False
    out = ctx.probe("grep ^NoNewPrivs /proc/self/status")
    ctx.check(status_field(out, "NoNewPrivs") == "0", f"NoNewPrivs: {out!r}")


@scenario("oom-score-adj-set", f"{CFG}#linux-process", "MUST")
def _(ctx: Ctx) -> None:
    """If oomScoreAdj is set, the runtime MUST set oom_score_adj to it."""
    ctx.process["oomScoreAdj"] = 345
    ctx.check(ctx.probe("cat /proc/self/oom_score_adj") == "345\n", "oom_score_adj not set")


@scenario("oom-score-adj-unset-unchanged", f"{CFG}#linux-process", "MUST")
def _(ctx: Ctx) -> None:
    """If oomScoreAdj is not set, the runtime MUST NOT change oom_score_adj (the caller's value stays)."""
    ctx.process.pop("oomScoreAdj", None)
    ctx.process["args"] = ["cat", "/proc/self/oom_score_adj"]
    wrap = ["sh", "-c", 'echo 123 > /proc/self/oom_score_adj && exec "$@"', "sh"]
    out = ctx.succeed(ctx.cmd("run", "c1", wrap=wrap), "run").out
    ctx.check(out == "123\n", f"oom_score_adj changed from the caller's 123 to {out.strip()!r}")


@scenario("scheduler-policy", f"{CFG}#linux-process", "MUST")
def _(ctx: Ctx) -> None:
    """scheduler.policy SCHED_BATCH with nice 5 is the process's policy and nice value."""
    ctx.process["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5}
    out = ctx.probe("cut -d' ' -f19,41 /proc/self/stat")
    ctx.check(out.split() == ["5", "3"], f"nice/policy {out.split()}, want nice 5, policy 3 (SCHED_BATCH)")


@scenario("io-priority", f"{CFG}#linux-process", "MUST")
def _(ctx: Ctx) -> None:
    """ioPriority class IOPRIO_CLASS_IDLE is applied to the process."""
    ctx.process["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    out = ctx.probe("ionice -p $$")
    ctx.check("idle" in out.lower(), f"io priority: {out!r}")


@scenario("io-priority-class-only", f"{CFG}#linux-process", "MAY")
def _(ctx: Ctx) -> None:
    """ioPriority with only a class (IOPRIO_CLASS_IDLE, where a level means nothing) runs in that class."""
    ctx.process["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE"}
    out = ctx.probe("ionice -p $$")
    ctx.check("idle" in out.lower(), f"io priority: {out!r}")


@scenario("exec-cpu-affinity-not-for-init", f"{CFG}#linux-process", "MAY")
def _(ctx: Ctx) -> None:
    """execCPUAffinity is not applicable to the init process: the container still runs (on all CPUs)."""
    ctx.process["execCPUAffinity"] = {"final": "0"}
    out = ctx.probe("grep ^Cpus_allowed_list /proc/self/status")
    want = status_field(open("/proc/self/status").read(), "Cpus_allowed_list")
    ctx.check(status_field(out, "Cpus_allowed_list") == want, f"init's affinity changed: {out!r}")


# -- hostname, domainname, annotations, extensibility ------------------------------------------

@scenario("hostname", f"{CFG}#hostname", "MUST")
def _(ctx: Ctx) -> None:
    """hostname is the container's hostname in its UTS namespace (and the host's is unchanged)."""
    before = os.uname().nodename
    ctx.config["hostname"] = "conf-box"
    ctx.check(ctx.probe("hostname") == "conf-box\n", "hostname not set")
    ctx.check(os.uname().nodename == before, "the host's hostname changed")


@scenario("domainname", f"{CFG}#domainname", "MUST")
def _(ctx: Ctx) -> None:
    """domainname is the container's NIS domain name in its UTS namespace."""
    ctx.config["domainname"] = "conformance.test"
    out = ctx.probe("cat /proc/sys/kernel/domainname")
    ctx.check(out == "conformance.test\n", f"domainname is {out.strip()!r}")


@scenario("annotations-in-state", "runtime.md#state", "MUST")
def _(ctx: Ctx) -> None:
    """The state's annotations contain the annotations associated with the container."""
    ann = {"com.example.key": "value", "org.example.empty": ""}
    ctx.config["annotations"] = ann
    ctx.created()
    got = ctx.state().get("annotations")
    ctx.check(got == ann, f"state annotations {got!r}, want {ann!r}")


@scenario("extensibility-unknown-top-level", f"{CFG}#extensibility", "MUST")
def _(ctx: Ctx) -> None:
    """Unknown properties MUST be ignored, not errors (top level)."""
    ctx.config["com.example.future"] = {"nested": [1, 2, 3]}
    ctx.check(ctx.probe("echo ok") == "ok\n", "unexpected output")


@scenario("extensibility-unknown-in-process", f"{CFG}#extensibility", "MUST")
def _(ctx: Ctx) -> None:
    """Unknown properties MUST be ignored, not errors (inside process and process.user)."""
    ctx.process["futureKnob"] = True
    ctx.process["user"]["futureUserField"] = "x"
    ctx.check(ctx.probe("echo ok") == "ok\n", "unexpected output")


@scenario("extensibility-unknown-in-linux", f"{CFG}#extensibility", "MUST")
def _(ctx: Ctx) -> None:
    """Unknown properties MUST be ignored, not errors (inside linux and linux.resources)."""
    ctx.linux["futureLinuxThing"] = {"a": 1}
    ctx.linux["resources"]["futureController"] = {"b": 2}
    ctx.check(ctx.probe("echo ok") == "ok\n", "unexpected output")


@scenario("extensibility-unknown-annotation-keys", f"{CFG}#annotations", "MUST")
def _(ctx: Ctx) -> None:
    """Unknown annotation keys MUST be handled like any unknown property (ignored)."""
    ctx.config["annotations"] = {"org.opencontainers.image.os": "linux", "x.unknown.key": "v"}
    ctx.check(ctx.probe("echo ok") == "ok\n", "unexpected output")


@scenario("valid-values-bad-namespace-type", f"{CFG}#valid-values", "MUST")
def _(ctx: Ctx) -> None:
    """Invalid values MUST generate an error: an unknown namespace type."""
    ctx.linux["namespaces"].append({"type": "bogus"})
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "namespace type 'bogus' is invalid")


@scenario("valid-values-bad-rootfs-propagation", f"{CFG}#valid-values", "MUST")
def _(ctx: Ctx) -> None:
    """Invalid values MUST generate an error: rootfsPropagation 'sideways'."""
    ctx.linux["rootfsPropagation"] = "sideways"
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "rootfsPropagation is invalid")


@scenario("valid-values-bad-device-type", f"{CFG}#valid-values", "MUST")
def _(ctx: Ctx) -> None:
    """Invalid values MUST generate an error: a device of type 'x'."""
    ctx.linux["devices"] = [{"path": "/dev/odd", "type": "x", "major": 1, "minor": 3}]
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "device type 'x' is invalid")


@scenario("valid-values-bad-personality-domain", f"{CFG}#valid-values", "MUST")
def _(ctx: Ctx) -> None:
    """Invalid values MUST generate an error: personality domain 'MSDOS'."""
    ctx.linux["personality"] = {"domain": "MSDOS"}
    ctx.expect_nothing_created(ctx.cmd("create", "c1"), "c1", "personality domain is invalid")
