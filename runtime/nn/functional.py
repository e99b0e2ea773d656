"""`runtime.nn.functional`: the layers and losses as functions (`F.relu`, `F.cross_entropy`, ...),
with PyTorch's signatures and errors.

Everything here is composed from the runtime's tensor functions and primitive ops, so autograd and
the compiler's tracer see only primitives (cross-entropy is log_softmax + gather, BCE-with-logits
is its one stable elementwise op). Checks that must read values (a target out of range, a
probability outside [0, 1]) run on concrete tensors only; traced tensors skip them.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

import runtime
from runtime import _dtype
from runtime._grad_mode import no_grad
from runtime._tensor import Tensor
from runtime.nn import _reduction
from runtime.nn._spatial_functional import (  # noqa: F401 - part of nn.functional
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    conv1d,
    conv2d,
    conv_padding,
    max_pool1d,
    max_pool2d,
    pad,
)
from runtime.ops import composite
from runtime.ops import elementwise as ew
from runtime.ops import embedding as embedding_ops
from runtime.ops import normalization as norm_ops

# ----- layers ------------------------------------------------------------------------------------


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """input @ weight.T + bias (weight is (out_features, in_features), as nn.Linear stores it)."""
    if bias is not None and input.ndim == 2 and weight.ndim == 2:
        return composite.addmm(bias, input, weight.t())  # one AddmmBackward0, as PyTorch
    output = runtime.matmul(input, weight.t())
    return output if bias is None else output + bias


# ----- attention ---------------------------------------------------------------------------------


def _causal_future(rows: int, cols: int) -> Tensor:
    """Boolean (rows, cols): True where column j lies in row i's future (j > i)."""
    return runtime.tensor(np.triu(np.ones((rows, cols), dtype=bool), k=1))


def _as_additive(mask: Tensor | None, disallowed_if: bool, dtype: _dtype.dtype) -> Tensor | None:
    """A mask as something to add to scores: a boolean one becomes 0 / -inf (-inf where the
    mask equals `disallowed_if`), a float one is used as it is."""
    if mask is None:
        return None
    if mask.dtype == _dtype.bool_:
        blocked = mask if disallowed_if else runtime.logical_not(mask)
        return runtime.where(blocked, float("-inf"), runtime.zeros((), dtype=dtype))
    return mask


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(query @ key^T * scale + mask) @ value over the last two dims, with
    scale = 1/sqrt(query.size(-1)) by default; a boolean attn_mask is True where attending is
    allowed; is_causal lets position i attend to positions <= i only."""
    if enable_gqa:
        raise NotImplementedError("scaled_dot_product_attention: enable_gqa is not supported; "
                                  "repeat the key and value heads instead")
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set "
                           "when is_causal=True")
    rows, cols = query.shape[-2], key.shape[-2]
    factor = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = runtime.matmul(query, key.transpose(-2, -1)) * factor
    if is_causal:
        scores = runtime.where(_causal_future(rows, cols), float("-inf"), scores)
    bias = _as_additive(attn_mask, disallowed_if=False, dtype=query.dtype)
    if bias is not None:
        scores = scores + bias
    weights = runtime.softmax(scores, -1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, training=True)
    return runtime.matmul(weights, value)


# ----- normalisation -----------------------------------------------------------------------------


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) by the batch's statistics (training) or the running ones.
    In training, the running statistics (if given) move towards the batch's by `momentum`,
    the variance unbiased, as PyTorch does."""
    if input.ndim < 2:
        raise ValueError(f"Expected 2D or more input (got {input.ndim}D input)")
    if training:
        per_channel = input.numel() // input.shape[1] if not input._is_symbolic else None
        if per_channel == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {input.shape}")
        output, batch_mean, batch_var = norm_ops.batch_norm(input, weight, bias, eps)
        if running_mean is not None or running_var is not None:
            _update_running_stats(running_mean, running_var, batch_mean, batch_var,
                                  input.numel() // input.shape[1], momentum)
        return output
    if running_mean is None or running_var is None:
        raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
    output, _, _ = norm_ops.batch_norm(input, weight, bias, eps,
                                       mean_and_var=(running_mean, running_var))
    return output


def _update_running_stats(running_mean: Tensor | None, running_var: Tensor | None,
                          batch_mean: Tensor, batch_var: Tensor, count: int,
                          momentum: float) -> None:
    with no_grad():
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(batch_mean.reshape(-1) * momentum)
        if running_var is not None:
            unbiased = batch_var.reshape(-1) * (count / max(count - 1, 1))
            running_var.mul_(1 - momentum).add_(unbiased * momentum)


def layer_norm(input: Tensor, normalized_shape: Any, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last len(normalized_shape) dims, then scale and shift elementwise."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    n = len(shape)
    if n == 0 or input.ndim < n or tuple(input.shape[input.ndim - n:]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(map(str, shape))}], but got input of size"
                           f"{input.shape}")
    return norm_ops.layer_norm(input, n, weight, bias, eps)


# ----- embedding ---------------------------------------------------------------------------------


def _embedding_padding_idx(padding_idx: int | None, num_embeddings: int) -> int | None:
    """padding_idx as a non-negative row, checked as PyTorch does."""
    if padding_idx is None:
        return None
    if padding_idx >= num_embeddings or padding_idx < -num_embeddings:
        raise AssertionError("Padding_idx must be within num_embeddings")
    return padding_idx + num_embeddings if padding_idx < 0 else padding_idx


def _refuse_embedding_options(max_norm: float | None, scale_grad_by_freq: bool,
                              sparse: bool) -> None:
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are not "
                                  "supported; renormalise the weight yourself under no_grad")


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """The rows of `weight` (num_embeddings, dim) named by the integer tensor `input`; the row
    padding_idx gets no gradient."""
    _refuse_embedding_options(max_norm, scale_grad_by_freq, sparse)
    padding_idx = _embedding_padding_idx(padding_idx, weight.shape[0])
    return embedding_ops.embedding(weight, input, padding_idx=padding_idx)


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """In training, zero each element with probability p and scale the rest by 1/(1-p), drawing
    from the runtime's default generator; otherwise return input unchanged."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        keep = runtime.zeros((), dtype=input.dtype)
    else:
        keep = runtime.empty_like(input).bernoulli_(1.0 - p).div_(1.0 - p)
    return input.mul_(keep) if inplace else input * keep


def _channel_dropout(name: str, input: Tensor, p: float, training: bool, inplace: bool,
                     nd: int) -> Tensor:
    """Zero whole channels (dim 1, or dim 0 unbatched) with probability p, scale by 1/(1-p)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"{name}: Expected {nd + 1}D or {nd + 2}D input, but received a "
                           f"{input.ndim}D input")
    if not training or p == 0.0:
        return input
    lead = input.ndim - nd  # (N, C) or (C,)
    shape = (*input.shape[:lead], *([1] * nd))
    keep = runtime.zeros(shape, dtype=input.dtype) if p == 1.0 else \
        runtime.empty(shape, dtype=input.dtype).bernoulli_(1.0 - p).div_(1.0 - p)
    return input.mul_(keep) if inplace else input * keep


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) input while training."""
    return _channel_dropout("dropout1d", input, p, training, inplace, 1)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) or (C, H, W) input while training."""
    return _channel_dropout("dropout2d", input, p, training, inplace, 2)


_SELU_ALPHA_SCALED = 1.7580993408473766  # SELU's alpha * scale: the value a dropped unit takes


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False) -> Tensor:
    """Dropout for SELU networks: dropped units take SELU's negative saturation value and the
    result is rescaled so that mean and variance are kept."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input.mul_(0.0) if inplace else input * 0.0
    keep = runtime.empty_like(input).bernoulli_(1.0 - p)
    a = 1.0 / np.sqrt((_SELU_ALPHA_SCALED ** 2 * p + 1) * (1 - p))
    shift = (keep - 1) * (_SELU_ALPHA_SCALED * a) + _SELU_ALPHA_SCALED * a * p
    output = input * (keep * a) + shift
    return input.copy_(output) if inplace else output


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 class indices of shape S as int64 one-hot vectors of shape (*S, num_classes);
    num_classes=-1 means one more than the largest index."""
    if tensor.dtype != _dtype.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if not tensor._is_symbolic and tensor.numel():
        values = tensor.numpy()
        if values.min() < 0:
            raise RuntimeError("Class values must be non-negative.")
        if num_classes == -1:
            num_classes = int(values.max()) + 1
        elif values.max() >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
    if num_classes == -1:
        raise RuntimeError("one_hot of a traced tensor needs num_classes: its largest class is not "
                           "known while tracing" if tensor._is_symbolic else
                           "Can not infer total number of classes from empty tensor.")
    classes = runtime.arange(num_classes)
    return runtime.eq(tensor.unsqueeze(-1), classes).long()


# ----- activations -------------------------------------------------------------------------------


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return input.relu_() if inplace else runtime.relu(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, negative_slope * x elsewhere."""
    output = ew.leaky_relu(input, negative_slope)
    return input.copy_(output) if inplace else output


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) with Phi the normal CDF (erf form); approximate='tanh' uses the tanh formula."""
    if approximate == "none":
        return ew.gelu(input)
    if approximate == "tanh":
        return ew.gelu_tanh(input)
    raise RuntimeError("approximate argument must be either none or tanh.")


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, alpha * (exp(x) - 1) elsewhere."""
    output = ew.elu(input, alpha)
    return input.copy_(output) if inplace else output


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    output = input * runtime.tanh(ew.softplus(input))
    return input.copy_(output) if inplace else output


def sigmoid(input: Tensor) -> Tensor:
    return runtime.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return runtime.tanh(input)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    output = ew.silu(input)
    return input.copy_(output) if inplace else output


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold (as PyTorch)."""
    scaled = input if beta == 1 else input * beta
    smooth = ew.softplus(scaled)
    smooth = smooth if beta == 1 else smooth / beta
    return runtime.where(scaled > threshold, input, smooth)


def _implicit_dim(name: str, ndim: int, stacklevel: int) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to "
                  "include dim=X as an argument.", UserWarning, stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: _dtype.dtype | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim; without dim, PyTorch's deprecated implicit choice."""
    if dim is None:
        dim = _implicit_dim("softmax", input.ndim, _stacklevel)
    return runtime.softmax(input, dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype: _dtype.dtype | None = None) -> Tensor:
    """log(softmax(x)) along dim, computed stably."""
    if dim is None:
        dim = _implicit_dim("log_softmax", input.ndim, _stacklevel)
    return runtime.log_softmax(input, dim, dtype=dtype)


# ----- losses over class indices -----------------------------------------------------------------


_TYPE_WORDS = {"float16": "Half", "float32": "Float", "float64": "Double", "int8": "Char",
               "int16": "Short", "int32": "Int", "int64": "Long", "uint8": "Byte", "bool": "Bool"}


def _check_nll_arguments(input: Tensor, target: Tensor, weight: Tensor | None) -> int:
    """PyTorch's shape and dtype checks of (input, target, weight); returns the class dim."""
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    if input.ndim > 1 and tuple(target.shape[:1]) != tuple(input.shape[:1]):
        target_batch = target.shape[0] if target.ndim else 0
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({target_batch}).")
    if target.dtype not in (_dtype.int64, _dtype.uint8):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got "
                           f"{_TYPE_WORDS[target.dtype.name]}")
    if input.ndim == 1 and target.ndim != 0:
        raise RuntimeError(f"size mismatch (got input: {list(input.shape)}, target: "
                           f"{list(target.shape)})")
    if input.ndim == 2 and target.ndim != 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if input.ndim > 2 and tuple(target.shape[1:]) != tuple(input.shape[2:]):
        expected = [input.shape[0], *input.shape[2:]]
        raise RuntimeError(f"Expected target size {expected}, got {list(target.shape)}")
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != n_classes):
        raise RuntimeError(f"weight tensor should be defined either for all {n_classes} classes "
                           f"or no classes but got weight tensor of shape: {list(weight.shape)}")
    return class_dim


def _check_target_values(target: Tensor, n_classes: int, ignore_index: int) -> None:
    if target._is_symbolic:
        return
    values = target.numpy()
    valid = (values == ignore_index) | ((values >= 0) & (values < n_classes))
    if not valid.all():
        raise IndexError(f"Target {values[~valid].flat[0]} is out of bounds.")


def _nll_terms(logp: Tensor, target: Tensor, weight: Tensor | None,
               ignore_index: int) -> tuple[Tensor, Tensor, Tensor, int]:
    """Per-element losses -w[t] * logp[t], the weights w[t] (0 where ignored), the ignore mask,
    and the class dim."""
    class_dim = _check_nll_arguments(logp, target, weight)
    _check_target_values(target, logp.shape[class_dim], ignore_index)
    target = target.long()
    ignored = runtime.eq(target, ignore_index)
    safe_target = runtime.where(ignored, 0, target)  # ignored entries may be out of range
    picked = logp.gather(class_dim, safe_target.unsqueeze(class_dim)).squeeze(class_dim)
    if weight is None:
        weights = runtime.logical_not(ignored).to(logp.dtype)
    else:
        # gather rather than weight[safe_target]: the compiler lowers gather, not index tensors
        per_element = weight.gather(0, safe_target.reshape(-1)).reshape(safe_target.shape)
        weights = runtime.where(ignored, 0, per_element)
    return -picked * weights, weights, ignored, class_dim


def _weighted_reduce(loss: Tensor, weights: Tensor, reduction: str) -> Tensor:
    """'mean' divides by the total weight of the counted elements, as PyTorch's NLL does."""
    if reduction == "mean":
        return loss.sum() / weights.sum()
    return _reduction.reduce(loss, reduction)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
             size_average: bool | None = None, ignore_index: int = -100,
             reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices `target` under log-probabilities `input`, which
    is (C), (N, C) or (N, C, d1, ...) with the classes on dim 1."""
    reduction = _reduction.resolve(size_average, reduce, reduction)
    class_dim = _check_nll_arguments(input, target, weight)
    _check_target_values(target, input.shape[class_dim], ignore_index)
    return composite.nll_loss(input, target, weight, ignore_index, reduction)


def _nll_loss_decomposed(input: Tensor, target: Tensor, weight: Tensor | None = None, *,
                         ignore_index: int, reduction: str) -> Tensor:
    """nll_loss made of primitive ops (one NllLossBackward0 node eagerly)."""
    loss, weights, _, _ = _nll_terms(input, target, weight, ignore_index)
    return _weighted_reduce(loss, weights, reduction)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average: bool | None = None, ignore_index: int = -100,
                  reduce: bool | None = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits `input` (classes on dim 1, or dim 0 when 1-D) and `target`:
    class indices (one dim fewer than input), or class probabilities (input's shape)."""
    reduction = _reduction.resolve(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    class_dim = 0 if input.ndim == 1 else 1
    logp = runtime.log_softmax(input, class_dim)
    if input.shape == target.shape:
        return _cross_entropy_with_probabilities(logp, target, weight, ignore_index, reduction,
                                                 label_smoothing, class_dim)
    if label_smoothing == 0.0:
        return nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    loss, weights, ignored, class_dim = _nll_terms(logp, target, weight, ignore_index)
    nll = _weighted_reduce(loss, weights, reduction)
    # Smoothing mixes in the loss against the uniform distribution over the C classes.
    per_class = logp if weight is None else logp * _along(weight, class_dim, logp.ndim)
    uniform = runtime.where(ignored, 0, -per_class.sum(class_dim))
    n_classes = logp.shape[class_dim]
    return nll * (1 - label_smoothing) + _weighted_reduce(uniform, weights, reduction) * (
        label_smoothing / n_classes)


def _along(weight: Tensor, class_dim: int, ndim: int) -> Tensor:
    """Class weights shaped to broadcast along the class dim of an ndim-dimensional tensor."""
    return weight.reshape([-1 if d == class_dim else 1 for d in range(ndim)])


def _cross_entropy_with_probabilities(logp: Tensor, target: Tensor, weight: Tensor | None,
                                      ignore_index: int, reduction: str, label_smoothing: float,
                                      class_dim: int) -> Tensor:
    if not target.is_floating_point():
        raise RuntimeError(f"Expected floating point type for target with class probabilities, "
                           f"got {_TYPE_WORDS[target.dtype.name]}")
    if ignore_index >= 0:
        raise RuntimeError("ignore_index is not supported for floating point target")
    n_classes = logp.shape[class_dim]
    if label_smoothing > 0.0:
        target = target * (1 - label_smoothing) + label_smoothing / n_classes
    terms = logp * target
    if weight is not None:
        terms = terms * _along(weight, class_dim, logp.ndim)
    if reduction == "none":
        return -terms.sum(class_dim)
    total = -terms.sum()
    return total if reduction == "sum" else total / (logp.numel() // n_classes)


# ----- regression and binary losses --------------------------------------------------------------


def mse_loss(input: Tensor, target: Tensor, size_average: bool | None = None,
             reduce: bool | None = None, reduction: str = "mean",
             weight: Tensor | None = None) -> Tensor:
    """(input - target)^2, optionally weighted per element ('mean' then divides by sum(weight))."""
    if target.shape != input.shape:
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size "
                      f"({input.shape}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", UserWarning,
                      stacklevel=2)
    reduction = _reduction.resolve(size_average, reduce, reduction)
    if weight is None:
        return composite.mse_loss(input, target, reduction)  # one MseLossBackward0, as PyTorch
    squared = (input - target) ** 2
    if weight.shape != input.shape:
        raise ValueError("Weights and input must have the same size.")
    return _weighted_reduce(squared * weight, weight, reduction)


def _mse_loss_decomposed(input: Tensor, target: Tensor, *, reduction: str) -> Tensor:
    """mse_loss made of primitive ops (one MseLossBackward0 node eagerly)."""
    return _reduction.reduce((input - target) ** 2, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average: bool | None = None, reduce: bool | None = None,
                                     reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """-[pos_weight * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x))], computed from the
    logits x in one stable elementwise op; `weight` rescales each element."""
    reduction = _reduction.resolve(size_average, reduce, reduction)
    if target.shape != input.shape:
        raise ValueError(f"Target size ({target.shape}) must be the same as input size "
                         f"({input.shape})")
    return composite.binary_cross_entropy_with_logits(input, target, weight, pos_weight,
                                                      reduction)


def _binary_cross_entropy_with_logits_decomposed(input: Tensor, target: Tensor, *rest: Tensor,
                                                 reduction: str, has_weight: bool,
                                                 has_pos_weight: bool) -> Tensor:
    """binary_cross_entropy_with_logits made of primitive ops (one node eagerly); `rest` holds
    weight and pos_weight, those that are given."""
    weight = rest[0] if has_weight else None
    pos_weight = rest[-1] if has_pos_weight else None
    loss = ew.binary_cross_entropy_with_logits(input, target,
                                               1.0 if pos_weight is None else pos_weight)
    if weight is not None:
        loss = loss * weight
    return _reduction.reduce(loss, reduction)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    """-[y * log(x) + (1 - y) * log(1 - x)] for probabilities x, each log clamped at -100 as
    PyTorch does so that x = 0 or 1 gives a finite loss."""
    reduction = _reduction.resolve(size_average, reduce, reduction)
    if target.shape != input.shape:
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input "
                         f"size ({input.shape}) is deprecated. Please ensure they have the same "
                         "size.")
    if not input._is_symbolic and input.numel():
        values = input.detach().numpy()
        if not ((values >= 0) & (values <= 1)).all():
            raise RuntimeError("all elements of input should be between 0 and 1")
    loss = -(target * _clamped_log(input) + (1 - target) * _clamped_log(1 - input))
    if weight is not None:
        loss = loss * weight
    return _reduction.reduce(loss, reduction)


def _clamped_log(x: Tensor) -> Tensor:
    """max(log(x), -100). x is first raised to the smallest positive number of its dtype, whose
    log is below -100, so that x = 0 gives gradient 0 rather than 0 * inf = nan."""
    tiny = float(np.finfo(x.dtype.numpy).smallest_subnormal)
    return runtime.clamp(runtime.log(runtime.clamp(x, min=tiny)), min=-100.0)


for _function, _loss in composite.LOSSES.items():  # the loss ops' decompositions live here
    _loss.set_formula(globals()[f"_{_function}_decomposed"])
