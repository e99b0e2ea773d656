"""Elementwise fusion: a chain becomes one `fused` node holding one sympy expression; producers
with other users, other shapes or other dtypes stay separate."""

from __future__ import annotations

import time

import numpy as np
import sympy
from passes_testing import assert_same_results, op_names, rewrite_alone, traced

import runtime
from compiler import grad
from compiler.interpret import run
from compiler.lowering.expressions import lowerable
from compiler.ops import FusedElementwise
from compiler.passes import fuse


def test_a_chain_of_elementwise_ops_becomes_one_fused_node() -> None:
    graph = traced(lambda x, y: ((x * 2 + y).sigmoid() * y.tanh()).exp() - 1, (4, 3), (4, 3))
    rewritten, log = rewrite_alone(graph, fuse.fuse_elementwise)
    assert log.fired("fuse_elementwise") >= 1
    assert op_names(rewritten) == ["fused"]
    (node,) = rewritten.nodes
    assert isinstance(node.op, FusedElementwise)
    assert [v.name for v in node.inputs] == ["x", "y"]
    assert node.op.expr.free_symbols == set(node.op.symbols)
    assert "fused(%x, %y) {expr=" in str(rewritten)
    assert_same_results(graph, rewritten, [(4, 3), (4, 3)], rtol=1e-12)


def test_the_fused_body_stays_finite_where_the_ops_were() -> None:
    graph = traced(lambda x: (x * 2 + 1).sigmoid() * 3, (4, 3))
    rewritten, _ = rewrite_alone(graph, fuse.fuse_elementwise)
    assert op_names(rewritten) == ["fused"]
    x = np.array([[-1e4, -50.0, 0.0], [50.0, 1e4, np.inf]])
    (before,) = run(graph, [x])
    (after,) = run(rewritten, [x])
    np.testing.assert_allclose(after, before, rtol=1e-14)


def test_a_producer_with_two_users_is_not_fused_into_either() -> None:
    def shared_exp(x):
        e = x.exp()
        return (e + 1) * e.sum()

    graph = traced(shared_exp, (4, 3))
    rewritten, _ = rewrite_alone(graph, fuse.fuse_elementwise)
    assert op_names(rewritten).count("exp") == 1  # computed once, read by both users
    assert not any(n.op.expr.has(sympy.exp) for n in rewritten.nodes if n.op_name == "fused")
    assert_same_results(graph, rewritten, [(4, 3)])


def test_a_broadcast_producer_is_not_fused_into_a_larger_consumer() -> None:
    graph = traced(lambda x, y: x.sum(1, keepdim=True).exp() * y, (4, 3), (4, 3))
    rewritten, _ = rewrite_alone(graph, fuse.fuse_elementwise)
    assert op_names(rewritten) == ["sum", "exp", "mul"]  # exp is (N, 1), mul is (N, 3)


def test_comparisons_and_dtype_changes_stay_separate() -> None:
    graph = traced(lambda x: (x.exp() > 1).to(runtime.float64) * x.float().double(), (4, 3))
    rewritten, _ = rewrite_alone(graph, fuse.fuse_elementwise)
    assert "gt" in op_names(rewritten)  # a bool result is not a fused body
    assert "to_dtype" in op_names(rewritten)
    assert_same_results(graph, rewritten, [(4, 3)])


def test_scalar_constants_become_numbers_inside_the_body() -> None:
    graph = traced(lambda x: x * 2.5, (4, 3))
    rewritten, log = rewrite_alone(graph, fuse.fuse_elementwise)
    assert log.fired("fuse_elementwise") == 1
    (node,) = rewritten.nodes
    assert [v.name for v in node.inputs] == ["x"]
    assert node.op.expr.has(2.5)
    assert_same_results(graph, rewritten, [(4, 3)])


def test_a_fused_body_is_the_ops_bodies_substituted_never_simplified() -> None:
    # sympy.simplify made relu(-1 - relu(x)), always 0, a Piecewise with no default branch
    graph = traced(lambda x: (-1 - x.relu()).relu(), (4, 3))
    rewritten, _ = rewrite_alone(graph, fuse.fuse_elementwise)
    (node,) = rewritten.nodes
    assert len(node.op.expr.atoms(sympy.Piecewise)) == 2  # both relus, as written
    assert lowerable(node.op.expr) is None
    assert_same_results(graph, rewritten, [(4, 3)])


def test_fusing_nested_tanh_takes_no_time() -> None:
    # h + tanh(h), three times, and its backward: sympy.simplify of these bodies took hours
    def residual_tanh(x):
        for _ in range(3):
            x = x + x.tanh()
        return (x * x).sum()

    graph = traced(residual_tanh, (4, 3))
    started = time.perf_counter()
    rewritten, _ = rewrite_alone(graph, fuse.fuse_elementwise)
    assert time.perf_counter() - started < 1.0
    assert_same_results(graph, rewritten, [(4, 3)])


def test_a_fused_bodys_derivative_is_sympys_diff_unsimplified() -> None:
    # what explain shows; simplifying these derivatives (the backward of h + tanh(h), three deep)
    # took 6 s, and with a linear layer in front more than a minute
    def residual_tanh(x):
        for _ in range(3):
            x = x + x.tanh()
        return x

    traced_graph = traced(residual_tanh, (4, 3))
    joint = grad(traced_graph, wrt=list(traced_graph.inputs), seed_input=True)
    graph = rewrite_alone(joint, fuse.fuse_elementwise)[0]
    fused = [n.op for n in graph.nodes if n.op_name == "fused"]
    started = time.perf_counter()
    for op in fused:
        for i, symbol in enumerate(op.symbols):
            assert op.derivative(i) == sympy.diff(op.expr, symbol)
    assert time.perf_counter() - started < 1.0


def test_a_long_chain_is_cut_into_bodies_of_bounded_size() -> None:
    def three_hundred_tanh(x):
        for _ in range(300):
            x = x.tanh()
        return x

    graph = traced(three_hundred_tanh, (4, 3))
    rewritten, _ = rewrite_alone(graph, fuse.fuse_elementwise)
    sizes = [sum(1 for _ in sympy.preorder_traversal(n.op.expr)) for n in rewritten.nodes]
    assert 1 < len(sizes) < 10 and max(sizes) <= fuse._MAX_BODY_SIZE, sizes
    assert_same_results(graph, rewritten, [(4, 3)])
