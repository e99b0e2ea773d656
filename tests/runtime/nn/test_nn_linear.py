"""nn.Linear and nn.Identity (runtime/nn/linear.py), and F.linear."""

import math

import numpy as np
import pytest

import runtime
from runtime import nn
from runtime.autograd import gradcheck
from runtime.nn import functional as F


def test_linear_computes_x_times_weight_transposed_plus_bias():
    layer = nn.Linear(3, 2)
    x = runtime.randn(5, 3)
    expected = x.numpy() @ layer.weight.numpy(force=True).T + layer.bias.numpy(force=True)
    np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-6)
    assert layer.weight.shape == (2, 3) and layer.bias.shape == (2,)


def test_linear_without_bias_and_in_float64():
    layer = nn.Linear(3, 2, bias=False, dtype=runtime.float64)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    assert layer(runtime.randn(1, 3, dtype=runtime.float64)).dtype == runtime.float64
    assert repr(layer) == "Linear(in_features=3, out_features=2, bias=False)"


def test_linear_applies_to_the_last_dimension_of_batched_and_unbatched_input():
    layer = nn.Linear(4, 2)
    assert layer(runtime.randn(3, 5, 4)).shape == (3, 5, 2)
    assert layer(runtime.randn(4)).shape == (2,)


def test_linear_names_both_shapes_when_the_input_does_not_fit():
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied "
                                           r"\(3x100 and 784x512\)"):
        nn.Linear(784, 512)(runtime.randn(3, 100))


def test_default_initialisation_is_uniform_within_one_over_sqrt_fan_in():
    runtime.manual_seed(0)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (layer.weight, layer.bias):
        values = p.numpy(force=True)
        assert np.abs(values).max() <= bound * (1 + 1e-6)  # float32 rounding
        assert np.abs(values).max() > 0.95 * bound  # fills the interval
    # U(-b, b) has standard deviation b / sqrt(3).
    assert layer.weight.numpy(force=True).std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert abs(layer.weight.numpy(force=True).mean()) < 0.01 * bound


def test_manual_seed_makes_initialisation_reproducible():
    runtime.manual_seed(7)
    first = nn.Linear(5, 4).weight.tolist()
    runtime.manual_seed(7)
    assert nn.Linear(5, 4).weight.tolist() == first
    assert nn.Linear(5, 4).weight.tolist() != first


def test_linear_gradients_match_finite_differences():
    x = runtime.randn(3, 4, dtype=runtime.float64, requires_grad=True)
    w = runtime.randn(2, 4, dtype=runtime.float64, requires_grad=True)
    b = runtime.randn(2, dtype=runtime.float64, requires_grad=True)
    assert gradcheck(F.linear, [x, w, b])


def test_linear_gradients_equal_torch():
    torch = pytest.importorskip("torch")
    layer = nn.Linear(4, 3, dtype=runtime.float64)
    reference = torch.nn.Linear(4, 3, dtype=torch.float64)
    reference.load_state_dict({k: torch.tensor(v.numpy()) for k, v in layer.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 4))
    layer(runtime.tensor(x)).tanh().sum().backward()
    reference(torch.tensor(x)).tanh().sum().backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), reference.weight.grad.numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad.numpy(), reference.bias.grad.numpy(), rtol=1e-12)


def test_identity_returns_its_input_and_ignores_arguments():
    x = runtime.randn(2)
    assert nn.Identity(54, unused="yes")(x) is x
    assert repr(nn.Identity()) == "Identity()"
