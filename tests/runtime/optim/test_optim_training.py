"""Optimizers in a training loop: fitting a linear model made of plain tensors (no nn)."""

import pytest

import runtime


@pytest.mark.parametrize("make_optimizer", [
    lambda params: runtime.optim.SGD(params, lr=0.1, momentum=0.9),
    lambda params: runtime.optim.Adam(params, lr=0.1),
    lambda params: runtime.optim.AdamW(params, lr=0.1, weight_decay=1e-4),
], ids=["SGD", "Adam", "AdamW"])
def test_fitting_a_line_drives_the_loss_to_near_zero(make_optimizer):
    runtime.manual_seed(0)
    x = runtime.randn(64, 3)
    y = x @ runtime.tensor([[2.0], [-1.0], [0.5]]) + 0.3
    w = runtime.zeros(3, 1, requires_grad=True)
    b = runtime.zeros(1, requires_grad=True)
    optimizer = make_optimizer([w, b])
    losses = []
    for _ in range(200):
        optimizer.zero_grad()
        loss = ((x @ w + b - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0], f"loss went from {losses[0]} to {losses[-1]}"
    assert w.detach().numpy().ravel().tolist() == pytest.approx([2.0, -1.0, 0.5], abs=0.02)
