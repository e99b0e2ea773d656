"""Lowering of the reductions (runtime/ops/reduction.py): sum, mean, amax, amin, sum_to, argmax,
argmin, and gather with its derivative.

A reduction accumulates through a nest whose output strides are 0 on reduced dimensions; a sum
over a long dimension adds in levels (`cascade_sum.py`), as accurately as PyTorch's. A gather
index out of range (eager mode's IndexError, which native code cannot raise) reads NaN and
scatters nothing, so no access leaves a buffer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llvmlite import ir

from compiler.ir import Node, Value
from compiler.lowering.cascade_sum import emit_cascade, plan_cascade
from compiler.lowering.context import FunctionLowering, Rule
from compiler.lowering.elements import check_float, fill, load, nest, store
from compiler.lowering.expressions import FLOAT_FLAGS
from compiler.lowering.llvm_types import I64, float_type_of
from compiler.lowering.loops import (
    contiguous_strides,
    counted_loop,
    merge_dimensions,
    strided_nest,
)
from runtime import _dtype
from runtime.ops._op import numel


def _reduce(low: FunctionLowering, node: Node, dims: Sequence[int], kind: str) -> None:
    source, out = node.inputs[0], node.output
    check_float(node, source, out)
    out_own = contiguous_strides(_kept_shape(source.shape, dims))
    out_strides = [0 if d in dims else out_own[d] for d in range(len(source.shape))]
    if kind == "sum":
        _sum(low, source, out, out_strides)
        return
    float_type = float_type_of(out.dtype)
    fill(low, out, float("-inf") if kind == "max" else float("inf"))
    b = low.builder

    def body(offsets: list[ir.Value]) -> None:
        pointer = low.element_pointer(out, offsets[1])
        best = b.load(pointer, typ=float_type)
        x = load(low, source, offsets[0], float_type)
        b.store(b.select(_beats(b, kind == "max", x, best), x, best), pointer)

    nest(low, source.shape, [contiguous_strides(source.shape), out_strides], body)


def _sum(low: FunctionLowering, source: Value, out: Value, out_strides: Sequence[Any]) -> None:
    """out = the sum of `source` walked with `out_strides` (0 on reduced dimensions): in levels
    (cascade_sum.py) where a reduced dimension is long, else element after element."""
    float_type = float_type_of(out.dtype)
    fill(low, out, 0.0)
    shape, (source_strides, merged_out_strides) = merge_dimensions(
        source.shape, [contiguous_strides(source.shape), out_strides])
    plan = plan_cascade(shape, source_strides, merged_out_strides,
                        8 if isinstance(float_type, ir.DoubleType) else 4)
    if plan is None:
        _sequential_sum(low, source, out, out_strides, float_type)
        return
    emit_cascade(low, plan, shape, source_strides, merged_out_strides, float_type,
                 lambda offset: load(low, source, offset, float_type),
                 lambda offset: low.element_pointer(out, offset))


def _sequential_sum(low: FunctionLowering, source: Value, out: Value, out_strides: Sequence[Any],
                    float_type: ir.Type) -> None:
    """out += each element in turn: for reductions whose every reduced dimension is short."""
    b = low.builder

    def body(offsets: list[ir.Value]) -> None:
        pointer = low.element_pointer(out, offsets[1])
        b.store(b.fadd(b.load(pointer, typ=float_type),
                       load(low, source, offsets[0], float_type), flags=FLOAT_FLAGS), pointer)

    nest(low, source.shape, [contiguous_strides(source.shape), list(out_strides)], body)


def _beats(b: ir.IRBuilder, larger: bool, x: ir.Value, best: ir.Value) -> ir.Value:
    """x replaces the running extremum `best`: it is larger (smaller), or NaN. NaN wins, as in
    PyTorch's max, min, argmax and argmin."""
    return b.or_(b.fcmp_ordered(">" if larger else "<", x, best), b.fcmp_unordered("uno", x, x))


def _kept_shape(shape: Sequence[Any], dims: Sequence[int]) -> list[Any]:
    return [1 if i in dims else s for i, s in enumerate(shape)]


def sum_(low: FunctionLowering, node: Node) -> None:
    _reduce(low, node, node.attrs["dims"], "sum")


def amax(low: FunctionLowering, node: Node) -> None:
    _reduce(low, node, node.attrs["dims"], "max")


def amin(low: FunctionLowering, node: Node) -> None:
    _reduce(low, node, node.attrs["dims"], "min")


def mean(low: FunctionLowering, node: Node) -> None:
    dims = node.attrs["dims"]
    _reduce(low, node, dims, "sum")
    count: Any = 1
    for d in dims:
        count = count * node.inputs[0].shape[d]
    out = node.output
    float_type = float_type_of(out.dtype)
    scale = low.builder.fdiv(ir.Constant(float_type, 1.0),
                             low.builder.sitofp(low.size(count), float_type))

    def body(offsets: list[ir.Value]) -> None:
        pointer = low.element_pointer(out, offsets[0])
        low.builder.store(low.builder.fmul(low.builder.load(pointer, typ=float_type), scale),
                          pointer)

    nest(low, out.shape, [contiguous_strides(out.shape)], body)


def sum_to(low: FunctionLowering, node: Node) -> None:
    source, target = node.inputs[0].shape, node.attrs["shape"]
    lead = len(source) - len(target)
    dims = list(range(lead)) + [lead + i for i, s in enumerate(target)
                                if s == 1 and source[lead + i] != 1]
    source_value, out = node.inputs[0], node.output
    check_float(node, source_value)
    out_own = contiguous_strides(target)
    out_strides = [0 if d in dims else out_own[d - lead] for d in range(len(source))]
    _sum(low, source_value, out, out_strides)


def arg_extremum(low: FunctionLowering, node: Node) -> None:
    source, out = node.inputs[0], node.output
    check_float(node, source)
    dim = node.attrs["dim"]
    shape = list(source.shape) if dim is not None else [numel(source.shape)]
    axis = dim if dim is not None else 0
    outer = numel(shape[:axis])
    length = shape[axis]
    inner = numel(shape[axis + 1:])
    float_type = float_type_of(source.dtype)
    b = low.builder
    larger = node.op_name == "argmax"

    def per_outer(o: ir.Value) -> None:
        def per_inner(i: ir.Value) -> None:
            base = b.add(b.mul(o, low.size(length * inner)), i)
            best_slot = low.local(float_type)
            index_slot = low.local(I64)
            b.store(ir.Constant(float_type, float("-inf") if larger else float("inf")), best_slot)
            b.store(ir.Constant(I64, 0), index_slot)

            def step(k: ir.Value) -> None:
                x = load(low, source, b.add(base, b.mul(k, low.size(inner))), float_type)
                best = b.load(best_slot, typ=float_type)
                wins = b.and_(_beats(b, larger, x, best),
                              b.fcmp_ordered("ord", best, best))  # the first NaN stays
                b.store(b.select(wins, x, best), best_slot)
                b.store(b.select(wins, k, b.load(index_slot, typ=I64)), index_slot)

            counted_loop(b, low.size(length), step, name="k")
            target = b.add(b.mul(o, low.size(inner)), i)
            store(low, out, target, b.load(index_slot, typ=I64), _dtype.int64)

        counted_loop(b, low.size(inner), per_inner, name="inner")

    counted_loop(b, low.size(outer), per_outer, name="outer")


def _gather_walk(low: FunctionLowering, index_value: Value, dim: int, data_shape: Sequence[Any],
                 body: Callable[[ir.Value, ir.Value, ir.Value], None]) -> None:
    """For each element of index: body(offset in index, offset in data with dim := index,
    whether that index is in range). An index out of range (eager mode's IndexError, which
    native code cannot raise) is replaced by 0, so no access leaves the buffer."""
    b = low.builder
    data_strides = contiguous_strides(data_shape)
    strides = [contiguous_strides(index_value.shape),
               [0 if d == dim else data_strides[d] for d in range(len(data_shape))]]

    def visit(offsets: list[ir.Value]) -> None:
        k = load(low, index_value, offsets[0], I64)
        size = low.size(data_shape[dim])
        k = b.select(b.icmp_signed("<", k, ir.Constant(I64, 0)), b.add(k, size), k)
        valid = b.icmp_unsigned("<", k, size)  # 0 <= k < size
        k = b.select(valid, k, ir.Constant(I64, 0))
        body(offsets[0], b.add(offsets[1], b.mul(k, low.size(data_strides[dim]))), valid)

    sizes = [low.size(s) for s in index_value.shape]
    strided_nest(b, sizes, [[low.size(s) for s in per] for per in strides],
                 [ir.Constant(I64, 0)] * 2, visit)


def gather(low: FunctionLowering, node: Node) -> None:
    """out = data[..., index, ...]; NaN where the index is out of range."""
    data, index_value = node.inputs
    out = node.output
    float_type = float_type_of(data.dtype)
    check_float(node, data)
    nan = ir.Constant(float_type, float("nan"))

    def body(i: ir.Value, d: ir.Value, valid: ir.Value) -> None:
        value = low.builder.select(valid, load(low, data, d, float_type), nan)
        store(low, out, i, value, data.dtype)

    _gather_walk(low, index_value, node.attrs["dim"], data.shape, body)


def scatter_add_into_zeros(low: FunctionLowering, node: Node) -> None:
    """zeros with grad added at index along dim; an index out of range adds nothing."""
    grad, index_value = node.inputs
    out = node.output
    check_float(node, out)
    float_type = float_type_of(out.dtype)
    fill(low, out, 0.0)
    b = low.builder

    def body(i: ir.Value, d: ir.Value, valid: ir.Value) -> None:
        pointer = low.element_pointer(out, d)
        added = b.select(valid, load(low, grad, i, float_type), ir.Constant(float_type, 0.0))
        b.store(b.fadd(b.load(pointer, typ=float_type), added), pointer)

    _gather_walk(low, index_value, node.attrs["dim"], out.shape, body)


RULES: dict[str, Rule] = {
    "sum": sum_,
    "amax": amax,
    "amin": amin,
    "mean": mean,
    "sum_to": sum_to,
    "argmax": arg_extremum,
    "argmin": arg_extremum,
    "gather": gather,
    "scatter_add_into_zeros": scatter_add_into_zeros,
}
