"""Every pyrunc module's compiled code in one file, so a call imports them without a search each.

Importing a module the usual way costs ~45 us before its code even runs:
list the package directory, stat the source, open and read the .pyc. `create`
imports about 45 pyrunc modules and `state` a dozen, so that is ~2 ms of a
`run` spent finding files. `make` writes the bundle next to the .pyc files
(``python -m pyrunc.bundle``); the launcher reads its index and puts its
finder first on ``sys.meta_path``, which reads each module's code with one
pread.

A module is served from the bundle only while its source still has the
mtime and size it was compiled from (one stat); otherwise, or when the
bundle is missing or unreadable, the usual import runs. An edited file never
runs stale code, and a checkout without a bundle works as before.
"""

from __future__ import annotations

import marshal
import os
import sys
from _frozen_importlib import ModuleSpec  # importlib's own, already loaded: no import cost

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(PACKAGE_DIR, "__pycache__", f"bundle.{sys.implementation.cache_tag}.marshal")


MAGIC = b"PYRUNCB1"


class BundleFinder:
    """Finder and loader for the bundle's modules.

    The file is MAGIC, the index length (8 bytes, little-endian), the
    marshalled index {name: (source, mtime_ns, size, is_package, offset,
    length)} and the marshalled code objects, offsets counted from the first
    of them (``base`` in the file). Only the index is read up front (a few KB);
    each module's code is read with one pread when imported.
    """

    def __init__(self, index: dict, fd: int, base: int, path: str = PATH):
        self.index = index
        self.fd = fd
        self.base = base
        self.path = path
        self.pid = os.getpid()

    def find_spec(self, name: str, path=None, target=None):
        entry = self.index.get(name)
        if entry is None:
            return None
        source, mtime_ns, size, is_package, offset, length = entry
        try:
            st = os.stat(source)
            if st.st_mtime_ns != mtime_ns or st.st_size != size:
                return None  # edited since `make`: import it the usual way
            code = os.pread(self._fd(), length, self.base + offset)
        except OSError:
            return None
        if len(code) != length:
            return None
        spec = ModuleSpec(name, self, origin=source, is_package=is_package)
        spec.has_location = True  # sets __file__, so tracebacks and paths work as usual
        spec.loader_state = code
        if is_package:
            spec.submodule_search_locations = [os.path.dirname(source)]
        return spec

    def _fd(self) -> int:
        """Our own fd on the bundle: a forked stage closes inherited fds, and a number it closed
        may name another file by now, so each process opens the bundle for itself."""
        if self.pid != os.getpid():
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            self.pid = os.getpid()
        return self.fd

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module) -> None:
        exec(marshal.loads(module.__spec__.loader_state), module.__dict__)

    def close(self) -> None:
        if self.pid == os.getpid():
            os.close(self.fd)


def install(path: str = PATH) -> None:
    """Serve pyrunc's modules from the bundle from now on (nothing happens without one)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        head = os.read(fd, 16)
        if len(head) != 16 or head[:8] != MAGIC:
            raise ValueError("not a pyrunc bundle")
        index_length = int.from_bytes(head[8:], "little")
        index = marshal.loads(os.read(fd, index_length))
    except (OSError, EOFError, ValueError, TypeError):
        os.close(fd)
        return
    sys.meta_path.insert(0, BundleFinder(index, fd, 16 + index_length, path))


def uninstall() -> None:
    """Drop the finder and close its fd (the init does, once it has imported its steps)."""
    for finder in [f for f in sys.meta_path if isinstance(f, BundleFinder)]:
        sys.meta_path.remove(finder)
        finder.close()


def build(path: str = PATH) -> int:
    """Compile every module of the package into the bundle; return how many."""
    index = {}
    blobs = []
    offset = 0
    root = os.path.dirname(PACKAGE_DIR)
    for directory, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            source = os.path.join(directory, name)
            module = os.path.relpath(source, root)[:-3].replace(os.sep, ".")
            is_package = module.endswith(".__init__")
            if is_package:
                module = module[: -len(".__init__")]
            st = os.stat(source)
            with open(source, "rb") as f:
                code = marshal.dumps(compile(f.read(), source, "exec", dont_inherit=True))
            index[module] = (source, st.st_mtime_ns, st.st_size, is_package, offset, len(code))
            blobs.append(code)
            offset += len(code)
    head = marshal.dumps(index)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(MAGIC + len(head).to_bytes(8, "little") + head + b"".join(blobs))
    os.replace(tmp, path)
    return len(index)


if __name__ == "__main__":
    print(f"{PATH}: {build()} modules")
