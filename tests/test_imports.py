"""The modules of runtime/ and compiler/ import without cycles.

Two checks. Every module imports on its own in a fresh interpreter: one forked child per module,
in sorted order, from a parent that imported only the third-party packages (numpy, sympy,
llvmlite), a few at a time, so it costs no full interpreter start per module. And the module
graph, read from the source with `ast` (imports inside functions included, since they run too;
`if TYPE_CHECKING:` blocks left out, since they never run), has no cycle: a cycle held up by
an import placed inside a function does not fail the first check, but it still ties the
modules together.
"""

from __future__ import annotations

import ast
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


def module_paths() -> dict[str, Path]:
    """Every module and package of runtime/ and compiler/: dotted name -> source file."""
    paths = {}
    for package in ("runtime", "compiler"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return paths


def project_modules() -> list[str]:
    """Dotted names of every module and package of runtime/ and compiler/ (but those whose
    optional package is not installed), sorted."""
    missing = [prefix for prefix, package in OPTIONAL.items()
               if importlib.util.find_spec(package) is None]
    return sorted(name for name in module_paths()
                  if not any(name == m or name.startswith(m + ".") for m in missing))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_every_module_imports_alone_in_a_fresh_interpreter():
    modules = project_modules()
    assert "compiler.lowering.codegen" in modules and "runtime.ops._op" in modules
    result = subprocess.run([sys.executable, "-c", _IMPORT_EACH_ALONE, *modules], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"modules that do not import alone:\n{result.stdout}"


# Cycles that stay, each with the reason. A new cycle fails the test; so does an entry here that
# is no longer a cycle (remove it).
ALLOWED_CYCLES: dict[frozenset[str], str] = {
    frozenset({
        "runtime", "runtime.nn", "runtime.nn._spatial_functional", "runtime.nn.activation",
        "runtime.nn.attention", "runtime.nn.conv", "runtime.nn.dropout", "runtime.nn.functional",
        "runtime.nn.linear", "runtime.nn.loss", "runtime.nn.normalization", "runtime.nn.pooling",
        "runtime.nn.sparse", "runtime.nn.utils", "runtime.nn.utils.clip_grad",
    }): "runtime.nn's functions call the public namespace (`runtime.where`, `runtime.zeros`) as "
        "model code does; runtime/__init__.py imports nn after everything they use",
}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, path: Path, modules: set[str]) -> set[str]:
    """The project modules that `module` imports anywhere in its source (functions included),
    except under `if TYPE_CHECKING:`. `from a import b` names the module a.b when there is one,
    else the package a."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[:len(package) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules and m != module}


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def import_cycles() -> list[list[str]]:
    paths = module_paths()
    graph = {m: imports_of(m, p, set(paths)) for m, p in paths.items()}
    return [c for c in strongly_connected_components(graph) if len(c) > 1]


def test_the_cycle_finder_sees_imports_inside_functions_but_not_type_checking_blocks(tmp_path):
    source = tmp_path / "a.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.c\n"
                      "def f():\n    from pkg import b\n")
    assert imports_of("pkg.a", source, {"pkg.a", "pkg.b", "pkg.c"}) == {"pkg.b"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected_components(graph) == [["a", "b", "c"], ["d"]]


def test_no_import_cycles_between_project_modules():
    cycles = {frozenset(c): c for c in import_cycles()}
    new = [c for key, c in cycles.items() if key not in ALLOWED_CYCLES]
    gone = [sorted(key) for key in ALLOWED_CYCLES if key not in cycles]
    assert not new, "modules that import each other (directly or round a loop):\n" + "\n".join(
        " <-> ".join(c) for c in new) + ("\nbreak each: move what both need into the lower "
                                         "module, pass a function instead of importing back, "
                                         "or register the upper module into the lower one")
    assert not gone, f"no longer a cycle; remove it from ALLOWED_CYCLES: {gone}"
