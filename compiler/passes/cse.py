"""Common subexpression elimination and dead code elimination (graph-wide passes)."""

from __future__ import annotations

from typing import Any

from compiler.ir import Graph, Node, Value
from compiler.passes.driver import RewriteLog, eliminate_dead_code, graph_pass


def _op_key(op: Any) -> Any:
    expr = getattr(op, "fused_expr", None)
    return ("fused", str(expr)) if expr is not None else id(op)


def _attr_key(attrs: dict[str, Any]) -> str:
    return repr(sorted((k, repr(v)) for k, v in attrs.items()))


@graph_pass("cse")
def merge_equal_nodes(graph: Graph, log: RewriteLog) -> Graph:
    """Two nodes applying the same op with the same attributes to the same inputs become one."""
    seen: dict[tuple, Value] = {}
    substitution: dict[Value, Value] = {}
    nodes: list[Node] = []
    for node in graph.nodes:
        inputs = [substitution.get(v, v) for v in node.inputs]
        if inputs != node.inputs:
            node = Node(node.op, inputs, node.attrs, node.output, node.origin)
        key = (_op_key(node.op), tuple(v.id for v in inputs), _attr_key(node.attrs))
        existing = seen.get(key)
        if existing is not None and existing.dtype == node.output.dtype:
            substitution[node.output] = existing
            log.record("cse", "merge_equal_nodes", node.text(), f"%{existing.name}")
            continue
        seen[key] = node.output
        nodes.append(node)
    outputs = [substitution.get(v, v) for v in graph.outputs]
    return graph.rebuild(nodes, outputs)


@graph_pass("cse")
def remove_dead_nodes(graph: Graph, log: RewriteLog) -> Graph:
    """Nodes whose values no output needs are dropped."""
    return eliminate_dead_code(graph)
