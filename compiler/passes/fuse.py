"""Elementwise fusion: a chain of elementwise ops becomes one node with one sympy expression.

A producer is fused into its consumer when both are elementwise, the consumer is its only user,
and it has the consumer's shape (so nothing is computed more than once). 0-d constants become
numbers inside the expression. The fused body is simplified by sympy when small; its derivative,
should the graph be differentiated again, comes from sympy like any elementwise op's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy

from compiler.ir import Node, Value
from compiler.passes.driver import RewriteContext, rewrite
from runtime.ops.elementwise import Elementwise
from runtime.ops.elementwise import _finite_wherever as finite_wherever

_SIMPLIFY_LIMIT = 40  # sympy.simplify only bodies with fewer operations than this
_SIMPLIFY_MAX_INPUTS = 4  # and of at most this many inputs (the finiteness probe is a grid)


class FusedElementwise(Elementwise):
    """An elementwise op made by fusion: `expr` over symbols a0, a1, ..., and a fixed dtype."""

    def __init__(self, expr: Any, symbols: Sequence[Any], out_dtype: Any) -> None:
        names = [s.name for s in symbols]
        super().__init__("fused", "FusedBackward0", lambda *a, **k: None, symbols=names,
                         expr=expr, result="promote")
        self.__dict__["symbols"] = tuple(symbols)
        self.out_dtype = out_dtype
        self.fused_expr = expr

    def infer(self, inputs: Sequence[Any], **attrs: Any) -> Any:
        shape, _ = super().infer(inputs, **attrs)
        return shape, self.out_dtype

    def describe(self) -> str:
        return str(self.expr)


def _expression_of(node: Node) -> tuple[Any, list[Any]]:
    op: Elementwise = node.op
    return op.expr, list(op.symbols)


def _simplified(expr: Any, symbols: list[Any]) -> Any:
    """sympy's simplification of a fused body when it is small and stays finite wherever the
    body is (simplify likes exp(x)/(exp(x) + 1), which is inf/inf at x = 1e4)."""
    if sympy.count_ops(expr) >= _SIMPLIFY_LIMIT or len(symbols) > _SIMPLIFY_MAX_INPUTS:
        return expr
    simpler = sympy.simplify(expr)
    return simpler if finite_wherever(simpler, expr, symbols) else expr


@rewrite("fuse")
def fuse_elementwise(node: Node, ctx: RewriteContext) -> Value | None:
    """Merge single-use elementwise producers (and 0-d constants) into this elementwise node."""
    if not isinstance(node.op, Elementwise) or not node.output.dtype.is_floating_point:
        return None
    expr, symbols = _expression_of(node)
    inputs: list[Value] = []
    symbol_of: dict[Value, Any] = {}
    replacements: dict[Any, Any] = {}
    changed = False

    def fresh(value: Value) -> Any:
        if value not in symbol_of:
            symbol_of[value] = sympy.Symbol(f"a{len(inputs)}", real=True)
            inputs.append(value)
        return symbol_of[value]

    for symbol, value in zip(symbols, node.inputs):
        constant = ctx.constant(value)
        producer = ctx.producer(value)
        if constant is not None and constant.ndim == 0 and value.dtype.is_floating_point:
            replacements[symbol] = sympy.Float(constant.item())
            changed = True
        elif (producer is not None and isinstance(producer.op, Elementwise)
              and ctx.uses.get(value, 0) == 1 and value.shape == node.output.shape
              and value.dtype == node.output.dtype):
            inner_expr, inner_symbols = _expression_of(producer)
            inner = inner_expr.subs({s: fresh(v) for s, v in zip(inner_symbols, producer.inputs)},
                                    simultaneous=True)
            replacements[symbol] = inner
            changed = True
        else:
            replacements[symbol] = fresh(value)
    if not changed:
        return None
    fused = expr.subs(replacements, simultaneous=True)
    symbols = [symbol_of[v] for v in inputs]
    op = FusedElementwise(_simplified(fused, symbols), symbols, node.output.dtype)
    return ctx.emit(op, inputs, name=node.output.name, origin=node.origin)
