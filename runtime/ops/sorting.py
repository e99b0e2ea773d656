"""Sorting and selecting by rank: sort, argsort, topk, kthvalue.

The order is found by `argsort` (not differentiable: indices). The values are then taken with
`select_sorted`, an op named after the function that asked (SortBackward0, TopkBackward0,
KthvalueBackward0, as PyTorch names them) whose vjp puts the gradient back at the indices
(`scatter_add_into_zeros`, the derivative of gather), so it records and traces like gather.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime import _dtype
from runtime.ops._op import Op, VJPContext, apply, moves_data, numel, register
from runtime.ops.shape import reshape, wrap_dim


class ArgSort(Op):
    """Indices that sort along `dim` (ascending or descending; NaN counts as largest, as in
    PyTorch), the first `k` of them when k is given. A sort of equal values keeps their order."""

    name = "argsort"
    differentiable = False

    def flops(self, input_shapes: Sequence[Any], output_shape: Any, **attrs: Any) -> Any:
        """Comparisons of a sort: about n log2 n along the sorted dim, for each row."""
        shape = input_shapes[0]
        size = shape[attrs["dim"]] if shape else 1
        depth = max(1, int(size).bit_length()) if isinstance(size, int) else 1
        return numel(shape) * depth

    def infer(self, inputs: Sequence[Any], *, dim: int, descending: bool, k: int | None) -> Any:
        shape = list(inputs[0].shape)
        if k is not None and shape:
            if not 0 <= k <= shape[dim]:
                raise RuntimeError(f"selected index k out of range (k = {k}, size = {shape[dim]})")
            shape[dim] = k
        return tuple(shape), _dtype.int64

    def compute(self, arrays: Sequence[np.ndarray], *, dim: int, descending: bool,
                k: int | None) -> np.ndarray:
        x = arrays[0]
        if not x.ndim:
            return np.zeros((), np.int64)
        if descending:
            order = _descending_order(x, dim)
        else:
            order = np.argsort(x, axis=dim, kind="stable")  # NaN last, as PyTorch
        if k is not None:
            order = np.take(order, np.arange(k), axis=dim)
        return order.astype(np.int64)


def _descending_order(x: np.ndarray, dim: int) -> np.ndarray:
    """A stable descending argsort along dim, NaN first (the largest, as in PyTorch)."""
    moved = np.moveaxis(x, dim, -1)
    if moved.dtype.kind == "f":
        primary = ~np.isnan(moved)  # False sorts first: NaN leads
        secondary = -np.nan_to_num(moved, nan=0.0)
    else:
        primary = np.zeros(moved.shape, bool)
        secondary = -moved.astype(np.float64 if moved.dtype.kind == "u" else np.int64)
    order = np.lexsort((secondary, primary), axis=-1)
    return np.moveaxis(order, -1, dim)


class SelectSorted(Op):
    """x's values at `index` along `dim` (gather), without `dim` unless keepdim."""
    flops = moves_data

    def __init__(self, name: str, backward_name: str) -> None:
        self.name = name
        self.backward_name = backward_name

    def infer(self, inputs: Sequence[Any], *, dim: int, keepdim: bool) -> Any:
        shape = tuple(inputs[1].shape)
        if not keepdim and shape:
            shape = shape[:dim] + shape[dim + 1:]
        return shape, inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], *, dim: int, keepdim: bool) -> np.ndarray:
        x, index = arrays
        if not x.ndim:
            return x.copy()
        values = np.take_along_axis(x, index, axis=dim)
        return values if keepdim else np.squeeze(values, axis=dim)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (1,), False

    def edge_inputs(self, inputs: Sequence[Any], **attrs: Any) -> Sequence[int]:
        return (0,)

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        from runtime.ops.reduction import scatter_add_into_zeros

        index, dim = ctx.inputs[1], ctx.attrs["dim"]
        if not index.ndim:
            return [grad, None]
        if not ctx.attrs["keepdim"]:
            grad = reshape(grad, tuple(index.shape))
        return [scatter_add_into_zeros(grad, index, dim, ctx.input_shapes[0]), None]


_argsort = register(ArgSort())
_sort_values = register(SelectSorted("sort_values", "SortBackward0"))
_topk_values = register(SelectSorted("topk_values", "TopkBackward0"))
_kthvalue_values = register(SelectSorted("kthvalue_values", "KthvalueBackward0"))


# ----- the op API --------------------------------------------------------------------------------

def argsort(x: Any, dim: int = -1, descending: bool = False) -> Any:
    return apply(_argsort, [x], dim=wrap_dim(dim, x.ndim), descending=bool(descending), k=None)


def sort(x: Any, dim: int = -1, descending: bool = False) -> tuple[Any, Any]:
    dim = wrap_dim(dim, x.ndim)
    index = argsort(x, dim, descending)
    return apply(_sort_values, [x, index], dim=dim, keepdim=True), index


def topk(x: Any, k: int, dim: int = -1, largest: bool = True) -> tuple[Any, Any]:
    dim = wrap_dim(dim, x.ndim)
    index = apply(_argsort, [x], dim=dim, descending=bool(largest), k=int(k))
    return apply(_topk_values, [x, index], dim=dim, keepdim=True), index


def kthvalue(x: Any, k: int, dim: int = -1, keepdim: bool = False) -> tuple[Any, Any]:
    """The k-th smallest value (k counts from 1) along dim, and its index."""
    from runtime.ops.indexing import index as take

    dim = wrap_dim(dim, x.ndim)
    size = x.shape[dim] if x.ndim else 1
    if not 1 <= k <= size:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {dim}")
    order = argsort(x, dim)
    position = take(order, (slice(None),) * dim + (slice(k - 1, k),)) if x.ndim else order
    values = apply(_kthvalue_values, [x, position], dim=dim, keepdim=keepdim)
    if not keepdim and x.ndim:
        position = reshape(position, tuple(values.shape))
    return values, position
