"""Sums accumulated in levels (a cascade), so that a native sum is as accurate as PyTorch's.

Adding the rows of a reduced dimension one after another makes each result a chain of one
rounding per row: a float32 column sum of 1000 rows was ~20 ulps off. Here the rows of the
outermost long reduced dimension go into a partial sum BLOCK at a time, BLOCK partials into the
next level's partial, and so on, the last level into the output, so a result is a chain of about
BLOCK additions per level, as in PyTorch's cascade sum. The partials are stack arrays of at most
PARTIAL_BYTES (a wider output region is summed in tiles), released when the sum is done.

This module only plans and emits the loops; `reduction.py` owns the sum rule, and uses a plain
sequential nest where no reduced dimension is long (nothing to gain) or no plan fits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sympy
from llvmlite import ir

from compiler.lowering.context import FunctionLowering
from compiler.lowering.expressions import FLOAT_FLAGS
from compiler.lowering.llvm_types import I64, PTR, VOID
from compiler.lowering.loops import counted_loop, strided_nest

BLOCK = 32  # rows added into one partial before it is added to the next level
LEVELS = 3  # partials: 32**3 rows take ~3 * 32 additions each; beyond that 1 more per 32**3 rows
CONTIGUOUS_BLOCK = 1024  # the first block when each row is one contiguous number (a row sum):
# LLVM vectorises that loop into 16-64 independent lanes, so each lane still adds few numbers
NARROW_SPAN = 8  # outputs this few per row make a first block of BLOCK * 8 // span rows
PARTIAL_BYTES = 2048  # per partial: small tiles stream as fast as the plain nest, 8-24 KB did not
ROWS_AT_ONCE = 8  # rows of a wide region read together and added as a tree: fewer
# read-modify-writes of the partial, and 8 streams through memory (narrow regions are left to
# LLVM, which vectorises across their rows, and so are rows whose innermost dimension is reduced)
UNROLL_LIMIT = 64  # wider rows hide their width from LLVM, whose full unroll then spills



@dataclass(frozen=True)
class CascadePlan:
    """How one sum is blocked, over the merged dimensions of its nest.

    Rows of dimension `dim` are blocked; the dimensions after it form the output region a row
    adds into, whose extent is `span` elements (`tile` of dimension dim + 1 at a time when the
    region is wider than a partial: a tile of width w spans (w - 1) * tile_stride + rest_span)."""

    dim: int
    levels: int
    first_block: int
    span: int
    rows_at_once: int = 1
    tile: int | None = None
    tile_count: int = 1
    tile_stride: int = 0
    rest_span: int = 0

    def rows_per_partial(self, level: int) -> int:
        return self.first_block * BLOCK ** level


def _static(size: Any) -> int | None:
    expr = sympy.sympify(size)
    return int(expr) if expr.is_Integer else None


def _longer_than_block(size: Any) -> bool:
    static = _static(size)
    return static is None or static > BLOCK


def plan_cascade(shape: Sequence[Any], source_strides: Sequence[Any], out_strides: Sequence[Any],
                 element_bytes: int) -> CascadePlan | None:
    """The plan for a sum nest (merged: see `loops.merge_dimensions`), or None when no reduced
    dimension is long or the output region a row touches grows with the batch size."""
    long = [k for k, (size, stride) in enumerate(zip(shape, out_strides))
            if _static(stride) == 0 and _longer_than_block(size)]
    if not long:
        return None
    dim = long[0]
    sizes = [_static(s) for s in shape[dim + 1:]]
    strides = [_static(s) for s in out_strides[dim + 1:]]
    kept = [(size, stride) for size, stride in zip(sizes, strides) if stride != 0]
    known = [(size, stride) for size, stride in kept if size is not None and stride is not None]
    if len(known) < len(kept):
        return None
    span = 1 + sum((size - 1) * stride for size, stride in known)
    capacity = PARTIAL_BYTES // element_bytes
    rows = _static(shape[dim])
    tiling: dict[str, int] = {}
    if span > capacity:
        first_size, first_stride = sizes[0] if sizes else None, strides[0] if strides else 0
        if first_size is None or not first_stride:
            return None  # the first dimension after dim is reduced: no tiles to cut
        rest_span = span - (first_size - 1) * first_stride
        if rest_span > capacity:
            return None
        tile = (capacity - rest_span) // first_stride + 1
        span = (tile - 1) * first_stride + rest_span
        tiling = dict(tile=tile, tile_count=-(-first_size // tile), tile_stride=first_stride,
                      rest_span=rest_span)
    if not sizes and _static(source_strides[dim]) == 1:
        first_block = CONTIGUOUS_BLOCK
    else:
        first_block = BLOCK * max(1, NARROW_SPAN // span)
    levels = LEVELS
    if rows is not None:
        levels = 1
        while levels < LEVELS and first_block * BLOCK ** levels < rows:
            levels += 1
    rows_at_once = ROWS_AT_ONCE if span > NARROW_SPAN and strides and strides[-1] != 0 else 1
    return CascadePlan(dim, levels, first_block, span, rows_at_once, **tiling)


def emit_cascade(low: FunctionLowering, plan: CascadePlan, shape: Sequence[Any],
                 source_strides: Sequence[Any], out_strides: Sequence[Any], float_type: ir.Type,
                 load_element: Callable[[ir.Value], ir.Value],
                 out_element: Callable[[ir.Value], ir.Value]) -> None:
    """out += the sum, in levels; `load_element(offset)` reads the source as `float_type` and
    `out_element(offset)` is a pointer into the output (already zero-filled)."""
    b = low.builder
    saved = b.call(_declare(low, "llvm.stacksave.p0", PTR, []), [])
    partials = [b.alloca(ir.ArrayType(float_type, plan.span)) for _ in range(plan.levels)]
    for partial in partials:
        partial.align = 64
    dim, inner = plan.dim, slice(plan.dim + 1, None)

    def in_partial(partial: ir.Value) -> Callable[[ir.Value], ir.Value]:
        return lambda r: b.gep(partial, [ir.Constant(I64, 0), r])

    def region(offsets: list[ir.Value], tile: ir.Value) -> None:
        """Sum every row of `dim` into the output region at `offsets` (tile `tile` of it)."""
        sizes = [low.size(s) for s in shape[inner]]
        source_base, out_base, span = offsets[0], offsets[1], ir.Constant(I64, plan.span)
        if plan.tile is not None:
            start = b.mul(tile, ir.Constant(I64, plan.tile))
            sizes[0] = _minimum(b, ir.Constant(I64, plan.tile), b.sub(sizes[0], start))
            source_base = b.add(source_base, b.mul(start, low.size(source_strides[dim + 1])))
            out_base = b.add(out_base, b.mul(start, low.size(out_strides[dim + 1])))
            span = b.add(b.mul(b.sub(sizes[0], ir.Constant(I64, 1)),
                               ir.Constant(I64, plan.tile_stride)),
                         ir.Constant(I64, plan.rest_span))
        if sizes and (_static(shape[dim + 1]) or 0) > UNROLL_LIMIT:
            sizes[0] = _opaque(b, sizes[0])
        strides = [[low.size(s) for s in source_strides[inner]],
                   [low.size(s) for s in out_strides[inner]]]
        targets = [in_partial(p) for p in partials] + [lambda r: out_element(b.add(out_base, r))]

        def add_rows(level: int, first: ir.Value, count: ir.Value) -> None:
            """targets[level] += rows first .. first + count - 1 of `dim`."""
            if level == 0:
                row_stride = low.size(source_strides[dim])

                def rows_at_once(group: int) -> Callable[[ir.Value], None]:
                    def rows(i: ir.Value) -> None:
                        """targets[0] += rows first + i .. first + i + group - 1, as a tree."""
                        base = b.add(source_base, b.mul(b.add(first, i), row_stride))
                        bases = [b.add(base, b.mul(ir.Constant(I64, u), row_stride))
                                 for u in range(group)]

                        def element(at: list[ir.Value]) -> None:
                            pointer = targets[0](at[-1])
                            b.store(b.fadd(b.load(pointer, typ=float_type),
                                           _tree(b, [load_element(o) for o in at[:-1]]),
                                           flags=FLOAT_FLAGS), pointer)

                        strided_nest(b, sizes, [strides[0]] * group + [strides[1]],
                                     bases + [ir.Constant(I64, 0)], element)
                    return rows

                in_groups: ir.Value = ir.Constant(I64, 0)
                if plan.rows_at_once > 1:
                    group = ir.Constant(I64, plan.rows_at_once)
                    in_groups = b.mul(b.sdiv(count, group), group)
                    counted_loop(b, b.sdiv(count, group), lambda g: rows_at_once(
                        plan.rows_at_once)(b.mul(g, group)), name="rows")
                counted_loop(b, b.sub(count, in_groups),
                             lambda i: rows_at_once(1)(b.add(in_groups, i)), name="row")
                return
            step = ir.Constant(I64, plan.rows_per_partial(level - 1))
            blocks = b.sdiv(b.add(count, b.sub(step, ir.Constant(I64, 1))), step)

            def block(k: ir.Value) -> None:
                done = b.mul(k, step)
                _fill(b, targets[level - 1], span, float_type)
                add_rows(level - 1, b.add(first, done), _minimum(b, step, b.sub(count, done)))
                _add_into(b, targets[level - 1], targets[level], span, float_type)

            counted_loop(b, blocks, block, name=f"level{level}")

        add_rows(plan.levels, ir.Constant(I64, 0), low.size(shape[dim]))

    def outer(offsets: list[ir.Value]) -> None:
        counted_loop(b, ir.Constant(I64, plan.tile_count), lambda t: region(offsets, t),
                     name="tile")

    strided_nest(b, [low.size(s) for s in shape[:dim]],
                 [[low.size(s) for s in source_strides[:dim]],
                  [low.size(s) for s in out_strides[:dim]]], [ir.Constant(I64, 0)] * 2, outer)
    b.call(_declare(low, "llvm.stackrestore.p0", VOID, [PTR]), [saved])


def _fill(b: ir.IRBuilder, element: Callable[[ir.Value], ir.Value], span: ir.Value,
          float_type: ir.Type) -> None:
    counted_loop(b, span, lambda r: b.store(ir.Constant(float_type, 0.0), element(r)),
                 name="zero")


def _add_into(b: ir.IRBuilder, source: Callable[[ir.Value], ir.Value],
              target: Callable[[ir.Value], ir.Value], span: ir.Value, float_type: ir.Type) -> None:
    def add(r: ir.Value) -> None:
        pointer = target(r)
        b.store(b.fadd(b.load(pointer, typ=float_type), b.load(source(r), typ=float_type),
                       flags=FLOAT_FLAGS), pointer)

    counted_loop(b, span, add, name="flush")


def _tree(b: ir.IRBuilder, values: list[ir.Value]) -> ir.Value:
    """The sum of `values`, added pairwise (without 'reassoc', which would let LLVM make it a
    chain again)."""
    while len(values) > 1:
        values = [b.fadd(values[k], values[k + 1]) if k + 1 < len(values) else values[k]
                  for k in range(0, len(values), 2)]
    return values[0]


def _minimum(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y), x, y)


def _opaque(b: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """`value`, which LLVM can no longer see is a constant (an empty asm: no instruction)."""
    return b.call(ir.InlineAsm(ir.FunctionType(I64, [I64]), "", "=r,0"), [value])


def _declare(low: FunctionLowering, name: str, result: ir.Type,
             arguments: list[ir.Type]) -> ir.Function:
    existing = low.module.globals.get(name)
    return existing or ir.Function(low.module, ir.FunctionType(result, arguments), name=name)
