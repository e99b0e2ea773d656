"""Lowering of the embedding lookup and its derivative (runtime/ops/embedding.py).

`embedding` copies, for each index, one row of the weight table into the output. Its derivative
`embedding_backward` starts from zeros and adds each gradient row into the row its index names,
one index after the other, in one thread: the same sums in the same order on every run (and the
order eager mode's `np.add.at` uses, so the two agree to the bit). An index out of range, which
eager mode refuses with an IndexError that native code cannot raise, reads a row of NaN and adds
nothing; the padding row gets nothing either.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from compiler.ir import Node, Value
from compiler.lowering.context import FunctionLowering, Rule
from compiler.lowering.elements import check_float, fill, load, store
from compiler.lowering.llvm_types import I64, float_type_of
from compiler.lowering.loops import counted_loop
from runtime.ops._op import numel


def _each_row(low: FunctionLowering, indices: Value, rows: int,
              body: Callable[[ir.Value, ir.Value, ir.Value], None]) -> None:
    """For each index, in order: body(its position, the row it names (0 if out of range),
    whether it is in range); a negative index is out of range, as in PyTorch's embedding."""
    b = low.builder

    def visit(position: ir.Value) -> None:
        row = load(low, indices, position, I64)
        valid = b.icmp_unsigned("<", row, low.size(rows))  # 0 <= row < rows
        body(position, b.select(valid, row, ir.Constant(I64, 0)), valid)

    counted_loop(b, low.size(numel(indices.shape)), visit, name="index")


def embedding(low: FunctionLowering, node: Node) -> None:
    weight, indices = node.inputs
    out = node.output
    check_float(node, weight)
    rows, width = weight.shape
    float_type = float_type_of(weight.dtype)
    b = low.builder
    nan = ir.Constant(float_type, float("nan"))

    def copy_row(position: ir.Value, row: ir.Value, valid: ir.Value) -> None:
        source = b.mul(row, low.size(width))
        target = b.mul(position, low.size(width))

        def element(j: ir.Value) -> None:
            value = b.select(valid, load(low, weight, b.add(source, j), float_type), nan)
            store(low, out, b.add(target, j), value, weight.dtype)

        counted_loop(b, low.size(width), element, name="column")

    _each_row(low, indices, rows, copy_row)


def embedding_backward(low: FunctionLowering, node: Node) -> None:
    grad, indices = node.inputs
    out = node.output
    check_float(node, out)
    rows, width = out.shape
    padding_idx = node.attrs["padding_idx"]
    float_type = float_type_of(out.dtype)
    b = low.builder
    fill(low, out, 0.0)
    # plain fadd (no reassoc): each element's sum is the chain eager mode computes, in its order

    def add_row(position: ir.Value, row: ir.Value, valid: ir.Value) -> None:
        if padding_idx is not None:
            valid = b.and_(valid, b.icmp_signed("!=", row, ir.Constant(I64, padding_idx)))
        with b.if_then(valid):
            source = b.mul(position, low.size(width))
            target = b.mul(row, low.size(width))

            def element(j: ir.Value) -> None:
                pointer = low.element_pointer(out, b.add(target, j))
                total = b.fadd(b.load(pointer, typ=float_type),
                               load(low, grad, b.add(source, j), float_type))
                b.store(total, pointer)

            counted_loop(b, low.size(width), element, name="column")

    _each_row(low, indices, rows, add_row)


RULES: dict[str, Rule] = {
    "embedding": embedding,
    "embedding_backward": embedding_backward,
}
