"""Walk our schemas (spec/*.json) beside the upstream runtime-spec schemas, property by property.

Used by tests/unit/test_schema_upstream.py; ``python tests/unit/schema_diff.py [UPSTREAM_DIR]``
prints the differences. Two kinds of finding:

* ``missing``: upstream defines a property our schema does not name, so a field added upstream
  would pass through unchecked (drift);
* a constraint keyword (``type``, ``enum``, ``minimum``, ``required`` ...): our schema rejects a
  value upstream accepts there (stricter). The fourth field is our node's ``x-must``: the spec's
  MUST sentence that allows it (None if the node has none).

Being *less* strict than upstream is not reported: the runtime then checks the value itself
(spec/semantic.py, or the code that uses it) and says what is wrong in its own words.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# Keywords that only narrow what is valid; any of them present in ours but not (or not equal)
# upstream is a finding.
_NARROWING = ("const", "minItems", "maxItems", "minLength", "maxLength", "minProperties",
              "maxProperties", "uniqueItems", "propertyNames", "dependentRequired", "anyOf", "oneOf",
              "if", "not")


class Schemas:
    """A set of schema documents with $ref resolution across them (upstream: several files)."""

    def __init__(self, docs: dict[str, dict], default: str):
        self.docs = docs
        self.default = default

    @classmethod
    def upstream(cls, folder: Path) -> Schemas:
        return cls({p.name: json.loads(p.read_text()) for p in folder.glob("*.json")}, "config-schema.json")

    def target(self, ref: str, base: str) -> tuple[dict, str]:
        name, _, frag = ref.partition("#")
        name = name or base
        node = self.docs[name]
        for part in frag.strip("/").split("/") if frag.strip("/") else []:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node, name

    def flat(self, node: dict, base: str, seen: int = 0) -> dict:
        """One node with $ref and allOf merged in (draft-04's ignored $ref siblings kept too)."""
        if not isinstance(node, dict) or seen > 20:
            return {}
        out: dict = {}
        parts = [(node, base)]
        if "$ref" in node:
            parts.append(self.target(node["$ref"], base))
        for sub in node.get("allOf", []):
            parts.append((sub, base))
        if len(node.get("anyOf", [])) == 1:  # upstream's namespaces: anyOf of one $ref
            parts.append((node["anyOf"][0], base))
        for part, where in parts:
            if part is node:
                for key, value in node.items():
                    if key in ("$ref", "allOf") or (key == "anyOf" and len(value) == 1):
                        continue
                    _merge(out, key, value, where)
            else:
                for key, value in self.flat(part, where, seen + 1).items():
                    _merge(out, key, value, None)
        out.setdefault("_base", base)
        return out


def _merge(out: dict, key: str, value, base: str | None) -> None:
    if key == "properties":
        props = out.setdefault("properties", {})
        for name, sub in value.items():
            props.setdefault(name, (sub, base) if base is not None else sub)
    elif key == "required":
        out["required"] = sorted(set(out.get("required", [])) | set(value))
    elif key in ("items", "additionalProperties") and base is not None and isinstance(value, dict):
        out.setdefault(key, (value, base))
    elif key == "patternProperties" and base is not None:
        out.setdefault(key, {p: (v, base) for p, v in value.items()})
    else:
        out.setdefault(key, value)


def _char_class(pattern: str | None) -> set[str] | None:
    """The characters of a one-character pattern like ``^[cbup]$`` (upstream's device type)."""
    if pattern and pattern.startswith("^[") and pattern.endswith("]$") and "-" not in pattern[2:-2] \
            and "\\" not in pattern:
        return set(pattern[2:-2])
    return None


def _types(node: dict) -> set[str] | None:
    t = node.get("type")
    if t is None:
        return None
    names = {t} if isinstance(t, str) else set(t)
    if "number" in names:
        names.add("integer")
    return names


def _sub(entry, fallback: str) -> tuple[dict, str]:
    return entry if isinstance(entry, tuple) else (entry, fallback)


def _map_values(node: dict):
    """The schema every value of an object map must satisfy (additionalProperties or one pattern)."""
    if isinstance(node.get("additionalProperties"), tuple):
        return node["additionalProperties"]
    pats = node.get("patternProperties") or {}
    if len(pats) == 1:
        return next(iter(pats.values()))
    return None


def compare(up: Schemas, ours: Schemas, up_node: dict, up_base: str, our_node: dict, our_base: str,
            ptr: str, found: list[tuple], skip: frozenset[str]) -> None:
    """Append (pointer, kind, detail) for everything our node is stricter in, then recurse."""
    if ptr in skip:
        return
    u = up.flat(up_node, up_base)
    o = ours.flat(our_node, our_base)
    ut, ot = _types(u), _types(o)
    if ot is not None and (ut is None or not ut <= ot):
        found.append((ptr, "type", f"ours {sorted(ot)}, upstream {sorted(ut) if ut else 'any'}", o.get("x-must")))
    chars = _char_class(u.get("pattern"))
    if "enum" in o and chars is not None and set(o["enum"]) == chars:
        pass  # the same set of one-character values, written as an enum
    elif "enum" in o and ("enum" not in u or not set(map(json.dumps, u["enum"])) <= set(map(json.dumps, o["enum"]))):
        missing = sorted(set(u.get("enum", [])) - set(o["enum"])) if "enum" in u else "any value"
        found.append((ptr, "enum", f"upstream also allows {missing}", o.get("x-must")))
    if "pattern" in o and o["pattern"] != u.get("pattern"):
        found.append((ptr, "pattern", f"ours {o['pattern']!r}, upstream {u.get('pattern')!r}", o.get("x-must")))
    for key, tighter in (("minimum", lambda a, b: a > b), ("maximum", lambda a, b: a < b),
                         ("exclusiveMinimum", lambda a, b: a >= b), ("exclusiveMaximum", lambda a, b: a <= b)):
        if key in o and (key not in u or tighter(o[key], u[key])):
            found.append((ptr, key, f"ours {o[key]}, upstream {u.get(key)}", o.get("x-must")))
    extra_required = sorted(set(o.get("required", [])) - set(u.get("required", [])))
    if extra_required:
        found.append((ptr, "required", ", ".join(extra_required), o.get("x-must")))
    for key in _NARROWING:
        if key in o and o.get(key) != u.get(key):
            found.append((ptr, key, json.dumps(o[key])[:120], o.get("x-must")))
    if o.get("additionalProperties") is False and u.get("additionalProperties") is not False:
        found.append((ptr, "additionalProperties", "false", o.get("x-must")))

    uprops, oprops = u.get("properties", {}), o.get("properties", {})
    for name, entry in uprops.items():
        sub_ptr = f"{ptr}/{name}"
        if sub_ptr in skip:
            continue
        if name not in oprops:
            found.append((sub_ptr, "missing", "upstream defines it, our schema does not name it", None))
            continue
        compare(up, ours, *_sub(entry, u["_base"]), *_sub(oprops[name], o["_base"]), sub_ptr, found, skip)
    if isinstance(u.get("items"), tuple) and isinstance(o.get("items"), tuple):
        compare(up, ours, *u["items"], *o["items"], f"{ptr}/[]", found, skip)
    uv, ov = _map_values(u), _map_values(o)
    if uv is not None and ov is not None:
        compare(up, ours, *uv, *ov, f"{ptr}/{{}}", found, skip)
    if uv is None and ov is not None and not uprops:
        pass  # upstream says nothing about the values: ours may check them (less strict is fine)


def differences(upstream_dir: Path, ours_dir: Path, skip: frozenset[str] = frozenset()) -> list[tuple]:
    up = Schemas.upstream(upstream_dir)
    found: list[tuple] = []
    for kind, filename in (("config", "config-schema.json"), ("state", "state-schema.json"),
                           ("features", "features-schema.json")):
        mine = json.loads((ours_dir / filename).read_text())
        ours = Schemas({filename: mine}, filename)
        compare(up, ours, up.docs[filename], filename, mine, filename, f"{kind}:", found, skip)
    return found


if __name__ == "__main__":
    repo = Path(__file__).resolve().parents[2]
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else repo.parent / "shared" / "oci-runtime-spec" / "schema"
    for row in differences(folder, repo / "spec"):
        print("\t".join(str(x) for x in row))
