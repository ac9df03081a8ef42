"""Terminals: the container's pty, /dev/console, and handing the master to the caller.

The pty is allocated inside the container, from its own devpts (/dev/ptmx
after pivot_root), so the slave belongs to the container. The slave is found
with TIOCGPTPEER (no path lookup that a container could redirect) and bound
onto /dev/console entirely by fd. The master travels to the parent over the
sync channel; the parent passes it on to `--console-socket` (runc's protocol:
one SCM_RIGHTS message, one fd, the pty name as payload) or, for a
foreground `run`, proxies it to its own terminal.
"""

from __future__ import annotations

import _socket
import fcntl
import os
import struct
import termios

from .errors import PyruncError

TIOCGPTPEER = 0x5441
TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430


def open_console(console_size: dict | None, uid: int, gid: int) -> tuple[int, int, str]:
    """Allocate a pty from the container's /dev/ptmx; return (master, slave, slave name)."""
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise PyruncError(f"open /dev/ptmx: {e.strerror}", step="set_up_console") from None
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlockpt
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
        if console_size:
            set_size(master, console_size.get("height", 0), console_size.get("width", 0))
        os.fchown(slave, uid, gid)
    except OSError as e:
        os.close(master)
        raise PyruncError(f"allocate pty: {e.strerror}", step="set_up_console") from None
    return master, slave, f"/dev/pts/{number}"


def set_size(fd: int, rows: int, cols: int) -> None:
    # struct winsize holds 16 bits a side; consoleSize is uint64 (upstream schema): keep the low
    # bits, as runc's uint16 conversion does, rather than fail on an absurd size.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows & 0xFFFF, cols & 0xFFFF, 0, 0))


def get_size(fd: int) -> tuple[int, int] | None:
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return rows, cols


def make_controlling(slave: int) -> None:
    """The slave becomes stdio and our controlling terminal (^C, SIGWINCH reach the program)."""
    for target in (0, 1, 2):
        os.dup2(slave, target)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    if slave > 2:
        os.close(slave)


def connect_console_socket(path: str):
    """Connected from the host side before anything is forked (the path is a host path)."""
    from .linux import unixsock

    return unixsock.connect(path, "console socket")


def send_master(sock, master: int, name: str) -> None:
    """runc's console protocol: one message, one SCM_RIGHTS fd, the pty name as the payload."""
    try:
        sock.sendmsg([name.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", master))])
    except OSError as e:
        raise PyruncError(f"send pty master to console socket: {e.strerror}", errno=e.errno or 0) from None


def proxy(master: int, pid: int, reap) -> int:
    """Foreground `run` with a tty: our terminal <-> the pty master until the init exits.

    Our stdin is put in raw mode (the container's pty does the line discipline),
    resized with the container on SIGWINCH, restored on the way out. ``reap``
    returns the init's exit status once it has exited, else None; it is polled
    whenever SIGCHLD wakes us.
    """
    import _signal as signal
    import select
    import tty

    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0, termios.TCSANOW)  # TCSAFLUSH would drop input typed ahead
        size = get_size(0)
        if size:
            set_size(master, *size)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_wakeup = signal.set_wakeup_fd(wake_w)

    def on_winch(_sig, _frame):
        size = get_size(0)
        if size:
            set_size(master, *size)

    signal.signal(signal.SIGWINCH, on_winch)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    status = None
    stdin_open = True
    try:
        while True:
            status = status if status is not None else reap()
            fds = [master, wake_r] + ([0] if stdin_open and status is None else [])
            timeout = 0.05 if status is not None else None
            ready, _, _ = select.select(fds, [], [], timeout)
            if wake_r in ready:
                os.read(wake_r, 512)
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""  # EIO: every slave fd is closed
                if data:
                    _write_all(1, data)
                elif status is not None:
                    break
            elif status is not None and not ready:
                break
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    _write_all(master, data)
                else:
                    stdin_open = False
                    _write_all(master, b"\x04")  # end of input, as a terminal says it
    finally:
        signal.set_wakeup_fd(old_wakeup)
        os.close(wake_r)
        os.close(wake_w)
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)
    return status


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            continue
        data = data[n:]
