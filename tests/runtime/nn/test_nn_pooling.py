"""Max, average and adaptive pooling (functional and modules) against PyTorch: outputs, indices
and input gradients (float64, tight), second derivatives, printed forms."""

import numpy as np
import pytest

import runtime
import runtime.nn as nn
import runtime.nn.functional as F

torch = pytest.importorskip("torch")

CASES = [
    ("max_pool2d", (2, 3, 8, 8), (2,), {}),
    ("max_pool2d", (2, 3, 9, 7), (3,), {"stride": 2, "padding": 1, "ceil_mode": True,
                                        "return_indices": True}),
    ("max_pool2d", (2, 3, 9, 7), ((3, 2),), {"stride": (2, 1), "padding": 1, "dilation": 2,
                                             "return_indices": True}),
    ("max_pool2d", (3, 8, 8), (2,), {}),  # unbatched
    ("max_pool1d", (2, 3, 9), (3,), {"stride": 2, "padding": 1, "ceil_mode": True,
                                     "return_indices": True}),
    ("avg_pool2d", (2, 3, 8, 8), (2,), {}),
    ("avg_pool2d", (2, 3, 9, 7), (3,), {"stride": 2, "padding": 1, "ceil_mode": True}),
    ("avg_pool2d", (2, 3, 9, 7), (3,), {"stride": 2, "padding": 1, "ceil_mode": True,
                                        "count_include_pad": False}),
    ("avg_pool2d", (2, 3, 9, 7), ((3, 2),), {"stride": (2, 1), "padding": 1,
                                             "divisor_override": 5}),
    ("avg_pool1d", (2, 3, 9), (3,), {"stride": 2, "padding": 1, "count_include_pad": False}),
    ("adaptive_avg_pool2d", (2, 3, 9, 7), ((4, 3),), {}),
    ("adaptive_avg_pool2d", (2, 3, 8, 6), ((1, 1),), {}),
    ("adaptive_avg_pool2d", (2, 3, 8, 6), ((None, 4),), {}),
    ("adaptive_avg_pool1d", (2, 3, 9), (4,), {}),
    ("adaptive_max_pool2d", (2, 3, 9, 7), ((4, 3),), {"return_indices": True}),
    ("adaptive_max_pool1d", (2, 3, 9), (4,), {"return_indices": True}),
]


@pytest.mark.parametrize("name, shape, args, kwargs", CASES)
def test_functional_pooling_and_its_gradient_match_torch(name, shape, args, kwargs):
    rng = np.random.default_rng(0)
    data = rng.standard_normal(shape)
    x, tx = runtime.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    out, expected = getattr(F, name)(x, *args, **kwargs), \
        getattr(torch.nn.functional, name)(tx, *args, **kwargs)
    if kwargs.get("return_indices"):
        np.testing.assert_array_equal(out[1].numpy(), expected[1].numpy())
        assert out[1].dtype == runtime.int64
        out, expected = out[0], expected[0]
    assert tuple(out.shape) == tuple(expected.shape)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    g = rng.standard_normal(tuple(expected.shape))
    out.backward(runtime.tensor(g))
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_blitz_grad_fn_names_match_torch():
    x = runtime.randn(1, 6, 28, 28, requires_grad=True)
    assert F.max_pool2d(x, (2, 2)).grad_fn.name() == "MaxPool2DWithIndicesBackward0"
    assert F.avg_pool2d(x, 2).grad_fn.name() == "AvgPool2DBackward0"


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_second_derivative_matches_torch(name):
    data = np.random.default_rng(1).standard_normal((2, 2, 6, 5))
    results = []
    for lib in (runtime, torch):
        x = lib.tensor(data, requires_grad=True)
        out = getattr(lib.nn.functional, name)(x, 3, stride=2, padding=1)
        (gx,) = lib.autograd.grad((out ** 3).sum(), (x,), create_graph=True)
        results.append(lib.autograd.grad((gx ** 2).sum(), (x,))[0].numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda lib: lib.nn.MaxPool2d(2, 2),
    lambda lib: lib.nn.MaxPool2d((3, 2), stride=1, padding=1, ceil_mode=True),
    lambda lib: lib.nn.MaxPool1d(3),
    lambda lib: lib.nn.AvgPool2d(2),
    lambda lib: lib.nn.AvgPool2d(3, stride=2, padding=1),
    lambda lib: lib.nn.AvgPool1d(3),
    lambda lib: lib.nn.AdaptiveAvgPool2d((1, 1)),
    lambda lib: lib.nn.AdaptiveAvgPool2d(5),
    lambda lib: lib.nn.AdaptiveAvgPool1d(3),
    lambda lib: lib.nn.AdaptiveMaxPool2d((2, 3)),
])
def test_module_repr_and_forward_match_torch(make):
    ours, theirs = make(runtime), make(torch)
    assert repr(ours) == repr(theirs)
    data = np.random.default_rng(2).standard_normal(
        (2, 3, 7) if "1d" in repr(ours) else (2, 3, 7, 6)).astype(np.float32)
    np.testing.assert_allclose(ours(runtime.tensor(data)).numpy(),
                               theirs(torch.tensor(data)).numpy(), rtol=1e-6, atol=1e-6)


def test_errors_match_torch():
    x = runtime.randn(1, 1, 4, 4)
    with pytest.raises(RuntimeError, match="pad should be at most half of effective kernel"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(RuntimeError, match="Output size is too small"):
        F.max_pool2d(x, 5)
    assert isinstance(nn.MaxPool2d(2).stride, int)


def test_max_pool_picks_nan_as_torch_does():
    data = np.random.default_rng(3).standard_normal((1, 2, 6, 6))
    data[0, 0, 0, 0] = data[0, 0, 1, 1] = data[0, 1, 3, 2] = np.nan
    for kwargs in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1}):
        out, idx = F.max_pool2d(runtime.tensor(data), return_indices=True, **kwargs)
        expected, expected_idx = torch.nn.functional.max_pool2d(torch.tensor(data),
                                                                return_indices=True, **kwargs)
        np.testing.assert_array_equal(idx.numpy(), expected_idx.numpy())
        np.testing.assert_array_equal(out.numpy(), expected.numpy())  # NaN where torch has NaN
