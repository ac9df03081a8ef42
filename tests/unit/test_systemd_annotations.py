"""``org.systemd.property.*`` annotations as unit properties (runc's rules), without systemd.

The value grammar is GVariant text (pyrunc/cgroups/gvariant.py); the name rule, the
``...Sec`` -> ``...USec`` conversion and the error texts are runc's, measured with runc 1.5.1
in the --systemd guest (tests/vmsystemd/test_systemd_annotations.py runs both side by side).
"""

from __future__ import annotations

import os

import pytest

from pyrunc.cgroups import create_manager, gvariant
from pyrunc.cgroups import systemd_unit as su
from pyrunc.errors import CgroupError
from tests.unit.test_systemd_unit import FakeBus, v2_layout  # noqa: F401 (fixture)

P = su.PROPERTY_PREFIX


@pytest.mark.parametrize("text,expected", [
    ("uint64 123456789", ("t", 123456789)),
    ("'inactive-or-failed'", ("s", "inactive-or-failed")),
    ('"double quoted"', ("s", "double quoted")),
    ("true", ("b", True)),
    ("false", ("b", False)),
    ("boolean true", ("b", True)),
    ("100", ("i", 100)),  # untyped numbers are int32, as GVariant has it
    ("-7", ("i", -7)),
    ("1.5", ("d", 1.5)),
    ("double 2", ("d", 2.0)),
    ("uint64 0x10", ("t", 16)),
    ("uint64 010", ("t", 8)),  # a leading 0 is octal
    ("int64 -9223372036854775808", ("x", -(1 << 63))),
    ("byte 255", ("y", 255)),
    ("['a', 'b']", ("as", ["a", "b"])),
    ("@as []", ("as", [])),
    ("[1, uint64 2]", ("at", [1, 2])),
    ("@ay [1, 2]", ("ay", b"\x01\x02")),
    ("<uint64 5>", ("v", ("t", 5))),
    ("'a\\u00e9\\n\\'q'", ("s", "a\u00e9\n'q")),
    ("objectpath '/org/x'", ("o", "/org/x")),
])
def test_gvariant_values(text, expected) -> None:
    assert gvariant.parse(text) == expected


@pytest.mark.parametrize("text,message", [
    ("inactive-or-failed", "unrecognized type 'inactive-or-failed'"),
    ("'unterminated", "unterminated string"),
    ("uint64 -1", "out of range for type t"),
    ("int32 3000000000", "out of range for type i"),
    ("uint64 1.5", "not an integer"),
    ("12abc", "bad number '12abc'"),
    ("uint64 5 6", "unexpected '6' after the value"),
    ("", "unexpected end"),
    ("[]", "an empty array needs its type"),
    ("[1, 'a']", "is not of type i"),
    ("{'a': 1}", "dictionaries are not supported"),
    ("uint64 'x'", "is not of type t"),
    ("@h 1", "not supported"),
    ("@a{ss} []", "invalid type annotation"),
    ("uint64 uint64 1", "two type annotations"),
])
def test_gvariant_errors(text, message) -> None:
    with pytest.raises(ValueError, match=message):
        gvariant.parse(text)


def test_annotation_properties_rules() -> None:
    got = su.annotation_properties({
        "other.annotation": "ignored",
        P + "TimeoutStopUSec": "uint64 123456789",
        P + "CollectMode": "'inactive-or-failed'",
        P + "RuntimeMaxSec": "100",  # documented spelling: seconds, renamed ...USec
        P + "TimeoutStartSec": "1.5",
        P + "JobTimeoutSec": "uint64 7",
        P + "CPUSec": "'kept'",  # upper-case letter before Sec: not renamed (runc's rule)
    })
    assert [(name, value) for name, value, _key in got] == [
        ("TimeoutStopUSec", ("t", 123456789)), ("CollectMode", ("s", "inactive-or-failed")),
        ("RuntimeMaxUSec", ("t", 100_000_000)), ("TimeoutStartUSec", ("t", 1_500_000)),
        ("JobTimeoutUSec", ("t", 7_000_000)), ("CPUSec", ("s", "kept"))]
    assert got[2][2] == P + "RuntimeMaxSec"
    assert su.annotation_properties(None) == [] and su.annotation_properties({}) == []


@pytest.mark.parametrize("annotations,message", [
    ({P + "Ab": "true"}, f"annotation {P}Ab: name incorrect: too short"),
    ({P: "true"}, "name incorrect: too short"),
    ({P + "Foo1": "true"}, f"annotation {P}Foo1: name incorrect: contains non-alphabetic character"),
    ({P + "Foo.Bar": "true"}, "contains non-alphabetic character"),
    ({P + "CollectMode": "inactive-or-failed"},
     f"annotation {P}CollectMode=inactive-or-failed: value parse error: unrecognized type"),
    ({P + "TimeoutStopSec": "'x'"}, f"annotation {P}TimeoutStopSec='x': value parse error: not a number"),
    ({P + "TimeoutStopSec": "true"}, "not a number"),
    ({P + "TimeoutStopSec": "-1"}, "out of range"),
])
def test_annotation_errors_name_the_annotation(annotations, message) -> None:
    with pytest.raises(CgroupError) as info:
        su.annotation_properties(annotations)
    assert message in info.value.cause


def test_manager_refuses_a_bad_annotation_before_anything(v2_layout) -> None:  # noqa: F811
    layout, _mp = v2_layout
    with pytest.raises(CgroupError) as info:
        create_manager("", "c1", systemd=True, layout=layout, annotations={P + "Ab": "true"})
    assert info.value.container == "c1" and "name incorrect" in info.value.cause


def test_annotations_go_after_runc_set_and_before_resources(v2_layout) -> None:  # noqa: F811
    layout, mp = v2_layout
    bus = FakeBus(mp / "system.slice/runc-c1.scope")
    m = create_manager("", "c1", systemd=True, layout=layout, resources={"memory": {"limit": 1 << 20}},
                       annotations={P + "Description": "'mine'", P + "MemoryMax": "uint64 5",
                                    P + "CollectMode": "'inactive-or-failed'"})
    m._bus = bus
    m.create()
    m.apply(os.getpid())
    sent = bus.sent[0]
    names = [name for name, _v in sent]
    # later wins in systemd: the annotation's Description over ours, the resources' MemoryMax over
    # the annotation's (runc sets its resources on the started unit, so they win there too)
    after = names.index("DefaultDependencies") + 1
    assert names[after:after + 3] == ["Description", "MemoryMax", "CollectMode"]
    assert names.count("MemoryMax") == 2 and sent[names.index("MemoryMax")] == ("MemoryMax", ("t", 5))
    assert [v for n, v in sent if n == "MemoryMax"][-1] == ("t", 1 << 20)
    assert [v for n, v in sent if n == "Description"][-1] == ("s", "mine")
    assert m.plan()["properties"][-1][0] == "MemoryMax"
    assert ["CollectMode", "inactive-or-failed"] in m.plan()["properties"]


def test_systemd_refusal_names_the_annotation(v2_layout) -> None:  # noqa: F811
    layout, mp = v2_layout
    bus = FakeBus(mp / "system.slice/runc-c1.scope", start_error="org.freedesktop.DBus.Error.PropertyReadOnly",
                  start_text="Cannot set property NoSuchProperty, or unknown property.")
    m = create_manager("", "c1", systemd=True, layout=layout, annotations={P + "NoSuchProperty": "true"})
    m._bus = bus
    m.create()
    with pytest.raises(CgroupError) as info:
        m.apply(os.getpid())
    assert info.value.cause.endswith(f"(set by annotation {P}NoSuchProperty)"), info.value.cause
    assert "Cannot set property NoSuchProperty" in info.value.cause


def test_systemd_refusal_without_a_name_lists_the_annotations(v2_layout) -> None:  # noqa: F811
    layout, mp = v2_layout
    bus = FakeBus(mp / "system.slice/runc-c1.scope", start_error="org.freedesktop.DBus.Error.InvalidArgs",
                  start_text="Failed to set unit properties: Unexpected message contents")
    m = create_manager("", "c1", systemd=True, layout=layout, annotations={P + "TimeoutStopUSec": "123"})
    m._bus = bus
    m.create()
    with pytest.raises(CgroupError) as info:
        m.apply(os.getpid())
    assert info.value.cause.endswith(f"(the unit had properties from annotations: {P}TimeoutStopUSec)")
