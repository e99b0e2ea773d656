"""compiler.grad: the reverse-mode graph, run by the interpreter, gives the gradients eager
autograd gives (float64, to rounding) and central finite differences give, for models covering
every differentiable op; differentiating the joint graph again gives eager double backward."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from compiler_testing import FunctionModel, finite_differences, tensors

import runtime
from compiler import CompileError, grad, simplify, trace
from compiler.interpret import run
from compiler.native_build import build_native
from runtime.nn import functional as F
from runtime.ops import OPS
from runtime.ops import conv as conv_ops
from runtime.ops import embedding as embedding_ops
from runtime.ops import pooling as pool_ops
from runtime.ops.indexing import index_add_into_zeros, normalize_key
from runtime.ops.reduction import scatter_add_into_zeros
from runtime.ops.shape import sum_to

BATCH = 3


@dataclass
class Case:
    """fn(*inputs, *parameters) with inputs (shape with "N" for the batch, kind)."""

    fn: Callable[..., Any]
    inputs: list[tuple[tuple[Any, ...], str]]
    parameters: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    check_finite_differences: bool = True  # False where the function rounds to float32


def make_array(shape: tuple[Any, ...], kind: str, rng: np.random.Generator,
               batch: int = BATCH) -> np.ndarray:
    """float64 "normal" or "positive" values, or int64 "index:k" in [0, k)."""
    shape = tuple(batch if s == "N" else s for s in shape)
    if kind.startswith("index:"):
        return rng.integers(0, int(kind[6:]), shape).astype(np.int64)
    if kind == "positive":
        return rng.uniform(0.5, 2.0, shape)
    return rng.standard_normal(shape)


def x_only(fn: Callable[..., Any], shape: tuple[Any, ...] = ("N", 4), **parameters: Any) -> Case:
    return Case(fn, [(shape, "normal")], dict(parameters))


def x_and_y(fn: Callable[..., Any], kind: str = "normal") -> Case:
    return Case(fn, [(("N", 4), "normal"), (("N", 4), kind)])


def method_times_x(name: str, domain: Callable[..., Any] = lambda x: x) -> Callable[..., Any]:
    """x -> domain(x).name() * x: a unary function inside its domain."""
    return lambda x: getattr(domain(x), name)() * x


CASES = {
    # elementwise primitives
    "add_sub_mul_div": x_and_y(lambda x, y: (x + y) * (x - y) / (y * y + 1) - 2 / (x * x + 1)),
    "neg_and_pow": x_and_y(lambda x, y: -(x.abs() + 0.5) ** y + x ** 3 + 2 ** x + x ** -2),
    "abs": x_only(lambda x: x.abs() * x),
    "maximum_minimum": x_and_y(lambda x, y: runtime.maximum(x, y) * runtime.minimum(x, y * 2)),
    "where": x_and_y(lambda x, y: runtime.where(x > 0, x * y, y.exp())),
    "exp_log_log1p": x_only(lambda x: x.exp() + (x * x + 1).log() + x.abs().log1p()),
    "sqrt_rsqrt_reciprocal": x_only(
        lambda x: (x * x + 1).sqrt() * (x * x + 2).rsqrt() + (x * x + 1).reciprocal()),
    "relu": x_only(lambda x: x.relu() * x),
    "leaky_relu": x_only(lambda x: F.leaky_relu(x, 0.2) * x),
    "sigmoid": x_only(lambda x: x.sigmoid() * x),
    "tanh": x_only(lambda x: x.tanh() * x),
    "softplus": x_only(lambda x: F.softplus(x) * x),
    "silu": x_only(lambda x: F.silu(x) * x),
    "clamp": x_and_y(lambda x, y: x.clamp(-0.5, 0.5) + x.clamp(min=-0.2) * x.clamp(max=0.3)
                     + runtime.clamp(x, y, y + 1)),
    "bce_with_logits": Case(
        lambda z, t, w: F.binary_cross_entropy_with_logits(z, t.sigmoid(), pos_weight=w),
        [(("N", 4), "normal"), (("N", 4), "normal")], {"w": ((4,), "positive")}),
    # broadcasting, shapes, dtypes
    "expand_and_sum_to": x_only(lambda x, w: x.expand(-1, 3, 4) * w + sum_to(x, (1, 1, 4)),
                                shape=("N", 1, 4), w=((3, 1), "normal")),
    "bias_broadcast": x_only(lambda x, b: (x + b) * x, b=((4,), "normal")),
    "reshape_permute_transpose": x_only(
        lambda x, w: x.reshape(-1, 2, 2).permute(2, 0, 1).transpose(0, 1).flatten(1) * w,
        w=((4,), "normal")),
    "to_dtype": Case(lambda x, y: (x.float() * 2).double() * y,
                     [(("N", 4), "normal"), (("N", 4), "normal")],
                     check_finite_differences=False),
    "clone": x_and_y(lambda x, y: x.clone() * y),
    # detach cuts the derivative on purpose, so finite differences see more than backward does
    "detach": Case(lambda x: x * x.detach(), [(("N", 4), "normal")],
                   check_finite_differences=False),
    "cat_and_stack": x_and_y(lambda x, y: runtime.cat([x, y * 2, x * y], 1).exp()
                             * runtime.stack([x, y, x], 2).flatten(1)),
    # reductions
    "sum_mean": x_only(lambda x: x.sum(1, keepdim=True) * x.mean(0) + x.sum() * x.mean()),
    "sum_mean_3d": x_only(lambda x: x.sum((0, 2)).exp() * x.mean(1, keepdim=True).sum(),
                          shape=("N", 3, 2)),
    "amax_amin": x_only(lambda x: x.amax(1) * x.amin(0).sum() + x.max() - x.min()),
    "max_min_along_dim": x_only(lambda x: x.max(1).values * x.min(0, keepdim=True).values.sum()),
    "var_std_norm": x_only(lambda x: x.var(1) + x.std(0).sum() + x.norm()),
    "gather": Case(lambda x, i: x.gather(1, i) * x.sum(1, keepdim=True),
                   [(("N", 5), "normal"), (("N", 3), "index:5")]),
    "scatter_add": Case(lambda x, i: scatter_add_into_zeros(x, i, 1, (x.shape[0], 5)).exp(),
                        [(("N", 7), "normal"), (("N", 7), "index:5")]),
    # matrix products
    "linear": x_only(lambda x, w, b: F.linear(x, w, b).tanh(), w=((3, 4), "normal"),
                     b=((3,), "normal")),
    "matmul_vector": x_only(lambda x, v: (x @ v).exp(), v=((4,), "normal")),
    "matmul_vector_left": x_only(lambda x, v: v @ x.T, v=((4,), "normal")),
    "matmul_dot": x_only(lambda x, v: x.sum(0) @ v, v=((4,), "normal")),
    "matmul_batched": Case(lambda x, y: (x @ y).tanh(),
                           [(("N", 3, 4), "normal"), (("N", 4, 2), "normal")]),
    "matmul_broadcast_batch": x_only(lambda x, w: (x @ w).tanh(), shape=("N", 1, 3, 4),
                                     w=((2, 4, 5), "normal")),
    # softmax family and losses
    "softmax_dim1": x_only(lambda x, w: x.softmax(1) * w, w=((4,), "normal")),
    "softmax_dim0": x_only(lambda x, w: x.softmax(0) * w, w=((4,), "normal")),
    "log_softmax": x_only(lambda x, w: x.log_softmax(1) * w, w=((4,), "normal")),
    "log_of_softmax": x_only(lambda x: x.softmax(-1).log().sum()),
    "cross_entropy": Case(lambda x, t: F.cross_entropy(x, t),
                          [(("N", 4), "normal"), (("N",), "index:4")]),
    "nll_of_log_softmax": Case(lambda x, t: F.nll_loss(x.log_softmax(1), t, reduction="sum"),
                               [(("N", 4), "normal"), (("N",), "index:4")]),
    "mse_of_softmax": x_and_y(lambda x, y: F.mse_loss(x.softmax(1), y)),
    # indexing
    "basic_index": x_only(lambda x: x[:, 1:3].exp() * x[:, 0:1] + x[1:, ::2].sum()),
    "index_with_a_list": x_only(lambda x: x[:, [0, 2, 2]].exp()),
    "index_add_into_zeros": x_only(
        lambda x: index_add_into_zeros(
            x, [], normalize_key((slice(None), slice(1, 5, 2)), (0, 6))[0],
            (x.shape[0], 6)).exp(), shape=("N", 2)),
    "index_put": x_and_y(lambda x, y: index_put_model(x, y)),
    # math functions: sinh, cosh, sign, lerp and masked_fill lower natively, the others not yet
    "sinh_cosh_sign": x_only(lambda x: x.sinh() * x.cosh().sign() + x.sign() * x),
    "lerp": x_and_y(lambda x, y: runtime.lerp(x, y, 0.3) * runtime.lerp(y, x, x.sigmoid())),
    "masked_fill": x_only(lambda x: x.masked_fill(x > 0.5, -1.0) * x.exp()),
    **{name: x_only(method_times_x(name))
       for name in ("sin", "cos", "atan", "asinh", "erf", "erfc", "exp2", "expm1", "floor",
                    "ceil", "trunc", "round", "frac")},
    **{name: x_only(method_times_x(name, lambda x: x.tanh() * 0.9))
       for name in ("asin", "acos", "atanh", "tan")},
    **{name: x_only(method_times_x(name, lambda x: x * x + 1.5))
       for name in ("acosh", "log2", "log10")},
    "atan2": x_and_y(lambda x, y: runtime.atan2(x, y * y + 0.5) * x),
    # scans, products, sorting and rearranging (no native lowering yet)
    "cumsum": x_only(lambda x: x.cumsum(1) * x),
    "cumprod": x_only(lambda x: (x * x + 0.5).cumprod(1) * x),
    "prod": x_only(lambda x: (x * x + 0.5).prod(1) * x.sum(1)),
    "logsumexp": x_only(lambda x: x.logsumexp(1) * x.sum(1)),
    "flip": x_only(lambda x: x.flip(1) * x),
    "roll": x_only(lambda x: x.roll(1, 1) * x),
    "repeat": x_only(lambda x: x.repeat(1, 2) * x.repeat(1, 2).exp()),
    "tril": Case(lambda x: x.tril() * x, [((4, 4), "normal")]),
    "triu": Case(lambda x: x.triu(1) * x, [((4, 4), "normal")]),
    "sort_values": x_only(lambda x: x.sort(1).values * x),
    "topk_values": x_only(lambda x: x.topk(2, 1).values.exp()),
    "kthvalue_values": x_only(lambda x: x.kthvalue(2, 1).values.exp()),
    # layers: convolution, pooling, embedding, activations
    "conv2d": Case(lambda x, w, b: F.conv2d(x, w, b, padding=1, stride=(1, 2)).tanh(),
                   [(("N", 2, 5, 5), "normal")], {"w": ((3, 2, 3, 3), "normal"),
                                                  "b": ((3,), "normal")}),
    "conv_input_grad": Case(lambda g, w: conv_ops.convolution_input_grad(
        g, w, (5, 5), stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1),
        groups=1).tanh(), [(("N", 3, 5, 5), "normal")], {"w": ((3, 2, 3, 3), "normal")}),
    "conv_weight_grad": Case(lambda x, g: conv_ops.convolution_weight_grad(
        x, g, (3, 3), stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1),
        groups=1).tanh(), [(("N", 2, 5, 5), "normal"), (("N", 3, 5, 5), "normal")]),
    "max_pool2d": Case(lambda x: F.max_pool2d(x, 2).exp(), [(("N", 2, 4, 4), "normal")]),
    "pool_scatter": Case(lambda g, x: pool_ops.pool_scatter(
        g, pool_ops.max_pool_indices(x, kernel=(2, 2), stride=(2, 2), padding=(0, 0),
                                     dilation=(1, 1), ceil_mode=False), (4, 4)).tanh() * x,
        [(("N", 2, 2, 2), "normal"), (("N", 2, 4, 4), "normal")]),
    "avg_pool2d": Case(lambda x: F.avg_pool2d(x, 2, padding=1).exp(),
                       [(("N", 2, 4, 4), "normal")]),
    "avg_pool_backward": Case(lambda g: pool_ops.avg_pool_backward(
        g, (4, 4), kernel=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False,
        count_include_pad=True, divisor_override=None).tanh(), [(("N", 2, 2, 2), "normal")]),
    "embedding": Case(lambda i, w: F.embedding(i, w).tanh(),
                      [(("N", 3), "index:5")], {"w": ((5, 4), "normal")}),
    "embedding_backward": Case(lambda g, i: embedding_ops.embedding_backward(
        g, i, 5, None).tanh(), [(("N", 3, 4), "normal"), (("N", 3), "index:5")]),
    "gelu": x_only(lambda x: F.gelu(x) * F.gelu(x, approximate="tanh")),
    "elu": x_only(lambda x: F.elu(x) * x),
}


def index_put_model(x: runtime.Tensor, y: runtime.Tensor) -> runtime.Tensor:
    z = x * y
    z[:, 1] = x[:, 0] * 3
    return z.exp()


def _arrays(case: Case, batch: int = BATCH) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    inputs = [make_array(shape, kind, rng, batch) for shape, kind in case.inputs]
    parameters = {name: make_array(shape, kind, rng)
                  for name, (shape, kind) in case.parameters.items()}
    return inputs, parameters


def _eager_gradients(case: Case, arrays: list[np.ndarray], cotangent: np.ndarray
                     ) -> tuple[np.ndarray, list[np.ndarray]]:
    xs = tensors(arrays, requires_grad=True)
    out = case.fn(*xs)
    out.backward(runtime.tensor(cotangent))
    return out.detach().numpy(), [x.grad.numpy() for x in xs if x.requires_grad]


def _compiled_gradients(case: Case, inputs: list[np.ndarray], parameters: dict[str, np.ndarray],
                        cotangent: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    model = FunctionModel(case.fn, **parameters)
    graph = trace(model, tensors(inputs))
    wrt = [v.name for v in graph.inputs if v.dtype.is_floating_point]
    joint = grad(graph, wrt=wrt, seed_input=True)
    out, *grads = run(joint, [*inputs, *parameters.values(), cotangent])
    return out, grads


@pytest.mark.parametrize("name", sorted(CASES))
def test_reverse_mode_graph_matches_eager_autograd_and_finite_differences(name: str) -> None:
    case = CASES[name]
    inputs, parameters = _arrays(case)
    arrays = [*inputs, *parameters.values()]
    with runtime.no_grad():
        shape = case.fn(*tensors(arrays)).shape
    cotangent = np.random.default_rng(3).standard_normal(tuple(shape))
    expected_out, expected = _eager_gradients(case, arrays, cotangent)
    out, got = _compiled_gradients(case, inputs, parameters, cotangent)
    np.testing.assert_allclose(out, expected_out, rtol=1e-13, atol=1e-13)
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12,
                                   err_msg=f"{name}: gradient {i}, compiled vs eager")
    if not case.check_finite_differences:
        return

    def loss(values: list[np.ndarray]) -> float:
        with runtime.no_grad():
            return float((case.fn(*tensors(values)).numpy() * cotangent).sum())

    floating = [i for i, a in enumerate(arrays) if a.dtype == np.float64]
    for i, g in zip(floating, got):
        np.testing.assert_allclose(g, finite_differences(loss, arrays, i), rtol=1e-6, atol=1e-6,
                                   err_msg=f"{name}: gradient {i}, compiled vs finite differences")


NOT_LOWERED = {"index_with_a_list": "index", "index_put": "index_put",
               **{name: name for name in ("sin", "cos", "atan", "asinh", "erfc", "exp2",
                                          "expm1", "floor", "ceil", "trunc", "round", "frac",
                                          "asin", "acos", "atanh", "tan", "acosh", "log2",
                                          "log10", "atan2", "cumsum", "cumprod", "prod",
                                          "logsumexp", "flip", "roll", "repeat", "tril",
                                          "triu")},
               "sort_values": "argsort", "topk_values": "argsort", "kthvalue_values": "argsort",
               "elu": "fused"}  # elu's formula uses expm1


@pytest.mark.parametrize("name", sorted(CASES))
def test_reverse_mode_graph_simplified_and_native_matches_the_interpreter(name: str) -> None:
    """The joint graph, simplified and compiled once, at batch sizes 1, 3 and 8."""
    case = CASES[name]
    inputs, parameters = _arrays(case)
    graph = trace(FunctionModel(case.fn, **parameters), tensors(inputs))
    wrt = [v.name for v in graph.inputs if v.dtype.is_floating_point]
    joint = grad(graph, wrt=wrt, seed_input=True)
    if name in NOT_LOWERED:
        with pytest.raises(CompileError) as error:
            build_native(simplify(joint))
        assert error.value.op == NOT_LOWERED[name]
        return
    native = build_native(simplify(joint))
    for batch in (1, 3, 8):
        inputs, parameters = _arrays(case, batch)
        seed = np.random.default_rng(batch).standard_normal(
            tuple(batch if not isinstance(s, int) else s for s in joint.inputs[-1].shape))
        arguments = [*inputs, *parameters.values(), seed]
        for i, (got, expected) in enumerate(zip(native(*arguments), run(joint, arguments))):
            np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-11,
                                       err_msg=f"{name}: output {i} at batch {batch}")


def test_cases_cover_every_differentiable_op() -> None:
    covered: set[str] = set()
    for case in CASES.values():
        inputs, parameters = _arrays(case)
        graph = trace(FunctionModel(case.fn, **parameters), tensors(inputs))
        covered.update(n.op_name for n in graph.nodes)
    # composite ops never reach a graph: the trace records their decompositions
    differentiable = {name for name, op in OPS.items() if op.differentiable and not op.composite}
    assert differentiable - covered == set()


def test_scalar_output_is_seeded_with_one_and_gradients_are_named() -> None:
    model = FunctionModel(lambda x, w: (x @ w).tanh().sum(), w=np.ones((4, 2)))
    graph = trace(model, (runtime.randn(3, 4, dtype=runtime.float64),))
    joint = grad(graph)
    assert [v.name for v in joint.inputs] == ["input0", "w"]  # no seed input for a scalar
    assert [v.name for v in joint.outputs] == ["sum", "grad_w"]
    assert joint.gradient_of["w"].name == "grad_w"
    printed = str(joint)
    assert "%grad_w: f64[4, 2] = " in printed


def test_an_input_that_does_not_reach_the_output_gets_zeros() -> None:
    graph = trace(FunctionModel(lambda x, used, unused: (x * used).sum(),
                                used=np.ones(3), unused=np.ones(2)),
                  (runtime.randn(2, 3, dtype=runtime.float64),))
    joint = grad(graph)
    x = np.arange(6.0).reshape(2, 3)
    _, grad_used, grad_unused = run(joint, [x, np.ones(3), np.ones(2)])
    np.testing.assert_array_equal(grad_used, x.sum(0))
    np.testing.assert_array_equal(grad_unused, np.zeros(2))


def test_grad_refuses_unknown_names_and_integer_values() -> None:
    graph = trace(lambda x, i: x.gather(1, i).sum(),
                  (runtime.randn(2, 3), runtime.tensor([[0], [1]])))
    with pytest.raises(KeyError, match="'y' is not an input of the graph"):
        grad(graph, wrt=["y"])
    with pytest.raises(TypeError, match="only floating point values have gradients"):
        grad(graph, wrt=["i"])
    with pytest.raises(ValueError, match="nothing to differentiate"):
        grad(graph)


# ----- grad of grad -------------------------------------------------------------------------------

DOUBLE_BACKWARD = {
    "tanh_layer": x_only(lambda x, w, b: F.linear(x, w, b).tanh().pow(2).sum(),
                         w=((3, 4), "normal"), b=((3,), "normal")),
    "softmax_cross_entropy": Case(lambda x, t, w: F.cross_entropy(x @ w, t),
                                  [(("N", 4), "normal"), (("N",), "index:3")],
                                  {"w": ((4, 3), "normal")}),
    "sigmoid_times_exp": x_only(lambda x: (x.sigmoid() * x.exp()).sum() + (x * x).mean()),
}


@pytest.mark.parametrize("name", sorted(DOUBLE_BACKWARD))
def test_differentiating_the_joint_graph_again_matches_eager_double_backward(name: str) -> None:
    """grad(grad(f)) with a seed v: the Hessian-vector product H v, as
    autograd.grad(autograd.grad(f, x, create_graph=True), x, v)."""
    case = DOUBLE_BACKWARD[name]
    inputs, parameters = _arrays(case)
    v = np.random.default_rng(5).standard_normal(inputs[0].shape)

    xs = tensors([*inputs, *parameters.values()], requires_grad=True)
    (first,) = runtime.autograd.grad(case.fn(*xs), [xs[0]], create_graph=True)
    wrt = [x for x in xs if x.requires_grad]
    expected = runtime.autograd.grad(first, wrt, runtime.tensor(v))

    graph = trace(FunctionModel(case.fn, **parameters), tensors(inputs))
    joint = grad(graph, wrt=["input0"])
    names = [w.name for w in joint.inputs if w.dtype.is_floating_point]
    second = grad(joint, wrt=names, output=1, seed_input=True)
    _, first_got, *got = run(second, [*inputs, *parameters.values(), v])
    np.testing.assert_allclose(first_got, first.detach().numpy(), rtol=1e-12, atol=1e-12)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-11, atol=1e-12)
