"""Read, parse and validate <bundle>/config.json.

Python's json module is lenient where a runtime must not be: it accepts NaN
and Infinity, silently keeps the last of duplicate keys, recurses until
RecursionError on deep nesting, and reads files of any size or kind. Each of
those is turned into a ConfigError here, so the CLI prints one line and never
a traceback (SECURITY.md: hostile config documents).
"""

from __future__ import annotations

import _json
import os

from pyrunc.errors import ConfigError
from pyrunc.spec.semantic import semantic_problems
from pyrunc.spec.validator import validate

TYPE_CHECKING = False
if TYPE_CHECKING:
    Problem = tuple[str, str]

MAX_CONFIG_BYTES = 4 << 20
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


class _Reject(ValueError):
    """Raised from json hooks; carries the finished problem message."""


def _reject_constant(name: str) -> None:
    raise _Reject(f"invalid JSON: {name} is not a valid JSON number")


def _unique_object(pairs: list[tuple[str, object]]) -> dict:
    """Refuse duplicate keys: two parsers could otherwise act on different values."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Reject(f"invalid JSON: duplicate key {key!r} in an object")
            seen.add(key)
    return obj


def read_config_bytes(path: str) -> bytes:
    """Read a regular, non-symlink file of at most MAX_CONFIG_BYTES.

    O_NONBLOCK keeps a FIFO planted as config.json from hanging the open; the
    fstat then refuses anything that is not a regular file.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as err:
        raise _problem(_open_message(path, err)) from None
    try:
        if (os.fstat(fd).st_mode & 0o170000) != 0o100000:
            raise _problem(f"open {path}: not a regular file")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_CONFIG_BYTES:
                raise _problem(f"{path} is larger than {MAX_CONFIG_BYTES >> 20} MiB")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as err:
        raise _problem(f"read {path}: {os.strerror(err.errno or 0)}") from None
    finally:
        os.close(fd)


def _open_message(path: str, err: OSError) -> str:
    if err.errno == 40:  # ELOOP: O_NOFOLLOW met a symlink
        return f"open {path}: is a symbolic link (refusing to follow it)"
    return f"open {path}: {os.strerror(err.errno or 0)}"


def _problem(message: str, pointer: str = "") -> ConfigError:
    return ConfigError([(pointer, message)])


class _ScannerContext:
    """The attributes _json's C scanner reads from a JSONDecoder: the same strict parser the
    json module uses, without importing json (which imports re and enum: ~8 ms per create)."""

    strict = True
    object_hook = None
    object_pairs_hook = staticmethod(_unique_object)
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_reject_constant)


_scan = _json.make_scanner(_ScannerContext())
_WS = " \t\n\r"


def _skip_ws(text: str, idx: int) -> int:
    return len(text) - len(text[idx:].lstrip(_WS))


def _position(text: str, idx: int) -> tuple[int, int]:
    line = text.count("\n", 0, idx) + 1
    return line, idx - text.rfind("\n", 0, idx)


def _decode(text: str) -> object:
    idx = _skip_ws(text, 0)
    try:
        value, end = _scan(text, idx)
    except StopIteration as stop:
        line, col = _position(text, stop.value)
        raise _problem(f"invalid JSON at line {line} column {col}: Expecting value") from None
    end = _skip_ws(text, end)
    if end != len(text):
        line, col = _position(text, end)
        raise _problem(f"invalid JSON at line {line} column {col}: Extra data")
    return value


def _reject_lone_surrogates(value: object, pointer: str) -> None:
    """Strings must be valid Unicode: a lone surrogate (\\ud800) cannot reach the kernel as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _problem("invalid JSON: string holds a lone surrogate (not valid Unicode)",
                           pointer or "/") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_lone_surrogates(key, pointer)
            _reject_lone_surrogates(item, f"{pointer}/{_escape(key)}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_lone_surrogates(item, f"{pointer}/{i}")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def parse_config(data: bytes) -> object:
    """bytes -> JSON value, with every leniency of the json module closed off."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _problem(f"invalid JSON: not UTF-8 (bad byte at offset {err.start})") from None
    try:
        value = _decode(text)
        if "\\u" in text:  # only escapes can smuggle in a lone surrogate
            _reject_lone_surrogates(value, "")
        return value
    except _Reject as err:
        raise _problem(str(err)) from None
    except RecursionError:
        raise _problem("invalid JSON: nested too deeply") from None
    except (ValueError, SystemError):
        # The C scanner reports malformed objects by raising json's JSONDecodeError, which it
        # cannot always build on its own: parse again with json itself for the precise message.
        import json

        try:
            json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_object)
        except json.JSONDecodeError as err:
            raise _problem(f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
        except _Reject as err:
            raise _problem(str(err)) from None
        raise _problem("invalid JSON") from None


def load_config(bundle: str, *, container: str | None = None) -> dict:
    """Read <bundle>/config.json, parse, validate (schema + semantic) and return it.

    Raises ConfigError(problems, container=container) listing every problem
    found at the first stage that fails (file, JSON, schema, semantics).
    """
    path = os.path.join(bundle, "config.json")
    try:
        config = parse_config(read_config_bytes(path))
        if type(config) is not dict:
            raise _problem(f"config.json must hold a JSON object, not {_json_type(config)}")
        problems = validate(config, "config")
        if not problems:
            problems = semantic_problems(config, bundle)
    except ConfigError as err:
        raise ConfigError(err.problems, container=container) from None
    if problems:
        raise ConfigError(problems, container=container)
    return config


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), "null")
