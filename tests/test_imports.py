"""Every module of runtime/ and compiler/ imports on its own in a fresh interpreter: an import
cycle between modules shows up here as an ImportError of whichever module is imported first.

Each module is imported alone, in sorted order, in a process that has loaded nothing of the
project: one forked child per module from a parent that imported only the third-party packages
(numpy, sympy, llvmlite), a few at a time, so it costs no full interpreter start per module.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_IMPORT_EACH_ALONE = r"""
import importlib, os, sys, traceback
for heavy in ("numpy", "sympy", "llvmlite.ir", "llvmlite.binding"):
    importlib.import_module(heavy)
failures, running, workers = 0, 0, max(1, min(4, os.cpu_count() or 1))
for name in sys.argv[1:]:
    if running == workers:
        failures += os.wait()[1] != 0
        running -= 1
    if os.fork() == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            print(f"--- import {name} failed:\n{traceback.format_exc()}", flush=True)
            os._exit(1)
        os._exit(0)
    running += 1
while running:
    failures += os.wait()[1] != 0
    running -= 1
sys.exit(1 if failures else 0)
"""


# modules that need an optional package, by the package: imported only where it is installed
OPTIONAL = {"runtime.utils.tensorboard": "tensorboard"}


def project_modules() -> list[str]:
    """Dotted names of every module and package of runtime/ and compiler/ (but those whose
    optional package is not installed), sorted."""
    missing = [prefix for prefix, package in OPTIONAL.items()
               if importlib.util.find_spec(package) is None]
    names = []
    for package in ("runtime", "compiler"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if not any(name == m or name.startswith(m + ".") for m in missing):
                names.append(name)
    return sorted(names)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_every_module_imports_alone_in_a_fresh_interpreter():
    modules = project_modules()
    assert "compiler.lowering.codegen" in modules and "runtime.ops._op" in modules
    result = subprocess.run([sys.executable, "-c", _IMPORT_EACH_ALONE, *modules], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"modules that do not import alone:\n{result.stdout}"
