"""runtime.optim.RMSprop: PyTorch's update rule, its state, and equality with torch.optim's."""

import itertools

import numpy as np
import pytest

import runtime


def _param(values, grad):
    p = runtime.tensor(values, dtype=runtime.float64, requires_grad=True)
    p.grad = runtime.tensor(grad, dtype=runtime.float64)
    return p


def test_first_step_divides_the_gradient_by_its_running_root_mean_square():
    # v = (1 - alpha) g^2, so the step is lr * g / (sqrt(0.01) |g| + eps) = 10 lr sign(g)
    p = _param([1.0, 1.0], [3.0, -0.5])
    runtime.optim.RMSprop([p], lr=0.01).step()
    g = np.array([3.0, -0.5])
    np.testing.assert_allclose(p.detach().numpy(), 1.0 - 0.01 * g / (0.1 * np.abs(g) + 1e-8),
                               rtol=0, atol=1e-14)


def test_defaults_are_pytorchs():
    p = _param([1.0], [1.0])
    group = runtime.optim.RMSprop([p]).param_groups[0]
    assert (group["lr"], group["alpha"], group["eps"], group["weight_decay"],
            group["momentum"], group["centered"]) == (0.01, 0.99, 1e-8, 0, 0, False)


def test_state_is_named_and_typed_as_pytorch_stores_it():
    p = _param([1.0, 2.0], [1.0, 1.0])
    rmsprop = runtime.optim.RMSprop([p], momentum=0.5, centered=True)
    assert rmsprop.state_dict()["state"] == {}  # created by the first step
    rmsprop.step()
    rmsprop.step()
    state = rmsprop.state[p]
    assert list(state) == ["step", "square_avg", "momentum_buffer", "grad_avg"]
    assert state["step"].shape == () and state["step"].dtype == runtime.float32
    assert state["step"].item() == 2.0
    np.testing.assert_allclose(state["square_avg"].numpy(), [0.0199, 0.0199], rtol=1e-14)
    np.testing.assert_allclose(state["grad_avg"].numpy(), [0.0199, 0.0199], rtol=1e-14)
    assert list(runtime.optim.RMSprop([p]).state_dict()["param_groups"][0]) == [
        "lr", "momentum", "alpha", "eps", "centered", "weight_decay", "capturable", "foreach",
        "maximize", "differentiable", "params"]


def test_without_momentum_or_centering_only_square_avg_is_kept():
    p = _param([1.0], [1.0])
    rmsprop = runtime.optim.RMSprop([p])
    rmsprop.step()
    assert list(rmsprop.state[p]) == ["step", "square_avg"]


@pytest.mark.parametrize("options, message", [
    ({"lr": -1.0}, "Invalid learning rate: -1.0"),
    ({"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
    ({"momentum": -0.1}, "Invalid momentum value: -0.1"),
    ({"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
    ({"alpha": -0.5}, "Invalid alpha value: -0.5"),
])
def test_invalid_options_raise_value_error(options, message):
    p = runtime.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match=message):
        runtime.optim.RMSprop([p], **options)


def _rmsprop_options():
    for weight_decay, momentum, centered, maximize in itertools.product(
            [0, 0.1], [0, 0.9], [False, True], [False, True]):
        yield {"lr": 0.01, "weight_decay": weight_decay, "momentum": momentum,
               "centered": centered, "maximize": maximize}
    yield {"lr": 0.1, "alpha": 0.3, "eps": 1e-3, "centered": True}  # lerp's other form


@pytest.mark.parametrize("options", list(_rmsprop_options()),
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_rmsprop_twenty_steps_equal_torch(assert_steps_match_torch, options):
    assert_steps_match_torch("RMSprop", **options)


def test_state_dict_round_trips_through_pytorch():
    torch = pytest.importorskip("torch")
    p = _param([1.0, -2.0], [0.5, 0.25])
    ours = runtime.optim.RMSprop([p], momentum=0.9, centered=True)
    ours.step()
    q = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    q.grad = torch.tensor([0.5, 0.25], dtype=torch.float64)
    theirs = torch.optim.RMSprop([q], momentum=0.9, centered=True)
    theirs.step()
    saved, reference = ours.state_dict(), theirs.state_dict()
    assert saved["param_groups"] == reference["param_groups"]
    assert list(saved["state"][0]) == list(reference["state"][0])
    for key, value in saved["state"][0].items():
        np.testing.assert_allclose(value.numpy(), reference["state"][0][key].numpy(), rtol=1e-15)
