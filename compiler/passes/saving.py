"""Saving rewrites: change which forward values a joint (forward + reverse) graph's backward reads.

They run once, right after differentiation and before the other stages (`compiler.pipeline`), so
that fusion sees a forward whose intermediate values backward no longer needs. Each leaves the
graph computing the same values.
"""

from __future__ import annotations

from compiler.ir import Graph, Node, Value
from compiler.passes.driver import RewriteLog, graph_pass


@graph_pass("saving")
def relu_mask_from_output(graph: Graph, log: RewriteLog) -> Graph:
    """relu_vjp0(g, x) -> relu_vjp0(g, relu(x)) where the graph computes relu(x).

    ReLU's derivative needs only where x is positive, which relu(x) tells as well. The output is
    usually kept anyway (the next layer's weight gradient reads it), so backward no longer reads
    the pre-activation x, and the bias add and the ReLU before it fuse into one pass.
    """
    relu_of: dict[Value, Value] = {}
    for node in graph.nodes:
        if node.op_name == "relu":
            relu_of.setdefault(node.inputs[0], node.output)
    nodes = []
    changed = False
    for node in graph.nodes:
        if node.op_name == "relu_vjp0" and node.inputs[1] in relu_of:
            before = node.text()
            node = Node(node.op, [node.inputs[0], relu_of[node.inputs[1]]], node.attrs,
                        node.output, node.origin)
            log.record("saving", "relu_mask_from_output", before, node.text())
            changed = True
        nodes.append(node)
    return graph.rebuild(nodes, graph.outputs) if changed else graph
