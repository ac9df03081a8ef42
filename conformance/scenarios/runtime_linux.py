"""runtime-linux.md: file descriptors and /dev symbolic links."""

from __future__ import annotations

import os

from ..harness import Ctx, add, scenario

RL = "runtime-linux.md"


@scenario("fds-only-stdio", f"{RL}#file-descriptors", "SHOULD")
def _(ctx: Ctx) -> None:
    """By default only stdin, stdout and stderr are kept open: an fd the caller leaks in is closed."""
    r, w = os.pipe()
    try:
        ctx.create("c1", ["sleep", "300"], pass_fds=(r, w))
        ctx.start()
    finally:
        os.close(r)
        os.close(w)
    pid = ctx.pid()
    ctx.wait_exec(pid, "sleep")
    fds = sorted(int(x) for x in os.listdir(f"/proc/{pid}/fd"))
    ctx.check(fds == [0, 1, 2], f"open fds in the container process: {fds}")


def _symlink(link: str, target: str) -> None:
    def fn(ctx: Ctx) -> None:
        out = ctx.probe(f"readlink /dev/{link}")
        ctx.check(out.strip() == target, f"/dev/{link} -> {out.strip()!r}, want {target}")

    add(f"dev-symlink-{link}", f"{RL}#dev-symbolic-links", "MUST", f"/dev/{link} is a symlink to {target}", fn)


for _l, _t in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
               ("stderr", "/proc/self/fd/2")):
    _symlink(_l, _t)


@scenario("dev-symlinks-usable", f"{RL}#dev-symbolic-links", "MUST")
def _(ctx: Ctx) -> None:
    """The /dev symlinks work: writing to /dev/stdout reaches the container's stdout."""
    ctx.check(ctx.probe("echo via-dev-stdout > /dev/stdout") == "via-dev-stdout\n", "nothing on stdout")
