"""Lazy imports that an interrupt cannot leave half done.

When an import fails or is interrupted (Ctrl-C during the first compile's import of sympy), Python
drops the modules whose code did not finish but keeps their submodules that did: a later
`import sympy` then runs sympy's __init__ again over submodules it no longer binds as attributes,
and fails with `module 'sympy' has no attribute 'core'`. `import_whole` drops such orphans
before and after an import, so the next attempt starts from a clean slate. This module imports
nothing of symgrad's.
"""

from __future__ import annotations

import importlib
import sys
import types


def forget_orphans() -> list[str]:
    """Remove from sys.modules every submodule whose parent package is not there (what an
    interrupted import leaves behind); the names removed."""
    removed: list[str] = []
    while True:
        orphans = [name for name in list(sys.modules)
                   if "." in name and name.rpartition(".")[0] not in sys.modules]
        if not orphans:
            return removed
        for name in orphans:
            sys.modules.pop(name, None)
        removed += orphans


def import_whole(name: str) -> types.ModuleType:
    """`importlib.import_module(name)`, leaving no orphans behind if it fails or is interrupted
    (the exception is raised again)."""
    forget_orphans()
    try:
        return importlib.import_module(name)
    except BaseException:
        forget_orphans()
        raise
