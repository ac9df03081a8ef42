"""The sync channel when the init has already gone: its last words must still reach the parent."""

from __future__ import annotations

import pytest

from pyrunc.errors import ChildError
from pyrunc.process.channel import Channel


def test_error_report_survives_an_unread_message_on_the_dead_side():
    """The init reports, exits with our last message unread: the kernel answers the next read
    with ECONNRESET once, ahead of the report. The report is what create must show."""
    parent, init = Channel.pair()
    init.send_error("mount_filesystems", "create mount point /etc/hostname: Not a directory")
    parent.send("cgroup_joined")
    init.close()
    with pytest.raises(ChildError) as e:
        parent.recv()
    assert (e.value.step, e.value.cause) == ("mount_filesystems",
                                             "create mount point /etc/hostname: Not a directory")


def test_send_to_a_dead_init_raises_its_report_not_epipe():
    parent, init = Channel.pair()
    init.send_error("prepare_rootfs", "bind mount: No such file or directory")
    init.close()
    with pytest.raises(ChildError) as e:
        parent.send("cgroup_joined")
    assert e.value.step == "prepare_rootfs" and "No such file" in e.value.cause


def test_send_to_an_init_that_said_nothing():
    parent, init = Channel.pair()
    init.close()
    with pytest.raises(ChildError) as e:
        parent.send("cgroup_joined")
    assert "exited before reporting" in e.value.cause
