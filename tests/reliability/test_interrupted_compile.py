"""Ctrl-C during a compile -- even during the first compile's import of sympy -- leaves the
process able to compile again."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runtime import _imports

ROOT = Path(__file__).resolve().parents[2]

# A first compile interrupted (KeyboardInterrupt, as Ctrl-C raises it) when the import of
# sympy reaches `target`, then a second compile of the same model, which must work.
PROGRAM = """
import sys
sys.path.insert(0, {root!r})


class CtrlC:
    fired = False

    def find_spec(self, name, path=None, target=None):
        if name == {target!r} and not self.fired:
            self.fired = True
            raise KeyboardInterrupt
        return None


sys.meta_path.insert(0, CtrlC())
import runtime, compiler

model = runtime.nn.Sequential(runtime.nn.Linear(3, 4), runtime.nn.Tanh())
x = runtime.randn(5, 3)
try:
    compiler.compile(model, (x,))
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted")
fast = compiler.compile(model, (x,))
with runtime.no_grad():
    print("error", float((fast(x) - model(x)).abs().max()))
"""


@pytest.mark.parametrize("target", ["sympy.polys", "sympy.printing"])
def test_a_compile_interrupted_while_importing_sympy_can_be_run_again(target):
    program = textwrap.dedent(PROGRAM).format(root=str(ROOT), target=target)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = done.stdout.splitlines()
    assert first == "interrupted"
    assert second.startswith("error ") and float(second.split()[1]) < 1e-5


def test_forget_orphans_drops_submodules_whose_package_is_gone(monkeypatch):
    import types

    for name in ("halfdone", "halfdone.core", "halfdone.core.numbers", "whole", "whole.part"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    del sys.modules["halfdone"]  # as Python does when the package's own code was interrupted
    removed = _imports.forget_orphans()
    assert sorted(removed) == ["halfdone.core", "halfdone.core.numbers"]
    assert "whole.part" in sys.modules
