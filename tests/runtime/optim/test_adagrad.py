"""runtime.optim.Adagrad: PyTorch's update rule, its state, and equality with torch.optim's."""

import itertools

import numpy as np
import pytest

import runtime


def _param(values, grad):
    p = runtime.tensor(values, dtype=runtime.float64, requires_grad=True)
    p.grad = runtime.tensor(grad, dtype=runtime.float64)
    return p


def test_first_step_moves_each_entry_by_lr_against_the_gradient_sign():
    # s = g^2, so the step is lr * g / (|g| + eps)
    p = _param([1.0, 1.0], [3.0, -0.5])
    runtime.optim.Adagrad([p], lr=0.1).step()
    np.testing.assert_allclose(p.detach().numpy(), [0.9, 1.1], rtol=0, atol=1e-10)


def test_lr_decay_divides_the_step_by_one_plus_the_steps_taken():
    # A gradient of 1 at each step adds 1 to the sum, which starts at 3.
    p = _param([0.0], [1.0])
    adagrad = runtime.optim.Adagrad([p], lr=1.0, lr_decay=0.5, initial_accumulator_value=3.0,
                                    eps=0.0)
    adagrad.step()  # sum 4, step 1: clr = 1
    np.testing.assert_allclose(p.detach().numpy(), [-0.5], rtol=0, atol=1e-12)
    adagrad.step()  # sum 5, step 2: clr = 1 / 1.5
    np.testing.assert_allclose(p.detach().numpy(), [-0.5 - 1 / 1.5 / 5 ** 0.5], rtol=0,
                               atol=1e-12)


def test_defaults_are_pytorchs_and_state_exists_before_the_first_step():
    p = _param([1.0, 2.0], [1.0, 1.0])
    adagrad = runtime.optim.Adagrad([p], initial_accumulator_value=0.25)
    group = adagrad.param_groups[0]
    assert (group["lr"], group["lr_decay"], group["weight_decay"], group["eps"]) == (
        0.01, 0, 0, 1e-10)
    state = adagrad.state_dict()["state"][0]
    assert list(state) == ["step", "sum"]
    assert state["step"].item() == 0.0 and state["step"].dtype == runtime.float32
    np.testing.assert_array_equal(state["sum"].numpy(), [0.25, 0.25])
    adagrad.step()
    assert adagrad.state[p]["step"].item() == 1.0
    np.testing.assert_allclose(adagrad.state[p]["sum"].numpy(), [1.25, 1.25], rtol=1e-15)


def test_a_group_added_later_gets_its_state_on_its_first_step():
    p, q = _param([1.0], [1.0]), _param([2.0], [2.0])
    adagrad = runtime.optim.Adagrad([p], initial_accumulator_value=1.0)
    adagrad.add_param_group({"params": [q], "initial_accumulator_value": 5.0})
    assert q not in adagrad.state
    adagrad.step()
    assert list(adagrad.state[q]) == ["step", "sum"]
    np.testing.assert_allclose(adagrad.state[q]["sum"].numpy(), [5.0])  # the defaults' 1 + 2^2


@pytest.mark.parametrize("options, message", [
    ({"lr": -1.0}, "Invalid learning rate: -1.0"),
    ({"lr_decay": -0.1}, "Invalid lr_decay value: -0.1"),
    ({"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
    ({"initial_accumulator_value": -1.0}, "Invalid initial_accumulator_value value: -1.0"),
    ({"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
])
def test_invalid_options_raise_value_error(options, message):
    p = runtime.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match=message):
        runtime.optim.Adagrad([p], **options)


def _adagrad_options():
    for weight_decay, lr_decay, maximize in itertools.product([0, 0.1], [0, 0.05],
                                                              [False, True]):
        yield {"lr": 0.1, "weight_decay": weight_decay, "lr_decay": lr_decay,
               "maximize": maximize}
    yield {"initial_accumulator_value": 0.5, "eps": 1e-3}


@pytest.mark.parametrize("options", list(_adagrad_options()),
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_adagrad_twenty_steps_equal_torch(assert_steps_match_torch, options):
    assert_steps_match_torch("Adagrad", **options)


def test_state_dict_loads_into_pytorch_and_back():
    torch = pytest.importorskip("torch")
    p = _param([1.0, -2.0], [0.5, 0.25])
    ours = runtime.optim.Adagrad([p], lr_decay=0.1)
    ours.step()
    q = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    q.grad = torch.tensor([0.5, 0.25], dtype=torch.float64)
    theirs = torch.optim.Adagrad([q], lr_decay=0.1)
    theirs.step()
    saved, reference = ours.state_dict(), theirs.state_dict()
    assert saved["param_groups"] == reference["param_groups"]
    assert list(saved["state"][0]) == list(reference["state"][0])
    for key, value in saved["state"][0].items():
        np.testing.assert_allclose(value.numpy(), reference["state"][0][key].numpy(), rtol=1e-15)
