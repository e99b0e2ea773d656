"""runtime.optim.Adam and AdamW: PyTorch's update rule, and equality with torch.optim's."""

import itertools

import numpy as np
import pytest

import runtime


def _param(values, grad):
    p = runtime.tensor(values, dtype=runtime.float64, requires_grad=True)
    p.grad = runtime.tensor(grad, dtype=runtime.float64)
    return p


def test_first_step_moves_each_entry_by_about_lr_against_the_gradient_sign():
    # After bias correction, step 1 is lr * g / (|g| + eps).
    p = _param([1.0, 1.0, 1.0], [3.0, -0.5, 1e-3])
    runtime.optim.Adam([p], lr=0.1).step()
    g = np.array([3.0, -0.5, 1e-3])
    np.testing.assert_allclose(p.detach().numpy(), 1.0 - 0.1 * g / (np.abs(g) + 1e-8),
                               rtol=0, atol=1e-14)


def test_state_is_named_and_typed_as_pytorch_stores_it():
    p = _param([1.0, 2.0], [1.0, 1.0])
    adam = runtime.optim.Adam([p], amsgrad=True)
    adam.step()
    adam.step()
    state = adam.state[p]
    assert list(state) == ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    assert state["step"].shape == () and state["step"].dtype == runtime.float32
    assert state["step"].item() == 2.0
    np.testing.assert_allclose(state["exp_avg"].numpy(), [0.19, 0.19], rtol=1e-15)
    np.testing.assert_allclose(state["exp_avg_sq"].numpy(), [0.001999, 0.001999], rtol=1e-15)


def test_amsgrad_keeps_the_largest_second_moment():
    p = _param([1.0], [10.0])
    adam = runtime.optim.Adam([p], amsgrad=True)
    adam.step()
    p.grad = runtime.tensor([0.0], dtype=runtime.float64)
    adam.step()
    state = adam.state[p]
    assert state["max_exp_avg_sq"].item() == pytest.approx(0.1, rel=1e-14)  # (1 - 0.999) * 10**2
    assert state["exp_avg_sq"].item() == pytest.approx(0.0999, rel=1e-14)


def test_adamw_decays_the_parameter_itself():
    # With a zero gradient the moments stay 0, so only the decoupled decay moves p.
    p = _param([2.0], [0.0])
    runtime.optim.AdamW([p], lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(p.detach().numpy(), [2.0 * (1 - 0.1 * 0.5)], rtol=0, atol=1e-15)


def test_adam_weight_decay_goes_through_the_moments():
    # With a zero gradient the L2 term is the gradient, so p moves by about lr towards 0.
    p = _param([2.0], [0.0])
    runtime.optim.Adam([p], lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(p.detach().numpy(), [1.9], rtol=0, atol=1e-8)


def test_adamw_defaults_and_stays_decoupled_after_loading_state():
    p = _param([1.0], [1.0])
    adamw = runtime.optim.AdamW([p])
    assert adamw.defaults["weight_decay"] == 1e-2
    state = runtime.optim.Adam([p]).state_dict()
    adamw.load_state_dict(state)
    assert adamw.param_groups[0]["decoupled_weight_decay"] is True


@pytest.mark.parametrize("options, message", [
    ({"lr": -1.0}, "Invalid learning rate: -1.0"),
    ({"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
    ({"betas": (1.0, 0.999)}, "Invalid beta parameter at index 0: 1.0"),
    ({"betas": (0.9, -0.1)}, "Invalid beta parameter at index 1: -0.1"),
    ({"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
])
def test_invalid_options_raise_value_error(options, message):
    p = runtime.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match=message):
        runtime.optim.Adam([p], **options)


def _adam_options():
    for weight_decay, amsgrad, maximize, decoupled in itertools.product(
            [0, 0.1], [False, True], [False, True], [False, True]):
        yield {"lr": 0.01, "weight_decay": weight_decay, "amsgrad": amsgrad, "maximize": maximize,
               "decoupled_weight_decay": decoupled}
    yield {"lr": 0.1, "betas": (0.3, 0.5), "eps": 1e-3}


@pytest.mark.parametrize("options", list(_adam_options()),
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_adam_twenty_steps_equal_torch(assert_steps_match_torch, options):
    assert_steps_match_torch("Adam", **options)


@pytest.mark.parametrize("options", [{}, {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True}])
def test_adamw_twenty_steps_equal_torch(assert_steps_match_torch, options):
    assert_steps_match_torch("AdamW", **options)
