"""Talking to systemd over D-Bus (jeepney), for the systemd cgroup driver only.

jeepney is pure Python (no libdbus, no GLib main loop) and blocking I/O is
all a short-lived runtime command needs. It is imported here and nowhere
else, and this module only by ``cgroups/systemd.py``: commands run without
``--systemd-cgroup`` never load it (tests/unit guards the hot path's imports).

Where systemd is reached:

* the system bus (``$DBUS_SYSTEM_BUS_ADDRESS``, else /run/dbus/system_bus_socket),
  the usual way and what runc does;
* as root, systemd's private socket /run/systemd/private when no bus daemon
  runs (a minimal host, early boot);
* rootless: the caller's own ``systemd --user``, through the session bus
  (``$DBUS_SESSION_BUS_ADDRESS``, else ``$XDG_RUNTIME_DIR/bus``) or its private
  socket ``$XDG_RUNTIME_DIR/systemd/private``. It is a direct peer connection: there
  is no ``Hello`` and no match rules; systemd sends its signals straight to
  a peer that called ``Subscribe``.

Jobs: ``StartTransientUnit`` and ``StopUnit`` return a job path at once; the
unit is only there when the job is done. The ``JobRemoved`` signal carries
the job's result ("done", "failed", "timeout", ...). The filter is in place
before the call, so a signal that overtakes the method's reply is kept.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque

from jeepney import DBusAddress, HeaderFields, MatchRule, MessageType, new_method_call
from jeepney.bus import get_bus
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, DBusConnectionBase, open_dbus_connection, prep_socket
from jeepney.io.common import MessageFilters

from pyrunc.errors import CgroupError
from pyrunc.rootless import in_initial_userns, outer_uid

SYSTEMD = DBusAddress("/org/freedesktop/systemd1", bus_name="org.freedesktop.systemd1",
                      interface="org.freedesktop.systemd1.Manager")
PRIVATE_SOCKET = "/run/systemd/private"
# How long a job may take (runc waits 30 s too); method replies are much faster.
JOB_TIMEOUT = 30.0
CALL_TIMEOUT = 25.0
NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"
UNIT_EXISTS = "org.freedesktop.systemd1.UnitExists"


class SystemdBusError(CgroupError):
    """A D-Bus error reply from systemd; ``name`` is its D-Bus error name."""

    def __init__(self, name: str, text: str, step: str, container: str | None = None):
        super().__init__(f"systemd: {text} ({name})", step=step, container=container)
        self.name = name


class _PeerConnection(DBusConnection):
    """A connection to a peer that is not a bus daemon: no ``Hello`` (systemd's private socket)."""

    def __init__(self, sock):
        DBusConnectionBase.__init__(self, sock)
        self._filters = MessageFilters()


PEER = DBusAddress("/org/freedesktop/systemd1", bus_name="org.freedesktop.systemd1",
                   interface="org.freedesktop.DBus.Peer")
# How long one Ping waits before the next one is sent to push the first along.
WAKE_INTERVAL = 0.2


def user_bus_address() -> tuple[str, str, str]:
    """Where the caller's own systemd is: ``$DBUS_SESSION_BUS_ADDRESS``, else the user bus
    socket in ``$XDG_RUNTIME_DIR`` (``/run/user/UID``, UID the user's even as root of a user
    namespace that maps it), as runc looks; and that manager's
    private socket for when no session bus daemon runs. (address, name for errors, socket)"""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{outer_uid()}"
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS") or f"unix:path={runtime_dir}/bus"
    return address, f"session bus {address}", f"{runtime_dir}/systemd/private"


def sasl_socket(address: str, timeout: float) -> socket.socket:
    """A socket connected to ``address`` and logged in with EXTERNAL naming no uid.

    jeepney's login says ``AUTH EXTERNAL <our uid>``, and the server compares that with the uid
    the kernel reports for the socket's peer, translated into the server's user namespace. Root
    of a user namespace that maps the user (as rootless podman runs the runtime) says 0 where
    systemd sees the user's uid, and is refused. Without a uid, the server takes the one the
    kernel reports: the D-Bus specification's empty authorization identity, which dbus-daemon
    and systemd accept (sd-bus logs in so itself).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    deadline = time.monotonic() + timeout
    buffer = b""

    def line() -> bytes:
        nonlocal buffer
        while b"\r\n" not in buffer:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = sock.recv(1024)
            if not chunk:
                raise ConnectionError("the bus closed the connection during the login")
            buffer += chunk
        out, _, buffer = buffer.partition(b"\r\n")
        return out

    try:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(b"\0AUTH EXTERNAL\r\n")
        reply = line()
        if reply.startswith(b"DATA"):  # the server asks for the identity: none
            sock.sendall(b"DATA\r\n")
            reply = line()
        if not reply.startswith(b"OK "):
            raise ConnectionRefusedError(f"EXTERNAL login refused: {reply.decode('ascii', 'replace')}")
        sock.sendall(b"BEGIN\r\n")
        sock.settimeout(None)
    except TimeoutError:
        sock.close()
        raise TimeoutError(f"the bus did not log us in within {timeout:.0f} s") from None
    except BaseException:
        sock.close()
        raise
    return sock


def _wake_peer(conn: _PeerConnection, step: str, container: str | None, where: str = PRIVATE_SOCKET) -> None:
    """Ping systemd over a fresh private connection until it answers.

    systemd 252 (Debian 12) leaves a message that reaches it in the same read
    as the client's SASL ``BEGIN`` unprocessed until more bytes arrive; the
    call then waits forever (seen in the --systemd guest: one connection in
    ~15 lost its ``Subscribe``). Every further Ping is such a byte: the first
    reply proves the connection is running, and later replies to the earlier
    Pings are dropped as replies nobody waits for.
    """
    deadline = time.monotonic() + CALL_TIMEOUT
    ping = new_method_call(PEER, "Ping")
    while True:
        try:
            conn.send_and_get_reply(ping, timeout=WAKE_INTERVAL)
            return
        except TimeoutError:
            if time.monotonic() >= deadline:
                conn.close()
                raise CgroupError(f"systemd did not answer on {where} within {CALL_TIMEOUT:.0f} s",
                                  step=step, container=container) from None
        except OSError as e:
            conn.close()
            raise CgroupError(f"{where}: {e}", step=step, container=container,
                              errno=e.errno or 0) from e


def _job_rule() -> MatchRule:
    return MatchRule(type="signal", interface=SYSTEMD.interface, member="JobRemoved",
                     path=SYSTEMD.object_path)


class Systemd:
    """One connection to systemd's manager object; ``close()`` when done. Every error it raises
    names ``container``, for whom it talks to systemd."""

    def __init__(self, step: str = "connect to systemd", *, container: str | None = None, user: bool = False):
        self.container = container
        self.conn = self._connect(step, container, user)
        self._jobs: deque = deque()
        self._filter = self.conn.filter(_job_rule(), queue=self._jobs)
        self.call("Subscribe", "", (), step=step)

    @staticmethod
    def _connect(step: str, container: str | None, user: bool = False):
        """The system manager (root), or with ``user`` the caller's own ``systemd --user``:
        through the bus first, then the manager's private socket."""
        errors = []
        if user:
            bus, what, private = user_bus_address()
        else:
            bus, what, private = "SYSTEM", "system bus", PRIVATE_SOCKET if os.geteuid() == 0 else None
        # Root of a user namespace (rootless podman's runtime): our uid is not the one systemd
        # sees on the socket, so the EXTERNAL login must not name it (sasl_socket).
        own_uid = in_initial_userns()
        try:
            if own_uid:
                conn = open_dbus_connection(bus=bus, auth_timeout=5.0)
            else:
                conn = DBusConnection(sasl_socket(get_bus(bus), timeout=5.0))
        except Exception as e:  # OSError, auth failures, a bad address: all mean "not this way"
            errors.append(f"{what}: {e}")
        else:
            try:
                rule = MatchRule(type="signal", sender=SYSTEMD.bus_name, interface=SYSTEMD.interface,
                                 member="JobRemoved", path=SYSTEMD.object_path)
                conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=CALL_TIMEOUT)
                return conn
            except Exception as e:
                conn.close()
                errors.append(f"{what}: {e}")
        if private:
            try:
                conn = _PeerConnection(prep_socket(private, timeout=5.0) if own_uid
                                       else sasl_socket(private, timeout=5.0))
            except Exception as e:
                errors.append(f"{private}: {e}")
            else:
                _wake_peer(conn, step, container, private)
                return conn
        whose = "your user's systemd (systemd --user)" if user else "systemd"
        raise CgroupError(f"cannot reach {whose} over D-Bus (" + "; ".join(errors) + ")", step=step,
                          container=container)

    def manager_property(self, name: str, *, step: str):
        """A property of the manager object (``ControlGroup``: where its own units live)."""
        msg = new_method_call(DBusAddress(SYSTEMD.object_path, bus_name=SYSTEMD.bus_name,
                                          interface="org.freedesktop.DBus.Properties"),
                              "Get", "ss", (SYSTEMD.interface, name))
        try:
            reply = self.conn.send_and_get_reply(msg, timeout=CALL_TIMEOUT)
        except (TimeoutError, OSError) as e:
            raise CgroupError(f"reading systemd's {name}: {e}", step=step, container=self.container) from None
        if reply.header.message_type == MessageType.error:
            raise SystemdBusError(reply.header.fields.get(HeaderFields.error_name, ""),
                                  str(reply.body[0]) if reply.body else f"Get {name} failed", step, self.container)
        return reply.body[0][1]

    def close(self) -> None:
        try:
            self._filter.close()
        finally:
            self.conn.close()

    # ----- calls -------------------------------------------------------------------------------
    def call(self, method: str, signature: str, body: tuple, *, step: str):
        """Call a Manager method; return the reply's body or raise ``SystemdBusError``."""
        msg = new_method_call(SYSTEMD, method, signature or None, body)
        try:
            reply = self.conn.send_and_get_reply(msg, timeout=CALL_TIMEOUT)
        except TimeoutError:
            raise CgroupError(f"systemd did not answer {method} within {CALL_TIMEOUT:.0f} s",
                              step=step, container=self.container) from None
        except OSError as e:
            raise CgroupError(f"D-Bus connection to systemd lost during {method}: {e}", step=step,
                              container=self.container, errno=e.errno or 0) from e
        if reply.header.message_type == MessageType.error:
            name = reply.header.fields.get(HeaderFields.error_name, "")
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else method + " failed"
            raise SystemdBusError(name, text, step, self.container)
        return reply.body

    def run_job(self, method: str, signature: str, body: tuple, *, step: str,
                timeout: float = JOB_TIMEOUT) -> str:
        """Call a method that queues a job and wait for the job's result ("done", "failed", ...)."""
        job = self.call(method, signature, body, step=step)[0]
        deadline = time.monotonic() + timeout
        while True:
            while self._jobs:
                sig = self._jobs.popleft()
                if sig.body[1] == job:
                    return sig.body[3]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CgroupError(f"timed out after {timeout:.0f} s waiting for systemd's job {job} "
                                  f"({method} {body[0]})", step=step, container=self.container)
            try:
                self.conn.recv_messages(timeout=remaining)
            except TimeoutError:
                continue
            except OSError as e:
                raise CgroupError(f"D-Bus connection to systemd lost waiting for {job}: {e}",
                                  step=step, container=self.container, errno=e.errno or 0) from e

    def start_transient_unit(self, unit: str, properties: list, *, step: str) -> str:
        return self.run_job("StartTransientUnit", "ssa(sv)a(sa(sv))", (unit, "replace", properties, []),
                            step=step)

    def stop_unit(self, unit: str, *, step: str) -> str:
        return self.run_job("StopUnit", "ss", (unit, "replace"), step=step)

    def set_unit_properties(self, unit: str, properties: list, *, step: str) -> None:
        self.call("SetUnitProperties", "sba(sv)", (unit, True, properties), step=step)

    def reset_failed_unit(self, unit: str, *, step: str) -> None:
        self.call("ResetFailedUnit", "s", (unit,), step=step)
