"""PyTorch's "Automatic Differentiation with torch.autograd" tutorial, step by step, with
`runtime` in place of `torch`; where torch is installed, every value is compared with its run."""

import numpy as np
import pytest

import runtime
from runtime.ops.elementwise import binary_cross_entropy_with_logits


def tutorial(lib, bce):
    """The tutorial's code; `bce(z, y)` is its loss (the elementwise op, then a mean)."""
    lib.manual_seed(0)
    x = lib.ones(5)  # input tensor
    y = lib.zeros(3)  # expected output
    w = lib.tensor(np.linspace(-1.0, 1.0, 15).reshape(5, 3), dtype=lib.float32,
                   requires_grad=True)
    b = lib.tensor([0.1, -0.2, 0.3], requires_grad=True)
    z = lib.matmul(x, w) + b
    loss = bce(z, y)
    record = {"z": z, "loss": loss, "grad_fn z": z.grad_fn, "grad_fn loss": loss.grad_fn}
    loss.backward()
    record.update(w_grad=w.grad, b_grad=b.grad)
    try:
        loss.backward()
    except RuntimeError as error:
        record["second backward"] = str(error)
    with lib.no_grad():
        record["no_grad requires_grad"] = (lib.matmul(x, w) + b).requires_grad
    record["detach requires_grad"] = z.detach().requires_grad
    return record


def our_loss(z, y):
    return binary_cross_entropy_with_logits(z, y, 1.0).mean()


def test_tutorial_gradients_against_closed_form():
    record = tutorial(runtime, our_loss)
    x = np.ones(5)
    w = np.linspace(-1.0, 1.0, 15).reshape(5, 3)
    z = x @ w + np.array([0.1, -0.2, 0.3])
    sigmoid = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(record["loss"].item(), np.mean(np.log1p(np.exp(z))), rtol=1e-6)
    np.testing.assert_allclose(record["b_grad"].numpy(), sigmoid / 3, rtol=1e-6)
    np.testing.assert_allclose(record["w_grad"].numpy(), np.outer(x, sigmoid / 3), rtol=1e-6)


def test_tutorial_grad_fns_and_modes():
    record = tutorial(runtime, our_loss)
    assert record["grad_fn z"].name() == "AddBackward0"
    assert record["grad_fn loss"].name() == "MeanBackward0"
    assert f"{record['grad_fn z']}".startswith("<AddBackward0 object at 0x")
    assert record["no_grad requires_grad"] is False
    assert record["detach requires_grad"] is False
    assert "Trying to backward through the graph a second time" in record["second backward"]
    assert "retain_graph=True" in record["second backward"]


def test_tutorial_matches_torch():
    torch = pytest.importorskip("torch")
    ours = tutorial(runtime, our_loss)
    theirs = tutorial(torch, torch.nn.functional.binary_cross_entropy_with_logits)
    for key in ("z", "loss", "w_grad", "b_grad"):
        np.testing.assert_allclose(ours[key].detach().numpy(), theirs[key].detach().numpy(),
                                   rtol=1e-6, atol=1e-7)
        assert ours[key].dtype.name == str(theirs[key].dtype).removeprefix("torch.")
    assert ours["grad_fn z"].name() == type(theirs["grad_fn z"]).__name__
    assert ours["second backward"].split(". Saved")[0] == \
        theirs["second backward"].split(". Saved")[0]
    assert ours["no_grad requires_grad"] == theirs["no_grad requires_grad"]
