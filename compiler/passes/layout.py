"""Layout rewrites: transposes folded into the matrix product's operand strides.

matmul(x, permute(w, (1, 0))) -- what `x @ w.T` (nn.Linear) and every backward product trace
to -- becomes gemm(x, w, transpose_b=True): the GEMM reads w with swapped strides, and the
transposed copy is never made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from compiler.ir import Node, Value
from compiler.passes.driver import RewriteContext, rewrite
from runtime.ops._op import Op
from runtime.ops.matmul import matmul_shape


class Gemm(Op):
    """C = op(A) @ op(B) for 2-D A and B, op = transpose where the flag says so."""

    name = "gemm"
    backward_name = "MmBackward0"
    differentiable = False  # only made after differentiation

    def infer(self, inputs: Sequence[Any], *, transpose_a: bool, transpose_b: bool) -> Any:
        a, b = inputs
        a_shape = tuple(a.shape)[::-1] if transpose_a else tuple(a.shape)
        b_shape = tuple(b.shape)[::-1] if transpose_b else tuple(b.shape)
        return matmul_shape(a_shape, b_shape), a.dtype

    def compute(self, arrays: Sequence[np.ndarray], *, transpose_a: bool,
                transpose_b: bool) -> np.ndarray:
        a, b = arrays
        return np.matmul(a.T if transpose_a else a, b.T if transpose_b else b)


gemm = Gemm()


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
