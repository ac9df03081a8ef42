"""What this build of pyrunc supports, as the `features` document (features.md) says it.

Every entry is derived from the code that implements it (the option tables,
the capability list, the namespace table), so the document cannot drift from
what pyrunc does; tests/integration/test_features.py exercises each item.
"""

from __future__ import annotations

from . import OCI_VERSION, __version__

NAMESPACES = ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]


def document() -> dict:
    from .cgroups import features as cgroup_features
    from .hooks import PHASES
    from .rootfs import options
    from .security import seccomp_abi as seccomp
    from .security.capabilities import NAMES, last_cap

    # "remount" only means something on an existing mount, so it is not offered on its own.
    mount_options = sorted((set(options.FLAGS) | set(options.PROPAGATION) | set(options.RECURSIVE)
                            | {"ro", "rw", options.COPYUP}) - {"remount"})  # idmap/ridmap: see mountExtensions
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(PHASES),
        "mountOptions": mount_options,
        "linux": {
            "namespaces": list(NAMESPACES),
            "capabilities": ["CAP_" + n for n in NAMES[: last_cap() + 1]],
            "cgroup": cgroup_features(),
            "seccomp": {"enabled": True, "actions": sorted(seccomp.ACTIONS),
                        "operators": sorted(seccomp.OPERATORS), "archs": sorted(seccomp.ARCHES),
                        "knownFlags": sorted(seccomp.FLAGS), "supportedFlags": sorted(seccomp.FLAGS)},
            "apparmor": {"enabled": True},  # supported; the host may still have it off
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": True},
        },
        # runc's key, our name: the checkpoint and restore commands exist (pyrunc/criu); whether
        # they work depends on the criu binary and the kernel, which `criu check` tells.
        "annotations": {"org.opencontainers.pyrunc.version": __version__,
                        "org.opencontainers.pyrunc.checkpoint.enabled": "true"},
    }
