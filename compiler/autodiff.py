"""Reverse mode, built symbolically: `grad(graph)` returns a graph that also computes gradients.

The forward graph's nodes are walked in reverse. Each node's adjoint (the gradient of the loss
with respect to its output, summed over all its uses) is handed to the op's own `vjp` rule -- the
very rule eager autograd runs -- with symbolic tensors, so the rule emits IR nodes instead of
computing. Elementwise derivatives therefore come from sympy, and no rule exists twice.

The result is an ordinary Graph: it prints, verifies, simplifies, differentiates again, lowers.
Its outputs are the forward outputs followed by one gradient per `wrt` value, named
`grad_<name>`. A scalar first output is seeded with 1; otherwise the graph takes the seed as an
extra input `grad_<output name>` (the vector in a vector-Jacobian product).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from compiler.ir import Graph, Value
from compiler.tracing import GraphBuilder, SymbolicTensor
from runtime.ops._op import VJPContext
from runtime.ops.elementwise import add


def _depends_on(graph: Graph, sources: set[Value]) -> set[Value]:
    """Values computed (differentiably) from any of `sources`."""
    reached = set(sources)
    for node in graph.nodes:
        if node.op.differentiable and any(v in reached for v in node.inputs):
            reached.add(node.output)
    return reached


def _resolve_wrt(graph: Graph, wrt: Sequence[str | Value] | None) -> list[Value]:
    if wrt is None:
        return [v for v in graph.inputs if v.kind == "param"]
    by_name = {v.name: v for v in graph.inputs}
    result = []
    for w in wrt:
        if isinstance(w, Value):
            result.append(w)
        elif w in by_name:
            result.append(by_name[w])
        else:
            raise KeyError(f"grad(wrt=...): {w!r} is not an input of the graph; inputs are "
                           f"{sorted(by_name)}")
    return result


def grad(graph: Graph, wrt: Sequence[str | Value] | None = None, *,
         output: int = 0, seed_input: bool = False) -> Graph:
    """The joint forward-and-backward graph of output `output` with respect to `wrt`
    (names of graph inputs; by default every parameter). With `seed_input`, the gradient of the
    output is always an input of the graph (also for a scalar output), as compiled modules need
    to receive it from the ops that follow them."""
    wrt_values = _resolve_wrt(graph, wrt)
    if not wrt_values:
        raise ValueError("grad(): nothing to differentiate with respect to (no parameters; "
                         "pass wrt=[input names])")
    for w in wrt_values:
        if not w.dtype.is_floating_point:
            raise TypeError(f"grad(): %{w.name} is {w.dtype}; only floating point values have "
                            "gradients")
    joint = graph.rebuild(graph.nodes, graph.outputs, name=f"grad_{graph.name}")
    builder = GraphBuilder(joint)
    target = graph.outputs[output]
    if target.shape == () and not seed_input:
        seed_value = joint.add_constant(np.ones((), dtype=target.dtype.numpy),
                                        name=f"grad_{target.name}")
    else:
        seed_value = joint.add_input(f"grad_{target.name}", target.shape, target.dtype,
                                     kind="input")
    depends = _depends_on(graph, set(wrt_values))
    adjoints: dict[Value, Any] = {target: SymbolicTensor.of(seed_value)}

    with builder.active():
        for node in reversed(graph.nodes):
            adjoint = adjoints.get(node.output)
            needs = [v in depends for v in node.inputs]
            if adjoint is None or not node.op.differentiable or not any(needs):
                continue
            _name_adjoint(joint, node.output, adjoint)
            ctx = VJPContext([SymbolicTensor.of(v) for v in node.inputs],
                             SymbolicTensor.of(node.output), node.attrs, needs,
                             [v.shape for v in node.inputs], [v.dtype for v in node.inputs])
            builder.scope = [f"d.{node.output.name}"]
            grads = node.op.vjp(ctx, adjoint)
            for value, g, need in zip(node.inputs, grads, needs):
                if need and g is not None:
                    adjoints[value] = g if value not in adjoints else add(adjoints[value], g)
        builder.scope = []
        outputs = list(graph.outputs)
        for w in wrt_values:
            g = adjoints.get(w)
            if g is None:
                zero = joint.add_constant(np.zeros(_concrete(w.shape), w.dtype.numpy),
                                          name=f"grad_{w.name}")
                outputs.append(zero)
                continue
            _name_adjoint(joint, w, g)
            outputs.append(g._value)
    joint.outputs = outputs
    joint.gradient_of = {w.name: out for w, out in zip(wrt_values, outputs[len(graph.outputs):])}
    return joint.verify()


def _name_adjoint(graph: Graph, value: Value, adjoint: SymbolicTensor) -> None:
    """Give a finished adjoint the name `grad_<value>` unless it already has such a name."""
    v = adjoint._value
    if v.kind == "node" and not v.name.startswith("grad_"):
        v.name = graph.unique_name(f"grad_{value.name}")


def _concrete(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if not all(isinstance(s, int) for s in shape):
        raise ValueError(f"grad(): an unused input of symbolic shape {shape} has no gradient")
    return shape
