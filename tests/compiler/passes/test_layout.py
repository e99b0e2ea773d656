"""Layout rewrites: transposes folded into GEMM flags, a product's transpose written directly, and
a weight update folded into an accumulating GEMM."""

from __future__ import annotations

import pytest
from passes_testing import assert_same_results, op_names, rewrite_alone, traced

import runtime
from compiler import grad
from compiler.passes import layout, simplify


class Weights:
    """Weights the traced functions capture (every traced input has the batch as dim 0)."""

    w = runtime.randn(5, 3, dtype=runtime.float64)
    v = runtime.randn(3, 2, dtype=runtime.float64)


def test_fold_transpose_into_gemm_reads_the_weight_transposed() -> None:
    graph = traced(lambda x: x @ Weights.w.T, (4, 3))  # nn.Linear's x @ w.T
    rewritten, log = rewrite_alone(graph, layout.fold_transpose_into_gemm)
    assert log.fired("fold_transpose_into_gemm") == 1
    assert op_names(rewritten) == ["gemm"]
    assert rewritten.nodes[0].attrs == {"transpose_a": False, "transpose_b": True}
    assert rewritten.nodes[0].inputs[1] is graph.nodes[0].inputs[0]  # w itself
    assert_same_results(graph, rewritten, [(4, 3)])


def test_fold_transpose_into_gemm_on_the_left() -> None:
    graph = traced(lambda x, y: x.T @ y, (4, 3), (4, 2))  # a weight gradient
    rewritten, log = rewrite_alone(graph, layout.fold_transpose_into_gemm)
    assert log.fired("fold_transpose_into_gemm") == 1
    assert rewritten.nodes[0].attrs == {"transpose_a": True, "transpose_b": False}
    assert_same_results(graph, rewritten, [(4, 3), (4, 2)])


def test_fold_transpose_into_gemm_leaves_plain_and_batched_products() -> None:
    for graph in (traced(lambda x: x @ Weights.v, (4, 3)),
                  traced(lambda x, y: x @ y.transpose(1, 2), (4, 2, 3), (4, 5, 3))):
        _, log = rewrite_alone(graph, layout.fold_transpose_into_gemm)
        assert log.fired("fold_transpose_into_gemm") == 0


def test_transpose_of_gemm_swaps_the_operands() -> None:
    graph = traced(lambda x, y: (x.T @ y).T.exp(), (4, 3), (4, 2))
    rewritten, log = rewrite_alone(graph, layout.transpose_of_gemm)
    assert log.fired("transpose_of_gemm") == 1
    assert op_names(rewritten) == ["permute", "gemm", "exp"]
    gemm = rewritten.nodes[1]
    assert [v.name for v in gemm.inputs] == ["y", "permute"]
    assert gemm.attrs == {"transpose_a": True, "transpose_b": True}
    assert_same_results(graph, rewritten, [(4, 3), (4, 2)])


def test_transpose_of_gemm_keeps_a_product_that_is_also_used_untransposed() -> None:
    graph = traced(lambda x, y: (lambda p: p.T.sum() + p.sum())(x.T @ y), (4, 3), (4, 2))
    _, log = rewrite_alone(graph, layout.transpose_of_gemm)
    assert log.fired("transpose_of_gemm") == 0


def test_fold_update_into_gemm_adds_the_scaled_product_onto_the_weight() -> None:
    graph = traced(lambda x, y: Weights.w.T - 0.1 * (x.T @ y), (4, 3), (4, 5))
    graph = rewrite_alone(graph, layout.fold_transpose_into_gemm)[0]
    fused = simplify(graph, stages=("fuse",))
    rewritten, log = rewrite_alone(fused, layout.fold_update_into_gemm)
    assert log.fired("fold_update_into_gemm") == 1
    assert op_names(rewritten)[-1] == "gemm_accumulate"
    assert_same_results(graph, rewritten, [(4, 3), (4, 5)], rtol=1e-12)


def test_fold_update_into_gemm_needs_a_scalar_scale() -> None:
    graph = traced(lambda x, y, s: (x.T @ y) * (x.T @ s)[:, :1] + Weights.w.T, (4, 3), (4, 5),
                   (4, 6))
    fused = rewrite_alone(graph, layout.fold_transpose_into_gemm)[0]
    _, log = rewrite_alone(fused, layout.fold_update_into_gemm)
    assert log.fired("fold_update_into_gemm") == 0


def test_fold_update_into_gemm_reads_the_body_before_asking_sympy(monkeypatch) -> None:
    """A product inside tanh, or scaling a body with no lone weight beside it, is not an update:
    the rewrite sees that from the expression tree, with no sympy.diff or sympy.expand, whose
    time grows exponentially in a chain of elementwise ops."""
    graph = traced(lambda x, y: (x.T @ y).tanh() * 0.9 + 0.01 + Weights.w.T, (4, 3), (4, 5))
    scaled = traced(lambda x, y: (x.T @ y) * (Weights.w.T.tanh() * 0.9).tanh(), (4, 3), (4, 5))
    for candidate in (graph, scaled):
        fused = simplify(rewrite_alone(candidate, layout.fold_transpose_into_gemm)[0],
                         stages=("fuse",))
        assert any(n.op_name == "fused" for n in fused.nodes)

        def forbidden(*args, **kwargs):
            raise AssertionError("sympy called on a body that is not linear in the product")

        with monkeypatch.context() as patch:
            patch.setattr(layout.sympy, "diff", forbidden)
            patch.setattr(layout.sympy, "expand", forbidden)
            _, log = rewrite_alone(fused, layout.fold_update_into_gemm)
        assert log.fired("fold_update_into_gemm") == 0


def test_a_chain_of_fifteen_elementwise_ops_after_a_matmul_simplifies() -> None:
    """x @ w.T then 15 x (tanh(x) * 0.9 + 0.01), differentiated and simplified: seconds, where
    expanding every backward body that multiplies a product took minutes."""

    def chain(x):
        x = x @ Weights.w.T
        for _ in range(15):
            x = x.tanh() * 0.9 + 0.01
        return x

    graph = traced(chain, (4, 3))
    joint = grad(simplify(graph), wrt=["x"], seed_input=True)
    simplified = simplify(joint)
    assert_same_results(joint, simplified, [(4, 3), (4, 5)], rtol=1e-10)


def test_a_train_step_of_fifteen_elementwise_ops_after_a_linear_compiles() -> None:
    """The same chain after nn.Linear, compiled into one SGD train step (whose weight update
    fold_update_into_gemm makes one GEMM), steps as the eager loop does."""
    import compiler
    from runtime import nn

    class Squash(nn.Module):
        def forward(self, x):
            return runtime.tanh(x) * 0.9 + 0.01

    runtime.manual_seed(0)
    compiled, eager = (nn.Sequential(nn.Linear(8, 4), *[Squash() for _ in range(15)])
                       for _ in range(2))
    eager.load_state_dict(compiled.state_dict())
    x, y = runtime.randn(6, 8), runtime.randn(6, 4)
    step = compiler.compile_train_step(compiled, nn.MSELoss(),
                                       runtime.optim.SGD(compiled.parameters(), lr=0.5),
                                       example_inputs=(x, y))
    optimizer = runtime.optim.SGD(eager.parameters(), lr=0.5)
    for _ in range(2):
        loss = step(x, y)
        optimizer.zero_grad()
        expected = nn.MSELoss()(eager(x), y)
        expected.backward()
        optimizer.step()
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
