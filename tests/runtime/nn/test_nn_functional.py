"""Functions of runtime.nn.functional not covered with their modules: one_hot, linear without
bias, and that the functional forms are the modules' forward."""

import pytest

import runtime
from runtime import nn
from runtime.nn import functional as F


def test_one_hot():
    encoded = F.one_hot(runtime.tensor([0, 2, 1]))
    assert encoded.dtype == runtime.int64
    assert encoded.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert F.one_hot(runtime.tensor([[1], [0]]), num_classes=4).shape == (2, 1, 4)


@pytest.mark.parametrize("values, num_classes, message", [
    ([1, -1], -1, "Class values must be non-negative."),
    ([1, 3], 2, "Class values must be smaller than num_classes."),
])
def test_one_hot_refuses_bad_classes(values, num_classes, message):
    with pytest.raises(RuntimeError, match=message):
        F.one_hot(runtime.tensor(values), num_classes)
    with pytest.raises(RuntimeError, match="only applicable to index tensor of type LongTensor"):
        F.one_hot(runtime.tensor([1.0]))


def test_one_hot_equals_torch():
    torch = pytest.importorskip("torch")
    values = [[3, 0], [1, 1]]
    assert F.one_hot(runtime.tensor(values), 5).tolist() == torch.nn.functional.one_hot(
        torch.tensor(values), 5).tolist()


def test_linear_without_bias_is_a_matmul_with_the_transposed_weight():
    x, w = runtime.randn(2, 3), runtime.randn(4, 3)
    assert F.linear(x, w).tolist() == (x @ w.T).tolist()


def test_modules_and_functions_agree():
    x = runtime.randn(3, 4)
    target = runtime.tensor([0, 3, 1])
    assert nn.CrossEntropyLoss(label_smoothing=0.1)(x, target).item() == F.cross_entropy(
        x, target, label_smoothing=0.1).item()
    assert nn.LeakyReLU(0.3)(x).tolist() == F.leaky_relu(x, 0.3).tolist()
    assert nn.SiLU()(x).tolist() == F.silu(x).tolist()
