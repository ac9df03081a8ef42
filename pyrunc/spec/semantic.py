"""Checks on config.json that a JSON schema cannot express.

The runtime spec demands an error, before anything is created, for values that
cannot be applied: duplicate namespaces or rlimits, relative paths where the
spec says absolute, id mappings the kernel would refuse, sysctls that would
change the host. Catching them here gives the user one precise line instead of
a failure half-way through container setup.

``semantic_problems`` expects a config that already passed the schema (types
are trusted), and returns (RFC 6901 pointer, message) pairs like the validator.
Only ``root.path`` is looked up on disk; everything else is pure.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    Problem = tuple[str, str]

UINT32_LIMIT = 1 << 32
# setresuid/setresgid read (uid_t)-1 as "leave unchanged": the process would silently stay root.
UNCHANGED_ID = UINT32_LIMIT - 1
LINUX_RLIMITS = frozenset({
    "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
    "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
})
NAMESPACE_TYPES = frozenset({"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"})
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
DEVICE_TYPES = frozenset({"c", "b", "u", "p"})
ERRNO_ACTIONS = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})
IPC_SYSCTLS = frozenset({"kernel.sem"})
IPC_SYSCTL_PREFIXES = ("kernel.msg", "kernel.shm", "fs.mqueue.")
# cgroup core files a config must never write: they move processes or reshape the tree.
UNIFIED_ALLOWED_CORE = frozenset({"cgroup.max.depth", "cgroup.max.descendants"})
IFNAME_MAX = 15


def _escape(key: str | int) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def ptr(*keys: str | int) -> str:
    """RFC 6901 pointer for a path given as separate keys."""
    return "".join("/" + _escape(k) for k in keys)


def _bad_text(text: str) -> bool:
    """True for text the kernel cannot take: a NUL byte, or an unpaired surrogate
    (JSON allows "\\ud800"; encoding it for execve or a path would raise later)."""
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# -- top level ---------------------------------------------------------------------

def check_version(config: dict) -> list[Problem]:
    """Only major version 1 is understood; a 2.x config may mean something else entirely."""
    version = config.get("ociVersion", "")
    major = version.split(".", 1)[0]
    if major != "1":
        return [(ptr("ociVersion"), f"unsupported ociVersion {version!r}: pyrunc implements "
                 "runtime-spec 1.x (major version 1)")]
    return []


def check_root(config: dict, bundle: str) -> list[Problem]:
    """root.path is required on Linux and must name a directory (relative = inside the bundle)."""
    root = config.get("root")
    if root is None:
        return [("", "'root' is required on Linux")]
    path = root["path"]
    if not path or _bad_text(path):
        return [(ptr("root", "path"), "root.path must be a non-empty path without NUL bytes or unpaired surrogates")]
    full = path if path.startswith("/") else os.path.join(bundle, path)
    try:
        st = os.stat(full)
    except OSError as err:
        return [(ptr("root", "path"), f"root.path {full!r}: {os.strerror(err.errno or 0)}")]
    if (st.st_mode & 0o170000) != 0o040000:
        return [(ptr("root", "path"), f"root.path {full!r} is not a directory")]
    return []


def check_names(config: dict) -> list[Problem]:
    """hostname/domainname need a private UTS namespace, or they would rename the host."""
    problems = []
    types = _namespace_types(config)
    for field in ("hostname", "domainname"):
        value = config.get(field)
        if value is None:
            continue
        if _bad_text(value):
            problems.append((ptr(field), f"{field} must not contain NUL bytes or unpaired surrogates"))
        if value and "uts" not in types:
            problems.append((ptr(field), f"setting {field} requires a UTS namespace in linux.namespaces"))
    return problems


# -- process -------------------------------------------------------------------------

def check_process(config: dict) -> list[Problem]:
    """The container process: args, cwd, env, rlimits, user ids, oomScoreAdj."""
    process = config.get("process")
    if process is None:
        return []
    problems = _check_args(process)
    cwd = process["cwd"]
    if not cwd.startswith("/"):
        problems.append((ptr("process", "cwd"), f"cwd {cwd!r} must be an absolute path"))
    elif _bad_text(cwd):
        problems.append((ptr("process", "cwd"), "cwd must not contain NUL bytes or unpaired surrogates"))
    problems += _check_env(process.get("env", []), ("process", "env"))
    problems += _check_rlimits(process.get("rlimits", []))
    problems += _check_user(process.get("user"))
    score = process.get("oomScoreAdj")
    if score is not None and not -1000 <= score <= 1000:
        problems.append((ptr("process", "oomScoreAdj"),
                         f"oomScoreAdj {score} is outside the range -1000..1000"))
    return problems


def _check_args(process: dict) -> list[Problem]:
    args = process.get("args")
    if not args:
        where = ptr("process", "args") if args is not None else ptr("process")
        return [(where, "process.args must contain at least one entry (the program to run)")]
    return [(ptr("process", "args", i), "argument must not contain NUL bytes or unpaired surrogates")
            for i, arg in enumerate(args) if _bad_text(arg)]


def _check_env(env: list[str], where: tuple) -> list[Problem]:
    """Each entry is NAME=value with a non-empty NAME; NUL would truncate it in execve."""
    problems = []
    for i, entry in enumerate(env):
        if _bad_text(entry):
            problems.append((ptr(*where, i), "environment entry must not contain NUL bytes or unpaired surrogates"))
        elif "=" not in entry:
            problems.append((ptr(*where, i), f"environment entry {entry!r} has no '=' (expected NAME=value)"))
        elif entry.startswith("="):
            problems.append((ptr(*where, i), f"environment entry {entry!r} has an empty name"))
    return problems


def _check_rlimits(rlimits: list[dict]) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for i, limit in enumerate(rlimits):
        kind = limit["type"]
        if kind not in LINUX_RLIMITS:
            problems.append((ptr("process", "rlimits", i, "type"), f"unknown rlimit type {kind!r}"))
        if kind in seen:
            problems.append((ptr("process", "rlimits", i, "type"), f"duplicate rlimit type {kind!r}"))
        seen.add(kind)
        if limit["soft"] > limit["hard"]:
            problems.append((ptr("process", "rlimits", i),
                             f"{kind} soft limit {limit['soft']} is greater than hard limit {limit['hard']}"))
    return problems


def _check_user(user: dict | None) -> list[Problem]:
    if user is None:
        return []
    problems = []
    for field in ("uid", "gid"):
        if user.get(field, 0) == UNCHANGED_ID:
            problems.append((ptr("process", "user", field),
                             f"{field} {UNCHANGED_ID} means 'unchanged' to the kernel and is not allowed"))
    for i, gid in enumerate(user.get("additionalGids", [])):
        if gid == UNCHANGED_ID:
            problems.append((ptr("process", "user", "additionalGids", i),
                             f"gid {UNCHANGED_ID} means 'unchanged' to the kernel and is not allowed"))
    return problems


# -- namespaces and id mappings ---------------------------------------------------------

def _namespaces(config: dict) -> list[dict]:
    return config.get("linux", {}).get("namespaces", [])


def _namespace_types(config: dict) -> set[str]:
    return {ns["type"] for ns in _namespaces(config)}


def _joined(ns: dict) -> bool:
    """An empty path means "create a new namespace", as in runc."""
    return bool(ns.get("path"))


def check_namespaces(config: dict) -> list[Problem]:
    """Types known and unique; a path (join an existing namespace) must be absolute."""
    problems = []
    seen: set[str] = set()
    for i, ns in enumerate(_namespaces(config)):
        kind = ns["type"]
        if kind not in NAMESPACE_TYPES:
            problems.append((ptr("linux", "namespaces", i, "type"), f"unknown namespace type {kind!r}"))
        if kind in seen:
            problems.append((ptr("linux", "namespaces", i, "type"), f"duplicate namespace type {kind!r}"))
        seen.add(kind)
        path = ns.get("path", "")
        if path and (not path.startswith("/") or _bad_text(path)):
            problems.append((ptr("linux", "namespaces", i, "path"),
                             f"namespace path {path!r} must be an absolute path"))
    return problems


def check_user_namespace(config: dict) -> list[Problem]:
    """Mappings need a user namespace, and a new user namespace needs both mappings."""
    linux = config.get("linux", {})
    uid_maps, gid_maps = linux.get("uidMappings"), linux.get("gidMappings")
    user_ns = [(i, ns) for i, ns in enumerate(_namespaces(config)) if ns["type"] == "user"]
    problems = []
    if not user_ns:
        for field, maps in (("uidMappings", uid_maps), ("gidMappings", gid_maps)):
            if maps:
                problems.append((ptr("linux", field), f"{field} require a user namespace in linux.namespaces"))
    else:
        index, ns = user_ns[0]
        if not _joined(ns):
            for field, maps in (("uidMappings", uid_maps), ("gidMappings", gid_maps)):
                if not maps:
                    problems.append((ptr("linux", "namespaces", index),
                                     f"a new user namespace needs linux.{field}"))
    for field, maps in (("uidMappings", uid_maps), ("gidMappings", gid_maps)):
        problems += check_mappings(maps or [], ("linux", field))
    return problems


def check_mappings(maps: list[dict], where: tuple) -> list[Problem]:
    """What the kernel's uid_map/gid_map writer accepts: size > 0, in range, no overlaps."""
    problems = []
    for i, entry in enumerate(maps):
        size = entry["size"]
        if size == 0:
            problems.append((ptr(*where, i, "size"), "mapping size must be greater than 0"))
            continue
        for field in ("containerID", "hostID"):
            if entry[field] + size > UINT32_LIMIT:
                problems.append((ptr(*where, i),
                                 f"{field} {entry[field]} + size {size} overflows the 32-bit id range"))
    for field in ("containerID", "hostID"):
        problems += _overlaps(maps, field, where)
    return problems


def _overlaps(maps: list[dict], field: str, where: tuple) -> list[Problem]:
    ranges = sorted((m[field], m[field] + m["size"], i) for i, m in enumerate(maps) if m["size"] > 0)
    problems = []
    for (_, end, _prev), (start, _, index) in zip(ranges, ranges[1:], strict=False):
        if start < end:
            problems.append((ptr(*where, index), f"{field} range overlaps another mapping"))
    return problems


# -- mounts, hooks, devices ------------------------------------------------------------

def _escapes_root(path: str) -> bool:
    """True when '..' components climb above '/' (a relative path counts from '/')."""
    depth = 0
    for part in path.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part and part != ".":
            depth += 1
    return False


def _normalize(path: str) -> str:
    """Absolute, lexically cleaned form ('//x' is kept by POSIX normpath, so strip first)."""
    return os.path.normpath("/" + path.lstrip("/"))


def check_mounts(config: dict) -> list[Problem]:
    """Destinations (relative ones are deprecated but accepted, as in runc), binds, idmaps."""
    problems = []
    types = _namespace_types(config)
    for i, mount in enumerate(config.get("mounts", [])):
        problems += _check_destination(mount["destination"], i)
        source = mount.get("source")
        if source is not None and _bad_text(source):
            problems.append((ptr("mounts", i, "source"), "mount source must not contain NUL bytes or unpaired surrogates"))
        options = mount.get("options", [])
        if ("bind" in options or "rbind" in options) and not source:
            problems.append((ptr("mounts", i), "a bind mount needs a source"))
        for field in ("uidMappings", "gidMappings"):
            problems += check_mappings(mount.get(field, []), ("mounts", i, field))
        idmapped = "idmap" in options or "ridmap" in options
        if idmapped and "uidMappings" not in mount and "user" not in types:
            problems.append((ptr("mounts", i),
                             "an idmap mount needs uidMappings/gidMappings or a user namespace"))
    return problems


def _check_destination(dest: str, index: int) -> list[Problem]:
    where = ptr("mounts", index, "destination")
    if not dest:
        return [(where, "mount destination must not be empty")]
    if _bad_text(dest):
        return [(where, "mount destination must not contain NUL bytes or unpaired surrogates")]
    if _escapes_root(dest):
        return [(where, f"mount destination {dest!r} escapes the container root with '..'")]
    if _normalize(dest) == "/":
        return [(where, f"mount destination {dest!r} is on top of the rootfs; use root.path instead")]
    return []


def check_hooks(config: dict) -> list[Problem]:
    """Hook paths resolve in the runtime namespace, so they must be absolute (a timeout below 1 the
    schema refuses, as upstream's)."""
    problems = []
    hooks = config.get("hooks", {})
    for kind in HOOK_KINDS:
        for i, hook in enumerate(hooks.get(kind, [])):
            path = hook["path"]
            if not path.startswith("/") or _bad_text(path):
                problems.append((ptr("hooks", kind, i, "path"), f"hook path {path!r} must be an absolute path"))
            problems += [(ptr("hooks", kind, i, "args", j), "argument must not contain NUL bytes or unpaired surrogates")
                         for j, arg in enumerate(hook.get("args", [])) if _bad_text(arg)]
            problems += _check_env(hook.get("env", []), ("hooks", kind, i, "env"))
    return problems


def check_devices(config: dict) -> list[Problem]:
    """Device nodes: absolute paths inside the container, a known type, sane numbers and no
    setuid/setgid bits."""
    problems = []
    for i, dev in enumerate(config.get("linux", {}).get("devices", [])):
        path = dev["path"]
        if _bad_text(path) or not path.startswith("/") or ".." in path.split("/") \
                or _normalize(path) in ("/", "/dev"):
            problems.append((ptr("linux", "devices", i, "path"),
                             f"device path {path!r} must be an absolute path inside the container"))
        if dev["type"] not in DEVICE_TYPES:
            problems.append((ptr("linux", "devices", i, "type"), f"unknown device type {dev['type']!r}"))
        for field in ("major", "minor"):
            if dev.get(field, 0) < 0:
                problems.append((ptr("linux", "devices", i, field), f"device {field} must not be negative"))
        mode = dev.get("fileMode", 0)
        if mode & ~0o7777:
            problems.append((ptr("linux", "devices", i, "fileMode"),
                             f"fileMode {mode} has bits outside the permission bits (07777)"))
        elif mode & 0o6000:
            problems.append((ptr("linux", "devices", i, "fileMode"),
                             f"fileMode {mode} (0{mode:o}) sets setuid/setgid, which is not allowed"))
    return problems


# -- linux odds and ends -------------------------------------------------------------------

def check_sysctl(config: dict) -> list[Problem]:
    """Only sysctls that live in a namespace the container owns may be set."""
    sysctl = config.get("linux", {}).get("sysctl", {})
    if not sysctl:
        return []
    types = _namespace_types(config)
    problems = []
    for key in sysctl:
        reason = _sysctl_refusal(key, types)
        if reason:
            problems.append((ptr("linux", "sysctl", key), f"sysctl {key!r} {reason}"))
    return problems


def _sysctl_refusal(key: str, types: set[str]) -> str | None:
    """Why ``key`` may not be set, or None. '/' is the alternative separator of sysctl(8)."""
    parts = key.replace("/", ".").split(".")
    if _bad_text(key) or any(part in ("", "..") for part in parts):
        return "is not a valid sysctl name"
    name = ".".join(parts)
    if name in IPC_SYSCTLS or name.startswith(IPC_SYSCTL_PREFIXES):
        return None if "ipc" in types else "needs an IPC namespace"
    if name.startswith("net."):
        return None if "network" in types else "needs a network namespace"
    if name in ("kernel.hostname", "kernel.domainname"):
        # runc's rule: the OCI `hostname` field is the one way to set the hostname, so the
        # sysctl is refused even when the field is absent; the domain name has no such
        # conflict (Docker sets it through this sysctl) and the sysctl, written after the
        # `domainname` field, is what the container ends up with.
        if "uts" not in types:
            return "needs a UTS namespace"
        return "conflicts with the OCI hostname field" if name == "kernel.hostname" else None
    if name.startswith("user."):
        return None if "user" in types else "needs a user namespace"
    return "is not namespaced: setting it would change the host"


def check_cgroups(config: dict) -> list[Problem]:
    """cgroupsPath stays inside the hierarchy; unified keys name controller files only."""
    linux = config.get("linux", {})
    problems = []
    path = linux.get("cgroupsPath")
    if path is not None and _bad_text(path):
        problems.append((ptr("linux", "cgroupsPath"),
                         f"cgroupsPath {path!r} must not contain NUL bytes or unpaired surrogates"))
    elif path is not None and ".." in path.split("/"):
        problems.append((ptr("linux", "cgroupsPath"), f"cgroupsPath {path!r} must not contain '..' components"))
    resources = linux.get("resources", {})
    for key in resources.get("unified", {}):
        reason = _unified_refusal(key)
        if reason:
            problems.append((ptr("linux", "resources", "unified", key), f"unified key {key!r} {reason}"))
    cpu = resources.get("cpu", {})
    quota, burst = cpu.get("quota"), cpu.get("burst")
    if quota is not None and burst is not None and quota > 0 and burst > quota:
        problems.append((ptr("linux", "resources", "cpu", "burst"),
                         f"cpu burst {burst} is larger than quota {quota}"))
    return problems


def _unified_refusal(key: str) -> str | None:
    if not key or "/" in key or _bad_text(key) or key in (".", ".."):
        return "must be a plain cgroup file name"
    if "." not in key:
        return "must be a controller file name like 'memory.max'"
    if key.startswith("cgroup.") and key not in UNIFIED_ALLOWED_CORE:
        return "names a cgroup core file that a container config must not write"
    return None


def check_paths(config: dict) -> list[Problem]:
    """maskedPaths and readonlyPaths are absolute paths in the container."""
    problems = []
    linux = config.get("linux", {})
    for field in ("maskedPaths", "readonlyPaths"):
        for i, path in enumerate(linux.get(field, [])):
            if not path.startswith("/") or _bad_text(path):
                problems.append((ptr("linux", field, i), f"{path!r} must be an absolute path"))
    return problems


def check_seccomp(config: dict) -> list[Problem]:
    """errno values only with errno-returning actions; listener settings coherent."""
    seccomp = config.get("linux", {}).get("seccomp")
    if seccomp is None:
        return []
    problems = []
    base = ("linux", "seccomp")
    if "defaultErrnoRet" in seccomp and seccomp["defaultAction"] not in ERRNO_ACTIONS:
        problems.append((ptr(*base, "defaultErrnoRet"),
                         f"defaultErrnoRet is not allowed with defaultAction {seccomp['defaultAction']}"))
    actions = {seccomp["defaultAction"]}
    for i, rule in enumerate(seccomp.get("syscalls", [])):
        actions.add(rule["action"])
        if "errnoRet" in rule and rule["action"] not in ERRNO_ACTIONS:
            problems.append((ptr(*base, "syscalls", i, "errnoRet"),
                             f"errnoRet is not allowed with action {rule['action']}"))
        for j, arg in enumerate(rule.get("args", [])):
            if arg["index"] > 5:
                problems.append((ptr(*base, "syscalls", i, "args", j, "index"),
                                 f"syscall argument index {arg['index']} is outside 0..5"))
    listener = seccomp.get("listenerPath")
    if listener is not None and not listener.startswith("/"):
        problems.append((ptr(*base, "listenerPath"), f"listenerPath {listener!r} must be an absolute path"))
    if "listenerMetadata" in seccomp and not listener:
        problems.append((ptr(*base, "listenerMetadata"), "listenerMetadata requires listenerPath"))
    if "SCMP_ACT_NOTIFY" in actions and not listener:
        problems.append((ptr(*base), "SCMP_ACT_NOTIFY requires listenerPath"))
    return problems


def check_linux_extras(config: dict) -> list[Problem]:
    """timeOffsets need a new time namespace; netDevices need a network namespace and sane names."""
    linux = config.get("linux", {})
    types = _namespace_types(config)
    problems = []
    for clock in linux.get("timeOffsets") or {}:
        if clock not in ("boottime", "monotonic"):
            problems.append((ptr("linux", "timeOffsets", clock),
                             f"unknown clock {clock!r}: a time namespace offsets only boottime and monotonic"))
    if linux.get("timeOffsets"):
        new_time = any(ns["type"] == "time" and not _joined(ns) for ns in _namespaces(config))
        if not new_time:
            problems.append((ptr("linux", "timeOffsets"), "timeOffsets require a new time namespace"))
    devices = linux.get("netDevices", {})
    if devices and "network" not in types:
        problems.append((ptr("linux", "netDevices"), "netDevices require a network namespace"))
    for host_name, device in devices.items():
        for name, where in ((host_name, ptr("linux", "netDevices", host_name)),
                            (device.get("name"), ptr("linux", "netDevices", host_name, "name"))):
            if name is not None and not _valid_ifname(name):
                problems.append((where, f"{name!r} is not a valid network interface name"))
    return problems


def _valid_ifname(name: str) -> bool:
    """The kernel's dev_valid_name(): 1-15 bytes, not . or .., no '/', ':' or whitespace."""
    if not name or len(name.encode()) > IFNAME_MAX or name in (".", ".."):
        return False
    return not any(c in "/:" or c.isspace() or c == "\x00" for c in name)


_CHECKS = (check_version, check_process, check_names, check_namespaces, check_user_namespace,
           check_mounts, check_hooks, check_devices, check_sysctl, check_cgroups, check_paths,
           check_seccomp, check_linux_extras)


def semantic_problems(config: dict, bundle: str) -> list[Problem]:
    """Every semantic problem of a schema-valid config, in document order of the checks."""
    problems = check_root(config, bundle)
    for check in _CHECKS:
        problems += check(config)
    return problems
