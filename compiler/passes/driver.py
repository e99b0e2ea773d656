"""The rewrite driver: registration of rewrites by stage, and running a stage to a fixed point.

A rewrite is `fn(node, ctx) -> Value | None`: given a node (whose inputs are already rewritten)
it returns the value that replaces the node's output -- an existing value, or a new node made with
`ctx.emit` -- or None to leave it. Graph-wide passes (CSE, DCE) are registered the same way with
`@graph_pass`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from compiler.ir import Graph, Node, Value

Rewrite = Callable[[Node, "RewriteContext"], "Value | None"]
GraphPass = Callable[[Graph, "RewriteLog"], Graph]

STAGES: dict[str, list[Rewrite | GraphPass]] = {
    "canonicalize": [], "stabilize": [], "cse": [], "fuse": [], "layout": [], "saving": []}
DEFAULT_ORDER = ("canonicalize", "stabilize", "cse", "fuse", "layout", "cse")


def rewrite(stage: str) -> Callable[[Rewrite], Rewrite]:
    """Register a node rewrite in `stage` (its name is the function's name)."""

    def register(fn: Rewrite) -> Rewrite:
        STAGES[stage].append(fn)
        return fn

    return register


def graph_pass(stage: str) -> Callable[[GraphPass], GraphPass]:
    def register(fn: GraphPass) -> GraphPass:
        fn.is_graph_pass = True  # type: ignore[attr-defined]
        STAGES[stage].append(fn)
        return fn

    return register


@dataclass
class RewriteEvent:
    stage: str
    rewrite: str
    before: str
    after: str


@dataclass
class RewriteLog:
    """What fired, in order: (stage, rewrite name, node before, what replaced it)."""

    events: list[RewriteEvent] = field(default_factory=list)

    def record(self, stage: str, name: str, before: str, after: str) -> None:
        self.events.append(RewriteEvent(stage, name, before, after))

    def fired(self, name: str) -> int:
        return sum(1 for e in self.events if e.rewrite == name)

    def __str__(self) -> str:
        return "\n".join(f"[{e.stage}] {e.rewrite}: {e.before}\n    -> {e.after}"
                         for e in self.events)


class RewriteContext:
    """What a rewrite may use: the graph being built, producers and use counts, `emit`."""

    def __init__(self, graph: Graph, uses: dict[Value, int]) -> None:
        self.graph = graph
        self.uses = uses
        self.producers: dict[Value, Node] = {}

    def producer(self, value: Value) -> Node | None:
        return self.producers.get(value)

    def constant(self, value: Value) -> Any:
        """The numpy array of a constant value, else None."""
        return self.graph.constants.get(value)

    def emit(self, op: Any, inputs: list[Value], attrs: dict[str, Any] | None = None,
             name: str | None = None, origin: str = "") -> Value:
        """Append a new node (before the node being rewritten) and return its output."""
        attrs = dict(attrs or {})
        shape, dtype = op.infer(inputs, **attrs)
        output = Value(self.graph.unique_name(name or op.name), tuple(shape), dtype)
        self.keep(Node(op, list(inputs), attrs, output, origin))
        return output

    def add_constant(self, array: Any, name: str = "const") -> Value:
        return self.graph.add_constant(array, name=name)

    def keep(self, node: Node) -> None:
        self.graph.nodes.append(node)
        self.producers[node.output] = node
        node.output.producer = node


def _value_text(ctx: RewriteContext, value: Value) -> str:
    node = ctx.producers.get(value)
    return node.text() if node is not None else f"%{value.name}"


def eliminate_dead_code(graph: Graph) -> Graph:
    """The graph without the nodes whose values no output needs (the same graph if none)."""
    live = set(graph.outputs)
    kept: list[Node] = []
    for node in reversed(graph.nodes):
        if node.output in live:
            kept.append(node)
            live.update(node.inputs)
    if len(kept) == len(graph.nodes):
        return graph
    return graph.rebuild(kept[::-1], graph.outputs)


def run_rewrites(graph: Graph, stage: str, rewrites: list[Rewrite], log: RewriteLog) -> Graph:
    """One pass over the nodes in order, applying the first rewrite that fires to each.
    Dead nodes are dropped first, so use counts (which fusion and folding rely on) are true."""
    graph = eliminate_dead_code(graph)
    uses: dict[Value, int] = {}
    for node in graph.nodes:
        for v in node.inputs:
            uses[v] = uses.get(v, 0) + 1
    for v in graph.outputs:
        uses[v] = uses.get(v, 0) + 1
    work = graph.rebuild([], graph.outputs)
    work.constants = dict(graph.constants)
    ctx = RewriteContext(work, uses)
    substitution: dict[Value, Value] = {}
    for node in graph.nodes:
        inputs = [substitution.get(v, v) for v in node.inputs]
        if inputs != node.inputs:
            node = Node(node.op, inputs, node.attrs, node.output, node.origin)
        for fn in rewrites:
            emitted_before = len(work.nodes)
            replacement = fn(node, ctx)
            if replacement is not None:
                if any(n.output is replacement for n in work.nodes[emitted_before:]):
                    replacement.name = node.output.name  # a new node takes the old one's name
                log.record(stage, fn.__name__, node.text(), _value_text(ctx, replacement))
                substitution[node.output] = replacement
                uses[replacement] = uses.get(replacement, 0) + uses.get(node.output, 0)
                break
        else:
            ctx.keep(node)
    work.outputs = [substitution.get(v, v) for v in graph.outputs]
    return work


def is_graph_pass(entry: Rewrite | GraphPass) -> TypeGuard[GraphPass]:
    return bool(getattr(entry, "is_graph_pass", False))


def is_rewrite(entry: Rewrite | GraphPass) -> TypeGuard[Rewrite]:
    return not is_graph_pass(entry)


def run_stage(graph: Graph, stage: str, log: RewriteLog | None = None,
              max_rounds: int = 8) -> Graph:
    """Run one stage's rewrites and passes until nothing fires (at most max_rounds times)."""
    log = log if log is not None else RewriteLog()
    for _ in range(max_rounds):
        before = len(log.events)
        for entry in STAGES[stage]:
            if is_graph_pass(entry):
                graph = entry(graph, log)
        rewrites = [e for e in STAGES[stage] if is_rewrite(e)]
        if rewrites:
            graph = run_rewrites(graph, stage, rewrites, log)
        if len(log.events) == before:
            break
    return graph


def simplify(graph: Graph, stages: tuple[str, ...] = DEFAULT_ORDER,
             log: RewriteLog | None = None) -> Graph:
    """The graph after the given stages; `result.rewrite_log` lists every rewrite that fired."""
    log = log if log is not None else RewriteLog()
    for stage in stages:
        graph = run_stage(graph, stage, log)
    graph.rewrite_log = log
    return graph.verify()
