"""Random models for differential testing: a hypothesis strategy and a model built from its spec.

A `ModelSpec` is plain data (steps as tuples), so a failing example prints as Python that can be
pasted into a regression list. `build_model(spec, lib, arrays)` builds the same model with `lib`
= `runtime` or `torch` (their APIs are the same), with parameters from `make_arrays`, so symgrad
eager, symgrad compiled and PyTorch all run identical weights. Shapes are tracked while the spec
is drawn; the batch dimension is written "B" so every step knows where it is (or that a
reduction removed it).

Steps (each maps the running value h to the next one):
    ("linear", out, bias)            nn.Linear on the last dim
    ("act", "relu"|"sigmoid"|"tanh") nn.ReLU / nn.Sigmoid / nn.Tanh
    ("softmax", dim, log)            nn.Softmax(dim) / nn.LogSoftmax(dim)
    ("param", op, shape)             h op p, p a parameter broadcast against h (div: p in [0.5, 2])
    ("scalar", op, c)                h + c, c - h, c * h, h / c, ... with a Python number
    ("safe", "exp_tanh"|"log1sq"|"sqrt1sq"|"square"|"cube")   exp/log/sqrt/pow of safe arguments
    ("reduce", op, dims, keepdim)    sum / mean / amax over dims (None: all)
    ("matmul", m)                    h @ W, W a (last, m) parameter
    ("gram",)                        h @ h.transpose(-1, -2)
    ("flatten",)                     nn.Flatten()
    ("unflatten", a, b)              split the last dim into (a, b)
    ("transpose", d0, d1)            h.transpose(d0, d1)
    ("residual", op, act)            h + act(h) or h * act(h): one value used twice
Heads: ("out",) returns h; ("loss", "mse"|"bce"|"ce"|"ce_prob", reduction) returns a loss of h
against a target input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

Shape = tuple[Any, ...]  # ints, and "B" where the batch dimension is
BATCH = "B"

ACTIVATIONS = ("relu", "sigmoid", "tanh")
PARAM_OPS = ("add", "sub", "rsub", "mul", "div")
SCALAR_OPS = ("add", "radd", "sub", "rsub", "mul", "rmul", "div")
SCALARS = (2, -1, 0.5, -1.5, 3.0)
SAFE_FUNCTIONS = ("exp_tanh", "log1sq", "sqrt1sq", "square", "cube")
LOSSES = ("mse", "bce", "ce", "ce_prob")


@dataclass(frozen=True)
class ModelSpec:
    """A random model: dtype, input features, batch sizes to compile and run with, steps, head,
    and the seed of its weights and inputs."""

    dtype: str
    features: tuple[int, ...]
    compile_batch: int
    run_batch: int
    steps: tuple[tuple[Any, ...], ...]
    head: tuple[Any, ...]
    seed: int

    def input_shape(self) -> Shape:
        return (BATCH, *self.features)


# ----- shapes ------------------------------------------------------------------------------------

def concrete(shape: Shape, batch: int) -> tuple[int, ...]:
    return tuple(batch if s == BATCH else s for s in shape)


def _wrap(dim: int, rank: int) -> int:
    return dim % rank


def step_shape(step: tuple[Any, ...], shape: Shape) -> Shape:
    """The shape of h after `step`."""
    kind = step[0]
    if kind in ("act", "softmax", "param", "scalar", "safe", "residual"):
        return shape
    if kind in ("linear", "matmul"):
        return (*shape[:-1], step[1])
    if kind == "reduce":
        _, _, dims, keepdim = step
        reduced = set(range(len(shape))) if dims is None else {_wrap(d, len(shape)) for d in dims}
        if keepdim:
            return tuple(1 if i in reduced else s for i, s in enumerate(shape))
        return tuple(s for i, s in enumerate(shape) if i not in reduced)
    if kind == "gram":
        return (*shape[:-1], shape[-2])
    if kind == "flatten":
        return (shape[0], int(np.prod(shape[1:], dtype=np.int64)))
    if kind == "unflatten":
        return (*shape[:-1], step[1], step[2])
    if kind == "transpose":
        d0, d1 = _wrap(step[1], len(shape)), _wrap(step[2], len(shape))
        swapped = list(shape)
        swapped[d0], swapped[d1] = swapped[d1], swapped[d0]
        return tuple(swapped)
    raise ValueError(f"unknown step {step!r}")


def _last_is_feature(shape: Shape) -> bool:
    return len(shape) >= 1 and shape[-1] != BATCH


def _step_kinds(shape: Shape) -> list[str]:
    """The steps that make sense for h of this shape."""
    kinds = ["act", "param", "scalar", "safe", "residual"]
    rank = len(shape)
    if rank >= 1:
        kinds += ["softmax", "reduce", "transpose"] if rank >= 2 else ["softmax", "reduce"]
    if _last_is_feature(shape):
        kinds += ["linear", "matmul"]
        if shape[-1] in (4, 6):
            kinds.append("unflatten")
    if rank >= 3 and BATCH not in shape[-2:]:
        kinds.append("gram")
    if rank >= 3 and shape[0] == BATCH:
        kinds.append("flatten")
    return kinds


# ----- the strategy ------------------------------------------------------------------------------

@st.composite
def _step(draw: Any, shape: Shape) -> tuple[Any, ...]:
    kind = draw(st.sampled_from(_step_kinds(shape)))
    rank = len(shape)
    if kind == "linear":
        return ("linear", draw(st.integers(1, 6)), draw(st.booleans()))
    if kind == "act":
        return ("act", draw(st.sampled_from(ACTIVATIONS)))
    if kind == "softmax":
        return ("softmax", draw(st.integers(-rank, rank - 1)), draw(st.booleans()))
    if kind == "param":
        trailing = draw(st.integers(0, rank))
        pshape = tuple(1 if s == BATCH or draw(st.booleans()) else s
                       for s in shape[rank - trailing:])
        return ("param", draw(st.sampled_from(PARAM_OPS)), pshape)
    if kind == "scalar":
        return ("scalar", draw(st.sampled_from(SCALAR_OPS)), draw(st.sampled_from(SCALARS)))
    if kind == "safe":
        return ("safe", draw(st.sampled_from(SAFE_FUNCTIONS)))
    if kind == "residual":
        return ("residual", draw(st.sampled_from(("add", "mul"))),
                draw(st.sampled_from(ACTIVATIONS)))
    if kind == "reduce":
        op = draw(st.sampled_from(("sum", "mean", "amax")))
        if draw(st.integers(0, 4)) == 0:
            return ("reduce", op, None, False)
        dims = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
        dims = tuple(d - rank if draw(st.booleans()) else d for d in sorted(dims))
        return ("reduce", op, dims, draw(st.booleans()))
    if kind == "matmul":
        return ("matmul", draw(st.integers(1, 5)))
    if kind == "unflatten":
        a = draw(st.sampled_from([d for d in (2, 3) if shape[-1] % d == 0]))
        return ("unflatten", a, shape[-1] // a)
    if kind == "transpose":
        d0, d1 = draw(st.lists(st.integers(0, rank - 1), min_size=2, max_size=2, unique=True))
        return ("transpose", d0 - rank if draw(st.booleans()) else d0, d1)
    return (kind,)


def _heads(shape: Shape) -> list[str]:
    heads = ["out"]
    if len(shape) >= 1 and shape[0] == BATCH:
        heads += ["mse", "bce"]
        if len(shape) >= 2 and shape[1] != BATCH and shape[1] >= 2:
            heads += ["ce", "ce_prob"]
    return heads


@st.composite
def model_specs(draw: Any, max_steps: int = 5) -> ModelSpec:
    """A random ModelSpec: 1 to `max_steps` steps on an input of 1 to 3 feature dims."""
    dtype = draw(st.sampled_from(("float32", "float64")))
    features = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    shape: Shape = (BATCH, *features)
    steps = []
    for _ in range(draw(st.integers(1, max_steps))):
        step = draw(_step(shape))
        steps.append(step)
        shape = step_shape(step, shape)
    head = draw(st.sampled_from(_heads(shape)))
    head_spec: tuple[Any, ...] = ("out",) if head == "out" else \
        ("loss", head, draw(st.sampled_from(("mean", "sum"))))
    return ModelSpec(dtype, features, draw(st.sampled_from((1, 2, 3, 5))),
                     draw(st.sampled_from((1, 2, 4, 7))), tuple(steps), head_spec,
                     draw(st.integers(0, 2**31 - 1)))


# ----- weights and inputs ------------------------------------------------------------------------

def make_arrays(spec: ModelSpec) -> dict[str, np.ndarray]:
    """Parameters (by name), inputs and targets for both batch sizes, the cotangent of the output
    and the weights of the double-backward scalar, all from `spec.seed`."""
    rng = np.random.default_rng(spec.seed)
    dtype = np.dtype(spec.dtype)
    arrays: dict[str, np.ndarray] = {}
    shape = spec.input_shape()
    for i, step in enumerate(spec.steps):
        kind = step[0]
        if kind in ("linear", "matmul"):
            fan_in = shape[-1]
            bound = 1 / np.sqrt(fan_in)
            weight_shape = (step[1], fan_in) if kind == "linear" else (fan_in, step[1])
            arrays[f"step{i}.weight"] = rng.uniform(-bound, bound, weight_shape).astype(dtype)
            if kind == "linear" and step[2]:
                arrays[f"step{i}.bias"] = rng.uniform(-bound, bound, step[1]).astype(dtype)
        elif kind == "param":
            low = 0.5 if step[1] == "div" else -1.0
            arrays[f"p{i}"] = rng.uniform(low, 2.0 if low > 0 else 1.0, step[2]).astype(dtype)
        shape = step_shape(step, shape)
    for role, batch in (("example", spec.compile_batch), ("run", spec.run_batch)):
        arrays[f"x.{role}"] = rng.standard_normal(concrete(spec.input_shape(), batch)).astype(dtype)
        if spec.head[0] == "loss":
            arrays[f"target.{role}"] = _target(spec.head[1], concrete(shape, batch), dtype, rng)
    out = concrete(shape, spec.run_batch) if spec.head[0] == "out" else ()
    arrays["cotangent"] = rng.standard_normal(out).astype(dtype)
    return arrays


def _target(loss: str, shape: tuple[int, ...], dtype: np.dtype,
            rng: np.random.Generator) -> np.ndarray:
    if loss == "ce":
        return rng.integers(0, shape[1], (shape[0], *shape[2:]))
    if loss == "ce_prob":
        p = rng.uniform(0.01, 1.0, shape)
        return (p / p.sum(axis=1, keepdims=True)).astype(dtype)
    if loss == "bce":
        return rng.uniform(0.0, 1.0, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


# ----- the model ---------------------------------------------------------------------------------

def build_model(spec: ModelSpec, lib: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The model of `spec` written with `lib` (runtime or torch), holding copies of `arrays`."""
    nn = lib.nn

    class FuzzModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.steps = spec.steps
            for i, step in enumerate(spec.steps):
                layer = _layer(step, nn, lib, arrays, i)
                if layer is not None:
                    setattr(self, f"step{i}", layer)
                if step[0] == "param":
                    setattr(self, f"p{i}", nn.Parameter(lib.tensor(arrays[f"p{i}"].copy())))
                if step[0] == "matmul":
                    setattr(self, f"step{i}", nn.Module())
                    getattr(self, f"step{i}").weight = nn.Parameter(
                        lib.tensor(arrays[f"step{i}.weight"].copy()))
            self.loss = _loss_module(spec.head, nn)

        def forward(self, x: Any, *target: Any) -> Any:
            h = x
            for i, step in enumerate(self.steps):
                h = _apply(step, h, self, i, lib)
            return h if self.loss is None else self.loss(h, *target)

    return FuzzModel()


def _layer(step: tuple[Any, ...], nn: Any, lib: Any, arrays: dict[str, np.ndarray],
           i: int) -> Any:
    kind = step[0]
    if kind == "linear":
        weight = arrays[f"step{i}.weight"]
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=step[2],
                          dtype=getattr(lib, str(weight.dtype)))
        with lib.no_grad():
            layer.weight.copy_(lib.tensor(weight))
            if step[2]:
                layer.bias.copy_(lib.tensor(arrays[f"step{i}.bias"]))
        return layer
    if kind == "act":
        return {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[step[1]]()
    if kind == "softmax":
        return (nn.LogSoftmax if step[2] else nn.Softmax)(dim=step[1])
    if kind == "flatten":
        return nn.Flatten()
    return None


def _loss_module(head: tuple[Any, ...], nn: Any) -> Any:
    if head[0] != "loss":
        return None
    _, kind, reduction = head
    if kind == "mse":
        return nn.MSELoss(reduction=reduction)
    if kind == "bce":
        return nn.BCEWithLogitsLoss(reduction=reduction)
    return nn.CrossEntropyLoss(reduction=reduction)


def _binary(op: str, a: Any, b: Any) -> Any:
    if op in ("add", "radd"):
        return a + b if op == "add" else b + a
    if op in ("sub", "rsub"):
        return a - b if op == "sub" else b - a
    if op in ("mul", "rmul"):
        return a * b if op == "mul" else b * a
    return a / b


def _apply(step: tuple[Any, ...], h: Any, model: Any, i: int, lib: Any) -> Any:
    kind = step[0]
    if kind in ("linear", "act", "softmax", "flatten"):
        return getattr(model, f"step{i}")(h)
    if kind == "param":
        return _binary(step[1], h, getattr(model, f"p{i}"))
    if kind == "scalar":
        return _binary(step[1], h, step[2])
    if kind == "safe":
        return _safe(step[1], h, lib)
    if kind == "residual":
        return _binary(step[1], h, getattr(lib, step[2])(h))
    if kind == "reduce":
        _, op, dims, keepdim = step
        if dims is None:
            return getattr(h, op)()
        return getattr(h, op)(dim=dims, keepdim=keepdim)
    if kind == "matmul":
        return h @ getattr(model, f"step{i}").weight
    if kind == "gram":
        return h @ h.transpose(-1, -2)
    if kind == "unflatten":
        return h.unflatten(-1, (step[1], step[2]))
    if kind == "transpose":
        return h.transpose(step[1], step[2])
    raise ValueError(f"unknown step {step!r}")


def _safe(name: str, h: Any, lib: Any) -> Any:
    if name == "exp_tanh":
        return lib.exp(lib.tanh(h))
    if name == "log1sq":
        return lib.log(h * h + 1)
    if name == "sqrt1sq":
        return lib.sqrt(h * h + 1)
    return h ** (2 if name == "square" else 3)
