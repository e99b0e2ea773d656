"""Scans (runtime/ops/scan.py) and the products and log-sum-exp reductions against PyTorch:
values, dtypes, gradients and node names."""

import numpy as np
import pytest

import runtime

torch = pytest.importorskip("torch")

DATA = [[1.5, -2.0, 0.5], [3.0, 0.25, -1.0]]


def both(data=DATA, dtype="float64", requires_grad=True):
    return (runtime.tensor(data, dtype=getattr(runtime, dtype), requires_grad=requires_grad),
            torch.tensor(data, dtype=getattr(torch, dtype), requires_grad=requires_grad))


def assert_matches(ours, theirs):
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)


CALLS = {
    "cumsum(1)": lambda lib, x: lib.cumsum(x, 1),
    "cumsum(0)": lambda lib, x: x.cumsum(dim=0),
    "cumprod(1)": lambda lib, x: lib.cumprod(x, 1),
    "cumprod(-2)": lambda lib, x: x.cumprod(-2),
    "prod()": lambda lib, x: lib.prod(x),
    "prod(1)": lambda lib, x: x.prod(1),
    "prod(0, keepdim=True)": lambda lib, x: lib.prod(x, 0, keepdim=True),
    "logsumexp(1)": lambda lib, x: lib.logsumexp(x, 1),
    "logsumexp((0, 1))": lambda lib, x: x.logsumexp((0, 1)),
    "logsumexp(0, keepdim=True)": lambda lib, x: lib.logsumexp(x, 0, keepdim=True),
}


@pytest.mark.parametrize("call", CALLS)
def test_value_gradient_and_node_match_torch(call):
    (x, tx), fn = both(), CALLS[call]
    ours, theirs = fn(runtime, x), fn(torch, tx)
    assert_matches(ours, theirs)
    assert ours.grad_fn.name() == theirs.grad_fn.name()
    weights = np.linspace(-1, 2, ours.numel()).reshape(tuple(ours.shape))
    (ours * runtime.tensor(weights)).sum().backward()
    (theirs * torch.tensor(weights)).sum().backward()
    assert_matches(x.grad, tx.grad)


def test_integer_scans_and_products_are_int64_like_torch():
    x, tx = both([[1, 2, 3], [4, 5, 6]], "int32", requires_grad=False)
    for fn in (lambda lib, t: lib.cumsum(t, 1), lambda lib, t: lib.cumprod(t, 0),
               lambda lib, t: lib.prod(t)):
        assert_matches(fn(runtime, x), fn(torch, tx))


def test_logsumexp_does_not_overflow_like_torch():
    x, tx = both([[1000.0, 1000.0], [-float("inf"), -float("inf")]], requires_grad=False)
    assert_matches(runtime.logsumexp(x, 1), torch.logsumexp(tx, 1))
