"""The driver: a large graph is emitted as several functions that the entry calls in order (each
optimised on its own, so LLVM's time stays linear in the model's size); results are unchanged."""

import numpy as np
from compiler_testing import tensors
from llvmlite import ir

import runtime
from compiler.interpret import run
from compiler.lowering.codegen import NODES_PER_FUNCTION, lower_graph
from compiler.native_build import build_native
from compiler.passes import simplify
from compiler.tracing import trace
from runtime import nn


def _deep_mlp_graph(layers: int):
    runtime.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(layers) for m in (nn.Linear(6, 6), nn.Tanh())])
    return simplify(trace(model, tensors([np.zeros((2, 6), np.float32)])))


def test_a_large_graph_is_emitted_in_parts_that_the_entry_calls_in_order():
    graph = _deep_mlp_graph(NODES_PER_FUNCTION)
    assert len(graph.nodes) > NODES_PER_FUNCTION
    module = ir.Module(name="deep")
    lower_graph(graph, module, "deep")
    parts = [f for f in module.functions if f.name.startswith("deep.part")]
    assert len(parts) >= 2
    assert all(p.linkage == "internal" and "noinline" in p.attributes for p in parts)


def test_a_graph_in_parts_computes_what_the_interpreter_does():
    graph = _deep_mlp_graph(NODES_PER_FUNCTION)
    native = build_native(graph)
    for batch in (1, 5):
        rng = np.random.default_rng(batch)
        arguments = [rng.standard_normal((batch, 6)).astype(np.float32)]
        arguments += [rng.standard_normal(tuple(int(s) for s in value.shape)).astype(np.float32)
                      for value in graph.inputs[1:]]  # the parameters
        (got,) = native(*arguments)
        (expected,) = run(graph, arguments)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
