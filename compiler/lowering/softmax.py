"""Lowering of softmax and log_softmax (runtime/ops/softmax.py): three walks along each row -- its
maximum, the sum of exp(x - max), then the normalised values -- with the polynomial exp and log
of `vector_math.py`.
"""

from __future__ import annotations

from llvmlite import ir

from compiler.ir import Node
from compiler.lowering.context import FunctionLowering, Rule
from compiler.lowering.elements import check_float, load, store
from compiler.lowering.expressions import FLOAT_FLAGS
from compiler.lowering.llvm_types import float_type_of
from compiler.lowering.loops import counted_loop
from compiler.lowering.vector_math import emit_exp, emit_log
from runtime.ops._op import numel


def softmax(low: FunctionLowering, node: Node) -> None:
    source, out = node.inputs[0], node.output
    check_float(node, source)
    dim = node.attrs["dim"]
    shape = source.shape
    outer, length, inner = numel(shape[:dim]), shape[dim], numel(shape[dim + 1:])
    float_type = float_type_of(source.dtype)
    b = low.builder
    logarithmic = node.op_name == "log_softmax"

    def per_outer(o: ir.Value) -> None:
        def per_inner(i: ir.Value) -> None:
            base = b.add(b.mul(o, low.size(length * inner)), i)
            stride = low.size(inner)
            at = lambda k: b.add(base, b.mul(k, stride))  # noqa: E731
            peak = low.local(float_type)
            total = low.local(float_type)
            b.store(ir.Constant(float_type, float("-inf")), peak)
            b.store(ir.Constant(float_type, 0.0), total)

            def find_peak(k: ir.Value) -> None:
                x = load(low, source, at(k), float_type)
                current = b.load(peak, typ=float_type)
                b.store(b.select(b.fcmp_unordered(">", x, current), x, current), peak)

            counted_loop(b, low.size(length), find_peak, name="peak")
            m = b.load(peak, typ=float_type)
            # all -inf (or a row of -inf): subtract 0 instead so the result is nan/0 like PyTorch
            m = b.select(b.fcmp_ordered("==", m, ir.Constant(float_type, float("-inf"))),
                         ir.Constant(float_type, 0.0), m)

            def accumulate(k: ir.Value) -> None:
                e = emit_exp(b, b.fsub(load(low, source, at(k), float_type), m))
                if not logarithmic:
                    store(low, out, at(k), e, source.dtype)
                b.store(b.fadd(b.load(total, typ=float_type), e, flags=FLOAT_FLAGS), total)

            counted_loop(b, low.size(length), accumulate, name="sum")
            s = b.load(total, typ=float_type)
            if logarithmic:
                log_total = emit_log(b, s)

                def write(k: ir.Value) -> None:
                    # (x - m) - log(s): x - (m + log(s)) would round log(s) to the ulp of m
                    shifted = b.fsub(load(low, source, at(k), float_type), m)
                    store(low, out, at(k), b.fsub(shifted, log_total), source.dtype)
            else:
                scale = b.fdiv(ir.Constant(float_type, 1.0), s)

                def write(k: ir.Value) -> None:
                    store(low, out, at(k), b.fmul(load(low, out, at(k), float_type), scale),
                          source.dtype)

            counted_loop(b, low.size(length), write, name="write")

        counted_loop(b, low.size(inner), per_inner, name="inner")

    counted_loop(b, low.size(outer), per_outer, name="outer")


RULES: dict[str, Rule] = {
    "softmax": softmax,
    "log_softmax": softmax,
}
