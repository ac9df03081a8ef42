"""Hybrid driver: v1 hierarchies for the controllers plus the cgroup2 "unified" mount.

systemd's hybrid layout mounts every controller as v1 and an (often
controller-less) cgroup2 tree at ``/sys/fs/cgroup/unified``. Like runc 1.1 we
create the container cgroup there too and move the process into it, so tools
that look at ``0::/...`` in ``/proc/PID/cgroup`` find the container. Controllers
that live only in the v2 tree (on some hosts hugetlb) are written there.

We never enable controllers in the unified tree's ``cgroup.subtree_control``:
its ancestors belong to the host, and a v2-only controller is usable only where
the host already delegated it.
"""

from __future__ import annotations

import os

from pyrunc.cgroups.base import read_file
from pyrunc.cgroups.v1 import Op, V1Manager
from pyrunc.cgroups.v2 import KEY
from pyrunc.errors import SET_RESOURCES

__all__ = ["HybridManager"]


class HybridManager(V1Manager):
    """v1 manager that also joins (and can write to) the unified hierarchy."""

    driver = "hybrid"

    def _v2_available(self) -> set[str]:
        d = self._paths.get(KEY)
        if not d:
            return set()
        try:
            if self._fresh(d):
                # Planning: a new cgroup gets what its parent enabled for its children (we enable
                # nothing here), and a parent made with it enabled nothing.
                parent = d.rsplit("/", 1)[0]
                if not os.path.isdir(parent):
                    return set()
                return set(read_file(parent, "cgroup.subtree_control").split())
            return set(read_file(d, "cgroup.controllers").split())
        except OSError as e:
            raise self._err(f"reading the controllers of {d}: {e.strerror}", SET_RESOURCES, e.errno) from e

    def _hugetlb(self, limits: list) -> list[Op]:
        """Use the v1 hugetlb hierarchy if mounted, else the unified tree's hugetlb."""
        if "hugetlb" in self._paths or not limits:
            return super()._hugetlb(limits)
        from pyrunc.cgroups import resources as res

        if "hugetlb" not in self._v2_available():
            raise self._err("linux.resources.hugepageLimits needs the hugetlb controller, which is "
                            "neither a v1 hierarchy nor enabled for this cgroup in the unified tree",
                            SET_RESOURCES)
        return [(KEY, f"hugetlb.{res.check_page_size(e.get('pageSize'))}.max", str(int(e["limit"])))
                for e in limits]

    def _unified(self, unified: dict) -> list[Op]:
        """``linux.resources.unified`` goes to the unified tree, controller by controller."""
        if not unified:
            return []
        from pyrunc.cgroups import resources as res

        if KEY not in self._paths:
            return super()._unified(unified)
        available = self._v2_available()
        ops: list[Op] = []
        for key, value in unified.items():
            ctrl = res.unified_key(key)
            if ctrl != "cgroup" and ctrl not in available:
                raise self._err(f"linux.resources.unified.{key}: the {ctrl} controller is not available "
                                "in the cgroup v2 (unified) hierarchy of this hybrid host", SET_RESOURCES)
            ops.append((KEY, key, str(value)))
        return ops
