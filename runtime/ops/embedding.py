"""Embedding lookup: rows of a weight table gathered by integer indices, and its derivative.

`embedding(weight, indices)` is weight[indices] (shape (*indices.shape, dim)); only the weight
gets an edge. Its vjp, `embedding_backward(grad, indices)`, adds each gradient row into the row
its index names, in index order (np.add.at is sequential: the same sums in the same order every
run), and leaves the padding row zero. embedding_backward is linear in grad; its vjp gathers
again and zeroes the positions whose index is the padding row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime import _dtype
from runtime.ops import elementwise as ew
from runtime.ops._op import Op, VJPContext, apply, moves_data, one_per_input_element, register
from runtime.ops.shape import reshape, to_dtype

_INDEX_DTYPES = (_dtype.int64, _dtype.int32)


def _check_indices(indices: Any) -> None:
    if indices.dtype not in _INDEX_DTYPES:
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the "
                           "following scalar types: Long, Int; but got "
                           f"{indices.type()} instead (while checking arguments for embedding)")


class Embedding(Op):
    flops = moves_data

    name = "embedding"
    backward_name = "EmbeddingBackward0"

    def infer(self, inputs: Sequence[Any], *, padding_idx: int | None) -> Any:
        weight, indices = inputs
        _check_indices(indices)
        if len(weight.shape) != 2:
            raise RuntimeError("'weight' must be 2-D")
        return (*indices.shape, weight.shape[1]), weight.dtype

    def compute(self, arrays: Sequence[np.ndarray], **attrs: Any) -> np.ndarray:
        weight, indices = arrays
        if indices.size and (indices.min() < 0 or indices.max() >= weight.shape[0]):
            raise IndexError("index out of range in self")
        return np.take(weight, indices, axis=0)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (1,), False

    def edge_inputs(self, inputs: Sequence[Any], **attrs: Any) -> Sequence[int]:
        return (0,)

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [embedding_backward(grad, ctx.inputs[1], ctx.input_shapes[0][0],
                                   ctx.attrs["padding_idx"]), None]


class EmbeddingBackward(Op):
    """zeros((num_weights, dim)) with each grad row added at its index; the padding row zero."""
    flops = one_per_input_element  # an add per gradient element

    name = "embedding_backward"
    backward_name = "EmbeddingBackwardBackward0"

    def infer(self, inputs: Sequence[Any], *, num_weights: int, padding_idx: int | None) -> Any:
        grad = inputs[0]
        return (num_weights, grad.shape[-1]), grad.dtype

    def compute(self, arrays: Sequence[np.ndarray], *, num_weights: int,
                padding_idx: int | None) -> np.ndarray:
        grad, indices = arrays
        out = np.zeros((num_weights, grad.shape[-1]), dtype=grad.dtype)
        np.add.at(out, indices.reshape(-1), grad.reshape(-1, grad.shape[-1]))
        if padding_idx is not None:
            out[padding_idx] = 0
        return out

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (1,), False

    def edge_inputs(self, inputs: Sequence[Any], **attrs: Any) -> Sequence[int]:
        return (0,)

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        indices, padding_idx = ctx.inputs[1], ctx.attrs["padding_idx"]
        rows = embedding(grad, indices, padding_idx=None)
        if padding_idx is not None:
            kept = to_dtype(ew.ne(indices, padding_idx), rows.dtype)
            rows = ew.mul(rows, reshape(kept, (*indices.shape, 1)))
        return [rows, None]


_embedding = register(Embedding())
_embedding_backward = register(EmbeddingBackward())


def embedding(weight: Any, indices: Any, *, padding_idx: int | None) -> Any:
    """weight[indices]; the row `padding_idx` (non-negative or None) gets no gradient."""
    return apply(_embedding, [weight, indices], padding_idx=padding_idx)


def embedding_backward(grad: Any, indices: Any, num_weights: int,
                       padding_idx: int | None) -> Any:
    return apply(_embedding_backward, [grad, indices], num_weights=num_weights,
                 padding_idx=padding_idx)
