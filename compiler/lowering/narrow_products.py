"""Products with few columns of C (a classifier's last Linear: N = 10): register-blocked dot
products along K.

The packed GEMM computes tiles NR columns wide (48 with AVX-512), so a 10-column product wastes
four fifths of every FMA. When A's rows and B's columns are contiguous along K (x @ W.T, the
layout of nn.Linear), each C[i, j] is a dot product of two unit-stride vectors; a block of
R x COLUMNS of them shares its vector loads (R + COLUMNS loads per R * COLUMNS FMAs),
and each accumulator is summed across its lanes once at the end. Rows and columns past the
edge re-read the last row or column (never past the matrices) and are not stored.
"""

from __future__ import annotations

from llvmlite import ir

from compiler.lowering.gemm import GemmConfig, ceil_div_ir
from compiler.lowering.llvm_types import I32, I64, element_type
from compiler.lowering.loops import counted_loop
from compiler.lowering.small_products import gemm_shaped_function
from compiler.lowering.vector_math import fma

COLUMNS = 5  # columns of C per block (N = 10 in two blocks)
ROWS_WITH_32_REGISTERS = 4  # rows per block with AVX-512: 20 accumulators + 5 + 1 loaded vectors
ROWS_WITH_16_REGISTERS = 2  # with AVX2: 10 + 5 + 1
NARROW_COLUMNS = 16  # products with at most this many columns (and the layout above) come here


def emit_narrow_product(module: ir.Module, config: GemmConfig) -> ir.Function:
    """`symgrad_gemm_<tag>_narrow`: the GEMM's signature, for A with a_cs == 1 and B with
    b_rs == 1 (the caller checks); any M, N, K."""
    name = config.symbol("_narrow")
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    element = element_type(config.dtype)
    lanes = config.lanes
    vector = ir.VectorType(element, lanes)
    rows_per_block = ROWS_WITH_32_REGISTERS if lanes * config.element_bytes == 64 else \
        ROWS_WITH_16_REGISTERS
    function = gemm_shaped_function(module, name)
    m, n, k, a, a_rs, _, b_ptr, _, b_cs, c, ldc, accumulate, _ = function.args
    b = ir.IRBuilder(function.append_basic_block("entry"))
    zero = ir.Constant(vector, [ir.Constant(element, 0.0)] * lanes)
    whole = b.and_(k, ir.Constant(I64, -lanes))  # K rounded down to whole vectors
    keep = b.icmp_signed("!=", accumulate, ir.Constant(I32, 0))
    partial = b.alloca(element)  # one dot product's sum, while its tail is added

    def at(pointer: ir.Value, offset: ir.Value) -> ir.Value:
        return b.gep(pointer, [offset], source_etype=element, inbounds=True)

    def clamped(start: ir.Value, step: int, count: ir.Value) -> ir.Value:
        return b.select(b.icmp_signed("<", b.add(start, ir.Constant(I64, step)), count),
                        b.add(start, ir.Constant(I64, step)), b.sub(count, ir.Constant(I64, 1)))

    def block(i0: ir.Value, j0: ir.Value) -> None:
        rows = [at(a, b.mul(clamped(i0, r, m), a_rs)) for r in range(rows_per_block)]
        columns = [at(b_ptr, b.mul(clamped(j0, s, n), b_cs)) for s in range(COLUMNS)]
        sums = _dot_block(b, vector, rows, columns, whole, zero)
        for r in range(rows_per_block):
            for s in range(COLUMNS):
                total = _lane_sum(b, sums[r][s], lanes)

                def tail(kk: ir.Value, r: int = r, s: int = s) -> None:
                    index = b.add(whole, kk)
                    x = b.load(at(rows[r], index), typ=element)
                    y = b.load(at(columns[s], index), typ=element)
                    b.store(fma(b, x, y, b.load(partial, typ=element)), partial)

                b.store(total, partial)
                counted_loop(b, b.sub(k, whole), tail, name="tail")
                i, j = b.add(i0, ir.Constant(I64, r)), b.add(j0, ir.Constant(I64, s))
                inside = b.and_(b.icmp_signed("<", i, m), b.icmp_signed("<", j, n))
                with b.if_then(inside):
                    target = at(c, b.add(b.mul(i, ldc), j))
                    result = b.load(partial, typ=element)
                    b.store(b.select(keep, b.fadd(b.load(target, typ=element), result), result),
                            target)

    def row_block(ib: ir.Value) -> None:
        counted_loop(b, ceil_div_ir(b, n, COLUMNS),
                     lambda jb: block(b.mul(ib, ir.Constant(I64, rows_per_block)),
                                      b.mul(jb, ir.Constant(I64, COLUMNS))), name="jb")

    counted_loop(b, ceil_div_ir(b, m, rows_per_block), row_block, name="ib")
    b.ret_void()
    return function


def _dot_block(b: ir.IRBuilder, vector: ir.VectorType, rows: list[ir.Value],
               columns: list[ir.Value], whole: ir.Value, zero: ir.Constant
               ) -> list[list[ir.Value]]:
    """Vector accumulators acc[r][s] = sum over whole vectors k of rows[r][k] * columns[s][k]."""
    lanes = vector.count
    entry = b.block
    header = b.append_basic_block("dots.header")
    body = b.append_basic_block("dots.body")
    done = b.append_basic_block("dots.done")
    b.branch(header)
    b.position_at_end(header)
    kk = b.phi(I64)
    kk.add_incoming(ir.Constant(I64, 0), entry)
    sums = [[b.phi(vector) for _ in columns] for _ in rows]
    for row in sums:
        for phi in row:
            phi.add_incoming(zero, entry)
    b.cbranch(b.icmp_signed("<", kk, whole), body, done)
    b.position_at_end(body)
    element = vector.element

    def load(pointer: ir.Value) -> ir.Value:
        return b.load(b.gep(pointer, [kk], source_etype=element, inbounds=True), typ=vector,
                      align=4 if isinstance(element, ir.FloatType) else 8)

    xs = [load(row) for row in rows]
    ys = [load(column) for column in columns]
    for r, x in enumerate(xs):
        for s, y in enumerate(ys):
            sums[r][s].add_incoming(fma(b, x, y, sums[r][s]), body)
    kk.add_incoming(b.add(kk, ir.Constant(I64, lanes)), body)
    b.branch(header)
    b.position_at_end(done)
    return sums


def _lane_sum(b: ir.IRBuilder, value: ir.Value, lanes: int) -> ir.Value:
    """The sum of a vector's lanes, halving it log2(lanes) times."""
    width = lanes
    while width > 1:
        width //= 2
        low = b.shuffle_vector(value, value, ir.Constant(ir.VectorType(I32, width),
                                                         list(range(width))))
        high = b.shuffle_vector(value, value, ir.Constant(ir.VectorType(I32, width),
                                                          list(range(width, 2 * width))))
        value = b.fadd(low, high)
    return b.extract_element(value, ir.Constant(I32, 0))
