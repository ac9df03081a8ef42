"""Mappings given beside a user namespace to join: compared with the namespace's own, order-free."""

from __future__ import annotations

import pytest

from pyrunc import userns
from pyrunc.errors import PyruncError

OWN = ([(0, 100000, 65536)], [(0, 100000, 65536)])


def config(uids, gids=None) -> dict:
    return {"linux": {"uidMappings": uids, "gidMappings": gids if gids is not None else uids}}


@pytest.fixture
def joined(monkeypatch):
    """The namespace's maps as read_joined_maps would return them (no namespace is entered)."""
    seen = []

    def fake(fd, path):
        seen.append((fd, path))
        return OWN

    monkeypatch.setattr(userns, "read_joined_maps", fake)
    return seen


def test_equal_mappings_pass(joined):
    userns.check_joined_mappings(config([{"containerID": 0, "hostID": 100000, "size": 65536}]), "/p", 7)
    assert joined == [(7, "/p")]


def test_no_mappings_read_nothing(joined):
    userns.check_joined_mappings({"linux": {}}, "/p", 7)
    assert joined == []


def test_order_does_not_matter(monkeypatch):
    monkeypatch.setattr(userns, "read_joined_maps",
                        lambda fd, path: ([(0, 1000, 1), (1, 100000, 65535)], [(0, 1000, 1)]))
    uids = [{"containerID": 1, "hostID": 100000, "size": 65535}, {"containerID": 0, "hostID": 1000, "size": 1}]
    userns.check_joined_mappings(config(uids, [{"containerID": 0, "hostID": 1000, "size": 1}]), "/p", 7)


@pytest.mark.parametrize("field", ["uidMappings", "gidMappings"])
def test_disagreeing_mappings_are_refused_naming_both(joined, field):
    good = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bad = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    cfg = config(bad, good) if field == "uidMappings" else config(good, bad)
    with pytest.raises(PyruncError) as e:
        userns.check_joined_mappings(cfg, "/proc/9/ns/user", 7)
    assert e.value.step == "join namespaces"
    assert f"linux.{field} (0 200000 65536)" in e.value.cause
    assert "/proc/9/ns/user (0 100000 65536)" in e.value.cause
