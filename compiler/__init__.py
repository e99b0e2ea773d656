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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what a type checker sees; at run time each name loads on first use
    from compiler._compile import CompiledModule, compile
    from compiler._explain import Report, explain
    from compiler._export import ExportError, ExportResult, export
    from compiler.autodiff import grad
    from compiler.errors import CompileError
    from compiler.interpret import run as run_graph
    from compiler.ir import Graph
    from compiler.passes import simplify
    from compiler.tracing import TracingError, trace
    from compiler.train_step import compile_train_step

_PUBLIC = {
    "trace": "compiler.tracing",
    "TracingError": "compiler.tracing",
    "grad": "compiler.autodiff",
    "simplify": "compiler.passes",
    "compile": "compiler._compile",
    "CompiledModule": "compiler._compile",
    "compile_train_step": "compiler.train_step",
    "CompileError": "compiler.errors",
    "Graph": "compiler.ir",
    "run_graph": "compiler.interpret",
    "explain": "compiler._explain",
    "Report": "compiler._explain",
    "export": "compiler._export",
    "ExportError": "compiler._export",
    "ExportResult": "compiler._export",
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
