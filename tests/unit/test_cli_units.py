"""Pure pieces of the CLI and state store: no root, no containers."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest

from pyrunc.cli.args import Opt, parse
from pyrunc.errors import ConfigError, InvalidID, UsageError
from pyrunc.log import Logger, json_string, rfc3339
from pyrunc.signals import parse_signal
from pyrunc.state import Record, StateDir, check_id, write_pid_file

OPTS = [Opt("bundle", True, "b", default="."), Opt("detach", short="d"), Opt("no-subreaper"),
        Opt("env", True, "e", multi=True)]


def test_parse_runc_dialect():
    p = parse(["-b", "x", "-d", "-no-subreaper", "--env=A=1", "-e", "B=2", "id"], OPTS)
    assert p.opts == {"bundle": "x", "detach": True, "no_subreaper": True, "env": ["A=1", "B=2"]}
    assert p.args == ["id"]


def test_parse_bool_with_value_and_payload_stop():
    p = parse(["--detach=false", "id", "-d", "sh"], OPTS, stop_at_positional=True)
    assert p.opts["detach"] is False
    assert p.args == ["id", "-d", "sh"]


def test_parse_errors():
    with pytest.raises(UsageError, match="flag provided but not defined: --nope"):
        parse(["--nope"], OPTS)
    with pytest.raises(UsageError, match="flag needs an argument"):
        parse(["--bundle"], OPTS)


@pytest.mark.parametrize("raw,num", [("9", 9), ("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("sigkill", 9),
                                     ("TERM", 15), ("15", 15), ("WINCH", 28), ("28", 28),
                                     ("RTMIN+1", signal.SIGRTMIN + 1), ("SIGRTMAX", signal.SIGRTMAX)])
def test_signal_names(raw, num):
    assert parse_signal(raw) == num


@pytest.mark.parametrize("raw", ["NOPE", "0", "99", "", "-1"])
def test_unknown_signals(raw):
    with pytest.raises(UsageError, match="unknown signal"):
        parse_signal(raw)


@pytest.mark.parametrize("cid", ["a", "A-b_c.d+e", "x" * 1024])
def test_good_ids(cid):
    check_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "../x", "a b", "a\nb", "a\0b", "é", "x" * 1025])
def test_bad_ids(cid):
    with pytest.raises(InvalidID):
        check_id(cid)


def test_rfc3339_has_offset():
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$", rfc3339())


@pytest.mark.parametrize("s", ['plain', 'quo"te', "back\\slash", "new\nline\ttab\x01", "ünï€"])
def test_json_string_matches_json(s):
    assert json.loads(json_string(s)) == s


def test_json_log_records_are_json(tmp_path):
    log = Logger(str(tmp_path / "l"), "json", debug=True)
    log.debug("d")
    log.warning('w "x"')
    recs = [json.loads(line) for line in (tmp_path / "l").read_text().splitlines()]
    assert [r["level"] for r in recs] == ["debug", "warning"]
    assert recs[1]["msg"] == 'w "x"'


def test_state_save_is_atomic_and_private(tmp_path):
    sd = StateDir(str(tmp_path / "root"), "c1")
    sd.reserve()
    record = Record("c1", bundle="/b", pid=1)
    record.annotations = {"a": "b"}
    sd.save(record)
    loaded = sd.load()
    assert loaded.to_dict() == record.to_dict()
    assert (loaded.id, loaded.pid, loaded.bundle, loaded.annotations) == ("c1", 1, "/b", {"a": "b"})
    assert os.stat(os.path.join(sd.path, "state")).st_mode & 0o777 == 0o600
    assert sorted(os.listdir(sd.path)) == [".recover", "state"]
    assert os.stat(sd.root).st_mode & 0o777 == 0o700
    sd.unlock()
    sd.remove()
    assert not os.path.exists(sd.path)


def test_corrupt_state_reports(tmp_path):
    sd = StateDir(str(tmp_path), "c1")
    os.mkdir(sd.path)
    with open(os.path.join(sd.path, "state"), "w") as f:
        f.write("{trunc")
    with pytest.raises(Exception, match="corrupt"):
        sd.load()


def test_pid_file_has_no_newline(tmp_path):
    p = tmp_path / "pid"
    write_pid_file(str(p), 1234)
    assert p.read_bytes() == b"1234"
    write_pid_file(str(p), 99)
    assert p.read_bytes() == b"99"
    assert os.listdir(tmp_path) == ["pid"]


def test_config_error_lines():
    e = ConfigError([("/process/args", "'x' is not of type 'array'"), ("", "bad")])
    assert e.lines() == ["config.json: /process/args: 'x' is not of type 'array'", "config.json: bad"]


@pytest.mark.parametrize("obj", [None, True, False, 0, -5, 1.5, "s\"\\\n", [], {}, [1, [2, {}]],
                                 {"a": {"b": [1, "x", None]}, "ü": True}])
def test_jsonout_matches_json(obj):
    from pyrunc.jsonout import dumps

    assert json.loads(dumps(obj)) == obj
    assert dumps(obj, indent=2) == json.dumps(obj, indent=2, ensure_ascii=False)
