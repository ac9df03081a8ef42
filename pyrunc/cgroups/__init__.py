"""Container cgroups: detect v1 / v2 / hybrid and build the matching ``Manager``.

``create_manager`` is used once per container (at create time); its
``save()`` output goes into the state file and ``load_manager`` rebuilds the
manager from it without looking at the system again, so later commands
(kill, delete, state, pause) stay cheap and use the same paths even if the
caller passes fewer flags than it did to ``create``.

Placement follows runc 1.1's cgroupfs driver:

* no ``cgroupsPath``: the relative path ``<id>``;
* absolute path: below each hierarchy's mount point;
* relative path: below this process's own cgroup in each v1 hierarchy (and in
  the unified tree of a hybrid host); on a pure v2 host below the *parent* of
  our own cgroup, because our own cgroup holds processes and so may not hand
  controllers down (v2's "no internal processes" rule).
"""

from __future__ import annotations

from pyrunc.errors import CgroupError

TYPE_CHECKING = False  # typing's own flag without importing typing on the hot path
if TYPE_CHECKING:
    from pyrunc.cgroups.base import Manager
    from pyrunc.cgroups.detect import Layout

__all__ = ["create_manager", "frozen", "load_manager"]

# Where each driver keeps a container's freeze state: (paths key, file, value when frozen).
# Here rather than in the drivers so `state`, `start` and `list` can tell "paused" without
# importing any of them (five modules, ~1 ms a call).
FREEZER = {
    "v1": ("freezer", "freezer.state", "FROZEN"),
    "hybrid": ("freezer", "freezer.state", "FROZEN"),  # the freezer is a v1 hierarchy there
    "v2": ("unified", "cgroup.freeze", "1"),  # asked to freeze (a frozen parent is not our pause)
    "systemd": ("unified", "cgroup.freeze", "1"),  # the unit's cgroup2 directory (cgroup v2 hosts)
}


def frozen(driver: str, paths: dict[str, str]) -> bool:
    """True when the container's own cgroup is frozen; False without a freezer or a cgroup."""
    key, name, value = FREEZER.get(driver, ("", "", ""))
    directory = paths.get(key)
    if not directory:
        return False
    try:
        with open(directory + "/" + name, "rb") as f:
            return f.read().strip() == value.encode()
    except OSError:
        return False


def _drivers() -> dict[str, type[Manager]]:
    from pyrunc.cgroups.hybrid import HybridManager
    from pyrunc.cgroups.v1 import V1Manager
    from pyrunc.cgroups.v2 import V2Manager

    return {"v1": V1Manager, "v2": V2Manager, "hybrid": HybridManager}


def _parent(path: str) -> str:
    path = path.rstrip("/")
    cut = path.rfind("/")
    return (path[:cut] or "/") if cut >= 0 else "/"


def create_manager(cgroups_path: str | None, container_id: str, *, systemd: bool = False,
                   rootless: bool = False, layout: Layout | None = None) -> Manager:
    """Detect the cgroup layout and build a manager for ``container_id``.

    ``layout`` lets tests inject a fake hierarchy (mount points in tmp dirs);
    normally it is detected from /proc/self/mountinfo and /proc/self/cgroup.
    """
    if systemd:  # a transient unit instead of our own directories (cgroups/systemd.py)
        from pyrunc.cgroups.systemd import create_systemd_manager

        return create_systemd_manager(cgroups_path, container_id, rootless=rootless, layout=layout)
    from pyrunc.cgroups import detect
    from pyrunc.cgroups.base import clean_path, join

    if layout is None:
        layout = detect.detect()
    inner = clean_path(cgroups_path) if cgroups_path else clean_path(container_id)
    if inner in ("", "/"):
        raise CgroupError(f"invalid cgroupsPath {cgroups_path!r}: it names a hierarchy root",
                          step="create cgroup", container=container_id)
    absolute = inner.startswith("/")
    paths: dict[str, str] = {}
    mountpoints: dict[str, str] = {}
    for ctrl, h in layout.v1.items():
        paths[ctrl] = join(h.mountpoint, inner) if absolute else join(h.mountpoint, h.own, inner)
        mountpoints[ctrl] = h.mountpoint
    if layout.unified is not None:
        h = layout.unified
        if absolute:
            paths["unified"] = join(h.mountpoint, inner)
        else:
            base = h.own if layout.mode == "hybrid" else _parent(h.own)
            paths["unified"] = join(h.mountpoint, base, inner)
        mountpoints["unified"] = h.mountpoint
    cls = _drivers()[layout.mode]
    manager = cls(container_id, paths, [], mountpoints)
    manager.rootless = rootless
    return manager


def load_manager(saved: dict) -> Manager:
    """Rebuild a manager from ``Manager.save()`` output; no detection, no filesystem access."""
    try:
        if saved["driver"] == "systemd":
            from pyrunc.cgroups.systemd import SystemdManager

            manager = SystemdManager(saved.get("id", ""), saved["paths"], [], saved.get("mountpoints") or {},
                                     unit=saved["unit"], slice_=saved.get("slice", ""))
            return manager
        cls = _drivers()[saved["driver"]]
        manager = cls(saved.get("id", ""), saved["paths"], saved.get("created") or [],
                      saved.get("mountpoints") or {})
    except (KeyError, TypeError) as e:
        raise CgroupError(f"saved cgroup state is unusable: {e!r}", step="load cgroup state") from e
    manager.rootless = bool(saved.get("rootless"))
    return manager
