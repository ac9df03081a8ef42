"""The busybox bundles both runtimes run: a base config, a seccomp-heavy one, a user-namespace one.

The config is written here (not taken from ``runc spec``) so it is the same
on every machine. It is a typical default container: all namespaces but
user and cgroup, the usual mounts, masked paths and a default capability
set, ``terminal: false`` and ``args: ["/bin/true"]``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
APPLETS = ("true", "sh", "sleep", "cat")
UNISTD = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
# Syscalls a default container profile refuses; everything else named in unistd_64.h is allowed.
DENIED = {"kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "init_module",
          "finit_module", "delete_module", "acct", "settimeofday", "clock_settime", "adjtimex",
          "clock_adjtime", "lookup_dcookie", "nfsservctl", "open_by_handle_at", "iopl", "ioperm",
          "create_module", "get_kernel_syms", "query_module", "uselib", "vm86", "vm86old",
          "quotactl", "pivot_root", "mount", "umount2", "bpf", "perf_event_open", "userfaultfd",
          "fanotify_init", "name_to_handle_at", "syslog", "_sysctl", "afs_syscall", "tuxcall",
          "security", "vhangup", "putpmsg", "getpmsg", "move_pages", "mbind", "set_mempolicy",
          "get_mempolicy", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "unshare",
          "setns", "keyctl", "add_key", "request_key", "fsopen", "fsconfig", "fsmount",
          "fspick", "move_mount", "open_tree", "mount_setattr"}


def base_config() -> dict:
    """A default busybox container running /bin/true without a terminal."""
    caps = list(CAPS)
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


def syscall_names() -> list[str]:
    """Every x86-64 syscall name the kernel headers know (empty if they are not installed)."""
    try:
        with open(UNISTD, encoding="ascii") as f:
            text = f.read()
    except OSError:
        return []
    return sorted(set(re.findall(r"^#define __NR_(\w+)\s+\d+", text, re.M)))


def seccomp_heavy_config() -> dict:
    """A podman-sized profile: default errno, ~300 allowed names, a few argument rules."""
    cfg = base_config()
    names = [n for n in syscall_names() if n not in DENIED and n != "personality"]
    rules: list[dict] = [{"names": names, "action": "SCMP_ACT_ALLOW"}]
    for persona in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        rules.append({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]})
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    }
    return cfg


def userns_config() -> dict:
    """The base container in its own user namespace mapped to host ids 100000-165535."""
    cfg = copy.deepcopy(base_config())
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    return cfg


def make_rootfs(path: str) -> None:
    """busybox-static plus the applet links the benchmarks exec."""
    os.makedirs(os.path.join(path, "bin"))
    for d in ("proc", "sys", "dev", "etc", "tmp"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(path, "bin", "busybox"))
    for applet in APPLETS:
        os.symlink("busybox", os.path.join(path, "bin", applet))
    os.chmod(path, 0o755)


def make_bundle(path: str, config: dict, rootfs: str) -> str:
    """A bundle directory whose config points at the shared rootfs by absolute path."""
    os.makedirs(path)
    cfg = copy.deepcopy(config)
    cfg["root"]["path"] = rootfs
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=1)
    return path
