"""runtime.optim.SGD: PyTorch's update rule, option by option, and equality with torch.optim.SGD."""

import itertools

import numpy as np
import pytest

import runtime


def _param(values, grad):
    p = runtime.tensor(values, dtype=runtime.float64, requires_grad=True)
    p.grad = runtime.tensor(grad, dtype=runtime.float64)
    return p


def _assert_values(tensor, expected):
    np.testing.assert_allclose(tensor.detach().numpy(), expected, rtol=0, atol=1e-15)


def test_plain_sgd_steps_against_the_gradient():
    p = _param([1.0, 2.0], [0.5, -1.0])
    runtime.optim.SGD([p], lr=0.1).step()
    _assert_values(p, [0.95, 2.1])


def test_default_learning_rate_is_1e_3():
    p = _param([1.0], [1.0])
    runtime.optim.SGD([p]).step()
    _assert_values(p, [0.999])


def test_momentum_buffer_starts_as_the_first_gradient_then_decays_with_dampening():
    p = _param([1.0, 2.0], [0.5, -1.0])
    sgd = runtime.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    sgd.step()
    _assert_values(sgd.state[p]["momentum_buffer"], [0.5, -1.0])  # no dampening on step 1
    _assert_values(p, [0.95, 2.1])
    p.grad = runtime.tensor([1.0, 1.0], dtype=runtime.float64)
    sgd.step()
    # buffer = 0.9 * [0.5, -1] + 0.5 * [1, 1]
    _assert_values(sgd.state[p]["momentum_buffer"], [0.95, -0.4])
    _assert_values(p, [0.95 - 0.095, 2.1 + 0.04])


def test_momentum_buffer_is_a_copy_not_the_gradient():
    p = _param([1.0], [2.0])
    sgd = runtime.optim.SGD([p], lr=0.1, momentum=0.9)
    sgd.step()
    assert sgd.state[p]["momentum_buffer"] is not p.grad
    p.grad.zero_()
    _assert_values(sgd.state[p]["momentum_buffer"], [2.0])


def test_nesterov_looks_ahead_along_the_buffer():
    p = _param([1.0], [1.0])
    runtime.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True).step()
    _assert_values(p, [1.0 - 0.1 * (1.0 + 0.9 * 1.0)])


def test_weight_decay_adds_a_multiple_of_the_parameter_to_the_gradient():
    p = _param([2.0], [1.0])
    runtime.optim.SGD([p], lr=0.1, weight_decay=0.5).step()
    _assert_values(p, [2.0 - 0.1 * (1.0 + 0.5 * 2.0)])


def test_maximize_steps_along_the_gradient():
    p = _param([1.0], [1.0])
    runtime.optim.SGD([p], lr=0.1, maximize=True).step()
    _assert_values(p, [1.1])


def test_no_momentum_keeps_no_state():
    p = _param([1.0], [1.0])
    sgd = runtime.optim.SGD([p], lr=0.1)
    sgd.step()
    assert sgd.state_dict()["state"] == {}


def test_float32_parameters_stay_float32():
    p = runtime.ones(3, requires_grad=True)
    p.grad = runtime.ones(3)
    sgd = runtime.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1)
    sgd.step()
    sgd.step()
    assert p.dtype == runtime.float32
    assert sgd.state[p]["momentum_buffer"].dtype == runtime.float32


@pytest.mark.parametrize("options, message", [
    ({"lr": -0.1}, "Invalid learning rate: -0.1"),
    ({"momentum": -0.5}, "Invalid momentum value: -0.5"),
    ({"weight_decay": -1.0}, "Invalid weight_decay value: -1.0"),
    ({"nesterov": True}, "Nesterov momentum requires a momentum and zero dampening"),
    ({"nesterov": True, "momentum": 0.9, "dampening": 0.1},
     "Nesterov momentum requires a momentum and zero dampening"),
])
def test_invalid_options_raise_value_error(options, message):
    p = runtime.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match=message):
        runtime.optim.SGD([p], **options)


def _valid_sgd_options():
    for momentum, dampening, nesterov, weight_decay, maximize in itertools.product(
            [0, 0.9], [0, 0.3], [False, True], [0, 0.1], [False, True]):
        if nesterov and (momentum == 0 or dampening != 0):
            continue
        yield {"lr": 0.05, "momentum": momentum, "dampening": dampening, "nesterov": nesterov,
               "weight_decay": weight_decay, "maximize": maximize}


@pytest.mark.parametrize("options", list(_valid_sgd_options()),
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_twenty_steps_equal_torch(assert_steps_match_torch, options):
    assert_steps_match_torch("SGD", **options)


def test_zero_dim_parameter_keeps_its_momentum_buffer_across_steps():
    p = _param(1.0, 1.0)
    sgd = runtime.optim.SGD([p], lr=0.1, momentum=0.5, maximize=True)
    sgd.step()
    sgd.step()
    # buffer: -1, then 0.5 * -1 + -1 = -1.5; p: 1 + 0.1 + 0.15
    assert sgd.state[p]["momentum_buffer"].item() == -1.5
    _assert_values(p, 1.25)
