"""Numerical robustness: losses at extreme logits, and float32 reductions over a million elements.

Cross-entropy, log-softmax and BCE-with-logits must stay finite for logits up to +/-1e4, with the
values and gradients PyTorch gives, in eager mode and compiled. A float32 sum or mean of 10**6
elements must be as accurate as PyTorch's: both are compared with the float64 answer, and ours
may be off by at most 8 times PyTorch's error, counting an error below one float32 ulp as one ulp.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import compiler
import runtime
from runtime import nn

torch = pytest.importorskip("torch")

LOGITS = np.array([[1e4, -1e4, 0.0, 5.0],
                   [-1e4, -1e4, -1e4, -1e4],
                   [1e4, 1e4 - 1.0, -3.0, 1e4],
                   [-1e4, 2.5, 1e4, -0.5],
                   [0.1, -0.2, 0.3, -0.4]])
CLASSES = np.array([1, 2, 0, 3, 0])
BINARY_TARGETS = np.array([[0.0, 1.0, 0.3, 1.0],
                           [1.0, 0.0, 0.5, 0.0],
                           [1.0, 1.0, 0.0, 0.0],
                           [0.0, 0.7, 1.0, 1.0],
                           [0.5, 0.5, 0.5, 0.5]])
COTANGENT = np.linspace(-1.0, 1.0, LOGITS.size).reshape(LOGITS.shape)


class Loss(nn.Module):
    """`fn(x, target)` as a module, so that the compiler traces it."""

    def __init__(self, fn: Callable[[Any, Any], Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Any, target: Any) -> Any:
        return self.fn(x, target)


CASES = {
    "cross_entropy": (lambda lib: lib.nn.functional.cross_entropy, CLASSES),
    "cross_entropy_sum": (lambda lib: lambda x, t: lib.nn.functional.cross_entropy(
        x, t, reduction="sum"), CLASSES),
    "log_softmax": (lambda lib: lambda x, t: lib.nn.functional.log_softmax(x, 1) * t,
                    COTANGENT),
    "bce_with_logits": (lambda lib: lib.nn.functional.binary_cross_entropy_with_logits,
                        BINARY_TARGETS),
    "bce_with_logits_none": (lambda lib: lambda x, t: lib.nn.functional.
                             binary_cross_entropy_with_logits(x, t, reduction="none") * 3,
                             BINARY_TARGETS),
}


def _target(lib: Any, target: np.ndarray, dtype: str) -> Any:
    return lib.tensor(target if target.dtype.kind == "i" else target.astype(dtype))


def _value_and_grad(lib: Any, fn: Callable[..., Any], target: np.ndarray, dtype: str,
                    compiled: bool = False) -> tuple[np.ndarray, np.ndarray]:
    x = lib.tensor(LOGITS.astype(dtype), requires_grad=True)
    t = _target(lib, target, dtype)
    if compiled:
        fn = compiler.compile(Loss(fn), (x.detach(), t))
    out = fn(x, t)
    out.backward(lib.ones_like(out))
    return out.detach().numpy(), x.grad.numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_at_extreme_logits_is_finite_and_matches_pytorch(case: str, compiled: bool,
                                                              dtype: str) -> None:
    make, target = CASES[case]
    value, grad = _value_and_grad(runtime, make(runtime), target, dtype, compiled)
    expected_value, expected_grad = _value_and_grad(torch, make(torch), target, dtype)
    assert np.isfinite(value).all() and np.isfinite(grad).all(), f"{value}\n{grad}"
    rtol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(value, expected_value, rtol=rtol,
                               atol=rtol * np.abs(expected_value).max())
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=rtol)


# ----- float32 reductions over 10**6 elements ----------------------------------------------------

REDUCTIONS = [((1000, 1000), None), ((4, 250_000), 1), ((1_000_000, 1), 0), ((10, 100_000), (0, 1)),
              ((1, 1_000_000), 1)]


class Reduce(nn.Module):
    def __init__(self, op: str, dims: Any) -> None:
        super().__init__()
        self.op = op
        self.dims = dims

    def forward(self, x: Any) -> Any:
        return getattr(x, self.op)() if self.dims is None else getattr(x, self.op)(self.dims)


def _ulps(values: np.ndarray, exact: np.ndarray, scale: np.ndarray) -> float:
    """The largest error, in float32 ulps of the sum of magnitudes (summation's condition)."""
    error = np.abs(values.astype(np.float64) - exact) / scale
    return float(np.max(error)) / float(np.finfo(np.float32).eps)


def _assert_as_accurate_as_pytorch(op: str, dims: Any, data: np.ndarray,
                                   ours: np.ndarray) -> None:
    exact = getattr(data.astype(np.float64), op)(axis=dims)
    scale = getattr(np.abs(data.astype(np.float64)), op)(axis=dims)
    x = torch.tensor(data)
    theirs = (getattr(x, op)() if dims is None else getattr(x, op)(dims)).numpy()
    our_error, their_error = _ulps(ours, exact, scale), _ulps(theirs, exact, scale)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    assert our_error <= 8 * max(their_error, 1.0), (
        f"{op} over {dims} of {data.shape}: {our_error:.2f} ulps, PyTorch {their_error:.2f}")


def _data(shape: tuple[int, ...], positive: bool) -> np.ndarray:
    rng = np.random.default_rng(sum(shape) + positive)
    values = rng.uniform(1.0, 2.0, shape) if positive else rng.standard_normal(shape) * 10 + 1
    return values.astype(np.float32)


@pytest.mark.parametrize("positive", [True, False], ids=["positive", "mixed-signs"])
@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize("shape, dims", REDUCTIONS)
def test_float32_reduction_of_a_million_elements(shape: tuple[int, ...], dims: Any, op: str,
                                                 positive: bool) -> None:
    data = _data(shape, positive)
    model = Reduce(op, dims)
    eager = model(runtime.tensor(data)).numpy()
    fast = compiler.compile(model, (runtime.tensor(data),))
    with runtime.no_grad():
        compiled = fast(runtime.tensor(data)).numpy()
    _assert_as_accurate_as_pytorch(op, dims, data, eager)
    _assert_as_accurate_as_pytorch(op, dims, data, compiled)


def test_float32_column_sums_over_the_batch() -> None:
    # rows added one after another were ~14 ulps off here, PyTorch ~1.4 (cascade_sum.py)
    data = _data((1000, 1000), True)
    fast = compiler.compile(Reduce("sum", 0), (runtime.tensor(data),))
    with runtime.no_grad():
        compiled = fast(runtime.tensor(data)).numpy()
    _assert_as_accurate_as_pytorch("sum", 0, data, compiled)
