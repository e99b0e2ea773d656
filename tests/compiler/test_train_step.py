"""compiler.compile_train_step: one native call per step equals the eager loop step for step."""

from __future__ import annotations

import numpy as np
import pytest

import compiler
import runtime as torch
from runtime import nn


class TutorialMLP(nn.Module):
    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 10))

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


OPTIMIZERS = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "sgd_momentum_nesterov_decay": lambda ps: torch.optim.SGD(
        ps, lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True),
    "sgd_momentum_dampening": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3, weight_decay=1e-4),
    "adamw_amsgrad": lambda ps: torch.optim.AdamW(ps, lr=1e-3, amsgrad=True),
}


def _twins(dtype):
    torch.manual_seed(0)
    compiled_model, eager_model = TutorialMLP(), TutorialMLP()
    compiled_model.to(dtype)
    eager_model.to(dtype)
    eager_model.load_state_dict(compiled_model.state_dict())
    return compiled_model, eager_model


def _eager_step(model, loss_fn, optimizer, x, y):
    """One eager (symgrad or PyTorch) training step on (x, y), returning the loss as a float."""
    def step() -> float:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def _steps_agree(step, x, y, reference_step, steps: int) -> None:
    """The compiled step's loss equals the reference step's at each of `steps` steps."""
    for _ in range(steps):
        compiled_loss = step(x, y)
        assert compiled_loss.item() == pytest.approx(reference_step(), rel=1e-12)


def _parameters_agree(model, reference, rtol: float, atol: float) -> None:
    for (n, a), b in zip(model.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=n)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_compiled_step_equals_eager_steps_in_float64(name):
    compiled_model, eager_model = _twins(torch.float64)
    make = OPTIMIZERS[name]
    compiled_opt, eager_opt = make(compiled_model.parameters()), make(eager_model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(16, 1, 28, 28, dtype=torch.float64)
    y = torch.randint(0, 10, (16,))
    step = compiler.compile_train_step(compiled_model, loss_fn, compiled_opt, example_inputs=(x, y))
    _steps_agree(step, x, y, _eager_step(eager_model, loss_fn, eager_opt, x, y), steps=4)
    _parameters_agree(compiled_model, eager_model, rtol=1e-9, atol=1e-12)


def test_state_is_shared_with_the_eager_optimizer():
    """After compiled Adam steps, the eager optimizer continues from the same state."""
    compiled_model, eager_model = _twins(torch.float64)
    compiled_opt = torch.optim.Adam(compiled_model.parameters(), lr=1e-3)
    eager_opt = torch.optim.Adam(eager_model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(8, 1, 28, 28, dtype=torch.float64)
    y = torch.randint(0, 10, (8,))
    step = compiler.compile_train_step(compiled_model, loss_fn, compiled_opt, example_inputs=(x, y))
    for _ in range(2):
        step(x, y)
        eager_opt.zero_grad()
        loss_fn(eager_model(x), y).backward()
        eager_opt.step()
    compiled_opt.zero_grad()  # a third step, eagerly, on the compiled side
    loss_fn(compiled_model(x), y).backward()
    compiled_opt.step()
    eager_opt.zero_grad()
    loss_fn(eager_model(x), y).backward()
    eager_opt.step()
    first = next(iter(compiled_model.parameters()))
    assert float(compiled_opt.state[first]["step"]) == 3.0
    for a, b in zip(compiled_model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_learning_rate_is_read_at_every_call_and_other_options_are_checked():
    model = TutorialMLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    step = compiler.compile_train_step(model, nn.CrossEntropyLoss(), opt, example_inputs=(x, y))
    before = [p.detach().numpy().copy() for p in model.parameters()]
    opt.param_groups[0]["lr"] = 0.0
    step(x, y)
    for a, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(a, p.detach().numpy())
    opt.param_groups[0]["weight_decay"] = 0.5
    with pytest.raises(RuntimeError, match="weight_decay changed"):
        step(x, y)


def test_trains_on_a_separable_problem_with_any_batch_size():
    torch.manual_seed(1)
    centers = torch.randn(10, 1, 28, 28) * 2
    labels = torch.randint(0, 10, (512,))
    images = centers[labels] + torch.randn(512, 1, 28, 28) * 0.5
    model = TutorialMLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    step = compiler.compile_train_step(model, loss_fn, opt,
                                       example_inputs=(images[:64], labels[:64]))
    first = step(images[:64], labels[:64]).item()
    for _epoch in range(3):
        for start in range(0, 512, 50):  # 50 and a last batch of 12: the batch size is symbolic
            last = step(images[start:start + 50], labels[start:start + 50]).item()
    with torch.no_grad():
        accuracy = (model(images).argmax(1) == labels).float().mean().item()
    assert last < first / 4
    assert accuracy > 0.95


def test_rejects_what_it_cannot_compile():
    model = TutorialMLP()
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    with pytest.raises(ValueError, match="scalar"):
        compiler.compile_train_step(model, nn.CrossEntropyLoss(reduction="none"),
                                    torch.optim.SGD(model.parameters(), lr=0.1), (x, y))
    other = TutorialMLP()
    with pytest.raises(ValueError, match="exactly the model's parameters"):
        compiler.compile_train_step(model, nn.CrossEntropyLoss(),
                                    torch.optim.SGD(other.parameters(), lr=0.1), (x, y))


@pytest.mark.parametrize("loss_fn", [
    nn.CrossEntropyLoss(), nn.CrossEntropyLoss(ignore_index=3),
    lambda out, target: nn.functional.nll_loss(torch.log_softmax(out, 1), target, ignore_index=3),
], ids=["cross_entropy", "cross_entropy_ignore_3", "nll_loss_ignore_3"])
def test_labels_out_of_range_raise_as_in_eager_mode_and_change_nothing(loss_fn):
    torch.manual_seed(2)
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(6, 4)
    step = compiler.compile_train_step(model, loss_fn, opt,
                                       example_inputs=(x, torch.tensor([0, 1, 2, 0, 1, 2])))
    before = [p.detach().numpy().copy() for p in model.parameters()]
    ignored = getattr(loss_fn, "ignore_index", 3)
    for bad in (3, 10, -1, -100):
        if bad == ignored:
            continue
        target = torch.tensor([0, 1, bad, 0, 1, 2])
        with pytest.raises(IndexError, match=f"^Target {bad} is out of bounds.$"):
            loss_fn(model(x), target)  # eager mode's error ...
        with pytest.raises(IndexError, match=f"^Target {bad} is out of bounds.$"):
            step(x, target)  # ... is the compiled step's, raised before the parameters change
        for p, old in zip(model.parameters(), before):
            np.testing.assert_array_equal(p.detach().numpy(), old)
    target = torch.tensor([0, 1, ignored, 0, 1, 2])  # the ignored label is allowed
    eager = loss_fn(model(x), target).item()
    assert step(x, target).item() == pytest.approx(eager, rel=1e-6)


CLASS_WEIGHTS = [0.5, 2.0, 1.0, 3.0, 1.5]

# name -> make(F, weight) -> loss_fn(logits, target); F is runtime's or PyTorch's functional
LOSS_OPTIONS = {
    "cross_entropy_label_smoothing":
        lambda F, w: lambda o, t: F.cross_entropy(o, t, label_smoothing=0.1),
    "cross_entropy_label_smoothing_sum":
        lambda F, w: lambda o, t: F.cross_entropy(o, t, label_smoothing=0.1, reduction="sum"),
    "cross_entropy_weight":
        lambda F, w: lambda o, t: F.cross_entropy(o, t, weight=w),
    "cross_entropy_weight_sum":
        lambda F, w: lambda o, t: F.cross_entropy(o, t, weight=w, reduction="sum"),
    "cross_entropy_weight_label_smoothing_ignore_2":
        lambda F, w: lambda o, t: F.cross_entropy(o, t, weight=w, label_smoothing=0.3,
                                                  ignore_index=2),
    "cross_entropy_none_then_mean":
        lambda F, w: lambda o, t: F.cross_entropy(o, t, reduction="none",
                                                  label_smoothing=0.2).mean(),
    "cross_entropy_weight_none_then_sum":
        lambda F, w: lambda o, t: F.cross_entropy(o, t, weight=w, reduction="none").sum(),
    "nll_weight":
        lambda F, w: lambda o, t: F.nll_loss(F.log_softmax(o, 1), t, weight=w),
    "nll_weight_sum_ignore_1":
        lambda F, w: lambda o, t: F.nll_loss(F.log_softmax(o, 1), t, weight=w, ignore_index=1,
                                             reduction="sum"),
    "nll_none_then_sum":
        lambda F, w: lambda o, t: F.nll_loss(F.log_softmax(o, 1), t, reduction="none").sum(),
}


def _small_twins():
    torch.manual_seed(3)
    compiled_model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 5))
    compiled_model.to(torch.float64)
    eager_model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 5))
    eager_model.to(torch.float64)
    eager_model.load_state_dict(compiled_model.state_dict())
    x = torch.randn(7, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 4, 2, 1])
    return compiled_model, eager_model, x, y


@pytest.mark.parametrize("name", sorted(LOSS_OPTIONS))
def test_loss_options_train_as_in_eager_mode_in_float64(name):
    """label_smoothing, class weights and reductions of cross_entropy and nll_loss: the compiled
    step's losses and parameters equal the eager loop's (label_smoothing failed verification,
    weight= failed to lower)."""
    compiled_model, eager_model, x, y = _small_twins()
    loss_fn = LOSS_OPTIONS[name](nn.functional, torch.tensor(CLASS_WEIGHTS, dtype=torch.float64))
    compiled_opt = torch.optim.SGD(compiled_model.parameters(), lr=0.1, momentum=0.9)
    eager_opt = torch.optim.SGD(eager_model.parameters(), lr=0.1, momentum=0.9)
    step = compiler.compile_train_step(compiled_model, loss_fn, compiled_opt, example_inputs=(x, y))
    _steps_agree(step, x, y, _eager_step(eager_model, loss_fn, eager_opt, x, y), steps=3)
    _parameters_agree(compiled_model, eager_model, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(LOSS_OPTIONS))
def test_loss_options_train_as_pytorch_does(name):
    pt = pytest.importorskip("torch")
    compiled_model, _, x, y = _small_twins()
    reference = pt.nn.Sequential(pt.nn.Linear(8, 16), pt.nn.Tanh(), pt.nn.Linear(16, 5)).double()
    reference.load_state_dict({k: pt.from_numpy(v.detach().numpy().copy())
                               for k, v in compiled_model.state_dict().items()})
    weights = np.array(CLASS_WEIGHTS)
    loss_fn = LOSS_OPTIONS[name](nn.functional, torch.tensor(weights))
    reference_loss_fn = LOSS_OPTIONS[name](pt.nn.functional, pt.from_numpy(weights))
    opt = torch.optim.SGD(compiled_model.parameters(), lr=0.1, momentum=0.9)
    reference_opt = pt.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    step = compiler.compile_train_step(compiled_model, loss_fn, opt, example_inputs=(x, y))
    rx, ry = pt.from_numpy(x.numpy()), pt.from_numpy(y.numpy())
    reference_step = _eager_step(reference, reference_loss_fn, reference_opt, rx, ry)
    _steps_agree(step, x, y, reference_step, steps=3)
    _parameters_agree(compiled_model, reference, rtol=1e-12, atol=1e-14)


# ----- what the step reads at each call ---------------------------------------------------------

RESUMABLE = {
    "sgd_momentum_dampening": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.2),
    "adam_amsgrad": lambda ps: torch.optim.Adam(ps, lr=1e-2, amsgrad=True),
}


@pytest.mark.parametrize("name", sorted(RESUMABLE))
def test_resuming_from_a_checkpoint_after_compiling_continues_as_eager_mode(name):
    """optimizer.load_state_dict() after compile_train_step: the compiled step reads the loaded
    momentum buffers / moments and step counts, as eager optimizer.step() does."""
    import copy

    make = RESUMABLE[name]
    compiled_model, eager_model, x, y = _small_twins()
    loss_fn = nn.CrossEntropyLoss()
    eager_opt = make(eager_model.parameters())
    eager_step = _eager_step(eager_model, loss_fn, eager_opt, x, y)
    for _ in range(3):
        eager_step()
    checkpoint = copy.deepcopy({"model": eager_model.state_dict(),
                                "optimizer": eager_opt.state_dict()})
    compiled_opt = make(compiled_model.parameters())
    step = compiler.compile_train_step(compiled_model, loss_fn, compiled_opt, (x, y))
    step(x, y)  # state of its own, which the checkpoint must replace
    compiled_model.load_state_dict(checkpoint["model"])
    compiled_opt.load_state_dict(checkpoint["optimizer"])
    _steps_agree(step, x, y, eager_step, steps=3)
    _parameters_agree(compiled_model, eager_model, rtol=1e-12, atol=1e-14)
    assert compiled_opt.state_dict()["state"].keys() == eager_opt.state_dict()["state"].keys()
    for ours, theirs in zip(compiled_opt.state_dict()["state"].values(),
                            eager_opt.state_dict()["state"].values()):
        assert ours.keys() == theirs.keys()  # PyTorch's names only, nothing private
        for key in ours:
            np.testing.assert_allclose(ours[key].numpy(), theirs[key].numpy(), rtol=1e-12,
                                       atol=1e-14, err_msg=key)


def test_state_is_created_by_the_first_step_as_in_eager_mode():
    compiled_model, _, x, y = _small_twins()
    opt = torch.optim.SGD(compiled_model.parameters(), lr=0.1, momentum=0.9)
    step = compiler.compile_train_step(compiled_model, nn.CrossEntropyLoss(), opt, (x, y))
    assert opt.state_dict()["state"] == {}  # compiling adds no state
    step(x, y)
    assert [sorted(s) for s in opt.state_dict()["state"].values()] == [["momentum_buffer"]] * 4


def test_a_replaced_parameter_is_followed_once_the_optimizer_holds_it():
    compiled_model, eager_model, x, y = _small_twins()
    loss_fn = nn.CrossEntropyLoss()
    compiled_opt = torch.optim.SGD(compiled_model.parameters(), lr=0.1, momentum=0.9)
    eager_opt = torch.optim.SGD(eager_model.parameters(), lr=0.1, momentum=0.9)
    step = compiler.compile_train_step(compiled_model, loss_fn, compiled_opt, (x, y))
    _steps_agree(step, x, y, _eager_step(eager_model, loss_fn, eager_opt, x, y), steps=1)
    new_weight = torch.randn(5, 16, dtype=torch.float64)
    for model in (compiled_model, eager_model):
        model[2].weight = nn.Parameter(new_weight.clone())
    with pytest.raises(RuntimeError, match=r"parameter '2.weight' is not one the optimizer "
                                           r"holds \(was it replaced"):
        step(x, y)  # the old weight would be trained while the model uses the new one
    for model, opt in ((compiled_model, compiled_opt), (eager_model, eager_opt)):
        opt.param_groups[0]["params"][2] = model[2].weight
    _steps_agree(step, x, y, _eager_step(eager_model, loss_fn, eager_opt, x, y), steps=2)
    _parameters_agree(compiled_model, eager_model, rtol=1e-12, atol=1e-14)


def test_dropout_in_training_mode_is_a_compile_error_naming_the_layer():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(compiler.CompileError, match="dropout layer '1'"):
        compiler.compile_train_step(model, nn.CrossEntropyLoss(), opt,
                                    (torch.randn(2, 4), torch.tensor([0, 2])))


class NormalizedSGD(torch.optim.Optimizer):
    """A user's optimizer, written only as an update function of tensors."""

    def __init__(self, params, lr=0.05, eps=1e-3):
        super().__init__(params, {"lr": lr, "eps": eps})

    def step_scalars(self, param, group):
        return {"lr": group["lr"]}

    def update(self, param, grad, state, scalars, group):
        return param - scalars["lr"] * grad / (grad.abs() + group["eps"]), {}


def test_the_compiled_step_traces_the_optimizers_own_update_function():
    compiled_model, eager_model, x, y = _small_twins()
    loss_fn = nn.CrossEntropyLoss()
    compiled_opt = NormalizedSGD(compiled_model.parameters())
    eager_opt = NormalizedSGD(eager_model.parameters())
    step = compiler.compile_train_step(compiled_model, loss_fn, compiled_opt, (x, y))
    _steps_agree(step, x, y, _eager_step(eager_model, loss_fn, eager_opt, x, y), steps=3)
    _parameters_agree(compiled_model, eager_model, rtol=1e-12, atol=1e-14)
    assert any(n.op_name == "abs" or "Abs" in str(getattr(n.op, "expr", ""))
               for n in step.graph.nodes)


# ----- RMSprop and Adagrad ----------------------------------------------------------------------

ADAPTIVE_OPTIMIZERS = {
    "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=1e-2),
    "rmsprop_centered_momentum_decay": lambda ps: torch.optim.RMSprop(
        ps, lr=1e-2, alpha=0.9, momentum=0.8, centered=True, weight_decay=1e-3),
    "adagrad": lambda ps: torch.optim.Adagrad(ps, lr=0.1),
    "adagrad_lr_decay_initial_accumulator": lambda ps: torch.optim.Adagrad(
        ps, lr=0.1, lr_decay=0.05, initial_accumulator_value=0.1, weight_decay=1e-3),
}


@pytest.mark.parametrize("name", sorted(ADAPTIVE_OPTIMIZERS))
def test_rmsprop_and_adagrad_compiled_steps_equal_eager_steps_in_float64(name):
    compiled_model, eager_model, x, y = _small_twins()
    make = ADAPTIVE_OPTIMIZERS[name]
    compiled_opt, eager_opt = make(compiled_model.parameters()), make(eager_model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    step = compiler.compile_train_step(compiled_model, loss_fn, compiled_opt, (x, y))
    _steps_agree(step, x, y, _eager_step(eager_model, loss_fn, eager_opt, x, y), steps=4)
    _parameters_agree(compiled_model, eager_model, rtol=1e-12, atol=1e-14)
    for p, q in zip(compiled_model.parameters(), eager_model.parameters()):
        ours, theirs = compiled_opt.state[p], eager_opt.state[q]
        assert list(ours) == list(theirs)
        for key in ours:
            np.testing.assert_allclose(ours[key].numpy(), theirs[key].numpy(), rtol=1e-12,
                                       atol=1e-14, err_msg=key)


def test_adagrad_resumes_from_a_checkpoint_after_compiling():
    import copy

    compiled_model, eager_model, x, y = _small_twins()
    loss_fn = nn.CrossEntropyLoss()
    eager_opt = torch.optim.Adagrad(eager_model.parameters(), lr=0.1, lr_decay=0.1)
    eager_step = _eager_step(eager_model, loss_fn, eager_opt, x, y)
    for _ in range(3):
        eager_step()
    checkpoint = copy.deepcopy({"model": eager_model.state_dict(),
                                "optimizer": eager_opt.state_dict()})
    compiled_opt = torch.optim.Adagrad(compiled_model.parameters(), lr=0.1, lr_decay=0.1)
    step = compiler.compile_train_step(compiled_model, loss_fn, compiled_opt, (x, y))
    step(x, y)
    compiled_model.load_state_dict(checkpoint["model"])
    compiled_opt.load_state_dict(checkpoint["optimizer"])
    _steps_agree(step, x, y, eager_step, steps=2)  # the step count (lr_decay) is read too
    _parameters_agree(compiled_model, eager_model, rtol=1e-12, atol=1e-14)
