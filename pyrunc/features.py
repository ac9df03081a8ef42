"""What this build of pyrunc supports, as the `features` document (features.md) says it.

Every entry is derived from the code that implements it (the option tables,
the capability list, the namespace table), so the document cannot drift from
what pyrunc does; tests/integration/test_features.py exercises each item.

As runc 1.5.1's, the document says what this build supports, not what the host
offers: ``linux.cgroup`` names every driver pyrunc has, whatever this host mounts
(a caller on another host reads the same document); the fields runc 1.5.1 has are
all here (tests/integration/test_runc15.py compares the two), Intel RDT aside.
"""

from __future__ import annotations

from . import OCI_VERSION, __version__

NAMESPACES = ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
# Annotations that change what the runtime does, so a caller should not take them from untrusted
# users (features.md). runc 1.5.1 lists "bundle", "org.systemd.property." and "org.criu.config";
# pyrunc reads neither "bundle" nor CRIU config files. "org.systemd.property." (a prefix) is
# listed although the systemd driver does not apply these annotations yet (issue 22): a caller
# filtering them loses nothing, and one that did not would be surprised when they take effect.
UNSAFE_ANNOTATIONS = ["org.systemd.property."]


def libseccomp_version() -> str | None:
    """The libseccomp that compiles our filters, as runc reports its own (None if absent)."""
    try:
        from .security import seccomp_compile

        return seccomp_compile.lib().version
    except Exception:  # noqa: BLE001 - no libseccomp: the annotation is left out, as runc's nocgo build
        return None


def document() -> dict:
    from . import scheduling
    from .cgroups import features as cgroup_features
    from .hooks import PHASES
    from .rootfs import options
    from .security import seccomp_abi as seccomp
    from .security.capabilities import NAMES, last_cap

    # "remount" only means something on an existing mount, so it is not offered on its own.
    mount_options = sorted((set(options.FLAGS) | set(options.PROPAGATION) | set(options.RECURSIVE)
                            | {"ro", "rw", options.COPYUP}) - {"remount"})  # idmap/ridmap: see mountExtensions
    annotations = {"org.opencontainers.pyrunc.version": __version__,
                   "org.opencontainers.pyrunc.checkpoint.enabled": "true"}
    seccomp_lib = libseccomp_version()
    if seccomp_lib:
        annotations["io.github.seccomp.libseccomp.version"] = seccomp_lib
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
            # process.selinuxLabel and linux.mountLabel, proven beside runc in the SELinux guest
            # (tests/vm/test_selinux.py); like apparmor, the host may still have it off
            "selinux": {"enabled": True},
            "intelRdt": {"enabled": False, "schemata": False, "monitoring": False},
            "memoryPolicy": {"modes": sorted(scheduling.MPOL_MODES), "flags": sorted(scheduling.MPOL_FLAGS)},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": True},
        },
        # runc's key, our name: the checkpoint and restore commands exist (pyrunc/criu); whether
        # they work depends on the criu binary and the kernel, which `criu check` tells.
        "annotations": annotations,
        "potentiallyUnsafeConfigAnnotations": list(UNSAFE_ANNOTATIONS),
    }
