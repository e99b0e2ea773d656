"""Products with few rows of C (inference at batch 1-8): no packing, straight loops.

The packed GEMM copies a whole block of B before computing; when C has a handful of rows that
copy costs more than the arithmetic (for a 1 x 784 by 784 x 512 product, 1.6 MB moved for 0.8
MFLOP). Here each row of C is computed from A and B in place, in whichever order walks B
contiguously: dot products along K when B's rows are strided (B = W.T, nn.Linear's layout),
scaled row sums along N when B's columns are contiguous. Both inner loops have unit stride, so
LLVM vectorises them (the dot product with reassociation, as fast-math allows).
"""

from __future__ import annotations

from llvmlite import ir

from compiler.lowering.expressions import FLOAT_FLAGS
from compiler.lowering.gemm import GEMM_TYPE, GemmConfig
from compiler.lowering.llvm_types import I32, I64, element_type
from compiler.lowering.loops import counted_loop

SMALL_ROWS = 8  # products with at most this many rows of C take this path


def gemm_shaped_function(module: ir.Module, name: str) -> ir.Function:
    """An internal function of the GEMM's signature (M, N, K, A, a_rs, a_cs, B, b_rs, b_cs, C,
    ldc, accumulate, workspace), with A, B and C marked noalias."""
    function = ir.Function(module, GEMM_TYPE, name=name)
    function.linkage = "internal"
    for index in (3, 6, 9):
        function.args[index].add_attribute("noalias")
    return function


def emit_small_m_product(module: ir.Module, config: GemmConfig) -> ir.Function:
    """`symgrad_gemm_<tag>_small`: the GEMM's signature, for small M (any strides of A, B)."""
    name = config.symbol("_small")
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    element = element_type(config.dtype)
    function = gemm_shaped_function(module, name)
    m, n, k, a, a_rs, a_cs, b_ptr, b_rs, b_cs, c, ldc, accumulate, _ = function.args
    b = ir.IRBuilder(function.append_basic_block("entry"))
    zero = ir.Constant(element, 0.0)
    total = b.alloca(element)  # the dot product's accumulator (in the entry block: a register)

    def at(pointer: ir.Value, offset: ir.Value) -> ir.Value:
        return b.gep(pointer, [offset], source_etype=element, inbounds=True)

    def row(i: ir.Value) -> None:
        a_row = b.mul(i, a_rs)
        c_row = b.mul(i, ldc)
        keep = b.icmp_signed("!=", accumulate, ir.Constant(I32, 0))
        contiguous_columns = b.icmp_signed("==", b_cs, ir.Constant(I64, 1))
        with b.if_else(contiguous_columns) as (axpy, dots):
            with axpy:  # C[i, :] = sum_k A[i, k] * B[k, :]: unit stride along n
                def clear(j: ir.Value) -> None:
                    target = at(c, b.add(c_row, j))
                    b.store(b.select(keep, b.load(target, typ=element), zero), target)

                counted_loop(b, n, clear, name="clear")

                def depth(kk: ir.Value) -> None:
                    scale = b.load(at(a, b.add(a_row, b.mul(kk, a_cs))), typ=element)
                    b_row = b.mul(kk, b_rs)

                    def column(j: ir.Value) -> None:
                        target = at(c, b.add(c_row, j))
                        product = b.fmul(scale, b.load(at(b_ptr, b.add(b_row, j)), typ=element),
                                         flags=FLOAT_FLAGS)
                        total_j = b.fadd(b.load(target, typ=element), product, flags=FLOAT_FLAGS)
                        b.store(total_j, target)

                    counted_loop(b, n, column, name="j")

                counted_loop(b, k, depth, name="k")
            with dots:  # C[i, j] = dot(A[i, :], B[:, j]): unit stride along k when b_rs == 1
                unit = b.and_(b.icmp_signed("==", b_rs, ir.Constant(I64, 1)),
                              b.icmp_signed("==", a_cs, ir.Constant(I64, 1)))

                def column(j: ir.Value) -> None:
                    b.store(zero, total)
                    b_column = b.mul(j, b_cs)

                    def accumulate_from(a_step: ir.Value, b_step: ir.Value) -> None:
                        def depth(kk: ir.Value) -> None:
                            x = b.load(at(a, b.add(a_row, b.mul(kk, a_step))), typ=element)
                            y = b.load(at(b_ptr, b.add(b_column, b.mul(kk, b_step))),
                                       typ=element)
                            b.store(b.fadd(b.load(total, typ=element),
                                           b.fmul(x, y, flags=FLOAT_FLAGS), flags=FLOAT_FLAGS),
                                    total)

                        counted_loop(b, k, depth, name="k")

                    # the unit-stride copy is what LLVM vectorises; strides are runtime values
                    with b.if_else(unit) as (contiguous, strided):
                        with contiguous:
                            accumulate_from(ir.Constant(I64, 1), ir.Constant(I64, 1))
                        with strided:
                            accumulate_from(a_cs, b_rs)
                    target = at(c, b.add(c_row, j))
                    result = b.load(total, typ=element)
                    b.store(b.select(keep, b.fadd(b.load(target, typ=element), result), result),
                            target)

                counted_loop(b, n, column, name="j")

    counted_loop(b, m, row, name="i")
    b.ret_void()
    return function
