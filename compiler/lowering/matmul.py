"""Lowering of the matrix products (runtime/ops/matmul.py and the compiler's gemm and
gemm_accumulate): each becomes calls of the one threaded GEMM entry (`products.py`), batch
dimensions walked by a nest, operands read through their strides (transposes cost nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llvmlite import ir

from compiler.ir import Node, Value
from compiler.lowering.context import FunctionLowering, Rule
from compiler.lowering.elements import check_float, copy, nest
from compiler.lowering.llvm_types import I32, I64
from compiler.lowering.loops import contiguous_strides
from runtime.ops._broadcast import broadcast_shapes


def matmul(low: FunctionLowering, node: Node) -> None:
    _product(low, node, node.inputs[0], node.inputs[1], accumulate=False)


def gemm_accumulate(low: FunctionLowering, node: Node) -> None:
    """out = c + op(a) @ op(b): c is copied into out unless they are the same memory (an
    in-place update, as compile_train_step's parameters), then the GEMM adds to it."""
    c, a, b_value = node.inputs
    out = node.output
    builder = low.builder
    same = builder.icmp_unsigned("==", builder.ptrtoint(low.pointer(c), I64),
                                 builder.ptrtoint(low.pointer(out), I64))
    with builder.if_then(builder.not_(same)):
        copy(low, c, out, contiguous_strides(out.shape))
    _product(low, node, a, b_value, accumulate=True)


def _product(low: FunctionLowering, node: Node, a: Value, b_value: Value,
             accumulate: bool) -> None:
    out = node.output
    check_float(node, a, b_value)
    transpose_a = node.attrs.get("transpose_a", False)
    transpose_b = node.attrs.get("transpose_b", False)
    a_shape = _matrix_shape(a.shape, left=True, transposed=transpose_a)
    b_shape = _matrix_shape(b_value.shape, left=False, transposed=transpose_b)
    m, k = a_shape[-2:]
    n = b_shape[-1]
    # batch dims broadcast as in torch.matmul; a 1-D operand has none (and drops a dim of out)
    batch = broadcast_shapes(a.shape[:-2], b_value.shape[:-2])
    a_rs, a_cs = _matrix_strides(a.shape, transpose_a, left=True)
    b_rs, b_cs = _matrix_strides(b_value.shape, transpose_b, left=False)
    gemm = low.gemm_function(out.dtype)
    low.note_gemm(out.dtype, m if isinstance(m, int) else 4096, n if isinstance(n, int) else 4096,
                  k if isinstance(k, int) else 4096)
    builder = low.builder
    a_batch = broadcast_strides_batch(a, batch, matrix_dims=1 if len(a.shape) == 1 else 2)
    b_batch = broadcast_strides_batch(b_value, batch,
                                      matrix_dims=1 if len(b_value.shape) == 1 else 2)
    out_batch = contiguous_strides((*batch, m, n))[:len(batch)]

    def product(offsets: list[ir.Value]) -> None:
        builder.call(gemm, [
            low.size(m), low.size(n), low.size(k),
            low.element_pointer(a, offsets[1]), low.size(a_rs), low.size(a_cs),
            low.element_pointer(b_value, offsets[2]), low.size(b_rs), low.size(b_cs),
            low.element_pointer(out, offsets[0]), low.size(n),
            ir.Constant(I32, int(accumulate)), low.workspace])

    if batch:
        nest(low, batch, [out_batch, a_batch, b_batch], product, bases=[0, 0, 0])
    else:
        product([ir.Constant(I64, 0)] * 3)


def _matrix_shape(shape: Sequence[Any], left: bool, transposed: bool) -> tuple[Any, Any]:
    if len(shape) == 1:
        return (1, shape[0]) if left else (shape[0], 1)
    rows, cols = shape[-2], shape[-1]
    return (cols, rows) if transposed else (rows, cols)


def _matrix_strides(shape: Sequence[Any], transposed: bool, left: bool) -> tuple[Any, Any]:
    """(row stride, column stride) of the operand as the product reads it."""
    if len(shape) == 1:
        return (0, 1) if left else (1, 0)
    rs, cs = shape[-1], 1
    return (cs, rs) if transposed else (rs, cs)


def broadcast_strides_batch(value: Value, batch: Sequence[Any], matrix_dims: int) -> list[Any]:
    """Strides of each batch dimension over a (possibly broadcast) batched operand."""
    own = contiguous_strides(value.shape)
    value_batch = value.shape[:len(value.shape) - matrix_dims]
    lead = len(batch) - len(value_batch)
    strides = []
    for i, size in enumerate(batch):
        j = i - lead
        if j < 0 or (value_batch[j] == 1 and size != 1):
            strides.append(0)
        else:
            strides.append(own[j])
    return strides


RULES: dict[str, Rule] = {
    "matmul": matmul,
    "gemm": matmul,
    "gemm_accumulate": gemm_accumulate,
}
