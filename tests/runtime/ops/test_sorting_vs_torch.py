"""Sorting (runtime/ops/sorting.py) against PyTorch: sort, argsort, topk, kthvalue, and the
`return_types` pairs that max/min/sort/topk/kthvalue return: values, indices, gradients, node
names and printed forms."""

import numpy as np
import pytest

import runtime

torch = pytest.importorskip("torch")

DATA = [[3.0, 1.0, 2.0, 7.0], [0.0, 5.0, 4.0, -1.0], [2.5, 2.0, 9.0, 1.5]]  # no ties


def both(data=DATA, dtype="float64"):
    return (runtime.tensor(data, dtype=getattr(runtime, dtype), requires_grad=True),
            torch.tensor(data, dtype=getattr(torch, dtype), requires_grad=True))


def assert_matches(ours, theirs):
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy())


CALLS = {
    "sort()": lambda x: x.sort(),
    "sort(0, descending=True)": lambda x: x.sort(0, descending=True),
    "topk(2)": lambda x: x.topk(2),
    "topk(2, dim=0, largest=False)": lambda x: x.topk(2, dim=0, largest=False),
    "kthvalue(2)": lambda x: x.kthvalue(2),
    "kthvalue(3, 0, keepdim=True)": lambda x: x.kthvalue(3, 0, keepdim=True),
    "max(1)": lambda x: x.max(1),
    "min(0, keepdim=True)": lambda x: x.min(0, keepdim=True),
}


@pytest.mark.parametrize("call", CALLS)
def test_values_indices_and_gradient_match_torch(call):
    (x, tx), fn = both(), CALLS[call]
    ours, theirs = fn(x), fn(tx)
    assert type(ours).__name__ == type(theirs).__name__
    values, indices = ours
    assert_matches(values, theirs.values)
    assert_matches(indices, theirs.indices)
    assert ours.values is values and ours.indices is indices
    weights = np.arange(values.numel(), dtype=np.float64).reshape(tuple(values.shape))
    (values * runtime.tensor(weights)).sum().backward()
    (theirs.values * torch.tensor(weights)).sum().backward()
    assert_matches(x.grad, tx.grad)


@pytest.mark.parametrize("call", [c for c in CALLS if not c.startswith(("max", "min"))])
def test_node_names_match_torch(call):
    (x, tx), fn = both(), CALLS[call]
    assert fn(x).values.grad_fn.name() == fn(tx).values.grad_fn.name()


def test_return_types_print_as_torch_does_with_this_packages_name():
    x, tx = both([[1.0, 3.0], [5.0, 2.0]])
    with runtime.no_grad(), torch.no_grad():
        ours, theirs = repr(runtime.max(x, 1)), repr(torch.max(tx, 1))
    assert ours == theirs.replace("torch.", "runtime."), ours


@pytest.mark.parametrize("descending", [False, True])
def test_argsort_puts_nan_where_torch_does_and_keeps_ties_in_order(descending):
    data = [2.0, float("nan"), 1.0, 2.0, -1.0, 1.0]
    ours = runtime.argsort(runtime.tensor(data), descending=descending)
    theirs = torch.sort(torch.tensor(data), descending=descending, stable=True).indices
    assert ours.tolist() == theirs.tolist()


def test_integer_sort_and_errors_match_torch():
    data = [[5, -2, 7], [0, 0, 3]]
    for descending in (False, True):
        ours = runtime.sort(runtime.tensor(data), descending=descending, stable=True)
        theirs = torch.sort(torch.tensor(data), descending=descending, stable=True)
        assert ours.values.tolist() == theirs.values.tolist()
        assert ours.indices.tolist() == theirs.indices.tolist()
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        runtime.topk(runtime.tensor([1.0, 2.0]), 3)
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        torch.topk(torch.tensor([1.0, 2.0]), 3)
