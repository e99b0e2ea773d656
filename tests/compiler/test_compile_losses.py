"""compiler.compile with the options of the class-index losses (label_smoothing, class weights,
ignore_index, reductions): the loss applied eagerly to a compiled model's output, and the loss
inside the compiled model, give eager mode's loss and gradients in float64."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import runtime
from compiler import compile
from runtime import nn

CLASS_WEIGHTS = [0.5, 2.0, 1.0, 3.0, 1.5]
LOSS_OPTIONS = {
    "label_smoothing": dict(label_smoothing=0.1),
    "weight": dict(weight=True),
    "weight_sum": dict(weight=True, reduction="sum"),
    "weight_label_smoothing_ignore_2": dict(weight=True, label_smoothing=0.3, ignore_index=2),
    "label_smoothing_sum": dict(label_smoothing=0.2, reduction="sum"),
}


def cross_entropy(options: dict) -> nn.CrossEntropyLoss:
    options = dict(options)
    if options.pop("weight", False):
        options["weight"] = runtime.tensor(CLASS_WEIGHTS, dtype=runtime.float64)
    return nn.CrossEntropyLoss(**options)


class WithLoss(nn.Module):
    """A classifier whose forward returns its loss."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 5))
        self.loss = loss

    def forward(self, x, target):
        return self.loss(self.net(x), target)


def data():
    runtime.manual_seed(4)
    return (runtime.randn(7, 8, dtype=runtime.float64), runtime.tensor([0, 1, 2, 3, 4, 2, 1]))


def assert_same_loss_and_gradients(compiled_loss, eager_loss, compiled_model, eager_model):
    assert compiled_loss.item() == pytest.approx(eager_loss.item(), rel=1e-13)
    for (name, a), b in zip(compiled_model.named_parameters(), eager_model.parameters()):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-15,
                                   err_msg=name)


@pytest.mark.parametrize("options", sorted(LOSS_OPTIONS))
def test_an_eager_loss_on_a_compiled_model(options: str) -> None:
    model = WithLoss(cross_entropy(LOSS_OPTIONS[options])).double()
    twin = copy.deepcopy(model)
    x, target = data()
    fast = compile(model.net, (x,))
    compiled_loss = model.loss(fast(x), target)
    compiled_loss.backward()
    eager_loss = twin(x, target)
    eager_loss.backward()
    assert_same_loss_and_gradients(compiled_loss, eager_loss, model, twin)


@pytest.mark.parametrize("options", sorted(LOSS_OPTIONS))
def test_a_loss_inside_the_compiled_model(options: str) -> None:
    model = WithLoss(cross_entropy(LOSS_OPTIONS[options])).double()
    twin = copy.deepcopy(model)
    x, target = data()
    compiled_loss = compile(model, (x, target))(x, target)
    compiled_loss.backward()
    eager_loss = twin(x, target)
    eager_loss.backward()
    assert_same_loss_and_gradients(compiled_loss, eager_loss, model, twin)
