"""The scenario catalog, one module per spec document; importing a module registers its scenarios."""

from __future__ import annotations

import importlib

MODULES = ("config", "config_mounts", "config_hooks", "config_linux", "config_linux_cgroups",
           "runtime", "runtime_linux")


def load_all() -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
