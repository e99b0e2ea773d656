"""Matrix product in all of torch.matmul's cases: 1-D x 1-D (dot), 2-D x 1-D (mv), 1-D x 2-D,
2-D x 2-D (mm), and batched products with broadcast batch dimensions.

The vjp promotes 1-D operands to matrices, multiplies by the transposed other operand, sums over
broadcast batch dimensions, and reshapes back: all with ops, so it differentiates again and traces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.ops._broadcast import broadcast_shapes
from runtime.ops._op import Op, Shape, VJPContext, apply, numel, register
from runtime.ops.shape import reshape, sum_to, transpose


def matmul_shape(a: Sequence[Any], b: Sequence[Any]) -> tuple[Any, ...]:
    """torch.matmul's result shape; RuntimeError naming both shapes when they do not fit."""
    if len(a) == 0 or len(b) == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are "
                           f"{len(a)}D and {len(b)}D")
    a2 = (1, *a) if len(a) == 1 else tuple(a)
    b2 = (*b, 1) if len(b) == 1 else tuple(b)
    batch = broadcast_shapes(a2[:-2], b2[:-2])  # first, as PyTorch checks it
    if a2[-1] != b2[-2]:
        raise RuntimeError(_mismatch_message(tuple(a), tuple(b)))
    shape = (*batch, a2[-2], b2[-1])
    if len(b) == 1:
        shape = shape[:-1]
    if len(a) == 1:
        shape = shape[:-2] + shape[-1:] if len(b) > 1 else shape[:-1]
    return tuple(shape)


def _mismatch_message(a: tuple[Any, ...], b: tuple[Any, ...]) -> str:
    """PyTorch's words for inner sizes that differ; a batched product names both full shapes."""
    if len(a) == 1 and len(b) == 1:
        return (f"inconsistent tensor size, expected tensor [{a[0]}] and src [{b[0]}] to have the "
                f"same number of elements, but got {a[0]} and {b[0]} elements respectively")
    rows: Any = 1
    for s in a[:-1]:
        rows = rows * s
    if len(b) == 1:
        return f"size mismatch, got input ({rows}), mat ({rows}x{a[-1]}), vec ({b[0]})"
    if len(b) == 2:
        return f"mat1 and mat2 shapes cannot be multiplied ({rows}x{a[-1]} and {b[0]}x{b[1]})"
    return ("mat1 and mat2 shapes cannot be multiplied "
            f"({'x'.join(map(str, a))} and {'x'.join(map(str, b))})")


class MatMul(Op):
    name = "matmul"
    backward_name = "MmBackward0"

    def infer(self, inputs: Sequence[Any], **attrs: Any) -> Any:
        a, b = inputs
        if a.dtype != b.dtype:
            raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                               f"{a.dtype.c_name} != {b.dtype.c_name}")
        return matmul_shape(a.shape, b.shape), a.dtype

    def node_name(self, inputs: Sequence[Any], **attrs: Any) -> str:
        a, b = (len(t.shape) for t in inputs)
        if a == 1 and b == 1:
            return "DotBackward0"
        if a == 2 and b == 1:
            return "MvBackward0"
        return "MmBackward0" if max(a, b) <= 2 else "BmmBackward0"

    def compute(self, arrays: Sequence[np.ndarray], **attrs: Any) -> np.ndarray:
        return np.matmul(arrays[0], arrays[1])

    def flops(self, input_shapes: Sequence[Shape], output_shape: Shape, **attrs: Any) -> Any:
        """A multiply and an add per output element and step of the inner dimension."""
        return 2 * numel(output_shape) * input_shapes[0][-1]

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        # d/da needs b and d/db needs a.
        needed = ((1, needs_input_grad[0]), (0, needs_input_grad[1]))
        return [i for i, need in needed if need], False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        a, b = ctx.inputs
        a_shape, b_shape = ctx.input_shapes
        a2_shape = (1, *a_shape) if len(a_shape) == 1 else tuple(a_shape)
        b2_shape = (*b_shape, 1) if len(b_shape) == 1 else tuple(b_shape)
        batch = broadcast_shapes(a2_shape[:-2], b2_shape[:-2])
        grad = reshape(grad, (*batch, a2_shape[-2], b2_shape[-1]))
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            b2 = reshape(b, b2_shape)
            grad_a = reshape(sum_to(matmul(grad, transpose(b2, -1, -2)), a2_shape), a_shape)
        if ctx.needs_input_grad[1]:
            a2 = reshape(a, a2_shape)
            grad_b = reshape(sum_to(matmul(transpose(a2, -1, -2), grad), b2_shape), b_shape)
        return [grad_a, grad_b]


_matmul = register(MatMul())


def matmul(a: Any, b: Any) -> Any:
    """torch.matmul: the matrix product, with 1-D and batched operands."""
    return apply(_matmul, [a, b])
