"""nn.MultiheadAttention, composed from primitive ops (matmul, softmax, where, add,
reshape/transpose, dropout) as F.scaled_dot_product_attention is, so autograd and the compiler
see only primitives. Its boolean attn_mask and key_padding_mask mark the positions that may NOT
be attended (True = ignore); a float mask is added to the scores.
"""

from __future__ import annotations

import math
from typing import Any

import runtime
from runtime import _dtype
from runtime._creation import empty
from runtime._tensor import Tensor
from runtime.nn import functional as F
from runtime.nn import init
from runtime.nn.linear import Linear
from runtime.nn.module import Module
from runtime.nn.parameter import Parameter


class NonDynamicallyQuantizableLinear(Linear):
    """MultiheadAttention's output projection: a Linear under PyTorch's printed name."""


class MultiheadAttention(Module):
    """Attention with `num_heads` heads over embed_dim features, as torch.nn.MultiheadAttention:
    in_proj (q, k, v) -> per-head scaled dot-product attention -> out_proj. Inputs are
    (L, N, E), or (N, L, E) with batch_first=True, or unbatched (L, E)."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device: Any = None,
                 dtype: _dtype.dtype | None = None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got embed_dim="
                             f"{embed_dim} and num_heads={num_heads} instead")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are not "
                                      "supported")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty((3 * embed_dim, embed_dim), dtype=dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(empty((embed_dim, embed_dim), dtype=dtype))
            self.k_proj_weight = Parameter(empty((embed_dim, self.kdim), dtype=dtype))
            self.v_proj_weight = Parameter(empty((embed_dim, self.vdim), dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias,
                                                        device=device, dtype=dtype)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    def _projections(self) -> list[tuple[Tensor, Tensor | None]]:
        e = self.embed_dim
        weights = ([self.in_proj_weight[i * e:(i + 1) * e] for i in range(3)]
                   if self._qkv_same_embed_dim
                   else [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight])
        biases = ([self.in_proj_bias[i * e:(i + 1) * e] for i in range(3)]
                  if self.in_proj_bias is not None else [None] * 3)
        return list(zip(weights, biases))

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the "
                               "Transformer module method `generate_square_subsequent_mask` to "
                               "create this mask.")
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        target, batch, _ = query.shape
        source = key.shape[0]
        heads, head_dim = self.num_heads, self.head_dim
        (wq, bq), (wk, bk), (wv, bv) = self._projections()
        q, k, v = F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

        def split_heads(t: Tensor, length: int) -> Tensor:  # (L, N, E) -> (N * H, L, head_dim)
            return t.reshape(length, batch * heads, head_dim).transpose(0, 1)

        q, k, v = split_heads(q, target), split_heads(k, source), split_heads(v, source)
        scores = runtime.matmul(q * (1.0 / math.sqrt(head_dim)), k.transpose(-2, -1))
        bias = F._as_additive(attn_mask, disallowed_if=True, dtype=q.dtype)
        if bias is not None:
            if bias.ndim == 2:
                bias = bias.unsqueeze(0)
            scores = scores + bias
        padding = F._as_additive(key_padding_mask, disallowed_if=True, dtype=q.dtype)
        if padding is not None:  # (N, S) -> (N * H, 1, S)
            padding = padding.reshape(batch, 1, 1, source).expand(batch, heads, 1, source)
            scores = scores + padding.reshape(batch * heads, 1, source)
        weights = runtime.softmax(scores, -1)
        if self.dropout > 0.0:
            weights = F.dropout(weights, self.dropout, training=self.training)
        out = runtime.matmul(weights, v)  # (N * H, L, head_dim)
        out = out.transpose(0, 1).reshape(target * batch, self.embed_dim)
        out = self.out_proj(out).reshape(target, batch, self.embed_dim)
        if unbatched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        per_head = weights.reshape(batch, heads, target, source)
        if average_attn_weights:
            per_head = per_head.mean(1)
        return out, per_head.squeeze(0) if unbatched else per_head
