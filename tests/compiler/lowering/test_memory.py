"""Arena planning: values alive at the same time never share bytes at any batch size, memory is
reused once a value is dead, views alias their source, and sizes that are not a * N + b are a
CompileError naming the op."""

from __future__ import annotations

import numpy as np
import pytest
from compiler_testing import NeuralNetwork

import runtime
from compiler import CompileError, grad, simplify, trace
from compiler.interpret import run
from compiler.ir import Graph, Value
from compiler.lowering.memory import ALIGN, plan_arena, value_bytes
from compiler.native_build import build_native
from compiler.tracing import BATCH


class WithLoss(runtime.nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        runtime.manual_seed(0)
        self.model = NeuralNetwork(hidden=hidden).double()

    def forward(self, x, y):
        return runtime.nn.functional.cross_entropy(self.model(x), y)


def training_graph(hidden: int = 32) -> Graph:
    """The simplified joint graph of the tutorial MLP and its loss, in float64."""
    example = (runtime.randn(8, 1, 28, 28, dtype=runtime.float64), runtime.tensor([1] * 8))
    return simplify(grad(trace(WithLoss(hidden), example)))


def lifetimes(graph: Graph, storage) -> dict[Value, tuple[int, int]]:
    """(defining node, last reading node) of each storage root; outputs live to the end."""
    span: dict[Value, list[int]] = {}
    for index, node in enumerate(graph.nodes):
        span.setdefault(storage(node.output), [index, index])[1] = index
        for v in node.inputs:
            if storage(v) in span:
                span[storage(v)][1] = index
    for v in graph.outputs:
        if storage(v) in span:
            span[storage(v)][1] = len(graph.nodes)
    return {v: (a, b) for v, (a, b) in span.items()}


def test_values_alive_together_never_overlap_at_any_batch_size() -> None:
    graph = training_graph()
    external = set(graph.inputs) | set(graph.outputs)
    plan = plan_arena(graph, external)
    spans = lifetimes(graph, plan.storage_of)
    planned = [v for v in spans if v in plan.offsets and v not in external]
    assert len(planned) > 10
    for n in (1, 7, 64):
        extent = {v: (plan.offsets[v].at(n), plan.offsets[v].at(n) + sum(
            c * k for c, k in zip(value_bytes(v), (n, 1)))) for v in planned}
        for v in planned:
            assert extent[v][0] % ALIGN == 0
            assert extent[v][1] <= plan.bytes.at(n)
        for i, a in enumerate(planned):
            for b in planned[i + 1:]:
                live_together = not (spans[a][1] < spans[b][0] or spans[b][1] < spans[a][0])
                if live_together:
                    assert extent[a][1] <= extent[b][0] or extent[b][1] <= extent[a][0], \
                        f"%{a.name} and %{b.name} overlap at batch {n}"


def test_dead_values_give_their_bytes_to_later_ones() -> None:
    graph = training_graph(hidden=64)
    plan = plan_arena(graph, set(graph.inputs) | set(graph.outputs))
    total = sum(value_bytes(v)[0] for v in plan.offsets if plan.storage_of(v) is v)
    assert plan.bytes.per_example < total


def test_a_reshape_aliases_its_source() -> None:
    graph = trace(lambda x: (x * 2).reshape(-1, 6).exp() + 1, (runtime.randn(4, 2, 3),))
    plan = plan_arena(graph, set(graph.inputs) | set(graph.outputs))
    assert [n.op_name for n in graph.nodes] == ["mul", "reshape", "exp", "add"]
    product, view = graph.nodes[0].output, graph.nodes[1].output
    assert plan.storage_of(view) is product
    assert plan.offsets[view] == plan.offsets[product]


def test_value_bytes_are_per_example_and_fixed_parts() -> None:
    assert value_bytes(Value("v", (BATCH, 784), runtime.float32)) == (3136, 0)
    assert value_bytes(Value("v", (10, 3), runtime.float64)) == (0, 240)
    assert value_bytes(Value("v", (BATCH - 1, 3), runtime.float32)) == (12, -12)


def test_a_batch_by_batch_intermediate_is_a_compile_error_naming_the_op() -> None:
    def gram(x):
        return (x @ x.T).softmax(1) @ x  # N x N attention-like weights

    graph = trace(gram, (runtime.randn(4, 3),))
    line = gram.__code__.co_firstlineno + 1
    with pytest.raises(CompileError, match=rf"op 'matmul' makes %matmul of shape \[N, N\].*"
                                           rf"test_memory.py:{line}"):
        build_native(graph)


def test_the_planned_function_runs_at_every_batch_size() -> None:
    graph = training_graph()
    native = build_native(graph)
    rng = np.random.default_rng(1)
    state = [rng.standard_normal(v.shape) for v in graph.inputs[2:]]
    for n in (1, 7, 64):
        x = rng.standard_normal((n, 1, 28, 28))
        y = np.arange(n) % 10
        for got, expected in zip(native(x, y, *state), run(graph, [x, y, *state])):
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
