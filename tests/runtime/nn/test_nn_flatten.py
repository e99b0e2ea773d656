"""nn.Flatten and nn.Unflatten (runtime/nn/flatten.py)."""

import pytest

import runtime
from runtime import nn


def test_flatten_keeps_the_batch_dimension():
    assert nn.Flatten()(runtime.rand(3, 28, 28)).shape == (3, 784)
    assert nn.Flatten()(runtime.rand(1, 2, 3, 4)).shape == (1, 24)


def test_flatten_with_a_chosen_range_of_dims():
    x = runtime.rand(2, 3, 4, 5)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Flatten(start_dim=2)(x).shape == (2, 3, 20)
    assert nn.Flatten(1, -2)(x).shape == (2, 12, 5)


def test_flatten_keeps_values_and_gradient_path():
    x = runtime.arange(6.0).reshape(1, 2, 3).requires_grad_()
    y = nn.Flatten()(x)
    assert y.tolist() == [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]
    y.sum().backward()
    assert x.grad.shape == (1, 2, 3)


def test_flatten_of_unbatched_vector_is_an_index_error_as_in_pytorch():
    with pytest.raises(IndexError, match="Dimension out of range"):
        nn.Flatten()(runtime.rand(5))


def test_unflatten_inverts_flatten():
    x = runtime.rand(2, 12)
    y = nn.Unflatten(1, (3, 4))(x)
    assert y.shape == (2, 3, 4)
    assert nn.Flatten()(y).tolist() == x.tolist()
    assert nn.Unflatten(-1, (2, -1))(x).shape == (2, 2, 6)
    with pytest.raises(TypeError, match="unflattened_size must be tuple of ints"):
        nn.Unflatten(1, (3, 4.0))


def test_flatten_reprs_equal_torch():
    torch = pytest.importorskip("torch")
    assert repr(nn.Flatten()) == repr(torch.nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.Unflatten(1, (2, 5))) == repr(torch.nn.Unflatten(1, (2, 5)))
