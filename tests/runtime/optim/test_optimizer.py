"""runtime.optim.Optimizer: parameter groups, zero_grad, step, state_dict and repr, as PyTorch's."""

import copy

import numpy as np
import pytest

import runtime
from runtime.optim.optimizer import required


def _leaf(*values):
    return runtime.tensor(list(values), dtype=runtime.float64, requires_grad=True)


# ----- construction and parameter groups ---------------------------------------------------------

def test_empty_parameter_list_is_a_value_error():
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        runtime.optim.SGD([], lr=0.1)


def test_a_single_tensor_instead_of_an_iterable_is_a_type_error():
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts, but got "
                                        "runtime.DoubleTensor"):
        runtime.optim.SGD(_leaf(1.0), lr=0.1)


def test_only_tensors_can_be_optimized():
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors, but one of the "
                                        "params is float"):
        runtime.optim.SGD([1.0], lr=0.1)


def test_a_group_given_as_a_set_is_refused_because_its_order_is_not_stable():
    with pytest.raises(TypeError, match="ordered collections"):
        runtime.optim.SGD([{"params": {_leaf(1.0)}}], lr=0.1)


def test_non_leaf_tensors_cannot_be_optimized():
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        runtime.optim.SGD([_leaf(1.0) * 2], lr=0.1)


def test_a_parameter_in_two_groups_is_a_value_error():
    p = _leaf(1.0)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        runtime.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_a_parameter_twice_in_one_group_warns():
    p = _leaf(1.0)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        runtime.optim.SGD([p, p], lr=0.1)


def test_groups_take_their_own_options_and_the_defaults_for_the_rest():
    fast, slow = _leaf(1.0), _leaf(1.0)
    sgd = runtime.optim.SGD([{"params": [fast], "lr": 0.5}, {"params": slow}], lr=0.1,
                            momentum=0.9)
    assert [g["lr"] for g in sgd.param_groups] == [0.5, 0.1]
    assert [g["momentum"] for g in sgd.param_groups] == [0.9, 0.9]
    assert sgd.param_groups[1]["params"] == [slow]  # a lone tensor becomes a list
    fast.grad, slow.grad = runtime.ones_like(fast), runtime.ones_like(slow)
    sgd.step()
    assert (fast.item(), slow.item()) == (0.5, 0.9)


def test_add_param_group_later_uses_the_defaults():
    first, second = _leaf(1.0), _leaf(1.0)
    sgd = runtime.optim.SGD([first], lr=0.1)
    sgd.add_param_group({"params": [second], "weight_decay": 0.5})
    assert sgd.param_groups[1]["lr"] == 0.1 and sgd.param_groups[1]["weight_decay"] == 0.5
    second.grad = runtime.zeros_like(second)
    sgd.step()
    assert second.item() == pytest.approx(1.0 - 0.1 * 0.5)


def test_named_parameters_give_param_names():
    w, b = _leaf(1.0), _leaf(2.0)
    sgd = runtime.optim.SGD([("weight", w), ("bias", b)], lr=0.1)
    assert sgd.param_groups[0]["params"] == [w, b]
    assert sgd.param_groups[0]["param_names"] == ["weight", "bias"]
    assert sgd.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]
    with pytest.raises(ValueError, match="Some param names are missing"):
        runtime.optim.SGD([("weight", w), b], lr=0.1)


def test_required_options_must_be_given_by_every_group():
    class Plain(runtime.optim.Optimizer):
        def __init__(self, params, lr=required):
            super().__init__(params, {"lr": lr})

    assert repr(required) == "<required parameter>"
    with pytest.raises(ValueError, match="didn't specify a value of required optimization "
                                         "parameter lr"):
        Plain([_leaf(1.0)])
    assert Plain([{"params": [_leaf(1.0)], "lr": 0.3}]).param_groups[0]["lr"] == 0.3


def test_the_base_class_has_no_update_rule():
    p = _leaf(1.0)
    p.grad = runtime.ones_like(p)
    with pytest.raises(NotImplementedError):
        runtime.optim.Optimizer([p], {}).step()


# ----- zero_grad and step ------------------------------------------------------------------------

def test_zero_grad_sets_gradients_to_none_by_default():
    p = _leaf(1.0, 2.0)
    (p * p).sum().backward()
    runtime.optim.SGD([p], lr=0.1).zero_grad()
    assert p.grad is None


def test_zero_grad_without_set_to_none_zeroes_the_same_tensor_in_place():
    p = _leaf(1.0, 2.0)
    (p * p).sum().backward()
    grad = p.grad
    runtime.optim.SGD([p], lr=0.1).zero_grad(set_to_none=False)
    assert p.grad is grad
    assert p.grad.tolist() == [0.0, 0.0]
    (p * 3).sum().backward()
    assert p.grad.tolist() == [3.0, 3.0]


def test_zero_grad_without_set_to_none_detaches_a_recorded_gradient():
    p = _leaf(1.0, 2.0)
    (p * p * p).sum().backward(create_graph=True)
    assert p.grad.requires_grad
    runtime.optim.SGD([p], lr=0.1).zero_grad(set_to_none=False)
    assert not p.grad.requires_grad and p.grad.grad_fn is None


def test_step_skips_parameters_without_gradient():
    used, unused = _leaf(1.0), _leaf(1.0)
    used.grad = runtime.ones_like(used)
    adam = runtime.optim.Adam([used, unused], lr=0.1)
    adam.step()
    assert unused.item() == 1.0 and used.item() != 1.0
    assert unused not in adam.state


def test_step_leaves_parameters_as_leaves_that_require_grad():
    p = _leaf(1.0)
    p.grad = runtime.ones_like(p)
    runtime.optim.SGD([p], lr=0.1, momentum=0.9).step()
    assert p.is_leaf and p.requires_grad and p.grad_fn is None


def test_step_calls_the_closure_with_grad_enabled_and_returns_its_loss():
    p = _leaf(3.0)
    sgd = runtime.optim.SGD([p], lr=0.1)

    def closure():
        sgd.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with runtime.no_grad():
        loss = sgd.step(closure)
    assert loss.item() == 9.0
    assert p.item() == pytest.approx(3.0 - 0.1 * 6.0)
    assert runtime.is_grad_enabled()


def test_step_changes_parameters_in_place_and_bumps_their_version():
    p = _leaf(1.0, 2.0)
    alias = p.detach()  # shares memory and version counter
    loss = (p * p).sum()  # saves p for backward
    loss.backward(retain_graph=True)
    runtime.optim.SGD([p], lr=0.5).step()
    assert alias.tolist() == [0.0, 0.0]
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


# ----- state_dict --------------------------------------------------------------------------------

def _trained_sgd(params, steps, seed):
    rng = np.random.default_rng(seed)
    sgd = runtime.optim.SGD([{"params": params[:1], "lr": 0.2}, {"params": params[1:]}], lr=0.1,
                            momentum=0.9, nesterov=True)
    for _ in range(steps):
        for p in params:
            p.grad = runtime.tensor(rng.standard_normal(tuple(p.shape)))
        sgd.step()
    return sgd


def test_state_dict_replaces_parameters_by_their_positions():
    params = [_leaf(1.0, 2.0), _leaf(3.0), _leaf(4.0)]
    sgd = _trained_sgd(params, steps=2, seed=0)
    saved = sgd.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0], [1, 2]]
    assert saved["param_groups"][0]["lr"] == 0.2 and saved["param_groups"][1]["lr"] == 0.1
    assert sorted(saved["state"]) == [0, 1, 2]
    assert saved["state"][0]["momentum_buffer"] is sgd.state[params[0]]["momentum_buffer"]


def test_state_dict_round_trip_continues_identically():
    params = [_leaf(1.0, 2.0), _leaf(3.0), _leaf(4.0)]
    sgd = _trained_sgd(params, steps=3, seed=0)
    copies = [p.detach().clone().requires_grad_() for p in params]
    resumed = runtime.optim.SGD([{"params": copies[:1]}, {"params": copies[1:]}], lr=1.0)
    resumed.load_state_dict(copy.deepcopy(sgd.state_dict()))
    assert [g["lr"] for g in resumed.param_groups] == [0.2, 0.1]
    assert resumed.param_groups[0]["params"] == copies[:1]
    rng = np.random.default_rng(1)
    for _ in range(3):
        for p, c in zip(params, copies):
            p.grad = runtime.tensor(rng.standard_normal(tuple(p.shape)))
            c.grad = p.grad.clone()
        sgd.step()
        resumed.step()
    for p, c in zip(params, copies):
        assert p.tolist() == c.tolist()


def test_load_state_dict_casts_buffers_to_the_parameter_dtype_but_not_the_step():
    p32 = runtime.ones(2, requires_grad=True)
    p32.grad = runtime.ones(2)
    adam = runtime.optim.Adam([p32])
    adam.step()
    p64 = runtime.ones(2, dtype=runtime.float64, requires_grad=True)
    other = runtime.optim.Adam([p64])
    other.load_state_dict(adam.state_dict())
    assert other.state[p64]["exp_avg"].dtype == runtime.float64
    assert other.state[p64]["step"].dtype == runtime.float32


def test_load_state_dict_rejects_a_different_group_layout():
    a, b = _leaf(1.0), _leaf(2.0)
    saved = runtime.optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups"):
        runtime.optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        runtime.optim.SGD([a], lr=0.1).load_state_dict(saved)


# ----- repr --------------------------------------------------------------------------------------

def test_repr_lists_each_group_options_sorted_as_pytorch_prints_them():
    sgd = runtime.optim.SGD([{"params": [_leaf(1.0)]}, {"params": [_leaf(2.0)], "lr": 0.5}],
                            lr=0.1, momentum=0.9)
    assert repr(sgd) == """SGD (
Parameter Group 0
    dampening: 0
    differentiable: False
    foreach: None
    fused: None
    lr: 0.1
    maximize: False
    momentum: 0.9
    nesterov: False
    weight_decay: 0

Parameter Group 1
    dampening: 0
    differentiable: False
    foreach: None
    fused: None
    lr: 0.5
    maximize: False
    momentum: 0.9
    nesterov: False
    weight_decay: 0
)"""


@pytest.mark.parametrize("name, options", [("SGD", {"lr": 0.1, "momentum": 0.9}),
                                           ("Adam", {"betas": (0.8, 0.99)}),
                                           ("AdamW", {"amsgrad": True})])
def test_repr_and_saved_groups_equal_torch(name, options):
    torch = pytest.importorskip("torch")
    ours = getattr(runtime.optim, name)([_leaf(1.0), _leaf(2.0)], **options)
    theirs = getattr(torch.optim, name)([torch.ones(1, requires_grad=True),
                                         torch.ones(1, requires_grad=True)], **options)
    assert repr(ours) == repr(theirs)
    assert ours.state_dict()["param_groups"] == theirs.state_dict()["param_groups"]


def test_param_groups_with_different_learning_rates_equal_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    initial = [rng.standard_normal(3) for _ in range(2)]
    ours = [runtime.tensor(a, requires_grad=True) for a in initial]
    theirs = [torch.tensor(a, requires_grad=True) for a in initial]

    def groups(params):
        return [{"params": [params[0]], "lr": 0.3, "betas": (0.5, 0.9)}, {"params": [params[1]]}]

    our_adam = runtime.optim.Adam(groups(ours), lr=0.01)
    their_adam = torch.optim.Adam(groups(theirs), lr=0.01)
    for _ in range(20):
        for p, q in zip(ours, theirs):
            g = rng.standard_normal(3)
            p.grad, q.grad = runtime.tensor(g), torch.tensor(g)
        our_adam.step()
        their_adam.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=0, atol=1e-12)


def test_an_optimizer_written_as_one_update_function_gets_step():
    """A subclass gives `update` (a function of tensors), `state_tensors` and `step_scalars`;
    `step()` runs the update under no_grad and writes the results in place."""

    class SignDescent(runtime.optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, {"lr": lr})

        def state_tensors(self, param, group):
            previous = self.state.get(param, {}).get("previous")
            return {"previous": runtime.zeros_like(param) if previous is None else previous}

        def step_scalars(self, param, group):
            return {"lr": group["lr"]}

        def update(self, param, grad, state, scalars, group):
            return param - scalars["lr"] * grad / grad.abs(), {"previous": param.clone()}

    p = _leaf(1.0)
    p.grad = runtime.tensor([-3.0], dtype=runtime.float64)
    optimizer = SignDescent([p])
    version = p._version.value
    optimizer.step()
    assert p.item() == pytest.approx(1.1)
    assert p._version.value > version and p.grad_fn is None and p.requires_grad
    assert optimizer.state_dict()["state"][0]["previous"].item() == 1.0
