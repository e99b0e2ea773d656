"""Pooling over 1 or 2 spatial dimensions: max (fixed and adaptive windows) and average.

Max pooling is two ops: `max_pool_indices` / `adaptive_max_pool_indices` find, without a
derivative, the flat spatial index of each window's maximum (PyTorch's `indices`), and
`pool_gather(x, indices)` picks those elements; its vjp `pool_scatter` adds the gradient back at
the same indices (deterministic: one ordered sum per element), and pool_scatter's vjp is
pool_gather again. Average pooling is `avg_pool` and its derivative `avg_pool_backward`, each
linear and each the other's vjp. A window's divisor follows PyTorch: with count_include_pad the
window clipped to the padded input, otherwise the input elements it covers.

Sizes: the batch (and channels) may be symbolic; spatial sizes are integers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from runtime import _dtype
from runtime.ops._op import (
    Op,
    VJPContext,
    apply,
    moves_data,
    numel,
    one_per_input_element,
    register,
)


def pooled_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
                ceil_mode: bool) -> int:
    """One spatial size of a pooling output, as PyTorch computes it (a window that would start
    in the right padding is dropped in ceil mode)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _output_shape(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                  padding: Sequence[int], dilation: Sequence[int],
                  ceil_mode: bool) -> tuple[int, ...]:
    return tuple(pooled_size(*a, ceil_mode) for a in zip(size, kernel, stride, padding, dilation))


def _check_pool(name: str, x: Any, kernel: Sequence[int], stride: Sequence[int],
                padding: Sequence[int], dilation: Sequence[int], ceil_mode: bool) -> tuple:
    nd = len(kernel)
    if len(x.shape) != nd + 2:
        raise RuntimeError(f"{name}: expected a {nd + 2}-D input (N, C, *spatial), got "
                           f"{list(x.shape)}")
    for k, s, p, d in zip(kernel, stride, padding, dilation):
        if k <= 0 or s <= 0 or d <= 0:
            raise RuntimeError(f"{name}: kernel_size, stride and dilation should be greater than "
                               f"zero, but got kernel_size={list(kernel)} stride={list(stride)} "
                               f"dilation={list(dilation)}")
        if p < 0 or p > (d * (k - 1) + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={p}, kernel_size={k} and dilation={d}")
    out = _output_shape(x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    if any(o <= 0 for o in out):
        raise RuntimeError(f"Given input size: ({'x'.join(map(str, x.shape[1:]))}). Calculated "
                           f"output size: ({'x'.join(map(str, (x.shape[1], *out)))}). Output "
                           "size is too small")
    return out


def _padded(x: np.ndarray, out: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
            padding: Sequence[int], dilation: Sequence[int], fill: float) -> np.ndarray:
    """x padded by `padding` on both sides and, in ceil mode, far enough on the high side for
    the last window."""
    pads = [(0, 0), (0, 0)]
    for size, o, k, s, p, d in zip(x.shape[2:], out, kernel, stride, padding, dilation):
        needed = (o - 1) * s + d * (k - 1) + 1
        pads.append((p, max(p, needed - size - p)))
    if not any(lo or hi for lo, hi in pads):
        return x
    return np.pad(x, pads, constant_values=fill)


def _windows(xp: np.ndarray, out: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
             dilation: Sequence[int]) -> np.ndarray:
    """The view (N, C, *out, *kernel) of every window of the padded input."""
    nd = len(kernel)
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    view = sliding_window_view(xp, span, axis=tuple(range(2, 2 + nd)))
    return view[(slice(None), slice(None), *(slice(0, o * s, s) for o, s in zip(out, stride)),
                 *(slice(None, None, d) for d in dilation))]


# ----- max pooling -------------------------------------------------------------------------------

class MaxPoolIndices(Op):
    """The flat index into the (unpadded) spatial dims of each window's maximum; NaN wins."""

    def flops(self, input_shapes: Sequence[Any], output_shape: Any, **attrs: Any) -> Any:
        """One comparison or add per element of each window."""
        return numel(output_shape) * numel(attrs["kernel"])

    name = "max_pool_indices"
    differentiable = False

    def infer(self, inputs: Sequence[Any], *, kernel: tuple[int, ...], stride: tuple[int, ...],
              padding: tuple[int, ...], dilation: tuple[int, ...], ceil_mode: bool) -> Any:
        out = _check_pool("max_pool", inputs[0], kernel, stride, padding, dilation, ceil_mode)
        return (*inputs[0].shape[:2], *out), _dtype.int64

    def compute(self, arrays: Sequence[np.ndarray], *, kernel: tuple[int, ...],
                stride: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...],
                ceil_mode: bool) -> np.ndarray:
        x = arrays[0]
        nd = len(kernel)
        out = _output_shape(x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
        fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xp = _padded(x, out, kernel, stride, padding, dilation, fill)
        # One pass per kernel position over output-sized strided views: keep the larger value
        # (or a NaN, as PyTorch) and the position it came from.
        has_nan = x.dtype.kind == "f" and bool(np.isnan(x).any())
        best: np.ndarray | None = None
        best_position: Any = None  # an array once the first position is seen
        positions = list(itertools.product(*(range(k) for k in kernel)))
        for k, position in enumerate(positions):
            values = xp[(slice(None), slice(None), *(
                slice(o * d, o * d + s * (size - 1) + 1, s)
                for o, d, s, size in zip(position, dilation, stride, out)))]
            if best is None:
                best, best_position = values.copy(), np.zeros(values.shape, dtype=np.int32)
                continue
            better = values > best
            if has_nan:
                better |= values != values  # a NaN wins, as in PyTorch (`val > max || isnan`)
            # k exceeds every earlier position, so max() records it exactly where `better`
            np.maximum(best_position, better * np.int32(k), out=best_position)
            np.maximum(best, values, out=best)
        # The flat index is linear in the coordinates: a window's start plus its offset.
        row = [math.prod(x.shape[3 + axis:]) for axis in range(nd)]
        start = np.zeros(out, dtype=np.int64)
        for axis in range(nd):
            starts = (np.arange(out[axis]) * stride[axis] - padding[axis]) * row[axis]
            start = start + starts.reshape([-1 if a == axis else 1 for a in range(nd)])
        offset = np.array([sum(p[a] * dilation[a] * row[a] for a in range(nd))
                           for p in positions], dtype=np.int64)
        return start + offset.take(best_position)


class AdaptiveMaxPoolIndices(Op):
    """adaptive_max_pool's indices: window i along a dim of size S covers
    [floor(i * S / out), ceil((i + 1) * S / out))."""
    flops = one_per_input_element

    name = "adaptive_max_pool_indices"
    differentiable = False

    def infer(self, inputs: Sequence[Any], *, output_size: tuple[int, ...]) -> Any:
        return (*inputs[0].shape[:2], *output_size), _dtype.int64

    def compute(self, arrays: Sequence[np.ndarray], *, output_size: tuple[int, ...]) -> np.ndarray:
        x = arrays[0]
        size = x.shape[2:]
        flat = np.zeros((*x.shape[:2], *output_size), dtype=np.int64)
        bounds = [adaptive_windows(s, o) for s, o in zip(size, output_size)]
        for cell in itertools.product(*(range(o) for o in output_size)):
            window = [bounds[a][i] for a, i in enumerate(cell)]
            part = x[(slice(None), slice(None), *(slice(lo, hi) for lo, hi in window))]
            best = part.reshape(*x.shape[:2], -1).argmax(axis=-1)
            offsets = np.unravel_index(best, part.shape[2:])
            index = np.zeros(x.shape[:2], dtype=np.int64)
            for axis, (lo, _) in enumerate(window):
                index = index * size[axis] + lo + offsets[axis]
            flat[(slice(None), slice(None)) + cell] = index
        return flat


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows along one dim: [floor(i*S/o), ceil((i+1)*S/o))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _flat(x: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = int(np.prod(index.shape[:2]))
    return x.reshape(rows, -1), index.reshape(rows, -1)


class PoolGather(Op):
    """out = x's element at each flat spatial index (the max of each window)."""
    flops = moves_data

    name = "pool_gather"
    backward_name = "MaxPool2DWithIndicesBackward0"

    def infer(self, inputs: Sequence[Any], **attrs: Any) -> Any:
        return tuple(inputs[1].shape), inputs[0].dtype

    def node_name(self, inputs: Sequence[Any], *, node: str, overlapping: bool) -> str:
        return node

    def compute(self, arrays: Sequence[np.ndarray], **attrs: Any) -> np.ndarray:
        x, index = _flat(*arrays)
        return np.take_along_axis(x, index, axis=1).reshape(arrays[1].shape)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (1,), False

    def edge_inputs(self, inputs: Sequence[Any], **attrs: Any) -> Sequence[int]:
        return (0,)

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [pool_scatter(grad, ctx.inputs[1], ctx.input_shapes[0][2:],
                             overlapping=ctx.attrs["overlapping"]), None]


class PoolScatter(Op):
    """zeros of the input's shape with grad added at each flat spatial index."""
    flops = one_per_input_element  # an add per gradient element

    name = "pool_scatter"
    backward_name = "MaxPool2DWithIndicesBackwardBackward0"

    def infer(self, inputs: Sequence[Any], *, input_size: tuple[int, ...],
              overlapping: bool) -> Any:
        return (*inputs[0].shape[:2], *input_size), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], *, input_size: tuple[int, ...],
                overlapping: bool) -> np.ndarray:
        grad, index = _flat(*arrays)
        rows, per_row = grad.shape[0], math.prod(input_size)
        shape = (*arrays[0].shape[:2], *input_size)
        if not overlapping:  # each input element is picked at most once: plain assignment
            out = np.zeros((rows, per_row), dtype=grad.dtype)
            np.put_along_axis(out, index, grad, axis=1)
            return out.reshape(shape)
        positions = index + (np.arange(rows) * per_row)[:, None]
        out = np.bincount(positions.ravel(), weights=grad.ravel(), minlength=rows * per_row)
        return out.astype(grad.dtype, copy=False).reshape(shape)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (1,), False

    def edge_inputs(self, inputs: Sequence[Any], **attrs: Any) -> Sequence[int]:
        return (0,)

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [pool_gather(grad, ctx.inputs[1], node="MaxPool2DWithIndicesBackward0",
                            overlapping=ctx.attrs["overlapping"]), None]


# ----- average pooling ---------------------------------------------------------------------------

def _divisor(size: Sequence[int], out: Sequence[int], kernel: Sequence[int],
             stride: Sequence[int], padding: Sequence[int], count_include_pad: bool,
             divisor_override: int | None) -> np.ndarray:
    """Each window's divisor, shape `out`."""
    if divisor_override:
        return np.full(tuple(out), float(divisor_override))
    divisor = np.ones(())
    for s, o, k, st, p in zip(size, out, kernel, stride, padding):
        start = np.arange(o) * st - p
        end = np.minimum(start + k, s + p)
        counts = end - start if count_include_pad else \
            np.minimum(end, s) - np.maximum(start, 0)
        divisor = np.multiply.outer(divisor, counts)
    return divisor.astype(np.float64)


class AvgPool(Op):
    """The mean of each window (sum / divisor)."""

    def flops(self, input_shapes: Sequence[Any], output_shape: Any, **attrs: Any) -> Any:
        """One comparison or add per element of each window."""
        return numel(output_shape) * numel(attrs["kernel"])

    name = "avg_pool"
    backward_name = "AvgPool2DBackward0"

    def infer(self, inputs: Sequence[Any], *, kernel: tuple[int, ...], stride: tuple[int, ...],
              padding: tuple[int, ...], ceil_mode: bool, count_include_pad: bool,
              divisor_override: int | None) -> Any:
        x = inputs[0]
        if not x.dtype.is_floating_point:
            raise RuntimeError(f'"avg_pool2d" not implemented for \'{x.dtype.scalar_name}\'')
        out = _check_pool("avg_pool", x, kernel, stride, padding, (1,) * len(kernel), ceil_mode)
        return (*x.shape[:2], *out), x.dtype

    def node_name(self, inputs: Sequence[Any], **attrs: Any) -> str:
        return f"AvgPool{len(attrs['kernel'])}DBackward0"

    def compute(self, arrays: Sequence[np.ndarray], *, kernel: tuple[int, ...],
                stride: tuple[int, ...], padding: tuple[int, ...], ceil_mode: bool,
                count_include_pad: bool, divisor_override: int | None) -> np.ndarray:
        x = arrays[0]
        nd = len(kernel)
        ones = (1,) * nd
        out = _output_shape(x.shape[2:], kernel, stride, padding, ones, ceil_mode)
        windows = _windows(_padded(x, out, kernel, stride, padding, ones, 0.0), out, kernel,
                           stride, ones)
        sums = windows.sum(axis=tuple(range(-nd, 0)))
        divisor = _divisor(x.shape[2:], out, kernel, stride, padding, count_include_pad,
                           divisor_override)
        return sums / divisor.astype(x.dtype)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [avg_pool_backward(grad, ctx.input_shapes[0][2:], **ctx.attrs)]


class AvgPoolBackward(Op):
    """avg_pool's derivative: each window's gradient / divisor added back over the window."""

    def flops(self, input_shapes: Sequence[Any], output_shape: Any, **attrs: Any) -> Any:
        return numel(input_shapes[0]) * numel(attrs["kernel"])

    name = "avg_pool_backward"
    backward_name = "AvgPool2DBackwardBackward0"

    def infer(self, inputs: Sequence[Any], *, input_size: tuple[int, ...], **attrs: Any) -> Any:
        return (*inputs[0].shape[:2], *input_size), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], *, input_size: tuple[int, ...],
                kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...],
                ceil_mode: bool, count_include_pad: bool,
                divisor_override: int | None) -> np.ndarray:
        grad = arrays[0]
        out = grad.shape[2:]
        divisor = _divisor(input_size, out, kernel, stride, padding, count_include_pad,
                           divisor_override)
        share = grad / divisor.astype(grad.dtype)
        padded = [max(s + 2 * p, (o - 1) * st + k)
                  for s, o, k, st, p in zip(input_size, out, kernel, stride, padding)]
        xp = np.zeros((*grad.shape[:2], *padded), dtype=grad.dtype)
        for offset in itertools.product(*(range(k) for k in kernel)):
            target = tuple(slice(i, i + st * (o - 1) + 1, st)
                           for i, st, o in zip(offset, stride, out))
            xp[(slice(None), slice(None), *target)] += share
        return np.ascontiguousarray(xp[(slice(None), slice(None), *(
            slice(p, p + s) for s, p in zip(input_size, padding)))])

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        attrs = {k: v for k, v in ctx.attrs.items() if k != "input_size"}
        return [avg_pool(grad, **attrs)]


_max_pool_indices = register(MaxPoolIndices())
_adaptive_max_pool_indices = register(AdaptiveMaxPoolIndices())
_pool_gather = register(PoolGather())
_pool_scatter = register(PoolScatter())
_avg_pool = register(AvgPool())
_avg_pool_backward = register(AvgPoolBackward())


# ----- the op API --------------------------------------------------------------------------------

def max_pool_indices(x: Any, *, kernel: tuple[int, ...], stride: tuple[int, ...],
                     padding: tuple[int, ...], dilation: tuple[int, ...],
                     ceil_mode: bool) -> Any:
    return apply(_max_pool_indices, [x], kernel=kernel, stride=stride, padding=padding,
                 dilation=dilation, ceil_mode=ceil_mode)


def adaptive_max_pool_indices(x: Any, output_size: tuple[int, ...]) -> Any:
    return apply(_adaptive_max_pool_indices, [x], output_size=tuple(output_size))


def pool_gather(x: Any, indices: Any, *, node: str, overlapping: bool = True) -> Any:
    """x's elements at flat spatial `indices` (N, C, *out); `node` names the grad_fn. Pass
    overlapping=False only when no two indices of a row can be equal (windows that do not
    overlap): the derivative then assigns instead of adding."""
    return apply(_pool_gather, [x, indices], node=node, overlapping=overlapping)


def pool_scatter(grad: Any, indices: Any, input_size: Sequence[int], *,
                 overlapping: bool = True) -> Any:
    return apply(_pool_scatter, [grad, indices], input_size=tuple(input_size),
                 overlapping=overlapping)


def avg_pool(x: Any, *, kernel: tuple[int, ...], stride: tuple[int, ...],
             padding: tuple[int, ...], ceil_mode: bool, count_include_pad: bool,
             divisor_override: int | None) -> Any:
    return apply(_avg_pool, [x], kernel=kernel, stride=stride, padding=padding,
                 ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                 divisor_override=divisor_override)


def avg_pool_backward(grad: Any, input_size: Sequence[int], **attrs: Any) -> Any:
    return apply(_avg_pool_backward, [grad], input_size=tuple(input_size), **attrs)
