"""A training step of the PyTorch tutorial's MLP: symgrad compiled vs eager vs numpy vs PyTorch.

Run by hand:  python benchmarks/train_step.py [--quick]

One step is forward + cross-entropy + backward + SGD update of the 784-512-512-10 network, on
the same random batch, from the same initial weights, for: symgrad's `compile_train_step` (one
native call), `compiler.compile` + the ordinary loop, symgrad eager, an MLP written by hand in
numpy (float32, in-place where it pays), and PyTorch eager (2 threads) when torch is installed.
The contenders take turns (round-robin, in blocks of 10 steps after a short pause, so that one
library's spinning BLAS threads do not slow the next) and so share whatever else the machine
does; the tables give medians and the ratio of every pair. No-grad inference latency at batch
1 and 64, and the wait before step 1 in a fresh process, follow. Results are written to
benchmarks/results/train_step.json; the script installs and changes nothing else.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import compiler
import runtime
from compiler._compile import compile as compile_to_native
from compiler.demo import NeuralNetwork, interleaved_medians

RESULTS = Path(__file__).resolve().parent / "results" / "train_step.json"
TRAIN_BATCHES = (64, 256)
INFERENCE_BATCHES = (1, 64)
LR = 0.01
LABELS = {
    "train_step": "symgrad compile_train_step()",
    "compiled": "symgrad compile()",
    "eager": "symgrad eager",
    "numpy": "numpy by hand",
    "torch": "PyTorch eager",
}
Step = Callable[[], float]  # runs one step, returns the loss


# ----- the contenders ----------------------------------------------------------------------------

class NumpyMLP:
    """The tutorial MLP in plain numpy, as an engineer would write it for speed: float32,
    weights stored (in, out) so every product is a plain GEMM, ReLU and the SGD update in place,
    and softmax cross-entropy with its gradient in one pass."""

    def __init__(self, state: dict[str, runtime.Tensor]) -> None:
        self.weights = [state[f"linear_relu_stack.{i}.weight"].numpy().T.copy() for i in (0, 2, 4)]
        self.biases = [state[f"linear_relu_stack.{i}.bias"].numpy().copy() for i in (0, 2, 4)]

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """The activations: the input, each hidden layer after ReLU, and the logits."""
        activations = [x.reshape(len(x), -1)]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = activations[-1] @ w
            z += b
            if i < 2:
                np.maximum(z, 0, out=z)
            activations.append(z)
        return activations

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        *inputs, logits = self.forward(x)
        rows = np.arange(len(y))
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        total = exp.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(total[:, 0]) - logits[rows, y]))
        grad = exp / total  # d loss / d logits = (softmax - onehot) / batch
        grad[rows, y] -= 1
        grad /= len(y)
        for i in (2, 1, 0):
            w = self.weights[i]
            grad_w, grad_b = inputs[i].T @ grad, grad.sum(axis=0)
            if i:
                grad = grad @ w.T
                grad *= inputs[i] > 0  # ReLU's derivative, from its output
            grad_w *= lr
            w -= grad_w
            self.biases[i] -= lr * grad_b
        return loss


def symgrad_steps(state: dict[str, runtime.Tensor], x: runtime.Tensor,
                  y: runtime.Tensor) -> dict[str, Step]:
    """compile_train_step, compile + the ordinary loop, and eager, each on its own copy of the
    initial weights."""
    loss_fn = runtime.nn.CrossEntropyLoss()

    def copy() -> tuple[NeuralNetwork, Any]:
        model = NeuralNetwork()
        model.load_state_dict(state)
        return model, runtime.optim.SGD(model.parameters(), lr=LR)

    def loop(forward: Callable[..., runtime.Tensor], optimizer: Any) -> Step:
        def step() -> float:
            loss = loss_fn(forward(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss.item()
        return step

    model, optimizer = copy()
    train_step = compiler.compile_train_step(model, loss_fn, optimizer, example_inputs=(x, y))
    model, optimizer = copy()
    return {"train_step": lambda: train_step(x, y).item(),
            "compiled": loop(compile_to_native(model, (x,)), optimizer),
            "eager": loop(*copy())}


def torch_network(torch: Any, state: dict[str, runtime.Tensor]) -> Any:
    """The same network in PyTorch, with the same initial weights."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 512), torch.nn.ReLU(),
                              torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    net.load_state_dict({f"{int(k.split('.')[1]) + 1}.{k.split('.')[2]}":
                         torch.from_numpy(v.numpy().copy()) for k, v in state.items()})
    return net


def torch_step(torch: Any, state: dict[str, runtime.Tensor], x: np.ndarray,
               y: np.ndarray) -> Step:
    net = torch_network(torch, state)
    loss_fn, optimizer = torch.nn.CrossEntropyLoss(), torch.optim.SGD(net.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> float:
        loss = loss_fn(net(xt), yt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def import_torch() -> Any:
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    torch.set_num_threads(2)
    return torch


# ----- measuring ---------------------------------------------------------------------------------

def batch(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.random((size, 1, 28, 28), dtype=np.float32),
            rng.integers(0, 10, size).astype(np.int64))


def training_steps(size: int, state: dict[str, runtime.Tensor], torch: Any) -> dict[str, Step]:
    x, y = batch(size, seed=size)
    steps = symgrad_steps(state, runtime.from_numpy(x), runtime.from_numpy(y))
    by_hand = NumpyMLP(state)
    steps["numpy"] = lambda: by_hand.train_step(x, y, LR)
    if torch is not None:
        steps["torch"] = torch_step(torch, state, x, y)
    return steps


def losses_agree(steps: dict[str, Step], n: int = 3) -> list[float]:
    """The first `n` losses of every contender (same weights, same batch), which must agree to
    float32 rounding: the loss falls ~2e-3 a step, so a wrong gradient shows by step 2 or 3."""
    losses = {name: [step() for _ in range(n)] for name, step in steps.items()}
    reference = next(iter(losses.values()))
    if any(abs(a - b) > 2e-5 for run in losses.values() for a, b in zip(run, reference)):
        raise SystemExit(f"the contenders disagree on the first {n} losses: {losses}")
    return reference


def inference_calls(size: int, state: dict[str, runtime.Tensor],
                    torch: Any) -> dict[str, Callable[[], object]]:
    x, _ = batch(size, seed=size + 1)
    xs = runtime.from_numpy(x)
    model = NeuralNetwork()
    model.load_state_dict(state)
    fast = compile_to_native(model, (xs,))
    by_hand = NumpyMLP(state)

    def no_grad(forward: Callable[..., object], *args: Any) -> Callable[[], object]:
        def call() -> object:
            with runtime.no_grad():
                return forward(*args)
        return call

    calls = {"compiled": no_grad(fast, xs), "eager": no_grad(model, xs),
             "numpy": lambda: by_hand.forward(x)[-1]}
    if torch is not None:
        net, xt = torch_network(torch, state), torch.from_numpy(x)

        def torch_call() -> object:
            with torch.no_grad():
                return net(xt)
        calls["torch"] = torch_call
    return calls


STARTUP_SCRIPTS = {
    "train_step": """
import runtime as torch, compiler
from compiler.demo import NeuralNetwork
model = NeuralNetwork()
loss_fn, optimizer = torch.nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
step = compiler.compile_train_step(model, loss_fn, optimizer, example_inputs=(x, y))
step(x, y)
""",
    "compiled": """
import runtime as torch, compiler
from compiler.demo import NeuralNetwork
model = NeuralNetwork()
loss_fn, optimizer = torch.nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
fast = compiler.compile(model, (x,))
loss = loss_fn(fast(x), y); optimizer.zero_grad(); loss.backward(); optimizer.step()
""",
    "eager": """
import runtime as torch
from compiler.demo import NeuralNetwork
model = NeuralNetwork()
loss_fn, optimizer = torch.nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
loss = loss_fn(model(x), y); optimizer.zero_grad(); loss.backward(); optimizer.step()
""",
    "torch": """
import torch
torch.set_num_threads(2)
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 512), torch.nn.ReLU(),
                            torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
loss_fn, optimizer = torch.nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
loss = loss_fn(model(x), y); optimizer.zero_grad(); loss.backward(); optimizer.step()
""",
}


def seconds_to_first_step(script: str, env: dict[str, str] | None = None) -> float:
    """Wall time of a fresh Python process that imports, builds, (compiles) and runs step 1."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    return time.perf_counter() - started


def startup_waits(torch: Any) -> dict[str, float]:
    """Seconds to the first step in a fresh process, by contender."""
    waits = {LABELS["train_step"]: seconds_to_first_step(STARTUP_SCRIPTS["train_step"])}
    waits[LABELS["compiled"]] = seconds_to_first_step(STARTUP_SCRIPTS["compiled"])
    with tempfile.TemporaryDirectory() as empty_cache:  # as on a first install
        env = dict(os.environ, SYMGRAD_CACHE_DIR=empty_cache)
        waits[f"{LABELS['compiled']}, empty object cache"] = seconds_to_first_step(
            STARTUP_SCRIPTS["compiled"], env)
    waits[LABELS["eager"]] = seconds_to_first_step(STARTUP_SCRIPTS["eager"])
    if torch is not None:
        waits[LABELS["torch"]] = seconds_to_first_step(STARTUP_SCRIPTS["torch"])
    return waits


# ----- reporting ---------------------------------------------------------------------------------

def print_table(title: str, seconds: dict[str, float]) -> dict[str, float]:
    """Medians in ms and, for each pair, how many times faster the row is than the column."""
    names = list(seconds)
    print(f"\n{title}")
    print(f"  {'':28}{'median':>10}" + "".join(f"{'x ' + name:>13}" for name in names))
    for row in names:
        ratios = "".join(f"{seconds[column] / seconds[row]:13.2f}" for column in names)
        print(f"  {LABELS[row]:28}{seconds[row] * 1e3:7.3f} ms{ratios}")
    return {name: round(value * 1e3, 4) for name, value in seconds.items()}


def environment_notes() -> dict[str, Any]:
    notes = {"python": platform.python_version(), "numpy": np.__version__,
             "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
             "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, load average {notes['load_average_1min']}"
          f", Python {notes['python']}, numpy {notes['numpy']}")
    if notes["OPENBLAS_CORETYPE"]:
        print(f"warning: OPENBLAS_CORETYPE={notes['OPENBLAS_CORETYPE']} is set; it can pick a "
              "slower OpenBLAS kernel for numpy (and symgrad eager). Compare with "
              "`env -u OPENBLAS_CORETYPE python benchmarks/train_step.py`")
    if notes["load_average_1min"] > 0.5:
        print("warning: other processes are busy; medians will be noisier and slower than on an "
              "idle machine")
    return notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no startup timing")
    options = parser.parse_args()
    repeats = 10 if options.quick else 50
    results: dict[str, Any] = {"environment": environment_notes(), "repeats": repeats}
    torch = import_torch()
    if torch is not None:
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
        results["environment"]["torch"] = torch.__version__
    runtime.manual_seed(0)
    state = NeuralNetwork().state_dict()

    results["train_step_ms"] = {}
    for size in TRAIN_BATCHES:
        steps = training_steps(size, state, torch)
        losses = losses_agree(steps)
        seconds = interleaved_medians(steps, repeats)
        results["train_step_ms"][size] = print_table(
            f"training step at batch {size} (forward + cross-entropy + backward + SGD), median "
            f"of {repeats} steps taking turns; the first losses agree: "
            f"{', '.join(f'{loss:.5f}' for loss in losses)}", seconds)
    print("  (x name: how many times faster the row is than that column)")

    results["inference_ms"] = {}
    for size in INFERENCE_BATCHES:
        seconds = interleaved_medians(inference_calls(size, state, torch), repeats * 4, block=40)
        results["inference_ms"][size] = print_table(
            f"inference at batch {size} (no_grad forward), median of {repeats * 4} calls", seconds)

    if not options.quick:
        waits = startup_waits(torch)
        print("\nwait before step 1 in a fresh process (start Python, import, build, compile, "
              "step at batch 64):")
        for label, value in waits.items():
            print(f"  {label:44}{value:6.2f} s")
        results["seconds_to_first_step"] = {k: round(v, 3) for k, v in waits.items()}

    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
