"""Layout rewrites, each alone: the rewrite fires where it must, and the graph computes the same."""

from __future__ import annotations

import numpy as np

import runtime as torch
from compiler.interpret import run
from compiler.passes import RewriteLog, run_stage
from compiler.tracing import trace


class Params:
    """A tiny 'model' whose parameters are named, so they become graph inputs."""

    def __init__(self, **tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def named_parameters(self):
        return list(self.tensors.items())


def _layout(fn, params: Params, inputs):
    class Model(Params):
        def __call__(self, *xs):
            return fn(*xs, **self.tensors)

    graph = trace(Model(**params.tensors), inputs)
    log = RewriteLog()
    rewritten = run_stage(run_stage(graph, "fuse", log), "layout", log)
    arguments = list(inputs) + list(params.tensors.values())
    for expected, actual in zip(run(graph, arguments), run(rewritten, arguments)):
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)
    return rewritten, log


def test_sgd_update_of_a_weight_becomes_one_accumulating_gemm():
    g = torch.randn(6, 4, dtype=torch.float64)
    x = torch.randn(6, 5, dtype=torch.float64)
    params = Params(w=torch.randn(4, 5, dtype=torch.float64),
                    lr=torch.tensor(0.1, dtype=torch.float64))

    def update(g, x, w, lr):
        return w - lr * (g.T @ x)

    rewritten, log = _layout(update, params, (g, x))
    assert log.fired("fold_update_into_gemm") == 1
    assert [n.op_name for n in rewritten.nodes][-1] == "gemm_accumulate"
    assert "matmul" not in [n.op_name for n in rewritten.nodes]


def test_update_is_not_folded_when_the_gradient_is_also_used_elsewhere():
    g = torch.randn(6, 4, dtype=torch.float64)
    x = torch.randn(6, 5, dtype=torch.float64)
    params = Params(w=torch.randn(4, 5, dtype=torch.float64))

    def update_and_gradient(g, x, w):
        gradient = g.T @ x
        return w - 0.1 * gradient, gradient

    _, log = _layout(update_and_gradient, params, (g, x))
    assert log.fired("fold_update_into_gemm") == 0


def test_transpose_of_a_product_is_the_product_of_swapped_transposes():
    a = torch.randn(7, 3, dtype=torch.float64)
    b = torch.randn(7, 4, dtype=torch.float64)

    def weight_gradient(a, b):
        return (a.T @ b).T

    rewritten, log = _layout(weight_gradient, Params(), (a, b))
    assert log.fired("transpose_of_gemm") == 1
    assert "permute" not in [n.op_name for n in rewritten.nodes]
