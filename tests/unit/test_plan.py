"""`pyrunc plan` on crafted bundles: the rootfs model, the problems, the steps, the CLI.

Nothing here makes a container: the plan makes nothing (the differential test against create,
as root, is tests/integration/test_plan_differential.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pyrunc.cli import main
from pyrunc.cli.spec import default_config
from pyrunc.options import CreateOptions
from pyrunc.process.init import STEPS
from pyrunc.process.plan import after_exec, plan_create, render_text
from pyrunc.rootfs import plan as rp
from pyrunc.rootfs.mounts import MountInfo
from pyrunc.security import capabilities

HOST = [MountInfo("1 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda rw")]


def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp"):
        (root / d).mkdir(parents=True)
    sleep = root / "bin" / "sleep"
    sleep.write_text("#!/bin/sh\n")
    sleep.chmod(0o755)
    (root / "bin" / "sh").symlink_to("sleep")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n")
    return root


def ctx(root: Path, config: dict, **kw) -> rp.Context:
    args = dict(rootfs=str(root), bundle=str(root.parent), config=config, own_mount_ns=True, userns=False,
                new_netns=True, new_ipcns=True, cgroupns=True, idmapped=set(), cgroup_paths={}, no_pivot=False)
    args.update(kw)
    return rp.Context(**args)


def table(plan: rp.RootfsPlan) -> list[tuple[str, str, str]]:
    return [(e.point, e.fstype, rp.show(e.flags)) for e in plan.view.entries]


# -- the model of the container's tree ---------------------------------------------------------

def test_resolution_stays_inside_the_root(tmp_path):
    root = rootfs(tmp_path)
    (root / "up").symlink_to("/../../../etc")  # absolute and climbing: still the container's /etc
    (root / "dangling").symlink_to("/made/here")
    (root / "loop").symlink_to("loop")
    (root / "file").write_text("")
    view = rp.View(HOST)
    view.add(rp.Entry("/", "ext4", str(root), set(), step="s", origin="root", host=str(root)))
    assert view.resolve("/up/passwd") == "/etc/passwd"
    assert view.resolve("/tmp/../../..//bin/sh") == "/bin/sleep"
    assert view.resolve("/dangling/x", "dir") == "/made/here/x"
    assert str(root / "made") in view.creates and not (root / "made").exists()  # planned, not made
    for path, errno in (("/loop/x", 40), ("/file/x", 20), ("/nope", 2)):
        with pytest.raises(OSError) as e:
            view.resolve(path)
        assert e.value.errno == errno


def test_mount_table_in_order_with_flags(tmp_path):
    root = rootfs(tmp_path)
    src = tmp_path / "data"
    (src / "inner").mkdir(parents=True)
    config = default_config(False)
    config["root"]["path"] = str(root)
    config["process"]["terminal"] = False
    config["mounts"] = [m for m in config["mounts"] if m["type"] != "cgroup"] + [
        {"destination": "/data", "type": "bind", "source": str(src), "options": ["rbind", "ro", "nosuid"]},
        {"destination": "/data/inner", "type": "tmpfs", "source": "tmpfs", "options": ["noatime"]},
        {"destination": "/data/inner", "type": "tmpfs", "source": "tmpfs", "options": ["remount", "ro"]},
    ]
    config["linux"]["readonlyPaths"] = ["/data"]
    config["linux"]["maskedPaths"] = ["/data/inner"]
    plan = rp.plan_rootfs(ctx(root, config), HOST)
    assert plan.problems == []
    got = table(plan)
    assert got[0] == ("/", "ext4", "ro,relatime")  # root.readonly, remounted last
    assert got[1:7] == [("/proc", "proc", "rw,relatime"), ("/dev", "tmpfs", "rw,nosuid"),
                        ("/dev/pts", "devpts", "rw,nosuid,noexec,relatime"),
                        ("/dev/shm", "tmpfs", "rw,nosuid,nodev,noexec,relatime"),
                        ("/dev/mqueue", "mqueue", "rw,nosuid,nodev,noexec,relatime"),
                        ("/sys", "sysfs", "ro,nosuid,nodev,noexec,relatime")]
    assert got[7:] == [("/data", "ext4", "ro,nosuid,relatime"), ("/data/inner", "tmpfs", "ro,noatime"),
                       ("/data", "ext4", "ro,nosuid,relatime"),  # readonlyPaths: a read-only copy ...
                       ("/data/inner", "tmpfs", "ro,noatime"),  # ... and its submount along
                       ("/data/inner", "tmpfs", "ro,relatime")]  # the mask over the directory
    steps = {e.step for e in plan.view.entries}
    assert steps == {"prepare_rootfs", "mount_filesystems", "finish_rootfs"}


def test_every_refusal_is_collected(tmp_path):
    root = rootfs(tmp_path)
    (root / "linkproc").symlink_to("/tmp")
    config = default_config(False)
    config["root"]["path"] = str(root)
    config["mounts"] = [
        {"destination": "/a", "type": "bind", "source": str(tmp_path / "missing")},
        {"destination": "/b", "type": "nosuchfs", "source": "x"},
        {"destination": "/linkproc", "type": "proc", "source": "proc"},
        {"destination": "/c", "type": "tmpfs", "source": "tmpfs", "options": ["remount"]},
        {"destination": "/proc/self/x", "type": "tmpfs", "source": "tmpfs"},
    ]
    config["linux"]["maskedPaths"] = ["/etc/passwd"]  # /dev/null below is a regular file: refused
    (root / "dev" / "null").write_text("")
    plan = rp.plan_rootfs(ctx(root, config), HOST)
    where = [w for w, _ in plan.problems]
    assert where == ["/mounts/0", "/mounts/1", "/mounts/2", "/mounts/3", "/mounts/4", "/linux/maskedPaths"]
    text = " | ".join(c for _, c in plan.problems)
    for piece in ("No such file or directory", "No such device", "ordinary directory", "Invalid argument",
                  "inside /proc", "not the null device"):
        assert piece in text


def test_devices_in_a_user_namespace_are_bound(tmp_path):
    root = rootfs(tmp_path)
    (root / "dev" / "zero").write_text("")  # an image's own entry is kept
    config = default_config(False)
    config["root"]["path"] = str(root)
    config["mounts"] = []
    config["linux"]["maskedPaths"] = config["linux"]["readonlyPaths"] = []
    plan = rp.plan_rootfs(ctx(root, config, userns=True), HOST)
    how = {d["path"]: d["how"] for d in plan.devices}
    assert how["/dev/zero"].startswith("kept")
    assert how["/dev/null"].startswith("bind of the host's /dev/null")
    assert [e.point for e in plan.view.entries if e.step == "create_devices"] == [
        "/dev/null", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]


def test_flag_rules():
    assert rp.words(0) == {"relatime"}
    assert rp.remounted({"relatime", "nosuid"}, 0x1000 | 0x20 | 0x1, locked=False) == {"ro", "relatime"}
    assert rp.remounted({"noatime", "nodev"}, 0x1000 | 0x20, locked=True) == {"noatime", "nodev"}
    assert rp.with_attrs({"relatime"}, 0x10 | 0x1, 0x70) == {"noatime", "ro"}
    assert rp.changed_propagation("private", "slave") == "private"
    assert rp.changed_propagation("shared", "slave") == "slave"


# -- the whole plan ------------------------------------------------------------------------------

def bundle(tmp_path: Path, **changes) -> Path:
    b = tmp_path / "bundle"
    root = rootfs(b)
    config = default_config(False)
    config["root"]["path"] = "rootfs"
    config["process"].update(terminal=False, args=["sleep", "1"])
    config["linux"]["cgroupsPath"] = f"/pyrunc-unit-plan-{os.getpid()}"
    for key, value in changes.items():
        config[key] = value
    (b / "config.json").write_text(json.dumps(config))
    assert root.is_dir()
    return b


def test_plan_names_every_step_in_order_and_makes_nothing(tmp_path):
    b = bundle(tmp_path)
    doc = plan_create(str(b), "u1", str(tmp_path / "state"), CreateOptions(bundle=str(b)))
    assert doc["problems"] == [], doc["problems"]
    init = [s["step"] for s in doc["steps"] if s["stage"] == "init"]
    assert init == [fn.__name__ for fn in STEPS]  # a new init step shows up by itself
    assert [s["stage"] for s in doc["steps"]][:1] == ["parent"]
    assert doc["process"]["executable"] == "/bin/sleep" and doc["process"]["env"]["HOME"] == "/root"
    assert [r["action"] for r in doc["namespaces"]] == ["host", "new", "new", "new", "new", "new", "new", "host"]
    assert doc["capabilities"]["sets"]["bounding"] == ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
    assert doc["cgroup"]["mkdir"] and not any(os.path.exists(d) for d in doc["cgroup"]["mkdir"])
    assert not (tmp_path / "state").exists()
    text = render_text(doc)
    assert "mount_filesystems" in text and "the container's mount table" in text


def test_plan_collects_what_create_would_refuse(tmp_path):
    b = bundle(tmp_path)
    config = json.loads((b / "config.json").read_text())
    config["process"]["args"] = ["no-such-program"]
    config["mounts"].append({"destination": "/x", "type": "bind", "source": "/no/such/source"})
    config["linux"]["sysctl"] = {"net.ipv4.no_such_knob": "1"}
    config["linux"]["namespaces"].append({"type": "time", "path": str(b / "config.json")})
    config["hooks"] = {"createRuntime": [{"path": "/no/such/hook"}], "poststop": [{"path": "/no/such/hook"}]}
    (b / "config.json").write_text(json.dumps(config))
    doc = plan_create(str(b), "u1", str(tmp_path / "state"), CreateOptions(bundle=str(b)))
    where = sorted(w for w, _ in doc["problems"])
    assert where == ["/hooks/createRuntime/0/path", "/linux/namespaces", "/linux/sysctl/net.ipv4.no_such_knob",
                     f"/mounts/{len(config['mounts']) - 1}", "/process/args/0"], doc["problems"]


def test_capabilities_after_execve():
    caps = capabilities.CapPlan({"bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"],
                                 "effective": ["CAP_KILL"], "inheritable": ["CAP_CHOWN"],
                                 "ambient": ["CAP_CHOWN"]}, 40)
    root = after_exec(caps.masks, 0, False)
    assert root["permitted"] == root["effective"] == ["CAP_CHOWN", "CAP_KILL"]  # bounding | inheritable
    assert after_exec(caps.masks, 0, True)["permitted"] == ["CAP_CHOWN", "CAP_KILL"]  # + ambient
    user = after_exec(caps.masks, 1000, False)
    assert user["permitted"] == user["effective"] == user["ambient"] == ["CAP_CHOWN"]


# -- the command -------------------------------------------------------------------------------

def test_cli_plan_json_and_bad_input(tmp_path, capsys):
    b = bundle(tmp_path)
    assert main(["--root", str(tmp_path / "state"), "plan", "-b", str(b), "--format", "json", "c9"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["container"] == "c9" and doc["mounts"][0]["point"] == "/"
    assert main(["--root", str(tmp_path / "state"), "plan", "-b", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No such file or directory" in err[0], err
    (b / "config.json").write_text(json.dumps({"ociVersion": "1.0.0", "process": {"args": "x"},
                                               "mounts": [{"destination": 5}]}))
    assert main(["--root", str(tmp_path / "state"), "plan", "-b", str(b)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 3 and all(line.startswith("config.json: /") for line in err), err


def test_create_dry_run_prints_the_plan_and_creates_nothing(tmp_path, capsys):
    b = bundle(tmp_path)
    config = json.loads((b / "config.json").read_text())
    config["mounts"].append({"destination": "/x", "type": "bind", "source": "/no/such/source"})
    (b / "config.json").write_text(json.dumps(config))
    assert main(["--root", str(tmp_path / "state"), "create", "--dry-run", "-b", str(b), "d1"]) == 1
    out = capsys.readouterr().out
    assert "problems (create would fail):" in out and "/no/such/source" in out
    assert not (tmp_path / "state").exists()


def test_the_readme_plan_block_runs_as_written(tmp_path):
    """README's "What is a container?" block, with a rootfs in demo/rootfs as its comment asks."""
    import re
    import shutil
    import subprocess

    if not shutil.which("jq"):
        pytest.skip("jq is not installed")
    repo = Path(__file__).resolve().parents[2]
    text = (repo / "README.md").read_text()
    section = text.split("## What is a container? Ask `pyrunc plan`", 1)[1].split("\n## ", 1)[0]
    script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    root = rootfs(tmp_path / "demo")
    (root / "bin" / "echo").write_text("#!/bin/sh\n")
    (root / "bin" / "echo").chmod(0o755)
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    (wrapper / "pyrunc").write_text(f'#!/bin/sh\nexec {repo / ".venv/bin/pyrunc"} --root {tmp_path / "state"} "$@"\n')
    (wrapper / "pyrunc").chmod(0o755)
    env = dict(os.environ, PATH=f"{wrapper}:{os.environ['PATH']}")
    p = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert "mount_filesystems" in p.stdout and "execve /bin/echo ['hello']" in p.stdout
    assert not (tmp_path / "state").exists()
