"""Lowering of the shape ops (runtime/ops/shape.py): each is a copy, a strided nest that moves
elements (a reshape costs nothing where it aliases its input; see `memory.py`). Also `size`, the
batch size as a 0-d value.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir

from compiler.ir import Node, Value
from compiler.lowering.context import FunctionLowering, Rule
from compiler.lowering.elements import broadcast_strides, copy, nest, store
from compiler.lowering.llvm_types import I64, float_type_of, llvm_type
from compiler.lowering.loops import contiguous_strides


def contiguous_copy(low: FunctionLowering, node: Node) -> None:
    source = node.inputs[0]
    copy(low, source, node.output, contiguous_strides(node.output.shape))


def expand(low: FunctionLowering, node: Node) -> None:
    copy(low, node.inputs[0], node.output, broadcast_strides(node.inputs[0], node.output.shape))


def permute(low: FunctionLowering, node: Node) -> None:
    source = node.inputs[0]
    own = contiguous_strides(source.shape)
    copy(low, source, node.output, [own[d] for d in node.attrs["dims"]])


def cat(low: FunctionLowering, node: Node) -> None:
    out, dim = node.output, node.attrs["dim"]
    out_strides = contiguous_strides(out.shape)
    start: Any = 0
    for source in node.inputs:
        def body(offsets: list[ir.Value], source: Value = source) -> None:
            value = low.builder.load(low.element_pointer(source, offsets[1]),
                                     typ=llvm_type(source.dtype))
            store(low, out, offsets[0], value, source.dtype)

        nest(low, source.shape, [out_strides, contiguous_strides(source.shape)], body,
             bases=[start * out_strides[dim], 0])
        start = start + source.shape[dim]


def size(low: FunctionLowering, node: Node) -> None:
    out = node.output
    expr = node.attrs["expr"]
    value = low.builder.sitofp(low.size(expr), float_type_of(out.dtype))
    low.builder.store(value, low.element_pointer(out, ir.Constant(I64, 0)))


RULES: dict[str, Rule] = {
    "reshape": contiguous_copy,
    "clone": contiguous_copy,
    "stop_gradient": contiguous_copy,
    "to_dtype": contiguous_copy,
    "expand": expand,
    "permute": permute,
    "cat": cat,
    "size": size,
}
