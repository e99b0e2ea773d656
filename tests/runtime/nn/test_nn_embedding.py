"""nn.Embedding and F.embedding against PyTorch: lookups, gradients with repeated indices and a
padding row (float64, exact), second derivatives, initialisation, weight tying, repr, errors."""

import numpy as np
import pytest

import runtime
import runtime.nn as nn
import runtime.nn.functional as F

torch = pytest.importorskip("torch")

TOKENS = [[1, 3, 3, 0], [2, 1, 0, 4]]


@pytest.mark.parametrize("padding_idx", [None, 0, -2])
def test_lookup_and_gradient_match_torch(padding_idx):
    table = np.random.default_rng(0).standard_normal((5, 3))
    w, tw = runtime.tensor(table, requires_grad=True), torch.tensor(table, requires_grad=True)
    out = F.embedding(runtime.tensor(TOKENS), w, padding_idx)
    expected = torch.nn.functional.embedding(torch.tensor(TOKENS), tw, padding_idx)
    np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
    assert out.grad_fn.name() == expected.grad_fn.name() == "EmbeddingBackward0"
    g = np.random.default_rng(1).standard_normal((2, 4, 3))
    out.backward(runtime.tensor(g))
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-15, atol=1e-15)


def test_second_derivative_matches_torch():
    table = np.random.default_rng(2).standard_normal((5, 3))
    results = []
    for lib in (runtime, torch):
        w = lib.tensor(table, requires_grad=True)
        out = lib.nn.functional.embedding(lib.tensor(TOKENS), w, padding_idx=3)
        (gw,) = lib.autograd.grad((out ** 3).sum(), (w,), create_graph=True)
        results.append(lib.autograd.grad((gw ** 2).sum(), (w,))[0].numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-12)


def test_module_initialisation_repr_and_padding_row():
    runtime.manual_seed(0)
    emb = nn.Embedding(1000, 8, padding_idx=3)
    values = emb.weight.detach().numpy()
    assert np.all(values[3] == 0)
    assert abs(values.std() - 1) < 0.05 and abs(values.mean()) < 0.05
    assert repr(emb) == repr(torch.nn.Embedding(1000, 8, padding_idx=3))
    assert repr(nn.Embedding(65, 32)) == "Embedding(65, 32)"


def test_tied_weight_gets_one_summed_gradient():
    results = []
    for lib in (runtime, torch):
        lib.manual_seed(0)
        emb, head = lib.nn.Embedding(6, 4), lib.nn.Linear(4, 6, bias=False)
        head.weight = emb.weight
        head.weight.data.copy_(lib.tensor(np.arange(24.0).reshape(6, 4) / 10))
        head(emb(lib.tensor([[1, 2, 2]]))).sum().backward()
        results.append(emb.weight.grad.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_from_pretrained_is_frozen_by_default():
    table = runtime.tensor([[1.0, 2.0], [3.0, 4.0]])
    emb = nn.Embedding.from_pretrained(table)
    assert not emb.weight.requires_grad
    assert emb(runtime.tensor([1])).tolist() == [[3.0, 4.0]]


def test_errors_match_torch():
    emb = nn.Embedding(3, 2)
    with pytest.raises(IndexError, match="index out of range in self"):
        emb(runtime.tensor([3]))
    with pytest.raises(RuntimeError, match="Expected tensor for argument #1 'indices'"):
        emb(runtime.tensor([1.0]))
    with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
        nn.Embedding(3, 2, padding_idx=3)
