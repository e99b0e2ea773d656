"""Reductions over dimensions: sum, mean, amax/amin, argmax/argmin, and gather with its inverse.

`dims` is always a sorted tuple of non-negative dimensions (`dim=None` or `dim=[]` means all of
them, as in PyTorch's `sum()`; a 0-d tensor has none).
The vjp of a reduction broadcasts the incoming gradient back with `expand` (after restoring the
reduced dimensions as size 1), so it is itself made of ops and differentiates again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime import _dtype
from runtime.ops import elementwise as ew
from runtime.ops._op import (
    Op,
    VJPContext,
    apply,
    moves_data,
    one_per_input_element,
    register,
)
from runtime.ops.shape import expand, reshape, to_dtype, wrap_dim


def normalize_dims(dim: Any, ndim: int) -> tuple[int, ...]:
    """`dim` (None, an int, or a sequence) as a sorted tuple of dimensions; () means all."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    wrapped: list[int] = []
    for d in dims:
        w = wrap_dim(d, ndim)
        if w in wrapped:
            raise RuntimeError(f"dim {w} appears multiple times in the list of dims")
        wrapped.append(w)
    if ndim == 0:  # a 0-d tensor accepts dim 0 or -1, and there is nothing to reduce
        return ()
    return tuple(sorted(wrapped)) if dims else tuple(range(ndim))


def reduced_shape(shape: Sequence[Any], dims: tuple[int, ...], keepdim: bool) -> tuple[Any, ...]:
    if keepdim:
        return tuple(1 if i in dims else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def _unreduce(grad: Any, shape: Sequence[Any], dims: tuple[int, ...], keepdim: bool) -> Any:
    """The gradient of a reduced value broadcast back to the input's shape."""
    if not keepdim:
        grad = reshape(grad, reduced_shape(shape, dims, keepdim=True))
    return expand(grad, tuple(shape))


def _count(shape: Sequence[Any], dims: tuple[int, ...]) -> Any:
    count: Any = 1
    for d in dims:
        count = count * shape[d]
    return count


class Reduction(Op):
    """Shared shape and dtype rule of the reductions."""

    flops = one_per_input_element

    def infer(self, inputs: Sequence[Any], *, dims: tuple[int, ...], keepdim: bool) -> Any:
        return reduced_shape(inputs[0].shape, dims, keepdim), inputs[0].dtype


class Sum(Reduction):
    name = "sum"
    backward_name = "SumBackward1"

    def node_name(self, inputs: Sequence[Any], *, dims: tuple[int, ...], keepdim: bool) -> str:
        return "SumBackward0" if len(dims) == inputs[0].ndim and not keepdim else "SumBackward1"

    def infer(self, inputs: Sequence[Any], *, dims: tuple[int, ...], keepdim: bool) -> Any:
        shape, d = super().infer(inputs, dims=dims, keepdim=keepdim)
        return shape, (d if d.is_floating_point else _dtype.int64)

    def compute(self, arrays: Sequence[np.ndarray], *, dims: tuple[int, ...],
                keepdim: bool) -> np.ndarray:
        return arrays[0].sum(axis=dims, keepdims=keepdim)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [_unreduce(grad, ctx.input_shapes[0], ctx.attrs["dims"], ctx.attrs["keepdim"])]


class Mean(Reduction):
    name = "mean"
    backward_name = "MeanBackward1"

    def node_name(self, inputs: Sequence[Any], *, dims: tuple[int, ...], keepdim: bool) -> str:
        return "MeanBackward0" if len(dims) == inputs[0].ndim and not keepdim else "MeanBackward1"

    def infer(self, inputs: Sequence[Any], *, dims: tuple[int, ...], keepdim: bool) -> Any:
        if not inputs[0].dtype.is_floating_point:
            raise RuntimeError(
                "mean(): could not infer output dtype. Input dtype must be either a floating point "
                f"or complex dtype. Got: {inputs[0].dtype.scalar_name}")
        return super().infer(inputs, dims=dims, keepdim=keepdim)

    def compute(self, arrays: Sequence[np.ndarray], *, dims: tuple[int, ...],
                keepdim: bool) -> np.ndarray:
        x = arrays[0]
        count = int(np.prod([x.shape[d] for d in dims]))
        return x.sum(axis=dims, keepdims=keepdim) / x.dtype.type(count)  # nan, silently, if 0

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        shape, dims = ctx.input_shapes[0], ctx.attrs["dims"]
        spread = _unreduce(grad, shape, dims, ctx.attrs["keepdim"])
        return [ew.div(spread, _count(shape, dims))]


class Extremum(Reduction):
    """amax / amin: the gradient is shared equally between the elements equal to the extremum."""

    def __init__(self, name: str, backward_name: str, full_backward_name: str,
                 numpy_reduce: Any) -> None:
        self.name = name
        self.backward_name = backward_name
        self._full_backward_name = full_backward_name  # x.max() with no dim: MaxBackward1
        self._reduce = numpy_reduce

    def node_name(self, inputs: Sequence[Any], *, dims: tuple[int, ...], keepdim: bool) -> str:
        full = len(dims) == inputs[0].ndim and not keepdim
        return self._full_backward_name if full else self.backward_name

    def infer(self, inputs: Sequence[Any], *, dims: tuple[int, ...], keepdim: bool) -> Any:
        shape = inputs[0].shape
        for d in dims:
            if shape[d] == 0:
                raise IndexError(f"{self.name}(): Expected reduction dim {d} to have non-zero "
                                 "size.")
        if not dims and 0 in tuple(shape):
            raise RuntimeError(f"{self.name}(): Expected reduction dim to be specified for "
                               "input.numel() == 0.")
        return super().infer(inputs, dims=dims, keepdim=keepdim)

    def compute(self, arrays: Sequence[np.ndarray], *, dims: tuple[int, ...],
                keepdim: bool) -> np.ndarray:
        return self._reduce(arrays[0], axis=dims, keepdims=keepdim)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (0,), True

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        x, dims, keepdim = ctx.inputs[0], ctx.attrs["dims"], ctx.attrs["keepdim"]
        extremum = _unreduce(ctx.output, x.shape, dims, keepdim)
        is_extremum = to_dtype(ew.eq(x, extremum), x.dtype)
        count = _unreduce(sum(is_extremum, dims, keepdim=True), x.shape, dims, True)
        return [ew.div(ew.mul(_unreduce(grad, x.shape, dims, keepdim), is_extremum), count)]


class ArgExtremum(Op):
    """argmax / argmin: the index of the first extremum along one dimension (or of all)."""

    differentiable = False
    flops = one_per_input_element

    def __init__(self, name: str, numpy_arg: Any) -> None:
        self.name = name
        self._arg = numpy_arg

    def infer(self, inputs: Sequence[Any], *, dim: int | None, keepdim: bool) -> Any:
        shape = inputs[0].shape
        if dim is None:
            return ((1,) * len(shape) if keepdim else ()), _dtype.int64
        if shape[dim] == 0:
            raise IndexError(f"{self.name}(): Expected reduction dim {dim} to have non-zero size.")
        return reduced_shape(shape, (dim,), keepdim), _dtype.int64

    def compute(self, arrays: Sequence[np.ndarray], *, dim: int | None,
                keepdim: bool) -> np.ndarray:
        x = arrays[0]
        if dim is None:
            flat = self._arg(x.reshape(-1))
            return np.full((1,) * x.ndim if keepdim else (), flat, dtype=np.int64)
        return self._arg(x, axis=dim, keepdims=keepdim)


class Gather(Op):
    """out[i][j] = x[i][index[i][j]] along `dim` (torch.gather); used by max(dim) and NLL loss."""

    name = "gather"
    backward_name = "GatherBackward0"
    flops = moves_data

    def infer(self, inputs: Sequence[Any], *, dim: int) -> Any:
        x, index = inputs
        if index.dtype != _dtype.int64:
            raise RuntimeError("gather(): Expected dtype int64 for index")
        if len(index.shape) != len(x.shape):
            raise RuntimeError("Index tensor must have the same number of dimensions as input "
                               "tensor")
        return tuple(index.shape), x.dtype

    def compute(self, arrays: Sequence[np.ndarray], *, dim: int) -> np.ndarray:
        x, index = arrays
        if index.size and (index.min() < -x.shape[dim] or index.max() >= x.shape[dim]):
            raise IndexError(f"index {int(index.max())} is out of bounds for dimension {dim} with "
                             f"size {x.shape[dim]}")
        return np.take_along_axis(x, index, axis=dim)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (1,), False

    def edge_inputs(self, inputs: Sequence[Any], **attrs: Any) -> Sequence[int]:
        return (0,)  # the index gets no gradient

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        index = ctx.inputs[1]
        return [scatter_add_into_zeros(grad, index, ctx.attrs["dim"], ctx.input_shapes[0]), None]


class ScatterAddIntoZeros(Op):
    """zeros(shape) with grad added at `index` along `dim`: the derivative of gather."""

    name = "scatter_add_into_zeros"
    backward_name = "ScatterAddBackward0"
    flops = moves_data

    def infer(self, inputs: Sequence[Any], *, dim: int, shape: tuple[Any, ...]) -> Any:
        return tuple(shape), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], *, dim: int,
                shape: tuple[int, ...]) -> np.ndarray:
        grad, index = arrays
        out = np.zeros(shape, dtype=grad.dtype)
        grid: list[Any] = list(np.indices(index.shape, sparse=True))
        grid[dim] = index
        np.add.at(out, tuple(grid), grad)
        return out

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (1,), False

    def edge_inputs(self, inputs: Sequence[Any], **attrs: Any) -> Sequence[int]:
        return (0,)

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [gather(grad, ctx.attrs["dim"], ctx.inputs[1]), None]


class Prod(Reduction):
    """The product of elements; its vjp divides the output by each input, so the gradient is
    nan where an input is exactly 0 (PyTorch treats zeros separately)."""

    name = "prod"
    backward_name = "ProdBackward1"

    def node_name(self, inputs: Sequence[Any], *, dims: tuple[int, ...], keepdim: bool) -> str:
        return "ProdBackward0" if len(dims) == inputs[0].ndim and not keepdim else "ProdBackward1"

    def infer(self, inputs: Sequence[Any], *, dims: tuple[int, ...], keepdim: bool) -> Any:
        shape, d = super().infer(inputs, dims=dims, keepdim=keepdim)
        return shape, (d if d.is_floating_point else _dtype.int64)

    def compute(self, arrays: Sequence[np.ndarray], *, dims: tuple[int, ...],
                keepdim: bool) -> np.ndarray:
        return arrays[0].prod(axis=dims, keepdims=keepdim)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (0,), True

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        x, dims, keepdim = ctx.inputs[0], ctx.attrs["dims"], ctx.attrs["keepdim"]
        spread = ew.mul(_unreduce(grad, x.shape, dims, keepdim),
                        _unreduce(ctx.output, x.shape, dims, keepdim))
        return [ew.div(spread, x)]


class LogSumExp(Reduction):
    """log(sum(exp(x))) over dims, computed after subtracting the maximum (never overflows);
    its vjp is the gradient times softmax, exp(x - out)."""

    name = "logsumexp"
    backward_name = "LogsumexpBackward0"

    def infer(self, inputs: Sequence[Any], *, dims: tuple[int, ...], keepdim: bool) -> Any:
        shape, d = super().infer(inputs, dims=dims, keepdim=keepdim)
        return shape, (d if d.is_floating_point else _dtype.get_default_dtype())

    def compute(self, arrays: Sequence[np.ndarray], *, dims: tuple[int, ...],
                keepdim: bool) -> np.ndarray:
        x = arrays[0] if arrays[0].dtype.kind == "f" else arrays[0].astype(np.float32)
        if not dims or x.size == 0:
            return np.log(np.exp(x).sum(axis=dims, keepdims=keepdim))
        peak = np.amax(x, axis=dims, keepdims=True)
        peak = np.where(np.isfinite(peak), peak, 0)
        out = np.log(np.exp(x - peak).sum(axis=dims, keepdims=True)) + peak
        return out if keepdim else np.squeeze(out, axis=dims)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (0,), True

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        x, dims, keepdim = ctx.inputs[0], ctx.attrs["dims"], ctx.attrs["keepdim"]
        weights = ew.exp(ew.sub(x, _unreduce(ctx.output, x.shape, dims, keepdim)))
        return [ew.mul(_unreduce(grad, x.shape, dims, keepdim), weights)]


_sum = register(Sum())
_mean = register(Mean())
_amax = register(Extremum("amax", "AmaxBackward0", "MaxBackward1", np.amax))
_amin = register(Extremum("amin", "AminBackward0", "MinBackward1", np.amin))
_argmax = register(ArgExtremum("argmax", np.argmax))
_argmin = register(ArgExtremum("argmin", np.argmin))
_gather = register(Gather())
_prod = register(Prod())
_logsumexp = register(LogSumExp())
_scatter_add = register(ScatterAddIntoZeros())


# ----- the op API --------------------------------------------------------------------------------

def sum(x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:  # noqa: A001
    if dtype is not None:
        x = to_dtype(x, dtype)
    return apply(_sum, [x], dims=normalize_dims(dim, x.ndim), keepdim=keepdim)


def mean(x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    if dtype is not None:
        x = to_dtype(x, dtype)
    return apply(_mean, [x], dims=normalize_dims(dim, x.ndim), keepdim=keepdim)


def prod(x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    if dtype is not None:
        x = to_dtype(x, dtype)
    return apply(_prod, [x], dims=normalize_dims(dim, x.ndim), keepdim=keepdim)


def logsumexp(x: Any, dim: Any, keepdim: bool = False) -> Any:
    return apply(_logsumexp, [x], dims=normalize_dims(dim, x.ndim), keepdim=keepdim)


def amax(x: Any, dim: Any = (), keepdim: bool = False) -> Any:
    return apply(_amax, [x], dims=normalize_dims(dim, x.ndim), keepdim=keepdim)


def amin(x: Any, dim: Any = (), keepdim: bool = False) -> Any:
    return apply(_amin, [x], dims=normalize_dims(dim, x.ndim), keepdim=keepdim)


def argmax(x: Any, dim: int | None = None, keepdim: bool = False) -> Any:
    return apply(_argmax, [x], dim=_arg_dim(dim, x.ndim), keepdim=keepdim)


def argmin(x: Any, dim: int | None = None, keepdim: bool = False) -> Any:
    return apply(_argmin, [x], dim=_arg_dim(dim, x.ndim), keepdim=keepdim)


def _arg_dim(dim: int | None, ndim: int) -> int | None:
    """The dim of argmax/argmin; None (all elements) also for a 0-d tensor's dim 0 or -1."""
    if dim is None:
        return None
    dim = wrap_dim(dim, ndim)
    return dim if ndim else None


def gather(x: Any, dim: int, index: Any) -> Any:
    return apply(_gather, [x, index], dim=wrap_dim(dim, x.ndim))


def scatter_add_into_zeros(grad: Any, index: Any, dim: int, shape: Sequence[Any]) -> Any:
    return apply(_scatter_add, [grad, index], dim=dim, shape=tuple(shape))


def extremum_along(x: Any, dim: int, keepdim: bool, largest: bool) -> tuple[Any, Any]:
    """(values, indices) of max/min along `dim`: the gradient goes to the chosen index only."""
    dim = wrap_dim(dim, x.ndim)
    if x.ndim == 0:
        return (amax if largest else amin)(x), (argmax if largest else argmin)(x)
    index = (argmax if largest else argmin)(x, dim, keepdim=True)
    values = gather(x, dim, index)
    if not keepdim:
        values = reshape(values, reduced_shape(x.shape, (dim,), False))
        index = reshape(index, reduced_shape(x.shape, (dim,), False))
    return values, index
