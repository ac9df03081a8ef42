"""linux.netDevices: move host interfaces into the container's network namespace.

One RTM_NEWLINK per device carries both the target namespace (the init's
pid) and the new name, so the kernel moves and renames it in one step and a
name that exists on the host (eth0) never collides. pyroute2 costs about
120 ms to import, so this module is imported only when a config has
netDevices.
"""

from __future__ import annotations

from .errors import PyruncError


def move_devices(pid: int, devices: dict) -> None:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    with IPRoute() as ipr:
        for host_name, spec in devices.items():
            new_name = (spec or {}).get("name") or host_name
            found = ipr.link_lookup(ifname=host_name)
            if not found:
                raise PyruncError(f"network device {host_name!r} does not exist on the host",
                                  step="move network devices")
            try:
                ipr.link("set", index=found[0], net_ns_pid=pid, ifname=new_name)
            except NetlinkError as e:
                raise PyruncError(f"move network device {host_name!r} as {new_name!r}: {e.args[-1]}",
                                  step="move network devices") from None
