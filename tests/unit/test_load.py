"""load_config: every way config.json can be unreadable or malformed gives one clean ConfigError."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pyrunc.errors import ConfigError
from pyrunc.spec import load_config
from pyrunc.spec.load import MAX_CONFIG_BYTES

CONFIGS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "configs"


@pytest.fixture
def bundle(tmp_path) -> Path:
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def write(bundle: Path, text: str | bytes) -> Path:
    path = bundle / "config.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def problems_of(bundle: Path, container: str | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_config(str(bundle), container=container)
    assert info.value.container == container
    return info.value.problems


def runc_config() -> dict:
    return json.loads((CONFIGS / "runc-spec.json").read_text())


def test_valid_config_is_returned(bundle):
    write(bundle, json.dumps(runc_config()))
    assert load_config(str(bundle)) == runc_config()


def test_missing_file(bundle):
    path = bundle / "config.json"
    assert problems_of(bundle) == [("", f"open {path}: No such file or directory")]


def test_error_carries_container_id_and_one_line(bundle):
    write(bundle, "{]")
    with pytest.raises(ConfigError) as info:
        load_config(str(bundle), container="c1")
    assert info.value.container == "c1"
    assert info.value.line() == "config.json: invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes"


@pytest.mark.parametrize(("text", "line", "column"), [
    ("{]", 1, 2),
    ('{\n  "ociVersion": "1.0.0",\n  "root": {"path": "rootfs",}\n}', 3, 29),
    ('{"a": 1} x', 1, 10),
    ("", 1, 1),
])
def test_broken_json_reports_line_and_column(bundle, text, line, column):
    write(bundle, text)
    [(where, message)] = problems_of(bundle)
    assert where == ""
    assert message.startswith(f"invalid JSON at line {line} column {column}: ")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected(bundle, constant):
    write(bundle, '{"ociVersion": "1.0.0", "process": {"oomScoreAdj": ' + constant + "}}")
    assert problems_of(bundle) == [("", f"invalid JSON: {constant} is not a valid JSON number")]


def test_duplicate_keys_are_rejected(bundle):
    write(bundle, '{"ociVersion": "1.0.0", "root": {"path": "rootfs", "path": "/"}}')
    assert problems_of(bundle) == [("", "invalid JSON: duplicate key 'path' in an object")]


@pytest.mark.parametrize(("text", "kind"), [("[]", "an array"), ('"x"', "a string"), ("1", "a number"),
                                             ("null", "null"), ("true", "a boolean")])
def test_top_level_must_be_an_object(bundle, text, kind):
    write(bundle, text)
    assert problems_of(bundle) == [("", f"config.json must hold a JSON object, not {kind}")]


def test_not_utf8(bundle):
    write(bundle, b'{"ociVersion": "1.0.0", "hostname": "\xff"}')
    [(where, message)] = problems_of(bundle)
    assert where == "" and message.startswith("invalid JSON: not UTF-8")


def test_size_is_capped(bundle):
    padding = " " * MAX_CONFIG_BYTES
    path = write(bundle, '{"ociVersion": "1.0.0"}' + padding)
    assert problems_of(bundle) == [("", f"{path} is larger than 4 MiB")]


def test_deep_nesting_is_caught(bundle):
    write(bundle, '{"a": ' + "[" * 200_000 + "]" * 200_000 + "}")
    assert problems_of(bundle) == [("", "invalid JSON: nested too deeply")]


def test_symlink_is_refused(bundle, tmp_path_factory):
    real = tmp_path_factory.mktemp("elsewhere") / "config.json"
    real.write_text(json.dumps(runc_config()))
    os.symlink(real, bundle / "config.json")
    [(where, message)] = problems_of(bundle)
    assert where == "" and message.endswith("is a symbolic link (refusing to follow it)")


def test_fifo_is_refused_without_hanging(bundle):
    os.mkfifo(bundle / "config.json")
    assert problems_of(bundle) == [("", f"open {bundle / 'config.json'}: not a regular file")]


def test_directory_is_refused(bundle):
    (bundle / "config.json").mkdir()
    assert problems_of(bundle) == [("", f"open {bundle / 'config.json'}: not a regular file")]


def test_schema_problems_are_raised_with_pointers(bundle):
    config = runc_config()
    config["process"]["args"] = "x"
    config["process"]["user"]["uid"] = True
    write(bundle, json.dumps(config))
    assert sorted(problems_of(bundle)) == [("/process/args", "'x' is not of type 'array'"),
                                           ("/process/user/uid", "True is not of type 'integer'")]


def test_float_for_integer_is_a_schema_problem(bundle):
    config = runc_config()
    config["process"]["user"]["uid"] = 0.0
    write(bundle, json.dumps(config))
    assert problems_of(bundle) == [("/process/user/uid", "0.0 is not of type 'integer'")]


def test_semantic_problems_are_raised(bundle):
    config = runc_config()
    config["process"]["cwd"] = "relative"
    write(bundle, json.dumps(config))
    assert problems_of(bundle) == [("/process/cwd", "cwd 'relative' must be an absolute path")]


def test_semantic_checks_wait_for_a_valid_schema(bundle):
    """A schema-invalid config is reported as such; semantic rules never see wrong types."""
    config = runc_config()
    config["process"]["cwd"] = 5
    config["linux"]["namespaces"] = "pid"
    write(bundle, json.dumps(config))
    assert sorted(problems_of(bundle)) == [("/linux/namespaces", "'pid' is not of type 'array'"),
                                           ("/process/cwd", "5 is not of type 'string'")]


def test_missing_rootfs_is_reported(tmp_path):
    write(tmp_path, json.dumps(runc_config()))
    [(where, message)] = problems_of(tmp_path)
    assert where == "/root/path" and "No such file or directory" in message


def test_cli_line_format(bundle):
    config = runc_config()
    config["process"]["args"] = "x"
    write(bundle, json.dumps(config))
    with pytest.raises(ConfigError) as info:
        load_config(str(bundle))
    assert info.value.lines() == ["config.json: /process/args: 'x' is not of type 'array'"]


def test_lone_surrogates_are_refused_with_their_pointer():
    from pyrunc.errors import ConfigError
    from pyrunc.spec.load import parse_config

    try:
        parse_config(b'{"linux": {"seccomp": {"syscalls": [{"names": ["\\ud800"]}]}}}')
    except ConfigError as err:
        assert err.problems[0][0] == "/linux/seccomp/syscalls/0/names/0"
        assert "surrogate" in err.problems[0][1]
    else:
        raise AssertionError("a lone surrogate was accepted")
    assert parse_config(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001F600"}
