"""Lowering of basic indexing (runtime/ops/indexing.py): x[key] for a key of ints, slices, None and
Ellipsis is a strided copy, and its derivative adds the gradient into zeros through the same
strides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llvmlite import ir

from compiler.errors import CompileError
from compiler.ir import Node
from compiler.lowering.context import FunctionLowering, Rule
from compiler.lowering.elements import check_float, copy, fill, load, nest
from compiler.lowering.expressions import FLOAT_FLAGS
from compiler.lowering.llvm_types import float_type_of
from compiler.lowering.loops import contiguous_strides


def _basic_index_view(node: Node, shape: Sequence[Any]) -> tuple[list[Any], Any]:
    """Strides and base offset of x[key] for a key of ints, slices, None and Ellipsis only."""
    key = node.attrs["key"]
    own = contiguous_strides(shape)
    strides: list[Any] = []
    base: Any = 0
    dim = 0
    for item in key:
        if item is None:
            strides.append(0)
        elif item is Ellipsis:
            explicit = sum(1 for k in key if k is not None and k is not Ellipsis)
            for _ in range(len(shape) - explicit):
                strides.append(own[dim])
                dim += 1
        elif isinstance(item, int):
            base = base + _from_start(item, shape[dim]) * own[dim]
            dim += 1
        elif isinstance(item, tuple) and len(item) == 4:  # a slice; an IndexSlot has length 1
            _, start, stop, step = item
            begin = slice(start, stop, step).indices(shape[dim])[0] \
                if isinstance(shape[dim], int) else _from_start(start or 0, shape[dim])
            base = base + begin * own[dim]
            strides.append((step or 1) * own[dim])
            dim += 1
        else:
            raise CompileError("indexing with index tensors is not supported by the compiler yet; "
                               "use gather()", node.op_name, node.origin)
    strides.extend(own[dim:])
    return strides, base


def _from_start(position: int, size: Any) -> Any:
    """A Python index counted from the start of a dimension (-1 is size - 1; size may be N)."""
    return position if position >= 0 else size + position


def index(low: FunctionLowering, node: Node) -> None:
    strides, base = _basic_index_view(node, node.inputs[0].shape)
    copy(low, node.inputs[0], node.output, strides, base)


def index_add_into_zeros(low: FunctionLowering, node: Node) -> None:
    out, grad = node.output, node.inputs[0]
    check_float(node, out)
    fill(low, out, 0.0)
    strides, base = _basic_index_view(node, out.shape)
    float_type = float_type_of(out.dtype)

    def body(offsets: list[ir.Value]) -> None:
        pointer = low.element_pointer(out, offsets[1])
        total = low.builder.fadd(low.builder.load(pointer, typ=float_type),
                                 load(low, grad, offsets[0], float_type), flags=FLOAT_FLAGS)
        low.builder.store(total, pointer)

    nest(low, grad.shape, [contiguous_strides(grad.shape), strides], body, bases=[0, base])


RULES: dict[str, Rule] = {
    "index": index,
    "index_add_into_zeros": index_add_into_zeros,
}
