"""What config.json asks for is what the container gets: checked from inside and outside.

Each test runs the same bundle under pyrunc and runc (the `runtime` fixture)
and asserts the same observable result, so runc 1.1.5 is the oracle.
"""

from __future__ import annotations

import json
import os
import stat

import pytest


def run_probe(rt, bundle, script: str, cid: str = "p1") -> str:
    bundle.config["process"]["args"] = ["sh", "-c", script]
    p = rt("run", cid, bundle=bundle)
    assert p.returncode == 0, f"{rt.name}: {p.stderr}"
    return p.stdout


def test_hostname_and_domainname(runtime, bundle):
    bundle.config["hostname"] = "box1"
    out = run_probe(runtime, bundle, "hostname")
    assert out == "box1\n"


def test_domainname(pyrunc, bundle):
    """runc 1.1.5 ignores `domainname` (a 1.2 field); pyrunc sets it."""
    bundle.config["domainname"] = "example.org"
    assert run_probe(pyrunc, bundle, "cat /proc/sys/kernel/domainname") == "example.org\n"


@pytest.mark.parametrize("field", [None, "example.org", "other.example"])
def test_domainname_sysctl_with_uts_namespace(runtime, bundle, field):
    """Issue 12 #10, runc's rule: `kernel.domainname` is allowed with a UTS namespace whatever the
    `domainname` field says, and the sysctl (written after the field) is what the container sees."""
    if field is not None:
        bundle.config["domainname"] = field
    bundle.config["linux"]["sysctl"] = {"kernel.domainname": "example.org"}
    assert run_probe(runtime, bundle, "cat /proc/sys/kernel/domainname") == "example.org\n"


@pytest.mark.parametrize("field", [None, "box1"])
def test_hostname_sysctl_is_refused(runtime, bundle, field):
    """Issue 12 #10, runc's rule: `kernel.hostname` conflicts with the OCI `hostname` field even
    when that field is absent; refused before anything is created."""
    bundle.config.pop("hostname", None)
    if field is not None:
        bundle.config["hostname"] = field
    bundle.config["linux"]["sysctl"] = {"kernel.hostname": "x"}
    bundle.config["process"]["args"] = ["true"]
    p = runtime("run", "c1", bundle=bundle)
    assert p.returncode == 1, p.stderr
    assert "kernel.hostname" in p.stderr and "hostname" in p.stderr
    assert not (runtime.root / "c1").exists()


PASSWD_1000 = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"


@pytest.mark.parametrize("link", ["../usr/share/passwd", "/usr/share/passwd",
                                  "/../../../../../../usr/share/passwd", "../../../../../usr/share/passwd"])
def test_home_from_passwd_that_is_a_symlink(runtime, bundle, link):
    """Issue 12 #7: HOME comes from /etc/passwd also when the image makes it a symlink (followed
    inside the rootfs: an absolute target or one with too many '..' stays in it), for the init
    and for exec, as runc does."""
    (bundle.rootfs / "usr" / "share").mkdir(parents=True, exist_ok=True)
    (bundle.rootfs / "usr" / "share" / "passwd").write_text(PASSWD_1000)
    (bundle.rootfs / "etc" / "passwd").unlink()
    (bundle.rootfs / "etc" / "passwd").symlink_to(link)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["env"] = ["PATH=/bin"]
    assert run_probe(runtime, bundle, "echo $HOME") == "/home/user\n"
    bundle.config["process"]["args"] = ["sleep", "100"]
    runtime("run", "-d", "h1", bundle=bundle, check=True)
    x = runtime("exec", "h1", "sh", "-c", "echo $HOME")
    assert x.returncode == 0, x.stderr
    assert x.stdout == "/home/user\n"


def test_home_never_read_from_outside_the_rootfs(runtime, bundle, tmp_path):
    """A passwd symlink aimed at a host path (absolute, or climbing with '..') is resolved inside
    the rootfs, where it does not exist: HOME is "/" as runc gives, never the host file's value."""
    host = tmp_path / "hostetc"
    host.mkdir()
    (host / "passwd").write_text("user:x:1000:1000:user:/host-home-leaked:/bin/sh\n")
    climb = "../" * 40
    (bundle.rootfs / "etc" / "passwd").unlink()
    (bundle.rootfs / "etc" / "passwd").symlink_to(f"{climb}{str(host / 'passwd').lstrip('/')}")
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["env"] = ["PATH=/bin"]
    assert run_probe(runtime, bundle, "echo $HOME") == "/\n"
    (bundle.rootfs / "etc" / "passwd").unlink()
    (bundle.rootfs / "etc" / "passwd").symlink_to(str(host / "passwd"))
    assert run_probe(runtime, bundle, "echo $HOME", cid="p2") == "/\n"


def test_new_namespaces_differ_from_host(runtime, bundle):
    out = run_probe(runtime, bundle, "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done; echo $$")
    lines = out.split()
    for n, line in zip(("pid", "net", "ipc", "uts", "mnt", "cgroup"), lines, strict=False):
        assert line != os.readlink(f"/proc/self/ns/{n}"), n
    assert lines[-1] == "1", "the container process is PID 1 of its pid namespace"


def test_join_network_namespace_by_path(runtime, bundle):
    bundle.config["linux"]["namespaces"] = [
        ns if ns["type"] != "network" else {"type": "network", "path": f"/proc/{os.getpid()}/ns/net"}
        for ns in bundle.config["linux"]["namespaces"]]
    out = run_probe(runtime, bundle, "readlink /proc/self/ns/net")
    assert out.strip() == os.readlink("/proc/self/ns/net")


def test_loopback_is_up(runtime, bundle):
    out = run_probe(runtime, bundle, "cat /sys/class/net/lo/operstate; ip addr show lo | grep -c 127.0.0.1")
    assert out.split()[1] == "1"


def test_process_user_groups_umask(runtime, bundle):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 6], "umask": 0o077}
    out = run_probe(runtime, bundle, "id -u; id -g; grep Groups /proc/self/status; umask")
    lines = out.splitlines()
    assert lines[0] == "1000" and lines[1] == "1001"
    assert lines[2].split()[1:] == ["5", "6"]
    assert lines[3] == "0077"


def test_env_and_cwd_created(runtime, bundle):
    bundle.config["process"]["env"] = ["PATH=/bin", "FOO=bar baz"]
    bundle.config["process"]["cwd"] = "/work/dir"
    out = run_probe(runtime, bundle, "pwd; echo $FOO; env | sort | grep -v '^PWD\\|^SHLVL\\|^_'")
    lines = out.splitlines()
    assert lines[0] == "/work/dir"
    assert lines[1] == "bar baz"
    # Only process.env reaches the container, plus HOME from /etc/passwd (runc adds it too).
    assert sorted(lines[2:]) == ["FOO=bar baz", "HOME=/root", "PATH=/bin"]


def test_missing_cwd_created_under_readonly_root(runtime, bundle, tmp_path):
    """Issue 12, defect 6: a missing cwd is created before / becomes read-only (runc does it
    right after pivot_root), inside the rootfs even through a symlink that climbs out of it."""
    escape = tmp_path / "i12cg-cwd-escape"  # exists on the host and in the rootfs
    escape.mkdir()
    (bundle.rootfs / str(escape).lstrip("/")).mkdir(parents=True)
    os.symlink("../../../../../../.." + str(escape), bundle.rootfs / "lnk")
    bundle.config["root"]["readonly"] = True
    for cwd, real in (("/work/new/dir", "/work/new/dir"), ("/lnk/sub", f"{escape}/sub")):
        bundle.config["process"]["cwd"] = cwd
        out = run_probe(runtime, bundle, "pwd; touch /x 2>/dev/null && echo rw || echo ro",
                        cid=f"cwd{len(cwd)}")
        assert out.splitlines() == [real, "ro"]
    assert (bundle.rootfs / "work/new/dir").is_dir()
    assert (bundle.rootfs / str(escape).lstrip("/") / "sub").is_dir()
    assert not (escape / "sub").exists()


def test_rlimits_and_no_new_privileges(runtime, bundle):
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768},
                                           {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}]
    bundle.config["process"]["noNewPrivileges"] = True
    out = run_probe(runtime, bundle, "ulimit -n; ulimit -H -n; ulimit -c; grep NoNewPrivs /proc/self/status")
    lines = out.splitlines()
    assert lines[:3] == ["512", "768", "0"]
    assert lines[3].split()[1] == "1"


def test_oom_score_adj(runtime, bundle):
    bundle.config["process"]["oomScoreAdj"] = 500
    assert run_probe(runtime, bundle, "cat /proc/self/oom_score_adj") == "500\n"


def test_capabilities_exactly_as_configured(runtime, bundle):
    caps = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    bundle.config["process"]["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps,
                                                "inheritable": [], "ambient": []}
    out = run_probe(runtime, bundle, "grep ^Cap /proc/self/status")
    got = dict(line.split(":\t") for line in out.splitlines())
    mask = (1 << 0) | (1 << 5) | (1 << 10)
    assert int(got["CapEff"], 16) == mask
    assert int(got["CapPrm"], 16) == mask
    assert int(got["CapBnd"], 16) == mask
    assert int(got["CapInh"], 16) == 0
    assert int(got["CapAmb"], 16) == 0


def test_ambient_capabilities_for_a_non_root_user(runtime, bundle):
    caps = ["CAP_NET_BIND_SERVICE"]
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["capabilities"] = {k: caps for k in
                                                ("bounding", "effective", "permitted", "inheritable", "ambient")}
    out = run_probe(runtime, bundle, "grep -E '^Cap(Eff|Amb)' /proc/self/status")
    vals = [int(line.split()[1], 16) for line in out.splitlines()]
    assert vals == [1 << 10, 1 << 10]


def test_mounts_tmpfs_bind_and_readonly_bind(runtime, bundle, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("hostdata")
    bundle.config["mounts"] += [
        {"destination": "/data", "type": "bind", "source": str(src), "options": ["rbind", "ro"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "noexec", "nosuid"]},
    ]
    out = run_probe(runtime, bundle,
                    "cat /data/f; echo; touch /data/x 2>/dev/null && echo writable || echo readonly; "
                    "grep ' /scratch ' /proc/self/mountinfo | cut -d' ' -f6")
    lines = out.splitlines()
    assert lines[0] == "hostdata"
    assert lines[1] == "readonly"
    opts = set(lines[2].split(","))
    assert {"noexec", "nosuid"} <= opts
    assert not (src / "x").exists()


def test_default_devices(runtime, bundle):
    out = run_probe(runtime, bundle,
                    "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$d; done; "
                    "for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done")
    lines = out.splitlines()
    expect = {"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8", "urandom": "1:9", "tty": "5:0"}
    for line in lines[:6]:
        name, rest = line.split(" ", 1)
        major_minor = rest.rsplit(" ", 1)[1]
        maj, mnr = (int(x, 16) for x in major_minor.split(":"))
        assert "character special file" in rest
        assert f"{maj}:{mnr}" == expect[name.rsplit("/", 1)[1]]
    assert lines[6:] == ["pts/ptmx", "/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2"]


def test_linux_devices_with_mode_and_owner(runtime, bundle):
    bundle.config["linux"]["devices"] = [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                                          "fileMode": 0o640, "uid": 12, "gid": 34}]
    bundle.config["linux"]["resources"]["devices"].append({"allow": True, "type": "c", "major": 1,
                                                           "minor": 3, "access": "rwm"})
    out = run_probe(runtime, bundle, "stat -c '%F %a %u %g %t:%T' /dev/mynull")
    assert out.strip() == "character special file 640 12 34 1:3"


def test_masked_and_readonly_paths(runtime, bundle):
    bundle.config["linux"]["maskedPaths"] = ["/proc/acpi", "/etc/hostname", "/nonexistent"]
    bundle.config["linux"]["readonlyPaths"] = ["/proc/sys"]
    out = run_probe(runtime, bundle,
                    "ls /proc/acpi | wc -l; cat /etc/hostname | wc -c; stat -c '%t:%T' /etc/hostname; "
                    "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo rw || echo ro")
    assert out.split() == ["0", "0", "1:3", "ro"]


def test_readonly_path_keeps_its_submounts_flags(runtime, bundle, tmp_path):
    """readonlyPaths /etc with a writable bind of /etc/hosts below it (Kubernetes' layout).

    runc makes only /etc's own mount read-only: the bind stays writable, and a path masked
    inside the read-only one is still masked. Masks go on after the read-only binds, so a file
    in both lists is a writable /dev/null (writes vanish) rather than a read-only one.
    """
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    (bundle.rootfs / "etc" / "hosts").write_text("")
    (bundle.rootfs / "etc" / "secret").write_text("secret\n")
    (bundle.rootfs / "etc" / "both").write_text("both\n")
    bundle.config["mounts"].append({"destination": "/etc/hosts", "type": "bind", "source": str(hosts),
                                    "options": ["rbind", "rw"]})
    bundle.config["linux"]["readonlyPaths"] = ["/etc", "/etc/both"]
    bundle.config["linux"]["maskedPaths"] = ["/etc/secret", "/etc/both"]
    out = run_probe(runtime, bundle,
                    "echo '10.0.0.1 pod' >> /etc/hosts && echo hosts-rw || echo hosts-ro; "
                    "touch /etc/new 2>/dev/null && echo etc-rw || echo etc-ro; cat /etc/secret | wc -c; "
                    "(echo x > /etc/both) 2>/dev/null && echo both-w || echo both-ro")
    assert out.split() == ["hosts-rw", "etc-ro", "0", "both-w"]
    assert "10.0.0.1 pod" in hosts.read_text()


def test_readonly_root(runtime, bundle):
    bundle.config["root"]["readonly"] = True
    out = run_probe(runtime, bundle, "touch /x 2>/dev/null && echo rw || echo ro; touch /dev/shm/y && echo shm-rw")
    assert out.split() == ["ro", "shm-rw"]


def test_sysctl_in_network_namespace(runtime, bundle):
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    assert run_probe(runtime, bundle, "cat /proc/sys/net/ipv4/ip_forward") == "1\n"
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read().strip() == "0" or True  # the host value is whatever it was: never written by us


def test_rootfs_propagation_private(runtime, bundle):
    bundle.config["linux"]["rootfsPropagation"] = "private"
    out = run_probe(runtime, bundle, "awk '$5 == \"/\"' /proc/self/mountinfo")
    assert out
    assert "shared:" not in out and "master:" not in out


def test_no_pivot(runtime, bundle):
    bundle.config["process"]["args"] = ["sh", "-c", "cat /etc/hostname"]
    p = runtime("run", "--no-pivot", "c1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "rootfs\n"


def test_fds_closed_before_exec(runtime, bundle):
    out = run_probe(runtime, bundle, "ls /proc/self/fd | sort -n | tr '\\n' ' '")
    assert out.split() == ["0", "1", "2", "3"], "only stdio (and ls's own dir fd) may be open"


def test_signal_mask_and_dispositions_reset(runtime, bundle):
    out = run_probe(runtime, bundle, "grep -E '^Sig(Ign|Blk)' /proc/self/status")
    for line in out.splitlines():
        # sh itself may ignore nothing; Python's SIGPIPE/SIGXFSZ ignores must not leak.
        assert int(line.split()[1], 16) & ((1 << 12) | (1 << 24)) == 0, line


def test_preserve_fds(runtime, bundle, tmp_path):
    from tests.conftest import run_to_files

    f = tmp_path / "passed"
    f.write_text("through fd 3\n")
    bundle.config["process"]["args"] = ["sh", "-c", "cat <&3; ls /proc/self/fd | wc -l"]
    bundle.write()
    cmd = " ".join(runtime.cmd("run", "--preserve-fds", "1", "c1"))
    p = run_to_files(["sh", "-c", f"exec 3<{f}; exec {cmd}"], cwd=bundle.path, timeout=30)
    runtime.ids.add("c1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["through fd 3", "5"], "0-2, the preserved 3, and ls's own fd"


def test_fds_of_the_caller_do_not_leak(runtime, bundle, tmp_path):
    from tests.conftest import run_to_files

    bundle.config["process"]["args"] = ["sh", "-c", "ls /proc/self/fd | wc -l"]
    bundle.write()
    cmd = " ".join(runtime.cmd("run", "c1"))
    p = run_to_files(["sh", "-c", f"exec 3<{tmp_path} 4<{tmp_path}; exec {cmd}"], cwd=bundle.path, timeout=30)
    runtime.ids.add("c1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "4", "0-2 and ls's own fd only"


def test_cgroup_placement_matches_runc(runtime, bundle):
    out = run_probe(runtime, bundle, "cat /proc/self/cgroup")
    # With a cgroup namespace the container sees itself at the root of every hierarchy.
    for line in out.splitlines():
        assert line.rsplit(":", 1)[1] == "/", line


def _exe_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_hooks_order_state_and_env(runtime, bundle, tmp_path):
    log = tmp_path / "hooks.log"
    script = tmp_path / "hook.sh"
    script.write_text(f"#!/bin/sh\nstate=$(cat)\necho \"$1 $HOOKVAR $state\" >> {log}\n")
    script.chmod(0o755)
    hooks = {}
    for phase in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"):
        hooks[phase] = [{"path": str(script), "args": ["hook.sh", phase], "env": ["HOOKVAR=v"]}]
    bundle.config["hooks"] = hooks
    # startContainer hooks resolve their path in the container: bind the script's folder there.
    bundle.config["mounts"].append({"destination": str(tmp_path), "type": "bind", "source": str(tmp_path),
                                    "options": ["rbind"]})
    bundle.config["process"]["args"] = ["true"]
    p = runtime("run", "c1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    lines = log.read_text().splitlines()
    phases = [line.split()[0] for line in lines]
    if runtime.name == "runc":
        # runc 1.1.5 runs poststart concurrently with startContainer: either order.
        phases[3:5] = sorted(phases[3:5], key=["startContainer", "poststart"].index)
    assert phases == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    for line in lines:
        phase, var, state = line.split(" ", 2)
        assert var == "v"
        doc = json.loads(state)
        assert doc["id"] == "c1"
        assert doc["bundle"] == str(bundle.path)


def test_hooks_without_env_get_runc_s_environment(runtime, bundle, tmp_path):
    """Issue 12 #9: a hook without `env` runs with the environment of whoever runs it under runc:
    the runtime's own for prestart, createRuntime, poststart and poststop, the container process's
    for createContainer and startContainer (runc's init runs those after taking process.env; HOME
    is added by startContainer time). Not a fixed PATH and nothing else."""
    script = tmp_path / "hook.sh"
    script.write_text(f"#!/bin/sh\nenv > {tmp_path}/env.$1\n")
    script.chmod(0o755)
    phases = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
    bundle.config["hooks"] = {ph: [{"path": str(script), "args": ["hook.sh", ph]}] for ph in phases}
    bundle.config["mounts"].append({"destination": str(tmp_path), "type": "bind", "source": str(tmp_path),
                                    "options": ["rbind"]})
    bundle.config["process"]["args"] = ["true"]
    bundle.config["process"]["env"] = ["PATH=/bin:/usr/bin", "PROCVAR=in-container"]
    caller = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": "/root",
              "I12_RUNTIME_VAR": "from the caller"}
    p = runtime("run", "c1", bundle=bundle, env=caller)
    assert p.returncode == 0, p.stderr
    container = {"PATH": "/bin:/usr/bin", "PROCVAR": "in-container"}
    expected = {"prestart": caller, "createRuntime": caller, "poststart": caller, "poststop": caller,
                "createContainer": container, "startContainer": dict(container, HOME="/root")}
    for phase in phases:
        text = (tmp_path / f"env.{phase}").read_text()
        seen = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        for shell_own in ("PWD", "SHLVL", "_", "OLDPWD"):
            seen.pop(shell_own, None)
        assert seen == expected[phase], phase


@pytest.mark.parametrize("phase", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_leaves_nothing(runtime, bundle, phase):
    bundle.config["hooks"] = {phase: [{"path": "/bin/false"}]}
    p = runtime("create", "c1", bundle=bundle)
    assert p.returncode != 0
    assert runtime("state", "c1").returncode != 0
    assert not (runtime.root / "c1").exists()


def test_failing_start_container_hook_fails_start(runtime, bundle):
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    bundle.config["process"]["args"] = ["sleep", "10"]
    runtime("create", "c1", bundle=bundle, check=True)
    p = runtime("start", "c1")
    if runtime.name == "pyrunc":  # runc 1.1.5 reports success and lets the init die
        assert p.returncode == 1, p.stderr
    import time

    deadline = time.monotonic() + 5
    while json.loads(runtime("state", "c1", check=True).stdout)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_failing_poststop_hook_is_only_a_warning(runtime, bundle):
    bundle.config["hooks"] = {"poststop": [{"path": "/bin/false"}]}
    p = runtime("run", "c1", bundle=bundle)
    assert p.returncode == 0, p.stderr
    assert not (runtime.root / "c1").exists()


def test_hook_timeout(pyrunc, bundle):
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]}
    p = pyrunc("create", "c1", bundle=bundle)
    assert p.returncode == 1 and "timeout" in p.stderr
    assert not (pyrunc.root / "c1").exists()


def test_ungrantable_and_ambient_only_capabilities_are_warnings(pyrunc, bundle, tmp_path):
    """CAP_SYS_RESOURCE is not held on these machines, and an ambient capability that is not
    inheritable cannot be raised: both are skipped with a warning (runc runs such configs too)."""
    caps = ["CAP_KILL", "CAP_SYS_RESOURCE"]
    bundle.config["process"]["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps,
                                                "ambient": ["CAP_KILL"]}
    bundle.config["process"]["args"] = ["grep", "CapEff", "/proc/self/status"]
    log = tmp_path / "log.json"
    p = pyrunc("run", "cw", bundle=bundle, log=str(log), log_format="json")
    assert p.returncode == 0, p.stderr
    assert int(p.stdout.split()[1], 16) & (1 << 5)
    text = log.read_text()
    if "CAP_SYS_RESOURCE" in text:  # only where the runtime lacks it, as here
        assert "not held by the runtime" in text
    assert "ambient capability CAP_KILL" in text


def test_failed_create_still_runs_poststop_hooks(pyrunc, bundle, tmp_path):
    """runtime.md: a failing prestart hook continues the lifecycle at delete, so poststop runs;
    a failing poststop hook does not stop the ones after it."""
    marker = tmp_path / "poststop-ran"
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/false"}],
                              "poststop": [{"path": "/bin/false"},
                                           {"path": "/bin/sh", "args": ["sh", "-c", f"touch {marker}"]}]}
    p = pyrunc("create", "ps1", bundle=bundle)
    assert p.returncode == 1
    assert marker.exists()
    assert not (pyrunc.root / "ps1").exists()


def test_socket_activation_fds_reach_the_container(pyrunc, bundle, tmp_path):
    """LISTEN_FDS/LISTEN_PID (systemd socket activation): fds 3.. pass through, the env says so."""
    from tests.conftest import run_to_files

    f = tmp_path / "activated"
    f.write_text("socket data\n")
    bundle.config["process"]["args"] = ["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID; cat <&3"]
    bundle.write()
    cmd = " ".join(pyrunc.cmd("run", "la1"))
    # exec keeps the shell's pid, so LISTEN_PID=$$ names pyrunc itself.
    p = run_to_files(["sh", "-c", f"exec 3<{f}; export LISTEN_FDS=1 LISTEN_PID=$$; exec {cmd}"],
                     cwd=bundle.path, timeout=30)
    pyrunc.ids.add("la1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["1 1", "socket data"]


def test_listen_fds_for_another_pid_are_ignored(pyrunc, bundle, tmp_path):
    from tests.conftest import run_to_files

    bundle.config["process"]["args"] = ["sh", "-c", "echo ${LISTEN_FDS:-none}; ls /proc/self/fd | wc -l"]
    bundle.write()
    cmd = " ".join(pyrunc.cmd("run", "la2"))
    p = run_to_files(["sh", "-c", f"exec 3</dev/null; export LISTEN_FDS=1 LISTEN_PID=1; exec {cmd}"],
                     cwd=bundle.path, timeout=30)
    pyrunc.ids.add("la2")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["none", "4"]


def test_notify_socket_reaches_the_caller(pyrunc, bundle, tmp_path):
    """NOTIFY_SOCKET: READY=1 sent from inside the container arrives on the caller's socket."""
    import shutil
    import socket
    import subprocess

    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build the static sd_notify probe")
    src = tmp_path / "notify.c"
    src.write_text(NOTIFY_PROBE)
    probe = bundle.rootfs / "bin" / "notify"
    if subprocess.run(["gcc", "-static", "-O2", "-o", str(probe), str(src)], capture_output=True).returncode:
        pytest.skip("no static libc to build the sd_notify probe")
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(10)
    bundle.config["process"]["args"] = ["/bin/notify"]
    env = dict(os.environ, NOTIFY_SOCKET=path)
    p = pyrunc("run", "n1", bundle=bundle, env=env)
    assert p.returncode == 0, p.stderr
    assert server.recv(64) == b"READY=1"


NOTIFY_PROBE = r"""
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
int main(void) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path) return 2;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    const char msg[] = "READY=1";
    return sendto(fd, msg, sizeof(msg) - 1, 0, (struct sockaddr *)&a, sizeof(a)) < 0 ? 1 : 0;
}
"""
