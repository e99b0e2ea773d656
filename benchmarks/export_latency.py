"""Latency of the exported tutorial MLP called from C, vs PyTorch eager and symgrad's runtime.

Run by hand:  python benchmarks/export_latency.py [--calls 2000] [--batch 1 --batch 64]

The PyTorch tutorial's 784-512-512-10 network (symgrad's `examples/build_model.py`, seed 0) is
exported with `compiler.export` into a temporary folder; a timing harness rendered from
`templates/export/latency.c.j2` and compiled with `cc -O2` calls `<name>_forward` many times
and reports the median. So does a second export compiled for this machine's CPU
(`cpu='native'`) instead of the portable x86-64-v3. The same no-grad forward is then timed
through symgrad's runtime (`compiler.compile` under `no_grad`: native code for this CPU, called
through `runtime.native` from Python) and through PyTorch eager (2 threads, same weights) when
torch is installed. All get the same input. Prints medians in microseconds and ratios; writes
nothing outside the temporary folder and installs nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import runtime
from compiler._compile import compile as compile_to_native
from compiler._export import export, render
from compiler.export_command import load_model

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = f"{ROOT / 'examples' / 'build_model.py'}:NeuralNetwork"
WARMUP = 200
EXPORTED = "exported (x86-64-v3), called from C"


def c_harness(folder: Path, name: str, batch: int, calls: int) -> Callable[[], float]:
    """Build the C timing harness for `<name>_forward` at `batch`; calling the result runs it
    once and returns its median seconds over `calls` calls."""
    context = {"input": {"ctype": "float"}, "output": {"ctype": "float"}}
    source = folder / f"latency_{batch}.c"
    source.write_text(render("latency.c.j2", name=name, NAME=name.upper(), batch=batch,
                             warmup=WARMUP, calls=calls, **context))
    program = folder / f"latency_{batch}"
    subprocess.run(["cc", "-O2", "-o", str(program), source.name, f"{name}.o", "-lm",
                    "-pthread"], cwd=folder, check=True)

    def run() -> float:
        output = subprocess.run([str(program)], capture_output=True, text=True,
                                check=True).stdout
        return float(dict(line.split() for line in output.splitlines())["median_ns"]) * 1e-9

    return run


def python_harness(call: Callable[[], object], calls: int) -> Callable[[], float]:
    """Calling the result times `calls` calls of `call` (after a warm-up); median seconds."""

    def run() -> float:
        for _ in range(WARMUP):
            call()
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    return run


def round_robin(harnesses: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Each harness once per round, in turn; the median of its rounds' medians (so a burst of
    load elsewhere on the machine spoils one round, not the result)."""
    results: dict[str, list[float]] = {label: [] for label in harnesses}
    for _ in range(rounds):
        for label, harness in harnesses.items():
            results[label].append(harness())
    return {label: statistics.median(values) for label, values in results.items()}


def torch_forward(model: runtime.nn.Module, x: np.ndarray) -> Callable[[], object] | None:
    """PyTorch eager on 2 threads with the model's weights, or None without torch."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    torch.set_num_threads(2)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 512), torch.nn.ReLU(),
                              torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    # linear_relu_stack.<i>.<weight|bias> is layer i + 1 here (after Flatten)
    net.load_state_dict({f"{int(key.split('.')[1]) + 1}.{key.split('.')[2]}":
                         torch.from_numpy(value.detach().numpy().copy())
                         for key, value in model.state_dict().items()})
    xt = torch.from_numpy(x)

    def call() -> object:
        with torch.no_grad():
            return net(xt)

    return call


def symgrad_runtime_forward(model: runtime.nn.Module, x: np.ndarray) -> Callable[[], object]:
    compiled = compile_to_native(model, (runtime.tensor(x),))
    xt = runtime.tensor(x)

    def call() -> object:
        with runtime.no_grad():
            return compiled(xt)

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, contenders in turn")
    parser.add_argument("--batch", type=int, action="append", help="batch sizes (default 1, 64)")
    args = parser.parse_args()
    if shutil.which("cc") is None:
        sys.exit("export_latency: needs a C compiler (cc) on PATH to build the timing harness")
    model = load_model(TUTORIAL, seed=0)
    with tempfile.TemporaryDirectory(prefix="symgrad-export-latency-") as temporary:
        portable, native = Path(temporary) / "mnist", Path(temporary) / "native"
        started = time.perf_counter()
        export(model, (runtime.zeros(1, 1, 28, 28),), portable, "mnist")
        print(f"exported in {time.perf_counter() - started:.1f} s")
        export(model, (runtime.zeros(1, 1, 28, 28),), native, "mnist", cpu="native")
        rows = []
        for batch in args.batch or [1, 64]:
            x = np.random.default_rng(batch).random((batch, 1, 28, 28), dtype=np.float32)
            harnesses = {
                EXPORTED: c_harness(portable, "mnist", batch, args.calls),
                "exported with cpu='native', from C": c_harness(native, "mnist", batch,
                                                                 args.calls),
                "symgrad runtime, compile() + no_grad": python_harness(
                    symgrad_runtime_forward(model, x), args.calls)}
            torch_call = torch_forward(model, x)
            if torch_call is not None:
                harnesses["PyTorch eager (2 threads)"] = python_harness(torch_call, args.calls)
            rows.append((batch, round_robin(harnesses, args.rounds)))
    print_table(rows)


def print_table(rows: list[tuple[int, dict[str, float]]]) -> None:
    print(f"\n{'batch':>5}  {'contender':<38} {'median us':>10} {'vs exported':>12}")
    for batch, medians in rows:
        exported = medians[EXPORTED]
        for label, seconds in medians.items():
            print(f"{batch:>5}  {label:<38} {seconds * 1e6:>10.1f} {seconds / exported:>11.2f}x")


if __name__ == "__main__":
    main()
