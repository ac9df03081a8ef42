"""Signal names as runc parses them: `9`, `KILL`, `SIGKILL`, `kill`, `sigkill`."""

from __future__ import annotations

import _signal as signal  # the C module: names without the enum import

from .errors import UsageError

NAMES = {n: getattr(signal, n) for n in dir(signal)
         if n.startswith("SIG") and not n.startswith("SIG_") and isinstance(getattr(signal, n), int)}


def parse_signal(raw: str) -> int:
    """A decimal number is used as-is; otherwise upper-case, add SIG if missing, look up."""
    text = raw.strip()
    if text.isdigit():
        num = int(text)
        if 0 < num < 65:
            return num
        raise UsageError(f'unknown signal "{raw}"')
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    rt = _realtime(name)
    if rt is not None:
        return rt
    sig = NAMES.get(name)
    if sig is None:
        raise UsageError(f'unknown signal "{raw}"')
    return sig


def _realtime(name: str) -> int | None:
    """SIGRTMIN, SIGRTMIN+N, SIGRTMAX, SIGRTMAX-N."""
    lo, hi = signal.SIGRTMIN, signal.SIGRTMAX
    for base, value, _sign in (("SIGRTMIN", lo, 1), ("SIGRTMAX", hi, -1)):
        if name == base:
            return int(value)
        for op in "+-":
            prefix = base + op
            if name.startswith(prefix) and name[len(prefix):].isdigit():
                n = int(value) + (1 if op == "+" else -1) * int(name[len(prefix):])
                if lo <= n <= hi:
                    return n
    return None
