"""Lower a Graph to one native function: `void name(i64 *block)`.

The calling convention is one argument block of 64-bit words, which the runtime keeps and
rewrites in place (one ctypes call, no per-argument marshalling):

    block[0] = N (the batch size)      block[1] = arena pointer     block[2] = GEMM workspace
    block[3 + i] = pointer to external buffer i: the graph's inputs, then its outputs

Every external buffer is C-contiguous with the dtype and shape (N substituted) the graph gives it;
`runtime/native.py` checks that before every call. Intermediates live in the arena at offsets
planned by `memory.py`. Each node is lowered by the rule of its op's family (`rules.py` gathers
them from the family modules that mirror runtime/ops); every elementwise op, fused or not, goes
through the one sympy expression emitter.
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from compiler.errors import CompileError
from compiler.ir import Graph, Node, Value
from compiler.lowering.context import FunctionLowering, Rule
from compiler.lowering.llvm_types import I64
from compiler.lowering.memory import Offset
from compiler.lowering.rules import rule_for
from runtime.ops import OPS


@dataclass
class NativeSignature:
    """What the runtime needs to call a lowered function."""

    symbol: str
    inputs: list[Value]
    outputs: list[Value]
    arena_bytes: Offset
    workspace_bytes: int

    @property
    def external(self) -> list[Value]:
        return self.inputs + self.outputs


def lower_graph(graph: Graph, module: ir.Module, symbol: str, define_gemm: bool = False,
                profile_symbol: str | None = None, avx512: bool | None = None
                ) -> NativeSignature:
    """Add `symbol`, the native function of `graph`, to `module`; with `define_gemm` the GEMM
    it calls is emitted into the module too (a standalone object), else only declared; with
    `profile_symbol`, per-node cycle counters (see FunctionLowering.lower); `avx512` picks the
    GEMM's tiles (None: the host's; an export for another CPU passes that CPU's)."""
    graph = with_distinct_outputs(graph)
    lowering = FunctionLowering(module, graph, symbol, define_gemm, avx512)
    _emit_nodes(lowering, profile_symbol)
    return NativeSignature(symbol, list(graph.inputs), list(graph.outputs),
                           lowering.plan.bytes, lowering.max_workspace)


def with_distinct_outputs(graph: Graph) -> Graph:
    """`graph`, where every output has a buffer of its own to be written: an output that is an
    input, a constant, or an earlier output again (x + 0 simplified away; two parameters whose
    gradient is the same value) becomes a copy made by a clone node."""
    seen: set[Value] = set()
    nodes = list(graph.nodes)
    outputs = []
    for value in graph.outputs:
        if value in seen or value.kind != "node":
            copy = Value(graph.unique_name(f"{value.name}.copy"), value.shape, value.dtype)
            node = Node(OPS["clone"], [value], {}, copy)
            copy.producer = node
            nodes.append(node)
            value = copy
        seen.add(value)
        outputs.append(value)
    if outputs == list(graph.outputs):
        return graph
    return graph.rebuild(nodes, outputs)


def check_lowerable(graph: Graph) -> None:
    """Raise CompileError (naming the op and the model's source line) if any node of `graph`
    cannot be lowered: the lowering is run into a scratch module, with no machine code made."""
    lower_graph(graph, ir.Module(name="check"), "check")


NODES_PER_FUNCTION = 16  # a larger graph is emitted as several functions of this many nodes


def _emit_nodes(low: FunctionLowering, profile_symbol: str | None) -> None:
    """Emit every node of `low.graph` and return; with `profile_symbol`, also a global array of
    that name holding the cycles (llvm.readcyclecounter) spent in each node, summed over calls.

    A graph of more than NODES_PER_FUNCTION nodes to emit goes into internal, never-inlined
    functions of that many nodes each, which the entry function calls in order: LLVM's
    optimiser takes time that grows faster than linearly in a function's size (the train step
    of a 25-layer MLP, 204 nodes: 15 s as one function, 3-4 s in functions of 12-24 nodes), and
    a call per part costs nothing beside the loops it runs."""
    counters = _profile_counters(low, profile_symbol) if profile_symbol else None
    emitted = []  # (index, node, rule); every rule is found before any code is made
    for index, node in enumerate(low.graph.nodes):
        if low.plan.storage_of(node.output) is not node.output and node.output not in \
                low.external:
            continue  # an alias: no code, same memory
        rule = rule_for(node)
        if rule is None:
            raise CompileError(f"the compiler has no native lowering for op "
                               f"'{node.op_name}'", node.op_name, node.origin)
        emitted.append((index, node, rule))
    if len(emitted) <= NODES_PER_FUNCTION:
        _emit_part(low, emitted, counters)
        return
    entry, entry_builder = low.function, low.builder
    parts: list[ir.Function] = []
    for start in range(0, len(emitted), NODES_PER_FUNCTION):
        part = low.begin_function(f"{entry.name}.part{len(parts)}")
        part.linkage = "internal"
        part.attributes.add("noinline")
        _emit_part(low, emitted[start:start + NODES_PER_FUNCTION], counters)
        parts.append(part)
    low.function, low.builder = entry, entry_builder
    for part in parts:
        entry_builder.call(part, [entry.args[0]])
    entry_builder.ret_void()


def _emit_part(low: FunctionLowering, nodes: list[tuple[int, Node, Rule]],
               counters: ir.GlobalVariable | None) -> None:
    for index, node, rule in nodes:
        started = _cycles(low) if counters is not None else None
        rule(low, node)
        if counters is not None:
            slot = low.builder.gep(counters, [ir.Constant(I64, 0), ir.Constant(I64, index)])
            spent = low.builder.sub(_cycles(low), started)
            low.builder.store(low.builder.add(low.builder.load(slot, typ=I64), spent), slot)
    low.builder.ret_void()


def _profile_counters(low: FunctionLowering, symbol: str) -> ir.GlobalVariable:
    array = ir.ArrayType(I64, max(len(low.graph.nodes), 1))
    counters = ir.GlobalVariable(low.module, array, name=symbol)
    counters.initializer = ir.Constant(array, None)
    return counters


def _cycles(low: FunctionLowering) -> ir.Value:
    counter = low.module.globals.get("llvm.readcyclecounter") or ir.Function(
        low.module, ir.FunctionType(I64, []), name="llvm.readcyclecounter")
    return low.builder.call(counter, [])
