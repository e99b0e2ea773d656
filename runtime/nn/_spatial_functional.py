"""The spatial layers of `runtime.nn.functional`: convolution (`conv1d`, `conv2d`), `pad`, and
max, average and adaptive pooling, with PyTorch's signatures, defaults and errors; re-exported by
`runtime.nn.functional`. They turn PyTorch's arguments (ints or tuples, 'same' padding,
unbatched inputs) into the attributes of the primitive ops in runtime.ops.conv and
runtime.ops.pooling, or compose index ops (pad).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import runtime
from runtime._tensor import Tensor
from runtime.ops import conv as conv_ops
from runtime.ops import pooling as pool_ops

# ----- convolution -------------------------------------------------------------------------------

def _ntuple(value: Any, n: int) -> tuple[int, ...]:
    """An int or a sequence of n ints as a tuple of n ints (kernel_size=5 -> (5, 5))."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    values = tuple(int(v) for v in value)
    if len(values) == 1 and n > 1:
        return values * n
    if len(values) != n:
        raise RuntimeError(f"expected {n} values (one per spatial dimension), got {list(values)}")
    return values


def conv_padding(padding: Any, kernel: Sequence[int], stride: Sequence[int],
                 dilation: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """(low, high) padding per spatial dim from an int, a tuple, 'valid' or 'same'; 'same'
    pads the odd extra element on the high side, as PyTorch does."""
    nd = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding != "same":
            raise RuntimeError(f"Invalid padding string: '{padding}'")
        if any(s != 1 for s in stride):
            raise RuntimeError("padding='same' is not supported for strided convolutions")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in _ntuple(padding, nd))


def _conv(nd: int, input: Tensor, weight: Tensor, bias: Tensor | None, stride: Any,
          padding: Any, dilation: Any, groups: int) -> Tensor:
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to "
                           f"conv{nd}d, but got input of size: {list(input.shape)}")
    if weight.ndim != nd + 2:
        raise RuntimeError(f"conv{nd}d expects a weight of {nd + 2} dimensions (out_channels, "
                           f"in_channels/groups, *kernel_size), got size {list(weight.shape)}")
    unbatched = input.ndim == nd + 1
    if unbatched:
        input = input.unsqueeze(0)
    stride, dilation = _ntuple(stride, nd), _ntuple(dilation, nd)
    pairs = conv_padding(padding, tuple(weight.shape[2:]), stride, dilation)
    output = conv_ops.convolution(input, weight, bias, stride=stride, padding=pairs,
                                  dilation=dilation, groups=groups)
    return output.squeeze(0) if unbatched else output


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """1-D convolution of input (N, C, L) or (C, L) with weight (O, C/groups, K)."""
    return _conv(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D convolution of input (N, C, H, W) or (C, H, W) with weight (O, C/groups, kH, kW)."""
    return _conv(2, input, weight, bias, stride, padding, dilation, groups)


# ----- padding -----------------------------------------------------------------------------------

_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_positions(size: int, low: int, high: int, mode: str, dim: int,
                   shape: Sequence[Any], pads: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """For each output position along a dim: the input position it reads and whether it is
    inside the input (constant mode fills the rest)."""
    positions = np.arange(-low, size + high)
    inside = (positions >= 0) & (positions < size)
    if mode == "reflect":
        if low >= size or high >= size:
            raise RuntimeError(f"Argument #4: Padding size should be less than the corresponding "
                               f"input dimension, but got: padding ({low}, {high}) at dimension "
                               f"{dim} of input {list(shape)}")
        period = 2 * (size - 1) if size > 1 else 1
        folded = np.mod(positions, period)
        return np.where(folded < size, folded, period - folded), np.ones_like(inside)
    if mode == "replicate":
        return np.clip(positions, 0, size - 1), np.ones_like(inside)
    if mode == "circular":
        if low > size or high > size:
            raise RuntimeError("Padding value causes wrapping around more than once.")
        return np.mod(positions, size), np.ones_like(inside)
    return np.clip(positions, 0, max(size - 1, 0)), inside


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Tensor:
    """Pad (or, with negative sizes in constant mode, crop) the last len(pad) // 2 dims:
    pad = (last_low, last_high, second_last_low, ...). Modes: constant (value, default 0),
    reflect, replicate, circular. Made of index ops, so it differentiates and traces."""
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input "
                           f"dimension but got padding length {len(pad)} and input of dimension "
                           f"{input.ndim}")
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if mode != "constant" and value:
        raise ValueError(f"Padding mode \"{mode}\" doesn't take in value argument")
    output = input
    for i in range(len(pad) // 2):
        dim = input.ndim - 1 - i
        low, high = int(pad[2 * i]), int(pad[2 * i + 1])
        if low == 0 and high == 0:
            continue
        source, inside = _pad_positions(output.shape[dim], low, high, mode, dim, input.shape,
                                        pad)
        key = (slice(None),) * dim + (runtime.tensor(source),)
        output = output[key]
        if not inside.all():
            mask = runtime.tensor(inside.reshape(-1, *([1] * (input.ndim - dim - 1))))
            fill = runtime.zeros((), dtype=input.dtype) + (value or 0)
            output = runtime.where(mask, output, fill)
    return output


# ----- pooling -----------------------------------------------------------------------------------


def _batched(name: str, input: Tensor, nd: int) -> tuple[Tensor, bool]:
    """input with a batch dim (PyTorch accepts (C, *spatial) as one unbatched sample)."""
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{name}: Expected {nd + 1}D or {nd + 2}D input, but got input of "
                           f"size: {list(input.shape)}")
    if input.ndim == nd + 1:
        return input.unsqueeze(0), True
    return input, False


def _max_pool(nd: int, input: Tensor, kernel_size: Any, stride: Any, padding: Any,
              dilation: Any, ceil_mode: bool, return_indices: bool) -> Any:
    x, unbatched = _batched(f"max_pool{nd}d", input, nd)
    kernel = _ntuple(kernel_size, nd)
    stride = kernel if stride is None or stride == [] or stride == () else _ntuple(stride, nd)
    dilation = _ntuple(dilation, nd)
    indices = pool_ops.max_pool_indices(x, kernel=kernel, stride=stride,
                                        padding=_ntuple(padding, nd), dilation=dilation,
                                        ceil_mode=ceil_mode)
    # windows that do not overlap pick each input element at most once
    overlapping = any(d * (k - 1) + 1 > s for k, s, d in zip(kernel, stride, dilation))
    output = pool_ops.pool_gather(x, indices, node=f"MaxPool{nd}DWithIndicesBackward0",
                                  overlapping=overlapping)
    if unbatched:
        output, indices = output.squeeze(0), indices.squeeze(0)
    return (output, indices) if return_indices else output


def max_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """The maximum of each window of (N, C, L); with return_indices, also its position."""
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """The maximum of each window of (N, C, H, W); with return_indices, also the flat index
    (into H * W) of each maximum. stride defaults to kernel_size."""
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool(nd: int, input: Tensor, kernel_size: Any, stride: Any, padding: Any,
              ceil_mode: bool, count_include_pad: bool, divisor_override: int | None) -> Tensor:
    x, unbatched = _batched(f"avg_pool{nd}d", input, nd)
    kernel = _ntuple(kernel_size, nd)
    stride = kernel if stride is None or stride == [] or stride == () else _ntuple(stride, nd)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    output = pool_ops.avg_pool(x, kernel=kernel, stride=stride, padding=_ntuple(padding, nd),
                               ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                               divisor_override=divisor_override)
    return output.squeeze(0) if unbatched else output


def avg_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """The mean of each window of (N, C, L)."""
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """The mean of each window of (N, C, H, W); count_include_pad counts padding zeros in the
    divisor, divisor_override replaces it."""
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _adaptive_size(output_size: Any, input: Tensor, nd: int) -> tuple[int, ...]:
    """output_size with None entries (keep that input size) resolved."""
    sizes = (output_size,) * nd if output_size is None or isinstance(output_size, int) \
        else tuple(output_size)
    if len(sizes) == 1 and nd > 1:
        sizes = sizes * nd
    return tuple(input.shape[-nd + i] if s is None else int(s) for i, s in enumerate(sizes))


def _adaptive_avg_pool(nd: int, input: Tensor, output_size: Any) -> Tensor:
    x, unbatched = _batched(f"adaptive_avg_pool{nd}d", input, nd)
    out = _adaptive_size(output_size, x, nd)
    size = tuple(x.shape[2:])
    if all(s % o == 0 for s, o in zip(size, out)):  # equal windows: one average pooling
        kernel = tuple(s // o for s, o in zip(size, out))
        output = pool_ops.avg_pool(x, kernel=kernel, stride=kernel, padding=(0,) * nd,
                                   ceil_mode=False, count_include_pad=True, divisor_override=None)
    else:  # windows of different sizes: a product with an averaging matrix per dim
        output = x
        for axis, (s, o) in enumerate(zip(size, out)):
            weights = np.zeros((s, o))
            for i, (lo, hi) in enumerate(pool_ops.adaptive_windows(s, o)):
                weights[lo:hi, i] = 1.0 / (hi - lo)
            matrix = runtime.tensor(weights, dtype=x.dtype)
            moved = output.transpose(2 + axis, -1)
            output = runtime.matmul(moved, matrix).transpose(2 + axis, -1)
    return output.squeeze(0) if unbatched else output


def adaptive_avg_pool1d(input: Tensor, output_size: Any) -> Tensor:
    return _adaptive_avg_pool(1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed output size (an int, a pair, None keeps a dim's size)."""
    return _adaptive_avg_pool(2, input, output_size)


def _adaptive_max_pool(nd: int, input: Tensor, output_size: Any, return_indices: bool) -> Any:
    x, unbatched = _batched(f"adaptive_max_pool{nd}d", input, nd)
    indices = pool_ops.adaptive_max_pool_indices(x, _adaptive_size(output_size, x, nd))
    output = pool_ops.pool_gather(x, indices, node=f"AdaptiveMaxPool{nd}DBackward0")
    if unbatched:
        output, indices = output.squeeze(0), indices.squeeze(0)
    return (output, indices) if return_indices else output


def adaptive_max_pool1d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    return _adaptive_max_pool(1, input, output_size, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """Max pooling to a fixed output size; with return_indices, also each maximum's position."""
    return _adaptive_max_pool(2, input, output_size, return_indices)
