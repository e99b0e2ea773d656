"""Canonicalization rewrites: constant folding and algebraic identities that need no numerics.

Each leaves the graph computing exactly the same values (bit for bit, NaN and inf included).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import Node, Value
from compiler.passes.driver import RewriteContext, rewrite


def _scalar(ctx: RewriteContext, value: Value) -> Any:
    array = ctx.constant(value)
    return None if array is None or array.ndim else array.item()


@rewrite("canonicalize")
def fold_constants(node: Node, ctx: RewriteContext) -> Value | None:
    """An op whose inputs are all constants becomes a constant."""
    if not node.inputs or node.op_name == "size":
        return None
    arrays = [ctx.constant(v) for v in node.inputs]
    if any(a is None for a in arrays):
        return None
    if not all(isinstance(s, int) for s in node.output.shape):
        return None
    with np.errstate(all="ignore"):  # np.array, not ascontiguousarray: that makes 0-d 1-d
        result = np.array(node.op.compute(arrays, **node.attrs), dtype=node.output.dtype.numpy,
                          order="C")
    folded = ctx.add_constant(result, name=node.output.name)
    folded.wrapped_number = all(v.wrapped_number for v in node.inputs)
    return folded


def _same_type(a: Value, b: Value) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


@rewrite("canonicalize")
def drop_identity_arithmetic(node: Node, ctx: RewriteContext) -> Value | None:
    """x * 1, 1 * x, x / 1, x + 0, 0 + x, x - 0 -> x (when that does not change shape or dtype)."""
    name = node.op_name
    if name not in ("mul", "div", "add", "sub") or len(node.inputs) != 2:
        return None
    a, b = node.inputs
    identity = 1 if name in ("mul", "div") else 0
    if _scalar(ctx, b) == identity and _same_type(a, node.output):
        return a
    if name in ("mul", "add") and _scalar(ctx, a) == identity and _same_type(b, node.output):
        return b
    return None


@rewrite("canonicalize")
def drop_no_op_shape_change(node: Node, ctx: RewriteContext) -> Value | None:
    """reshape/expand/sum_to/to_dtype/clone that leave shape and dtype as they were -> input."""
    if node.op_name in ("reshape", "expand", "sum_to", "to_dtype", "clone") \
            and _same_type(node.inputs[0], node.output):
        return node.inputs[0]
    if node.op_name == "permute" and node.attrs["dims"] == tuple(range(node.output.ndim)):
        return node.inputs[0]
    return None


@rewrite("canonicalize")
def merge_reshape_chain(node: Node, ctx: RewriteContext) -> Value | None:
    """reshape(reshape(x)) -> reshape(x)."""
    if node.op_name != "reshape":
        return None
    inner = ctx.producer(node.inputs[0])
    if inner is None or inner.op_name != "reshape":
        return None
    return ctx.emit(node.op, [inner.inputs[0]], node.attrs, name=node.output.name,
                    origin=node.origin)


@rewrite("canonicalize")
def merge_permute_chain(node: Node, ctx: RewriteContext) -> Value | None:
    """permute(permute(x, p), q) -> permute(x, p[q]), or x when that is the identity."""
    if node.op_name != "permute":
        return None
    inner = ctx.producer(node.inputs[0])
    if inner is None or inner.op_name != "permute":
        return None
    dims = tuple(inner.attrs["dims"][d] for d in node.attrs["dims"])
    if dims == tuple(range(len(dims))):
        return inner.inputs[0]
    return ctx.emit(node.op, [inner.inputs[0]], {"dims": dims}, name=node.output.name,
                    origin=node.origin)


@rewrite("canonicalize")
def cancel_double_negation(node: Node, ctx: RewriteContext) -> Value | None:
    """neg(neg(x)) -> x."""
    if node.op_name != "neg":
        return None
    inner = ctx.producer(node.inputs[0])
    if inner is not None and inner.op_name == "neg":
        return inner.inputs[0]
    return None
