"""Structured ops that move or sum elements without arithmetic on them: broadcasting and its
inverse, reshape, permute and transpose, dtype conversion and clone.

`expand` and `sum_to` are each other's derivative; so are `reshape` with itself and `permute` with
its inverse permutation. Every vjp is written with these functions, so it records and traces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime import _dtype
from runtime.ops._op import (
    Op,
    VJPContext,
    apply,
    moves_data,
    one_per_input_element,
    register,
)


def _is_one(size: Any) -> bool:
    return size == 1


class Expand(Op):
    """Broadcast to `shape` (new leading dims, size-1 dims stretched); PyTorch's expand."""

    name = "expand"
    backward_name = "ExpandBackward0"
    is_view = True
    preserves_elements = True
    flops = moves_data

    def infer(self, inputs: Sequence[Any], *, shape: tuple[Any, ...]) -> Any:
        x = inputs[0]
        lead = len(shape) - len(x.shape)
        if lead < 0:
            raise RuntimeError(
                f"expand(runtime.{x.dtype.scalar_name}Tensor{{{list(x.shape)}}}, "
                f"size={list(shape)}): the number of sizes provided ({len(shape)}) must be "
                f"greater or equal to the number of dimensions in the tensor ({len(x.shape)})")
        for i, size in enumerate(x.shape):
            if size != shape[lead + i] and not _is_one(size):
                raise RuntimeError(
                    f"The expanded size of the tensor ({shape[lead + i]}) must match the existing "
                    f"size ({size}) at non-singleton dimension {lead + i}.  Target sizes: "
                    f"{list(shape)}.  Tensor sizes: {list(x.shape)}")
        return tuple(shape), x.dtype

    def compute(self, arrays: Sequence[np.ndarray], *, shape: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(arrays[0], shape)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [sum_to(grad, ctx.input_shapes[0])]


class SumTo(Op):
    """Sum a broadcast result back to `shape`: the derivative of broadcasting."""

    name = "sum_to"
    backward_name = "SumToBackward0"
    flops = one_per_input_element

    def infer(self, inputs: Sequence[Any], *, shape: tuple[Any, ...]) -> Any:
        return tuple(shape), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], *, shape: tuple[int, ...]) -> np.ndarray:
        return _sum_to_array(arrays[0], shape)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [expand(grad, ctx.input_shapes[0])]


def _sum_to_array(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and a.shape[lead + i] != 1)
    out = a.sum(axis=axes, keepdims=True) if axes else a
    return out.reshape(shape)


class Reshape(Op):
    """Same elements in a new shape (view, reshape, flatten, squeeze, unsqueeze)."""

    name = "reshape"
    backward_name = "ViewBackward0"
    is_view = True
    aliases_input = True
    preserves_elements = True
    flops = moves_data

    def infer(self, inputs: Sequence[Any], *, shape: tuple[Any, ...]) -> Any:
        return tuple(shape), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], *, shape: tuple[int, ...]) -> np.ndarray:
        return arrays[0].reshape(shape)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [reshape(grad, ctx.input_shapes[0])]

    def write_back(self, base: Any, view_value: Any, **attrs: Any) -> Any:
        return reshape(view_value, base.shape)


class Permute(Op):
    """Reorder dimensions: output dim i is input dim dims[i] (permute, transpose, t, mT)."""

    name = "permute"
    backward_name = "PermuteBackward0"
    is_view = True
    preserves_elements = True
    flops = moves_data

    def infer(self, inputs: Sequence[Any], *, dims: tuple[int, ...]) -> Any:
        shape = inputs[0].shape
        if len(dims) != len(shape):
            raise RuntimeError("permute(sparse_coo): number of dimensions in the tensor input does "
                               "not match the length of the desired ordering of dimensions i.e. "
                               f"input.dim() = {len(shape)} is not equal to len(dims) = "
                               f"{len(dims)}")
        if sorted(dims) != list(range(len(shape))):
            raise RuntimeError("permute(): duplicate dims are not allowed.")
        return tuple(shape[d] for d in dims), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], *, dims: tuple[int, ...]) -> np.ndarray:
        return arrays[0].transpose(dims)

    def node_name(self, inputs: Sequence[Any], *, dims: tuple[int, ...]) -> str:
        swapped = [i for i, d in enumerate(dims) if d != i]
        return "TransposeBackward0" if len(swapped) == 2 else "PermuteBackward0"

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [permute(grad, _inverse(ctx.attrs["dims"]))]

    def write_back(self, base: Any, view_value: Any, *, dims: tuple[int, ...]) -> Any:
        return permute(view_value, _inverse(dims))


def _inverse(dims: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(dims))


class ToDtype(Op):
    """Convert elements to another dtype (to, float, double, type)."""

    name = "to_dtype"
    backward_name = "ToCopyBackward0"
    preserves_elements = True
    flops = moves_data

    def infer(self, inputs: Sequence[Any], *, dtype: _dtype.dtype) -> Any:
        return tuple(inputs[0].shape), dtype

    def compute(self, arrays: Sequence[np.ndarray], *, dtype: _dtype.dtype) -> np.ndarray:
        return arrays[0].astype(dtype.numpy)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [to_dtype(grad, ctx.input_dtypes[0])]


class Clone(Op):
    """A copy with its own memory (clone, contiguous when a copy is needed)."""

    name = "clone"
    backward_name = "CloneBackward0"
    preserves_elements = True
    flops = moves_data

    def infer(self, inputs: Sequence[Any], **attrs: Any) -> Any:
        return tuple(inputs[0].shape), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], **attrs: Any) -> np.ndarray:
        return np.array(arrays[0], order="C", copy=True)  # (ascontiguousarray makes 0-d 1-d)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [grad]


class Concat(Op):
    """Join tensors along an existing dimension (cat; stack is unsqueeze + cat)."""

    name = "cat"
    backward_name = "CatBackward0"
    flops = moves_data

    def infer(self, inputs: Sequence[Any], *, dim: int) -> Any:
        first = tuple(inputs[0].shape)
        total: Any = 0
        for t in inputs:
            shape = tuple(t.shape)
            if len(shape) != len(first) or any(a != b for i, (a, b) in enumerate(zip(shape, first))
                                               if i != dim):
                raise RuntimeError(f"Sizes of tensors must match except in dimension {dim}. "
                                   f"Expected size {list(first)} but got size {list(shape)} for "
                                   "one of the tensors in the list.")
            total = total + shape[dim]
        dtypes = [t.dtype for t in inputs]
        return first[:dim] + (total,) + first[dim + 1:], _dtype.result_dtype(dtypes, [], [])

    def compute(self, arrays: Sequence[np.ndarray], *, dim: int) -> np.ndarray:
        return np.concatenate(arrays, axis=dim)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        dim = ctx.attrs["dim"]
        grads, start = [], 0
        for shape in ctx.input_shapes:
            key = (slice(None),) * dim + (slice(start, start + shape[dim]),)
            grads.append(grad[key])  # (runtime.ops.indexing.index, which imports this module)
            start = start + shape[dim]
        return grads


_expand = register(Expand())
_cat = register(Concat())
_sum_to = register(SumTo())
_reshape = register(Reshape())
_permute = register(Permute())
_to_dtype = register(ToDtype())
_clone = register(Clone())


# ----- the op API --------------------------------------------------------------------------------

def expand(x: Any, shape: Sequence[Any]) -> Any:
    """x broadcast to `shape` (-1 keeps a size); a no-op when the shape already matches."""
    shape = tuple(x.shape[i - (len(shape) - x.ndim)] if s == -1 else s for i, s in enumerate(shape))
    if tuple(x.shape) == shape:
        return x
    return apply(_expand, [x], shape=shape)


def sum_to(x: Any, shape: Sequence[Any]) -> Any:
    """x summed over the dimensions that broadcasting to x.shape added or stretched."""
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    return apply(_sum_to, [x], shape=shape)


def reshape(x: Any, shape: Sequence[Any]) -> Any:
    """x with the same elements in `shape`; one size may be -1 (inferred)."""
    shape = infer_size(tuple(shape), x.shape)
    if tuple(x.shape) == shape:
        return x
    return apply(_reshape, [x], shape=shape)


def permute(x: Any, dims: Sequence[int]) -> Any:
    dims = tuple(d % max(x.ndim, 1) if -x.ndim <= d < max(x.ndim, 1) else _bad_dim(d, x.ndim)
                 for d in dims)
    if dims == tuple(range(x.ndim)) and len(dims) == x.ndim:
        return x
    return apply(_permute, [x], dims=dims)


def transpose(x: Any, dim0: int, dim1: int) -> Any:
    dims = list(range(x.ndim))
    a, b = wrap_dim(dim0, x.ndim), wrap_dim(dim1, x.ndim)
    dims[a], dims[b] = dims[b], dims[a]
    return permute(x, dims)


def to_dtype(x: Any, dtype: _dtype.dtype) -> Any:
    if x.dtype == dtype:
        return x
    return apply(_to_dtype, [x], dtype=dtype)


def cat(tensors: Sequence[Any], dim: int = 0) -> Any:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    dim = wrap_dim(dim, tensors[0].ndim)
    target = _dtype.result_dtype([t.dtype for t in tensors], [], [])
    return apply(_cat, [to_dtype(t, target) for t in tensors], dim=dim)


def clone(x: Any) -> Any:
    return apply(_clone, [x])


def wrap_dim(dim: int, ndim: int) -> int:
    """A dimension in [0, ndim), accepting negative indices; IndexError as PyTorch words it."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        _bad_dim(dim, ndim)
    return dim % n


def _bad_dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got "
                     f"{dim})")


def infer_size(shape: tuple[Any, ...], input_shape: Sequence[Any]) -> tuple[Any, ...]:
    """Resolve one -1 in `shape` against the number of elements of `input_shape`."""
    numel: Any = 1
    for s in input_shape:
        numel = numel * s
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known: Any = 1
    for s in shape:
        if s != -1:
            if isinstance(s, int) and s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known = known * s
    if -1 in shape:
        if known == 0 or _divides(known, numel) is False:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif _same(known, numel) is False:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def _divides(known: Any, numel: Any) -> bool | None:
    if isinstance(known, int) and isinstance(numel, int):
        return numel % known == 0
    return None  # symbolic: trust the tracer's later check


def _same(a: Any, b: Any) -> bool | None:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    diff = a - b
    return None if getattr(diff, "free_symbols", None) else diff == 0
