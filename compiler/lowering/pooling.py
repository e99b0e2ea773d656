"""Lowering of pooling (runtime/ops/pooling.py) as loop nests: max pooling's indices (fixed and
adaptive windows), the gather of the maxima and its derivative (a scatter-add, in order, so the
sums are the same every run), average pooling and its derivative.

Every op walks rows (N * C) by output positions; a fixed window's kernel positions are unrolled
(pooling kernels are small), an adaptive window's are loops. A 1-D pool is the 2-D one with a
height of 1. Spatial sizes are integers; the batch size may be symbolic.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from llvmlite import ir

from compiler.ir import Node, Value
from compiler.lowering.context import FunctionLowering, Rule
from compiler.lowering.elements import check_float, fill, load, store
from compiler.lowering.expressions import FLOAT_FLAGS
from compiler.lowering.llvm_types import I64, float_type_of
from compiler.lowering.loops import counted_range


def _const(n: int) -> ir.Constant:
    return ir.Constant(I64, n)


def _pair(values: tuple[Any, ...], fill_value: int) -> tuple[int, int]:
    return (fill_value, int(values[0])) if len(values) == 1 else (int(values[0]), int(values[1]))


def _spatial(shape: tuple[Any, ...]) -> tuple[int, int]:
    return _pair(tuple(shape[2:]), 1)


@contextmanager
def _windows(low: FunctionLowering, input_shape: tuple[Any, ...], out_shape: tuple[Any, ...],
             stride: tuple[int, int], padding: tuple[int, int]
             ) -> Iterator[tuple[ir.Value, ir.Value, ir.Value, ir.Value]]:
    """For each (row, output position): yields (row's input start, output offset, the window's
    first input row, its first input column), coordinates that may lie in the padding."""
    b = low.builder
    height, width = _spatial(input_shape)
    out_h, out_w = _spatial(out_shape)
    rows = low.size(input_shape[0] * input_shape[1])
    with counted_range(b, _const(0), rows, name="row") as r:
        with counted_range(b, _const(0), _const(out_h), name="oh") as oh:
            with counted_range(b, _const(0), _const(out_w), name="ow") as ow:
                out_offset = b.add(b.mul(r, _const(out_h * out_w)),
                                   b.add(b.mul(oh, _const(out_w)), ow))
                yield (b.mul(r, _const(height * width)), out_offset,
                       b.sub(b.mul(oh, _const(stride[0])), _const(padding[0])),
                       b.sub(b.mul(ow, _const(stride[1])), _const(padding[1])))


def _kernel_positions(low: FunctionLowering, input_shape: tuple[Any, ...],
                      out_shape: tuple[Any, ...], top: ir.Value, left: ir.Value,
                      attrs: dict[str, Any]) -> Iterator[tuple[ir.Value, ir.Value]]:
    """Each kernel position of a window: (flat spatial index, whether it is inside the input:
    a constant True when every window is, which leaves the loop free of tests)."""
    b = low.builder
    height, width = _spatial(input_shape)
    kernel = _pair(attrs["kernel"], 1)
    dilation = _pair(attrs.get("dilation", (1,) * len(attrs["kernel"])), 1)
    stride, padding = _pair(attrs["stride"], 1), _pair(attrs["padding"], 0)
    all_inside = not any(padding) and all(
        (o - 1) * s + (k - 1) * d < size for o, s, k, d, size in
        zip(_spatial(out_shape), stride, kernel, dilation, (height, width)))
    for i, j in itertools.product(range(kernel[0]), range(kernel[1])):
        ih = b.add(top, _const(i * dilation[0]))
        iw = b.add(left, _const(j * dilation[1]))
        inside = ir.Constant(ir.IntType(1), 1) if all_inside else b.and_(
            b.icmp_unsigned("<", ih, _const(height)), b.icmp_unsigned("<", iw, _const(width)))
        yield b.add(b.mul(ih, _const(width)), iw), inside


def max_pool_indices(low: FunctionLowering, node: Node) -> None:
    """The first maximum of each window (the padding reads as -inf); a NaN wins, a later NaN
    over an earlier one, as eager mode."""
    (x,) = node.inputs
    out = node.output
    check_float(node, x)
    attrs = node.attrs
    b = low.builder
    float_type = float_type_of(x.dtype)
    lowest = ir.Constant(float_type, float("-inf"))
    with _windows(low, x.shape, out.shape, _pair(attrs["stride"], 1),
                  _pair(attrs["padding"], 0)) as (start, out_offset, top, left):
        best = best_index = None
        for index, inside in _kernel_positions(low, x.shape, out.shape, top, left, attrs):
            safe = b.add(start, b.select(inside, index, _const(0)))
            value = b.select(inside, load(low, x, safe, float_type), lowest)
            if best is None:
                best, best_index = value, index
                continue
            better = b.or_(b.fcmp_ordered(">", value, best), b.fcmp_unordered("uno", value, value))
            best = b.select(better, value, best)
            best_index = b.select(better, index, best_index)
        b.store(best_index, low.element_pointer(out, out_offset))


def adaptive_max_pool_indices(low: FunctionLowering, node: Node) -> None:
    """The first maximum of each adaptive window (a NaN wins, the first NaN, as numpy's
    argmax): window i along a dim of size S covers [floor(i*S/out), ceil((i+1)*S/out))."""
    (x,) = node.inputs
    out = node.output
    check_float(node, x)
    b = low.builder
    float_type = float_type_of(x.dtype)
    height, width = _spatial(x.shape)
    out_h, out_w = _spatial(out.shape)
    best_slot, index_slot = low.local(float_type), low.local(I64)
    rows = low.size(x.shape[0] * x.shape[1])

    def window(i: ir.Value, size: int, count: int) -> tuple[ir.Value, ir.Value]:
        start = b.sdiv(b.mul(i, _const(size)), _const(count))
        end = b.sdiv(b.add(b.mul(b.add(i, _const(1)), _const(size)), _const(count - 1)),
                     _const(count))
        return start, end

    with counted_range(b, _const(0), rows, name="row") as r:
        start = b.mul(r, _const(height * width))
        with counted_range(b, _const(0), _const(out_h), name="oh") as oh:
            top, bottom = window(oh, height, out_h)
            with counted_range(b, _const(0), _const(out_w), name="ow") as ow:
                left, right = window(ow, width, out_w)
                first = b.add(b.mul(top, _const(width)), left)
                b.store(load(low, x, b.add(start, first), float_type), best_slot)
                b.store(first, index_slot)
                with counted_range(b, top, bottom, name="ih") as ih:
                    with counted_range(b, left, right, name="iw") as iw:
                        index = b.add(b.mul(ih, _const(width)), iw)
                        value = load(low, x, b.add(start, index), float_type)
                        best = b.load(best_slot, typ=float_type)
                        better = b.or_(b.fcmp_ordered(">", value, best), b.and_(
                            b.fcmp_unordered("uno", value, value),
                            b.fcmp_ordered("ord", best, best)))
                        b.store(b.select(better, value, best), best_slot)
                        b.store(b.select(better, index, b.load(index_slot, typ=I64)),
                                index_slot)
                out_offset = b.add(b.mul(r, _const(out_h * out_w)),
                                   b.add(b.mul(oh, _const(out_w)), ow))
                b.store(b.load(index_slot, typ=I64), low.element_pointer(out, out_offset))


def _index_walk(low: FunctionLowering, index_value: Value, spatial_size: int,
                body: Callable[[ir.Value, ir.Value, ir.Value], None]) -> None:
    """For each flat spatial index: body(its offset, the offset it names in a (rows, spatial)
    buffer, whether it is in range); a negative index counts from the end, as numpy's, and an
    index out of range is replaced by 0 so no access leaves the buffer."""
    b = low.builder
    per_row = _spatial(index_value.shape)
    per_row_count = per_row[0] * per_row[1]
    rows = low.size(index_value.shape[0] * index_value.shape[1])
    size = _const(spatial_size)
    with counted_range(b, _const(0), rows, name="row") as r:
        row_out = b.mul(r, _const(per_row_count))
        row_in = b.mul(r, size)
        with counted_range(b, _const(0), _const(per_row_count), name="j") as j:
            offset = b.add(row_out, j)
            k = load(low, index_value, offset, I64)
            k = b.select(b.icmp_signed("<", k, _const(0)), b.add(k, size), k)
            valid = b.icmp_unsigned("<", k, size)
            body(offset, b.add(row_in, b.select(valid, k, _const(0))), valid)


def pool_gather(low: FunctionLowering, node: Node) -> None:
    """out = x's element at each flat spatial index; NaN where an index is out of range."""
    x, index_value = node.inputs
    out = node.output
    check_float(node, x)
    float_type = float_type_of(x.dtype)
    nan = ir.Constant(float_type, float("nan"))
    height, width = _spatial(x.shape)

    def body(offset: ir.Value, source: ir.Value, valid: ir.Value) -> None:
        value = low.builder.select(valid, load(low, x, source, float_type), nan)
        store(low, out, offset, value, x.dtype)

    _index_walk(low, index_value, height * width, body)


def pool_scatter(low: FunctionLowering, node: Node) -> None:
    """zeros of the input's shape, the gradient added at each index in order; an index out of
    range adds nothing."""
    grad, index_value = node.inputs
    out = node.output
    check_float(node, out)
    float_type = float_type_of(out.dtype)
    fill(low, out, 0.0)
    height, width = _spatial(out.shape)
    b = low.builder

    def body(offset: ir.Value, target: ir.Value, valid: ir.Value) -> None:
        pointer = low.element_pointer(out, target)
        added = b.select(valid, load(low, grad, offset, float_type), ir.Constant(float_type, 0.0))
        b.store(b.fadd(b.load(pointer, typ=float_type), added), pointer)

    _index_walk(low, index_value, height * width, body)


def _divisor(low: FunctionLowering, input_shape: tuple[Any, ...], top: ir.Value, left: ir.Value,
             attrs: dict[str, Any], float_type: ir.Type) -> ir.Value:
    """A window's divisor, as eager mode's: divisor_override, else the window clipped to the
    padded input (count_include_pad) or to the input."""
    if attrs["divisor_override"]:
        return ir.Constant(float_type, float(attrs["divisor_override"]))
    b = low.builder
    count = _const(1)
    for start, size, k, pad in zip((top, left), _spatial(input_shape), _pair(attrs["kernel"], 1),
                                   _pair(attrs["padding"], 0)):
        end = _minimum(b, b.add(start, _const(k)), _const(size + pad))
        if attrs["count_include_pad"]:
            extent = b.sub(end, start)
        else:
            extent = b.sub(_minimum(b, end, _const(size)), _maximum(b, start, _const(0)))
        count = b.mul(count, extent)
    return b.sitofp(count, float_type)


def _minimum(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y), x, y)


def _maximum(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed(">", x, y), x, y)


def avg_pool(low: FunctionLowering, node: Node) -> None:
    (x,) = node.inputs
    out = node.output
    check_float(node, x)
    attrs = node.attrs
    b = low.builder
    float_type = float_type_of(x.dtype)
    zero = ir.Constant(float_type, 0.0)
    with _windows(low, x.shape, out.shape, _pair(attrs["stride"], 1),
                  _pair(attrs["padding"], 0)) as (start, out_offset, top, left):
        total = zero
        for index, inside in _kernel_positions(low, x.shape, out.shape, top, left, attrs):
            safe = b.add(start, b.select(inside, index, _const(0)))
            total = b.fadd(total, b.select(inside, load(low, x, safe, float_type), zero),
                           flags=FLOAT_FLAGS)
        mean = b.fdiv(total, _divisor(low, x.shape, top, left, attrs, float_type))
        store(low, out, out_offset, mean, x.dtype)


def avg_pool_backward(low: FunctionLowering, node: Node) -> None:
    (grad,) = node.inputs
    out = node.output
    check_float(node, grad)
    attrs = node.attrs
    b = low.builder
    float_type = float_type_of(out.dtype)
    fill(low, out, 0.0)
    with _windows(low, out.shape, grad.shape, _pair(attrs["stride"], 1),
                  _pair(attrs["padding"], 0)) as (start, grad_offset, top, left):
        share = b.fdiv(load(low, grad, grad_offset, float_type),
                       _divisor(low, out.shape, top, left, attrs, float_type))
        for index, inside in _kernel_positions(low, out.shape, grad.shape, top, left, attrs):
            with b.if_then(inside):
                pointer = low.element_pointer(out, b.add(start, index))
                b.store(b.fadd(b.load(pointer, typ=float_type), share, flags=FLOAT_FLAGS),
                        pointer)


RULES: dict[str, Rule] = {
    "max_pool_indices": max_pool_indices,
    "adaptive_max_pool_indices": adaptive_max_pool_indices,
    "pool_gather": pool_gather,
    "pool_scatter": pool_scatter,
    "avg_pool": avg_pool,
    "avg_pool_backward": avg_pool_backward,
}
