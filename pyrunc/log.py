"""runc-compatible log lines: JSON (`level`, `msg`, `time`) or logrus-style text.

containerd decodes the --log file as a stream of JSON values and reports the
`msg` of the last `error` record, so every record must be valid JSON with an
RFC 3339 `time`; nothing else may ever be written to that file. This module
avoids the json and datetime imports: a string escaper and time.strftime do.
"""

from __future__ import annotations

import os
import sys
import time

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3, "fatal": 4}


def rfc3339(t: float | None = None) -> str:
    """UTC timestamp with nanoseconds and a `Z` offset, as Go's time.Time wants it."""
    if t is None:
        t = time.time()
    secs = int(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{int((t - secs) * 1e9):09d}Z"


def json_string(s: str) -> str:
    """Encode a str as a JSON string literal (what json.dumps would produce)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\u{o:04x}"))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class Logger:
    """Writes records to --log (or stderr) at or above the configured level."""

    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False):
        self.fmt = fmt
        self.min_level = 0 if debug else 2
        self.fd: int | None = None
        self.path = path
        if path:
            # Opened first thing: callers expect the file to exist even when we fail early.
            self.fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY | os.O_CLOEXEC, 0o644)

    def _format(self, level: str, msg: str) -> str:
        if self.fmt == "json":
            return ('{"level":' + json_string(level) + ',"msg":' + json_string(msg)
                    + ',"time":' + json_string(rfc3339()) + "}\n")
        return f'time="{rfc3339()}" level={level} msg={json_string(msg)}\n'

    def record(self, level: str, msg: str) -> None:
        if _LEVELS[level] < self.min_level:
            return
        line = self._format(level, msg).encode("utf-8", "replace")
        try:
            if self.fd is not None:
                os.write(self.fd, line)
            else:
                os.write(2, line)
        except OSError:
            pass  # a closed stderr (podman's state) must not turn a result into a crash

    def debug(self, msg: str) -> None:
        self.record("debug", msg)

    def info(self, msg: str) -> None:
        self.record("info", msg)

    def warning(self, msg: str) -> None:
        self.record("warning", msg)

    def error(self, msg: str) -> None:
        """An error goes to stderr as one bare line always, and to --log as a record."""
        if self.fd is not None:
            self.record("error", msg)
        try:
            sys.stderr.write(msg.replace("\n", " ")[:8000] + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


_current = Logger()


def get() -> Logger:
    return _current


def configure(path: str | None, fmt: str, debug: bool) -> Logger:
    global _current
    _current = Logger(path, fmt, debug)
    return _current
