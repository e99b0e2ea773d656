"""Random models (hypothesis): compositions of elementwise ops, broadcasting against parameters,
reductions, matrix products, softmax, transposes, concatenation, slicing and flattening over
small random shapes, in float64. For each, the
native code of the simplified reverse-mode graph, the interpreter running the graph as built,
and eager autograd agree on the output and on every gradient, at batch size 1 and another."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from compiler_testing import FunctionModel, tensors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import runtime
from compiler import grad, simplify, trace
from compiler.interpret import run
from compiler.native_build import build_native
from runtime.nn import functional as F

Shape = tuple[Any, ...]  # sizes are ints, and "N" for the batch dimension

UNARY: dict[str, Callable[[Any], Any]] = {
    "tanh": lambda v: v.tanh(), "sigmoid": lambda v: v.sigmoid(), "relu": lambda v: v.relu(),
    "abs": lambda v: v.abs(), "neg": lambda v: -v, "softplus": lambda v: F.softplus(v),
    "silu": lambda v: F.silu(v), "scale": lambda v: v * 1.5 - 0.25,
    "log": lambda v: (v * v + 1).log(), "sqrt": lambda v: (v * v + 0.5).sqrt(),
    "exp_tanh": lambda v: v.tanh().exp(), "square": lambda v: v ** 2,
}
BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1), "maximum": lambda a, b: runtime.maximum(a, b),
    "minimum": lambda a, b: runtime.minimum(a, b),
    "where": lambda a, b: runtime.where(a > b, a * 2, b),
}
REDUCTIONS = ("sum", "mean", "amax", "amin")


@dataclass
class Program:
    """A random model: steps that each make a value from earlier ones (value 0 is the input)."""

    input_shape: Shape
    steps: list[tuple[Any, ...]] = field(default_factory=list)
    parameters: dict[str, np.ndarray] = field(default_factory=dict)
    shapes: list[Shape] = field(default_factory=list)

    def __call__(self, x: Any, *parameters: Any) -> Any:
        by_name = dict(zip(self.parameters, parameters))
        values = [x]
        for kind, *args in self.steps:
            values.append(_STEP[kind](values, by_name, *args))
        return values[-1]


def _reduce(values: list[Any], _: Any, kind: str, i: int, dim: int, keepdim: bool) -> Any:
    return getattr(runtime, kind)(values[i], dim, keepdim=keepdim)


_STEP: dict[str, Callable[..., Any]] = {
    "unary": lambda values, _, op, i: UNARY[op](values[i]),
    "binary": lambda values, _, op, i, j: BINARY[op](values[i], values[j]),
    "parameter": lambda values, p, op, i, name: BINARY[op](values[i], p[name]),
    "reduce": _reduce,
    "matmul": lambda values, p, i, name: values[i] @ p[name],
    "matmul_left": lambda values, p, i, name: p[name] @ values[i],
    "softmax": lambda values, _, kind, i, dim: getattr(values[i], kind)(dim),
    "transpose": lambda values, _, i, a, b: values[i].transpose(a, b),
    "cat": lambda values, _, i, dim: runtime.cat([values[i], values[i].tanh()], dim),
    "slice": lambda values, _, i, dim, stop: values[i][(slice(None),) * dim + (slice(1, stop),)],
    "flatten": lambda values, _, i, start: values[i].flatten(start, start + 1),
}


def _broadcast(a: Shape, b: Shape) -> Shape | None:
    """numpy's broadcast of two shapes, "N" matching only "N" or 1; None if they do not fit."""
    result = []
    for k in range(1, max(len(a), len(b)) + 1):
        x = a[-k] if k <= len(a) else 1
        y = b[-k] if k <= len(b) else 1
        if x != y and 1 not in (x, y):
            return None
        result.append(y if x == 1 else x)
    return tuple(reversed(result))


@st.composite
def programs(draw: Any) -> Program:
    rank = draw(st.integers(1, 3))
    program = Program(("N", *draw(st.lists(st.integers(1, 4), min_size=rank - 1,
                                           max_size=rank - 1))))
    program.shapes.append(program.input_shape)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    for _ in range(draw(st.integers(2, 7))):
        _add_step(draw, program, rng)
    return program


def _add_step(draw: Any, program: Program, rng: np.random.Generator) -> None:
    shapes = program.shapes
    i = draw(st.integers(0, len(shapes) - 1))
    shape = shapes[i]
    kind = draw(st.sampled_from(["unary", "binary", "parameter", "reduce", "matmul", "softmax",
                                 "transpose", "cat", "slice", "flatten"]))
    fixed_dims = [d for d, size in enumerate(shape) if size != "N"]
    new_parameter = f"p{len(program.parameters)}"
    if kind == "binary":
        partners = [j for j, s in enumerate(shapes) if _broadcast(shape, s) is not None]
        j = draw(st.sampled_from(partners))
        op = draw(st.sampled_from(sorted(BINARY)))
        program.steps.append(("binary", op, i, j))
        shapes.append(_broadcast(shape, shapes[j]))
    elif kind == "parameter" and shape and "N" not in shape[-1:]:
        # a parameter of the trailing dims, some of them 1: a bias, a per-row scale, ...
        trailing = shape[len(shape) - draw(st.integers(1, min(len(shape), 2))):]
        p_shape = tuple(1 if s == "N" or draw(st.booleans()) else s for s in trailing)
        program.parameters[new_parameter] = rng.standard_normal(p_shape)
        program.steps.append(("parameter", draw(st.sampled_from(sorted(BINARY))), i,
                              new_parameter))
        shapes.append(_broadcast(shape, p_shape))
    elif kind == "reduce" and shape:
        dim = draw(st.integers(0, len(shape) - 1))
        keepdim = draw(st.booleans())
        program.steps.append(("reduce", draw(st.sampled_from(REDUCTIONS)), i, dim, keepdim))
        shapes.append(tuple(1 if d == dim else s for d, s in enumerate(shape)) if keepdim
                      else shape[:dim] + shape[dim + 1:])
    elif kind == "matmul" and shape and shape[-1] != "N":
        out = draw(st.integers(1, 4))
        if len(shape) >= 2 and shape[-2] != "N" and draw(st.booleans()):
            program.parameters[new_parameter] = rng.standard_normal((out, shape[-2]))
            program.steps.append(("matmul_left", i, new_parameter))
            shapes.append(shape[:-2] + (out, shape[-1]))
        else:
            program.parameters[new_parameter] = rng.standard_normal((shape[-1], out))
            program.steps.append(("matmul", i, new_parameter))
            shapes.append(shape[:-1] + (out,))
    elif kind == "softmax" and shape:
        dim = draw(st.integers(-len(shape), len(shape) - 1))
        program.steps.append(("softmax", draw(st.sampled_from(["softmax", "log_softmax"])), i,
                              dim))
        shapes.append(shape)
    elif kind == "transpose" and len(shape) >= 2:
        a, b = draw(st.permutations(range(len(shape))))[:2]
        program.steps.append(("transpose", i, a, b))
        swapped = list(shape)
        swapped[a], swapped[b] = shape[b], shape[a]
        shapes.append(tuple(swapped))
    elif kind == "cat" and fixed_dims:
        dim = draw(st.sampled_from(fixed_dims))
        program.steps.append(("cat", i, dim))
        shapes.append(tuple(2 * s if d == dim else s for d, s in enumerate(shape)))
    elif kind == "slice" and any(shape[d] > 1 for d in fixed_dims):
        dim = draw(st.sampled_from([d for d in fixed_dims if shape[d] > 1]))
        stop = draw(st.integers(2, shape[dim]))
        program.steps.append(("slice", i, dim, stop))
        shapes.append(tuple(stop - 1 if d == dim else s for d, s in enumerate(shape)))
    elif kind == "flatten" and any(d + 1 in fixed_dims for d in fixed_dims):
        start = draw(st.sampled_from([d for d in fixed_dims if d + 1 in fixed_dims]))
        program.steps.append(("flatten", i, start))
        shapes.append(shape[:start] + (shape[start] * shape[start + 1],) + shape[start + 2:])
    else:
        program.steps.append(("unary", draw(st.sampled_from(sorted(UNARY))), i))
        shapes.append(shape)


def _eager(program: Program, x: np.ndarray, cotangent: np.ndarray
           ) -> tuple[np.ndarray, list[np.ndarray]]:
    xs = tensors([x, *program.parameters.values()], requires_grad=True)
    out = program(*xs)
    out.backward(runtime.tensor(cotangent))
    return out.detach().numpy(), [t.grad.numpy() if t.grad is not None else np.zeros_like(a)
                                  for t, a in zip(xs, [x, *program.parameters.values()])]


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(program=programs(), batch=st.sampled_from([2, 5]))
def test_native_interpreter_and_eager_agree_on_random_models(program: Program,
                                                            batch: int) -> None:
    rng = np.random.default_rng(batch)
    example = rng.standard_normal(tuple(3 if s == "N" else s for s in program.input_shape))
    model = FunctionModel(program, **program.parameters)
    graph = trace(model, tensors([example]))
    wrt = [v.name for v in graph.inputs]
    joint = grad(graph, wrt=wrt, seed_input=True)
    native = build_native(simplify(joint))
    for n in (1, batch):
        x = rng.standard_normal(tuple(n if s == "N" else s for s in program.input_shape))
        with runtime.no_grad():
            out_shape = tuple(program(*tensors([x, *program.parameters.values()])).shape)
        cotangent = rng.standard_normal(out_shape)
        arguments = [x, *program.parameters.values(), cotangent]
        expected_out, expected_grads = _eager(program, x, cotangent)
        interpreted = run(joint, arguments)
        compiled = native(*arguments)
        for i, (e, r, c) in enumerate(zip([expected_out, *expected_grads], interpreted,
                                          compiled)):
            what = f"{'output' if i == 0 else f'gradient {i - 1}'} at batch {n} of {program}"
            np.testing.assert_allclose(r, e, rtol=1e-12, atol=1e-12, err_msg="interpreter " + what)
            np.testing.assert_allclose(c, e, rtol=1e-9, atol=1e-10, err_msg="native " + what)
