"""A config's security posture, as `pyrunc check` reports it: what the container shares with
the host, what it may do there, and what protects the host from it.

Pure functions of a config that passed the schema (types trusted); each finding is
``(level, JSON pointer, message)`` with level "warning" (a real weakening of the isolation a
container is expected to have) or "info" (worth knowing, common in ordinary configs). Nothing
here refuses anything: create runs these configs; the report says what that means. The one
look at the host: whether a bind mount's source is a socket.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    Finding = tuple[str, str, str]

SHARED_NS = {
    "pid": "sees and can signal the host's processes",
    "network": "uses the host's network interfaces, ports and abstract unix sockets",
    "ipc": "shares the host's System V IPC and POSIX message queues",
    "uts": "shares the host's hostname (sethostname with CAP_SYS_ADMIN renames the host)",
    "mount": "has no mount namespace: its mounts are made in the caller's",
}
# Capabilities that reach beyond the container (capabilities(7); the Docker and Kubernetes lists).
DANGEROUS_CAPS = {
    "CAP_SYS_ADMIN": "mount, namespaces and most kernel administration: close to full root",
    "CAP_SYS_MODULE": "loads kernel modules",
    "CAP_SYS_RAWIO": "raw I/O ports and /dev/mem",
    "CAP_SYS_PTRACE": "traces and reads the memory of any process it can see",
    "CAP_SYS_BOOT": "reboots the host",
    "CAP_SYS_TIME": "sets the host's clock",
    "CAP_NET_ADMIN": "reconfigures networking (the host's, with a shared network namespace)",
    "CAP_DAC_READ_SEARCH": "open_by_handle_at: reads any file on a mounted filesystem",
    "CAP_BPF": "loads BPF programs",
    "CAP_PERFMON": "perf events on the whole system",
    "CAP_SYS_RESOURCE": "overrides resource limits",
    "CAP_MAC_ADMIN": "changes the LSM policy",
    "CAP_MAC_OVERRIDE": "overrides the LSM policy",
    "CAP_SYSLOG": "reads and clears the kernel log",
    "CAP_AUDIT_CONTROL": "changes the audit rules",
    "CAP_LINUX_IMMUTABLE": "sets immutable and append-only file flags",
    "CAP_CHECKPOINT_RESTORE": "checkpoint/restore of other processes",
    "CAP_WAKE_ALARM": "wakes the host",
    "CAP_BLOCK_SUSPEND": "blocks system suspend",
}
CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")
ALL_CAPS = 41
# runc's defaults (`runc spec`, containerd, Docker): what a /proc or /sys should not show writable.
MASKED = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
# System calls a deny-by-default profile usually keeps denied (Docker's and runc's defaults).
RISKY_SYSCALLS = frozenset({
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module", "finit_module",
    "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "init_module", "ioperm", "iopl", "kcmp",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount", "mount_setattr", "move_mount",
    "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open", "pivot_root",
    "process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl", "reboot", "request_key",
    "setns", "settimeofday", "swapoff", "swapon", "sysfs", "umount", "umount2", "unshare", "uselib",
    "userfaultfd", "vm86", "vm86old",
})
HOST_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
                "/var/run/containerd/containerd.sock", "/run/crio/crio.sock", "/var/run/crio/crio.sock",
                "/run/podman/podman.sock", "/run/dbus/system_bus_socket", "/run/systemd/private",
                "/var/run/dbus/system_bus_socket")
SENSITIVE_PATHS = ("/", "/etc", "/root", "/home", "/boot", "/proc", "/sys", "/dev", "/run", "/var/run",
                   "/var/lib/docker", "/var/lib/containerd", "/var/lib/containers", "/var/lib/kubelet",
                   "/lib/modules", "/usr", "/var/log", "/etc/shadow", "/etc/sudoers", "/etc/kubernetes",
                   "/sys/fs/cgroup", "/run/containerd", "/run/docker", "/run/systemd", "/var/lib/kubelet/pods")
# Device nodes whose access reaches the host directly: (type, major, minor or None, what).
SENSITIVE_DEVICES = ((("c", 1, 1), "/dev/mem: physical memory"), (("c", 1, 2), "/dev/kmem: kernel memory"),
                     (("c", 1, 4), "/dev/port: I/O ports"), (("c", 10, 232), "/dev/kvm: hardware virtualisation"),
                     (("c", 10, 229), "/dev/fuse: FUSE filesystems"), (("c", 10, 237), "/dev/loop-control"))


def ptr(*keys: str | int) -> str:
    return "".join("/" + str(k).replace("~", "~0").replace("/", "~1") for k in keys)


def posture(config: dict, bundle: str = ".") -> list[Finding]:
    """Every posture finding for ``config`` (see the module docstring)."""
    out: list[Finding] = []
    for check in (namespaces, capabilities, seccomp, proc_and_sys, bind_mounts, devices, process):
        out += check(config) if check is not bind_mounts else check(config, bundle)
    return out


def namespaces(config: dict) -> list[Finding]:
    lin = config.get("linux") or {}
    nss = lin.get("namespaces") or []
    by_type = {ns["type"]: (i, ns) for i, ns in enumerate(nss)}
    out: list[Finding] = []
    for kind, what in SHARED_NS.items():
        if kind not in by_type:
            out.append(("warning", ptr("linux", "namespaces"), f"no {kind} namespace: the container {what}"))
    for kind, (i, ns) in by_type.items():
        path = ns.get("path")
        if path and os.path.realpath(path).startswith("/proc/1/"):
            out.append(("warning", ptr("linux", "namespaces", i, "path"),
                        f"joins the {kind} namespace of the host's init ({path}): the host's own"))
        elif path:
            out.append(("info", ptr("linux", "namespaces", i, "path"),
                        f"joins the {kind} namespace at {path}: shared with whoever holds it"))
    if "user" not in by_type and ((config.get("process") or {}).get("user") or {}).get("uid", 0) == 0:
        out.append(("info", ptr("linux", "namespaces"),
                    "no user namespace: uid 0 in the container is uid 0 on the host"))
    if "cgroup" not in by_type:
        out.append(("info", ptr("linux", "namespaces"), "no cgroup namespace: /proc/self/cgroup shows host paths"))
    return out


def capabilities(config: dict) -> list[Finding]:
    process = config.get("process") or {}
    caps = process.get("capabilities")
    if caps is None:
        return [("warning", ptr("process"), "process.capabilities is not set: the process keeps every "
                                            "capability the runtime has (a privileged container)")]
    held: dict[str, str] = {}
    for which in CAP_SETS:
        for i, name in enumerate(caps.get(which) or []):
            held.setdefault(name, ptr("process", "capabilities", which, i))
    if len([n for n in held if n.startswith("CAP_")]) >= ALL_CAPS:
        return [("warning", ptr("process", "capabilities"), "every capability is granted: a privileged container")]
    return [("warning", pointer, f"{name}: {DANGEROUS_CAPS[name]}")
            for name, pointer in held.items() if name in DANGEROUS_CAPS]


def seccomp(config: dict) -> list[Finding]:
    process = config.get("process") or {}
    sc = (config.get("linux") or {}).get("seccomp")
    out: list[Finding] = []
    if not process.get("noNewPrivileges"):
        out.append(("info", ptr("process", "noNewPrivileges"),
                    "noNewPrivileges is false: setuid and file-capability programs can gain privileges"))
    if sc is None:
        return out + [("warning", ptr("linux"), "no seccomp profile: every system call is allowed")]
    default = sc.get("defaultAction")
    if default in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG"):
        return out + [("warning", ptr("linux", "seccomp", "defaultAction"),
                       f"permissive seccomp profile (defaultAction {default}): only the "
                       f"{len(sc.get('syscalls') or [])} listed rules restrict anything")]
    for i, rule in enumerate(sc.get("syscalls") or []):
        if rule.get("action") not in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG") or rule.get("args"):
            continue
        risky = sorted(set(rule.get("names") or []) & RISKY_SYSCALLS)
        if risky:
            out.append(("warning", ptr("linux", "seccomp", "syscalls", i),
                        "the profile allows " + ", ".join(risky) + " unconditionally"))
    return out


def _covered(path: str, lists: list[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in lists)


def proc_and_sys(config: dict) -> list[Finding]:
    lin = config.get("linux") or {}
    mounts = config.get("mounts") or []
    types = {m.get("type") for m in mounts}
    masked = list(lin.get("maskedPaths") or [])
    readonly = list(lin.get("readonlyPaths") or [])
    out: list[Finding] = []
    for path in MASKED + READONLY:
        fs = "proc" if path.startswith("/proc/") else "sysfs"
        if fs in types and not _covered(path, masked + readonly):
            out.append(("warning", ptr("linux", "maskedPaths" if path in MASKED else "readonlyPaths"),
                        f"{path} is neither masked nor read-only: {'visible' if path in MASKED else 'writable'}"
                        " in the container"))
    for i, m in enumerate(mounts):
        opts = m.get("options") or []
        if m.get("type") in ("sysfs", "cgroup", "cgroup2") and "ro" not in opts and "rro" not in opts:
            out.append(("warning", ptr("mounts", i), f"{m.get('type')} on {m.get('destination')} is mounted "
                                                     "read-write"))
    return out


def _bind(m: dict) -> bool:
    return m.get("type") == "bind" or any(o in ("bind", "rbind") for o in m.get("options") or [])


def bind_mounts(config: dict, bundle: str = ".") -> list[Finding]:
    out: list[Finding] = []
    for i, m in enumerate(config.get("mounts") or []):
        if not _bind(m):
            continue
        source = m.get("source") or ""
        if not source.startswith("/"):
            continue  # inside the bundle
        source = os.path.normpath(source)
        opts = m.get("options") or []
        writable = "ro" not in opts and "rro" not in opts
        access = "writable" if writable else "read-only"
        if source in HOST_SOCKETS or _is_socket(source):
            out.append(("warning", ptr("mounts", i, "source"), f"binds the host socket {source}: whoever "
                        "can reach a container runtime's or systemd's socket controls the host"))
        elif any(s == source or s.startswith(source.rstrip("/") + "/") for s in SENSITIVE_PATHS):
            out.append(("warning", ptr("mounts", i, "source"),
                        f"binds the host's {source} ({access}) at {m.get('destination')}"))
        if any(o in ("shared", "rshared") for o in opts):
            out.append(("info", ptr("mounts", i, "options"), f"{m.get('destination')} shares mount "
                        "propagation with the host: mounts made in it appear on the host"))
    return out


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return path.endswith(".sock")


def devices(config: dict) -> list[Finding]:
    from ..cgroups.devices_bpf import effective_rules

    lin = config.get("linux") or {}
    out: list[Finding] = []
    rules = (lin.get("resources") or {}).get("devices")
    try:
        default_allow, effective = effective_rules(rules or [])
    except Exception:  # noqa: BLE001 - a bad rule is create's error, reported elsewhere
        return out
    if default_allow:
        out.append(("warning", ptr("linux", "resources", "devices"), "the device rules never deny everything "
                    "first: every host device is allowed (reached through a node and CAP_MKNOD)"))
    for i, entry in enumerate(rules or []):
        if entry.get("allow") and (entry.get("type") in (None, "a") or entry.get("major") in (None, -1)) \
                and set(entry.get("access") or "rwm") & {"r", "w"} and i >= _last_reset(rules):
            out.append(("warning", ptr("linux", "resources", "devices", i), "allows read/write on every "
                        f"{'device' if entry.get('type') in (None, 'a') else entry['type'] + ' device'}"))
    for i, dev in enumerate(lin.get("devices") or []):
        key = (dev.get("type"), dev.get("major"), dev.get("minor"))
        named = next((what for k, what in SENSITIVE_DEVICES if k == key), None)
        if named:
            out.append(("warning", ptr("linux", "devices", i), f"{dev.get('path')} is the host's {named}"))
        elif dev.get("type") == "b":
            out.append(("warning", ptr("linux", "devices", i), f"{dev.get('path')} is a host block device "
                        f"({dev.get('major')}:{dev.get('minor')}): its filesystem is the host's data"))
    return out


def _last_reset(rules: list[dict]) -> int:
    last = 0
    for i, e in enumerate(rules):
        if not e.get("allow") and e.get("type") in (None, "a") and e.get("major") in (None, -1) \
                and e.get("minor") in (None, -1) and set(e.get("access") or "rwm") == {"r", "w", "m"}:
            last = i
    return last


def process(config: dict) -> list[Finding]:
    proc = config.get("process") or {}
    out: list[Finding] = []
    if not (config.get("root") or {}).get("readonly"):
        out.append(("info", ptr("root", "readonly"), "the root filesystem is writable"))
    if not proc.get("apparmorProfile") and not proc.get("selinuxLabel"):
        out.append(("info", ptr("process"), "no AppArmor profile or SELinux label"))
    hooks = config.get("hooks") or {}
    for kind in ("prestart", "createRuntime", "poststart", "poststop"):
        for i, h in enumerate(hooks.get(kind) or []):
            out.append(("info", ptr("hooks", kind, i), f"{h.get('path')} runs on the host with the runtime's "
                                                       "privileges"))
    return out
