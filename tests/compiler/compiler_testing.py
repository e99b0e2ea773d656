"""Helpers shared by the compiler tests: tolerances per dtype, a model made of a function and
named parameters, eager gradients, central finite differences, and running a graph three ways
(eager, `compiler.interpret.run`, native code) on the same arrays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import runtime
from compiler.interpret import run
from compiler.ir import Graph
from runtime import nn

# Native code may contract to FMA and sum in another order; float64 must still agree to ~1e-12.
TOLERANCE = {np.dtype(np.float32): {"rtol": 2e-5, "atol": 2e-6},
             np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-12}}


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str = "",
                 scale: float = 1.0) -> None:
    """Same shape and dtype, and equal within the dtype's tolerance (times `scale`); NaN must
    be where expected has NaN, and infinities must match exactly."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, want {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype}, want {expected.dtype}"
    if not np.issubdtype(expected.dtype, np.floating):
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    tolerance = TOLERANCE[expected.dtype]
    np.testing.assert_allclose(actual, expected, rtol=tolerance["rtol"] * scale,
                               atol=tolerance["atol"] * scale, equal_nan=True, err_msg=what)


class FunctionModel(nn.Module):
    """`forward(*inputs) = fn(*inputs, *parameters)`, with the parameters registered by name, so
    that tracing makes them graph inputs called `name`."""

    def __init__(self, fn: Callable[..., Any], **parameters: np.ndarray) -> None:
        super().__init__()
        self.fn = fn
        self.names = list(parameters)
        for name, array in parameters.items():
            setattr(self, name, nn.Parameter(runtime.tensor(array)))

    def forward(self, *inputs: Any) -> Any:
        return self.fn(*inputs, *(getattr(self, n) for n in self.names))


def tensors(arrays: Sequence[np.ndarray], requires_grad: bool = False) -> list[runtime.Tensor]:
    """Tensors holding copies of `arrays`; floating ones require grad if asked."""
    return [runtime.tensor(a.copy(), requires_grad=requires_grad
                           and np.issubdtype(a.dtype, np.floating)) for a in arrays]


def graph_arguments(model: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The arrays a traced graph of `model` takes: the inputs, then parameters and buffers."""
    state = [t.detach().numpy() for _, t in model.named_parameters()] \
        if hasattr(model, "named_parameters") else []
    return list(inputs) + state


def eager_gradients(model: Any, inputs: Sequence[np.ndarray], wrt_inputs: Sequence[int] = (),
                    cotangent: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """The model's output and the gradients of sum(output * cotangent) (or of the scalar output)
    with respect to the chosen inputs, then every parameter, by eager autograd."""
    xs = tensors(inputs)
    for i in wrt_inputs:
        xs[i].requires_grad_(True)
    parameters = list(model.parameters()) if hasattr(model, "parameters") else []
    for p in parameters:
        p.grad = None
    out = model(*xs)
    seed = None if cotangent is None else runtime.tensor(cotangent)
    out.backward(seed)
    grads = [xs[i].grad.numpy().copy() for i in wrt_inputs]
    grads += [p.grad.numpy().copy() if p.grad is not None else np.zeros(p.shape, p.dtype.numpy)
              for p in parameters]
    for p in parameters:
        p.grad = None
    return out.detach().numpy().copy(), grads


def finite_differences(f: Callable[[list[np.ndarray]], float], arrays: list[np.ndarray],
                       which: int, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f(arrays) with respect to arrays[which] (float64)."""
    arrays = [a.copy() for a in arrays]
    target = arrays[which]
    numeric = np.zeros_like(target)
    for index in np.ndindex(target.shape):
        original = target[index]
        target[index] = original + eps
        plus = f(arrays)
        target[index] = original - eps
        minus = f(arrays)
        target[index] = original
        numeric[index] = (plus - minus) / (2 * eps)
    return numeric


def interpret(graph: Graph, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The graph's outputs by the numpy reference executor."""
    return run(graph, list(arrays))


class NeuralNetwork(nn.Module):
    """The tutorial's MLP: Flatten, then Linear-ReLU-Linear-ReLU-Linear; `hidden` shrinks it."""

    def __init__(self, hidden: int = 512, inputs: int = 28 * 28, classes: int = 10) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, classes))

    def forward(self, x: runtime.Tensor) -> runtime.Tensor:
        return self.linear_relu_stack(self.flatten(x))
