"""GELU (erf and tanh forms), ELU, Mish and the dropout variants against PyTorch: values and
gradients (float64 tight, float32 within an ulp or two), printed forms, dropout statistics."""

import numpy as np
import pytest

import runtime
import runtime.nn as nn
import runtime.nn.functional as F

torch = pytest.importorskip("torch")

ACTIVATIONS = [
    (lambda lib: lib.nn.GELU()),
    (lambda lib: lib.nn.GELU(approximate="tanh")),
    (lambda lib: lib.nn.ELU()),
    (lambda lib: lib.nn.ELU(alpha=0.5)),
    (lambda lib: lib.nn.Mish()),
]


@pytest.mark.parametrize("make", ACTIVATIONS)
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-14), ("float32", 1e-6)])
def test_activation_values_and_gradients_match_torch(make, dtype, tol):
    data = np.concatenate([np.linspace(-12, 12, 97), [0.0, -0.0, 1e-8, -30.0, 30.0]])
    ours, theirs = make(runtime), make(torch)
    assert repr(ours) == repr(theirs)
    x = runtime.tensor(data, dtype=getattr(runtime, dtype), requires_grad=True)
    tx = torch.tensor(data, dtype=getattr(torch, dtype), requires_grad=True)
    out, expected = ours(x), theirs(tx)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=tol,
                               atol=tol)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=tol, atol=tol)


def test_gelu_grad_fn_and_errors_match_torch():
    x = runtime.randn(3, requires_grad=True)
    assert F.gelu(x).grad_fn.name() == "GeluBackward0"
    assert F.gelu(x, approximate="tanh").grad_fn.name() == "GeluBackward0"
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        F.gelu(x, approximate="fast")


@pytest.mark.parametrize("name, shape", [("dropout1d", (50, 40, 7)),
                                         ("dropout2d", (50, 40, 3, 3))])
def test_channel_dropout_zeroes_whole_channels(name, shape):
    runtime.manual_seed(0)
    out = getattr(F, name)(runtime.ones(shape), p=0.25).numpy()
    per_channel = out.reshape(shape[0], shape[1], -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 1 / 0.75).all(-1))
    dropped = (per_channel == 0).all(-1).mean()
    assert 0.2 < dropped < 0.3
    assert getattr(F, name)(runtime.ones(shape), p=0.25, training=False).numpy().min() == 1.0


def test_alpha_dropout_keeps_mean_and_variance():
    runtime.manual_seed(0)
    x = runtime.randn(200000, dtype=runtime.float64)
    out = F.alpha_dropout(x, p=0.2, training=True).numpy()
    assert abs(out.mean()) < 0.02 and abs(out.std() - 1) < 0.02
    assert F.alpha_dropout(x, p=0.2, training=False) is x


@pytest.mark.parametrize("name", ["Dropout1d", "Dropout2d", "AlphaDropout"])
def test_dropout_module_reprs_match_torch(name):
    assert repr(getattr(nn, name)(0.3)) == repr(getattr(torch.nn, name)(0.3))
    module = getattr(nn, name)(0.3).eval()
    x = runtime.ones(2, 3, 4) if name == "Dropout1d" else runtime.ones(2, 3, 4, 4)
    assert module(x) is x
