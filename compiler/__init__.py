"""symgrad's compiler: model -> IR -> reverse-mode IR -> simplified IR -> LLVM -> native code.

    >>> import runtime as torch, compiler
    >>> graph = compiler.trace(model, (torch.randn(64, 1, 28, 28),))   # the forward IR
    >>> print(compiler.grad(graph))                                    # reverse mode, as built
    >>> print(compiler.simplify(compiler.grad(graph)))               # after the rewrites
    >>> fast = compiler.compile(model, (torch.randn(64, 1, 28, 28),)) # native forward/backward

The compiler depends on `runtime`, never the other way round. Public names load their modules
on first use, so `import compiler` stays light.
"""

from __future__ import annotations

import sys
import types
from typing import Any

_PUBLIC = {
    "trace": "compiler.tracing",
    "TracingError": "compiler.tracing",
    "grad": "compiler.autodiff",
    "simplify": "compiler.passes",
    "compile": "compiler.compile",
    "CompiledModule": "compiler.compile",
    "compile_train_step": "compiler.train_step",
    "CompileError": "compiler.errors",
    "Graph": "compiler.ir",
    "run_graph": "compiler.interpret",
    "explain": "compiler.explain",
    "Report": "compiler.explain",
    "export": "compiler.export",
    "ExportError": "compiler.export",
    "ExportResult": "compiler.export",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'compiler' has no attribute {name!r}")
    attribute = "run" if name == "run_graph" else name
    from runtime._imports import import_whole  # an interrupted import can be retried

    value = getattr(import_whole(module), attribute)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """`compiler`'s module type: importing a submodule that shares a public function's name
    (compiler.compile, compiler.export, compiler.explain) must not replace the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _PUBLIC and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
