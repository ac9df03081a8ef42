"""Rootless --systemd-cgroup without systemd: where the user's manager puts the unit, what is
saved, which bus later commands use (tests/vm/rootless-systemd.sh runs it for real beside runc
1.5.1 in the --systemd guest)."""

from __future__ import annotations

import json
import os

import pytest

from pyrunc.cgroups import create_manager, load_manager, sdbus
from pyrunc.errors import CgroupError
from tests.unit.test_systemd_unit import FakeBus, v2_layout  # noqa: F401 (fixture)

BASE = "/user.slice/user-1000.slice/user@1000.service"


class UserBus(FakeBus):
    opened: list = []

    def __init__(self, cgroup, control_group=BASE):
        super().__init__(cgroup)
        self.control_group = control_group

    def manager_property(self, name, *, step):
        assert name == "ControlGroup"
        return self.control_group


@pytest.fixture
def user_bus(v2_layout, monkeypatch):  # noqa: F811
    layout, mp = v2_layout
    made = []

    def fake(step="", *, container=None, user=False):
        made.append(user)
        return UserBus(mp / (BASE.lstrip("/") + "/user.slice/runc-c1.scope"))

    monkeypatch.setattr(sdbus, "Systemd", fake)
    return layout, mp, made


def test_rootless_unit_goes_below_the_users_manager(user_bus) -> None:
    layout, mp, made = user_bus
    m = create_manager("", "c1", systemd=True, rootless=True, layout=layout,
                       resources={"memory": {"limit": 1 << 20}, "devices": [{"allow": False, "access": "rwm"}]})
    assert made == [True]  # the user's own manager, asked at once where its cgroup is
    assert m.paths()["unified"] == f"{mp}{BASE}/user.slice/runc-c1.scope"
    assert m.slice == "user.slice" and m.unit == "runc-c1.scope"
    m.create()
    m.apply(os.getpid())
    sent = dict(m._bus.sent[0])
    assert sent["Slice"] == ("s", "user.slice") and sent["MemoryMax"] == ("t", 1 << 20)
    assert "DevicePolicy" not in sent and "DeviceAllow" not in sent  # a user manager cannot filter
    saved = json.loads(json.dumps(m.save()))
    assert saved["user"] is True and saved["rootless"] is True
    again = load_manager(saved)
    assert again.user
    again._bus = None
    again._systemd("update")  # later commands reach the same (user's) manager
    assert made == [True, True]


def test_rootless_explicit_slice_and_a_manager_without_a_cgroup(user_bus, monkeypatch) -> None:
    layout, mp, _made = user_bus
    m = create_manager("app.slice:pfx:c9", "c9", systemd=True, rootless=True, layout=layout)
    assert m.paths()["unified"] == f"{mp}{BASE}/app.slice/pfx-c9.scope"
    monkeypatch.setattr(sdbus, "Systemd", lambda *a, **k: UserBus(mp / "x", control_group=""))
    with pytest.raises(CgroupError, match="reports no cgroup of its own") as info:
        create_manager("", "c1", systemd=True, rootless=True, layout=layout)
    assert info.value.container == "c1"


def test_user_bus_address(monkeypatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert sdbus.user_bus_address() == ("unix:path=/run/user/1000/bus", "session bus unix:path=/run/user/1000/bus",
                                        "/run/user/1000/systemd/private")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/tmp/other")
    assert sdbus.user_bus_address()[0] == "unix:path=/tmp/other"
