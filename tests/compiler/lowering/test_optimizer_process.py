"""The optimiser process imports symgrad and its libraries from where this process does, never
from the working directory it happens to run in."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PLANTED = """
import os
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "IMPORTED"), "a") as f:
    f.write(__name__ + " imported in process " + str(os.getpid()) + "\\n")
raise ImportError("planted " + __name__ + " imported")
"""


def test_a_package_planted_in_the_working_directory_is_never_imported(tmp_path):
    work = tmp_path / "work"
    for package in ("llvmlite", "sympy", "compiler"):
        (work / package).mkdir(parents=True)
        (work / package / "__init__.py").write_text(PLANTED)
    program = tmp_path / "program" / "compile_here.py"  # not in the working directory
    program.parent.mkdir()
    program.write_text(textwrap.dedent(f"""
        import sys, warnings
        sys.path.insert(0, {str(ROOT)!r})
        warnings.simplefilter("error", RuntimeWarning)  # no falling back to compiling here
        import compiler, runtime
        from compiler.lowering import target
        model = runtime.nn.Linear(5, 3)
        x = runtime.randn(4, 5)
        fast = compiler.compile(model, (x,))
        with runtime.no_grad():
            assert (fast(x) - model(x)).abs().max().item() < 1e-5
        assert sum(w.served for w in target._optimizers._all) > 0, "no optimiser process served"
        print("compiled")
    """))
    environment = {**os.environ, "SYMGRAD_ARTIFACT_CACHE": "0", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(program)], cwd=work, env=environment,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "compiled"
    marker = tmp_path / "IMPORTED"
    assert not marker.exists(), f"a planted package ran: {marker.read_text()}"


def test_the_optimiser_command_is_isolated_and_leaves_out_the_working_directory(tmp_path,
                                                                                monkeypatch):
    from compiler.lowering import target

    planted = tmp_path / "llvmlite"
    planted.mkdir()
    (planted / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", str(tmp_path), *sys.path])
    command = target.optimizer_command()
    assert command[:3] == [sys.executable, "-I", "-c"]
    assert repr(str(tmp_path)) not in command[3] and "''" not in command[3]
    assert f"[{str(ROOT)!r}" in command[3], "symgrad's own root must come first"
    assert "PYTHONPATH" not in target.optimizer_environment()
