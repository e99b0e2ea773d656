"""Batch and layer normalisation, composed from primitive ops (mean, sub, mul, rsqrt, add).

No op of their own: their derivatives (and second derivatives) follow from the primitives', and
the compiler traces, differentiates and fuses them like any other composition. The variance is
taken in two passes, mean((x - mean(x))^2), which stays exact where E[x^2] - E[x]^2 cancels.
Updating running statistics is the caller's business (nn.BatchNorm's buffers, under no_grad).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runtime.ops import elementwise as ew
from runtime.ops.reduction import mean
from runtime.ops.shape import reshape


def moments(x: Any, dims: Sequence[int]) -> tuple[Any, Any]:
    """(mean, biased variance) of x over `dims`, both with those dims kept as size 1."""
    mu = mean(x, tuple(dims), keepdim=True)
    centred = ew.sub(x, mu)
    return mu, mean(ew.mul(centred, centred), tuple(dims), keepdim=True)


def normalize(x: Any, mu: Any, var: Any, eps: float) -> Any:
    """(x - mu) / sqrt(var + eps)."""
    return ew.mul(ew.sub(x, mu), ew.rsqrt(ew.add(var, eps)))


def _per_channel(t: Any, ndim: int) -> Any:
    """A (C,) tensor shaped (C, 1, ...) to broadcast along dim 1 of an ndim-dim input."""
    return reshape(t, (t.shape[0], *([1] * (ndim - 2))))


def batch_norm(x: Any, weight: Any, bias: Any, eps: float, *, mean_and_var: tuple[Any, Any]
               | None = None) -> tuple[Any, Any, Any]:
    """Normalise each channel (dim 1) of x (N, C, *) by batch statistics, or by the given
    (mean, var) of shape (C,); then scale by weight and shift by bias (each (C,) or None).
    Returns (output, batch mean, batch biased variance); the statistics are None when given."""
    batch_mean = batch_var = None
    if mean_and_var is None:
        batch_mean, batch_var = moments(x, (0, *range(2, x.ndim)))
        mu, var = batch_mean, batch_var
    else:
        mu, var = (_per_channel(t, x.ndim) for t in mean_and_var)
    out = normalize(x, mu, var, eps)
    if weight is not None:
        out = ew.mul(out, _per_channel(weight, x.ndim))
    if bias is not None:
        out = ew.add(out, _per_channel(bias, x.ndim))
    return out, batch_mean, batch_var


def layer_norm(x: Any, normalized_ndim: int, weight: Any, bias: Any, eps: float) -> Any:
    """Normalise x over its last `normalized_ndim` dims; weight and bias have those dims'
    shape (or are None)."""
    mu, var = moments(x, tuple(range(x.ndim - normalized_ndim, x.ndim)))
    out = normalize(x, mu, var, eps)
    if weight is not None:
        out = ew.mul(out, weight)
    if bias is not None:
        out = ew.add(out, bias)
    return out
