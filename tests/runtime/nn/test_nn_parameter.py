"""nn.Parameter (runtime/nn/parameter.py)."""

import copy
import pickle

import pytest

import runtime
from runtime import nn


def test_parameter_shares_memory_with_its_data_and_requires_grad():
    data = runtime.tensor([1.0, 2.0])
    p = nn.Parameter(data)
    assert isinstance(p, runtime.Tensor) and p.requires_grad and p.is_leaf
    data[0] = 5.0
    assert p[0].item() == 5.0
    assert not nn.Parameter(data, requires_grad=False).requires_grad


def test_parameter_prints_as_pytorch_prints_it():
    assert repr(nn.Parameter(runtime.tensor([1.0, 2.0]))) == (
        "Parameter containing:\ntensor([1., 2.], requires_grad=True)")
    assert repr(nn.Parameter(runtime.tensor([1.0]), requires_grad=False)) == (
        "Parameter containing:\ntensor([1.])")
    assert repr(nn.Parameter()) == "Parameter containing:\ntensor([], requires_grad=True)"


def test_parameter_repr_equals_torch():
    torch = pytest.importorskip("torch")
    values = [[0.5, -1.25], [3.0, 4.0]]
    assert repr(nn.Parameter(runtime.tensor(values))) == repr(
        torch.nn.Parameter(torch.tensor(values)))


def test_parameter_of_a_computed_tensor_is_a_new_leaf():
    x = runtime.ones(2, requires_grad=True)
    p = nn.Parameter(x * 2)
    assert p.is_leaf and p.grad_fn is None and p.tolist() == [2.0, 2.0]


def test_results_of_operations_are_plain_tensors():
    p = nn.Parameter(runtime.ones(3))
    for result in (p * 2, p[:2], p.detach()):
        assert type(result) is runtime.Tensor


def test_integer_data_cannot_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(runtime.tensor([1, 2]))
    assert nn.Parameter(runtime.tensor([1, 2]), requires_grad=False).dtype == runtime.int64
    with pytest.raises(TypeError, match="expected a Tensor"):
        nn.Parameter([1.0, 2.0])


def test_deep_copy_and_pickle_give_independent_parameters():
    p = nn.Parameter(runtime.tensor([1.0, 2.0]))
    (p * 3).sum().backward()
    for clone in (copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert isinstance(clone, nn.Parameter) and clone.requires_grad
        assert clone.tolist() == [1.0, 2.0]
        clone.detach()[0] = 9.0
        assert p[0].item() == 1.0
    assert copy.deepcopy(p).grad.tolist() == [3.0, 3.0]
