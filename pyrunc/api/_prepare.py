"""Checking the Python API's arguments and turning them into what the lifecycle takes.

Everything here runs before anything is made, so a bad argument raises InvalidArgument (or
InvalidID, or a ConfigError naming JSON pointers) and leaves no trace: no state, no cgroup, no fd.
The config a container gets is always handed to the lifecycle as data, after a strict JSON round
trip, so that a config given as a dict meets exactly the rules a config.json file meets.
"""

from __future__ import annotations

import json
import math
import os

from .. import state
from ..errors import ConfigError, InvalidArgument

# subprocess's values, so subprocess.PIPE and friends work too (without importing subprocess).
PIPE = -1
STDOUT = -2
DEVNULL = -3

CPU_PERIOD = 100_000  # microseconds: the period a ``cpus=`` limit's quota is a share of


def fail(message: str) -> InvalidArgument:
    return InvalidArgument(message)


def state_root(root) -> str:
    """The state directory: ``root`` (absolute, not /) or the default the CLI uses."""
    if root is None:
        return state.default_root()
    if not isinstance(root, str | os.PathLike):
        raise fail(f"root must be a path, not {type(root).__name__}")
    path = os.path.abspath(os.fspath(root))
    if path == "/":
        raise fail("root must not be /")
    return path


def container_id(cid) -> str:
    """The given id (runc's rule, InvalidID otherwise), or a fresh random one."""
    if cid is None:
        return "pyrunc-" + os.urandom(8).hex()
    if not isinstance(cid, str):
        raise fail(f"id must be a str, not {type(cid).__name__}")
    state.check_id(cid)
    return cid


def rootless_mode(rootless) -> str:
    if rootless is None:
        return "auto"
    if not isinstance(rootless, bool):
        raise fail(f"rootless must be True, False or None (auto), not {rootless!r}")
    return "true" if rootless else "false"


def timeout_seconds(timeout) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or math.isnan(timeout) \
            or timeout <= 0:
        raise fail(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def str_list(value, what: str) -> list[str]:
    """A non-empty list (or tuple) of str; a single str is refused, not split into letters."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise fail(f"{what} must be a list of str, like ['echo', 'hi'], not {type(value).__name__}")
    if not value:
        raise fail(f"{what} must not be empty")
    for item in value:
        if not isinstance(item, str):
            raise fail(f"{what} must hold only str, not {type(item).__name__} ({item!r})")
        if "\0" in item:
            raise fail(f"{what} must not contain NUL characters")
    return list(value)


def directory(path, what: str) -> str:
    if not isinstance(path, str | os.PathLike):
        raise fail(f"{what} must be a path, not {type(path).__name__}")
    full = os.path.abspath(os.fspath(path))
    if not os.path.isdir(full):
        raise fail(f"{what} {full} is not a directory")
    return full


# -- the config ---------------------------------------------------------------------------------

def base_config(bundle, rootfs, config, rootless: str) -> tuple[str, dict]:
    """(bundle directory, config) from one of: a bundle (its config.json), a rootfs (the config
    `pyrunc spec` writes, pointing at it), or a config dict (with the bundle its relative paths
    are relative to: the given one or the current directory)."""
    if bundle is not None and rootfs is not None:
        raise fail("give a bundle or a rootfs, not both")
    if config is not None and rootfs is not None:
        raise fail("give a config or a rootfs, not both (a config names its rootfs in root.path)")
    if config is not None:
        if not isinstance(config, dict):
            raise fail(f"config must be a dict, not {type(config).__name__}")
        return directory(bundle if bundle is not None else ".", "bundle"), config
    if bundle is not None:
        path = directory(bundle, "bundle")
        from ..spec.load import parse_config, read_config_bytes

        return path, parse_config(read_config_bytes(os.path.join(path, "config.json")))
    if rootfs is None:
        raise fail("give a bundle, a rootfs or a config")
    path = directory(rootfs, "rootfs")
    from .. import rootless as rl
    from ..spec.default import default_config

    cfg = default_config(rl.detect(rootless))
    cfg["root"]["path"] = path
    return os.path.dirname(path), cfg


def apply_process(process: dict, *, args=None, env=None, cwd=None, user=None) -> None:
    """The overrides a caller gives for the process; no terminal (the API has none to offer)."""
    if args is not None:
        process["args"] = str_list(args, "args")
    if env is not None:
        process["env"] = merge_env(process.get("env") or [], env)
    if cwd is not None:
        if not isinstance(cwd, str) or not cwd.startswith("/"):
            raise fail(f"cwd must be an absolute path inside the container, not {cwd!r}")
        process["cwd"] = cwd
    if user is not None:
        process["user"] = user_doc(user, process.get("user") or {})
    process["terminal"] = False
    process.pop("consoleSize", None)


def merge_env(current: list, env) -> list[str]:
    """``env`` (a mapping, or a list of ``NAME=value``) over the config's: same names replaced."""
    if isinstance(env, dict):
        items = []
        for k, v in env.items():
            if not isinstance(k, str) or not isinstance(v, str) or not k or "=" in k:
                raise fail(f"env must map names (without '=') to str values: {k!r}: {v!r}")
            items.append(f"{k}={v}")
    else:
        items = str_list(env, "env") if env else []
        if any("=" not in item for item in items):
            raise fail("env entries must look like NAME=value")
    names = {item.split("=", 1)[0] for item in items}
    kept = [e for e in current if not (isinstance(e, str) and e.split("=", 1)[0] in names)]
    return kept + items


def user_doc(user, current: dict) -> dict:
    """``uid`` or ``(uid, gid)`` as a process.user object (other fields kept)."""
    if isinstance(user, tuple) and len(user) == 2:
        uid, gid = user
    else:
        uid, gid = user, 0
    for value in (uid, gid):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 0xFFFFFFFF:
            raise fail(f"user must be a uid or a (uid, gid) pair of ints, not {user!r}")
    out = dict(current)
    out.update(uid=uid, gid=gid)
    return out


def limits_patch(*, memory=None, pids=None, cpus=None, resources=None) -> dict:
    """``linux.resources`` from the convenience limits (and a ``resources`` dict in OCI shape,
    whose sections they extend)."""
    patch: dict = {}
    if resources is not None:
        if not isinstance(resources, dict):
            raise fail(f"resources must be a dict shaped like linux.resources, not {type(resources).__name__}")
        patch = json.loads(strict_json(resources, "resources"))
    if memory is not None:
        patch.setdefault("memory", {})["limit"] = memory_bytes(memory)
    if pids is not None:
        if isinstance(pids, bool) or not isinstance(pids, int) or pids < 1:
            raise fail(f"pids must be a positive int (most processes at once), not {pids!r}")
        patch.setdefault("pids", {})["limit"] = pids
    if cpus is not None:
        if isinstance(cpus, bool) or not isinstance(cpus, int | float) or not cpus > 0 \
                or math.isinf(cpus):
            raise fail(f"cpus must be a positive number (CPUs' worth of time), not {cpus!r}")
        cpu = patch.setdefault("cpu", {})
        cpu["quota"] = max(1000, int(cpus * CPU_PERIOD))
        cpu["period"] = CPU_PERIOD
    return patch


def memory_bytes(memory) -> int:
    """Bytes, from an int or runc's size syntax (``"512m"``, ``"1g"``)."""
    if isinstance(memory, str):
        from ..cgroups.patch import parse_size
        from ..errors import UsageError

        try:
            value = parse_size(memory, "memory")
        except UsageError:
            raise fail(f"memory must be bytes or a size like '512m', not {memory!r}") from None
    elif isinstance(memory, int) and not isinstance(memory, bool):
        value = memory
    else:
        raise fail(f"memory must be bytes or a size like '512m', not {memory!r}")
    if value < 1:
        raise fail(f"memory must be a positive size, not {memory!r}")
    return value


def merge_limits(config: dict, patch: dict) -> None:
    if not patch:
        return
    resources = config.setdefault("linux", {}).setdefault("resources", {})
    if not isinstance(resources, dict):
        return  # the validator names it
    for section, values in patch.items():
        if isinstance(values, dict) and isinstance(resources.get(section), dict):
            resources[section] = {**resources[section], **values}
        else:
            resources[section] = values


def strict_json(value, what: str) -> str:
    """``value`` as JSON text; what JSON cannot say (NaN, sets, objects ...) is refused."""
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise fail(f"{what} is not JSON data: {e}") from None
    except RecursionError:
        raise fail(f"{what} is nested too deeply") from None


def finish_config(config: dict, bundle: str) -> dict:
    """The config the lifecycle gets: a strict JSON round trip of ``config``, checked now (schema
    and semantics) so a bad one raises ConfigError with every JSON pointer before anything is
    made. The caller's dict is never changed."""
    from ..spec.load import check_config, parse_config

    return check_config(parse_config(strict_json(config, "config").encode()), bundle)


def prepare_config(bundle, rootfs, config, rootless: str, *, args=None, env=None, cwd=None,
                   user=None, memory=None, pids=None, cpus=None, resources=None) -> tuple[str, dict]:
    """(bundle, checked config) for a create: the base, then the caller's overrides."""
    path, base = base_config(bundle, rootfs, config, rootless)
    if not isinstance(base, dict):
        raise ConfigError([("", "config.json must hold a JSON object")])
    doc = json.loads(strict_json(base, "config"))  # a copy: the caller's dict stays as it was
    process = doc.get("process")
    if process is None and args is not None:
        process = doc["process"] = {"cwd": "/", "user": {"uid": 0, "gid": 0}}
    if isinstance(process, dict):  # anything else: the checks below name it
        apply_process(process, args=args, env=env, cwd=cwd, user=user)
    merge_limits(doc, limits_patch(memory=memory, pids=pids, cpus=cpus, resources=resources))
    return path, finish_config(doc, path)


# -- stdio --------------------------------------------------------------------------------------

class Stdio:
    """The stdin/stdout/stderr a caller asked for, as fds: ``child`` are the ones the process
    gets (None: ours, unchanged), the parent keeps the other ends of its pipes.

    Each of stdin/stdout/stderr may be None (pass-through: the process shares ours), PIPE,
    DEVNULL, an open fd or a file object with ``fileno()``; stderr may be STDOUT. ``capture``
    means stdout and stderr PIPE; ``input`` (bytes, or str with ``text``) means stdin PIPE,
    fed with it. Nothing is opened until ``open``."""

    def __init__(self, stdin=None, stdout=None, stderr=None, *, capture: bool = False, input=None,
                 text: bool = False):
        if not isinstance(capture, bool) or not isinstance(text, bool):
            raise fail("capture and text must be True or False")
        if capture:
            if stdout is not None or stderr is not None:
                raise fail("capture=True cannot be combined with stdout or stderr")
            stdout = stderr = PIPE
        if input is not None:
            if stdin is not None:
                raise fail("input cannot be combined with stdin (input is fed through a pipe)")
            if isinstance(input, str):
                if not text:
                    raise fail("input is a str: pass text=True, or give bytes")
                input = input.encode()
            elif not isinstance(input, bytes | bytearray | memoryview):
                raise fail(f"input must be bytes (or str with text=True), not {type(input).__name__}")
            stdin = PIPE
        self.specs = (self._check(stdin, "stdin"), self._check(stdout, "stdout"),
                      self._check(stderr, "stderr"))
        self.input = bytes(input or b"")
        self.text = text
        self.child: tuple[int, int, int] | None = None
        self.parent: list[int | None] = [None, None, None]
        self._opened: list[int] = []

    @staticmethod
    def _check(spec, name: str):
        if spec is None or spec in (PIPE, DEVNULL) and not isinstance(spec, bool):
            return spec
        if spec == STDOUT and not isinstance(spec, bool):
            if name != "stderr":
                raise fail(f"{name}=STDOUT: only stderr can go to stdout")
            return spec
        if isinstance(spec, int) and not isinstance(spec, bool):
            fd = spec
        elif hasattr(spec, "fileno"):
            try:
                fd = spec.fileno()
            except (OSError, ValueError) as e:  # io.UnsupportedOperation is both
                raise fail(f"{name} has no usable file descriptor: {e}") from None
        else:
            raise fail(f"{name} must be None, PIPE, DEVNULL, an fd or a file, not {type(spec).__name__}")
        if not isinstance(fd, int) or fd < 0:
            raise fail(f"{name}: {fd!r} is not a file descriptor")
        try:
            os.fstat(fd)
        except OSError:
            raise fail(f"{name}: fd {fd} is not open") from None
        return fd

    @property
    def passthrough(self) -> bool:
        return self.specs == (None, None, None)

    def open(self) -> None:
        """Make the pipes (and /dev/null); ``child`` then holds the process's three fds."""
        if self.passthrough:
            return
        child: list[int] = []
        for n, spec in enumerate(self.specs):
            if spec is None:
                child.append(n)
            elif spec == PIPE:
                r, w = os.pipe2(os.O_CLOEXEC)
                self._opened.append(r if n == 0 else w)
                self.parent[n] = w if n == 0 else r
                child.append(r if n == 0 else w)
            elif spec == DEVNULL:
                fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                self._opened.append(fd)
                child.append(fd)
            elif spec == STDOUT:
                child.append(child[1])
            else:
                child.append(spec)
        self.child = (child[0], child[1], child[2])

    def close_child(self) -> None:
        """Our copies of the process's ends: closed once it has them (or it never will)."""
        opened, self._opened = self._opened, []
        for fd in opened:
            os.close(fd)

    def take_parent(self) -> tuple[int | None, int | None, int | None]:
        """The parent's pipe ends, handed over (the caller closes them from now on)."""
        ends = (self.parent[0], self.parent[1], self.parent[2])
        self.parent = [None, None, None]
        return ends

    def close(self) -> None:
        self.close_child()
        for fd in self.take_parent():
            if fd is not None:
                os.close(fd)

    def decode(self, data: bytes | None):
        if data is None or not self.text:
            return data
        return data.decode("utf-8", "replace")
