"""process.scheduler, process.ioPriority, process.execCPUAffinity, linux.memoryPolicy,
linux.personality: names to kernel numbers, and one apply function each.

The parsing happens in the parent (``check``) so a bad value is a config
error before anything exists; the init only calls the apply functions.
"""

from __future__ import annotations

import os

from . import linux
from .errors import PyruncError

POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4,
            "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
IO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
              "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14,
              "MPOL_F_STATIC_NODES": 1 << 15}
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}


def parse_list(text: str, what: str) -> list[int]:
    """Kernel list syntax: `0-3,5,8-9`."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            out.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    except ValueError:
        raise PyruncError(f"invalid {what} list {text!r}", step="validate") from None
    return out


def check(config: dict) -> None:
    """Refuse unknown names before anything is created."""
    process = config.get("process") or {}
    lin = config.get("linux") or {}
    sched = process.get("scheduler")
    if sched:
        if sched.get("policy") not in POLICIES:
            raise PyruncError(f"process.scheduler.policy {sched.get('policy')!r} is not a known policy",
                              step="validate")
        for f in sched.get("flags") or []:
            if f not in SCHED_FLAGS:
                raise PyruncError(f"process.scheduler.flags: unknown flag {f!r}", step="validate")
    io = process.get("ioPriority")
    if io and io.get("class") not in IO_CLASSES:
        raise PyruncError(f"process.ioPriority.class {io.get('class')!r} is not known", step="validate")
    if io and not 0 <= io.get("priority", 0) <= 7:
        # The schema takes any int32 (upstream's); the kernel's levels are 0..7 (runc 1.5.1:
        # "invalid ioPriority.Priority: 8"). A missing priority is 0, as runc's.
        raise PyruncError(f"process.ioPriority.priority {io['priority']} is outside 0 (highest)..7 (lowest)",
                          step="validate")
    aff = process.get("execCPUAffinity") or {}
    for key in ("initial", "final"):
        if aff.get(key):
            parse_list(aff[key], f"execCPUAffinity.{key}")
    mp = lin.get("memoryPolicy")
    if mp:
        if "mode" not in mp:
            raise PyruncError("linux.memoryPolicy has no mode (runc: invalid memory policy mode \"\")",
                              step="validate")
        if mp.get("mode") not in MPOL_MODES:
            raise PyruncError(f"linux.memoryPolicy.mode {mp.get('mode')!r} is not known", step="validate")
        for f in mp.get("flags") or []:
            if f not in MPOL_FLAGS:
                raise PyruncError(f"linux.memoryPolicy.flags: unknown flag {f!r}", step="validate")
        parse_list(mp.get("nodes") or "", "memoryPolicy.nodes")
    pers = lin.get("personality")
    if pers is not None:
        if "domain" not in pers:
            raise PyruncError("linux.personality has no domain (runc: invalid personality domain)", step="validate")
        if pers.get("domain") not in PERSONALITY_DOMAINS:
            raise PyruncError(f"linux.personality.domain {pers.get('domain')!r} is not supported",
                              step="validate")
        if pers.get("flags"):
            raise PyruncError("linux.personality.flags are not supported", step="validate")


def apply_scheduler(sched: dict) -> None:
    flags = 0
    for f in sched.get("flags") or []:
        flags |= SCHED_FLAGS[f]
    try:
        linux.sched_setattr(POLICIES[sched["policy"]], flags=flags, nice=sched.get("nice", 0),
                            priority=sched.get("priority", 0), runtime=sched.get("runtime", 0),
                            deadline=sched.get("deadline", 0), period=sched.get("period", 0))
    except OSError as e:
        raise PyruncError(f"sched_setattr {sched['policy']}: {e.strerror}", step="set_scheduler") from None


def apply_io_priority(io: dict) -> None:
    try:
        linux.ioprio_set(IO_CLASSES[io["class"]], io.get("priority", 0))
    except OSError as e:
        raise PyruncError(f"ioprio_set {io['class']}: {e.strerror}", step="set_io_priority") from None


def apply_affinity(text: str, which: str) -> None:
    try:
        os.sched_setaffinity(0, parse_list(text, which))
    except OSError as e:
        raise PyruncError(f"sched_setaffinity {text!r}: {e.strerror}", step=f"set {which} CPU affinity") from None


def apply_memory_policy(mp: dict) -> None:
    mode = MPOL_MODES[mp["mode"]]
    for f in mp.get("flags") or []:
        mode |= MPOL_FLAGS[f]
    try:
        linux.set_mempolicy(mode, parse_list(mp.get("nodes") or "", "memoryPolicy.nodes"))
    except OSError as e:
        raise PyruncError(f"set_mempolicy {mp['mode']}: {e.strerror}", step="set_memory_policy") from None


def apply_personality(pers: dict) -> None:
    try:
        linux.personality(PERSONALITY_DOMAINS[pers["domain"]])
    except OSError as e:
        raise PyruncError(f"personality {pers['domain']}: {e.strerror}", step="set_personality") from None
