"""Reductions (runtime/ops/reduction.py and the composites in runtime/_functions.py) against
PyTorch: sum, mean, max, min, amax, amin, argmax, argmin, var, std, norm, all, any, gather, with
dim as an int, a negative int, a tuple or None, keepdim, 0-d and empty inputs, and gradients."""

import numpy as np
import pytest

import runtime

torch = pytest.importorskip("torch")


def both(data, dtype="float32", requires_grad=False):
    ours = runtime.tensor(data, dtype=getattr(runtime, dtype), requires_grad=requires_grad)
    theirs = torch.tensor(data, dtype=getattr(torch, dtype), requires_grad=requires_grad)
    return ours, theirs


def assert_matches(ours, theirs):
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), (ours.dtype, theirs.dtype)
    assert tuple(ours.shape) == tuple(theirs.shape)
    rtol = {"float64": 1e-12, "float32": 1e-5}.get(ours.dtype.name, 0)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol,
                               atol=rtol, equal_nan=True)


def lib(t):
    return runtime if isinstance(t, runtime.Tensor) else torch


DATA = np.arange(24, dtype=np.float64).reshape(2, 3, 4) % 7 - 3  # has ties
DIMS = [None, 0, 1, -1, 2, (0, 2), (-1, 1), (0, 1, 2)]


# torch's sum(keepdim=...) needs a dim: no dim is tried without keepdim only
DIMS_AND_KEEPDIM = [(None, False)] + [(d, k) for d in DIMS[1:] for k in (False, True)]


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin"])
@pytest.mark.parametrize("dim, keepdim", DIMS_AND_KEEPDIM)
def test_reduction_over_dims_matches_torch(name, dim, keepdim):
    x, tx = both(DATA, "float64", requires_grad=True)
    if dim is None:
        out, tout = getattr(x, name)(), getattr(tx, name)()
    else:
        out, tout = getattr(x, name)(dim, keepdim=keepdim), getattr(tx, name)(dim, keepdim=keepdim)
    assert_matches(out, tout)
    weights = np.random.default_rng(0).standard_normal(tuple(tout.shape))
    (out * runtime.tensor(weights)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    assert_matches(x.grad, tx.grad)  # ties share the gradient of amax/amin equally


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool", "float32"])
def test_sum_of_integers_and_bools_is_int64_like_torch(dtype):
    x, tx = both([[1, 0, 1], [1, 1, 0]], dtype)
    assert_matches(x.sum(), tx.sum())
    assert_matches(x.sum(1), tx.sum(1))
    assert_matches(runtime.sum(x, 0, keepdim=True), torch.sum(tx, 0, keepdim=True))


def test_sum_and_mean_with_a_dtype():
    x, tx = both([[1, 2], [3, 4]], "int64")
    assert_matches(x.sum(dtype=runtime.float64), tx.sum(dtype=torch.float64))
    assert_matches(x.mean(dtype=runtime.float32), tx.mean(dtype=torch.float32))


def test_mean_of_integers_is_refused_like_torch():
    with pytest.raises(RuntimeError) as ours:
        runtime.arange(3).mean()
    with pytest.raises(RuntimeError) as theirs:
        torch.arange(3).mean()
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "argmax", "max", "softmax"])
@pytest.mark.parametrize("dim", [0, -1])
def test_reducing_a_0d_tensor_over_dim_0_or_minus_1(name, dim):
    x, tx = both(3.5, "float64")
    out, tout = getattr(x, name)(dim), getattr(tx, name)(dim)
    if name == "max":
        assert_matches(out.values, tout.values)
        assert_matches(out.indices, tout.indices)
    else:
        assert_matches(out, tout)


def test_reductions_of_empty_tensors_match_torch():
    x, tx = both(np.zeros((0, 3)), "float32")
    assert_matches(x.sum(0), tx.sum(0))
    assert_matches(x.sum(), tx.sum())
    assert_matches(x.mean(0), tx.mean(0))  # NaN: the mean of nothing
    assert_matches(x.amax(1), tx.amax(1))
    for fn in (lambda t: t.amax(0), lambda t: t.max(), lambda t: t.argmax(0)):
        with pytest.raises((IndexError, RuntimeError)):
            fn(tx)
        with pytest.raises((IndexError, RuntimeError)):
            fn(x)


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_and_min_along_a_dim_return_values_and_indices(name, dim, keepdim):
    x, tx = both(DATA[0], "float64", requires_grad=True)
    out, tout = getattr(x, name)(dim, keepdim), getattr(tx, name)(dim, keepdim)
    values, indices = out  # a named tuple, unpacks like PyTorch's
    assert out.values is values and out.indices is indices
    assert_matches(values, tout.values)
    assert_matches(indices, tout.indices)
    values.sum().backward()
    tout.values.sum().backward()
    assert_matches(x.grad, tx.grad)  # the whole gradient goes to the chosen index


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_and_min_of_all_elements_share_the_gradient_between_ties(name):
    x, tx = both([[1.0, 5.0, 5.0], [-2.0, 5.0, -2.0]], "float64", requires_grad=True)
    getattr(x, name)().backward()
    getattr(tx, name)().backward()
    assert_matches(x.grad, tx.grad)


def test_max_and_min_of_two_tensors_are_maximum_and_minimum():
    x, tx = both([1.0, 5.0])
    y, ty = both([3.0, 2.0])
    assert_matches(runtime.max(x, y), torch.max(tx, ty))
    assert_matches(x.min(y), tx.min(ty))


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_argmax_and_argmin_pick_the_first_extremum_like_torch(name, dim, keepdim):
    x, tx = both(DATA[1])
    assert_matches(getattr(x, name)(dim, keepdim=keepdim), getattr(tx, name)(dim, keepdim=keepdim))
    assert_matches(getattr(runtime, name)(x, dim), getattr(torch, name)(tx, dim))


def test_argmax_and_max_of_integer_tensors():
    x, tx = both([[3, 9, 9], [7, 1, 2]], "int64")
    assert_matches(x.argmax(1), tx.argmax(1))
    assert_matches(x.max(), tx.max())
    assert_matches(x.max(0).values, tx.max(0).values)


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("correction", [0, 1])
def test_var_and_std_match_torch(name, dim, correction):
    x, tx = both(DATA[0], "float64", requires_grad=True)
    out = getattr(x, name)(dim, correction=correction)
    tout = getattr(tx, name)(dim, correction=correction)
    assert_matches(out, tout)
    out.sum().backward()
    tout.sum().backward()
    assert_matches(x.grad, tx.grad)
    assert_matches(getattr(x, name)(dim, unbiased=False), getattr(tx, name)(dim, unbiased=False))
    assert_matches(getattr(x, name)(dim, keepdim=True), getattr(tx, name)(dim, keepdim=True))


def test_norm_matches_torch():
    x, tx = both(DATA[0], "float64", requires_grad=True)
    assert_matches(x.norm(), tx.norm())
    assert_matches(runtime.norm(x, dim=1), torch.norm(tx, dim=1))
    x.norm().backward()
    tx.norm().backward()
    assert_matches(x.grad, tx.grad)


@pytest.mark.parametrize("name", ["all", "any"])
@pytest.mark.parametrize("dim", [None, 0, 1])
def test_all_and_any_match_torch(name, dim):
    x, tx = both([[0, 2, 1], [0, 0, 3]], "int64")
    if dim is None:
        assert_matches(getattr(x, name)(), getattr(tx, name)())
    else:
        assert_matches(getattr(x, name)(dim), getattr(tx, name)(dim))
        assert_matches(getattr(x, name)(dim, keepdim=True), getattr(tx, name)(dim, keepdim=True))


def test_reduction_errors_match_torch():
    x, tx = both(DATA)
    for fn in (lambda t: t.sum(3), lambda t: t.sum((0, 0)), lambda t: t.sum((2, -1)),
               lambda t: t.argmax(-4)):
        with pytest.raises((IndexError, RuntimeError)) as theirs:
            fn(tx)
        with pytest.raises(type(theirs.value)) as ours:
            fn(x)
        assert str(ours.value) == str(theirs.value)


def test_gather_and_take_along_dim_match_torch():
    x, tx = both(DATA[0], "float64", requires_grad=True)
    index, tindex = both([[0, 0, 3], [2, 1, 1], [3, 3, 3]], "int64")
    assert_matches(x.gather(1, index), tx.gather(1, tindex))
    assert_matches(runtime.take_along_dim(x, index, 1), torch.take_along_dim(tx, tindex, 1))
    x.gather(1, index).sum().backward()  # repeated indices add up
    tx.gather(1, tindex).sum().backward()
    assert_matches(x.grad, tx.grad)
    with pytest.raises(RuntimeError, match="Expected dtype int64 for index"):
        x.gather(1, index.int())


REDUCTION_GRAPHS = {
    "sum()": lambda x: x.sum(),
    "sum(1)": lambda x: x.sum(1),
    "mean()": lambda x: x.mean(),
    "mean(0, keepdim)": lambda x: x.mean(0, keepdim=True),
    "max()": lambda x: x.max(),
    "amax(1)": lambda x: x.amax(1),
    "min()": lambda x: x.min(),
    "gather": lambda x: x.gather(1, lib(x).tensor([[0], [1]])),
}


@pytest.mark.parametrize("name", REDUCTION_GRAPHS)
def test_reduction_grad_fn_names_match_torch(name):
    x, tx = both([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    out, tout = REDUCTION_GRAPHS[name](x), REDUCTION_GRAPHS[name](tx)
    assert out.grad_fn.name() == type(tout.grad_fn).__name__
    ours = [None if n is None else n.name() for n, _ in out.grad_fn.next_functions]
    assert ours == [None if n is None else type(n).__name__ for n, _ in
                    tout.grad_fn.next_functions]
