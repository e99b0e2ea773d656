"""Structured ops that move or copy elements within one tensor: flip, roll, repeat (tile), and the
triangles tril/triu. Each vjp is written with these same ops (or reshape and sum), so it records,
traces and differentiates again: flip and roll undo themselves, a triangle keeps its own part of
the gradient, and repeat sums the gradient of the copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.ops._op import Op, VJPContext, apply, moves_data, register
from runtime.ops.shape import reshape, wrap_dim


class Flip(Op):
    flops = moves_data

    name = "flip"
    backward_name = "FlipBackward0"

    def infer(self, inputs: Sequence[Any], *, dims: tuple[int, ...]) -> Any:
        return tuple(inputs[0].shape), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], *, dims: tuple[int, ...]) -> np.ndarray:
        return np.flip(arrays[0], dims).copy()

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [flip(grad, ctx.attrs["dims"])]


class Roll(Op):
    """Shift elements along dims, wrapping around (torch.roll); no dims: the flattened tensor."""
    flops = moves_data

    name = "roll"
    backward_name = "RollBackward0"

    def infer(self, inputs: Sequence[Any], *, shifts: tuple[int, ...],
              dims: tuple[int, ...] | None) -> Any:
        return tuple(inputs[0].shape), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], *, shifts: tuple[int, ...],
                dims: tuple[int, ...] | None) -> np.ndarray:
        return np.roll(arrays[0], shifts if dims is not None else shifts[0], dims)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        back = tuple(-s for s in ctx.attrs["shifts"])
        return [apply(_roll, [grad], shifts=back, dims=ctx.attrs["dims"])]


class Repeat(Op):
    """Copies of the tensor along each dim (Tensor.repeat, torch.tile): `repeats` has one entry
    per output dim (the input gets leading size-1 dims when it has fewer)."""
    flops = moves_data

    name = "repeat"
    backward_name = "RepeatBackward0"

    def infer(self, inputs: Sequence[Any], *, repeats: tuple[int, ...]) -> Any:
        shape = tuple(inputs[0].shape)
        if len(repeats) < len(shape):
            raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                               "of dimensions of tensor")
        shape = (1,) * (len(repeats) - len(shape)) + shape
        return tuple(s * r for s, r in zip(shape, repeats)), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], *, repeats: tuple[int, ...]) -> np.ndarray:
        x = arrays[0]
        return np.tile(x.reshape((1,) * (len(repeats) - x.ndim) + x.shape), repeats)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        from runtime.ops.reduction import sum

        repeats = ctx.attrs["repeats"]
        shape = tuple(ctx.input_shapes[0])
        padded = (1,) * (len(repeats) - len(shape)) + shape
        split = tuple(size for pair in zip(repeats, padded) for size in pair)  # (r0, s0, r1, ...)
        summed = sum(reshape(grad, split), tuple(range(0, 2 * len(repeats), 2)))
        return [reshape(summed, shape)]


class Triangle(Op):
    """The lower (tril) or upper (triu) triangle of the last two dims, the rest zeroed."""
    flops = moves_data

    def __init__(self, name: str, backward_name: str, numpy_triangle: Any) -> None:
        self.name = name
        self.backward_name = backward_name
        self._triangle = numpy_triangle

    def infer(self, inputs: Sequence[Any], *, diagonal: int) -> Any:
        if len(inputs[0].shape) < 2:
            raise RuntimeError(f"{self.name}: input tensor must have at least 2 dimensions")
        return tuple(inputs[0].shape), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], *, diagonal: int) -> np.ndarray:
        return self._triangle(arrays[0], diagonal)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> Any:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        return [apply(self, [grad], diagonal=ctx.attrs["diagonal"])]


_flip = register(Flip())
_roll = register(Roll())
_repeat = register(Repeat())
_tril = register(Triangle("tril", "TrilBackward0", np.tril))
_triu = register(Triangle("triu", "TriuBackward0", np.triu))


# ----- the op API --------------------------------------------------------------------------------

def flip(x: Any, dims: Sequence[int]) -> Any:
    return apply(_flip, [x], dims=tuple(wrap_dim(d, x.ndim) for d in dims))


def roll(x: Any, shifts: Any, dims: Any = None) -> Any:
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts and dims must align. shifts: {len(shifts)}, dims:0")
        return apply(_roll, [x], shifts=shifts, dims=None)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:"
                           f"{len(dims)}")
    return apply(_roll, [x], shifts=shifts, dims=tuple(wrap_dim(d, x.ndim) for d in dims))


def repeat(x: Any, repeats: Sequence[int]) -> Any:
    return apply(_repeat, [x], repeats=tuple(int(r) for r in repeats))


def tril(x: Any, diagonal: int = 0) -> Any:
    return apply(_tril, [x], diagonal=int(diagonal))


def triu(x: Any, diagonal: int = 0) -> Any:
    return apply(_triu, [x], diagonal=int(diagonal))
