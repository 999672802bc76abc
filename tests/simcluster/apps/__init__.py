"""Simulated programs of the stack's operators, for the pods the collection's roles install.

Each module here exposes `register(sim)`, which registers its apps with `sim.runtime.register_app`
(by image pattern) before the cluster starts; `register_all(sim)` calls every module's. What an app
does follows the real component's semantics, stated in each module's docstring.
"""
from __future__ import annotations

import importlib
import pkgutil


def register_all(sim):
    """Register the apps of every module in this package with the simulated runtime."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(__name__ + "." + info.name)
        register = getattr(module, "register", None)
        if register is not None:
            register(sim)
