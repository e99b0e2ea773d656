"""runtime.nn.init: PyTorch's initialisation formulas, in place, under no_grad."""

import math

import numpy as np
import pytest

import runtime
from runtime import nn
from runtime.nn import init


@pytest.mark.parametrize("nonlinearity, param, gain", [
    ("linear", None, 1), ("sigmoid", None, 1), ("conv2d", None, 1), ("tanh", None, 5.0 / 3),
    ("relu", None, math.sqrt(2.0)), ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01**2))),
    ("leaky_relu", math.sqrt(5), math.sqrt(1 / 3)), ("selu", None, 0.75),
])
def test_calculate_gain(nonlinearity, param, gain):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(gain, rel=1e-15)


def test_calculate_gain_equals_torch():
    torch = pytest.importorskip("torch")
    for name, param in [("tanh", None), ("relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert init.calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param)


def test_calculate_gain_refuses_unknown_names():
    with pytest.raises(ValueError, match="Unsupported nonlinearity gelu"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="negative_slope True not a valid number"):
        init.calculate_gain("leaky_relu", True)


def test_fans_count_the_receptive_field():
    assert init._calculate_fan_in_and_fan_out(runtime.empty(5, 3)) == (3, 5)
    assert init._calculate_fan_in_and_fan_out(runtime.empty(8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(runtime.empty(5))


def test_fills_work_on_parameters_and_return_the_same_tensor():
    weight = nn.Parameter(runtime.empty(3, 4))
    assert init.zeros_(weight) is weight and weight.abs().sum().item() == 0
    assert init.ones_(weight).sum().item() == 12 and weight.requires_grad and weight.is_leaf
    assert init.constant_(weight, 0.5).tolist()[0] == [0.5] * 4
    assert init.eye_(weight).tolist() == np.eye(3, 4).tolist()
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.eye_(runtime.empty(3))


def test_uniform_and_normal_statistics():
    runtime.manual_seed(0)
    u = init.uniform_(runtime.empty(100, 100), -2.0, 3.0).numpy()
    assert -2.0 <= u.min() and u.max() < 3.0 and u.mean() == pytest.approx(0.5, abs=0.05)
    n = init.normal_(runtime.empty(100, 100), 1.0, 2.0).numpy()
    assert n.mean() == pytest.approx(1.0, abs=0.05) and n.std() == pytest.approx(2.0, rel=0.03)


@pytest.mark.parametrize("fill, shape, expected_bound", [
    (lambda t: init.kaiming_uniform_(t), (200, 100), math.sqrt(2) * math.sqrt(3 / 100)),
    (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)), (200, 100), 1 / math.sqrt(100)),
    (lambda t: init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu"), (200, 100),
     math.sqrt(2) * math.sqrt(3 / 200)),
    (lambda t: init.xavier_uniform_(t), (200, 100), math.sqrt(6 / 300)),
    (lambda t: init.xavier_uniform_(t, gain=2.0), (200, 100), 2 * math.sqrt(6 / 300)),
])
def test_uniform_schemes_fill_their_bound(fill, shape, expected_bound):
    values = fill(runtime.empty(*shape, dtype=runtime.float64)).numpy()
    assert np.abs(values).max() <= expected_bound
    assert values.std() == pytest.approx(expected_bound / math.sqrt(3), rel=0.03)


@pytest.mark.parametrize("fill, expected_std", [
    (lambda t: init.kaiming_normal_(t, nonlinearity="relu"), math.sqrt(2 / 100)),
    (lambda t: init.kaiming_normal_(t, mode="fan_out", a=0.5), math.sqrt(2 / 1.25 / 200)),
    (lambda t: init.xavier_normal_(t), math.sqrt(2 / 300)),
])
def test_normal_schemes_have_the_expected_std(fill, expected_std):
    values = fill(runtime.empty(200, 100, dtype=runtime.float64)).numpy()
    assert values.std() == pytest.approx(expected_std, rel=0.03)
    assert abs(values.mean()) < 0.05 * expected_std


def test_generator_argument_gives_reproducible_draws():
    draws = [init.kaiming_uniform_(runtime.empty(4, 4), generator=runtime.Generator()
                                   .manual_seed(11)).tolist() for _ in range(2)]
    assert draws[0] == draws[1]


def test_bad_mode_and_empty_tensors():
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(runtime.empty(2, 2), mode="fan_avg")
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        init.kaiming_normal_(runtime.empty(0, 3))
