"""Logging in to a D-Bus server as root of a user namespace (rootless podman's runtime).

jeepney's EXTERNAL login names the caller's own uid; root of a user namespace that maps the
user says 0 where the server sees the user's uid, and is refused. cgroups/sdbus.py then logs in
naming no uid. A real dbus-daemon run as an unprivileged uid is the server here; the guest
lane (tests/vm/rootless-systemd.sh, "userns" checks) does the same against the user's systemd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

UID = 65534  # nobody: an unprivileged uid that exists everywhere

CLIENT = r"""
import os, sys
sys.path[:0] = [sys.argv[1]]
sys.path.append(sys.argv[2])
from jeepney.io.blocking import open_dbus_connection
from pyrunc import linux
from pyrunc.cgroups import sdbus
address, uid = sys.argv[3], int(sys.argv[4])
os.setgroups([])
os.setresgid(uid, uid, uid)
os.setresuid(uid, uid, uid)
linux.set_dumpable(True)  # a uid change made /proc/self root's
linux.unshare(linux.CLONE_NEWUSER)
for name, text in (("setgroups", "deny"), ("gid_map", f"0 {uid} 1"), ("uid_map", f"0 {uid} 1")):
    with open(f"/proc/self/{name}", "w") as f:
        f.write(text)
out = [f"uid={os.getuid()}"]
from pyrunc import rootless
os.environ.pop("XDG_RUNTIME_DIR", None)
os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
out += [f"outer={rootless.outer_uid()}", f"address={sdbus.user_bus_address()[0]}"]
try:
    open_dbus_connection(bus="unix:path=" + address, auth_timeout=5).close()
    out.append("jeepney=ok")
except Exception as e:
    out.append("jeepney=" + type(e).__name__)
conn = sdbus.DBusConnection(sdbus.sasl_socket(address, 5.0))
out.append("ours=" + conn.unique_name)
conn.close()
os.environ["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=" + address
conn = sdbus.Systemd._connect("connect to systemd", None, user=True)  # the runtime's own path
out.append("runtime=" + conn.unique_name)
print(" ".join(out))
"""


@pytest.fixture
def user_bus():
    """A session dbus-daemon owned by an unprivileged uid; its socket path."""
    if os.geteuid() != 0:
        pytest.skip("needs root (to start the bus as another uid)")
    if not shutil.which("dbus-daemon"):
        pytest.skip("no dbus-daemon (apt-get install dbus)")
    d = tempfile.mkdtemp(prefix="pyrunc-bus-", dir="/tmp")
    os.chmod(d, 0o777)
    sock = os.path.join(d, "bus")
    daemon = subprocess.Popen(["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", "dbus-daemon",
                               "--session", f"--address=unix:path={sock}", "--nofork", "--nopidfile"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(sock):
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dbus-daemon did not start: {daemon.stderr.read().decode() if daemon.stderr else ''}")
            time.sleep(0.05)
        yield sock
    finally:
        daemon.kill()
        daemon.wait()
        shutil.rmtree(d, ignore_errors=True)


def test_root_of_a_user_namespace_logs_in_to_the_users_bus(user_bus):
    site = next(Path(REPO, ".venv", "lib").glob("python3*/site-packages"))
    p = subprocess.run([sys.executable, "-I", "-c", CLIENT, str(REPO), str(site), user_bus, str(UID)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = dict(kv.split("=", 1) for kv in p.stdout.split())
    assert out["uid"] == "0" and out["outer"] == str(UID), out
    assert out["address"] == f"unix:path=/run/user/{UID}/bus", out  # the user's, not /run/user/0
    assert out["jeepney"] == "AuthenticationError", out  # the premise: naming uid 0 is refused
    assert out["ours"].startswith(":1."), out
    assert out["runtime"].startswith(":1."), out
