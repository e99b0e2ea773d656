"""Every op with a native lowering, compiled alone (and after simplification) by
`compiler.native_build.build_native`, computes what `compiler.interpret.run` and eager mode
compute, at batch sizes 1, 5 and 64 from one build; inf and NaN propagate as in eager mode; an op
that cannot be lowered is a CompileError at build time that names the op and the source line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from compiler_testing import FunctionModel, assert_close, graph_arguments, interpret, tensors

import runtime
from compiler import CompileError
from compiler.lowering import rules
from compiler.lowering.expressions import lowerable
from compiler.native_build import build_native
from compiler.passes import simplify
from compiler.tracing import trace
from runtime.nn import functional as F
from runtime.ops import OPS
from runtime.ops import conv as conv_ops
from runtime.ops import pooling as pool_ops
from runtime.ops.elementwise import Elementwise
from runtime.ops.embedding import embedding_backward
from runtime.ops.indexing import index_add_into_zeros, normalize_key
from runtime.ops.reduction import scatter_add_into_zeros
from runtime.ops.shape import sum_to

BATCH_SIZES = (1, 5, 64)
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 88.0, -88.0, 1e-30]


@dataclass
class Case:
    """fn(*inputs, *parameters); `inputs` are (shape with "N" for the batch size, kind)."""

    fn: Callable[..., Any]
    inputs: list[tuple[tuple[Any, ...], str]]
    parameters: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    scale: float = 1.0  # tolerance multiplier, for ops that amplify rounding (exp of a product)
    batch_sizes: tuple[int, ...] = BATCH_SIZES


def make_array(shape: tuple[Any, ...], kind: str, n: int, dtype: Any,
               rng: np.random.Generator) -> np.ndarray:
    """An input: "normal"; "special" (normal, with inf, NaN, zeros and huge values in row 1);
    "coarse" (multiples of 0.5 in [-2, 2], so ties and exact zeros are common); "positive";
    "bool"; "index:k" (int64 in [0, k))."""
    shape = tuple(n if s == "N" else s for s in shape)
    if kind.startswith("index:"):
        return rng.integers(0, int(kind[6:]), shape).astype(np.int64)
    if kind == "bool":
        return rng.random(shape) < 0.5
    if kind == "coarse":
        return (rng.integers(-4, 5, shape) / 2).astype(dtype)
    if kind == "positive":
        return rng.uniform(0.5, 2.0, shape).astype(dtype)
    array = rng.standard_normal(shape).astype(dtype)
    if kind == "special" and array.ndim and array.shape[0] > 1:
        row = array[1].reshape(-1)
        row[:len(SPECIAL)] = np.array(SPECIAL[:row.size], dtype=dtype)
    return array


def unary(fn: Callable[..., Any], kind: str = "special", **options: Any) -> Case:
    return Case(fn, [(("N", 12), kind)], **options)


def binary(fn: Callable[..., Any], kind: str = "special", **options: Any) -> Case:
    return Case(fn, [(("N", 12), kind), (("N", 12), "coarse")], **options)


def along(name: str, dims: Any, kind: str = "normal", **options: Any) -> Case:
    """runtime.<name>(x, dims, **options) of a (N, 3, 4) input."""
    return Case(lambda x: getattr(runtime, name)(x, dims, **options), [(("N", 3, 4), kind)])


CAUSAL = runtime.ones(3, 3).tril()  # a causal mask, made eagerly like a model's buffer

ELEMENTWISE = {
    "add": binary(lambda x, y: x + y),
    "sub": binary(lambda x, y: x - y),
    "rsub": unary(lambda x: 1.5 - x),
    "mul": binary(lambda x, y: x * y),
    "div": binary(lambda x, y: x / y),
    "rdiv": unary(lambda x: 2 / x),
    "neg": unary(lambda x: -x),
    "pow_2": unary(lambda x: x ** 2),
    "pow_3": unary(lambda x: x ** 3),
    "pow_minus_1": unary(lambda x: x ** -1),
    "pow_half": unary(lambda x: x ** 0.5),
    "pow_2.5": unary(lambda x: x ** 2.5),
    "pow_0": unary(lambda x: x ** 0),
    "pow_tensor": Case(lambda x, y: x ** y, [(("N", 12), "special"), (("N", 12), "coarse")],
                       scale=10),
    "rpow": unary(lambda x: 2 ** x, scale=10),
    "square": unary(lambda x: x.square()),
    "abs": unary(lambda x: x.abs()),
    "maximum": binary(lambda x, y: runtime.maximum(x, y)),
    "maximum_nan_second": binary(lambda x, y: runtime.maximum(y, x)),
    "minimum": binary(lambda x, y: runtime.minimum(x, y)),
    "minimum_nan_second": binary(lambda x, y: runtime.minimum(y, x)),
    "where": Case(lambda c, x, y: runtime.where(c, x, y),
                  [(("N", 12), "bool"), (("N", 12), "special"), (("N", 12), "normal")]),
    "where_computed_condition": binary(lambda x, y: runtime.where(x > y, x, y * 2)),
    "where_numbers": unary(lambda x: runtime.where(x > 0, 1.0, -1.0)),
    "exp": unary(lambda x: x.exp()),
    "log": unary(lambda x: x.log()),
    "log1p": unary(lambda x: x.log1p()),
    "sqrt": unary(lambda x: x.sqrt()),
    "rsqrt": unary(lambda x: x.rsqrt()),
    "rsqrt_of_abs": unary(lambda x: x.abs().rsqrt()),
    "reciprocal": unary(lambda x: x.reciprocal()),
    "relu": unary(lambda x: x.relu(), kind="coarse"),
    "relu_special": unary(lambda x: x.relu()),
    "leaky_relu": unary(lambda x: F.leaky_relu(x, 0.1)),
    "sigmoid": unary(lambda x: x.sigmoid()),
    "tanh": unary(lambda x: x.tanh()),
    "sinh": unary(lambda x: x.sinh()),
    "gelu_tanh": unary(lambda x: runtime.nn.functional.gelu(x, approximate="tanh")),
    "erf": unary(lambda x: x.erf()),
    "gelu": unary(lambda x: F.gelu(x)),
    "cosh": unary(lambda x: x.cosh()),
    "sign": unary(lambda x: x.sign()),
    "lerp": binary(lambda x, y: runtime.lerp(x, y, 0.3), kind="normal"),
    "masked_fill": binary(lambda x, y: x.masked_fill(y > 0, -1.5)),
    "softplus": unary(lambda x: F.softplus(x)),
    "softplus_beta": unary(lambda x: F.softplus(x, beta=2.0, threshold=5.0)),
    "silu": unary(lambda x: F.silu(x)),
    "clamp": unary(lambda x: x.clamp(-0.5, 0.5)),
    "clamp_min": unary(lambda x: x.clamp(min=-0.5)),
    "clamp_max": unary(lambda x: x.clamp(max=0.5)),
    "clamp_tensors": Case(lambda x, lo, hi: runtime.clamp(x, lo, lo + hi.abs()),
                          [(("N", 12), "special"), (("N", 12), "coarse"), (("N", 12), "normal")]),
    "bce_with_logits": Case(
        lambda z, y: F.binary_cross_entropy_with_logits(z, y, reduction="none"),
        [(("N", 12), "special"), (("N", 12), "positive")]),
    "bce_with_logits_pos_weight": Case(
        lambda z, y, w: F.binary_cross_entropy_with_logits(z, y.sigmoid(), reduction="none",
                                                           pos_weight=w),
        [(("N", 12), "normal"), (("N", 12), "normal")], {"w": ((12,), "positive")}),
    "eq": binary(lambda x, y: x == y, kind="coarse"),
    "ne": binary(lambda x, y: x != y),
    "lt": binary(lambda x, y: x < y),
    "le": binary(lambda x, y: x <= y, kind="coarse"),
    "gt": binary(lambda x, y: x > y),
    "ge": binary(lambda x, y: x >= y, kind="coarse"),
    "isnan": unary(lambda x: runtime.isnan(x)),
    "logical_not": unary(lambda b: runtime.logical_not(b), kind="bool"),
    "logical_and": Case(lambda a, b: runtime.logical_and(a, b),
                        [(("N", 12), "bool"), (("N", 12), "bool")]),
    "logical_or": Case(lambda a, b: a | b, [(("N", 12), "bool"), (("N", 12), "bool")]),
    "logical_xor": Case(lambda a, b: a ^ b, [(("N", 12), "bool"), (("N", 12), "bool")]),
    "logical_of_floats": binary(lambda x, y: runtime.logical_and(x, y), kind="coarse"),
    "comparison_as_float": binary(lambda x, y: (x > y).float() * x - y),
    "chain": unary(lambda x: ((x * 2 + 1).sigmoid() * x.tanh()).exp() - x.abs().sqrt()),
    # broadcasting
    "bias": Case(lambda x, b: x + b, [(("N", 12), "normal")], {"b": ((12,), "normal")}),
    "scalar": unary(lambda x: x * 2.5 + 0.5),
    "zero_dim_parameter": Case(lambda x, s: x * s, [(("N", 12), "normal")], {"s": ((), "normal")}),
    "column_times_matrix": Case(lambda c, x: c * x, [(("N", 1), "normal"), (("N", 12), "normal")]),
    "row_plus_column": Case(lambda x, b: x.reshape(-1, 3, 1) - b,
                            [(("N", 3), "normal")], {"b": ((1, 4), "normal")}),
    "three_d_bias": Case(lambda x, b: (x * b).relu(), [(("N", 3, 4), "normal")],
                         {"b": ((3, 1), "normal")}),
}

STRUCTURED = {
    # reductions over each dim of a 3-D input, with and without keepdim
    **{f"{name}_dim{dims}_keep{keep}": along(name, dims, keepdim=keep)
       for name in ("sum", "mean", "amax", "amin") for dims in (0, 1, 2, (0, 2), (1, 2))
       for keep in (False, True)},
    "sum_all": unary(lambda x: x.sum()),
    "mean_all": Case(lambda x: x.mean(), [(("N", 3, 4), "normal")]),
    "max_all": unary(lambda x: x.max()),
    "min_all": unary(lambda x: x.min()),
    "sum_special": unary(lambda x: x.sum(1)),
    "amax_special": unary(lambda x: x.amax(1)),
    "amin_special": unary(lambda x: x.amin(1)),
    "max_dim_values_indices": Case(lambda x: tuple(x.max(2)), [(("N", 3, 4), "coarse")]),
    "min_dim_keepdim": Case(lambda x: tuple(x.min(1, keepdim=True)), [(("N", 3, 4), "coarse")]),
    **{f"{name}_dim{dim}": along(name, dim, kind="coarse")
       for name in ("argmax", "argmin") for dim in (0, 1, 2, None)},
    "argmax_keepdim": Case(lambda x: x.argmax(1, keepdim=True), [(("N", 3, 4), "normal")]),
    "argmax_special": unary(lambda x: x.argmax(1)),
    "argmin_special": unary(lambda x: x.argmin(1)),
    "size_divisor": Case(lambda x: x.sum() / x.shape[0], [(("N", 3), "normal")]),
    # softmax and log_softmax along each dim of a 3-D input
    **{f"{name}_dim{dim}": along(name, dim)
       for name in ("softmax", "log_softmax") for dim in (0, 1, -1)},
    "softmax_special": unary(lambda x: x.softmax(1)),
    "log_softmax_special": unary(lambda x: x.log_softmax(1)),
    "log_softmax_extreme": Case(lambda x: (x * 1e4).log_softmax(1), [(("N", 12), "normal")]),
    # matrix products
    "matmul_2d": Case(lambda x, w: x @ w, [(("N", 4), "normal")], {"w": ((4, 3), "normal")}),
    "linear": Case(lambda x, w, b: F.linear(x, w, b), [(("N", 4), "normal")],
                   {"w": ((3, 4), "normal"), "b": ((3,), "normal")}),
    "matmul_over_batch": Case(lambda x, y: x.T @ y, [(("N", 4), "normal"), (("N", 3), "normal")]),
    "matmul_2d_1d": Case(lambda x, v: x @ v, [(("N", 4), "normal")], {"v": ((4,), "normal")}),
    "matmul_1d_2d": Case(lambda x, v: v @ x.T, [(("N", 4), "normal")], {"v": ((4,), "normal")}),
    "matmul_1d_1d": Case(lambda x, v: x.sum(0) @ v, [(("N", 4), "normal")],
                         {"v": ((4,), "normal")}),
    "matmul_batched": Case(lambda x, y: x @ y, [(("N", 3, 4), "normal"), (("N", 4, 2), "normal")]),
    "matmul_batched_times_matrix": Case(lambda x, w: x @ w, [(("N", 3, 4), "normal")],
                                        {"w": ((4, 2), "normal")}),
    "matmul_matrix_times_batched": Case(lambda x, w: w @ x, [(("N", 4, 2), "normal")],
                                        {"w": ((3, 4), "normal")}),
    "matmul_broadcast_batch": Case(lambda x, w: x @ w, [(("N", 1, 3, 4), "normal")],
                                   {"w": ((2, 4, 5), "normal")}),
    "matmul_batched_1d": Case(lambda x, v: x @ v, [(("N", 3, 4), "normal")],
                              {"v": ((4,), "normal")}),
    "weight_update": Case(lambda x, y, w: w - 0.1 * (x.T @ y),
                          [(("N", 4), "normal"), (("N", 3), "normal")], {"w": ((4, 3), "normal")}),
    "matmul_special": Case(lambda x, w: x @ w, [(("N", 12), "special")],
                           {"w": ((12, 3), "normal")}),
    # gather and its derivative
    "gather_dim1": Case(lambda x, i: x.gather(1, i), [(("N", 5), "normal"), (("N", 3), "index:5")]),
    "gather_dim2": Case(lambda x, i: x.gather(2, i),
                        [(("N", 3, 4), "normal"), (("N", 3, 2), "index:4")]),
    "gather_dim1_of_3d": Case(lambda x, i: runtime.gather(x, 1, i),
                              [(("N", 3, 4), "normal"), (("N", 2, 4), "index:3")]),
    "gather_negative_index": Case(lambda x, i: x.gather(1, i - 5),
                                  [(("N", 5), "normal"), (("N", 3), "index:5")]),
    "integer_arithmetic": Case(lambda x, i: runtime.where(x > 0, i * 3 + 1, -i),
                               [(("N", 12), "normal"), (("N", 12), f"index:{2 ** 40}")]),
    "scatter_add": Case(lambda g, i: scatter_add_into_zeros(g, i, 1, (g.shape[0], 5)),
                        [(("N", 7), "normal"), (("N", 7), "index:5")]),
    # embedding lookup and its deterministic scatter-add; attention's 4-D products and mask
    "embedding": Case(lambda i, w: F.embedding(i, w), [(("N", 3), "index:5")],
                      {"w": ((5, 4), "normal")}),
    "embedding_backward": Case(lambda g, i: embedding_backward(g, i, 5, None),
                               [(("N", 3, 4), "normal"), (("N", 3), "index:5")]),
    "embedding_backward_padding": Case(lambda g, i: embedding_backward(g, i, 5, 2),
                                       [(("N", 3, 4), "normal"), (("N", 3), "index:5")]),
    "matmul_4d_attention": Case(lambda q, k: (q @ k.transpose(-2, -1)).masked_fill(
        CAUSAL == 0, float("-inf")).softmax(-1),
        [(("N", 2, 3, 4), "normal"), (("N", 2, 3, 4), "normal")]),
    # copies
    "index_int": Case(lambda x: x[:, 1], [(("N", 3, 4), "normal")]),
    "index_negative_int": Case(lambda x: x[:, -1], [(("N", 3, 4), "normal")]),
    "index_slices": Case(lambda x: x[:, 1:3, ::2], [(("N", 3, 4), "normal")]),
    "index_negative_slice": Case(lambda x: x[:, -2:], [(("N", 3, 4), "normal")]),
    "index_ellipsis_none": Case(lambda x: x[..., None, 0], [(("N", 3, 4), "normal")]),
    "index_batch_slice": Case(lambda x: x[1:] * 1, [(("N", 3), "normal")]),
    "index_add_into_zeros": Case(
        lambda g: index_add_into_zeros(g, [], normalize_key((slice(None), slice(1, 5, 2)),
                                                            (0, 6))[0], (g.shape[0], 6)),
        [(("N", 2), "normal")]),
    "cat_dim1": Case(lambda x, y: runtime.cat([x, y, x], 1),
                     [(("N", 3), "normal"), (("N", 2), "normal")]),
    "cat_dim0": Case(lambda x, y: runtime.cat([x, y], 0),
                     [(("N", 3), "normal"), (("N", 3), "normal")]),
    "stack": Case(lambda x, y: runtime.stack([x, y], 1),
                  [(("N", 3), "normal"), (("N", 3), "normal")]),
    "expand": Case(lambda x: x.expand(-1, 4, 3), [(("N", 1, 3), "normal")]),
    "expand_parameter": Case(lambda x, w: x + w.expand(x.shape[0], 3), [(("N", 3), "normal")],
                             {"w": ((3,), "normal")}),
    "permute": Case(lambda x: x.permute(2, 0, 1), [(("N", 3, 4), "normal")]),
    "transpose": Case(lambda x: x.transpose(0, 1), [(("N", 3), "normal")]),
    "reshape": Case(lambda x: x.reshape(-1, 12) + 1, [(("N", 3, 4), "normal")]),
    "reshape_output": Case(lambda x: (x + 1).reshape(-1, 12), [(("N", 3, 4), "normal")]),
    "reshape_of_input": Case(lambda x: x.reshape(-1, 12), [(("N", 3, 4), "normal")]),
    "flatten_of_permute": Case(lambda x: x.permute(0, 2, 1).flatten(1),
                               [(("N", 3, 4), "normal")]),
    "to_float64": unary(lambda x: x.double()),
    "to_int64": Case(lambda x: (x * 3).long(), [(("N", 12), "normal")]),
    "bool_to_float": binary(lambda x, y: (x > y).to(x.dtype)),
    "clone": unary(lambda x: x.clone()),
    "detach": unary(lambda x: x.detach() * x),
    "sum_to": Case(lambda x: sum_to(x, (1, 3, 1)), [(("N", 3, 4), "normal")]),
    "sum_to_fewer_dims": Case(lambda x: sum_to(x, (4,)), [(("N", 3, 4), "normal")]),
    # convolution and its derivatives
    "conv2d": Case(lambda x, w, b: F.conv2d(x, w, b), [(("N", 2, 6, 5), "normal")],
                   {"w": ((3, 2, 3, 3), "normal"), "b": ((3,), "normal")}),
    "conv2d_strided_padded_dilated": Case(
        lambda x, w: F.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
        [(("N", 2, 7, 6), "normal")], {"w": ((4, 2, 3, 2), "normal")}),
    "conv2d_groups_same": Case(lambda x, w, b: F.conv2d(x, w, b, padding="same", groups=2),
                               [(("N", 4, 5, 5), "normal")],
                               {"w": ((6, 2, 2, 3), "normal"), "b": ((6,), "normal")}),
    "conv1d": Case(lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1),
                   [(("N", 3, 9), "normal")], {"w": ((2, 3, 4), "normal"), "b": ((2,), "normal")}),
    "conv_input_grad": Case(lambda g, w: conv_ops.convolution_input_grad(
        g, w, (7, 6), stride=(2, 1), padding=((1, 1), (2, 2)), dilation=(1, 2), groups=2),
        [(("N", 4, 4, 8), "normal")], {"w": ((4, 1, 3, 2), "normal")}),
    "conv_weight_grad": Case(lambda x, g: conv_ops.convolution_weight_grad(
        x, g, (3, 2), stride=(2, 1), padding=((1, 1), (2, 2)), dilation=(1, 2), groups=2),
        [(("N", 2, 7, 6), "normal"), (("N", 4, 4, 8), "normal")], scale=4),
    # pooling and its derivatives
    "max_pool2d": Case(lambda x: F.max_pool2d(x, 2), [(("N", 2, 4, 6), "coarse")]),
    "max_pool2d_special": Case(lambda x: F.max_pool2d(x, 2), [(("N", 2, 4, 6), "special")]),
    "max_pool2d_overlapping_padded_ceil": Case(
        lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, return_indices=True),
        [(("N", 2, 6, 7), "normal")]),
    "max_pool2d_dilated": Case(lambda x: F.max_pool2d(x, 2, stride=1, dilation=2),
                               [(("N", 2, 5, 5), "normal")]),
    "max_pool1d": Case(lambda x: F.max_pool1d(x, 3, stride=2), [(("N", 2, 9), "normal")]),
    "pool_scatter": Case(lambda g, x: pool_ops.pool_scatter(
        g, pool_ops.max_pool_indices(x, kernel=(3, 3), stride=(2, 2), padding=(1, 1),
                                     dilation=(1, 1), ceil_mode=False), (5, 5)),
        [(("N", 2, 3, 3), "normal"), (("N", 2, 5, 5), "normal")]),
    "adaptive_max_pool2d": Case(lambda x: F.adaptive_max_pool2d(x, (3, 2), return_indices=True),
                                [(("N", 2, 7, 5), "normal")]),
    "adaptive_max_pool2d_special": Case(lambda x: F.adaptive_max_pool2d(x, 2),
                                        [(("N", 2, 4, 6), "special")]),
    "adaptive_max_pool1d": Case(lambda x: F.adaptive_max_pool1d(x, 4), [(("N", 2, 9), "coarse")]),
    "avg_pool2d": Case(lambda x: F.avg_pool2d(x, 2), [(("N", 2, 4, 6), "normal")]),
    "avg_pool2d_padded": Case(lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
                              [(("N", 2, 6, 7), "normal")]),
    "avg_pool2d_without_padding_count": Case(
        lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False),
        [(("N", 2, 6, 7), "normal")]),
    "avg_pool2d_divisor_override": Case(lambda x: F.avg_pool2d(x, 2, divisor_override=3),
                                        [(("N", 2, 4, 4), "normal")]),
    "adaptive_avg_pool2d": Case(lambda x: F.adaptive_avg_pool2d(x, 1),
                                [(("N", 3, 4, 4), "normal")]),
    "avg_pool_backward": Case(lambda g: pool_ops.avg_pool_backward(
        g, (6, 7), kernel=(3, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True,
        count_include_pad=False, divisor_override=None), [(("N", 2, 4, 4), "normal")]),
}

CASES = {**ELEMENTWISE, **STRUCTURED}


# Failures of files outside lowering, reported to their owner; strict, so a fix shows up here.
KNOWN_FAILURES: dict[tuple[str, bool], str] = {}


def _cases(names: list[str]) -> list[Any]:
    """(name, simplified) pairs, the known failures marked as such."""
    params = []
    for name in sorted(names):
        for simplified in (False, True):
            reason = KNOWN_FAILURES.get((name, simplified))
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            params.append(pytest.param(name, simplified, marks=marks,
                                       id=f"{name}-{'simplified' if simplified else 'as_traced'}"))
    return params


def _model(case: Case, dtype: Any) -> FunctionModel:
    rng = np.random.default_rng(7)
    parameters = {name: make_array(shape, kind, 0, dtype, rng)
                  for name, (shape, kind) in case.parameters.items()}
    return FunctionModel(case.fn, **parameters)


def _inputs(case: Case, n: int, dtype: Any) -> list[np.ndarray]:
    rng = np.random.default_rng(n)
    return [make_array(shape, kind, n, dtype, rng) for shape, kind in case.inputs]


def _eager(model: FunctionModel, inputs: list[np.ndarray]) -> list[np.ndarray]:
    with runtime.no_grad():
        result = model(*tensors(inputs))
    results = result if isinstance(result, tuple) else (result,)
    return [r.numpy() for r in results]


def _check_case(name: str, dtype: Any, simplified: bool) -> None:
    case = CASES[name]
    model = _model(case, dtype)
    graph = trace(model, tensors(_inputs(case, 5, dtype)))
    if simplified:
        graph = simplify(graph)
    native = build_native(graph)
    for n in case.batch_sizes:
        inputs = _inputs(case, n, dtype)
        arguments = graph_arguments(model, inputs)
        expected = _eager(model, inputs)
        reference = interpret(graph, arguments)
        got = native(*arguments)
        for i, (e, r, g) in enumerate(zip(expected, reference, got)):
            assert_close(r, e, f"{name}: interpreter vs eager, output {i}, batch {n}")
            assert_close(g, e, f"{name}: native vs eager, output {i}, batch {n}",
                         scale=case.scale)


@pytest.mark.parametrize(("name", "simplified"), _cases(list(ELEMENTWISE)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_elementwise_op_matches_eager(name: str, dtype: Any, simplified: bool) -> None:
    _check_case(name, dtype, simplified)


@pytest.mark.parametrize(("name", "simplified"), _cases(list(STRUCTURED)))
def test_structured_op_matches_eager_float32(name: str, simplified: bool) -> None:
    _check_case(name, np.float32, simplified)


@pytest.mark.parametrize("name", ["sum_dim(0, 2)_keepFalse", "softmax_dim0", "log_softmax_dim-1",
                                  "matmul_broadcast_batch", "linear", "gather_dim2",
                                  "scatter_add", "mean_all", "amax_special", "argmax_special",
                                  "cat_dim1", "index_slices", "conv2d_groups_same",
                                  "conv_input_grad", "conv_weight_grad",
                                  "max_pool2d_overlapping_padded_ceil", "pool_scatter",
                                  "avg_pool2d_padded", "avg_pool_backward"])
def test_structured_op_matches_eager_float64(name: str) -> None:
    _check_case(name, np.float64, simplified=True)


def test_every_lowering_rule_and_every_elementwise_op_has_a_case() -> None:
    """The cases above cover each op of rules.RULES and each elementwise primitive."""
    covered: set[str] = set()
    for case in CASES.values():
        model = _model(case, np.float32)
        graph = trace(model, tensors(_inputs(case, 5, np.float32)))
        covered.update(node.op_name for node in graph.nodes)
        covered.update(node.op_name for node in simplify(graph).nodes)
    elementwise_ops = {name for name, op in OPS.items()
                       if isinstance(op, Elementwise) and lowerable(op.expr) is None}
    assert set(rules.RULES) - covered == set()
    assert elementwise_ops - covered == set()


def test_an_elementwise_op_without_native_lowering_is_a_clear_compile_error() -> None:
    """Ops whose formula uses a function the emitter has no rule for (sin, erf, floor, ...) run
    eagerly; compiling them says which function is missing."""
    missing = {name: lowerable(op.expr) for name, op in OPS.items()
               if isinstance(op, Elementwise) and lowerable(op.expr) is not None}
    assert "sin" in missing
    model = FunctionModel(lambda x: x.sin())
    graph = trace(model, tensors([np.ones((2, 3), np.float32)]))
    with pytest.raises(CompileError, match="op 'sin' uses sin, which has no native lowering"):
        build_native(graph)


def test_log_softmax_of_extreme_logits_is_finite() -> None:
    model = FunctionModel(lambda x: x.log_softmax(1))
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], np.float32)
    graph = simplify(trace(model, tensors([logits])))
    (out,) = build_native(graph)(logits)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, [[0.0, -2e4, -1e4], [-np.log(3)] * 3], rtol=1e-6)


def test_indexing_with_an_index_tensor_is_a_compile_error_naming_op_and_line() -> None:
    def pick(x):
        return x[:, [0, 2]]  # the line the error must name

    line = pick.__code__.co_firstlineno + 1
    graph = trace(pick, tensors([np.zeros((4, 5), np.float32)]))
    message = rf"indexing with index tensors.*test_native_ops.py:{line}"
    with pytest.raises(CompileError, match=message) as error:
        build_native(graph)
    assert error.value.op == "index"


def test_assignment_into_a_traced_tensor_is_a_compile_error() -> None:
    def zero_first_column(x):
        y = x * 1
        y[:, 0] = 0.0
        return y

    graph = trace(zero_first_column, tensors([np.ones((4, 5), np.float32)]))
    with pytest.raises(CompileError, match="no native lowering for op 'index_put'"):
        build_native(graph)


def test_out_of_range_indices_stay_inside_the_buffers() -> None:
    """Eager gather raises IndexError; native code cannot raise, so it reads NaN instead of
    memory outside the input, and scatter drops what would land outside the output."""
    def gather(x, i):
        return x.gather(1, i)

    def scatter(g, i):
        return scatter_add_into_zeros(g, i, 1, (g.shape[0], 3))

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    index = np.array([[0, 7], [-1, -9]])
    with pytest.raises(IndexError):
        gather(*tensors([x, index]))
    (got,) = build_native(trace(gather, tensors([x, index])))(x, index)
    np.testing.assert_array_equal(got, [[0.0, np.nan], [5.0, np.nan]])
    (got,) = build_native(trace(scatter, tensors([x[:, :2], index])))(x[:, :2].copy(), index)
    np.testing.assert_array_equal(got, [[0.0, 0.0, 0.0], [0.0, 0.0, 3.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_keeps_its_relative_precision_near_zero(dtype: Any) -> None:
    """1 - 2 / (exp(2x) + 1) cancels to nothing for small x; the kernel must not."""
    magnitudes = np.geomspace(1e-30, 20.0, 2000)
    x = np.concatenate([magnitudes, -magnitudes]).astype(dtype).reshape(1, -1)
    (got,) = build_native(trace(lambda v: v.tanh(), tensors([x])))(x)
    np.testing.assert_allclose(got, np.tanh(x), rtol=8 * np.finfo(dtype).eps, atol=0)


def test_embedding_backward_sums_in_index_order_the_same_on_every_run() -> None:
    """Many indices naming few rows: the native scatter-add equals eager mode's np.add.at to
    the bit (the same additions in the same order), run after run."""
    rng = np.random.default_rng(0)
    grad = rng.standard_normal((64, 16, 8)).astype(np.float32) * 1e3
    indices = rng.integers(0, 3, (64, 16))
    model = FunctionModel(lambda g, i: embedding_backward(g, i, 3, None))
    native = build_native(trace(model, tensors([grad, indices])))
    expected = _eager(model, [grad, indices])[0]
    for _ in range(3):
        (got,) = native(grad, indices)
        np.testing.assert_array_equal(got, expected)
