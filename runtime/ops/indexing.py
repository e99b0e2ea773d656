"""Indexing with `x[key]` and assignment with `x[key] = value`.

A key mixes ints, slices, None, Ellipsis and index tensors (integer arrays, as cross-entropy's
`logp[range(n), target]` needs; boolean masks are turned into integer indices first). The index
tensors are inputs of the op, so a traced graph takes them at run time; the rest of the key is an
attribute in which each index tensor is replaced by its position (`IndexSlot`).

`index` and `index_add_into_zeros` are each other's derivatives; `index_put` is assignment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from runtime import _dtype
from runtime.ops._op import Op, VJPContext, apply, moves_data, register
from runtime.ops.shape import sum_to


class IndexSlot(NamedTuple):
    """Stands in the key for the index tensor at position `position` of the op's inputs."""

    position: int


def normalize_key(key: Any, shape: Sequence[int]) -> tuple[tuple[Any, ...], list[Any]]:
    """Split a Python indexing key into a hashable template and its index tensors."""
    from runtime._tensor import Tensor

    items = key if isinstance(key, tuple) else (key,)
    template: list[Any] = []
    tensors: list[Any] = []
    consumed = 0
    for item in items:
        if isinstance(item, (list, range, np.ndarray, Tensor)):
            if isinstance(item, Tensor) and item._is_symbolic:  # traced: no data to look at
                tensors.append(item)
                template.append(IndexSlot(len(tensors)))
                consumed += 1
                continue
            data = item._data if isinstance(item, Tensor) else np.asarray(item)
            if data.dtype == np.bool_:
                expected = tuple(shape[consumed:consumed + data.ndim])
                if data.shape != expected:
                    raise IndexError(f"The shape of the mask {list(data.shape)} at index "
                                     f"{consumed} does not match the shape of the indexed tensor "
                                     f"{list(expected)}")
                for axis_index in np.nonzero(data):
                    tensors.append(Tensor._from_array(axis_index.astype(np.int64)))
                    template.append(IndexSlot(len(tensors)))
                consumed += data.ndim
                continue
            if data.dtype.kind not in "iu" and data.size:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            tensors.append(item if isinstance(item, Tensor) and item.dtype == _dtype.int64
                           else Tensor._from_array(data.astype(np.int64)))
            template.append(IndexSlot(len(tensors)))
            consumed += 1
        elif isinstance(item, slice):
            template.append((slice, _slice_part(item.start), _slice_part(item.stop),
                             _slice_part(item.step)))
            if item.step is not None and int(item.step) <= 0:
                raise ValueError("step must be greater than zero")
            consumed += 1
        elif item is None or item is Ellipsis:
            template.append(item)
            if item is Ellipsis:
                consumed = len(shape) - sum(1 for i in items[items.index(item) + 1:]
                                            if i is not None and i is not Ellipsis)
        elif isinstance(item, (bool, np.bool_)):
            raise IndexError("indexing with a Python bool is not supported; use a bool tensor")
        elif isinstance(item, (int, np.integer)):
            if consumed >= len(shape):
                raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
            size = shape[consumed]
            if isinstance(size, (int, np.integer)) and not -size <= int(item) < size:
                raise IndexError(f"index {int(item)} is out of bounds for dimension {consumed} "
                                 f"with size {size}")
            template.append(int(item))
            consumed += 1
        else:
            raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), None and long or "
                             f"byte Variables are valid indices (got {type(item).__name__})")
    if consumed > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    return tuple(template), tensors


def _slice_part(value: Any) -> int | None:
    return None if value is None else int(value)


def numpy_key(template: tuple[Any, ...], index_arrays: Sequence[np.ndarray]) -> tuple[Any, ...]:
    """The numpy key of a template, with index arrays put back in their slots."""
    key: list[Any] = []
    for item in template:
        if isinstance(item, IndexSlot):
            key.append(index_arrays[item.position - 1])
        elif isinstance(item, tuple):
            key.append(slice(item[1], item[2], item[3]))
        else:
            key.append(item)
    return tuple(key)


def _check_bounds(shape: Sequence[int], template: tuple[Any, ...],
                  arrays: Sequence[np.ndarray]) -> None:
    dim = 0
    for item in template:
        if isinstance(item, IndexSlot):
            a = arrays[item.position - 1]
            if a.size and (a.max() >= shape[dim] or a.min() < -shape[dim]):
                bad = int(a.max()) if a.max() >= shape[dim] else int(a.min())
                raise IndexError(f"index {bad} is out of bounds for dimension {dim} with size "
                                 f"{shape[dim]}")
        if item is Ellipsis:
            dim = len(shape) - sum(1 for i in template[template.index(item) + 1:]
                                   if i is not None and i is not Ellipsis)
        elif item is not None:
            dim += 1


_SENTINEL = 1_000_003  # stands for a symbolic size while numpy works out an indexed shape
_SENTINEL_SPAN = 1_000  # offsets a slice can add to or take from a symbolic size


def indexed_shape(shape: tuple[Any, ...], index_shapes: list[tuple[Any, ...]],
                  key: tuple[Any, ...]) -> tuple[Any, ...]:
    """The shape of x[key], by numpy's rules on a zero-size probe. Symbolic sizes (sympy
    expressions of the batch size, while tracing) stand in as large sentinel numbers, each mapped
    back afterwards, so `x[:, 1:]` of an (N, 10) tensor has shape (N, 9) and `x[1:]` (N - 1, 10)."""
    symbols: list[Any] = []

    def concrete(size: Any) -> int:
        if isinstance(size, (int, np.integer)):
            return int(size)
        symbols.append(size)
        return _SENTINEL * len(symbols)

    probe = np.broadcast_to(np.empty((), np.uint8), tuple(concrete(s) for s in shape))
    zeros = [np.zeros(tuple(concrete(s) for s in t), np.intp) for t in index_shapes]
    result = probe[numpy_key(key, zeros)].shape
    if not symbols:
        return result
    _check_symbolic_dims(shape, key)

    def restore(size: int) -> Any:
        which, offset = divmod(size + _SENTINEL_SPAN, _SENTINEL)
        if 1 <= which <= len(symbols) and 0 <= offset < 2 * _SENTINEL_SPAN:
            return symbols[which - 1] + (offset - _SENTINEL_SPAN)
        return size

    return tuple(restore(s) for s in result)


def _check_symbolic_dims(shape: tuple[Any, ...], key: tuple[Any, ...]) -> None:
    """Refuse what is only valid for some batch sizes: an integer index into a symbolic
    dimension (x[3] needs N > 3) and a slice of it whose length does not grow with it (x[-2:]
    is 2 rows only when N >= 2). Compiled code could not check these, so tracing stops here."""
    consuming = [k for k in key if k is not None and k is not Ellipsis]
    dim = 0
    for item in key:
        if item is None:
            continue
        if item is Ellipsis:
            dim = len(shape) - (len(consuming) - sum(1 for k in key[:key.index(item)]
                                                     if k is not None and k is not Ellipsis))
            continue
        size = shape[dim] if dim < len(shape) else 1
        if not isinstance(size, (int, np.integer)):
            fixed = False
            if isinstance(item, int):
                fixed = True
            elif isinstance(item, tuple) and len(item) == 4:
                lengths = {len(range(*slice(*item[1:]).indices(n)))
                           for n in (_SENTINEL, 2 * _SENTINEL)}
                fixed = len(lengths) == 1 and lengths != {0}
            if fixed:
                raise IndexError(
                    f"indexing dimension {dim} (of size {size}, the batch size) with "
                    f"{'an integer' if isinstance(item, int) else 'this slice'} gives a result "
                    "that is only valid for some batch sizes; compile with dynamic_batch=False, "
                    "or index the compiled module's output instead")
        dim += 1


class Index(Op):
    name = "index"
    backward_name = "IndexBackward0"
    flops = moves_data
    is_view = True

    def infer(self, inputs: Sequence[Any], *, key: tuple[Any, ...]) -> Any:
        x, *index = inputs
        return indexed_shape(tuple(x.shape), [tuple(t.shape) for t in index], key), x.dtype

    def node_name(self, inputs: Sequence[Any], *, key: tuple[Any, ...]) -> str:
        if len(inputs) > 1:
            return "IndexBackward0"
        if all(isinstance(k, int) for k in key):
            return "SelectBackward0"
        return "SliceBackward0" if all(isinstance(k, tuple) for k in key) else "AsStridedBackward0"

    def compute(self, arrays: Sequence[np.ndarray], *, key: tuple[Any, ...]) -> np.ndarray:
        x, *index = arrays
        _check_bounds(x.shape, key, index)
        return x[numpy_key(key, index)]

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return range(1, len(needs_input_grad)), False

    def edge_inputs(self, inputs: Sequence[Any], **attrs: Any) -> Sequence[int]:
        return (0,)  # index tensors get no gradient

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        index = ctx.inputs[1:]
        return [index_add_into_zeros(grad, index, ctx.attrs["key"], ctx.input_shapes[0]),
                *(None for _ in index)]

    def write_back(self, base: Any, view_value: Any, *, key: tuple[Any, ...]) -> Any:
        return apply(_index_put, [base, view_value], key=key)  # a view's key has no tensors


class IndexAddIntoZeros(Op):
    """zeros(shape) with grad added at `key` (repeated indices add up): the derivative of index."""

    name = "index_add_into_zeros"
    backward_name = "IndexBackwardBackward0"
    flops = moves_data

    def infer(self, inputs: Sequence[Any], *, key: tuple[Any, ...], shape: tuple[Any, ...]) -> Any:
        return tuple(shape), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], *, key: tuple[Any, ...],
                shape: tuple[int, ...]) -> np.ndarray:
        grad, *index = arrays
        out = np.zeros(shape, dtype=grad.dtype)
        np.add.at(out, numpy_key(key, index), grad)
        return out

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return range(1, len(needs_input_grad)), False

    def edge_inputs(self, inputs: Sequence[Any], **attrs: Any) -> Sequence[int]:
        return (0,)

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        index = ctx.inputs[1:]
        return [apply(_index, [grad, *index], key=ctx.attrs["key"]), *(None for _ in index)]


class IndexPut(Op):
    """A copy of x with `value` (broadcast) written at `key`: what `x[key] = value` computes."""

    name = "index_put"
    backward_name = "IndexPutBackward0"
    flops = moves_data

    def infer(self, inputs: Sequence[Any], *, key: tuple[Any, ...]) -> Any:
        return tuple(inputs[0].shape), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], *, key: tuple[Any, ...]) -> np.ndarray:
        x, value, *index = arrays
        _check_bounds(x.shape, key, index)
        out = x.copy()
        out[numpy_key(key, index)] = value
        return out

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return range(2, len(needs_input_grad)), False

    def edge_inputs(self, inputs: Sequence[Any], **attrs: Any) -> Sequence[int]:
        return (0, 1)

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        from runtime._tensor import Tensor

        index = ctx.inputs[2:]
        key = ctx.attrs["key"]
        grad_x = grad_value = None
        if ctx.needs_input_grad[0]:
            zero = Tensor._from_array(np.zeros((), dtype=ctx.input_dtypes[0].numpy))
            grad_x = apply(_index_put, [grad, zero, *index], key=key)
        if ctx.needs_input_grad[1]:
            grad_value = sum_to(apply(_index, [grad, *index], key=key), ctx.input_shapes[1])
        return [grad_x, grad_value, *(None for _ in index)]


_index = register(Index())
_index_add = register(IndexAddIntoZeros())
_index_put = register(IndexPut())


def index(x: Any, key: Any) -> Any:
    """x[key]."""
    template, tensors = normalize_key(key, tuple(x.shape))
    return apply(_index, [x, *tensors], key=template)


def index_add_into_zeros(grad: Any, index_tensors: Sequence[Any], key: tuple[Any, ...],
                         shape: Sequence[Any]) -> Any:
    return apply(_index_add, [grad, *index_tensors], key=key, shape=tuple(shape))


def index_put(x: Any, key: Any, value: Any) -> Any:
    """A copy of x with x[key] = value."""
    from runtime.ops.elementwise import wrap_operands
    from runtime.ops.shape import to_dtype

    template, tensors = normalize_key(key, tuple(x.shape))
    value = to_dtype(wrap_operands([x, value])[1], x.dtype)
    return apply(_index_put, [x, value, *tensors], key=template)
