"""Rearranging ops (runtime/ops/rearrange.py) and the composites over them against PyTorch:
flip, roll, repeat, tile, tril, triu, masked_fill, split, chunk, unbind: values, gradients and
node names."""

import numpy as np
import pytest

import runtime

torch = pytest.importorskip("torch")

DATA = np.arange(24, dtype=np.float64).reshape(2, 3, 4) - 7


def both(data=DATA, dtype="float64", requires_grad=True):
    return (runtime.tensor(data, dtype=getattr(runtime, dtype), requires_grad=requires_grad),
            torch.tensor(data, dtype=getattr(torch, dtype), requires_grad=requires_grad))


def assert_matches(ours, theirs):
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())


def lib(t):
    return runtime if isinstance(t, runtime.Tensor) else torch


CALLS = {
    "flip([0, 2])": lambda x: lib(x).flip(x, [0, 2]),
    "flip(1)": lambda x: x.flip(1),
    "roll(1, 2)": lambda x: lib(x).roll(x, 1, 2),
    "roll((1, -2), (0, 2))": lambda x: x.roll((1, -2), (0, 2)),
    "roll(5)": lambda x: lib(x).roll(x, 5),
    "repeat(2, 1, 2)": lambda x: x.repeat(2, 1, 2),
    "repeat((2, 1, 1, 1))": lambda x: x.repeat((2, 1, 1, 1)),
    "tile((2,))": lambda x: lib(x).tile(x, (2,)),
    "tril()": lambda x: lib(x).tril(x),
    "tril(1)": lambda x: x.tril(1),
    "triu(-1)": lambda x: lib(x).triu(x, -1),
    "masked_fill(x > 0, -inf)": lambda x: x.masked_fill(x > 0, float("-inf")),
    "masked_fill(row mask, 0.5)": lambda x: lib(x).masked_fill(
        x, lib(x).tensor([True, False, True, False]), 0.5),
}


@pytest.mark.parametrize("call", CALLS)
def test_value_gradient_and_node_match_torch(call):
    (x, tx), fn = both(), CALLS[call]
    ours, theirs = fn(x), fn(tx)
    assert_matches(ours, theirs)
    assert ours.grad_fn.name() == theirs.grad_fn.name()
    weights = np.arange(ours.numel(), dtype=np.float64).reshape(tuple(ours.shape))
    (ours * runtime.tensor(weights)).sum().backward()
    (theirs * torch.tensor(weights)).sum().backward()
    assert_matches(x.grad, tx.grad)


def test_the_causal_mask_of_attention_matches_torch():
    results = []
    for lib_ in (runtime, torch):
        scores = lib_.tensor(DATA[0, :, :3])
        mask = lib_.tril(lib_.ones(3, 3)) == 0
        results.append(lib_.softmax(scores.masked_fill(mask, float("-inf")), dim=-1))
    np.testing.assert_allclose(results[0].numpy(), results[1].numpy(), rtol=1e-12)


def test_in_place_forms_match_torch():
    for name, args in [("masked_fill_", lambda x: (x > 0, 2.0)), ("tril_", lambda x: ()),
                       ("triu_", lambda x: (1,))]:
        (x, tx) = both(requires_grad=False)
        assert getattr(x, name)(*args(x)) is x
        getattr(tx, name)(*args(tx))
        assert_matches(x, tx)


SPLITS = {
    "split(2, 2)": lambda x: lib(x).split(x, 2, 2),
    "split(3, dim=-1)": lambda x: x.split(3, dim=-1),
    "split([1, 2], 1)": lambda x: x.split([1, 2], 1),
    "chunk(2, 1)": lambda x: x.chunk(2, 1),
    "chunk(3)": lambda x: lib(x).chunk(x, 3),
    "unbind(1)": lambda x: x.unbind(1),
}


@pytest.mark.parametrize("call", SPLITS)
def test_split_pieces_and_gradients_match_torch(call):
    (x, tx), fn = both(), SPLITS[call]
    ours, theirs = fn(x), fn(tx)
    assert isinstance(ours, tuple) and len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert_matches(a, b)
        (a * (k + 1)).sum().backward()
        (b * (k + 1)).sum().backward()
    assert_matches(x.grad, tx.grad)


def test_errors_match_torch():
    x, tx = both(requires_grad=False)
    with pytest.raises(RuntimeError, match="split_with_sizes expects split_sizes to sum exactly"):
        x.split([1, 1], 1)
    with pytest.raises(RuntimeError, match="only supports boolean masks"):
        x.masked_fill(runtime.ones(4), 0.0)
    with pytest.raises(RuntimeError, match="only supports boolean masks"):
        tx.masked_fill(torch.ones(4), 0.0)
