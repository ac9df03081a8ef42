"""Small runc 1.2-1.5 behaviours from the changelog scan, without a container: a tmpfs keeps the
mode of the directory it covers, a bind mount with filesystem data is refused (both measured with
runc 1.5.1; tests/integration/test_runc15.py runs them side by side)."""

from __future__ import annotations

import pytest

from pyrunc.errors import PyruncError
from pyrunc.rootfs import mounts as mt


@pytest.mark.parametrize(("mtype", "data", "expected"), [
    ("tmpfs", "", True), ("tmpfs", "size=10m", True), ("tmpfs", "size=1m,mode=755", False),
    ("tmpfs", "mode=1777", False), ("proc", "", False), ("mqueue", "", False),
])
def test_which_mounts_take_the_covered_directory_mode(mtype, data, expected) -> None:
    assert mt.needs_dir_mode(mtype, data) is expected


def test_covered_directory_mode_as_mount_data() -> None:
    assert mt.with_dir_mode("", 0o40700) == "mode=700"
    assert mt.with_dir_mode("size=10m", 0o41777) == "size=10m,mode=1777"


@pytest.mark.parametrize("options", [["rbind", "size=10m"], ["bind", "mode=755"], ["bind", "ro", "uid=0"]])
def test_bind_with_filesystem_data_is_refused(options) -> None:
    with pytest.raises(PyruncError, match="bind mounts cannot have any filesystem-specific options"):
        mt.classify({"destination": "/mnt", "type": "bind", "source": "/x", "options": options}, idmapped=False)


def test_bind_without_data_and_tmpfs_with_data_are_fine() -> None:
    assert mt.classify({"destination": "/mnt", "type": "none", "source": "/x",
                        "options": ["rbind", "ro", "nosuid", "rslave"]}, idmapped=False)[0] == "bind"
    assert mt.classify({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                        "options": ["size=10m", "mode=755"]}, idmapped=False)[0] == "fs"
