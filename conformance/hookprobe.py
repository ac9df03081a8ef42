"""A hook that records what it saw, so hook scenarios can be judged afterwards.

Usage as an OCI hook: ``python -I -S hookprobe.py RECORDS NAME [EXIT [SLEEP]]``.
It appends one JSON line to RECORDS: the state read from stdin, its own
namespaces, argv, environment, a timestamp, and what the state's pid was
running at that moment (poststart must see the user program, not the init).
It runs with ``-S`` and only the standard library because a runtime may give
hooks an empty environment.
"""

from __future__ import annotations

import json
import os
import sys
import time

NS_TYPES = ("mnt", "net", "pid", "uts", "ipc", "cgroup")


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"<{e.strerror}>"


def main(argv: list[str]) -> int:
    records, name = argv[1], argv[2]
    code = int(argv[3]) if len(argv) > 3 else 0
    pause = float(argv[4]) if len(argv) > 4 else 0.0
    raw = sys.stdin.read()
    try:
        state = json.loads(raw)
    except ValueError:
        state = {"<unparsable>": raw}
    ns = {}
    for t in NS_TYPES:
        try:
            ns[t] = os.readlink(f"/proc/self/ns/{t}")
        except OSError:
            ns[t] = ""
    pid = state.get("pid") if isinstance(state, dict) else None
    rec = {"name": name, "state": state, "ns": ns, "argv": argv, "env": dict(os.environ),
           "time": time.time(), "pid_cmdline": "", "pid_ns_mnt": ""}
    if isinstance(pid, int) and pid > 0:
        rec["pid_cmdline"] = _read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()
        try:
            rec["pid_ns_mnt"] = os.readlink(f"/proc/{pid}/ns/mnt")
        except OSError:
            pass
    fd = os.open(records, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(rec) + "\n").encode())
    finally:
        os.close(fd)
    if pause:
        time.sleep(pause)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
