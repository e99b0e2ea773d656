"""The rewrite driver: stages registered by name, run to a fixed point, logged; simplify() runs
them in order and returns a verified graph that computes what the original does."""

from __future__ import annotations

import numpy as np
from compiler_testing import NeuralNetwork, graph_arguments
from passes_testing import assert_same_results, op_names, traced

import runtime
from compiler import grad, simplify, trace
from compiler.interpret import run
from compiler.passes import STAGES, RewriteLog, run_stage
from compiler.passes.driver import DEFAULT_ORDER


def test_every_stage_registers_its_rewrites_by_name() -> None:
    simplify(traced(lambda x: x * 1, (2, 3)))  # loads every stage's module
    names = {stage: [fn.__name__ for fn in fns] for stage, fns in STAGES.items()}
    assert "fold_constants" in names["canonicalize"]
    assert names["stabilize"] == ["log_of_softmax", "log_of_sigmoid"]
    assert names["cse"] == ["merge_equal_nodes", "remove_dead_nodes"]
    assert names["fuse"] == ["fuse_elementwise"]
    assert "fold_transpose_into_gemm" in names["layout"]
    assert DEFAULT_ORDER[:3] == ("canonicalize", "stabilize", "cse")


def test_a_stage_runs_until_nothing_fires() -> None:
    # merging the reshapes makes a reshape to x's own shape, which the next round drops
    graph = traced(lambda x: x.reshape(-1, 6).reshape(-1, 2, 3).exp(), (4, 2, 3))
    first_round = RewriteLog()
    once = run_stage(graph, "canonicalize", first_round, max_rounds=1)
    assert [e.rewrite for e in first_round.events] == ["merge_reshape_chain"]
    producers = {n.output: n for n in once.nodes}
    reshape = producers[producers[once.outputs[0]].inputs[0]]
    assert reshape.inputs == graph.inputs and reshape.output.shape == graph.inputs[0].shape
    log = RewriteLog()
    fixed = run_stage(graph, "canonicalize", log)
    assert op_names(fixed) == ["exp"]
    assert [e.rewrite for e in log.events] == ["merge_reshape_chain", "drop_no_op_shape_change"]
    assert_same_results(graph, fixed, [(4, 2, 3)])


def test_the_log_says_which_rewrite_fired_on_what() -> None:
    result = simplify(traced(lambda x: (x * 1).softmax(1).log(), (2, 3)))
    text = str(result.rewrite_log)
    assert "[canonicalize] drop_identity_arithmetic: %mul: f64[N, 3] = mul(%x, %const)" in text
    assert "[stabilize] log_of_softmax: %log: f64[N, 3] = log(%softmax)" in text
    assert "= log_softmax(%x) {dim=1}" in text
    assert op_names(result) == ["log_softmax"]


def test_simplify_runs_only_the_stages_asked_for() -> None:
    graph = traced(lambda x: (x * 1).exp().exp(), (2, 3))
    only_fuse = simplify(graph, stages=("fuse",))
    assert {e.stage for e in only_fuse.rewrite_log.events} == {"fuse"}
    assert op_names(only_fuse) == ["fused"]
    assert op_names(simplify(graph, stages=())) == op_names(graph)


def test_simplified_training_graph_of_the_mlp_computes_the_same_gradients() -> None:
    runtime.manual_seed(0)
    model = NeuralNetwork(hidden=16).double()
    loss_fn = runtime.nn.CrossEntropyLoss()

    class WithLoss(runtime.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x, y):
            return loss_fn(self.model(x), y)

    with_loss = WithLoss()
    x = runtime.randn(8, 1, 28, 28, dtype=runtime.float64)
    y = runtime.randint(0, 10, (8,))
    joint = grad(trace(with_loss, (x, y)))
    simplified = simplify(joint)
    ops = op_names(simplified)
    assert "permute" not in ops  # every transpose went into a GEMM's flags
    assert "gemm" in ops and "fused" in ops
    assert len(simplified.nodes) < len(joint.nodes)
    arguments = graph_arguments(with_loss, [x.numpy(), y.numpy()])
    for got, expected in zip(run(simplified, arguments), run(joint, arguments)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
