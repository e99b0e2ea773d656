"""Scans along one dimension: cumsum and cumprod (running sums and products).

The vjp of a running sum is the reversed running sum of the gradient, written here as
`total - cumsum(grad) + grad` (no flip needed); the vjp of a running product is that of the
running sum of `grad * out`, divided by the input. That division makes cumprod's gradient nan
where an input is exactly 0 (PyTorch treats zeros separately).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime import _dtype
from runtime.ops import elementwise as ew
from runtime.ops._op import Op, VJPContext, apply, one_per_input_element, register
from runtime.ops.shape import expand, wrap_dim


class Scan(Op):
    flops = one_per_input_element

    def __init__(self, name: str, backward_name: str, numpy_scan: Any) -> None:
        self.name = name
        self.backward_name = backward_name
        self._scan = numpy_scan

    def infer(self, inputs: Sequence[Any], *, dim: int) -> Any:
        d = inputs[0].dtype
        return tuple(inputs[0].shape), (d if d.is_floating_point else _dtype.int64)

    def compute(self, arrays: Sequence[np.ndarray], *, dim: int) -> np.ndarray:
        x = arrays[0]
        return self._scan(x, axis=dim) if x.ndim else x.copy()


class CumSum(Scan):
    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [reversed_cumsum(grad, ctx.attrs["dim"])]


class CumProd(Scan):
    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (0,), True

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        spread = reversed_cumsum(ew.mul(grad, ctx.output), ctx.attrs["dim"])
        return [ew.div(spread, ctx.inputs[0])]


_cumsum = register(CumSum("cumsum", "CumsumBackward0", np.cumsum))
_cumprod = register(CumProd("cumprod", "CumprodBackward0", np.cumprod))


def reversed_cumsum(x: Any, dim: int) -> Any:
    """out[i] = sum of x[j] for j >= i along dim."""
    from runtime.ops.reduction import sum

    if not x.ndim:
        return x
    total = expand(sum(x, (dim,), keepdim=True), tuple(x.shape))
    return ew.add(ew.sub(total, cumsum(x, dim)), x)


def cumsum(x: Any, dim: int, *, dtype: _dtype.dtype | None = None) -> Any:
    from runtime.ops.shape import to_dtype

    if dtype is not None:
        x = to_dtype(x, dtype)
    return apply(_cumsum, [x], dim=wrap_dim(dim, x.ndim))


def cumprod(x: Any, dim: int, *, dtype: _dtype.dtype | None = None) -> Any:
    from runtime.ops.shape import to_dtype

    if dtype is not None:
        x = to_dtype(x, dtype)
    return apply(_cumprod, [x], dim=wrap_dim(dim, x.ndim))
