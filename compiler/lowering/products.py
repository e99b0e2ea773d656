"""The GEMM entry that every native matrix product calls, `symgrad_gemm_<tag>_threaded`: it has
the GEMM's signature and chooses the kernel for each product.

Products of a few rows of C take the unpacked loops of `small_products`, x @ W.T with a few
columns the blocked dot products of `narrow_products`, the rest the packed GEMM of `gemm`;
products above a size threshold are shared by the two-thread team of `threads`, C cut into
column chunks that each thread takes until none are left. Its workspace must hold two GEMM
workspaces (one per thread).
"""

from __future__ import annotations

from llvmlite import ir

from compiler.lowering.gemm import GemmConfig, emit_gemm
from compiler.lowering.llvm_types import I32, I64, PTR, element_type
from compiler.lowering.narrow_products import NARROW_COLUMNS, emit_narrow_product
from compiler.lowering.small_products import SMALL_ROWS, emit_small_m_product
from compiler.lowering.threads import TASK_TYPE, emit_thread_team

PARALLEL_FLOPS = 4_000_000  # below this a product runs on one thread
CHUNKS_PER_THREAD = 2  # for packed A and few-row products: finer than one half per thread, so
# a late worker costs less
SMALL_PARALLEL_ELEMENTS = 128 * 1024  # a few-row product splits when B is this large: the
# MLP's batch-1 forward streams its 2.6 MB of weights on two cores in 16 us instead of 28


def emit_threaded_gemm(module: ir.Module, config: GemmConfig) -> ir.Function:
    """`symgrad_gemm_<tag>_threaded`: the GEMM's signature; large products shared by the team.

    C is cut into column chunks (a whole number of tiles each; B's panels are packed per chunk,
    A's block per chunk too, which is cheap when M is small, the common case). Each thread takes
    chunks until none are left, running `..._part` with its own half of the workspace, or the
    unpacked loops when C has only a few rows.
    """
    name = config.symbol("_threaded")
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    product = emit_gemm(module, config)
    part = module.globals[config.symbol("_part")]
    workspace_of = module.globals[config.symbol("_workspace")]
    small_product = emit_small_m_product(module, config)
    narrow_product = emit_narrow_product(module, config)
    run = emit_thread_team(module)
    element = element_type(config.dtype)
    # the context is an array of 64-bit words: the GEMM's 13 arguments, then the next chunk to
    # take (an atomic counter), the number of chunks, the chunk width, and whether C's rows are
    # few (unpacked loops)
    kinds = [I64] * 3 + [PTR, I64, I64, PTR, I64, I64, PTR, I64, I32, PTR, I64, I64, I64, I64]
    counter_word = 13
    task = ir.Function(module, TASK_TYPE, name=config.symbol("_chunks"))
    task.linkage = "internal"
    context, which = task.args
    b = ir.IRBuilder(task.append_basic_block("entry"))
    field = [_from_word(b, b.load(b.gep(context, [ir.Constant(I64, i)], source_etype=I64),
                                  typ=I64), kind) for i, kind in enumerate(kinds)]
    (m, n, k, a, a_rs, a_cs, bm, b_rs, b_cs, c, ldc, accumulate, workspace, _, chunks, width,
     small) = field
    counter = b.gep(context, [ir.Constant(I64, counter_word)], source_etype=I64)
    mine = b.gep(workspace, [b.mul(which, b.call(workspace_of, [m, width, k]))],
                 source_etype=element)
    loop = task.append_basic_block("take")
    body = task.append_basic_block("chunk")
    done = task.append_basic_block("done")
    b.branch(loop)
    b.position_at_end(loop)
    chunk = b.atomic_rmw("add", counter, ir.Constant(I64, 1), "monotonic")
    b.cbranch(b.icmp_signed("<", chunk, chunks), body, done)
    b.position_at_end(body)
    begin = b.mul(chunk, width)
    end = b.add(begin, width)
    end = b.select(b.icmp_signed("<", end, n), end, n)
    with b.if_else(b.icmp_signed("!=", small, ir.Constant(I64, 0))) as (unpacked, packed):
        with unpacked:
            b.call(small_product, [
                m, b.sub(end, begin), k, a, a_rs, a_cs,
                b.gep(bm, [b.mul(begin, b_cs)], source_etype=element), b_rs, b_cs,
                b.gep(c, [begin], source_etype=element), ldc, accumulate, mine])
        with packed:
            b.call(part, [ir.Constant(I64, 0), m, begin, end, k, a, a_rs, a_cs, bm, b_rs, b_cs, c,
                          ldc, accumulate, mine])
    b.branch(loop)
    b.position_at_end(done)
    b.ret_void()

    function = ir.Function(module, product.function_type, name=name)
    args = function.args
    b = ir.IRBuilder(function.append_basic_block("entry"))
    m, n, k = args[0], args[1], args[2]
    nr = config.tile_columns
    few_rows = b.icmp_signed("<=", m, ir.Constant(I64, SMALL_ROWS))
    narrow = b.and_(b.and_(b.icmp_signed("<=", n, ir.Constant(I64, NARROW_COLUMNS)),
                           b.not_(few_rows)),
                    b.and_(b.icmp_signed("==", args[5], ir.Constant(I64, 1)),
                           b.icmp_signed("==", args[7], ir.Constant(I64, 1))))
    with b.if_then(narrow):  # x @ W.T with a few columns: blocked dot products, one thread
        b.call(narrow_product, list(args))
        b.ret_void()
    # a few rows: B is read once, so its size decides; else the product's FLOPs do
    large = b.select(few_rows,
                     b.icmp_signed(">=", b.mul(n, k), ir.Constant(I64, SMALL_PARALLEL_ELEMENTS)),
                     b.icmp_signed(">=", b.mul(b.mul(m, n), k),
                                   ir.Constant(I64, PARALLEL_FLOPS // 2)))
    wide = b.icmp_signed(">=", n, ir.Constant(I64, 2 * nr))
    with b.if_then(b.not_(b.and_(large, wide))):
        with b.if_else(few_rows) as (unpacked, packed):
            with unpacked:
                b.call(small_product, list(args))
            with packed:
                b.call(product, list(args))
        b.ret_void()
    # chunks a whole number of tiles wide: one tile when A is read unpacked and B's rows are
    # contiguous (a chunk then costs no more than its tiles, and one-tile chunks share 10.7
    # tiles 5.7 : 5 where two-per-thread chunks share them 6 : 4.7: 784x64x512 TN ran 1.80x one
    # thread, not 1.64x), else CHUNKS_PER_THREAD per thread (each chunk packs A again, and
    # packing B.T in one-tile chunks was slower: 64x784x512 NT 1.55x, not 1.74x)
    tiles = b.sdiv(b.add(n, ir.Constant(I64, nr - 1)), ir.Constant(I64, nr))
    target = ir.Constant(I64, 2 * CHUNKS_PER_THREAD)
    per_chunk = b.sdiv(b.add(tiles, ir.Constant(I64, 2 * CHUNKS_PER_THREAD - 1)), target)
    a_unpacked = b.or_(b.icmp_signed("==", args[4], ir.Constant(I64, 1)),
                       b.icmp_signed("==", args[5], ir.Constant(I64, 1)))
    b_rows = b.icmp_signed("==", args[8], ir.Constant(I64, 1))
    fine = b.and_(b.and_(a_unpacked, b_rows), b.not_(few_rows))
    per_chunk = b.select(fine, ir.Constant(I64, 1), per_chunk)
    width = b.mul(per_chunk, ir.Constant(I64, nr))
    chunks = b.sdiv(b.add(n, b.sub(width, ir.Constant(I64, 1))), width)
    _run_shared(b, run, task, list(args) + [ir.Constant(I64, 0), chunks, width,
                                             b.zext(few_rows, I64)])
    b.ret_void()
    return function


def _run_shared(b: ir.IRBuilder, run: ir.Function, task: ir.Function,
                values: list[ir.Value]) -> None:
    """Store the context words on the stack and run `task` on the team."""
    with b.goto_entry_block():
        slot = b.alloca(ir.ArrayType(I64, len(values)))
    for i, value in enumerate(values):
        b.store(_to_word(b, value), b.gep(slot, [ir.Constant(I32, 0), ir.Constant(I32, i)]))
    b.call(run, [task, b.bitcast(slot, PTR)])


def _to_word(b: ir.IRBuilder, value: ir.Value) -> ir.Value:
    if isinstance(value.type, ir.PointerType):
        return b.ptrtoint(value, I64)
    return b.zext(value, I64) if value.type != I64 else value


def _from_word(b: ir.IRBuilder, word: ir.Value, kind: ir.Type) -> ir.Value:
    if isinstance(kind, ir.PointerType):
        return b.inttoptr(word, PTR)
    return b.trunc(word, kind) if kind != I64 else word
