"""personality, scheduler, ioPriority, execCPUAffinity, memoryPolicy and LSM labels."""

from __future__ import annotations

import os

import pytest


def run_probe(rt, bundle, script, cid="a1"):
    bundle.config["process"]["args"] = ["sh", "-c", script]
    p = rt("run", cid, bundle=bundle)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_personality_linux32(pyrunc, bundle):
    """runc 1.1.5 ignores linux.personality; pyrunc applies it."""
    bundle.config["linux"]["personality"] = {"domain": "LINUX32"}
    assert run_probe(pyrunc, bundle, "uname -m") == "i686\n"


def test_scheduler_policy_and_nice(pyrunc, bundle):
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5}
    out = run_probe(pyrunc, bundle, "cat /proc/self/stat")
    fields = out.rsplit(")", 1)[1].split()
    assert fields[16] == "5", "nice"  # field 19
    assert fields[38] == "3", "policy SCHED_BATCH"  # field 41


def test_io_priority(pyrunc, bundle):
    bundle.config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    bundle.config["process"]["args"] = ["sleep", "100"]
    pyrunc("run", "-d", "io1", bundle=bundle, check=True)
    pid = pyrunc.state("io1")["pid"]
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    prio = libc.syscall(252, 1, pid)  # ioprio_get(IOPRIO_WHO_PROCESS, pid)
    assert prio >> 13 == 3


def test_exec_cpu_affinity_final_applies_to_exec_not_init(pyrunc, bundle, tmp_path):
    """config.md: execCPUAffinity is not applied to the init, only to exec'd processes."""
    proc = {"args": ["grep", "Cpus_allowed_list", "/proc/self/status"], "cwd": "/", "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0}, "execCPUAffinity": {"initial": "0", "final": "0"}}
    bundle.config["process"]["execCPUAffinity"] = {"final": "0"}
    bundle.config["process"]["args"] = ["sleep", "100"]
    pyrunc("run", "-d", "aff1", bundle=bundle, check=True)
    pid = pyrunc.state("aff1")["pid"]
    with open(f"/proc/{pid}/status") as f:
        init_cpus = next(line for line in f if line.startswith("Cpus_allowed_list")).split()[1]
    assert init_cpus == f"0-{os.cpu_count() - 1}" or os.cpu_count() == 1
    (tmp_path / "p.json").write_text(__import__("json").dumps(proc))
    p = pyrunc("exec", "--process", str(tmp_path / "p.json"), "aff1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[1] == "0"


def test_memory_policy_bind(pyrunc, bundle):
    bundle.config["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0"}
    out = run_probe(pyrunc, bundle, "grep -c bind /proc/self/numa_maps || true")
    if not os.path.exists("/proc/self/numa_maps"):
        pytest.skip("kernel without NUMA")
    assert int(out.strip() or 0) > 0


@pytest.mark.parametrize("field,value,lsm", [("apparmorProfile", "unconfined-x", "AppArmor"),
                                             ("selinuxLabel", "system_u:system_r:container_t:s0", "SELinux")])
def test_lsm_label_without_the_lsm_is_an_error(pyrunc, bundle, field, value, lsm):
    from pyrunc.security import lsm as lsm_mod

    if (lsm == "AppArmor" and lsm_mod.apparmor_enabled()) or (lsm == "SELinux" and lsm_mod.selinux_enabled()):
        pytest.skip(f"{lsm} is enabled here")
    bundle.config["process"][field] = value
    p = pyrunc("create", "l1", bundle=bundle)
    assert p.returncode == 1
    assert lsm in p.stderr and value in p.stderr
    assert not (pyrunc.root / "l1").exists()


def test_unknown_scheduler_policy_is_refused(pyrunc, bundle):
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_NOPE"}
    p = pyrunc("create", "s1", bundle=bundle)
    assert p.returncode == 1 and "SCHED_NOPE" in p.stderr


def test_net_devices_moved_and_renamed(pyrunc, bundle):
    """runc 1.1.5 has no netDevices; pyrunc moves a host dummy interface in, renamed."""
    import subprocess

    name = f"pyrd{os.getpid() % 10000}"
    peer = name + "p"
    if subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", peer],
                      capture_output=True).returncode:
        pytest.skip("cannot create a veth pair here")
    try:
        bundle.config["linux"]["netDevices"] = {name: {"name": "eth0"}}
        out = run_probe(pyrunc, bundle, "ip -o link show eth0 | cut -d: -f2")
        assert out.strip().split("@")[0] == "eth0"
        host = subprocess.run(["ip", "link", "show", name], capture_output=True)
        assert host.returncode != 0, "the device left the host namespace"
    finally:
        subprocess.run(["ip", "link", "del", peer], capture_output=True)  # takes its moved twin along


def test_net_device_missing_is_an_error(pyrunc, bundle):
    bundle.config["linux"]["netDevices"] = {"nonexistent9": {}}
    p = pyrunc("create", "n2", bundle=bundle)
    assert p.returncode == 1 and "nonexistent9" in p.stderr
    assert not (pyrunc.root / "n2").exists()


def test_intel_rdt_without_resctrl_is_a_clear_error(pyrunc, bundle):
    if os.path.exists("/sys/fs/resctrl/schemata"):
        pytest.skip("resctrl is mounted here")
    bundle.config["linux"]["intelRdt"] = {"closID": "c1", "l3CacheSchema": "L3:0=f"}
    p = pyrunc("create", "r1", bundle=bundle)
    assert p.returncode == 1 and "resctrl" in p.stderr
