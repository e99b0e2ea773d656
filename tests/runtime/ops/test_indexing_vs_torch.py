"""Indexing (runtime/ops/indexing.py) against PyTorch: ints (negative too), slices with steps,
None, Ellipsis, integer arrays (repeated indices add their gradients), bool masks, their
combinations, assignment with and without autograd, and PyTorch's errors."""

import numpy as np
import pytest

import runtime

torch = pytest.importorskip("torch")

DATA = np.arange(60, dtype=np.float64).reshape(3, 4, 5)


def both(data=DATA, dtype="float64", requires_grad=False):
    return (runtime.tensor(data, dtype=getattr(runtime, dtype), requires_grad=requires_grad),
            torch.tensor(data, dtype=getattr(torch, dtype), requires_grad=requires_grad))


def assert_matches(ours, theirs):
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())


def keys(lib):
    """Indexing keys, built with `lib` (runtime or torch) where they hold tensors."""
    return {
        "int": 1,
        "negative int": -1,
        "two ints": (2, -3),
        "slice": slice(1, None),
        "slice with step": (slice(None), slice(None, None, 2)),
        "negative slice bounds": (slice(-2, None), slice(None, -1)),
        "None": (None, 1),
        "None in the middle": (slice(None), None, 2),
        "Ellipsis": (Ellipsis, 0),
        "Ellipsis and None": (0, ..., None),
        "int tensor 0-d": lib.tensor(2),
        "list": [0, 2, 2],
        "long tensor": lib.tensor([2, 0, -1]),
        "int32 tensor": lib.tensor([1, 1], dtype=lib.int32),
        "2-D index tensor": lib.tensor([[0, 1], [2, 2]]),
        "two index tensors": (lib.tensor([0, 2, 2]), lib.tensor([1, 3, 3])),
        "row and column (cross-entropy)": (lib.arange(3), lib.tensor([3, 0, 3])),
        "index tensors around a slice": (lib.tensor([0, 2]), slice(None), lib.tensor([1, 4])),
        "slice then index tensor": (slice(None), lib.tensor([3, 0, 3])),
        "bool mask of all dims": lib.tensor(DATA % 7 == 0),
        "bool mask of the first dim": lib.tensor([True, False, True]),
        "bool mask after a slice": (slice(None), lib.tensor([True, False, False, True])),
        "empty list": lib.tensor([], dtype=lib.int64),
    }


KEY_NAMES = list(keys(runtime))


@pytest.mark.parametrize("name", KEY_NAMES)
def test_getitem_matches_torch_with_gradients(name):
    x, tx = both(requires_grad=True)
    out, tout = x[keys(runtime)[name]], tx[keys(torch)[name]]
    assert_matches(out, tout)
    weights = np.random.default_rng(0).standard_normal(tuple(tout.shape))
    (out * runtime.tensor(weights)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_repeated_indices_add_their_gradients():
    x = runtime.zeros(4, dtype=runtime.float64, requires_grad=True)
    x[[1, 1, 3, 1]].sum().backward()
    assert x.grad.tolist() == [0.0, 3.0, 0.0, 1.0]


def test_cross_entropy_style_picking_matches_torch():
    logits, tlogits = both(np.random.default_rng(1).standard_normal((4, 3)), requires_grad=True)
    target = [2, 0, 2, 1]
    picked = logits.log_softmax(1)[range(4), target]
    tpicked = tlogits.log_softmax(1)[range(4), target]
    assert_matches(picked, tpicked)
    (-picked.mean()).backward()
    (-tpicked.mean()).backward()
    np.testing.assert_allclose(logits.grad.numpy(), tlogits.grad.numpy(), rtol=1e-12)


def test_indexing_a_0d_tensor():
    x, tx = both(5.0)
    for key in [None, Ellipsis, (None, None), ()]:
        assert_matches(x[key], tx[key])


def test_basic_indexing_is_a_view_and_advanced_indexing_a_copy():
    x = runtime.tensor(DATA)
    view, copy = x[1, :, ::2], x[[1]]
    x.add_(1000)
    assert view.numpy().min() >= 1000
    assert copy.numpy().max() < 1000


ERRORS = {
    "int out of range": lambda t, lib: t[3],
    "negative int out of range": lambda t, lib: t[:, -5],
    "too many indices": lambda t, lib: t[0, 0, 0, 0],
    "index tensor out of range": lambda t, lib: t[lib.tensor([0, 3])],
    "float index": lambda t, lib: t[1.0],
    "float index tensor": lambda t, lib: t[lib.tensor([1.0])],
    "mask of the wrong shape": lambda t, lib: t[lib.tensor([True, False])],
}


@pytest.mark.parametrize("name", ERRORS)
def test_indexing_errors_have_torchs_type(name):
    x, tx = both()
    with pytest.raises((IndexError, RuntimeError, TypeError)) as theirs:
        ERRORS[name](tx, torch)
    with pytest.raises(type(theirs.value)):
        ERRORS[name](x, runtime)


def test_negative_step_is_refused():
    with pytest.raises(ValueError, match="step must be greater than zero"):
        runtime.arange(5)[::-1]


# ----- assignment --------------------------------------------------------------------------------

def assignments(lib):
    return {
        "int = number": (1, 7.0),
        "slice = number": ((slice(None), slice(1, 3)), -1.0),
        "row = broadcast tensor": (0, lib.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=lib.float64)),
        "mask = number": (lib.tensor(DATA > 40), 0.0),
        "mask = tensor of its size": (lib.tensor(DATA % 11 == 0),
                                      lib.arange(6, dtype=lib.float64)),
        "index tensor = tensor": ((lib.tensor([0, 2]), 1), lib.tensor([[9.0], [8.0]],
                                                                      dtype=lib.float64)),
        "Ellipsis = int number": ((Ellipsis, 0), 3),
    }


@pytest.mark.parametrize("name", list(assignments(runtime)))
def test_setitem_without_autograd_matches_torch(name):
    x, tx = both()
    key, value = assignments(runtime)[name]
    tkey, tvalue = assignments(torch)[name]
    x[key] = value
    tx[tkey] = tvalue
    assert_matches(x, tx)


def test_setitem_bumps_the_version_seen_by_views():
    x = runtime.zeros(2, 3)
    row = x[1]
    x[1, 2] = 5.0
    assert row.tolist() == [0.0, 0.0, 5.0]
    assert x._version.value == 1


@pytest.mark.parametrize("name", list(assignments(runtime)))
def test_setitem_with_autograd_matches_torch(name):
    key, value = assignments(runtime)[name]
    tkey, tvalue = assignments(torch)[name]
    leaf, tleaf = both(requires_grad=True)
    scale, tscale = both(2.0, requires_grad=True)
    x, tx = leaf * 1, tleaf * 1  # a non-leaf can be assigned to
    x[key] = value * scale if isinstance(value, runtime.Tensor) else scale * value
    tx[tkey] = tvalue * tscale if isinstance(tvalue, torch.Tensor) else tscale * tvalue
    assert_matches(x, tx)
    weights = np.random.default_rng(0).standard_normal(DATA.shape)
    (x * runtime.tensor(weights)).sum().backward()
    (tx * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), tleaf.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(scale.grad.numpy(), tscale.grad.numpy(), rtol=1e-12)
    assert tuple(scale.grad.shape) == tuple(tscale.grad.shape)


def test_setitem_on_a_leaf_that_requires_grad_is_refused_but_allowed_under_no_grad():
    x, tx = both(requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in "
                                           "an in-place operation"):
        x[0] = 1.0
    with runtime.no_grad():
        x[0] = 1.0
    with torch.no_grad():
        tx[0] = 1.0
    assert_matches(x, tx)
    assert x.requires_grad and x.is_leaf and x.grad_fn is None


def test_setitem_records_the_assignment_in_the_graph():
    x = runtime.zeros(3, requires_grad=True) * 1
    w = runtime.tensor(2.0, requires_grad=True)
    x[1] = w
    assert x.grad_fn.name() == "IndexPutBackward0"
    assert [n.name() for n, _ in x.grad_fn.next_functions] == ["MulBackward0", "AccumulateGrad"]
