"""Convolution over 1 or 2 spatial dimensions (torch's conv1d/conv2d), and its two derivatives.

Three ops, each the derivative of the others, so every order of derivative stays inside them:
- `convolution(x, w[, b])`: x (N, C, *S), w (O, C/groups, *K) -> (N, O, *S_out);
- `convolution_input_grad(g, w)`: the transposed convolution, d(out)/dx applied to g;
- `convolution_weight_grad(x, g)`: the product over patches, d(out)/dw applied to g.
All three are bilinear, so each vjp is one of the three again.

`padding` is a (low, high) pair per spatial dimension, so 'same' with an even kernel pads one
more on the high side as PyTorch does. The kernels run on numpy's BLAS: the padded input is seen
as overlapping windows (stride tricks), copied once into patch columns (im2col), and multiplied;
the input gradient adds the columns back window by window (col2im), one strided add per kernel
position. The batch size may be symbolic; spatial sizes are integers.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.ops._op import Op, VJPContext, apply, numel, register
from runtime.ops.reduction import sum as reduce_sum

Pairs = tuple[tuple[int, int], ...]


def output_size(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                padding: Pairs, dilation: Sequence[int]) -> tuple[int, ...]:
    """Spatial size of a convolution's output (floor division, as PyTorch)."""
    return tuple((s + lo + hi - d * (k - 1) - 1) // st + 1
                 for s, k, st, (lo, hi), d in zip(size, kernel, stride, padding, dilation))


_scratch_space = threading.local()


def _scratch(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A work array for patch columns, reused from call to call (per thread and dtype): the
    columns never leave the kernel that fills them, and a fresh multi-megabyte array each call
    costs its page faults, as much as filling it."""
    size = math.prod(shape)
    buffers = _scratch_space.__dict__.setdefault("buffers", {})
    buffer = buffers.get(dtype)
    if buffer is None or buffer.size < size:
        buffer = buffers[dtype] = np.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)


class _Patches:
    """Where each kernel position reads the padded input, for im2col and col2im.

    With stride 1, the input is read as one flat row per channel: kernel position k reads a
    contiguous run starting at its flat offset, covering `out[0]` full padded rows; the columns
    past the output's width are computed and dropped (a few percent more arithmetic for copies
    that are plain memory runs, several times faster than strided ones). With a larger stride,
    each kernel position reads a strided view.
    """

    def __init__(self, size: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                 padding: Pairs, dilation: Sequence[int]) -> None:
        self.size, self.padding = tuple(size), padding
        self.out = output_size(size, kernel, stride, padding, dilation)
        self.padded = tuple(s + lo + hi for s, (lo, hi) in zip(size, padding))
        self.positions = list(itertools.product(*(range(k) for k in kernel)))
        self.flat = all(s == 1 for s in stride)
        if self.flat:
            rows = [math.prod(self.padded[i + 1:]) for i in range(len(kernel))]
            self.offsets = [sum(o * d * r for o, d, r in zip(pos, dilation, rows))
                            for pos in self.positions]
            self.width = self.out[0] * rows[0]  # positions computed per channel
            self.length = max(math.prod(self.padded), max(self.offsets) + self.width)
        else:
            self.views = [tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                                for o, d, s, n in zip(pos, dilation, stride, self.out))
                          for pos in self.positions]
            self.width = math.prod(self.out)

    def _padded(self, x: np.ndarray) -> np.ndarray:
        if not any(lo or hi for lo, hi in self.padding):
            return x
        return np.pad(x, ((0, 0), (0, 0), *self.padding))

    def columns(self, x: np.ndarray, groups: int) -> np.ndarray:
        """im2col: x (N, C, *size) as (N, groups, C/groups * prod(K), width)."""
        n, c = x.shape[:2]
        xp = self._padded(x)
        cols = _scratch((n, c, len(self.positions), self.width), x.dtype)
        if self.flat:
            flat = xp.reshape(n, c, -1)
            if flat.shape[2] < self.length:
                flat = np.pad(flat, ((0, 0), (0, 0), (0, self.length - flat.shape[2])))
            for k, offset in enumerate(self.offsets):
                cols[:, :, k] = flat[:, :, offset:offset + self.width]
        else:
            for k, view in enumerate(self.views):
                cols[:, :, k] = xp[(slice(None), slice(None), *view)].reshape(n, c, -1)
        return cols.reshape(n, groups, -1, self.width)

    def output(self, result: np.ndarray) -> np.ndarray:
        """(N, O, width) as (N, O, *out), dropping the columns past the output's width."""
        n, o = result.shape[:2]
        if not self.flat:
            return result.reshape(n, o, *self.out)
        full = result.reshape(n, o, self.out[0], *self.padded[1:])
        return np.ascontiguousarray(full[(slice(None), slice(None), slice(None),
                                          *(slice(0, m) for m in self.out[1:]))])

    def widened(self, g: np.ndarray) -> np.ndarray:
        """A gradient (N, O, *out) as (N, O, width), zero in the dropped columns."""
        n, o = g.shape[:2]
        if not self.flat:
            return g.reshape(n, o, -1)
        full = np.zeros((n, o, self.out[0], *self.padded[1:]), dtype=g.dtype)
        full[(slice(None), slice(None), slice(None), *(slice(0, m) for m in self.out[1:]))] = g
        return full.reshape(n, o, -1)

    def add_columns(self, cols: np.ndarray) -> np.ndarray:
        """col2im: (N, C, prod(K), width) added back into an input-shaped (N, C, *size)."""
        n, c = cols.shape[:2]
        if self.flat:
            flat = np.zeros((n, c, self.length), dtype=cols.dtype)
            for k, offset in enumerate(self.offsets):
                flat[:, :, offset:offset + self.width] += cols[:, :, k]
            xp = flat[:, :, :math.prod(self.padded)].reshape(n, c, *self.padded)
        else:
            xp = np.zeros((n, c, *self.padded), dtype=cols.dtype)
            for k, view in enumerate(self.views):
                xp[(slice(None), slice(None), *view)] += cols[:, :, k].reshape(n, c, *self.out)
        if not any(lo or hi for lo, hi in self.padding):
            return xp
        return np.ascontiguousarray(xp[(slice(None), slice(None), *(
            slice(lo, lo + s) for s, (lo, _) in zip(self.size, self.padding)))])


def _weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """w (O, C/groups, *K) as (groups, O/groups, C/groups * prod(K))."""
    return w.reshape(groups, w.shape[0] // groups, -1)


def _chunks(n: int, per_sample: int) -> list[slice]:
    """Batch slices whose patch columns fit in about 2 MB (at most 8 samples): each chunk's
    columns are multiplied while they are still in cache, twice as fast as one pass over the
    whole batch's columns."""
    size = max(1, min(8, (2 << 20) // max(per_sample, 1)))
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _convolve(x: np.ndarray, w: np.ndarray, stride: Sequence[int], padding: Pairs,
              dilation: Sequence[int], groups: int) -> np.ndarray:
    patches = _Patches(x.shape[2:], w.shape[2:], stride, padding, dilation)
    n, o = x.shape[0], w.shape[0]
    wm = _weight_matrix(w, groups)
    result = np.empty((n, o, patches.width), dtype=np.result_type(x, w))
    per_sample = x.shape[1] * len(patches.positions) * patches.width * x.itemsize
    for part in _chunks(n, per_sample):
        cols = patches.columns(x[part], groups)  # (b, groups, C/groups * prod(K), width)
        result[part] = np.matmul(wm, cols).reshape(-1, o, patches.width)
    return patches.output(result)


def _convolve_input_grad(g: np.ndarray, w: np.ndarray, input_size: Sequence[int],
                         stride: Sequence[int], padding: Pairs, dilation: Sequence[int],
                         groups: int) -> np.ndarray:
    patches = _Patches(input_size, w.shape[2:], stride, padding, dilation)
    n, c = g.shape[0], w.shape[1] * groups
    gm = patches.widened(g).reshape(n, groups, w.shape[0] // groups, -1)
    wt = _weight_matrix(w, groups).transpose(0, 2, 1)
    out = np.empty((n, c, *input_size), dtype=g.dtype)
    per_sample = c * len(patches.positions) * patches.width * g.itemsize
    for part in _chunks(n, per_sample):
        cols = np.matmul(wt, gm[part])  # (b, groups, C/groups * prod(K), width)
        out[part] = patches.add_columns(cols.reshape(-1, c, len(patches.positions),
                                                     patches.width))
    return out


def _convolve_weight_grad(x: np.ndarray, g: np.ndarray, kernel: Sequence[int],
                          stride: Sequence[int], padding: Pairs, dilation: Sequence[int],
                          groups: int) -> np.ndarray:
    patches = _Patches(x.shape[2:], kernel, stride, padding, dilation)
    n, o = g.shape[:2]
    gm = patches.widened(g).reshape(n, groups, o // groups, -1)
    total = np.zeros((groups, o // groups, (x.shape[1] // groups) * len(patches.positions)),
                     dtype=np.result_type(x, g))
    per_sample = x.shape[1] * len(patches.positions) * patches.width * x.itemsize
    for part in _chunks(n, per_sample):
        cols = patches.columns(x[part], groups)
        # (b, G, O/G, width) @ (b, G, width, CK), summed over the chunk's samples
        total += np.matmul(gm[part], cols.transpose(0, 1, 3, 2)).sum(axis=0)
    return total.reshape(o, x.shape[1] // groups, *kernel)


def _check_operands(name: str, x: Any, w: Any) -> None:
    if x.dtype != w.dtype:
        raise RuntimeError(f"Input type ({x.dtype.c_name}) and weight type ({w.dtype.c_name}) "
                           "should be the same")
    if not x.dtype.is_floating_point:
        raise RuntimeError(f'"{name}" not implemented for \'{x.dtype.scalar_name}\'')


class Convolution(Op):
    """out[n, o, p] = sum over c, k of w[o, c, k] * x_padded[n, c, stride * p + dilation * k],
    plus b[o]."""

    name = "convolution"
    backward_name = "ConvolutionBackward0"

    def flops(self, input_shapes: Sequence[Any], output_shape: Any, **attrs: Any) -> Any:
        """A multiply and an add per (output element, weight of its group), and the bias."""
        x, w, *bias = input_shapes
        return 2 * numel(output_shape) * numel(w[1:]) + (numel(output_shape) if bias else 0)

    def infer(self, inputs: Sequence[Any], *, stride: tuple[int, ...], padding: Pairs,
              dilation: tuple[int, ...], groups: int) -> Any:
        x, w = inputs[0], inputs[1]
        _check_operands("conv", x, w)
        nd = len(stride)
        if len(w.shape) != nd + 2 or len(x.shape) != nd + 2:
            raise RuntimeError(f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to "
                               f"conv{nd}d, but got input of size: {list(x.shape)}")
        if w.shape[0] % groups:
            raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by "
                               f"{groups} at dimension 0, but got weight of size "
                               f"{list(w.shape)} instead")
        if x.shape[1] != w.shape[1] * groups:
            raise RuntimeError(f"Given groups={groups}, weight of size {list(w.shape)}, expected "
                               f"input{list(x.shape)} to have {w.shape[1] * groups} channels, "
                               f"but got {x.shape[1]} channels instead")
        if len(inputs) == 3 and tuple(inputs[2].shape) != (w.shape[0],):
            raise RuntimeError(f"Given weight of size {list(w.shape)}, expected bias to be 1-"
                               f"dimensional with {w.shape[0]} elements, but got bias of size "
                               f"{list(inputs[2].shape)} instead")
        out = output_size(x.shape[2:], w.shape[2:], stride, padding, dilation)
        if any(s <= 0 for s in out):
            padded = " x ".join(str(s + lo + hi) for s, (lo, hi) in zip(x.shape[2:], padding))
            kernel = " x ".join(str(d * (k - 1) + 1) for k, d in zip(w.shape[2:], dilation))
            raise RuntimeError(f"Calculated padded input size per channel: ({padded}). Kernel "
                               f"size: ({kernel}). Kernel size can't be greater than actual "
                               "input size")
        return (x.shape[0], w.shape[0], *out), x.dtype

    def compute(self, arrays: Sequence[np.ndarray], **attrs: Any) -> np.ndarray:
        out = _convolve(arrays[0], arrays[1], **attrs)
        if len(arrays) == 3:
            out += arrays[2].reshape(-1, *([1] * (out.ndim - 2)))
        return out

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return [i for i, need in ((1, needs_input_grad[0]), (0, needs_input_grad[1])) if need], \
            False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        x, w = ctx.inputs[0], ctx.inputs[1]
        need = ctx.needs_input_grad
        grads: list[Any] = [
            convolution_input_grad(grad, w, ctx.input_shapes[0][2:], **ctx.attrs)
            if need[0] else None,
            convolution_weight_grad(x, grad, ctx.input_shapes[1][2:], **ctx.attrs)
            if need[1] else None]
        if len(ctx.input_shapes) == 3:
            dims = (0, *range(2, len(ctx.input_shapes[0])))
            grads.append(reduce_sum(grad, dims) if need[2] else None)
        return grads


class ConvolutionInputGrad(Op):
    """The transposed convolution: g (N, O, *S_out), w -> (N, C, *input_size)."""

    name = "convolution_input_grad"
    backward_name = "ConvolutionBackwardBackward0"

    def flops(self, input_shapes: Sequence[Any], output_shape: Any, **attrs: Any) -> Any:
        g, w = input_shapes
        return 2 * numel(g) * numel(w[1:])

    def infer(self, inputs: Sequence[Any], *, input_size: tuple[int, ...], **attrs: Any) -> Any:
        g, w = inputs
        _check_operands("conv", g, w)
        expected = output_size(input_size, w.shape[2:], attrs["stride"], attrs["padding"],
                               attrs["dilation"])
        if tuple(g.shape[2:]) != expected:
            raise RuntimeError(f"convolution_input_grad: expected a gradient of spatial size "
                               f"{list(expected)}, got {list(g.shape[2:])}")
        return (g.shape[0], w.shape[1] * attrs["groups"], *input_size), g.dtype

    def compute(self, arrays: Sequence[np.ndarray], **attrs: Any) -> np.ndarray:
        return _convolve_input_grad(arrays[0], arrays[1], **attrs)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return [i for i, need in ((1, needs_input_grad[0]), (0, needs_input_grad[1])) if need], \
            False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        g, w = ctx.inputs
        attrs = {k: v for k, v in ctx.attrs.items() if k != "input_size"}
        return [convolution(grad, w, **attrs) if ctx.needs_input_grad[0] else None,
                convolution_weight_grad(grad, g, ctx.input_shapes[1][2:], **attrs)
                if ctx.needs_input_grad[1] else None]


class ConvolutionWeightGrad(Op):
    """The product over patches: x (N, C, *S), g (N, O, *S_out) -> (O, C/groups, *kernel_size)."""

    name = "convolution_weight_grad"
    backward_name = "ConvolutionBackwardBackward0"

    def flops(self, input_shapes: Sequence[Any], output_shape: Any, **attrs: Any) -> Any:
        x, g = input_shapes
        return 2 * numel(g) * numel(output_shape[1:])

    def infer(self, inputs: Sequence[Any], *, kernel_size: tuple[int, ...], **attrs: Any) -> Any:
        x, g = inputs
        _check_operands("conv", x, g)
        return (g.shape[1], x.shape[1] // attrs["groups"], *kernel_size), x.dtype

    def compute(self, arrays: Sequence[np.ndarray], *, kernel_size: tuple[int, ...],
                **attrs: Any) -> np.ndarray:
        return _convolve_weight_grad(arrays[0], arrays[1], kernel_size, **attrs)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return [i for i, need in ((1, needs_input_grad[0]), (0, needs_input_grad[1])) if need], \
            False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        x, g = ctx.inputs
        attrs = {k: v for k, v in ctx.attrs.items() if k != "kernel_size"}
        return [convolution_input_grad(g, grad, ctx.input_shapes[0][2:], **attrs)
                if ctx.needs_input_grad[0] else None,
                convolution(x, grad, **attrs) if ctx.needs_input_grad[1] else None]


_convolution = register(Convolution())
_convolution_input_grad = register(ConvolutionInputGrad())
_convolution_weight_grad = register(ConvolutionWeightGrad())


# ----- the op API --------------------------------------------------------------------------------

def convolution(x: Any, w: Any, bias: Any = None, *, stride: tuple[int, ...], padding: Pairs,
                dilation: tuple[int, ...], groups: int) -> Any:
    """The batched convolution of x (N, C, *S) with w (O, C/groups, *K), plus bias (O)."""
    inputs = [x, w] if bias is None else [x, w, bias]
    return apply(_convolution, inputs, stride=tuple(stride), padding=tuple(padding),
                 dilation=tuple(dilation), groups=groups)


def convolution_input_grad(g: Any, w: Any, input_size: Sequence[int], *,
                           stride: tuple[int, ...], padding: Pairs, dilation: tuple[int, ...],
                           groups: int) -> Any:
    return apply(_convolution_input_grad, [g, w], input_size=tuple(input_size),
                 stride=stride, padding=padding, dilation=dilation, groups=groups)


def convolution_weight_grad(x: Any, g: Any, kernel_size: Sequence[int], *,
                            stride: tuple[int, ...], padding: Pairs, dilation: tuple[int, ...],
                            groups: int) -> Any:
    return apply(_convolution_weight_grad, [x, g], kernel_size=tuple(kernel_size),
                 stride=stride, padding=padding, dilation=dilation, groups=groups)
