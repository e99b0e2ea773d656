"""Elementwise fusion: a chain of elementwise ops becomes one node with one sympy expression.

A producer is fused into its consumer when both are elementwise, the consumer is its only user,
and it has the consumer's shape (so nothing is computed more than once). 0-d constants become
numbers inside the expression. Its derivative, should the graph be differentiated again (explain
shows it), is sympy's `diff`, almost everywhere, and not simplified either.

Fusion only substitutes bodies into each other (each op's own derivative was simplified once, by
the op); it must never call `sympy.simplify`, whose time is unbounded (exponential in nested tanh,
endless recursion on some Piecewise bodies) and which brings in forms the emitter may not lower
(E, Piecewise without a default). A body is fused only while it stays under _MAX_BODY_SIZE nodes,
so a fused body, and every later pass over it, is bounded too.
"""

from __future__ import annotations

from typing import Any

import sympy

from compiler.ir import Node, Value
from compiler.ops import FusedElementwise
from compiler.passes.driver import RewriteContext, rewrite
from runtime.ops.elementwise import Elementwise

# Nodes of a fused body's expression tree beyond which a producer is left unfused: a body that
# mentions its input k times copies the producer's body k times, so sizes can multiply; and
# sympy walks (prints, substitutes) a body recursively, so a chain of 300 tanh would be too deep.
_MAX_BODY_SIZE = 100


def _expression_of(node: Node) -> tuple[Any, list[Any]]:
    op: Elementwise = node.op
    return op.expr, list(op.symbols)


def _size(expr: Any) -> int:
    """Nodes of `expr` as a tree (what a walk over it visits)."""
    return sum(1 for _ in sympy.preorder_traversal(expr))


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
    size = _size(expr)

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
              and value.dtype == node.output.dtype
              and size + expr.count(symbol) * _size(producer.op.expr) <= _MAX_BODY_SIZE):
            inner_expr, inner_symbols = _expression_of(producer)
            inner = inner_expr.subs({s: fresh(v) for s, v in zip(inner_symbols, producer.inputs)},
                                    simultaneous=True)
            replacements[symbol] = inner
            size += expr.count(symbol) * _size(inner_expr)
            changed = True
        else:
            replacements[symbol] = fresh(value)
    if not changed:
        return None
    fused = expr.subs(replacements, simultaneous=True)
    symbols = [symbol_of[v] for v in inputs]
    op = FusedElementwise(fused, symbols, node.output.dtype)
    return ctx.emit(op, inputs, name=node.output.name, origin=node.origin)
