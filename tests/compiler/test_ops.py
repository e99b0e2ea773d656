"""The ops that exist only in compiled graphs declare what the compiler reads off every op."""

from __future__ import annotations

import sympy

from compiler import ops
from runtime.ops import Op

N = sympy.Symbol("N", positive=True, integer=True)


def test_every_compiler_op_counts_its_flops():
    for op in (ops.stop_gradient, ops.symbolic_size, ops.gemm, ops.gemm_accumulate):
        assert type(op).flops is not Op.flops, f"op {op.name!r} has no FLOP rule"
    flags = {"transpose_a": True, "transpose_b": False}
    assert ops.gemm.flops([(N, 784), (N, 64)], (784, 64), **flags) == 2 * 784 * 64 * N
    assert ops.gemm_accumulate.flops([(784, 64), (N, 784), (N, 64)], (784, 64), **flags) == \
        2 * 784 * 64 * N + 784 * 64


def test_stop_gradient_is_its_input_under_another_name():
    assert ops.stop_gradient.aliases_input and ops.stop_gradient.preserves_elements
