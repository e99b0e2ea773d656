"""The PyTorch-named functions that order, pick and rearrange elements (sort, argsort, topk,
kthvalue; tril, triu, masked_fill; flip, roll, repeat, tile; split, chunk, unbind) and that draw
indices by weight (multinomial), over the ops of runtime/ops/sorting.py and rearrange.py and
indexing. Tensor methods of the same names (`runtime/_tensor_methods.py`) are these functions.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from runtime import _dtype, return_types
from runtime._functions import _sizes
from runtime._tensor import Tensor
from runtime.ops import elementwise as ew
from runtime.ops import indexing, rearrange, sorting
from runtime.ops import shape as shape_ops
from runtime.ops.elementwise import wrap_operands

# ----- ordering ----------------------------------------------------------------------------------

def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """(values, indices) in order along dim; equal values keep their order (always stable)."""
    return return_types.sort(sorting.sort(input, dim, descending))


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    return sorting.argsort(input, dim, descending)


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
    """The k largest (or smallest) values along dim with their indices, in order."""
    return return_types.topk(sorting.topk(input, k, dim, largest))


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> Any:
    return return_types.kthvalue(sorting.kthvalue(input, k, dim, keepdim))


# ----- rearranging -------------------------------------------------------------------------------

def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    return rearrange.tril(input, diagonal)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    return rearrange.triu(input, diagonal)


def flip(input: Tensor, dims: Any) -> Tensor:
    return rearrange.flip(input, (dims,) if isinstance(dims, int) else tuple(dims))


def roll(input: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    return rearrange.roll(input, shifts, dims)


def repeat(input: Tensor, *sizes: Any) -> Tensor:
    """Tensor.repeat: copies along each dim (sizes may add leading dims)."""
    return rearrange.repeat(input, _sizes(sizes))


def tile(input: Tensor, dims: Sequence[int]) -> Tensor:
    """Like repeat, but with fewer dims than the tensor the leading ones are 1."""
    dims = tuple(dims)
    return rearrange.repeat(input, (1,) * (input.ndim - len(dims)) + dims)


def masked_fill(input: Tensor, mask: Tensor, value: Any) -> Tensor:
    if mask.dtype != _dtype.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{mask.dtype.name}")
    if isinstance(value, Tensor) and value.ndim:
        raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got "
                           f"tensor with {value.ndim} dimension(s).")
    x, m, v = wrap_operands([input, mask, value])
    if v._wrapped_number and not input.dtype.is_floating_point and isinstance(value, float):
        v = ew.wrapped_number(value, input.dtype)
    return ew.masked_fill(x, m, v)


def split(tensor: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces along dim: of `split_size` each (the last may be smaller), or of the given sizes."""
    dim = shape_ops.wrap_dim(dim, tensor.ndim)
    length = tensor.shape[dim]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0 and length:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got "
                               f"dimension size of {length}")
        sizes = [builtins.min(size, length - start) for start in range(0, length, size or 1)]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != length:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {length} "
                               f"(input tensor's size at dimension {dim}), but got split_sizes="
                               f"{sizes}")
    pieces, start = [], 0
    for size in sizes:
        pieces.append(indexing.index(tensor, (slice(None),) * dim + (slice(start, start + size),)))
        start += size
    return tuple(pieces)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    length = input.shape[shape_ops.wrap_dim(dim, input.ndim)]
    return split(input, builtins.max(-(-length // chunks), 1), dim)


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    dim = shape_ops.wrap_dim(dim, input.ndim)
    return tuple(indexing.index(input, (slice(None),) * dim + (i,))
                 for i in range(input.shape[dim]))


# ----- sampling ----------------------------------------------------------------------------------

def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator: Any = None) -> Tensor:
    """Indices drawn from each row of `input` (non-negative weights, not necessarily summing to
    1); without replacement each row's indices are distinct."""
    import numpy as np

    from runtime._random import numpy_rng

    if input.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{input.dtype.scalar_name}")
    weights = np.atleast_2d(input._data).astype(np.float64)
    categories = weights.shape[1]
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    if not replacement and num_samples > categories:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                           "replacement")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    totals = weights.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    rng = numpy_rng(generator)
    if replacement:  # inverse CDF of each row at uniform draws
        cdf = np.cumsum(weights / totals, axis=1)
        draws = rng.random((weights.shape[0], num_samples))
        picks = np.stack([np.searchsorted(row, u, side="right") for row, u in zip(cdf, draws)])
        picks = np.minimum(picks, categories - 1)
    else:  # exponential races: the num_samples smallest of E_i / w_i (zero weights never win)
        with np.errstate(divide="ignore"):
            keys = rng.exponential(size=weights.shape) / weights
        if (np.count_nonzero(weights, axis=1) < num_samples).any():
            raise RuntimeError("invalid multinomial distribution (with replacement=False, not "
                               "enough non-negative category to sample)")
        picks = np.argsort(keys, axis=1, kind="stable")[:, :num_samples]
    picks = picks.astype(np.int64)
    return Tensor._from_array(picks if input.ndim == 2 else picks[0])
