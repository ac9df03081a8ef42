"""JSON output without the json module.

`json` imports `re` (and with it enum): ~8 ms that `state`, `list` and `ps`
would pay only to print a small object. This encoder handles exactly what
those commands print: dicts, lists, str, int, float, bool, None.
"""

from __future__ import annotations

from .log import json_string


def dumps(obj, indent: int | None = None, _level: int = 0) -> str:
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, str):
        return json_string(obj)
    if isinstance(obj, (int, float)):
        return repr(obj)
    if isinstance(obj, dict):
        items = [f"{json_string(str(k))}: {dumps(v, indent, _level + 1)}" if indent is not None
                 else f"{json_string(str(k))}:{dumps(v, indent, _level + 1)}" for k, v in obj.items()]
        return _wrap("{", "}", items, indent, _level)
    if isinstance(obj, (list, tuple)):
        return _wrap("[", "]", [dumps(v, indent, _level + 1) for v in obj], indent, _level)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _wrap(open_: str, close: str, items: list[str], indent: int | None, level: int) -> str:
    if not items:
        return open_ + close
    if indent is None:
        return open_ + ",".join(items) + close
    pad = " " * (indent * (level + 1))
    return open_ + "\n" + ",\n".join(pad + i for i in items) + "\n" + " " * (indent * level) + close
