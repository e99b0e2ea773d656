"""Partition a joint forward-and-backward graph into a forward function and a backward function.

The forward function returns the model's outputs plus the values backward needs ("saved");
the backward function takes the output's gradient, the saved values and the graph inputs it
reads, and returns the gradients. What is saved versus recomputed is decided here and reported
as bytes per example: `recompute_views`, a reshape of something backward already has costs
nothing to redo, so it is not saved. Which forward values backward reads at all is decided
before, by the rewrites of the `saving` stage (`compiler/passes/saving.py`), which the pipeline
runs right after differentiation.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.ir import Graph, Node, Value
from compiler.lowering.memory import value_bytes
from compiler.passes.cse import eliminate_dead_code


@dataclass
class Partition:
    forward: Graph  # inputs: the joint graph's inputs but the seed; outputs: model outputs, saved
    backward: Graph  # inputs: seed, the forward inputs it reads, saved values; outputs: grads
    saved: list[Value]  # may include model outputs, which the forward returns only once
    forward_inputs_used: list[Value]  # the joint graph's inputs that backward reads directly
    n_outputs: int

    def saved_bytes_per_example(self) -> int:
        return sum(value_bytes(v)[0] for v in self.saved)

    def saved_bytes_fixed(self) -> int:
        return sum(value_bytes(v)[1] for v in self.saved)


def _depending_on(graph: Graph, source: Value) -> set[Value]:
    reached = {source}
    for node in graph.nodes:
        if any(v in reached for v in node.inputs):
            reached.add(node.output)
    return reached


def partition(joint: Graph, n_outputs: int, seed: Value) -> Partition:
    """Split `joint` (from grad(..., seed_input=True)) at the seed."""
    depends = _depending_on(joint, seed)
    forward_outputs = joint.outputs[:n_outputs]
    gradients = joint.outputs[n_outputs:]

    # forward: what the outputs need, none of it depending on the seed
    forward_graph = eliminate_dead_code(joint.rebuild(
        [n for n in joint.nodes if n.output not in depends], forward_outputs))
    in_forward = {n.output for n in forward_graph.nodes}
    producer = {n.output: n for n in joint.nodes}

    # backward: everything else that the gradients need
    backward_nodes = [n for n in joint.nodes if n.output not in in_forward]
    backward_graph = eliminate_dead_code(joint.rebuild(backward_nodes, gradients))
    needed = {v for n in backward_graph.nodes for v in n.inputs} | set(gradients)
    defined_in_backward = {n.output for n in backward_graph.nodes}
    saved = [v for v in _ordered(forward_graph, needed) if v not in defined_in_backward]

    # recompute_views: reshape chains over values backward has anyway are redone, not saved
    changed = True
    extra: list[Node] = []
    while changed:
        changed = False
        for v in list(saved):
            node = producer.get(v)
            if node is not None and node.op.aliases_input:
                source = node.inputs[0]
                if source.kind in ("input", "param", "buffer") or source in saved:
                    saved.remove(v)
                    extra.append(node)
                    if source.kind == "node" and source not in saved:
                        saved.append(source)
                    changed = True
    backward_graph = backward_graph.rebuild(_topological(extra) + backward_graph.nodes,
                                            gradients)
    forward_inputs_used = [v for v in joint.inputs if v is not seed and any(
        v in n.inputs for n in backward_graph.nodes)]
    backward_graph.inputs = [seed] + forward_inputs_used + saved
    backward_graph.name = f"backward_{joint.name}"
    backward_graph.constants = {v: a for v, a in joint.constants.items()
                                if any(v in n.inputs for n in backward_graph.nodes)}

    forward_graph.inputs = [v for v in joint.inputs if v is not seed]
    forward_graph.outputs = list(forward_outputs) + [v for v in saved if v not in forward_outputs]
    forward_graph.name = f"forward_{joint.name}"
    return Partition(forward_graph.verify(), backward_graph.verify(), saved, forward_inputs_used,
                     n_outputs)


def _ordered(graph: Graph, wanted: set[Value]) -> list[Value]:
    return [n.output for n in graph.nodes if n.output in wanted]


def _topological(nodes: list[Node]) -> list[Node]:
    defined = {n.output for n in nodes}
    ordered: list[Node] = []
    placed: set[Value] = set()
    pending = list(nodes)
    while pending:
        for node in pending:
            if all(v not in defined or v in placed for v in node.inputs):
                ordered.append(node)
                placed.add(node.output)
                pending.remove(node)
                break
        else:
            raise ValueError("cycle among recomputed nodes")
    return ordered
