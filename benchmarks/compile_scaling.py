"""How compile time grows with the model: three series, each point in a fresh process.

Run by hand:  python benchmarks/compile_scaling.py [--quick] [--series layers,tensors,chain]

- layers:  Linear(32, 32) + ReLU stacks of 10..400 layers: `compiler.compile` (the inference
           function) and `compiler.compile_train_step` with SGD, each timed to the first result;
- tensors: one model holding 100..10,000 parameter tensors (many small Linear(4, 4) layers
           applied side by side and summed), compiled for training;
- chain:   Linear(32, 32) then N x (tanh(x) * 0.9 + 0.01), N = 5..50, compiled for training.

Each point runs in its own interpreter with a private, empty cache folder (nothing is reused
between points), so it is the wait a user has the first time. Beside every series the script
prints the time per unit (per layer, per tensor, per op) at each size: a series that grows at
most linearly keeps that column flat or falling. Results go to benchmarks/results/
compile_scaling.json. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "compile_scaling.json"
ROOT = Path(__file__).resolve().parents[1]

SERIES = {
    "layers": (10, 50, 100, 200, 400),
    "tensors": (100, 1000, 2000, 10000),
    "chain": (5, 10, 20, 50),
}
QUICK = {"layers": (10, 50), "tensors": (100, 400), "chain": (5, 15)}

_PROBE = r'''
import json, sys, time
t0 = time.perf_counter()
import runtime as torch, compiler
from runtime import nn
series, size = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)

class Side(nn.Module):
    def __init__(self, n):
        super().__init__()
        for i in range(n):
            setattr(self, f"l{i}", nn.Linear(4, 4))
        self.n = n
    def forward(self, x):
        out = self.l0(x)
        for i in range(1, self.n):
            out = out + getattr(self, f"l{i}")(x)
        return out

class Chain(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.linear = nn.Linear(32, 32)
        self.n = n
    def forward(self, x):
        x = self.linear(x)
        for _ in range(self.n):
            x = torch.tanh(x) * 0.9 + 0.01
        return x

if series == "layers":
    mods = []
    for _ in range(size):
        mods += [nn.Linear(32, 32), nn.ReLU()]
    model, width = nn.Sequential(*mods), 32
elif series == "tensors":
    model, width = Side(size // 2), 4  # a Linear holds two tensors
else:
    model, width = Chain(size), 32
x = torch.randn(8, width)
y = torch.randn(8, width)
result = {}
if series == "layers":
    t = time.perf_counter()
    fast = compiler.compile(model, (x,))
    with torch.no_grad():
        fast(x)
    result["inference_s"] = time.perf_counter() - t
opt = torch.optim.SGD(model.parameters(), lr=0.01)
t = time.perf_counter()
step = compiler.compile_train_step(model, nn.MSELoss(), opt, (x, y))
step(x, y)
result["train_step_s"] = time.perf_counter() - t
result["total_s"] = time.perf_counter() - t0
print(json.dumps(result))
'''


def measure(series: str, size: int, timeout: float) -> dict[str, float | str]:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "SYMGRAD_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        try:
            done = subprocess.run([sys.executable, "-c", _PROBE, series, str(size)],
                                  capture_output=True, text=True, env=env, timeout=timeout,
                                  cwd=cache)
        except subprocess.TimeoutExpired:
            return {"error": f"did not finish in {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small sizes per series")
    parser.add_argument("--series", default=",".join(SERIES))
    parser.add_argument("--timeout", type=float, default=600.0, help="per point, seconds")
    args = parser.parse_args()
    sizes = QUICK if args.quick else SERIES
    print(f"{platform.processor() or platform.machine()}, load average "
          f"{os.getloadavg()[0]:.2f}, each point a fresh process with an empty cache")
    results: dict[str, dict[int, dict[str, float | str]]] = {}
    for series in args.series.split(","):
        results[series] = {}
        print(f"\n{series}:")
        print(f"{'size':>8} {'train step':>12} {'per unit':>12} {'inference':>12}")
        for size in sizes[series]:
            point = measure(series, size, args.timeout)
            results[series][size] = point
            if "error" in point:
                print(f"{size:>8}   {point['error']}")
                continue
            train = float(point["train_step_s"])
            infer = point.get("inference_s")
            infer_text = f"{float(infer):10.2f} s" if infer is not None else ""
            print(f"{size:>8} {train:10.2f} s {1000 * train / size:9.1f} ms {infer_text:>12}",
                  flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M:%S"),
                                   "results": results}, indent=1))
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
