"""Helpers shared by the runtime.nn tests: a finite-difference gradient check in float64 and
conversions to and from torch (the oracle, when it is installed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import runtime


def assert_grad_matches_finite_differences(fn: Callable[..., runtime.Tensor],
                                           inputs: Sequence[runtime.Tensor], eps: float = 1e-6,
                                           rtol: float = 1e-5, atol: float = 1e-7) -> None:
    """Autograd's vector-Jacobian product of fn at `inputs`, for a random cotangent, must equal
    central finite differences of <cotangent, fn(inputs)> for every input that requires grad."""
    output = fn(*inputs)
    cotangent = np.random.default_rng(0).standard_normal(output.shape)
    wrt = [x for x in inputs if x.requires_grad]
    analytic = runtime.autograd.grad(output, wrt, runtime.tensor(cotangent, dtype=output.dtype))
    for position, (x, grad) in enumerate(zip(wrt, analytic)):
        values = x.detach().numpy()  # shares memory with x: perturb in place
        numeric = np.zeros_like(values)
        for index in np.ndindex(values.shape):
            original = values[index]
            values[index] = original + eps
            plus = _dot(fn(*inputs), cotangent)
            values[index] = original - eps
            minus = _dot(fn(*inputs), cotangent)
            values[index] = original
            numeric[index] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(grad.numpy(), numeric, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {position} differs from finite "
                                           "differences")


def _dot(output: runtime.Tensor, cotangent: np.ndarray) -> float:
    return float((output.detach().numpy() * cotangent).sum())


def to_torch(tensor: runtime.Tensor, requires_grad: bool | None = None) -> Any:
    """The same values as a torch tensor (a copy), with the same requires_grad by default."""
    import torch

    copy = torch.tensor(tensor.detach().numpy().copy())
    wanted = tensor.requires_grad if requires_grad is None else requires_grad
    return copy.requires_grad_(wanted) if copy.is_floating_point() else copy


def from_torch(tensor: Any) -> runtime.Tensor:
    return runtime.tensor(tensor.detach().numpy().copy())
