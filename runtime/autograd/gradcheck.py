"""Gradient checking: `gradcheck` and `gradgradcheck`, with PyTorch's names and meaning.

`gradcheck(fn, inputs)` compares, for every floating input that requires grad and every
differentiable output, the analytical Jacobian (one backward pass per output element, through
`autograd.grad`) with central finite differences, `(fn(x + eps) - fn(x - eps)) / (2 eps)`, one
input element at a time. They agree when `|analytical - numerical| <= atol + rtol * |numerical|`
everywhere; otherwise GradcheckError (a RuntimeError) names the output, the input and both
Jacobians. Use float64 inputs: float32 has too few digits for eps = 1e-6.

`gradgradcheck(fn, inputs)` runs the same check on the function `(inputs, v) -> v^T J(inputs)`,
built with `create_graph=True`: it checks the derivatives of the derivatives (double backward).

This is a test helper: it reads and writes numpy arrays directly and is never traced.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from runtime import _tensor
from runtime._grad_mode import enable_grad
from runtime.autograd._engine import grad as autograd_grad

if TYPE_CHECKING:
    from runtime._tensor import Tensor


class GradcheckError(RuntimeError):
    """The analytical and numerical derivatives of a function disagree."""


def gradcheck(func: Callable[..., Any], inputs: Any, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """True if `func`'s backward agrees with finite differences at `inputs`; else GradcheckError
    (or False with raise_exception=False)."""
    inputs = _as_tuple(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, _tensor.Tensor) and x.requires_grad]
    if not wrt:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but "
                         "none of the them have requires_grad=True.")
    for i in wrt:
        if inputs[i].dtype.name != "float64":
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating "
                          "point. This check will likely fail if all the inputs are not of double "
                          "precision floating point.", UserWarning, stacklevel=2)
    try:
        _check(func, inputs, wrt, eps, atol, rtol)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def gradgradcheck(func: Callable[..., Any], inputs: Any,
                  grad_outputs: Sequence[Tensor] | Tensor | None = None, *, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """gradcheck of the vector-Jacobian product of `func`: checks its second derivatives.

    `grad_outputs` (the vectors v) default to fixed pseudo-random float64 tensors that require
    grad, so the check also covers the derivative with respect to v.
    """
    inputs = _as_tuple(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, _tensor.Tensor) and x.requires_grad]
    with enable_grad():
        outputs = _differentiable(_as_tuple(func(*inputs)))
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = tuple(_tensor.Tensor._from_array(rng.standard_normal(tuple(o.shape)), True)
                             for o in outputs)
    grad_outputs = _as_tuple(grad_outputs)
    n_inputs = len(inputs)

    def vector_jacobian_product(*args: Any) -> tuple[Tensor, ...]:
        xs, vs = args[:n_inputs], args[n_inputs:]
        outs = _differentiable(_as_tuple(func(*xs)))
        grads = autograd_grad(outs, [xs[i] for i in wrt], vs, create_graph=True,
                              allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(vector_jacobian_product, (*inputs, *grad_outputs), eps=eps, atol=atol,
                     rtol=rtol, raise_exception=raise_exception)


# ----- the check ---------------------------------------------------------------------------------

def _check(func: Callable[..., Any], inputs: tuple[Any, ...], wrt: list[int], eps: float,
           atol: float, rtol: float) -> None:
    with enable_grad():
        outputs = _as_tuple(func(*inputs))
    floating = [k for k, o in enumerate(outputs)
                if isinstance(o, _tensor.Tensor) and o.dtype.is_floating_point]
    numerical = {i: _numerical_jacobians(func, inputs, i, floating, eps) for i in wrt}
    for k in floating:
        out = outputs[k]
        if not out.requires_grad:
            for i in wrt:
                if np.any(numerical[i][k] != 0):
                    raise GradcheckError(f"Numerical gradient for function expected to be zero: "
                                         f"output {k} does not require grad, yet it changes with "
                                         f"input {i}")
            continue
        analytical = _analytical_jacobians(out, [inputs[i] for i in wrt])
        for i, jacobian in zip(wrt, analytical):
            if not np.allclose(jacobian, numerical[i][k], rtol=rtol, atol=atol):
                raise GradcheckError(f"Jacobian mismatch for output {k} with respect to input "
                                     f"{i},\nnumerical:{numerical[i][k]}\n"
                                     f"analytical:{jacobian}\n")


def _numerical_jacobians(func: Callable[..., Any], inputs: tuple[Any, ...], i: int,
                         outputs: list[int], eps: float) -> dict[int, np.ndarray]:
    """For each floating output k, d output_k / d input_i by central differences, as a
    (numel(input), numel(output)) matrix (PyTorch's layout)."""
    x = inputs[i]._data
    columns: dict[int, list[np.ndarray]] = {k: [] for k in outputs}
    for j in range(x.size):
        plus = _evaluate(func, inputs, i, j, eps)
        minus = _evaluate(func, inputs, i, j, -eps)
        for k in outputs:
            difference = plus[k].astype(np.float64) - minus[k].astype(np.float64)
            columns[k].append(difference.reshape(-1) / (2 * eps))
    return {k: np.array(columns[k]).reshape(x.size, -1) for k in outputs}


def _evaluate(func: Callable[..., Any], inputs: tuple[Any, ...], i: int, j: int,
              step: float) -> list[np.ndarray]:
    """func's outputs with element j of input i moved by `step` (on a fresh copy of the input,
    requiring grad like the original, so functions that differentiate inside still work)."""
    data = inputs[i]._data.copy()
    data.reshape(-1)[j] += step
    moved = list(inputs)
    moved[i] = _tensor.Tensor._from_array(data, requires_grad=True)
    with enable_grad():
        outputs = _as_tuple(func(*moved))
    return [o._data if isinstance(o, _tensor.Tensor) else np.asarray(o) for o in outputs]


def _analytical_jacobians(output: Tensor, xs: list[Tensor]) -> list[np.ndarray]:
    """d output / d x for each x, from one backward pass per output element, shaped like the
    numerical Jacobians."""
    jacobians = [np.zeros((x.numel(), output.numel())) for x in xs]
    for m in range(output.numel()):
        seed = np.zeros(tuple(output.shape), dtype=output._data.dtype)
        seed.reshape(-1)[m] = 1
        grads = autograd_grad([output], xs, [_tensor.Tensor._from_array(seed)], retain_graph=True,
                              allow_unused=True)
        for x, g, jacobian in zip(xs, grads, jacobians):
            if g is None:
                continue
            if tuple(g.shape) != tuple(x.shape):
                raise GradcheckError(f"Gradient has wrong shape: expected {list(x.shape)}, "
                                     f"got {list(g.shape)}")
            jacobian[:, m] = g._data.reshape(-1)
    return jacobians


# ----- helpers ---------------------------------------------------------------------------------

def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _differentiable(outputs: tuple[Any, ...]) -> list[Tensor]:
    return [o for o in outputs if isinstance(o, _tensor.Tensor) and o.requires_grad]

