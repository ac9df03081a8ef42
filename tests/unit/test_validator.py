"""The schema interpreter: message format, pointers, Python type gotchas, keywords.

Keyword behaviour is checked against jsonschema (with our documented
'integer' rule) on small schemas, including keywords our own schemas do not
use yet, so adding one to spec/*.json later needs no new interpreter work.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.spec import validate
from pyrunc.spec.validator import SchemaError, compile_schema, pointer

MINIMAL = {"ociVersion": "1.0.0", "root": {"path": "rootfs"}}


def config(**parts) -> dict:
    return {**MINIMAL, **parts}


# -- the message format the CLI prints --------------------------------------------------

@pytest.mark.parametrize(("document", "expected"), [
    (config(process={"cwd": "/", "args": "x"}), ("/process/args", "'x' is not of type 'array'")),
    (config(process={"cwd": "/"}) | {"process": {"args": ["sh"]}}, ("/process", "'cwd' is a required property")),
    ({"root": {"path": "r"}}, ("", "'ociVersion' is a required property")),
    (config(linux={"namespaces": [{"type": "foo"}]}),
     ("/linux/namespaces/0/type",
      "'foo' is not one of ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time']")),
    (config(linux={"uidMappings": [{"containerID": 0, "hostID": -1, "size": 1}]}),
     ("/linux/uidMappings/0/hostID", "-1 is less than the minimum of 0")),
    (config(linux={"uidMappings": [{"containerID": 0, "hostID": 2**32, "size": 1}]}),
     ("/linux/uidMappings/0/hostID", "4294967296 is greater than the maximum of 4294967295")),
    (config(linux={"resources": {"hugepageLimits": [{"pageSize": "2mb", "limit": 1}]}}),
     ("/linux/resources/hugepageLimits/0/pageSize", "'2mb' does not match '^[1-9][0-9]*[KMGTPE]B$'")),
    (config(mounts=[{"destination": "/x", "uidMappings": []}]),
     ("/mounts/0", "'gidMappings' is a dependency of 'uidMappings'"
                   " (runtime-spec: config.md: a mount's uidMappings MUST be specified along with gidMappings,"
                   " and the reverse)")),
    (config(annotations={"": "x"}),
     ("/annotations", "'' should be non-empty (runtime-spec: config.md: annotation keys MUST NOT be an empty string)")),
    (config(linux={"sysctl": {"a/b": 1}}), ("/linux/sysctl/a~1b", "1 is not of type 'string'")),
    (config(linux={"resources": {"rdma": {"mlx": {}}}}),
     ("/linux/resources/rdma/mlx", "{} is not valid under any of the given schemas (runtime-spec: config-linux.md:"
                                   " you MUST specify at least one of hcaHandles or hcaObjects in a given entry)")),
    ([], ("", "[] is not of type 'object'")),
])
def test_problem_format(document, expected):
    assert validate(document) == [expected]


def test_valid_documents_give_no_problems():
    assert validate(MINIMAL) == []
    assert validate({"ociVersion": "1.0.0", "id": "a", "status": "stopped", "bundle": "/b"}, "state") == []
    assert validate({"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0"}, "features") == []


def test_all_problems_are_reported():
    document = config(process={"cwd": 1, "args": "x", "terminal": "no"})
    assert sorted(validate(document)) == [
        ("/process/args", "'x' is not of type 'array'"),
        ("/process/cwd", "1 is not of type 'string'"),
        ("/process/terminal", "'no' is not of type 'boolean'"),
    ]


def test_long_values_are_shortened_in_messages():
    [(where, message)] = validate(config(hostname=["x" * 1000]))
    assert where == "/hostname"
    assert len(message) < 200 and message.endswith("is not of type 'string'")


def test_unknown_schema_name_is_an_error():
    with pytest.raises(ValueError, match="unknown schema"):
        validate({}, "nope")


def test_state_requires_pid_while_running():
    state = {"ociVersion": "1.0.0", "id": "a", "status": "running", "bundle": "/b"}
    assert validate(state, "state") == [("", "'pid' is a required property")]
    assert validate(state | {"pid": 42}, "state") == []
    assert validate(state | {"status": "paused"}, "state") == []


# -- Python type gotchas ----------------------------------------------------------------------

@pytest.mark.parametrize("value", [True, False, 1.0, 0.0, 1e3, "1", None, [0], {"a": 0}])
def test_integer_fields_reject_non_integers(value):
    document = config(process={"cwd": "/", "args": ["sh"], "user": {"uid": value, "gid": 0}})
    [(where, message)] = validate(document)
    assert where == "/process/user/uid"
    assert message == f"{value!r} is not of type 'integer'"


@pytest.mark.parametrize("value", [0, 1, "true", None])
def test_boolean_fields_reject_non_booleans(value):
    assert validate(config(root={"path": "r", "readonly": value})) == [
        ("/root/readonly", f"{value!r} is not of type 'boolean'")]


def test_bool_is_not_a_number_and_not_equal_to_one():
    check = compile_schema({"type": "number", "enum": [1, 2]})
    assert check(True) == [("", "True is not of type 'number'"), ("", "True is not one of [1, 2]")]
    assert check(1) == []
    assert check(1.0) == []  # 1.0 == 1 for enum/const, as in JSON


# -- pointers ------------------------------------------------------------------------------

def test_pointer_escapes_tilde_and_slash():
    assert pointer(None) == ""
    assert pointer((((None, "a/b"), 0), "m~n")) == "/a~1b/0/m~0n"


# -- keywords, compared with jsonschema ------------------------------------------------------

def _reference(schema):
    jsonschema = pytest.importorskip("jsonschema")
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine("integer", lambda _c, v: type(v) is int)
    return jsonschema.validators.extend(base, type_checker=checker)(schema)


def _reference_problems(schema, instance) -> set:
    found = set()
    for error in _reference(schema).iter_errors(instance):
        path = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in error.absolute_path)
        found.add((path, _clip(error.message)))
    return found


def _clip(message: str) -> str:
    """Our messages shorten huge values; compare long messages by their start only."""
    return message if len(message) <= 100 else message[:80]


def _ours(check, instance) -> set:
    return {(where, _clip(message)) for where, message in check(instance)}


KEYWORD_CASES = [
    ({"type": ["string", "null"]}, [None, "a", 1]),
    ({"const": {"a": [1, True]}}, [{"a": [1, True]}, {"a": [1, 1]}, {"a": [1.0, True]}]),
    ({"enum": [1, "a", None, True]}, [1, "a", None, True, 1.0, False, 2]),
    ({"exclusiveMinimum": 0, "exclusiveMaximum": 10}, [0, 1, 10, 9.5, True, "x"]),
    ({"minLength": 2, "maxLength": 3}, ["a", "ab", "abcd", "\u00e9\u00e9", 5]),
    ({"maxLength": 0}, ["", "a"]),
    ({"minItems": 1, "maxItems": 2, "uniqueItems": True}, [[], [1], [1, 1], [1, 2, 3], [1, True], [{"a": 1}, {"a": 1}]]),
    ({"maxItems": 0}, [[], [1]]),
    ({"minProperties": 1, "maxProperties": 1}, [{}, {"a": 1}, {"a": 1, "b": 2}]),
    ({"prefixItems": [{"type": "integer"}, {"type": "string"}], "items": {"type": "boolean"}},
     [[1, "a", True], ["a", 1], [1, "a", 2], []]),
    ({"properties": {"a": {"type": "integer"}}, "patternProperties": {"^x-": {"type": "string"}},
      "additionalProperties": False}, [{"a": 1, "x-y": "s"}, {"a": "1", "x-y": 2, "b": 1, "c": 2}, {"b": 1}]),
    ({"additionalProperties": {"type": "integer"}}, [{"a": 1, "b": "x"}]),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, [{"ab": 1, "A": 2, "b1": 3}]),
    ({"required": ["a", "b"], "dependentRequired": {"a": ["c"]}}, [{}, {"a": 1}, {"a": 1, "b": 1, "c": 1}]),
    ({"allOf": [{"type": "integer"}, {"minimum": 3}]}, [1, 5, "x"]),
    ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, [1, "a", None]),
    ({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, [1, 5, 1.5, "a"]),
    ({"not": {"type": "string"}}, ["a", 1]),
    ({"if": {"type": "integer"}, "then": {"minimum": 0}, "else": {"type": "string"}}, [-1, 1, "a", None]),
    ({"$defs": {"pos": {"type": "integer", "minimum": 1}}, "items": {"$ref": "#/$defs/pos"}}, [[1, 0, "x"]]),
    ({"$defs": {"tree": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/tree"}}}}},
      "$ref": "#/$defs/tree"}, [{"kids": [{"kids": [{"kids": 1}]}]}]),
    (True, [1, None]),
    (False, [1, None]),
    ({"items": False}, [[], [1]]),
]


@pytest.mark.parametrize(("schema", "instances"), KEYWORD_CASES, ids=[str(i) for i in range(len(KEYWORD_CASES))])
def test_keyword_matches_jsonschema(schema, instances):
    check = compile_schema(schema if isinstance(schema, dict) else {"allOf": [schema]})
    for instance in instances:
        assert _ours(check, instance) == _reference_problems(schema, instance), instance


def test_unsupported_keyword_fails_at_compile_time():
    with pytest.raises(SchemaError, match="unsupported schema keyword 'format'"):
        compile_schema({"properties": {"a": {"format": "uri"}}})


def test_dangling_ref_fails_at_compile_time():
    with pytest.raises(SchemaError, match="points nowhere"):
        compile_schema({"$ref": "#/$defs/missing"})


def test_remote_ref_is_refused():
    with pytest.raises(SchemaError, match="only local"):
        compile_schema({"$ref": "https://example.com/schema.json"})


# -- property test: random JSON against a schema that exercises most keywords ------------------

PROPERTY_SCHEMA = {
    "type": "object",
    "required": ["n"],
    "properties": {
        "n": {"type": "integer", "minimum": -5, "maximum": 5},
        "s": {"type": "string", "pattern": "^[a-c]+", "minLength": 1},
        "b": {"type": "boolean"},
        "l": {"type": "array", "items": {"enum": [1, "x", None]}, "uniqueItems": True, "maxItems": 3},
        "o": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
    },
    "anyOf": [{"required": ["s"]}, {"required": ["b"]}],
}
_scalars = st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(alphabet="abcxyz", max_size=4)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.sampled_from("nsblo"), inner, max_size=5), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from("nsblox"), _json, max_size=6))
def test_random_documents_match_jsonschema(document):
    check = compile_schema(PROPERTY_SCHEMA)
    assert _ours(check, document) == _reference_problems(PROPERTY_SCHEMA, document)


# -- import cost ----------------------------------------------------------------------------

def test_importing_spec_pulls_in_nothing_heavy():
    """pyrunc create imports pyrunc.spec on every run; keep heavy modules out of it."""
    code = ("import sys, pyrunc.spec; "
            "bad = [m for m in ('jsonschema', 'pathlib', 'logging', 'subprocess', 'datetime', 'typing') "
            "if m in sys.modules]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(Path(__file__).resolve().parents[2]))
    assert out.stdout.strip() == ""
