"""`pyrunc plan` (and `create --dry-run`): what `create` would do for a bundle on this host.

Nothing is made: no state directory, cgroup, mount, namespace or process; nothing is written
(the seccomp profile is compiled without its cache). The plan is computed by the code `create`
runs wherever that code can decide without doing (create.check_bundle, the namespace and
capability plans, creation.new_manager and ``Manager.plan``, rootfs/plan.py over
``mounts.classify`` and friends, ``init.STEPS`` for the order), so it cannot drift far from
it; tests/integration/test_plan_differential.py runs `plan` and then `create` on the same
bundles and compares the mounts, cgroup writes and capabilities with what the container got.

The result is one JSON-ready dict (``plan_create``); ``render_text`` writes it for people, as a
walk through the stages and the init's steps in the order they run: the project began as a
tutorial on namespaces, cgroups and union file systems, and this is the command that shows a
learner what a container is made of. Problems `create` would fail on are collected
(``problems``: JSON pointer or step, cause) instead of stopping at the first.
"""

from __future__ import annotations

import os
import stat

from .. import namespaces, rootless
from ..errors import ConfigError, PyruncError
from ..options import CreateOptions
from ..security import capabilities
from ..spec import load_config
from ..state import StateDir, check_id
from .create import check_bundle, pass_notify_socket
from .creation import new_manager, resolve_rootfs

NS_TYPES = ("user", "pid", "network", "ipc", "uts", "mount", "cgroup", "time")
HOOK_PLACES = {
    "prestart": ("parent", "serve_init", "on the host, in the runtime's namespaces, asked by run_runtime_hooks"),
    "createRuntime": ("parent", "serve_init", "on the host, in the runtime's namespaces, asked by "
                                              "run_runtime_hooks"),
    "createContainer": ("init", "run_container_hooks", "in the container's namespaces, before pivot_root"),
    "startContainer": ("init", "run_start_hooks", "in the container, after `start`, before the program"),
    "poststart": ("start", "start", "on the host, by `pyrunc start` once the program runs"),
    "poststop": ("delete", "delete", "on the host, by `pyrunc delete` (and after a failed create)"),
}


class Planner:
    """Collects the plan's sections and the problems found on the way."""

    def __init__(self, bundle: str, cid: str, root: str, opts: CreateOptions):
        self.bundle = bundle
        self.cid = cid
        self.root = root
        self.opts = opts
        self.config: dict = {}
        self.rootfs = ""
        self.doc: dict = {"container": cid, "bundle": bundle, "problems": [], "warnings": [],
                          "steps": []}
        self.notes: dict[str, list[str]] = {}  # step -> what it does here

    def problem(self, where: str, cause: str) -> None:
        self.doc["problems"].append([where, cause])

    def warn(self, text: str) -> None:
        self.doc["warnings"].append(text)

    def note(self, step: str, text: str) -> None:
        self.notes.setdefault(step, []).append(text)

    def attempt(self, where: str, fn, *args):
        """Run one planning part; a PyruncError it raises is a problem create would fail on."""
        try:
            return fn(*args)
        except ConfigError as e:
            for pointer, message in e.problems:
                self.problem(pointer or where, message)
        except PyruncError as e:
            self.problem(where, e.cause)
        except OSError as e:
            self.problem(where, f"{e.filename + ': ' if e.filename else ''}{os.strerror(e.errno or 0)}")
        return None


def plan_create(bundle: str, cid: str, root: str, opts: CreateOptions) -> dict:
    """The plan for creating container ``cid`` from ``bundle`` (see the module docstring).
    Raises ConfigError when config.json cannot be read or validated: nothing else can be planned."""
    check_id(cid)
    p = Planner(os.path.abspath(bundle), cid, root, opts)
    p.config = config = load_config(p.bundle)
    p.doc["ociVersion"] = config.get("ociVersion")
    pass_notify_socket(config)  # as create does: the caller's NOTIFY_SOCKET becomes a mount
    is_rootless = rootless.detect(opts.rootless)
    p.doc["host"] = {"rootless": is_rootless, "kernel": os.uname().release, "euid": os.geteuid()}
    p.rootfs = p.attempt("/root/path", resolve_rootfs, config, p.bundle) or ""
    if p.rootfs:
        p.attempt("validate", check_bundle, config, opts, is_rootless)
    p.doc["rootfs"] = p.rootfs
    ns = namespaces.Plan((config.get("linux") or {}).get("namespaces") or [])
    plan_state(p)
    plan_namespaces(p, ns)
    plan_capabilities(p)
    p.attempt("/linux/seccomp", plan_seccomp, p)
    plan_hooks(p)
    mgr_plan = p.attempt("make_cgroup", plan_cgroup, p, is_rootless)
    plan_process(p, ns)
    view = plan_rootfs(p, ns, mgr_plan or {}) if p.rootfs else None
    if view is not None:
        plan_executable(p, view)
    build_steps(p, ns, mgr_plan)
    return p.doc


def plan_state(p: Planner) -> None:
    sd = StateDir(p.root, p.cid)
    p.doc["state"] = {"dir": sd.path, "exec_fifo": sd.fifo}
    if os.path.lexists(sd.path):
        p.problem("reserve", f"container {p.cid}: container with given ID already exists ({sd.path})")
    p.note("reserve", f"mkdir {sd.path} (the id taken atomically), flock it, mkfifo {sd.fifo}")


def plan_namespaces(p: Planner, ns: namespaces.Plan) -> None:
    """Each type: made new, joined by path, or the host's (inherited from the runtime)."""
    rows = []
    fds = p.attempt("/linux/namespaces", namespaces.open_join_fds, ns) or []  # opened read-only: types checked
    for _, fd in fds:
        os.close(fd)
    for kind in NS_TYPES:
        if kind in ns.join:
            row = {"type": kind, "action": "join", "path": ns.join[kind], "step": "join namespaces"}
        elif ns.creates(kind):
            step = {"user": "create user namespace", "cgroup": "enter_cgroup"}.get(kind, "create namespaces")
            row = {"type": kind, "action": "new", "step": step}
        else:
            row = {"type": kind, "action": "host", "step": None}
        rows.append(row)
    p.doc["namespaces"] = rows
    lin = p.config.get("linux") or {}
    if ns.creates("user"):
        p.doc["id_mappings"] = {"uid": lin.get("uidMappings") or [], "gid": lin.get("gidMappings") or []}
        if p.rootfs:
            check_rootfs_reach(p, lin.get("uidMappings") or [], lin.get("gidMappings") or [])


def check_rootfs_reach(p: Planner, uids: list[dict], gids: list[dict]) -> None:
    """In a user namespace the container's root is the host id its mappings give uid 0, and
    its capabilities reach only inodes whose owner is mapped: every directory down to the
    rootfs must let it through (prepare_rootfs binds the rootfs from inside)."""
    def host(maps: list[dict], cid: int) -> int | None:
        for m in maps:
            if m["containerID"] <= cid < m["containerID"] + m["size"]:
                return m["hostID"] + cid - m["containerID"]
        return None

    def mapped(maps: list[dict], hid: int) -> bool:
        return any(m["hostID"] <= hid < m["hostID"] + m["size"] for m in maps)

    uid, gid = host(uids, 0), host(gids, 0)
    path = "/"
    for part in [""] + [c for c in p.rootfs.split("/") if c]:
        path = os.path.join(path, part)
        try:
            st = os.stat(path)
        except OSError:
            return
        ok = (mapped(uids, st.st_uid) and mapped(gids, st.st_gid)) or st.st_mode & 0o001 \
            or (st.st_uid == uid and st.st_mode & 0o100) or (st.st_gid == gid and st.st_mode & 0o010)
        if not ok:
            p.problem("/linux/uidMappings", f"the container's root (host uid {uid}) cannot reach the rootfs: "
                      f"{path} is {stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid} (create fails "
                      "binding the rootfs: Permission denied)")
            return


def plan_capabilities(p: Planner) -> None:
    """capabilities.plan and restrict, as prepare_init runs them, then what the kernel leaves the
    program after execve (uid 0 gets its bounding and inheritable sets, others their ambient)."""
    process = p.config.get("process") or {}
    caps = capabilities.plan(process.get("capabilities"))
    if caps is None:
        p.doc["capabilities"] = None
        return
    for name in caps.unknown:
        p.warn(f"unknown capability {name!r} skipped")
    for warning in caps.restrict(capabilities.held_bounding()):
        p.warn(warning)
    sets = {which: names(caps.masks[which]) for which in capabilities.SETS}
    keep = 0
    sc = (p.config.get("linux") or {}).get("seccomp")
    if sc is not None and not process.get("noNewPrivileges"):
        keep = 1 << capabilities.CAP_SYS_ADMIN  # init.set_capabilities: the filter load needs it
    installed = dict(sets, permitted=names(caps.masks["permitted"] | keep))
    uid = (process.get("user") or {}).get("uid", 0)
    p.doc["capabilities"] = {"sets": sets, "installed": installed, "unknown": caps.unknown,
                             "kept_until_exec": names(keep & ~caps.masks["permitted"]),
                             "after_exec": after_exec(caps.masks, uid, bool(process.get("noNewPrivileges")))}


def names(mask: int) -> list[str]:
    return [capabilities.name_of(c) for c in capabilities.bits(mask)]


def after_exec(masks: dict[str, int], uid: int, nnp: bool) -> dict[str, list[str]]:
    """The sets execve(2) computes for a program without file capabilities (capabilities(7)):
    for uid 0, permitted = bounding | inheritable (no more than before under no_new_privs), plus
    ambient, and effective = permitted; for any other uid, permitted = effective = ambient."""
    bnd, prm, inh, amb = masks["bounding"], masks["permitted"], masks["inheritable"], masks["ambient"]
    if uid == 0:
        new = bnd | inh
        if nnp and new & ~prm:
            new &= prm
        new |= amb
        eff = new
    else:
        new = eff = amb
    return {"bounding": names(bnd), "effective": names(eff), "permitted": names(new),
            "inheritable": names(inh), "ambient": names(amb)}


def plan_seccomp(p: Planner) -> None:
    """seccomp.normalise (what create validates) and a compile without the on-disk cache."""
    from ..security import seccomp_abi as abi
    from ..security.seccomp import compile_filter, normalise

    sc = (p.config.get("linux") or {}).get("seccomp")
    if sc is None:
        p.doc["seccomp"] = None
        return
    norm = normalise(sc)
    flags = [name for name, bit in abi.FLAGS.items() if norm["flags"] & bit]
    notify = bool(norm["flags"] & abi.SECCOMP_FILTER_FLAG_NEW_LISTENER)
    doc = {"defaultAction": sc.get("defaultAction"), "defaultErrnoRet": sc.get("defaultErrnoRet"),
           "architectures": sc.get("architectures") or [], "rules": len(norm["rules"]),
           "syscalls": sum(len(r[1]) for r in norm["rules"]), "flags": flags, "listener": notify,
           "listenerPath": sc.get("listenerPath"),
           "loaded_by": "load_seccomp" if notify else "exec_process"}
    p.doc["seccomp"] = doc
    flt = compile_filter(sc, cache_dir=None)
    doc["instructions"] = len(flt)
    for warning in flt.warnings:
        p.warn(warning)


def plan_hooks(p: Planner) -> None:
    hooks = p.config.get("hooks") or {}
    out = {}
    for kind, (stage, step, where) in HOOK_PLACES.items():
        entries = hooks.get(kind) or []
        if not entries:
            continue
        out[kind] = [{"path": h.get("path"), "args": h.get("args") or [], "timeout": h.get("timeout"),
                      "stage": stage, "step": step, "where": where} for h in entries]
        for i, h in enumerate(entries):
            path = h.get("path") or ""
            if kind in ("prestart", "createRuntime", "createContainer") and not os.path.exists(path):
                p.problem(f"/hooks/{kind}/{i}/path", f"{kind} hook {path}: no such file on this host")
            elif kind == "poststart" and not os.path.exists(path):
                p.warn(f"poststart hook {path}: no such file on this host (`start` would fail)")
    p.doc["hooks"] = out


def plan_cgroup(p: Planner, is_rootless: bool) -> dict | None:
    """The manager create would build (creation.new_manager), asked what it would do."""
    mgr = new_manager(p.config, p.cid, systemd=p.opts.systemd_cgroup, rootless=is_rootless)
    doc = mgr.plan()
    p.doc["cgroup"] = doc
    return doc


def plan_process(p: Planner, ns: namespaces.Plan) -> None:
    """The process's attributes and the init steps that set them."""
    process = p.config.get("process") or {}
    lin = p.config.get("linux") or {}
    env: dict[str, str] = {}
    for item in process.get("env") or []:
        k, _, v = item.partition("=")
        env[k] = v
    user = process.get("user") or {}
    p.doc["process"] = {"args": process.get("args") or [], "env": env, "cwd": process.get("cwd") or "/",
                        "user": {"uid": user.get("uid", 0), "gid": user.get("gid", 0),
                                 "additionalGids": user.get("additionalGids") or [], "umask": user.get("umask")},
                        "terminal": bool(process.get("terminal")),
                        "noNewPrivileges": bool(process.get("noNewPrivileges")),
                        "oomScoreAdj": process.get("oomScoreAdj"),
                        "apparmorProfile": process.get("apparmorProfile"),
                        "selinuxLabel": process.get("selinuxLabel"),
                        "hostname": p.config.get("hostname"), "domainname": p.config.get("domainname"),
                        "sysctl": lin.get("sysctl") or {}}
    p.doc["rlimits"] = [{"type": r.get("type"), "soft": r.get("soft"), "hard": r.get("hard"),
                         "step": "set_rlimits"} for r in process.get("rlimits") or []]
    for key in lin.get("sysctl") or {}:
        if not os.path.exists("/proc/sys/" + key.replace(".", "/")):
            p.problem(f"/linux/sysctl/{key}", f"write sysctl {key}: No such file or directory "
                                              "(no such sysctl on this kernel) (apply_sysctl)")


def plan_rootfs(p: Planner, ns: namespaces.Plan, mgr_plan: dict):
    """rootfs/plan.py on this container: the mounts, devices and what each rootfs step does."""
    from ..rootfs import plan as rp

    idmapped = set()
    for i, mnt in enumerate(p.config.get("mounts") or []):
        o = mnt.get("options") or []
        if "idmap" in o or "ridmap" in o or mnt.get("uidMappings") or mnt.get("gidMappings"):
            idmapped.add(i)
    in_userns = ns.creates("user") or "user" in ns.join or not rootless.in_initial_userns()
    ctx = rp.Context(rootfs=p.rootfs, bundle=p.bundle, config=p.config, own_mount_ns=ns.has("mount"),
                     userns=in_userns, new_netns=ns.creates("network"), new_ipcns=ns.creates("ipc"),
                     cgroupns=ns.has("cgroup"), idmapped=idmapped, cgroup_paths=mgr_plan.get("paths") or {},
                     no_pivot=p.opts.no_pivot)
    try:
        result = rp.plan_rootfs(ctx)
    except PyruncError as e:
        p.problem("mount_filesystems", e.cause)
        return None
    p.doc["mounts"] = [e.as_dict() for e in result.view.entries]
    p.doc["devices"] = result.devices
    p.doc["creates"] = result.view.creates
    for step, text in result.notes:
        p.note(step, text)
    for where, cause in result.problems:
        p.problem(where, cause)
    return result.view


def plan_executable(p: Planner, view) -> None:
    """init.look_up_executable and prepare_environment, on the planned tree: the program args[0]
    names (through PATH), and HOME from the container's /etc/passwd when the config sets none."""
    from .init import passwd_home

    proc = p.doc["process"]
    env = proc["env"]
    if "HOME" not in env:
        home = None
        host = _host_file(view, "/etc/passwd")
        if host is not None:
            try:
                with open(host, "rb") as f:
                    home = passwd_home(f.read(1 << 20), proc["user"]["uid"])
            except OSError:
                home = None
        env["HOME"] = home or "/"
        p.note("prepare_environment", f"HOME={env['HOME']} (from the container's /etc/passwd, or /)")
    args = proc["args"]
    if not args:
        return
    name = args[0]
    candidates = [name] if "/" in name else [os.path.join(d or ".", name)
                                             for d in env.get("PATH", "").split(":") if env.get("PATH")]
    for path in candidates:
        host = _host_file(view, path if path.startswith("/") else os.path.join(proc["cwd"], path))
        try:
            st = os.stat(host) if host else None
        except OSError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            proc["executable"] = path
            p.note("look_up_executable", f"{name} is {path}")
            return
    where = f'"{name}": ' + ("no such file" if "/" in name else "executable file not found in $PATH")
    p.problem("/process/args/0", f"exec: {where} (look_up_executable)")


def _host_file(view, path: str) -> str | None:
    """The host file the container will see at ``path`` (None: not there, or on a fresh fs)."""
    try:
        rel = view.resolve(path)
    except OSError:
        return None
    return view.host_path(rel)


# -- the steps, in order ----------------------------------------------------------------------

def build_steps(p: Planner, ns: namespaces.Plan, mgr_plan: dict | None) -> None:
    """Every step of create in the order it runs, with what it does for this bundle."""
    from .init import STEPS

    parent_steps(p, ns, mgr_plan)
    stage1_steps(p, ns, mgr_plan)
    place_steps(p, mgr_plan)
    init_notes(p, ns)
    for fn in STEPS:
        add_step(p, "init", fn.__name__, doc=fn.__doc__)
    serve_steps(p)


def add_step(p: Planner, stage: str, step: str, *, doc: str | None = None) -> None:
    does = p.notes.pop(step, [])
    why = " ".join((doc or "").strip().split("\n\n")[0].split())
    p.doc["steps"].append({"stage": stage, "step": step, "does": does, "why": why})


def parent_steps(p: Planner, ns: namespaces.Plan, mgr_plan: dict | None) -> None:
    p.note("validate", f"config.json: schema and semantic checks ({p.doc.get('ociVersion')}); "
                       f"rootfs {p.rootfs or '?'}")
    add_step(p, "parent", "validate")
    joins = [r for r in p.doc["namespaces"] if r["action"] == "join"]
    if joins:
        p.note("prepare_init", "open " + ", ".join(f"{r['type']} {r['path']}" for r in joins))
    if p.doc.get("capabilities"):
        p.note("prepare_init", "capability sets checked against the runtime's bounding set")
    if p.doc.get("seccomp"):
        p.note("prepare_init", f"compile the seccomp profile to BPF ({p.doc['seccomp'].get('instructions')} "
                               "instructions; cached by profile hash)")
    add_step(p, "parent", "prepare_init")
    add_step(p, "parent", "reserve")
    if not ns.has("mount"):
        p.note("attach_inherited_rootfs", f"bind {p.rootfs} onto itself, private (no mount namespace)")
        add_step(p, "parent", "attach_inherited_rootfs")
    if mgr_plan:
        p.note("make_cgroup", f"driver {mgr_plan.get('driver')}: " + (
            f"mkdir {len(mgr_plan.get('mkdir') or [])} directories" if mgr_plan.get("mkdir")
            else "no directory to make"))
        for f, value, step in mgr_plan.get("writes") or []:
            if step != "set cgroup resources":
                p.note("make_cgroup", f"write {value!r} to {f}")
        if mgr_plan.get("unit"):
            p.note("make_cgroup", f"systemd unit {mgr_plan['unit']} in {mgr_plan.get('slice')} (started with "
                                  "the init, place_init), with these properties:")
            for name, value in mgr_plan.get("properties") or []:
                p.note("make_cgroup", f"  {name}={value}")
    add_step(p, "parent", "make_cgroup")
    p.note("save_record", "the state record, marked creating (delete --force finds everything from here)")
    add_step(p, "parent", "save_record")


def stage1_steps(p: Planner, ns: namespaces.Plan, mgr_plan: dict | None) -> None:
    placement = (mgr_plan or {}).get("placement") or {}
    if placement.get("how") == "born":
        if placement.get("clone_into"):
            p.note("fork stage 1", f"clone3(CLONE_INTO_CGROUP) into {placement['clone_into']}")
        for tasks in placement.get("tasks") or []:
            p.note("join cgroups", f'write "0" to {tasks}')
    add_step(p, "parent", "fork stage 1")
    add_step(p, "stage 1", "join cgroups")
    joins = [r for r in p.doc["namespaces"] if r["action"] == "join"]
    for r in joins:
        p.note("join namespaces", f"setns {r['type']} {r['path']}")
    add_step(p, "stage 1", "join namespaces")
    if ns.creates("user"):
        maps = p.doc.get("id_mappings") or {}
        p.note("create user namespace", "unshare(CLONE_NEWUSER); the parent writes uid_map "
               f"{maps.get('uid')} and gid_map {maps.get('gid')}; setresuid/setresgid 0")
        add_step(p, "stage 1", "create user namespace")
    new = [r["type"] for r in p.doc["namespaces"] if r["action"] == "new" and r["type"] not in ("user", "cgroup")]
    if new:
        p.note("create namespaces", "unshare " + ", ".join(new) + " (cgroup later, in enter_cgroup)")
    add_step(p, "stage 1", "create namespaces")
    offsets = (p.config.get("linux") or {}).get("timeOffsets") or {}
    if ns.creates("time") and offsets:
        p.note("set time offsets", f"write {offsets} to /proc/self/timens_offsets")
        add_step(p, "stage 1", "set time offsets")
    p.note("fork init", "fork the init: PID 1 of the new pid namespace" if ns.creates("pid")
           else "fork the init (the caller's pid namespace)")
    add_step(p, "stage 1", "fork init")


def place_steps(p: Planner, mgr_plan: dict | None) -> None:
    placement = (mgr_plan or {}).get("placement") or {}
    if placement.get("how") == "moved":
        p.note("place_init", "write the init's pid to " + ", ".join(placement.get("procs") or []))
    elif placement.get("how") == "unit":
        p.note("place_init", f"StartTransientUnit {placement.get('unit')} with PIDs=[init]")
    writes = [w for w in (mgr_plan or {}).get("writes") or [] if w[2] == "set cgroup resources"]
    for f, value, _ in writes:
        p.note("place_init", f"write {value!r} to {f}")
    if (mgr_plan or {}).get("device_program"):
        prog = mgr_plan["device_program"]
        p.note("place_init", f"attach a device eBPF program to {prog['attach']} (default {prog['default']}, "
                             f"{len(prog['rules'])} rules)")
    if (p.config.get("linux") or {}).get("netDevices"):
        p.note("place_init", "move " + ", ".join(p.config["linux"]["netDevices"]) + " into the network namespace")
    p.note("place_init", 'send "cgroup_joined": the init may go past enter_cgroup')
    add_step(p, "parent, meanwhile", "place_init")


def serve_steps(p: Planner) -> None:
    hooks = p.doc.get("hooks") or {}
    for kind in ("prestart", "createRuntime"):
        for h in hooks.get(kind) or []:
            p.note("serve_init", f"run {kind} hook {h['path']}")
    if (p.doc.get("seccomp") or {}).get("listener"):
        p.note("serve_init", f"pass the seccomp listener to {p.doc['seccomp'].get('listenerPath')}")
    if p.doc["process"]["terminal"]:
        p.note("serve_init", "pass the pty master to the console socket")
    p.note("serve_init", "on ready: save the record (created) and the pid file; exit")
    add_step(p, "parent, meanwhile", "serve_init")
    for h in hooks.get("poststart") or []:
        p.note("start", f"after the program runs: poststart hook {h['path']}")
    if hooks.get("poststart"):
        add_step(p, "start", "start")


def init_notes(p: Planner, ns: namespaces.Plan) -> None:
    """What the init's steps other than the rootfs ones do for this config."""
    proc = p.doc["process"]
    process = p.config.get("process") or {}
    lin = p.config.get("linux") or {}
    p.note("start_session", "setsid: a session of its own, no controlling terminal of the caller's")
    if ns.creates("network"):
        p.note("bring_up_loopback", "bring lo up in the new network namespace")
    hooks = p.doc.get("hooks") or {}
    if hooks.get("prestart") or hooks.get("createRuntime"):
        p.note("run_runtime_hooks", "ask the parent to run the prestart and createRuntime hooks")
    for h in hooks.get("createContainer") or []:
        p.note("run_container_hooks", f"run {h['path']}")
    for h in hooks.get("startContainer") or []:
        p.note("run_start_hooks", f"run {h['path']}")
    if proc["hostname"] is not None:
        p.note("set_hostname", f"sethostname {proc['hostname']!r}")
    if proc["domainname"] is not None:
        p.note("set_hostname", f"setdomainname {proc['domainname']!r}")
    for key, value in proc["sysctl"].items():
        p.note("apply_sysctl", f"write {value!r} to /proc/sys/{key.replace('.', '/')}")
    for r in p.doc["rlimits"]:
        p.note("set_rlimits", f"setrlimit {r['type']} {r['soft']}:{r['hard']}")
    if proc["oomScoreAdj"] is not None:
        p.note("set_oom_score_adj", f"write {proc['oomScoreAdj']} to /proc/self/oom_score_adj")
    for key in ("scheduler", "ioPriority"):
        if process.get(key):
            p.note("set_scheduling", f"{key} {process[key]}")
    if lin.get("memoryPolicy"):
        p.note("set_scheduling", f"memoryPolicy {lin['memoryPolicy']}")
    if not p.opts.no_new_keyring:
        p.note("join_session_keyring", f"a new session keyring named {p.cid}")
    p.note("change_directory", f"chdir {proc['cwd']}")
    init_security_notes(p)


def init_security_notes(p: Planner) -> None:
    proc = p.doc["process"]
    process = p.config.get("process") or {}
    lin = p.config.get("linux") or {}
    sc = p.doc.get("seccomp")
    if sc and sc.get("listener"):
        p.note("load_seccomp", "load the notify filter now and send its listener to the parent")
    caps = p.doc.get("capabilities")
    if caps:
        p.note("drop_bounding_set", f"keep {len(caps['sets']['bounding'])} capabilities in the bounding set")
    user = proc["user"]
    p.note("switch_user", f"setgroups {user['additionalGids']}, setresgid {user['gid']}, setresuid {user['uid']}"
                          + (f", umask {user['umask']:o}" if user["umask"] is not None else ", umask 022"))
    if caps:
        kept = caps.get("kept_until_exec") or []
        p.note("set_capabilities", "capset effective/permitted/inheritable, raise ambient"
                                   + (f" ({', '.join(kept)} kept permitted until the filter is loaded)"
                                      if kept else ""))
    if proc["noNewPrivileges"]:
        p.note("set_no_new_privileges", "prctl(PR_SET_NO_NEW_PRIVS)")
    if proc["apparmorProfile"] or proc["selinuxLabel"]:
        p.note("apply_lsm_labels", f"exec label {proc['apparmorProfile'] or proc['selinuxLabel']}")
    if lin.get("personality"):
        p.note("set_personality", f"personality {lin['personality']}")
    final = (process.get("execCPUAffinity") or {}).get("final")
    if final:
        p.note("set_final_cpu_affinity", f"sched_setaffinity {final}")
    if os.geteuid() != 0:
        p.note("let_owner_join", "dumpable again, so the unprivileged owner can `exec` before `start`")
    p.note("report_ready", 'send "ready" to the parent')
    p.note("wait_for_start", "block on the exec fifo until `pyrunc start`")
    env = " ".join(f"{k}={v}" for k, v in proc["env"].items())
    p.note("exec_process", "reset signals, close fds 3.., " + (f"load the seccomp filter ({sc['defaultAction']}, "
                           f"{sc['rules']} rules), " if sc and not sc.get("listener") else "")
           + f"execve {proc.get('executable') or (proc['args'] or ['?'])[0]} {proc['args'][1:]} with {env}")


# -- for people ---------------------------------------------------------------------------------

def render_text(doc: dict) -> str:
    """The plan as a walk through create, stage by stage and step by step (see the module doc)."""
    out = [f"pyrunc plan: container {doc['container']} from bundle {doc['bundle']}"]
    host = doc.get("host") or {}
    cg = doc.get("cgroup") or {}
    out.append(f"on this host: kernel {host.get('kernel')}, {'rootless' if host.get('rootless') else 'root'}, "
               f"cgroup driver {cg.get('driver', '-')}; rootfs {doc.get('rootfs') or '?'}")
    out += _render_summary(doc)
    stage = None
    for s in doc["steps"]:
        if s["stage"] != stage:
            stage = s["stage"]
            out.append("")
            out.append({"parent": "pyrunc create (the parent, on the host):", "stage 1": "stage 1 (forked):",
                        "parent, meanwhile": "pyrunc create, while the init works:",
                        "init": "the init (PID 1 of the container), its steps in order:",
                        "start": "pyrunc start:"}.get(stage, stage + ":"))
        if not s["does"]:
            out.append(f"  {s['step']:<24} -")
            continue
        out.append(f"  {s['step']:<24} {s['does'][0]}")
        out += [f"  {'':<24} {line}" for line in s["does"][1:]]
    out += _render_mounts(doc)
    if doc["warnings"]:
        out += ["", "warnings:"] + [f"  {w}" for w in doc["warnings"]]
    if doc["problems"]:
        out += ["", "problems (create would fail):"] + [f"  {w}: {c}" for w, c in doc["problems"]]
    return "\n".join(out) + "\n"


def _render_summary(doc: dict) -> list[str]:
    out = [""]
    nss = doc.get("namespaces") or []
    new = [r["type"] for r in nss if r["action"] == "new"]
    joined = [f"{r['type']} ({r['path']})" for r in nss if r["action"] == "join"]
    host = [r["type"] for r in nss if r["action"] == "host"]
    out.append("namespaces: new " + (", ".join(new) or "none") + "; joined " + (", ".join(joined) or "none")
               + "; the host's " + (", ".join(host) or "none"))
    caps = doc.get("capabilities")
    if caps:
        for which in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            got = caps["sets"][which]
            out.append(f"capabilities {which + ':':<12} " + (" ".join(c.removeprefix("CAP_") for c in got) or "-"))
    else:
        out.append("capabilities: unchanged (process.capabilities not set)")
    sc = doc.get("seccomp")
    if sc:
        out.append(f"seccomp: default {sc['defaultAction']}, {sc['rules']} rules over {sc['syscalls']} syscalls, "
                   f"flags {','.join(sc['flags']) or '-'}, listener {'yes' if sc['listener'] else 'no'}")
    else:
        out.append("seccomp: none")
    for r in doc.get("rlimits") or []:
        out.append(f"rlimit {r['type']}: {r['soft']}:{r['hard']}")
    for kind, hooks in (doc.get("hooks") or {}).items():
        for h in hooks:
            out.append(f"hook {kind}: {' '.join([h['path']] + h['args'][1:])} ({h['where']}; {h['step']})")
    return out


def _render_mounts(doc: dict) -> list[str]:
    mounts = doc.get("mounts") or []
    if not mounts:
        return []
    out = ["", "the container's mount table (as /proc/PID/mountinfo will list it):"]
    for i, e in enumerate(mounts):
        prop = e["propagation"] if e["propagation"] != "private" else ""
        source = e["source"] if len(e["source"]) <= 24 else "..." + e["source"][-21:]
        out.append(f"  {i:>3} {e['point']:<24} {e['type']:<7} {source:<24} {e['flags']:<32} {prop:<6} "
                   f"{e['step']}: {e['origin']}")
    devices = doc.get("devices") or []
    if devices:
        out += ["", "devices:"]
        out += [f"  {d['path']:<20} {d['type']} {d['major']}:{d['minor']} {d['fileMode']} "
                f"{d['uid']}:{d['gid']}  {d['how']}" for d in devices]
    return out
