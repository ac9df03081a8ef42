"""A small JSON Schema interpreter for pyrunc's own schemas.

Why not the ``jsonschema`` library: importing it costs ~70 ms, several times
runc's whole ``create`` latency, and this module runs on every ``create``. Our
schemas (spec/*.json) use a handful of draft 2020-12 keywords, so we compile
each schema once into nested Python closures and walk the instance with them.

Differences from the JSON Schema standard, all deliberate and all stricter:

* ``"integer"`` accepts only a Python ``int`` that is not a ``bool``. The
  standard also counts ``1.0`` as an integer, but Go's encoding/json (so runc)
  refuses ``1.0`` for an int field, and every downstream syscall wrapper in
  pyrunc would choke on a float. ``"number"`` accepts int and float, not bool.
* A ``$`` that ends a ``pattern`` anchors at the very end of the string, as in
  ECMA-262. Python's ``$`` also matches before a trailing newline, which would
  let ``"2MB\\n"`` through into a cgroup file name.

Messages copy the wording of the jsonschema library (``'x' is not of type
'array'``) because users and tests already know it; very long values are
shortened in messages so a problem always fits on one line. A keyword the
compiler does not know raises ``SchemaError`` at compile time, so a schema
edit can never be silently ignored.
"""

from __future__ import annotations

from .patterns import FAST

# typing and collections.abc cost ~3 ms to import; the names below are only
# needed by type checkers (annotations are strings under __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Problem = tuple[str, str]
    # A location is a linked list of (parent, key) pairs; building one per
    # visited value is a single tuple allocation, and the RFC 6901 pointer is
    # only rendered for the rare value that has a problem.
    Location = tuple | None
    Errors = list[tuple[Location, str]]
    Checker = Callable[[Any, Location, Errors], None]

_MAX_REPR = 120
# Where our schema is stricter than the upstream runtime-spec schema, the node says why with the
# spec's own MUST sentence; it is added to every problem the node finds (tests/unit/
# test_schema_upstream.py holds each such place against upstream). jsonschema ignores the key.
MUST_KEYWORD = "x-must"
_IGNORED = frozenset({MUST_KEYWORD, "$schema", "$id", "$comment", "$defs", "definitions", "title", "description",
                      "default", "examples", "deprecated", "readOnly", "writeOnly"})
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}
_NUMBER = (int, float)


class SchemaError(Exception):
    """The schema itself uses something this interpreter does not support."""


def pointer(location: Location) -> str:
    """Render a location as an RFC 6901 JSON pointer ("" is the document root)."""
    keys = []
    while location is not None:
        location, key = location
        keys.append(str(key).replace("~", "~0").replace("/", "~1"))
    return "".join("/" + key for key in reversed(keys))


def show(value: Any) -> str:
    """``repr`` like jsonschema, cut short so one problem stays one readable line."""
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR - 3] + "..."


def _freeze(value: Any) -> Any:
    """A hashable stand-in with JSON equality: true != 1, but 1 == 1.0."""
    if type(value) is dict:
        return ("o", frozenset((k, _freeze(v)) for k, v in value.items()))
    if type(value) is list:
        return ("a", tuple(_freeze(v) for v in value))
    if type(value) is bool:
        return ("b", value)
    if type(value) is float and value.is_integer():
        return ("n", int(value))
    return ("n" if type(value) in _NUMBER else "s", value)


def _translate_pattern(pattern: str) -> str:
    """Make a trailing ``$`` mean end-of-string, as JSON Schema (ECMA-262) does."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + r"\Z"
    return pattern


class _Compiler:
    """Turns one root schema (with its ``$defs``) into a checker function."""

    def __init__(self, root: dict):
        self.root = root
        self.refs: dict[str, list] = {}

    # -- entry points -------------------------------------------------------

    def compile(self, schema: Any) -> Checker:
        if schema is True or schema == {}:
            return _accept
        if schema is False:
            return _reject_all
        if type(schema) is not dict:
            raise SchemaError(f"a schema must be an object or a boolean, not {schema!r}")
        checkers = self._keyword_checkers(schema)
        if not checkers:
            return _accept
        check = checkers[0] if len(checkers) == 1 else _all_of_checkers(tuple(checkers))
        reason = schema.get(MUST_KEYWORD)
        return _with_reason(check, reason) if reason else check

    def _keyword_checkers(self, schema: dict) -> list[Checker]:
        checkers: list[Checker] = []
        handled = set(_IGNORED)
        for group, keys in _GROUPS:
            if not schema.keys().isdisjoint(keys):
                checkers.append(group(self, schema))
                handled.update(keys)
        for key in schema:
            if key in handled:
                continue
            builder = _KEYWORDS.get(key)
            if builder is None:
                raise SchemaError(f"unsupported schema keyword {key!r}")
            checkers.append(builder(self, schema[key], schema))
        return checkers

    # -- $ref -----------------------------------------------------------------

    def ref(self, target: str, _schema: dict) -> Checker:
        """Compile the target on first *use*, not now.

        A typical config touches a fraction of the $defs (no seccomp, no
        blockIO...), so compiling lazily saves most of the ~2 ms an eager
        compile of the whole config schema costs; it also makes recursive
        schemas work. The target is resolved now so a dangling $ref still
        fails at compile time.
        """
        target_schema = self._resolve(target)
        cell = self.refs.get(target)
        if cell is None:
            cell = self.refs[target] = [None]

        def check(inst: Any, loc: Location, errs: Errors) -> None:
            checker = cell[0]
            if checker is None:
                checker = cell[0] = self.compile(target_schema)
            checker(inst, loc, errs)
        return check

    def _resolve(self, target: str) -> Any:
        if not target.startswith("#"):
            raise SchemaError(f"only local $ref targets are supported, not {target!r}")
        node: Any = self.root
        for part in target[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if type(node) is not dict or part not in node:
                raise SchemaError(f"$ref {target!r} points nowhere")
            node = node[part]
        return node


def _accept(inst: Any, loc: Location, errs: Errors) -> None:
    """The empty schema: everything is valid."""


def _reject_all(inst: Any, loc: Location, errs: Errors) -> None:
    errs.append((loc, f"False schema does not allow {show(inst)}"))


def _with_reason(check: Checker, reason: str) -> Checker:
    """Append ``(runtime-spec: REASON)`` to the problems this node reports itself (not to those of
    its sub-properties, which carry their own reasons or none)."""
    suffix = f" (runtime-spec: {reason})"

    def checked(inst: Any, loc: Location, errs: Errors) -> None:
        start = len(errs)
        check(inst, loc, errs)
        for i in range(start, len(errs)):
            where, message = errs[i]
            if where is loc:
                errs[i] = (where, message + suffix)
    return checked


def _all_of_checkers(checkers: tuple[Checker, ...]) -> Checker:
    def check(inst: Any, loc: Location, errs: Errors) -> None:
        for checker in checkers:
            checker(inst, loc, errs)
    return check


def _is_valid(checker: Checker, inst: Any) -> bool:
    errs: Errors = []
    checker(inst, None, errs)
    return not errs


# -- type and value keywords ---------------------------------------------------

def _type(comp: _Compiler, value: Any, _schema: dict) -> Checker:
    names = [value] if type(value) is str else list(value)
    allowed: set[type] = set()
    for name in names:
        if name not in _TYPES:
            raise SchemaError(f"unknown type {name!r}")
        allowed.update(_TYPES[name])
    wanted = ", ".join(repr(name) for name in names)
    frozen = frozenset(allowed)

    def check(inst: Any, loc: Location, errs: Errors) -> None:
        if type(inst) not in frozen:
            errs.append((loc, f"{show(inst)} is not of type {wanted}"))
    return check


def _enum(comp: _Compiler, values: list, _schema: dict) -> Checker:
    if all(type(v) is str for v in values):
        strings = frozenset(values)

        def check_strings(inst: Any, loc: Location, errs: Errors) -> None:
            if type(inst) is not str or inst not in strings:
                errs.append((loc, f"{show(inst)} is not one of {values!r}"))
        return check_strings
    frozen = frozenset(_freeze(v) for v in values)

    def check(inst: Any, loc: Location, errs: Errors) -> None:
        if _freeze(inst) not in frozen:
            errs.append((loc, f"{show(inst)} is not one of {values!r}"))
    return check


def _const(comp: _Compiler, value: Any, _schema: dict) -> Checker:
    frozen = _freeze(value)

    def check(inst: Any, loc: Location, errs: Errors) -> None:
        if _freeze(inst) != frozen:
            errs.append((loc, f"{value!r} was expected"))
    return check


def _bound(message: str, failed: Callable[[Any, Any], bool]) -> Callable[[_Compiler, Any, dict], Checker]:
    """Build a numeric bound keyword; bools are not numbers here, unlike in Python."""
    def build(comp: _Compiler, limit: Any, _schema: dict) -> Checker:
        def check(inst: Any, loc: Location, errs: Errors) -> None:
            if type(inst) in _NUMBER and failed(inst, limit):
                errs.append((loc, f"{show(inst)} {message} {limit!r}"))
        return check
    return build


def _length(kind: type, too: str, empty_word: str, at: int,
            failed: Callable[[int, int], bool]) -> Callable[[_Compiler, Any, dict], Checker]:
    """Build minLength/maxLength/minItems/... with jsonschema's wording."""
    def build(comp: _Compiler, limit: int, _schema: dict) -> Checker:
        word = empty_word if limit == at else too

        def check(inst: Any, loc: Location, errs: Errors) -> None:
            if type(inst) is kind and failed(len(inst), limit):
                errs.append((loc, f"{show(inst)} {word}"))
        return check
    return build


def _pattern(comp: _Compiler, pattern: str, _schema: dict) -> Checker:
    matches = FAST.get(pattern)  # our schemas' patterns have exact predicates: no `re` import
    if matches is None:
        compiled: list = [None]  # compiled on first use: most patterns never run

        def matches(inst: str) -> bool:
            if compiled[0] is None:
                import re

                compiled[0] = re.compile(_translate_pattern(pattern))
            return compiled[0].search(inst) is not None

    def check(inst: Any, loc: Location, errs: Errors) -> None:
        if type(inst) is str and not matches(inst):
            errs.append((loc, f"{show(inst)} does not match {pattern!r}"))
    return check


def _unique_items(comp: _Compiler, flag: bool, _schema: dict) -> Checker:
    def check(inst: Any, loc: Location, errs: Errors) -> None:
        if flag and type(inst) is list and len({_freeze(v) for v in inst}) != len(inst):
            errs.append((loc, f"{show(inst)} has non-unique elements"))
    return check


# -- object keywords -------------------------------------------------------------

def _object_group(comp: _Compiler, schema: dict) -> Checker:
    """properties + patternProperties + additionalProperties, in one pass over the keys."""
    props = {k: comp.compile(v) for k, v in schema.get("properties", {}).items()}
    if schema.get("patternProperties"):
        import re
    patterns = [(re.compile(_translate_pattern(p)), comp.compile(v))
                for p, v in schema.get("patternProperties", {}).items()]
    extra_schema = schema.get("additionalProperties", True)
    extra = None if extra_schema is True else comp.compile(extra_schema)
    forbid_extra = extra_schema is False
    pattern_list = ", ".join(repr(p) for p in sorted(schema.get("patternProperties", {})))
    get = props.get

    def check(inst: Any, loc: Location, errs: Errors) -> None:
        if type(inst) is not dict:
            return
        unexpected = []
        for key, value in inst.items():
            checker = get(key)
            if checker is not None:
                checker(value, (loc, key), errs)
            matched = False
            for regex, sub in patterns:
                if regex.search(key) is not None:
                    matched = True
                    sub(value, (loc, key), errs)
            if checker is None and not matched and extra is not None:
                if forbid_extra:
                    unexpected.append(key)
                else:
                    extra(value, (loc, key), errs)
        if unexpected:
            errs.append((loc, _unexpected_message(unexpected, pattern_list)))
    return check


def _unexpected_message(keys: list[str], pattern_list: str) -> str:
    listed = ", ".join(repr(k) for k in sorted(keys, key=str))
    if pattern_list:
        verb = "does" if len(keys) == 1 else "do"
        return f"{listed} {verb} not match any of the regexes: {pattern_list}"
    verb = "was" if len(keys) == 1 else "were"
    return f"Additional properties are not allowed ({listed} {verb} unexpected)"


def _required(comp: _Compiler, names: list[str], _schema: dict) -> Checker:
    def check(inst: Any, loc: Location, errs: Errors) -> None:
        if type(inst) is dict:
            for name in names:
                if name not in inst:
                    errs.append((loc, f"{name!r} is a required property"))
    return check


def _dependent_required(comp: _Compiler, deps: dict[str, list[str]], _schema: dict) -> Checker:
    def check(inst: Any, loc: Location, errs: Errors) -> None:
        if type(inst) is not dict:
            return
        for name, needed in deps.items():
            if name in inst:
                for other in needed:
                    if other not in inst:
                        errs.append((loc, f"{other!r} is a dependency of {name!r}"))
    return check


def _property_names(comp: _Compiler, sub_schema: Any, _schema: dict) -> Checker:
    sub = comp.compile(sub_schema)

    def check(inst: Any, loc: Location, errs: Errors) -> None:
        if type(inst) is dict:
            for key in inst:
                sub(key, loc, errs)  # like jsonschema: reported at the object itself
    return check


# -- array keywords ----------------------------------------------------------------

def _array_group(comp: _Compiler, schema: dict) -> Checker:
    """prefixItems + items (draft 2020-12 meaning: items covers what prefixItems does not)."""
    prefix = [comp.compile(s) for s in schema.get("prefixItems", [])]
    rest_schema = schema.get("items", True)
    rest = None if rest_schema is True else comp.compile(rest_schema)
    start = len(prefix)
    noun = "item" if start == 1 else "items"

    def check(inst: Any, loc: Location, errs: Errors) -> None:
        if type(inst) is not list:
            return
        for index, (sub, value) in enumerate(zip(prefix, inst, strict=False)):
            sub(value, (loc, index), errs)
        if rest_schema is False and len(inst) > start:
            extra = len(inst) - start
            shown = show(inst[start] if extra == 1 else inst[start:])
            errs.append((loc, f"Expected at most {start} {noun} but found {extra} extra: {shown}"))
        elif rest is not None:
            for index in range(start, len(inst)):
                rest(inst[index], (loc, index), errs)
    return check


# -- combinators ----------------------------------------------------------------------

def _ref(comp: _Compiler, target: str, schema: dict) -> Checker:
    return comp.ref(target, schema)


def _all_of(comp: _Compiler, subs: list, _schema: dict) -> Checker:
    return _all_of_checkers(tuple(comp.compile(s) for s in subs))


def _any_of(comp: _Compiler, subs: list, _schema: dict) -> Checker:
    checkers = tuple(comp.compile(s) for s in subs)

    def check(inst: Any, loc: Location, errs: Errors) -> None:
        if not any(_is_valid(c, inst) for c in checkers):
            errs.append((loc, f"{show(inst)} is not valid under any of the given schemas"))
    return check


def _one_of(comp: _Compiler, subs: list, _schema: dict) -> Checker:
    checkers = tuple(comp.compile(s) for s in subs)

    def check(inst: Any, loc: Location, errs: Errors) -> None:
        valid = [subs[i] for i, c in enumerate(checkers) if _is_valid(c, inst)]
        if not valid:
            errs.append((loc, f"{show(inst)} is not valid under any of the given schemas"))
        elif len(valid) > 1:
            # jsonschema's order: the later matches first, then the first match.
            listed = ", ".join(repr(s) for s in valid[1:] + valid[:1])
            errs.append((loc, f"{show(inst)} is valid under each of {listed}"))
    return check


def _not(comp: _Compiler, sub_schema: Any, _schema: dict) -> Checker:
    sub = comp.compile(sub_schema)

    def check(inst: Any, loc: Location, errs: Errors) -> None:
        if _is_valid(sub, inst):
            errs.append((loc, f"{show(inst)} should not be valid under {sub_schema!r}"))
    return check


def _conditional_group(comp: _Compiler, schema: dict) -> Checker:
    """if / then / else; a lone then or else does nothing, as in the standard."""
    if "if" not in schema:
        return _accept
    condition = comp.compile(schema["if"])
    then = comp.compile(schema.get("then", True))
    otherwise = comp.compile(schema.get("else", True))

    def check(inst: Any, loc: Location, errs: Errors) -> None:
        (then if _is_valid(condition, inst) else otherwise)(inst, loc, errs)
    return check


_GROUPS: tuple[tuple[Callable[[_Compiler, dict], Checker], tuple[str, ...]], ...] = (
    (_object_group, ("properties", "patternProperties", "additionalProperties")),
    (_array_group, ("prefixItems", "items")),
    (_conditional_group, ("if", "then", "else")),
)

_KEYWORDS: dict[str, Callable[[_Compiler, Any, dict], Checker]] = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "minimum": _bound("is less than the minimum of", lambda x, m: x < m),
    "maximum": _bound("is greater than the maximum of", lambda x, m: x > m),
    "exclusiveMinimum": _bound("is less than or equal to the minimum of", lambda x, m: x <= m),
    "exclusiveMaximum": _bound("is greater than or equal to the maximum of", lambda x, m: x >= m),
    "minLength": _length(str, "is too short", "should be non-empty", 1, lambda n, m: n < m),
    "maxLength": _length(str, "is too long", "is expected to be empty", 0, lambda n, m: n > m),
    "minItems": _length(list, "is too short", "should be non-empty", 1, lambda n, m: n < m),
    "maxItems": _length(list, "is too long", "is expected to be empty", 0, lambda n, m: n > m),
    "minProperties": _length(dict, "does not have enough properties", "should be non-empty", 1,
                             lambda n, m: n < m),
    "maxProperties": _length(dict, "has too many properties", "is expected to be empty", 0,
                             lambda n, m: n > m),
    "pattern": _pattern,
    "uniqueItems": _unique_items,
    "required": _required,
    "dependentRequired": _dependent_required,
    "propertyNames": _property_names,
    "$ref": _ref,
    "allOf": _all_of,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "not": _not,
}


def compile_schema(schema: dict) -> Callable[[Any], list[Problem]]:
    """Compile a root schema; the result maps an instance to its (pointer, message) problems."""
    check = _Compiler(schema).compile(schema)

    def run(instance: Any) -> list[Problem]:
        errs: Errors = []
        check(instance, None, errs)
        return [(pointer(loc), message) for loc, message in errs]
    return run


_compiled: dict[str, Callable[[Any], list[Problem]]] = {}


def validate(instance: Any, schema: str = "config") -> list[Problem]:
    """Check ``instance`` against our "config", "state" or "features" schema.

    Returns (RFC 6901 pointer, message) pairs, empty when valid. Each schema is
    compiled on first use only, so ``pyrunc state`` never pays for the config one.
    """
    run = _compiled.get(schema)
    if run is None:
        from pyrunc.spec._schemas import SCHEMAS

        if schema not in SCHEMAS:
            raise ValueError(f"unknown schema {schema!r}; expected one of {sorted(SCHEMAS)}")
        run = _compiled[schema] = compile_schema(SCHEMAS[schema])
    return run(instance)
