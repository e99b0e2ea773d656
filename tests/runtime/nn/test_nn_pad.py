"""F.pad in its four modes, and convolutions with padding_mode other than 'zeros', against
PyTorch: values and gradients (float64), negative padding, errors."""

import numpy as np
import pytest

import runtime
import runtime.nn.functional as F

torch = pytest.importorskip("torch")

CASES = [
    ((1, 3, 4), (1, 2), "reflect", None),
    ((1, 3, 4), (1, -1, 2, 0), "constant", 7.0),
    ((2, 3, 4, 5), (2, 1, 1, 3), "replicate", None),
    ((2, 3, 4, 5), (2, 1, 4, 3), "circular", None),
    ((2, 3, 4, 5), (1, 1, 1, 1), "reflect", None),
    ((2, 5), (3, 0), "constant", None),
]


@pytest.mark.parametrize("shape, pad, mode, value", CASES)
def test_pad_and_its_gradient_match_torch(shape, pad, mode, value):
    rng = np.random.default_rng(0)
    data = rng.standard_normal(shape)
    x, tx = runtime.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    out = F.pad(x, pad, mode=mode, value=value)
    expected = torch.nn.functional.pad(tx, pad, mode=mode, value=value)
    np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
    g = rng.standard_normal(tuple(expected.shape))
    out.backward(runtime.tensor(g))
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv_padding_modes_match_torch(mode):
    ours = runtime.nn.Conv2d(3, 4, 3, padding=1, padding_mode=mode).double()
    theirs = torch.nn.Conv2d(3, 4, 3, padding=1, padding_mode=mode).double()
    assert repr(ours) == repr(theirs)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    data = np.random.default_rng(1).standard_normal((2, 3, 6, 5))
    x, tx = runtime.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    out, expected = ours(x), theirs(tx)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), atol=1e-13)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), atol=1e-13)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), atol=1e-12)


def test_pad_errors_match_torch():
    x = runtime.ones(1, 3, 4)
    with pytest.raises(RuntimeError, match="Padding length must be divisible by 2"):
        F.pad(x, (1, 0, 0))
    with pytest.raises(RuntimeError, match="Padding size should be less than the corresponding"):
        F.pad(x, (4, 0), mode="reflect")
    with pytest.raises(RuntimeError, match="wrapping around more than once"):
        F.pad(x, (5, 0), mode="circular")
    with pytest.raises(NotImplementedError, match="Unrecognised padding mode foo"):
        F.pad(x, (1, 0), mode="foo")
