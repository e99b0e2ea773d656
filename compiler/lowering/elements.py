"""Reading, converting and writing the elements of a graph's values while a function is lowered,
and the strided nests that walk them: what every family's lowering rules are built from.

`load` and `store` convert between a value's dtype and the type arithmetic uses; `nest` walks an
output shape with one stride per operand (0 where broadcast or reduced); `copy` is a nest that
moves elements, which every copy of any kind (expand, permute, a slice, cat) is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llvmlite import ir

from compiler.errors import CompileError
from compiler.ir import Node, Value
from compiler.lowering.context import FunctionLowering
from compiler.lowering.llvm_types import I8, float_type_of, llvm_type
from compiler.lowering.loops import contiguous_strides, merge_dimensions, strided_nest
from runtime import _dtype


def convert(builder: ir.IRBuilder, value: ir.Value, source: Any, target_type: ir.Type,
            target: Any | None = None) -> ir.Value:
    """Convert an element of dtype `source` to LLVM type `target_type` (dtype `target`)."""
    src_type = llvm_type(source)
    if src_type == target_type:
        return value
    float_target = isinstance(target_type, (ir.FloatType, ir.DoubleType))
    if source.is_floating_point and float_target:
        wider = isinstance(target_type, ir.DoubleType)
        return builder.fpext(value, target_type) if wider else builder.fptrunc(value, target_type)
    if source.is_floating_point:  # float -> integer or bool
        if target is not None and target.name == "bool":
            nonzero = builder.fcmp_unordered("!=", value, ir.Constant(src_type, 0.0))
            return builder.zext(nonzero, target_type)
        return builder.fptosi(value, target_type)
    if float_target:
        return builder.uitofp(value, target_type) if source.name in ("bool", "uint8") \
            else builder.sitofp(value, target_type)
    if src_type.width < target_type.width:
        return builder.zext(value, target_type) if source.name in ("bool", "uint8") \
            else builder.sext(value, target_type)
    if target is not None and target.name == "bool":
        return builder.zext(builder.icmp_signed("!=", value, ir.Constant(src_type, 0)),
                            target_type)
    return builder.trunc(value, target_type)


def load(low: FunctionLowering, value: Value, offset: ir.Value, as_type: ir.Type) -> ir.Value:
    raw = low.builder.load(low.element_pointer(value, offset), typ=llvm_type(value.dtype))
    return convert(low.builder, raw, value.dtype, as_type)


def store(low: FunctionLowering, value: Value, offset: ir.Value, element: ir.Value,
          from_dtype: Any) -> None:
    converted = convert(low.builder, element, from_dtype, llvm_type(value.dtype), value.dtype)
    low.builder.store(converted, low.element_pointer(value, offset))


def store_bool(low: FunctionLowering, out: Value, offset: ir.Value, bit: ir.Value) -> None:
    low.builder.store(low.builder.zext(bit, I8), low.element_pointer(out, offset))


def broadcast_strides(value: Value, out_shape: Sequence[Any]) -> list[Any]:
    """Element strides of contiguous `value` walked along `out_shape` (0 where broadcast)."""
    own = contiguous_strides(value.shape)
    lead = len(out_shape) - len(value.shape)
    result = []
    for i in range(len(out_shape)):
        if i < lead:
            result.append(0)
            continue
        size = value.shape[i - lead]
        result.append(0 if size == 1 and out_shape[i] != 1 else own[i - lead])
    return result


def nest(low: FunctionLowering, shape: Sequence[Any], strides: Sequence[Sequence[Any]],
         body: Callable[[list[ir.Value]], None], bases: Sequence[Any] | None = None) -> None:
    """A strided nest with sizes and strides given as ints or expressions of N."""
    merged_shape, merged_strides = merge_dimensions(shape, strides)
    sizes = [low.size(s) for s in merged_shape]
    ir_strides = [[low.size(s) for s in per_operand] for per_operand in merged_strides]
    start = [low.size(b) for b in (bases or [0] * len(strides))]
    strided_nest(low.builder, sizes, ir_strides, start, body)


def check_float(node: Node, *values: Value) -> None:
    for v in values:
        if not v.dtype.is_floating_point:
            raise CompileError(f"op '{node.op_name}' on {v.dtype} values is not supported by the "
                               "compiler (floating point only)", node.op_name, node.origin)


def widest_float(values: Sequence[Value]) -> Any:
    """The float type an op on these operands computes in: the widest float among them, or
    float64 for integers and bools alone (exact for integers up to 2**53, class indices say)."""
    floats = [v.dtype for v in values if v.dtype.is_floating_point]
    if not floats:
        return _dtype.float64 if values else None
    return max(floats, key=lambda d: d.itemsize)


def fill(low: FunctionLowering, out: Value, number: float) -> None:
    float_type = float_type_of(out.dtype)

    def body(offsets: list[ir.Value]) -> None:
        low.builder.store(ir.Constant(float_type, number), low.element_pointer(out, offsets[0]))

    nest(low, out.shape, [contiguous_strides(out.shape)], body)


def copy(low: FunctionLowering, source: Value, out: Value, source_strides: Sequence[Any],
         base: Any = 0) -> None:
    """out[i] = source[base + i . source_strides], converting dtypes when they differ."""
    element = llvm_type(source.dtype)

    def body(offsets: list[ir.Value]) -> None:
        value = low.builder.load(low.element_pointer(source, offsets[1]), typ=element)
        store(low, out, offsets[0], value, source.dtype)

    nest(low, out.shape, [contiguous_strides(out.shape), list(source_strides)], body,
         bases=[0, base])
