"""Mount option parsing: every mount(8) word maps to the right flag/clear/propagation/data."""

from __future__ import annotations

import ctypes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrunc.linux import mount as m
from pyrunc.rootfs import options as o

SET_FLAGS = {
    "ro": m.MS_RDONLY, "nosuid": m.MS_NOSUID, "nodev": m.MS_NODEV, "noexec": m.MS_NOEXEC,
    "sync": m.MS_SYNCHRONOUS, "dirsync": m.MS_DIRSYNC, "remount": m.MS_REMOUNT, "mand": m.MS_MANDLOCK,
    "noatime": m.MS_NOATIME, "nodiratime": m.MS_NODIRATIME, "relatime": m.MS_RELATIME,
    "strictatime": m.MS_STRICTATIME, "lazytime": m.MS_LAZYTIME, "bind": m.MS_BIND,
    "rbind": m.MS_BIND | m.MS_REC, "nosymfollow": m.MS_NOSYMFOLLOW,
}
CLEAR_FLAGS = {
    "rw": m.MS_RDONLY, "suid": m.MS_NOSUID, "dev": m.MS_NODEV, "exec": m.MS_NOEXEC,
    "async": m.MS_SYNCHRONOUS, "nomand": m.MS_MANDLOCK, "atime": m.MS_NOATIME,
    "diratime": m.MS_NODIRATIME, "norelatime": m.MS_RELATIME, "nostrictatime": m.MS_STRICTATIME,
    "nolazytime": m.MS_LAZYTIME, "symfollow": m.MS_NOSYMFOLLOW,
}
PROPAGATION = {
    "private": m.MS_PRIVATE, "rprivate": m.MS_PRIVATE | m.MS_REC, "shared": m.MS_SHARED,
    "rshared": m.MS_SHARED | m.MS_REC, "slave": m.MS_SLAVE, "rslave": m.MS_SLAVE | m.MS_REC,
    "unbindable": m.MS_UNBINDABLE, "runbindable": m.MS_UNBINDABLE | m.MS_REC,
}


def test_kernel_constants_match_linux_headers() -> None:
    """A wrong constant would silently mount the wrong thing; pin the values from <linux/mount.h>."""
    assert (m.MS_RDONLY, m.MS_BIND, m.MS_REC, m.MS_PRIVATE, m.MS_SLAVE, m.MS_SHARED) == (
        1, 4096, 16384, 1 << 18, 1 << 19, 1 << 20)
    assert (m.MS_RELATIME, m.MS_STRICTATIME, m.MS_LAZYTIME) == (1 << 21, 1 << 24, 1 << 25)
    assert (m.RESOLVE_IN_ROOT, m.RESOLVE_NO_MAGICLINKS, m.RESOLVE_BENEATH) == (0x10, 0x02, 0x08)
    assert ctypes.sizeof(m.OpenHow) == 24 and ctypes.sizeof(m.MountAttr) == 32


@pytest.mark.parametrize("word,bits", sorted(SET_FLAGS.items()))
def test_setting_words(word: str, bits: int) -> None:
    p = o.parse([word])
    assert p.flags == bits and p.clear == 0 and p.data == "" and not p.propagation


@pytest.mark.parametrize("word,bits", sorted(CLEAR_FLAGS.items()))
def test_clearing_words_clear_an_earlier_set(word: str, bits: int) -> None:
    """``nosuid,suid`` must end with nosuid off, and the clear is remembered for bind remounts."""
    p = o.parse([_opposite(word), word])
    assert p.flags & bits == 0
    assert p.clear & bits == bits


def _opposite(word: str) -> str:
    """The setting word that ``word`` clears."""
    for k, v in SET_FLAGS.items():
        if v == CLEAR_FLAGS[word] and k not in ("bind", "rbind"):
            return k
    raise AssertionError(word)


def test_last_word_wins_like_runc() -> None:
    assert o.parse(["ro", "rw"]).flags & m.MS_RDONLY == 0
    p = o.parse(["rw", "ro"])
    assert p.flags & m.MS_RDONLY and not p.clear & m.MS_RDONLY


@pytest.mark.parametrize("word,bits", sorted(PROPAGATION.items()))
def test_propagation_words_are_separate_calls(word: str, bits: int) -> None:
    p = o.parse(["nosuid", word])
    assert p.propagation == [bits]
    assert p.flags == m.MS_NOSUID


def test_propagation_order_is_kept() -> None:
    assert o.parse(["rprivate", "shared"]).propagation == [m.MS_PRIVATE | m.MS_REC, m.MS_SHARED]


def test_unknown_words_go_to_data_in_order() -> None:
    p = o.parse(["nosuid", "mode=755", "size=65536k", "newinstance", "ptmxmode=0666"])
    assert p.flags == m.MS_NOSUID
    assert p.data == "mode=755,size=65536k,newinstance,ptmxmode=0666"


def test_runc_spec_defaults() -> None:
    """The options ``runc spec`` writes for /dev and /sys parse as runc parses them."""
    dev = o.parse(["nosuid", "strictatime", "mode=755", "size=65536k"])
    assert dev.flags == m.MS_NOSUID | m.MS_STRICTATIME and dev.data == "mode=755,size=65536k"
    sysfs = o.parse(["nosuid", "noexec", "nodev", "ro"])
    assert sysfs.flags == m.MS_NOSUID | m.MS_NOEXEC | m.MS_NODEV | m.MS_RDONLY


def test_bind_properties() -> None:
    assert o.parse(["bind"]).is_bind and not o.parse(["bind"]).is_recursive_bind
    assert o.parse(["rbind", "ro"]).is_recursive_bind
    assert not o.parse(["ro"]).is_bind


def test_recursive_attributes() -> None:
    p = o.parse(["rro", "rnosuid", "rnodev", "rnoexec"])
    assert p.rec_set == (m.MOUNT_ATTR_RDONLY | m.MOUNT_ATTR_NOSUID | m.MOUNT_ATTR_NODEV
                         | m.MOUNT_ATTR_NOEXEC)
    assert p.rec_clr == 0 and p.flags == 0
    p = o.parse(["rro", "rrw"])
    assert p.rec_set == 0 and p.rec_clr == m.MOUNT_ATTR_RDONLY
    p = o.parse(["rnoatime"])
    assert p.rec_clr == m.MOUNT_ATTR__ATIME and p.rec_set == m.MOUNT_ATTR_NOATIME


def test_tmpcopyup_is_recorded_not_passed_to_the_kernel() -> None:
    p = o.parse(["ro", "tmpcopyup", "size=1m"])
    assert p.copyup and p.unsupported == [] and p.data == "size=1m" and p.flags == m.MS_RDONLY
    assert not o.parse(["ro"]).copyup


@pytest.mark.parametrize("word", ["idmap", "ridmap"])
def test_idmap_words_are_recorded(word: str) -> None:
    p = o.parse(["rbind", word])
    assert p.idmap == word and p.unsupported == [] and p.data == ""


def test_empty_and_none() -> None:
    for p in (o.parse(None), o.parse([])):
        assert (p.flags, p.clear, p.propagation, p.data) == (0, 0, [], "")


def test_rootfs_propagation_values() -> None:
    assert o.propagation_flag("rslave") == m.MS_SLAVE | m.MS_REC
    with pytest.raises(ValueError):
        o.propagation_flag("sideways")


KNOWN = sorted(set(SET_FLAGS) | set(CLEAR_FLAGS) | set(PROPAGATION))


@given(st.lists(st.sampled_from(KNOWN + ["mode=1777", "size=1k", "x-foo"]), max_size=12))
def test_flag_state_is_decided_by_the_last_word(words: list[str]) -> None:
    """Property: for each flag, the last word touching it decides whether it is set."""
    p = o.parse(words)
    for bit in (m.MS_RDONLY, m.MS_NOSUID, m.MS_NODEV, m.MS_NOEXEC, m.MS_NOATIME):
        last = None
        for w in words:
            if SET_FLAGS.get(w, 0) & bit:
                last = True
            elif CLEAR_FLAGS.get(w, 0) & bit:
                last = False
        assert bool(p.flags & bit) == bool(last)
    assert p.propagation == [PROPAGATION[w] for w in words if w in PROPAGATION]
    assert p.data == ",".join(w for w in words if "=" in w or w.startswith("x-"))
