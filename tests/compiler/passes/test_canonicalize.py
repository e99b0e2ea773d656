"""Canonicalization rewrites, each alone: where it must fire, where it must not, and that the
rewritten graph computes exactly what the original does."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from passes_testing import assert_same_results, op_names, rewrite_alone, traced

import runtime
from compiler.ir import Graph
from compiler.passes import canonicalize as c
from runtime.ops import OPS

N = sympy.Symbol("N", integer=True, positive=True)


def test_fold_constants_computes_ops_of_constants_at_compile_time() -> None:
    a = runtime.tensor([1.0, 2.0], dtype=runtime.float64)
    b = runtime.tensor(3.0, dtype=runtime.float64)
    graph = traced(lambda x: x + (a * b).exp(), (4, 2))
    folded, log = rewrite_alone(graph, c.fold_constants)
    assert log.fired("fold_constants") == 2  # the product, then its exp
    assert op_names(folded) == ["add"]
    np.testing.assert_allclose(folded.constants[folded.nodes[0].inputs[1]], np.exp([3.0, 6.0]))
    assert_same_results(graph, folded, [(4, 2)])


def test_fold_constants_keeps_a_0d_result_0d() -> None:
    """A product of two 0-d constants folds to a 0-d constant, not a (1,) one (which then broke
    verification of cross-entropy's label_smoothing gradient: seed 1.0 times 0.9)."""
    a = runtime.tensor(0.5, dtype=runtime.float64)
    b = runtime.tensor(3.0, dtype=runtime.float64)
    graph = traced(lambda x: x.sum() * (a * b), (4, 2))
    folded, log = rewrite_alone(graph, c.fold_constants)
    assert log.fired("fold_constants") == 1
    factor = folded.nodes[-1].inputs[1]
    assert factor.shape == () and folded.constants[factor].shape == ()
    assert_same_results(graph, folded, [(4, 2)])


def test_fold_constants_leaves_ops_of_inputs_and_batch_sized_values() -> None:
    graph = traced(lambda x: (x * 2).sum() / x.shape[0], (4, 2))
    folded, log = rewrite_alone(graph, c.fold_constants)
    assert log.fired("fold_constants") == 0
    assert op_names(folded) == op_names(graph)


@pytest.mark.parametrize("fn", [lambda x: x * 1, lambda x: 1 * x, lambda x: x / 1,
                                lambda x: x + 0, lambda x: 0 + x, lambda x: x - 0],
                         ids=["x*1", "1*x", "x/1", "x+0", "0+x", "x-0"])
def test_drop_identity_arithmetic_fires_on_neutral_operands(fn) -> None:
    graph = traced(lambda x: fn(x).exp(), (3, 2))
    rewritten, log = rewrite_alone(graph, c.drop_identity_arithmetic)
    assert log.fired("drop_identity_arithmetic") == 1
    assert op_names(rewritten) == ["exp"]
    assert_same_results(graph, rewritten, [(3, 2)])


@pytest.mark.parametrize("fn", [lambda x: 1.5 * x, lambda x: 0 - x, lambda x: x * 2,
                                lambda x: x * runtime.ones(3, dtype=runtime.float64),
                                lambda x: x.long() * 1.0],
                         ids=["1.5*x", "0-x", "x*2", "x*ones(3)", "int*1.0"])
def test_drop_identity_arithmetic_keeps_ops_that_change_value_shape_or_dtype(fn) -> None:
    graph = traced(lambda x: fn(x), (4, 3))
    _, log = rewrite_alone(graph, c.drop_identity_arithmetic)
    assert log.fired("drop_identity_arithmetic") == 0


def _one_node_graph(op: str, attrs: dict, shape: tuple, out_shape: tuple) -> Graph:
    graph = Graph()
    x = graph.add_input("x", shape, runtime.float64)
    y = graph.add_node(OPS[op], [x], attrs, out_shape, runtime.float64, "y")
    z = graph.add_node(OPS["exp"], [y], {}, out_shape, runtime.float64, "z")
    graph.outputs = [z]
    return graph.verify()


@pytest.mark.parametrize(("op", "attrs"), [
    ("reshape", {"shape": (N, 3)}), ("expand", {"shape": (N, 3)}), ("sum_to", {"shape": (N, 3)}),
    ("to_dtype", {"dtype": runtime.float64}), ("clone", {}), ("permute", {"dims": (0, 1)})])
def test_drop_no_op_shape_change_removes_ops_that_keep_shape_and_dtype(op, attrs) -> None:
    graph = _one_node_graph(op, attrs, (N, 3), (N, 3))
    rewritten, log = rewrite_alone(graph, c.drop_no_op_shape_change)
    assert log.fired("drop_no_op_shape_change") == 1
    assert op_names(rewritten) == ["exp"]
    assert_same_results(graph, rewritten, [(5, 3)])


def test_drop_no_op_shape_change_keeps_real_changes() -> None:
    graph = traced(lambda x: x.reshape(-1, 2, 3).permute(0, 2, 1).float(), (4, 6))
    _, log = rewrite_alone(graph, c.drop_no_op_shape_change)
    assert log.fired("drop_no_op_shape_change") == 0


def test_merge_reshape_chain() -> None:
    graph = traced(lambda x: x.reshape(-1, 6).reshape(-1, 3, 2).exp(), (4, 2, 3))
    rewritten, log = rewrite_alone(graph, c.merge_reshape_chain)
    assert log.fired("merge_reshape_chain") == 1
    assert op_names(rewritten) == ["reshape", "exp"]
    assert rewritten.nodes[0].inputs == graph.inputs
    assert_same_results(graph, rewritten, [(4, 2, 3)])


def test_merge_reshape_chain_needs_two_reshapes() -> None:
    graph = traced(lambda x: x.permute(0, 2, 1).reshape(-1, 6), (4, 2, 3))
    _, log = rewrite_alone(graph, c.merge_reshape_chain)
    assert log.fired("merge_reshape_chain") == 0


def test_merge_permute_chain_composes_permutations() -> None:
    graph = traced(lambda x: x.permute(1, 2, 0).transpose(0, 1).exp(), (4, 2, 3))
    rewritten, log = rewrite_alone(graph, c.merge_permute_chain)
    assert log.fired("merge_permute_chain") == 1
    assert op_names(rewritten) == ["permute", "exp"]
    assert rewritten.nodes[0].attrs["dims"] == (2, 1, 0)
    assert_same_results(graph, rewritten, [(4, 2, 3)])


def test_merge_permute_chain_drops_a_double_transpose() -> None:
    graph = traced(lambda x: x.T.T.exp(), (4, 3))
    rewritten, log = rewrite_alone(graph, c.merge_permute_chain)
    assert log.fired("merge_permute_chain") == 1
    assert op_names(rewritten) == ["exp"]
    assert_same_results(graph, rewritten, [(4, 3)])


def test_merge_permute_chain_needs_two_permutes() -> None:
    graph = traced(lambda x: x.reshape(-1, 3, 2).permute(0, 2, 1), (4, 6))
    _, log = rewrite_alone(graph, c.merge_permute_chain)
    assert log.fired("merge_permute_chain") == 0


def test_cancel_double_negation() -> None:
    graph = traced(lambda x: x.neg().neg().exp(), (4, 3))
    rewritten, log = rewrite_alone(graph, c.cancel_double_negation)
    assert log.fired("cancel_double_negation") == 1
    assert op_names(rewritten) == ["exp"]
    assert_same_results(graph, rewritten, [(4, 3)])
    _, log = rewrite_alone(traced(lambda x: -(x - 1), (4, 3)), c.cancel_double_negation)
    assert log.fired("cancel_double_negation") == 0
