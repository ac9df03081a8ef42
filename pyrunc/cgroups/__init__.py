"""Container cgroups: detect v1 / v2 / hybrid and build the matching ``Manager``.

``create_manager`` is used once per container (at create time); its
``save()`` output goes into the state file and ``load_manager`` rebuilds the
manager from it without looking at the system again (each driver's
``from_record``), so later commands (kill, delete, state, pause) stay cheap and
use the same paths even if the caller passes fewer flags than it did to
``create``. Callers use the ``Manager`` interface (base.py) and never a
driver's name; this package is the only place that knows the names.

A new driver: a ``Manager`` subclass with its ``driver`` name and
``from_record``, built by ``create_manager`` and listed in ``_driver``.

Placement follows runc 1.1's cgroupfs driver:

* no ``cgroupsPath``: the relative path ``<id>``;
* absolute path: below each hierarchy's mount point;
* relative path: below this process's own cgroup in each v1 hierarchy (and in
  the unified tree of a hybrid host); on a pure v2 host below the *parent* of
  our own cgroup, because our own cgroup holds processes and so may not hand
  controllers down (v2's "no internal processes" rule).
"""

from __future__ import annotations

from pyrunc.errors import CREATE_CGROUP, CgroupError

TYPE_CHECKING = False  # typing's own flag without importing typing on the hot path
if TYPE_CHECKING:
    from pyrunc.cgroups.base import Manager
    from pyrunc.cgroups.detect import Layout

__all__ = ["create_manager", "features", "frozen", "load_manager"]


def frozen(saved: dict) -> bool:
    """True when the container whose cgroup ``saved`` (``Manager.save()``) describes is frozen;
    False without a freezer or a cgroup. Here, reading the one file the driver recorded, so that
    `state`, `start` and `list` can tell "paused" without importing any driver (~1 ms a call)."""
    point = saved.get("freezer") if "freezer" in saved else _legacy_freezer(saved)
    if not point:
        return False
    path, value = point
    try:
        with open(path, "rb") as f:
            return f.read().strip() == value.encode()
    except OSError:
        return False


def _legacy_freezer(saved: dict) -> list[str] | None:
    """Where a record written before records named their freeze file (pyrunc 0.1 up to the
    cgroup seam) keeps it: a container created then and paused still reads as paused."""
    paths = saved.get("paths") or {}
    if saved.get("driver") in ("v1", "hybrid") and paths.get("freezer"):
        return [paths["freezer"] + "/freezer.state", "FROZEN"]
    if saved.get("driver") in ("v2", "systemd") and paths.get("unified"):
        return [paths["unified"] + "/cgroup.freeze", "1"]
    return None


def _driver(name: str) -> type[Manager]:
    """The class a saved record's ``driver`` names; only the one asked for is imported."""
    if name == "v2":
        from pyrunc.cgroups.v2 import V2Manager

        return V2Manager
    if name == "hybrid":
        from pyrunc.cgroups.hybrid import HybridManager

        return HybridManager
    if name == "v1":
        from pyrunc.cgroups.v1 import V1Manager

        return V1Manager
    if name == "systemd":
        from pyrunc.cgroups.systemd import SystemdManager

        return SystemdManager
    raise KeyError(name)


def _parent(path: str) -> str:
    path = path.rstrip("/")
    cut = path.rfind("/")
    return (path[:cut] or "/") if cut >= 0 else "/"


def create_manager(cgroups_path: str | None, container_id: str, *, systemd: bool = False,
                   rootless: bool = False, resources: dict | None = None,
                   layout: Layout | None = None) -> Manager:
    """Detect the cgroup layout and build a manager for ``container_id``, which will be created
    with ``resources`` (``linux.resources``) by a runtime that is ``rootless`` or not.

    ``layout`` lets tests inject a fake hierarchy (mount points in tmp dirs);
    normally it is detected from /proc/self/mountinfo and /proc/self/cgroup.
    """
    if systemd:  # a transient unit instead of our own directories (cgroups/systemd.py)
        from pyrunc.cgroups.systemd import create_systemd_manager

        return create_systemd_manager(cgroups_path, container_id, rootless=rootless, resources=resources,
                                      layout=layout)
    from pyrunc.cgroups import detect
    from pyrunc.cgroups.base import clean_path, join

    if layout is None:
        layout = detect.detect()
    inner = clean_path(cgroups_path) if cgroups_path else clean_path(container_id)
    if inner in ("", "/"):
        raise CgroupError(f"invalid cgroupsPath {cgroups_path!r}: it names a hierarchy root",
                          step=CREATE_CGROUP, container=container_id)
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
    return _driver(layout.mode)(container_id, paths, mountpoints=mountpoints, rootless=rootless,
                                resources=resources)


def load_manager(saved: dict) -> Manager:
    """Rebuild a manager from ``Manager.save()`` output; no detection, no filesystem access."""
    try:
        return _driver(saved["driver"]).from_record(saved)
    except (KeyError, TypeError) as e:
        raise CgroupError(f"saved cgroup state is unusable: {e!r}", step="load cgroup state") from e


def features() -> dict:
    """The ``linux.cgroup`` entry of the features document: the drivers this pyrunc has (v1.py,
    v2.py, hybrid.py, systemd.py), whatever this host mounts, as runc 1.5 announces them: a
    caller asks what the runtime can do, and the host answers at create time. The user's own
    systemd (rootless ``--systemd-cgroup``) is not supported yet."""
    return {"v1": True, "v2": True, "systemd": True, "systemdUser": False, "rdma": True}
