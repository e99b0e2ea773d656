"""Layout rewrites: transposes folded into the matrix product's operand strides.

matmul(x, permute(w, (1, 0))) -- what `x @ w.T` (nn.Linear) and every backward product trace
to -- becomes gemm(x, w, transpose_b=True): the GEMM reads w with swapped strides, and the
transposed copy is never made.
"""

from __future__ import annotations

from typing import Any

import sympy

from compiler.ir import Node, Value
from compiler.ops import FusedElementwise, gemm, gemm_accumulate
from compiler.passes.driver import RewriteContext, rewrite
from runtime.ops.elementwise import Elementwise


def _transposed_source(ctx: RewriteContext, value: Value) -> Value | None:
    producer = ctx.producer(value)
    if producer is not None and producer.op_name == "permute" and producer.attrs["dims"] == (1, 0):
        return producer.inputs[0]
    return None


@rewrite("layout")
def fold_transpose_into_gemm(node: Node, ctx: RewriteContext) -> Value | None:
    """matmul(permute(a), b) / matmul(a, permute(b)) of 2-D operands -> gemm with flags."""
    if node.op_name != "matmul" or any(v.ndim != 2 for v in node.inputs):
        return None
    a, b = node.inputs
    source_a, source_b = _transposed_source(ctx, a), _transposed_source(ctx, b)
    if source_a is None and source_b is None:
        return None
    attrs = {"transpose_a": source_a is not None, "transpose_b": source_b is not None}
    return ctx.emit(gemm, [source_a or a, source_b or b], attrs, name=node.output.name,
                    origin=node.origin)


@rewrite("layout")
def transpose_of_gemm(node: Node, ctx: RewriteContext) -> Value | None:
    """permute(gemm(a, b), (1, 0)) -> gemm(b, a) with flipped flags: (AB)^T = B^T A^T, so the
    weight gradient is written in the weight's layout directly, with no transposed copy."""
    if node.op_name != "permute" or node.attrs["dims"] != (1, 0):
        return None
    inner = ctx.producer(node.inputs[0])
    if inner is None or inner.op_name not in ("gemm", "matmul") or ctx.uses.get(inner.output) != 1:
        return None
    if any(v.ndim != 2 for v in inner.inputs):
        return None
    a, b = inner.inputs
    attrs = {"transpose_a": not inner.attrs.get("transpose_b", False),
             "transpose_b": not inner.attrs.get("transpose_a", False)}
    return ctx.emit(gemm, [b, a], attrs, name=node.output.name, origin=node.origin)


@rewrite("layout")
def fold_update_into_gemm(node: Node, ctx: RewriteContext) -> Value | None:
    """p + s * (A @ B) with s a scalar expression -> gemm_accumulate(p, (s * A), B).

    The SGD update of a weight, p - lr * (g.T @ x), becomes one GEMM that adds (-lr * g).T @ x
    onto p: the gradient is never written out, and no separate pass over p is made. Scaling the
    smaller operand costs a few thousand multiplications instead of a pass over the weight.
    """
    if not isinstance(node.op, Elementwise) or node.output.ndim != 2:
        return None
    expr, symbols = node.op.expr, list(node.op.symbols)
    for symbol, value in zip(symbols, node.inputs):
        producer = ctx.producer(value)
        if producer is None or producer.op_name not in ("gemm", "matmul") or \
                ctx.uses.get(value) != 1 or value.shape != node.output.shape or \
                any(v.ndim != 2 for v in producer.inputs):
            continue
        if not _is_linear_in(expr, symbol):
            continue  # checked before any sympy call: diff and expand of a big body cost seconds
        rest = expr.subs(symbol, 0)
        if not rest.is_Symbol:
            continue
        scale = sympy.diff(expr, symbol)
        by_symbol = dict(zip(symbols, node.inputs))
        if symbol in scale.free_symbols or any(by_symbol[s].ndim != 0 for s in scale.free_symbols):
            continue
        if rest not in by_symbol or by_symbol[rest].shape != node.output.shape or \
                by_symbol[rest].dtype != node.output.dtype:
            continue
        a, b = producer.inputs
        scalars = [by_symbol[s] for s in sorted(scale.free_symbols, key=lambda s: s.name)]
        operand = sympy.Symbol("a0", real=True)
        scalar_symbols = [sympy.Symbol(f"a{i + 1}", real=True) for i in range(len(scalars))]
        scale_body = scale.subs(dict(zip(sorted(scale.free_symbols, key=lambda s: s.name),
                                         scalar_symbols)), simultaneous=True)
        scaled = ctx.emit(FusedElementwise(operand * scale_body, [operand, *scalar_symbols],
                                           a.dtype), [a, *scalars],
                          name=f"{node.output.name}.scaled")
        attrs = {"transpose_a": producer.attrs.get("transpose_a", False),
                 "transpose_b": producer.attrs.get("transpose_b", False)}
        return ctx.emit(gemm_accumulate, [by_symbol[rest], scaled, b], attrs,
                        name=node.output.name, origin=node.origin)
    return None


def _is_linear_in(expr: Any, symbol: Any) -> bool:
    """Whether `expr` is c * symbol + d with c and d free of `symbol`, read off the tree in one
    walk: `symbol` occurs only under sums and products, in one factor of each product."""
    if expr == symbol or not expr.has(symbol):
        return True
    if expr.is_Add:
        return all(_is_linear_in(term, symbol) for term in expr.args)
    if expr.is_Mul:
        holding = [factor for factor in expr.args if factor.has(symbol)]
        return len(holding) == 1 and _is_linear_in(holding[0], symbol)
    return False
