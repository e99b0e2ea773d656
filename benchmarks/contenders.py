"""The contenders of benchmarks/run.py that benchmarks/train_step.py does not have: JAX jit,
torch.compile, and the library `compiler.export` writes, called from C.

Each builder returns what run.py times: a training step (a callable that runs one step of the
tutorial's 784-512-512-10 MLP -- forward, cross-entropy, backward, SGD -- and returns the loss)
or a no-grad forward. They start from the weights they are given (PyTorch's layout:
`weights[i]` is (out, in)), so run.py can check that every contender's first losses agree.
Startup scripts time the wait before step 1 in a fresh process. This module imports only numpy
at load time (a startup script imports it), and never installs anything.
"""

from __future__ import annotations

import functools
import inspect
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

LR = 0.01
HERE = Path(__file__).resolve().parent
Layers = list[tuple[np.ndarray, np.ndarray]]  # (weight (out, in), bias) of each Linear
Step = Callable[[], float]


# ----- JAX jit -----------------------------------------------------------------------------------

def jax_logits(jax: Any, params: Any, x: Any) -> Any:
    """The MLP's forward: weights stored (in, out), as JAX code usually keeps them."""
    h = x.reshape(x.shape[0], -1)
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = jax.nn.relu(h)
    return h


def jax_loss(jax: Any, params: Any, x: Any, y: Any) -> Any:
    """Mean cross-entropy of the logits against integer labels."""
    logits = jax_logits(jax, params, x)
    picked = jax.numpy.take_along_axis(logits, y[:, None], axis=1)[:, 0]
    return jax.numpy.mean(jax.nn.logsumexp(logits, axis=1) - picked)


def jax_params(jax: Any, layers: Layers) -> list[tuple[Any, Any]]:
    return [(jax.numpy.asarray(w.T), jax.numpy.asarray(b)) for w, b in layers]


def jax_train_step(jax: Any, layers: Layers, x: np.ndarray, y: np.ndarray) -> Step:
    """One jitted call per step; the old parameters' buffers are donated to the new ones."""

    def update(params: Any, x: Any, y: Any) -> tuple[Any, Any]:
        loss, grads = jax.value_and_grad(functools.partial(jax_loss, jax))(params, x, y)
        return jax.tree.map(lambda p, g: p - LR * g, params, grads), loss

    update = jax.jit(update, donate_argnums=0)
    state = {"params": jax_params(jax, layers)}
    xj, yj = jax.numpy.asarray(x), jax.numpy.asarray(y.astype(np.int32))

    def step() -> float:
        state["params"], loss = update(state["params"], xj, yj)
        return float(loss)  # waits for the result

    return step


def jax_forward(jax: Any, layers: Layers, x: np.ndarray) -> Callable[[], object]:
    forward = jax.jit(functools.partial(jax_logits, jax))
    params, xj = jax_params(jax, layers), jax.numpy.asarray(x)
    return lambda: forward(params, xj).block_until_ready()


# ----- torch.compile -----------------------------------------------------------------------------

def torch_compiled_step(torch: Any, net: Any, x: np.ndarray, y: np.ndarray) -> Step:
    """The ordinary PyTorch loop around `torch.compile(net)` (one compilation per batch size)."""
    compiled = torch.compile(net, dynamic=False)
    loss_fn, optimizer = torch.nn.CrossEntropyLoss(), torch.optim.SGD(net.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> float:
        loss = loss_fn(compiled(xt), yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def torch_compiled_forward(torch: Any, net: Any, x: np.ndarray) -> Callable[[], object]:
    compiled, xt = torch.compile(net, dynamic=False), torch.from_numpy(x)

    def call() -> object:
        with torch.no_grad():
            return compiled(xt)

    return call


# ----- the exported library, called from C -------------------------------------------------------

def exported_latencies(model: Any, batches: tuple[int, ...], calls: int,
                       rounds: int) -> dict[int, float]:
    """Median seconds of `<name>_forward` at each batch size, timed by a C program linked to the
    object `compiler.export` writes (portable x86-64-v3 code); the median of `rounds` runs."""
    from export_latency import c_harness, round_robin

    import runtime
    from compiler._export import export

    with tempfile.TemporaryDirectory(prefix="symgrad-run-export-") as temporary:
        folder = Path(temporary) / "mnist"
        export(model, (runtime.zeros(1, 1, 28, 28),), folder, "mnist")
        harnesses = {batch: c_harness(folder, "mnist", batch, calls) for batch in batches}
        return round_robin(harnesses, rounds)


# ----- the wait before step 1 --------------------------------------------------------------------

def _numpy_startup_script() -> str:
    from train_step import NumpyMLP  # its source only: the script itself imports just numpy

    return f"""
from __future__ import annotations
import numpy as np
{inspect.getsource(NumpyMLP)}
rng = np.random.default_rng(0)
mlp = NumpyMLP.__new__(NumpyMLP)
sizes = [(784, 512), (512, 512), (512, 10)]
mlp.weights = [rng.uniform(-a ** -0.5, a ** -0.5, (a, b)).astype(np.float32) for a, b in sizes]
mlp.biases = [np.zeros(b, np.float32) for _, b in sizes]
x, y = rng.random((64, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 64)
mlp.train_step(x, y, 0.01)
"""


JAX_STARTUP = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
import jax, numpy as np
from contenders import jax_train_step
rng = np.random.default_rng(0)
sizes = [(512, 784), (512, 512), (10, 512)]
layers = [(rng.uniform(-b ** -0.5, b ** -0.5, (a, b)).astype(np.float32), np.zeros(a, np.float32))
          for a, b in sizes]
x, y = rng.random((64, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 64)
jax_train_step(jax, layers, x, y)()
"""

TORCH_COMPILE_STARTUP = """
import torch
torch.set_num_threads(2)
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 512), torch.nn.ReLU(),
                            torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
compiled = torch.compile(model, dynamic=False)
loss_fn, optimizer = torch.nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
loss = loss_fn(compiled(x), y); optimizer.zero_grad(); loss.backward(); optimizer.step()
"""


def startup_scripts() -> dict[str, str]:
    """Scripts that import, build the MLP, compile and run one step at batch 64, by contender."""
    return {"numpy": _numpy_startup_script(), "jax": JAX_STARTUP,
            "torch.compile": TORCH_COMPILE_STARTUP}
