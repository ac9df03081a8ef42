"""Exact, regex-free predicates for the `pattern`s our schemas use.

Importing `re` costs ~8 ms (it imports enum), on every `create`. These
functions decide the same strings as the schema's regular expressions (with
`$` meaning end of string, as the validator translates it);
tests/unit/test_patterns.py checks them against `re` on generated strings.
A pattern not listed here falls back to `re`.
"""

from __future__ import annotations

DIGITS = frozenset("0123456789")
UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
ALNUM_DASH = DIGITS | UPPER | frozenset("abcdefghijklmnopqrstuvwxyz-")


def _number(s: str) -> bool:
    """0 or a decimal without a leading zero."""
    return s == "0" or (bool(s) and s[0] in "123456789" and set(s) <= DIGITS)


def _dot_ids(s: str) -> bool:
    """One or more [0-9A-Za-z-]+ separated by dots."""
    return all(part and set(part) <= ALNUM_DASH for part in s.split("."))


def semver(s: str) -> bool:
    core, plus, build = s.partition("+")
    if plus and not _dot_ids(build):
        return False
    core, dash, pre = core.partition("-")
    if dash and not _dot_ids(pre):
        return False
    nums = core.split(".")
    return len(nums) == 3 and all(_number(n) for n in nums)


def page_size(s: str) -> bool:
    return len(s) >= 3 and s[-1] == "B" and s[-2] in "KMGTPE" and _number(s[:-2]) and s[0] != "0"


FAST = {
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?"
    r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$": semver,
    r"^[0-9, -]*$": lambda s: set(s) <= DIGITS | {",", " ", "-"},  # upstream's execCPUAffinity
    r"^MB:[^\n]*$": lambda s: s.startswith("MB:") and "\n" not in s,
    r"^RLIMIT_[A-Z]+$": lambda s: s.startswith("RLIMIT_") and len(s) > 7 and set(s[7:]) <= UPPER,
    r"^[1-9][0-9]*[KMGTPE]B$": page_size,
    r"^[^\n]*$": lambda s: "\n" not in s,
    r"^[rwm]*$": lambda s: set(s) <= {"r", "w", "m"},
    r"^CAP_[A-Z0-9_]+$": lambda s: s.startswith("CAP_") and len(s) > 4 and set(s[4:]) <= UPPER | DIGITS | {"_"},
    r"^/": lambda s: s.startswith("/"),
}
