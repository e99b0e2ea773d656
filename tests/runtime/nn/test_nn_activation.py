"""Activation layers (runtime/nn/activation.py) and their functional forms."""

import warnings

import numpy as np
import pytest

import runtime
from runtime import nn
from runtime.autograd import gradcheck
from runtime.nn import functional as F

X = np.array([[-3.0, -0.5, 0.0, 0.25, 2.0], [30.0, -25.0, 1.5, -1.0, 0.75]])

ACTIVATIONS = [
    pytest.param(lambda nn: nn.ReLU(), id="ReLU"),
    pytest.param(lambda nn: nn.LeakyReLU(0.2), id="LeakyReLU"),
    pytest.param(lambda nn: nn.Sigmoid(), id="Sigmoid"),
    pytest.param(lambda nn: nn.Tanh(), id="Tanh"),
    pytest.param(lambda nn: nn.SiLU(), id="SiLU"),
    pytest.param(lambda nn: nn.Softplus(), id="Softplus"),
    pytest.param(lambda nn: nn.Softplus(beta=2.0, threshold=5.0), id="Softplus-beta"),
    pytest.param(lambda nn: nn.Softmax(dim=1), id="Softmax"),
    pytest.param(lambda nn: nn.LogSoftmax(dim=0), id="LogSoftmax"),
]


def run_activation(lib, make, values):
    x = lib.tensor(values, requires_grad=True)
    y = make(lib.nn)(x)
    cotangent = lib.tensor(np.linspace(-1.0, 1.0, y.numel()).reshape(tuple(y.shape)))
    (grad,) = lib.autograd.grad(y, [x], cotangent)
    return y.detach().numpy(), grad.numpy()


@pytest.mark.parametrize("make", ACTIVATIONS)
def test_activation_and_gradient_equal_torch(make):
    torch = pytest.importorskip("torch")
    for ours, theirs in zip(run_activation(runtime, make, X), run_activation(torch, make, X)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("make", ACTIVATIONS)
def test_activation_gradient_matches_finite_differences(make):
    # Kinks (0 for ReLU, the Softplus threshold) are kept away from the finite-difference steps.
    x = runtime.tensor(np.where(np.abs(X) < 1e-3, 0.1, X), requires_grad=True)
    assert gradcheck(make(nn), [x])


@pytest.mark.parametrize("make", ACTIVATIONS)
def test_activation_repr_equals_torch(make):
    torch = pytest.importorskip("torch")
    assert repr(make(nn)) == repr(make(torch.nn))


def test_reprs_show_settings_as_pytorch_does():
    assert repr(nn.ReLU()) == "ReLU()" and repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    assert repr(nn.LeakyReLU(0.2, True)) == "LeakyReLU(negative_slope=0.2, inplace=True)"
    assert repr(nn.Softmax()) == "Softmax(dim=None)"
    assert repr(nn.Softplus()) == "Softplus(beta=1.0, threshold=20.0)"


def test_softmax_rows_sum_to_one():
    probabilities = nn.Softmax(dim=1)(runtime.randn(4, 10) * 10)
    np.testing.assert_allclose(probabilities.sum(1).detach().numpy(), np.ones(4), rtol=1e-6)
    assert (probabilities.detach().numpy() >= 0).all()


def test_softmax_without_dim_warns_and_chooses_as_pytorch():
    x = runtime.randn(2, 3)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        implicit = nn.Softmax()(x)
    assert implicit.tolist() == F.softmax(x, dim=1).tolist()
    with pytest.warns(UserWarning, match="Implicit dimension choice for log_softmax"):
        implicit = F.log_softmax(runtime.randn(2, 3, 4))
    np.testing.assert_allclose(implicit.exp().sum(0).numpy(), np.ones((3, 4)), rtol=1e-6)


def test_softplus_is_exactly_linear_above_the_threshold():
    x = runtime.tensor([21.0, 100.0], dtype=runtime.float64)
    assert F.softplus(x).tolist() == [21.0, 100.0]


def test_inplace_relu_overwrites_its_input():
    x = runtime.tensor([-1.0, 2.0])
    y = nn.ReLU(inplace=True)(x)
    assert y is x and x.tolist() == [0.0, 2.0]
    z = runtime.tensor([-1.0, 2.0])
    assert F.leaky_relu(z, 0.5, inplace=True) is z and z.tolist() == [-0.5, 2.0]


@pytest.mark.parametrize("make", [lambda: nn.ReLU(inplace=True), lambda: nn.LeakyReLU(0.1, True),
                                  lambda: nn.SiLU(inplace=True)])
def test_inplace_activation_inside_a_model_has_the_out_of_place_gradients(make):
    layer = nn.Linear(3, 4)
    x = runtime.randn(5, 3)
    make()(layer(x)).sum().backward()
    inplace_grad = layer.weight.grad.tolist()
    layer.zero_grad()
    out_of_place = make()
    out_of_place.inplace = False
    out_of_place(layer(x)).sum().backward()
    assert inplace_grad == layer.weight.grad.tolist()


def test_activations_record_pytorch_grad_fn_names():
    x = runtime.randn(3, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        names = [f(x).grad_fn.name() for f in (nn.ReLU(), nn.Sigmoid(), nn.Tanh(),
                                                nn.Softmax(dim=0), nn.LogSoftmax(dim=0))]
    assert names == ["ReluBackward0", "SigmoidBackward0", "TanhBackward0", "SoftmaxBackward0",
                     "LogSoftmaxBackward0"]
