"""softmax and log_softmax (runtime/ops/softmax.py) against PyTorch: every dim, the dtype
argument, logits up to +-1e4 (finite, exact, with finite gradients), second derivatives, errors."""

import numpy as np
import pytest

import runtime

torch = pytest.importorskip("torch")


def both(data, dtype="float32", requires_grad=False):
    return (runtime.tensor(data, dtype=getattr(runtime, dtype), requires_grad=requires_grad),
            torch.tensor(data, dtype=getattr(torch, dtype), requires_grad=requires_grad))


def assert_matches(ours, theirs):
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert tuple(ours.shape) == tuple(theirs.shape)
    tol = 1e-12 if ours.dtype.name == "float64" else 2e-6
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_family_along_each_dim_matches_torch(name, dim, dtype):
    data = np.random.default_rng(0).standard_normal((2, 3, 4)) * 3
    x, tx = both(data, dtype, requires_grad=True)
    out, tout = getattr(x, name)(dim), getattr(tx, name)(dim)
    assert_matches(out, tout)
    assert_matches(getattr(runtime, name)(x, dim=dim), getattr(torch, name)(tx, dim=dim))
    weights = np.random.default_rng(1).standard_normal((2, 3, 4))
    (out * runtime.tensor(weights)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    assert_matches(x.grad, tx.grad)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_family_of_logits_up_to_1e4_is_finite_and_exact(name, dtype):
    logits = [[1e4, -1e4, 0.0, 1e4 - 1.0], [-1e4, -1e4, -1e4, -1e4 + 2.0]]
    x, tx = both(logits, dtype, requires_grad=True)
    out, tout = getattr(x, name)(1), getattr(tx, name)(1)
    assert np.all(np.isfinite(out.detach().numpy()))
    assert_matches(out, tout)
    picked = out[:, 0].sum()
    picked.backward()
    getattr(tx, name)(1)[:, 0].sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    assert_matches(x.grad, tx.grad)


def test_log_softmax_of_extreme_logits_keeps_the_exact_log_probabilities():
    x = runtime.tensor([[1e4, -1e4, 0.0]], dtype=runtime.float64)
    np.testing.assert_allclose(x.log_softmax(1).numpy(), [[0.0, -2e4, -1e4]])
    np.testing.assert_allclose(x.softmax(1).numpy(), [[1.0, 0.0, 0.0]])


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_with_dtype_converts_first(name):
    x, tx = both([[1, 2, 3]], "int64")
    assert_matches(getattr(x, name)(1, dtype=runtime.float64),
                   getattr(tx, name)(1, dtype=torch.float64))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_refuses_integers_and_needs_a_dim(name):
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        getattr(runtime.arange(3), name)(0)
    with pytest.raises(TypeError, match="dim"):
        getattr(runtime, name)(runtime.ones(3))
    with pytest.raises(IndexError, match="Dimension out of range"):
        getattr(runtime.ones(2, 3), name)(2)


def test_hessian_vector_product_through_matmul_and_softmax_matches_torch():
    rng = np.random.default_rng(3)
    xd, wd, vd = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(
        (3, 5))
    target = np.array([0, 3, 1, 4])
    results = []
    for lib in (runtime, torch):
        x = lib.tensor(xd)
        w = lib.tensor(wd, requires_grad=True)
        loss = -lib.log_softmax(x @ w, dim=1)[lib.arange(4), lib.tensor(target)].mean()
        (g,) = lib.autograd.grad(loss, w, create_graph=True)
        (hv,) = lib.autograd.grad((g * lib.tensor(vd)).sum(), w)
        results.append((loss, g, hv))
    for ours, theirs in zip(*results):
        assert_matches(ours, theirs)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_grad_fn_names_match_torch(name):
    x, tx = both([[1.0, 2.0]], requires_grad=True)
    assert getattr(x, name)(1).grad_fn.name() == type(getattr(tx, name)(1).grad_fn).__name__
