"""Stabilizing rewrites: log(softmax) and log(sigmoid) become forms that stay finite where the
originals give -inf, and agree with them elsewhere."""

from __future__ import annotations

import numpy as np
from passes_testing import assert_same_results, op_names, rewrite_alone, traced

from compiler.interpret import run
from compiler.passes import stabilize as s

EXTREME = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 3.0], [5.0, -2.0, 1.0]])


def test_log_of_softmax_becomes_log_softmax_and_is_finite_for_extreme_logits() -> None:
    graph = traced(lambda x: x.softmax(1).log(), (3, 3))
    rewritten, log = rewrite_alone(graph, s.log_of_softmax)
    assert log.fired("log_of_softmax") == 1
    assert op_names(rewritten) == ["log_softmax"]
    assert rewritten.nodes[0].attrs == {"dim": 1}
    assert_same_results(graph, rewritten, [(3, 3)], rtol=1e-12)
    (before,) = run(graph, [EXTREME])
    (after,) = run(rewritten, [EXTREME])
    assert np.isinf(before).any()  # log(0) where the softmax underflowed
    assert np.isfinite(after).all()
    np.testing.assert_allclose(after[0], [0.0, -2e4, -1e4])


def test_log_of_sigmoid_becomes_minus_softplus_and_is_finite_for_extreme_logits() -> None:
    graph = traced(lambda x: x.sigmoid().log(), (3, 3))
    rewritten, log = rewrite_alone(graph, s.log_of_sigmoid)
    assert log.fired("log_of_sigmoid") == 1
    assert op_names(rewritten) == ["neg", "softplus", "neg"]
    assert_same_results(graph, rewritten, [(3, 3)], rtol=1e-12)
    (before,) = run(graph, [EXTREME])
    (after,) = run(rewritten, [EXTREME])
    assert np.isinf(before).any()
    assert np.isfinite(after).all()
    np.testing.assert_allclose(after[:2, :2], [[0.0, -1e4], [-1e4, -1e4]])


def test_stabilizing_rewrites_leave_other_logs_alone() -> None:
    graph = traced(lambda x: x.exp().log() + x.softmax(1).exp() + x.abs().log(), (3, 3))
    for rewrite in (s.log_of_softmax, s.log_of_sigmoid):
        rewritten, log = rewrite_alone(graph, rewrite)
        assert len(log.events) == 0
        assert op_names(rewritten) == op_names(graph)
