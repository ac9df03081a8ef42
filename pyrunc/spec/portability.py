"""Where the same config.json does different things under runc 1.1, runc 1.5 and the runtime spec
(and pyrunc), as `pyrunc check` warns about it.

Facts from runc's changelog (1.2 to 1.5), issue 22's side-by-side table and the spec text; each
finding is ``(level, JSON pointer, message)``: "warning" where a program in the container could
tell the difference (a limit, a writable mount, a weight, a field ignored), "info" where only
the mount table or the timing differs. Pure functions of a config that passed the schema.
"""

from __future__ import annotations

from .posture import ptr

TYPE_CHECKING = False
if TYPE_CHECKING:
    Finding = tuple[str, str, str]

# Fields of runtime-spec 1.1-1.3 that runc 1.1 (runtime-spec 1.0.2) does not know and ignores.
NEWER_FIELDS = (
    (("process", "scheduler"), "runtime-spec 1.2", "1.2"),
    (("process", "ioPriority"), "runtime-spec 1.2", "1.2"),
    (("process", "execCPUAffinity"), "runtime-spec 1.2", "1.3"),
    (("linux", "netDevices"), "runtime-spec 1.3", "1.4"),
    (("linux", "memoryPolicy"), "runtime-spec 1.3", "1.4"),
)


def portability(config: dict, *, masked_dirs: list[str] | None = None) -> list[Finding]:
    """Every portability finding for ``config`` (see the module docstring); ``masked_dirs``: the
    masked paths that are directories in this container (`pyrunc plan` knows), else guessed."""
    out: list[Finding] = masked_directories(config, masked_dirs)
    for check in (pids_zero, recursive_readonly, cpu_shares, rootfs_propagation, no_pid_namespace,
                  seccomp_flags, newer_fields, newer_mounts):
        out += check(config)
    return out


def pids_zero(config: dict) -> list[Finding]:
    pids = ((config.get("linux") or {}).get("resources") or {}).get("pids") or {}
    if pids.get("limit") == 0:
        return [("warning", ptr("linux", "resources", "pids", "limit"),
                 "pids.limit 0: runc 1.1 reads it as no limit; runtime-spec 1.3, runc 1.4+ and pyrunc as a "
                 "limit of 0 processes (1 through systemd); set -1 for no limit")]
    return []


def recursive_readonly(config: dict) -> list[Finding]:
    out: list[Finding] = []
    for i, m in enumerate(config.get("mounts") or []):
        opts = m.get("options") or []
        if "rbind" in opts and "ro" in opts and "rro" not in opts:
            out.append(("warning", ptr("mounts", i, "options"),
                        f"rbind,ro on {m.get('destination')}: only the top mount is read-only (the spec, the "
                        "CRI, runc and pyrunc); the submounts the rbind brings stay writable; 'rro' makes "
                        "the whole tree read-only"))
    return out


def masked_directories(config: dict, dirs: list[str] | None = None) -> list[Finding]:
    masked = (config.get("linux") or {}).get("maskedPaths") or []
    if dirs is None:
        dirs = [p for p in masked if p in ("/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware",
                                           "/sys/devices/virtual/powercap") or p.endswith("/")]
    if not dirs:
        return []
    return [("info", ptr("linux", "maskedPaths"),
             f"{len(dirs)} masked directories ({', '.join(dirs[:4])}{' ...' if len(dirs) > 4 else ''}): runc "
             "1.1 to 1.4 mount one read-only tmpfs on each, runc 1.5 and pyrunc one shared read-only tmpfs "
             "for all (the same content; the mount tables differ)")]


def cpu_shares(config: dict) -> list[Finding]:
    from ..cgroups.resources import cpu_shares_to_weight, cpu_shares_to_weight_linear

    cpu = ((config.get("linux") or {}).get("resources") or {}).get("cpu") or {}
    shares = cpu.get("shares")
    if not shares:
        return []
    lin, log = cpu_shares_to_weight_linear(shares), cpu_shares_to_weight(shares)
    if lin == log:
        return []
    return [("warning", ptr("linux", "resources", "cpu", "shares"),
             f"cpu.shares {shares} on cgroup v2: runc 1.1 writes cpu.weight {lin}; runc 1.3.2+, crun 1.23+ "
             f"and pyrunc write {log} (the mapping that keeps 1024 -> 100)")]


def rootfs_propagation(config: dict) -> list[Finding]:
    prop = (config.get("linux") or {}).get("rootfsPropagation")
    if prop in ("shared", "rshared", "slave", "unbindable", "runbindable"):
        return [("warning", ptr("linux", "rootfsPropagation"),
                 f"rootfsPropagation {prop}: runc 1.1 applies it to the caller's / before the rootfs is "
                 "bound, so the container's / does not get it; runc 1.2.7, 1.3.1, 1.4+ and pyrunc give "
                 "the container's / that propagation (`pyrunc plan` shows it)")]
    return []


def no_pid_namespace(config: dict) -> list[Finding]:
    nss = {ns.get("type") for ns in (config.get("linux") or {}).get("namespaces") or []}
    if "pid" in nss:
        return []
    return [("warning", ptr("linux", "namespaces"),
             "no pid namespace: `kill ID KILL` (without --all) kills only the init under runc 1.1, every "
             "process of the container under runc 1.5 and pyrunc")]


def seccomp_flags(config: dict) -> list[Finding]:
    sc = (config.get("linux") or {}).get("seccomp")
    if sc is None or sc.get("flags"):
        return []
    return [("warning", ptr("linux", "seccomp"),
             "seccomp without flags: runc 1.2+ and pyrunc load the filter with SECCOMP_FILTER_FLAG_SPEC_ALLOW "
             "(no speculative store bypass mitigation forced on the program); runc 1.1 does not")]


def newer_fields(config: dict) -> list[Finding]:
    out: list[Finding] = []
    for (section, key), spec, since in NEWER_FIELDS:
        if (config.get(section) or {}).get(key) is not None:
            out.append(("warning", ptr(section, key), f"{section}.{key} ({spec}) is ignored by runc before "
                                                      f"{since} (runc 1.1 implements runtime-spec 1.0.2)"))
    lin = config.get("linux") or {}
    if any(ns.get("type") == "time" for ns in lin.get("namespaces") or []) or lin.get("timeOffsets"):
        out.append(("warning", ptr("linux", "namespaces"), "a time namespace: runc 1.1 refuses it "
                                                           "(time namespaces since runc 1.2)"))
    return out


def newer_mounts(config: dict) -> list[Finding]:
    out: list[Finding] = []
    for i, m in enumerate(config.get("mounts") or []):
        opts = m.get("options") or []
        if m.get("uidMappings") or m.get("gidMappings") or "idmap" in opts or "ridmap" in opts:
            out.append(("warning", ptr("mounts", i), f"idmapped mount {m.get('destination')}: runc 1.1 "
                                                     "refuses it (idmapped mounts since runc 1.2)"))
    return out
