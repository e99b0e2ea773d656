"""softmax and log_softmax along one dimension: primitives of their own for numerical safety
(the maximum is subtracted before exponentiating) and because their derivatives are cheaper from
the saved output than from the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime import _dtype
from runtime.ops import elementwise as ew
from runtime.ops._op import Op, Shape, VJPContext, apply, numel, register
from runtime.ops.reduction import sum
from runtime.ops.shape import to_dtype, wrap_dim


class _SoftmaxFamily(Op):
    def infer(self, inputs: Sequence[Any], *, dim: int) -> Any:
        d = inputs[0].dtype
        if not d.is_floating_point:
            raise NotImplementedError(f'"{self.name}" not implemented for \'{d.scalar_name}\'')
        return tuple(inputs[0].shape), d

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), True

    def flops(self, input_shapes: Sequence[Shape], output_shape: Shape, **attrs: Any) -> Any:
        """max, subtract, exp, sum and divide (or log) per element."""
        return 5 * numel(input_shapes[0])


class Softmax(_SoftmaxFamily):
    name = "softmax"
    backward_name = "SoftmaxBackward0"

    def compute(self, arrays: Sequence[np.ndarray], *, dim: int) -> np.ndarray:
        x = arrays[0]
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        return e / e.sum(axis=dim, keepdims=True)

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        y, dim = ctx.output, ctx.attrs["dim"]
        # J^T g = y * (g - sum(g * y))
        return [ew.mul(y, ew.sub(grad, sum(ew.mul(grad, y), dim, keepdim=True)))]


class LogSoftmax(_SoftmaxFamily):
    name = "log_softmax"
    backward_name = "LogSoftmaxBackward0"

    def compute(self, arrays: Sequence[np.ndarray], *, dim: int) -> np.ndarray:
        x = arrays[0]
        shifted = x - x.max(axis=dim, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        y, dim = ctx.output, ctx.attrs["dim"]
        # J^T g = g - softmax * sum(g)
        return [ew.sub(grad, ew.mul(ew.exp(y), sum(grad, dim, keepdim=True)))]


_softmax = register(Softmax())
_log_softmax = register(LogSoftmax())


def _prepare(x: Any, dim: int | None, dtype: _dtype.dtype | None) -> tuple[Any, int]:
    if dim is None:
        raise TypeError("softmax() missing required argument 'dim' (PyTorch's implicit dim "
                        "choice is deprecated; pass dim=1 for a batch of rows)")
    if dtype is not None:
        x = to_dtype(x, dtype)
    return x, wrap_dim(dim, x.ndim)


def softmax(x: Any, dim: int | None = None, dtype: _dtype.dtype | None = None) -> Any:
    x, dim = _prepare(x, dim, dtype)
    return apply(_softmax, [x], dim=dim)


def log_softmax(x: Any, dim: int | None = None, dtype: _dtype.dtype | None = None) -> Any:
    x, dim = _prepare(x, dim, dtype)
    return apply(_log_softmax, [x], dim=dim)
