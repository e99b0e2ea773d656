"""nn.Conv1d / nn.Conv2d and F.conv1d / F.conv2d against PyTorch: outputs and every gradient with
the same weights (float64, tight), first and second derivatives, the initialisation's bounds, the
printed form, and PyTorch's errors."""

import math

import numpy as np
import pytest

import runtime
import runtime.nn as nn
import runtime.nn.functional as F

torch = pytest.importorskip("torch")

CASES = [
    # (input shape, weight shape, keyword arguments)
    ((2, 1, 12, 12), (6, 1, 5, 5), {}),
    ((2, 4, 9, 8), (6, 2, 3, 2), {"stride": (2, 1), "padding": 1, "dilation": (1, 2),
                                   "groups": 2}),
    ((1, 3, 7, 6), (4, 3, 4, 3), {"padding": "same"}),
    ((1, 3, 7, 6), (4, 3, 3, 3), {"padding": "valid", "stride": 2}),
    ((3, 6, 5), (6, 1, 3), {"groups": 6, "padding": 1}),
    ((3, 5, 11), (4, 5, 3), {"stride": 2, "padding": 2, "dilation": 2}),
    ((5, 11), (4, 5, 2), {"padding": "same"}),  # unbatched
    ((3, 8, 8), (2, 3, 3, 3), {}),  # unbatched
]


def pair(shape, rng, requires_grad=True):
    data = rng.standard_normal(shape)
    return (runtime.tensor(data, requires_grad=requires_grad),
            torch.tensor(data, requires_grad=requires_grad))


def close(ours, theirs, tol=1e-12):
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_functional_conv_and_its_gradients_match_torch(x_shape, w_shape, kwargs, with_bias):
    rng = np.random.default_rng(0)
    (x, tx), (w, tw) = pair(x_shape, rng), pair(w_shape, rng)
    b, tb = pair(w_shape[0], rng) if with_bias else (None, None)
    name = f"conv{len(w_shape) - 2}d"
    out = getattr(F, name)(x, w, b, **kwargs)
    expected = getattr(torch.nn.functional, name)(tx, tw, tb, **kwargs)
    close(out, expected)
    if len(x_shape) == len(w_shape):  # batched
        assert out.grad_fn.name() == expected.grad_fn.name() == "ConvolutionBackward0"
    g = rng.standard_normal(tuple(expected.shape))
    out.backward(runtime.tensor(g))
    expected.backward(torch.tensor(g))
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        if ours is not None:
            close(ours.grad, theirs.grad)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_second_derivatives_match_torch():
    rng = np.random.default_rng(1)
    (x, tx), (w, tw) = pair((2, 4, 7, 6), rng), pair((6, 2, 3, 2), rng)
    kwargs = {"stride": 2, "padding": 1, "groups": 2}
    results = []
    for lib, a, b in ((runtime, x, w), (torch, tx, tw)):
        out = lib.nn.functional.conv2d(a, b, **kwargs)
        gx, gw = lib.autograd.grad((out ** 2).sum(), (a, b), create_graph=True)
        results.append(lib.autograd.grad((gx ** 3).sum() + (gw * gw).sum(), (a, b)))
    for ours, theirs in zip(*results):
        close(ours, theirs, 1e-10)


def test_module_repr_matches_torch():
    for args, kwargs in (((1, 6, 5), {}), ((3, 6, (5, 3)), {"stride": 2, "padding": 1}),
                         ((4, 8, 3), {"padding": "same", "dilation": 2, "groups": 2,
                                      "bias": False})):
        assert repr(nn.Conv2d(*args, **kwargs)) == repr(torch.nn.Conv2d(*args, **kwargs))
    for args, kwargs in (((1, 6, 5), {}), ((3, 6, 3), {"stride": 2, "padding": 1})):
        assert repr(nn.Conv1d(*args, **kwargs)) == repr(torch.nn.Conv1d(*args, **kwargs))


def test_module_forward_and_parameters_match_torch():
    ours, theirs = nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(3, 4, 3, padding=1)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.detach().numpy()))
        theirs.bias.copy_(torch.from_numpy(ours.bias.detach().numpy()))
    data = np.random.default_rng(2).standard_normal((2, 3, 5, 5)).astype(np.float32)
    close(ours(runtime.tensor(data)), theirs(torch.tensor(data)), 1e-5)


def test_default_initialisation_is_kaiming_uniform_with_a_sqrt5():
    runtime.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3)
    bound = 1 / math.sqrt(16 * 9)  # gain sqrt(2 / 6) * sqrt(3 / fan_in) = 1 / sqrt(fan_in)
    for p in (conv.weight, conv.bias):
        values = p.detach().numpy()
        assert values.min() >= -bound and values.max() <= bound
        assert values.max() > 0.9 * bound and values.min() < -0.9 * bound


def test_errors_match_torch():
    x = runtime.randn(1, 3, 8, 8)
    with pytest.raises(RuntimeError, match="expected input\\[1, 3, 8, 8\\] to have 1 channels"):
        F.conv2d(x, runtime.randn(6, 1, 5, 5))
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input"):
        F.conv2d(x, runtime.randn(6, 3, 9, 9))
    with pytest.raises(RuntimeError, match="not supported for strided convolutions"):
        F.conv2d(x, runtime.randn(6, 3, 3, 3), padding="same", stride=2)
    with pytest.raises(RuntimeError, match="Expected 3D \\(unbatched\\) or 4D \\(batched\\)"):
        F.conv2d(runtime.randn(3, 8), runtime.randn(6, 3, 3, 3))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="Invalid padding string 'foo'"):
        nn.Conv2d(3, 4, 3, padding="foo")
