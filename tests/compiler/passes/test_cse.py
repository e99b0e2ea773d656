"""Common subexpression elimination and dead code elimination, each alone."""

from __future__ import annotations

from passes_testing import assert_same_results, op_names, rewrite_alone, traced

from compiler.passes import cse


def test_merge_equal_nodes_computes_a_repeated_expression_once() -> None:
    graph = traced(lambda x: x.exp().sum(1) * x.exp().sum(1), (4, 3))
    rewritten, log = rewrite_alone(graph, cse.merge_equal_nodes)
    assert log.fired("merge_equal_nodes") == 2  # the second exp, then the second sum
    assert op_names(rewritten) == ["exp", "sum", "mul"]
    assert rewritten.nodes[2].inputs[0] is rewritten.nodes[2].inputs[1]
    assert_same_results(graph, rewritten, [(4, 3)])


def test_merge_equal_nodes_keeps_different_operands_and_attributes() -> None:
    graph = traced(lambda x, y: x.exp().sum(1) * y.exp().sum(1) + x.sum(0).sum() + x.sum(1),
                   (4, 3), (4, 3))
    _, log = rewrite_alone(graph, cse.merge_equal_nodes)
    assert log.fired("merge_equal_nodes") == 0


def test_remove_dead_nodes_drops_what_no_output_needs() -> None:
    def fn(x):
        x.tanh().sum()  # computed and thrown away
        return x.exp()

    graph = traced(fn, (4, 3))
    assert op_names(graph) == ["tanh", "sum", "exp"]
    rewritten, _ = rewrite_alone(graph, cse.remove_dead_nodes)
    assert op_names(rewritten) == ["exp"]
    assert_same_results(graph, rewritten, [(4, 3)])
    unchanged, _ = rewrite_alone(traced(lambda x: x.exp(), (4, 3)), cse.remove_dead_nodes)
    assert op_names(unchanged) == ["exp"]
