"""F.scaled_dot_product_attention and nn.MultiheadAttention against PyTorch with the same
weights: outputs, attention weights and every gradient (float64, tight), with boolean and float
masks, causal masking, key padding, batch_first both ways, unbatched inputs; printed forms."""

import numpy as np
import pytest

import runtime
import runtime.nn.functional as F

torch = pytest.importorskip("torch")


def both(shape, rng):
    data = rng.standard_normal(shape)
    return runtime.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)


def close(ours, theirs, tol=1e-12):
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=tol, atol=tol)


BOOL_MASK = np.array([[True, False, True, True, False],
                      [True, True, True, False, False],
                      [False, True, True, True, True],
                      [True, True, False, True, True]])


@pytest.mark.parametrize("kwargs", [
    {}, {"is_causal": True}, {"scale": 0.3}, {"attn_mask": "bool"}, {"attn_mask": "float"},
])
def test_sdpa_and_its_gradients_match_torch(kwargs):
    rng = np.random.default_rng(0)
    (q, tq), (k, tk), (v, tv) = both((2, 3, 4, 6), rng), both((2, 3, 5, 6), rng), \
        both((2, 3, 5, 2), rng)
    ours_kwargs, theirs_kwargs = dict(kwargs), dict(kwargs)
    if kwargs.get("attn_mask") == "bool":
        ours_kwargs["attn_mask"] = runtime.tensor(BOOL_MASK)
        theirs_kwargs["attn_mask"] = torch.tensor(BOOL_MASK)
    elif kwargs.get("attn_mask") == "float":
        bias = rng.standard_normal((3, 4, 5))
        ours_kwargs["attn_mask"] = runtime.tensor(bias)
        theirs_kwargs["attn_mask"] = torch.tensor(bias)
    if kwargs.get("is_causal"):  # square, as causal attention is used
        (k, tk), (v, tv) = both((2, 3, 4, 6), rng), both((2, 3, 4, 2), rng)
    out = F.scaled_dot_product_attention(q, k, v, **ours_kwargs)
    expected = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **theirs_kwargs)
    close(out, expected)
    g = rng.standard_normal(tuple(expected.shape))
    out.backward(runtime.tensor(g))
    expected.backward(torch.tensor(g))
    for ours, theirs in ((q, tq), (k, tk), (v, tv)):
        close(ours.grad, theirs.grad)


def test_sdpa_causal_with_mask_is_refused():
    q = runtime.randn(1, 2, 2)
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=runtime.ones(2, 2), is_causal=True)


def copy_weights(ours, theirs):
    with torch.no_grad():
        for (name, p), (other, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert name == other
            q.copy_(torch.from_numpy(p.detach().numpy().copy()))


MHA_CASES = [
    ({}, {}, (5, 2, 8), (4, 2, 8)),
    ({"batch_first": True}, {"average_attn_weights": False}, (2, 5, 8), (2, 4, 8)),
    ({"batch_first": True}, {"attn_mask": "bool", "key_padding_mask": True}, (2, 5, 8),
     (2, 4, 8)),
    ({}, {"attn_mask": "float", "need_weights": False}, (5, 2, 8), (4, 2, 8)),
    ({"kdim": 3, "vdim": 6, "bias": False}, {}, (5, 2, 8), (4, 2, None)),
    ({}, {"attn_mask": "causal", "is_causal": True}, (4, 8), (4, 8)),  # unbatched
]


@pytest.mark.parametrize("options, call, q_shape, kv_shape", MHA_CASES)
def test_multihead_attention_matches_torch(options, call, q_shape, kv_shape):
    rng = np.random.default_rng(1)
    ours = runtime.nn.MultiheadAttention(8, 2, **options).double()
    theirs = torch.nn.MultiheadAttention(8, 2, **options).double()
    assert repr(ours) == repr(theirs)
    copy_weights(ours, theirs)
    batch_first = options.get("batch_first", False)
    (q, tq) = both(q_shape, rng)
    kdim, vdim = options.get("kdim", 8), options.get("vdim", 8)
    (k, tk) = both((*kv_shape[:-1], kdim), rng)
    (v, tv) = both((*kv_shape[:-1], vdim), rng)
    ours_call, theirs_call = dict(call), dict(call)
    target, source = (q_shape[1], kv_shape[1]) if batch_first and len(q_shape) == 3 else \
        (q_shape[0], kv_shape[0])
    if call.get("attn_mask") == "bool":
        mask = rng.random((target, source)) < 0.4  # True = may not attend
        mask[:, 0] = False
        ours_call["attn_mask"], theirs_call["attn_mask"] = runtime.tensor(mask), torch.tensor(mask)
    elif call.get("attn_mask") == "float":
        bias = rng.standard_normal((target, source))
        ours_call["attn_mask"], theirs_call["attn_mask"] = runtime.tensor(bias), torch.tensor(bias)
    elif call.get("attn_mask") == "causal":
        mask = np.triu(np.ones((target, source), dtype=bool), 1)
        ours_call["attn_mask"], theirs_call["attn_mask"] = runtime.tensor(mask), torch.tensor(mask)
    if call.get("key_padding_mask"):
        padding = np.zeros((2, source), dtype=bool)
        padding[1, -1] = True
        ours_call["key_padding_mask"] = runtime.tensor(padding)
        theirs_call["key_padding_mask"] = torch.tensor(padding)
    out, weights = ours(q, k, v, **ours_call)
    expected, expected_weights = theirs(tq, tk, tv, **theirs_call)
    close(out, expected)
    if expected_weights is None:
        assert weights is None
    else:
        close(weights, expected_weights)
    g = rng.standard_normal(tuple(expected.shape))
    out.backward(runtime.tensor(g))
    expected.backward(torch.tensor(g))
    for a, b in ((q, tq), (k, tk), (v, tv)):
        close(a.grad, b.grad)
    for p, r in zip(ours.parameters(), theirs.parameters()):
        close(p.grad, r.grad)


def test_multihead_attention_parameters_and_init():
    ours = runtime.nn.MultiheadAttention(16, 4)
    assert [n for n, _ in ours.named_parameters()] == \
        [n for n, _ in torch.nn.MultiheadAttention(16, 4).named_parameters()]
    assert np.all(ours.in_proj_bias.detach().numpy() == 0)
    bound = np.sqrt(6 / (16 + 48))  # xavier_uniform_ over (48, 16)
    assert np.abs(ours.in_proj_weight.detach().numpy()).max() <= bound
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        runtime.nn.MultiheadAttention(10, 3)
