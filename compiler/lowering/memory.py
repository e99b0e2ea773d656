"""Memory planning: where each intermediate value lives during a native call.

Intermediates share one arena, planned by liveness: a value occupies its bytes from the node that
defines it to the last node that reads it, and first-fit places it at the lowest offset free for
that whole interval. Sizes depend on the batch size N, so the arena has two regions: one for
values of fixed size, one for values whose size is a multiple of N (offsets there are multiples
of N too); anything else gets a slot of its own. A reshape (or stop_gradient) of a value is the
same memory under another shape (`Op.aliases_input`): it aliases its input and extends its
lifetime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from compiler.errors import CompileError
from compiler.ir import Graph, Value, value_bytes

ALIGN = 64


def _round(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass(frozen=True)
class Offset:
    """An arena offset in bytes: per_example * N + fixed."""

    per_example: int
    fixed: int

    def at(self, n: int) -> int:
        return self.per_example * n + self.fixed


@dataclass
class ArenaPlan:
    offsets: dict[Value, Offset]  # for every value that lives in the arena (aliases included)
    aliases: dict[Value, Value]  # value -> the value whose memory it shares
    bytes: Offset  # total arena size

    def storage_of(self, value: Value) -> Value:
        return self.aliases.get(value, value)


def _first_fit(intervals: list[tuple[int, int, int, Value]]) -> tuple[dict[Value, int], int]:
    """Offsets for (start, end, size, value) so that buffers alive at once do not overlap."""
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, start, end)
    offsets: dict[Value, int] = {}
    top = 0
    for start, end, size, value in sorted(intervals, key=lambda t: (-t[2], t[0])):
        candidate = 0
        for offset, other_size, other_start, other_end in sorted(placed):
            overlaps_in_time = not (end < other_start or other_end < start)
            if overlaps_in_time and candidate + size > offset and offset + other_size > candidate:
                candidate = _round(offset + other_size)
        placed.append((candidate, size, start, end))
        offsets[value] = candidate
        top = max(top, candidate + size)
    return offsets, _round(top)


def _check_linear_sizes(graph: Graph) -> None:
    """Every value the function makes must have a size a * N + b (no N * N matrix), since the
    arena and the caller's buffers are planned so; else a CompileError naming the op."""
    for node in graph.nodes:
        try:
            value_bytes(node.output)
        except ValueError:
            raise CompileError(
                f"op '{node.op_name}' makes %{node.output.name} of shape "
                f"{list(node.output.shape)}, whose size is not linear in the batch size N; the "
                "compiler supports sizes a * N + b only", node.op_name, node.origin) from None


def plan_arena(graph: Graph, external: set[Value]) -> ArenaPlan:
    """Plan the arena for every node value of `graph` that is not `external` (a caller's buffer)."""
    _check_linear_sizes(graph)
    aliases: dict[Value, Value] = {}
    for node in graph.nodes:
        if node.op.aliases_input and node.output not in external:
            source = node.inputs[0]
            aliases[node.output] = aliases.get(source, source)
    storage: Callable[[Value], Value] = lambda v: aliases.get(v, v)  # noqa: E731
    start: dict[Value, int] = {}
    end: dict[Value, int] = {}
    for index, node in enumerate(graph.nodes):
        root = storage(node.output)
        start.setdefault(root, index)
        end[root] = max(end.get(root, index), index)
        for v in node.inputs:
            end[storage(v)] = max(end.get(storage(v), index), index)
    for v in graph.outputs:
        end[storage(v)] = len(graph.nodes)
    fixed, proportional, own = [], [], []
    for root in start:
        if root in external or root.kind != "node":
            continue
        per_example, constant = value_bytes(root)
        interval = (start[root], end[root])
        if per_example == 0:
            fixed.append((*interval, _round(constant), root))
        elif constant == 0:
            proportional.append((*interval, _round(per_example), root))
        else:
            own.append(root)
    fixed_offsets, fixed_top = _first_fit(fixed)
    proportional_offsets, proportional_top = _first_fit(proportional)
    offsets = {v: Offset(0, o) for v, o in fixed_offsets.items()}
    offsets.update({v: Offset(o, fixed_top) for v, o in proportional_offsets.items()})
    cursor = Offset(proportional_top, fixed_top)
    for root in own:
        offsets[root] = cursor
        per_example, constant = value_bytes(root)
        cursor = Offset(cursor.per_example + _round(per_example), cursor.fixed + _round(constant))
    for alias, root in aliases.items():
        if root in offsets:
            offsets[alias] = offsets[root]
    return ArenaPlan(offsets, aliases, cursor)
