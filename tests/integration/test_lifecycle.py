"""create / start / state / kill / delete / run / list with real containers, pyrunc and runc alike."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from tests.conftest import mounts_snapshot, run_to_files

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def wait_status(rt, cid, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        p = rt("state", cid)
        if p.returncode == 0:  # a container being created does not exist yet
            st = json.loads(p.stdout)
            if st["status"] == want:
                return st
        time.sleep(0.02)
    raise AssertionError(f"{rt.name}: {cid} never reached {want}: {st}")


def test_run_passes_output_and_exit_status(runtime, bundle):
    bundle.config["process"]["args"] = ["sh", "-c", "echo out; echo err >&2; exit 3"]
    p = runtime("run", "c1", bundle=bundle)
    assert p.returncode == 3, p.stderr
    assert p.stdout == "out\n"
    assert p.stderr == "err\n"
    assert not (runtime.root / "c1").exists()


def test_run_status_of_a_signalled_process(runtime, bundle):
    bundle.config["process"]["args"] = ["sleep", "100"]
    bundle.write()
    proc = subprocess.Popen(runtime.cmd("run", "c1"), cwd=bundle.path)
    runtime.ids.add("c1")
    wait_status(runtime, "c1", "running")
    runtime("kill", "c1", "KILL", check=True)
    assert proc.wait(timeout=10) == 128 + 9


def test_create_start_state_kill_delete(runtime, bundle, tmp_path):
    bundle.config["process"]["args"] = ["sleep", "100"]
    bundle.config["annotations"] = {"org.example.key": "value"}
    pidfile = tmp_path / "init.pid"
    p = runtime("create", "--pid-file", str(pidfile), "c1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and p.stderr == ""
    pid_text = pidfile.read_text()
    assert pid_text.isdigit(), "pid file holds the decimal pid without a newline"
    st = runtime.state("c1")
    assert st["status"] == "created"
    assert st["pid"] == int(pid_text)
    assert st["id"] == "c1"
    assert st["bundle"] == str(bundle.path)
    assert RFC3339.match(st["created"]), st["created"]
    assert st["annotations"] == {"org.example.key": "value"}
    if runtime.name == "pyrunc":  # the spec version the state follows (runc says 1.0.2-dev)
        assert st["ociVersion"] == "1.3.0"

    assert runtime("start", "c1").returncode == 0
    st = runtime.state("c1")
    assert st["status"] == "running"
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"

    p = runtime("start", "c1")
    assert p.returncode == 1 and "cannot start an already running container" in p.stderr

    p = runtime("delete", "c1")
    assert p.returncode == 1 and "not stopped" in p.stderr

    assert runtime("kill", "c1", "KILL").returncode == 0
    st = wait_status(runtime, "c1", "stopped")
    assert st["pid"] == 0
    p = runtime("kill", "c1", "TERM")
    assert p.returncode == 1 and "container not running" in p.stderr
    p = runtime("start", "c1")
    assert p.returncode == 1 and "cannot start a container that has stopped" in p.stderr
    assert runtime("delete", "c1").returncode == 0
    p = runtime("state", "c1")
    assert p.returncode == 1 and "does not exist" in p.stderr
    assert not (runtime.root / "c1").exists()


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "kill", "9", "sigkill"])
def test_kill_accepts_runc_signal_spellings(runtime, bundle, sig):
    bundle.config["process"]["args"] = ["sleep", "100"]
    runtime("run", "-d", "c1", bundle=bundle, check=True)
    assert runtime("kill", "c1", sig).returncode == 0
    wait_status(runtime, "c1", "stopped")


def test_kill_unknown_signal(pyrunc, bundle):
    bundle.config["process"]["args"] = ["sleep", "100"]
    pyrunc("run", "-d", "c1", bundle=bundle, check=True)
    p = pyrunc("kill", "c1", "NOPE")
    assert p.returncode == 1 and 'unknown signal "NOPE"' in p.stderr


def test_sigterm_reaches_a_running_shell_trap(runtime, bundle):
    bundle.config["process"]["args"] = ["sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.05; done"]
    runtime("run", "-d", "c1", bundle=bundle, check=True)
    time.sleep(0.3)
    assert runtime("kill", "c1").returncode == 0
    wait_status(runtime, "c1", "stopped")


def test_delete_created_container_kills_the_waiting_init(runtime, bundle):
    runtime("create", "c1", bundle=bundle, check=True)
    pid = runtime.state("c1")["pid"]
    assert runtime("delete", "c1").returncode == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[1][0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.02)
    else:
        raise AssertionError("init still alive after delete")


def test_delete_force_of_running_and_unknown(runtime, bundle):
    bundle.config["process"]["args"] = ["sleep", "100"]
    runtime("run", "-d", "c1", bundle=bundle, check=True)
    assert runtime("delete", "--force", "c1").returncode == 0
    assert runtime("state", "c1").returncode == 1
    assert runtime("delete", "--force", "nope").returncode == 0
    p = runtime("delete", "nope")
    assert p.returncode == 1 and "does not exist" in p.stderr


def test_list_formats(runtime, bundle):
    bundle.config["process"]["args"] = ["sleep", "100"]
    runtime("create", "a1", bundle=bundle, check=True)
    runtime("run", "-d", "b2", bundle=bundle, check=True)
    q = runtime("list", "-q", check=True).stdout.split()
    assert q == ["a1", "b2"]
    docs = json.loads(runtime("list", "--format", "json", check=True).stdout)
    assert [(d["id"], d["status"]) for d in docs] == [("a1", "created"), ("b2", "running")]
    table = runtime("list", check=True).stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert len(table) == 3


def test_list_empty_json(pyrunc):
    pyrunc.root.mkdir()
    out = pyrunc("list", "--format", "json", check=True).stdout
    assert json.loads(out) in (None, [])


def test_same_id_twice(runtime, bundle):
    runtime("create", "c1", bundle=bundle, check=True)
    p = runtime("create", "c1", bundle=bundle)
    assert p.returncode == 1 and "already exists" in p.stderr


def test_start_releases_init_to_the_user_program(runtime, bundle, tmp_path):
    out = tmp_path / "out"
    bundle.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(tmp_path),
                                    "options": ["rbind"]})
    bundle.config["process"]["args"] = ["sh", "-c", "echo started > /out/out"]
    runtime("create", "c1", bundle=bundle, check=True)
    time.sleep(0.2)
    assert not out.exists(), "the program must not run before start"
    runtime("start", "c1", check=True)
    deadline = time.monotonic() + 5
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert out.read_text() == "started\n"


def test_no_process_left_and_mounts_unchanged(pyrunc, bundle):
    before = mounts_snapshot(str(bundle.path.parent))
    bundle.config["process"]["args"] = ["true"]
    for i in range(3):
        pyrunc("run", f"c{i}", bundle=bundle, check=True)
    assert mounts_snapshot(str(bundle.path.parent)) == before
    # No process of ours survives: none is still in (or named after) this bundle's cgroup.
    tag = bundle.config["linux"]["cgroupsPath"]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                assert tag not in f.read(), f"process {pid} left in the container's cgroup"
        except FileNotFoundError:
            pass


def test_log_format_json_records_errors(pyrunc, bundle, tmp_path):
    log = tmp_path / "log.json"
    p = pyrunc("start", "missing", log=str(log), log_format="json")
    assert p.returncode == 1
    assert p.stderr.strip().endswith("container does not exist")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[-1]["level"] == "error"
    assert "does not exist" in records[-1]["msg"]
    assert RFC3339.match(records[-1]["time"])


def test_list_with_a_missing_root_is_empty(runtime):
    p = runtime("list", "-q")
    assert p.returncode == 0 and p.stdout == ""


def test_invalid_log_format(pyrunc):
    p = pyrunc("--log-format", "xml", "list")
    assert p.returncode == 1 and "invalid log-format: xml" in p.stderr


def test_version_and_help(pyrunc):
    p = pyrunc("--version")
    assert p.returncode == 0 and p.stdout.startswith("pyrunc version ")
    assert pyrunc("--help").returncode == 0


def test_spec_writes_a_config_that_runs(pyrunc, tmp_path, rootfs_template):
    import shutil

    d = tmp_path / "b"
    d.mkdir()
    shutil.copytree(rootfs_template, d / "rootfs", symlinks=True)
    subprocess.run(pyrunc.cmd("spec", "--bundle", str(d)), check=True)
    p = subprocess.run(pyrunc.cmd("spec", "--bundle", str(d)), capture_output=True, text=True)
    assert p.returncode == 1 and "File config.json exists. Remove it first" in p.stderr
    cfg = json.loads((d / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "hostname"]
    (d / "config.json").write_text(json.dumps(cfg))
    p = run_to_files(pyrunc.cmd("run", "s1"), cwd=d, timeout=60)
    pyrunc.ids.add("s1")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "pyrunc\n"


def test_run_forwards_signals(pyrunc, bundle):
    bundle.config["process"]["args"] = ["sh", "-c", "trap 'exit 7' USR1; echo ready; while :; do sleep 0.05; done"]
    bundle.write()
    proc = subprocess.Popen(pyrunc.cmd("run", "c1"), cwd=bundle.path, stdout=subprocess.PIPE, text=True)
    pyrunc.ids.add("c1")
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGUSR1)
    assert proc.wait(timeout=10) == 7


def test_run_keep_leaves_a_stopped_container(pyrunc, bundle):
    pyrunc("run", "--keep", "c1", bundle=bundle, check=True)
    assert pyrunc.state("c1")["status"] == "stopped"
    pyrunc("delete", "c1", check=True)


def test_stdin_passes_through(runtime, bundle):
    bundle.config["process"]["args"] = ["sh", "-c", "read line; echo got:$line"]
    bundle.write()
    p = run_to_files(runtime.cmd("run", "c1"), cwd=bundle.path, input="hello\n", timeout=30)
    runtime.ids.add("c1")
    assert p.stdout == "got:hello\n"


def test_state_of_stopped_container_after_exit(runtime, bundle):
    bundle.config["process"]["args"] = ["true"]
    runtime("run", "-d", "c1", bundle=bundle, check=True)
    st = wait_status(runtime, "c1", "stopped")
    assert st["pid"] == 0
    assert runtime("delete", "c1").returncode == 0


def test_pid_file_relative_to_callers_cwd(pyrunc, bundle, tmp_path):
    sub = tmp_path / "cwd"
    sub.mkdir()
    bundle.write()
    p = run_to_files(pyrunc.cmd("create", "--bundle", str(bundle.path), "--pid-file", "p.pid", "c1"),
                     cwd=sub, timeout=60)
    pyrunc.ids.add("c1")
    assert p.returncode == 0, p.stderr
    assert (sub / "p.pid").read_text() == str(pyrunc.state("c1")["pid"])


def test_state_dir_permissions(pyrunc, bundle):
    pyrunc("create", "c1", bundle=bundle, check=True)
    assert oct(os.stat(pyrunc.root).st_mode & 0o777) == "0o700"
