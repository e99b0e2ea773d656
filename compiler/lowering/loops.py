"""Loop nests in LLVM IR: counted loops, and strided nests over a shape for many operands.

`counted_range` is the one loop every emitter builds on (`with counted_range(...) as i:`), and
`counted_loop` its form with a body function. A strided nest walks an output shape in row-major
order; each operand has one stride per dimension (0 where it is broadcast or reduced), so copies,
broadcasts, transposes, elementwise kernels and reductions are all the same nest with a
different body. Adjacent dimensions that
every operand walks contiguously are merged first, so the innermost loop is as long as possible
and LLVM's vectoriser sees unit or zero strides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sympy
from llvmlite import ir

from compiler.lowering.llvm_types import I64


@contextmanager
def counted_range(
    builder: ir.IRBuilder,
    start: ir.Value,
    stop: ir.Value,
    step: int | ir.Value = 1,
    name: str = "i",
) -> Iterator[ir.Value]:
    """`for index in range(start, stop, step)` (step > 0); yields the index inside the body."""
    step_value = I64(step) if isinstance(step, int) else step
    preheader = builder.block
    header = builder.append_basic_block(f"{name}.header")
    body = builder.append_basic_block(f"{name}.body")
    exit_block = builder.append_basic_block(f"{name}.exit")
    builder.branch(header)
    builder.position_at_end(header)
    index = builder.phi(I64, name=name)
    index.add_incoming(start, preheader)
    builder.cbranch(builder.icmp_signed("<", index, stop), body, exit_block)
    builder.position_at_end(body)
    yield index
    index.add_incoming(builder.add(index, step_value), builder.block)
    builder.branch(header)
    builder.position_at_end(exit_block)


def counted_loop(builder: ir.IRBuilder, count: ir.Value, body: Callable[[ir.Value], None],
                 name: str = "i") -> None:
    """for (i = 0; i < count; ++i) body(i)."""
    with counted_range(builder, ir.Constant(I64, 0), count, name=name) as index:
        body(index)


def _same(a: Any, b: Any) -> bool:
    return sympy.expand(sympy.sympify(a) - sympy.sympify(b)) == 0


def merge_dimensions(shape: Sequence[Any], strides: Sequence[Sequence[Any]]
                     ) -> tuple[list[Any], list[list[Any]]]:
    """Merge dimension i into i+1 where every operand has stride[i] == stride[i+1] * size[i+1]."""
    shape = list(shape)
    rows = [list(s) for s in strides]  # one row of strides per operand
    i = len(shape) - 2
    while i >= 0:
        if all(_same(s[i], s[i + 1] * shape[i + 1]) for s in rows):
            shape[i:i + 2] = [shape[i] * shape[i + 1]]
            for s in rows:
                s[i:i + 2] = [s[i + 1]]
        i -= 1
    # size-1 dimensions contribute nothing
    keep = [k for k, size in enumerate(shape) if not _same(size, 1)]
    return [shape[k] for k in keep], [[s[k] for k in keep] for s in rows]


def contiguous_strides(shape: Sequence[Any]) -> list[Any]:
    strides: list[Any] = []
    running: Any = 1
    for size in reversed(shape):
        strides.append(running)
        running = running * size
    return strides[::-1]


def strided_nest(builder: ir.IRBuilder, sizes: Sequence[ir.Value],
                 strides: Sequence[Sequence[ir.Value]], bases: Sequence[ir.Value],
                 body: Callable[[list[ir.Value]], None]) -> None:
    """Walk `sizes`; call body with each operand's element offset (base + sum index*stride)."""

    def level(depth: int, offsets: list[ir.Value]) -> None:
        if depth == len(sizes):
            body(offsets)
            return

        def step(index: ir.Value) -> None:
            inner = [builder.add(o, builder.mul(index, s[depth])) if not _is_zero(s[depth]) else o
                     for o, s in zip(offsets, strides)]
            level(depth + 1, inner)

        counted_loop(builder, sizes[depth], step, name=f"d{depth}")

    level(0, list(bases))


def _is_zero(value: ir.Value) -> bool:
    return isinstance(value, ir.Constant) and value.constant == 0
