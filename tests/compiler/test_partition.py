"""Partitioning the joint graph: forward returns the outputs and the saved values, backward turns
the output's gradient and those values into the gradients; what is saved is the named decision
(ReLU's mask from its output, views recomputed), and both halves together compute the joint
graph."""

from __future__ import annotations

import numpy as np
import pytest
from compiler_testing import NeuralNetwork, graph_arguments

import runtime
from compiler import grad, pipeline, trace
from compiler.interpret import run
from compiler.native_build import build_native
from compiler.partition import Partition
from compiler.passes import RewriteLog, run_stage


def mlp_partition(dtype=runtime.float32) -> tuple[NeuralNetwork, object, Partition]:
    runtime.manual_seed(0)
    model = NeuralNetwork(hidden=16)
    if dtype == runtime.float64:
        model = model.double()
    graph = trace(model, (runtime.randn(4, 1, 28, 28, dtype=dtype),))
    wrt = [v for v in graph.inputs if v.kind == "param"]
    record = pipeline.PipelineRecord()
    parts = pipeline.training_graphs(graph, wrt, "mlp", record=record).partition
    return model, record.graph("grad"), parts  # the joint graph as compiler.grad built it


def test_the_mlp_saves_only_its_relu_outputs() -> None:
    _, _, parts = mlp_partition()
    assert [v.name for v in parts.saved] == ["linear_relu_stack.1.out", "linear_relu_stack.3.out"]
    # the pre-activations are not saved (the saving stage's relu_mask_from_output) and the
    # flattened input is recomputed from x (recompute_views)
    assert [v.name for v in parts.forward_inputs_used] == [
        "x", "linear_relu_stack.2.weight", "linear_relu_stack.4.weight"]
    assert parts.backward.nodes[0].op_name == "reshape"
    assert parts.saved_bytes_per_example() == 2 * 16 * 4
    assert parts.saved_bytes_fixed() == 0


def test_the_halves_have_the_calling_convention_the_runtime_expects() -> None:
    _, joint, parts = mlp_partition()
    assert parts.forward.inputs == joint.inputs[:-1]  # everything but the seed
    assert parts.forward.outputs == [joint.outputs[0], *parts.saved]
    assert parts.backward.inputs == [joint.inputs[-1], *parts.forward_inputs_used, *parts.saved]
    assert len(parts.backward.outputs) == 6
    assert not any(n.op_name == "relu" for n in parts.backward.nodes)


@pytest.mark.parametrize("native", [False, True], ids=["interpreted", "native"])
def test_forward_then_backward_computes_the_joint_graph(native: bool) -> None:
    model, joint, parts = mlp_partition(runtime.float64)
    forward = build_native(parts.forward) if native else (lambda *a: run(parts.forward, a))
    backward = build_native(parts.backward) if native else (lambda *a: run(parts.backward, a))
    rng = np.random.default_rng(0)
    for n in (1, 6):
        x = rng.standard_normal((n, 1, 28, 28))
        seed = rng.standard_normal((n, 10))
        arguments = graph_arguments(model, [x])
        expected = run(joint, [*arguments, seed])
        out, *saved = forward(*arguments)
        by_name = {v.name: a for v, a in zip(parts.forward.inputs, arguments)}
        used = [by_name[v.name] for v in parts.forward_inputs_used]
        grads = backward(seed, *used, *saved)
        np.testing.assert_allclose(out, expected[0], rtol=1e-12, atol=1e-12)
        for got, want in zip(grads, expected[1:]):
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)


def test_relu_mask_from_output_rewrites_the_vjp_to_read_the_relu_output() -> None:
    graph = trace(lambda x: (x * 2).relu().exp(), (runtime.randn(3, 4),))
    joint = grad(graph, wrt=["x"], seed_input=True)
    before = next(n for n in joint.nodes if n.op_name == "relu_vjp0")
    assert before.inputs[1].name == "mul"  # the pre-activation
    log = RewriteLog()
    rewritten = run_stage(joint, "saving", log)
    after = next(n for n in rewritten.nodes if n.op_name == "relu_vjp0")
    assert after.inputs[1].name == "relu"
    assert [(e.stage, e.rewrite) for e in log.events] == [("saving", "relu_mask_from_output")]
    assert "relu_vjp0(%grad_relu, %relu)" in log.events[0].after
    x = np.array([[-1.0, 0.0, 0.5, 2.0]] * 3, np.float32)
    seed = np.ones((3, 4), np.float32)
    for got, want in zip(run(rewritten.verify(), [x, seed]), run(joint, [x, seed])):
        np.testing.assert_array_equal(got, want)
