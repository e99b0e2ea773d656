"""symgrad's packed GEMM against numpy (OpenBLAS pinned to one thread), single-threaded.

Run by hand:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gemm.py
(an OPENBLAS_CORETYPE in the environment can select a slower OpenBLAS kernel). Shapes are those of
an MLP on MNIST: the forward product of a Linear layer and its two backward products. Timings are
medians of interleaved runs in one process; ratio = numpy's time / ours (> 1: we are faster).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from compiler.lowering.target import host_cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "compiler" / "lowering"))
from gemm_harness import compiled_gemm  # noqa: E402  (the GEMM called on numpy arrays)

# (label, M, K, N, layout): layout says how A and B are stored, "T" meaning transposed in memory
SHAPES = [
    ("x @ W        ", 64, 784, 512, "NN"),
    ("x @ W        ", 256, 784, 512, "NN"),
    ("square       ", 512, 512, 512, "NN"),
    ("x @ W.T      ", 64, 784, 512, "NT"),
    ("x.T @ g  (dW)", 784, 64, 512, "TN"),
    ("g @ W.T  (dx)", 64, 512, 784, "NT"),
    ("g.T @ x  (dW)", 512, 64, 784, "TN"),
]


def _operands(m: int, k: int, n: int, layout: str, dtype: type, rng: np.random.Generator):
    a = rng.standard_normal((k, m) if layout[0] == "T" else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if layout[1] == "T" else (k, n)).astype(dtype)
    return (a.T if layout[0] == "T" else a), (b.T if layout[1] == "T" else b)


def _median_seconds(runs: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median wall time of each callable, the callables taking turns."""
    times: list[list[float]] = [[] for _ in runs]
    for run in runs:  # warm up caches, pages and lazily bound symbols
        for _ in range(3):
            run()
    for _ in range(repeats):
        for run, record in zip(runs, times, strict=True):
            started = time.perf_counter()
            run()
            record.append(time.perf_counter() - started)
    return [statistics.median(record) for record in times]


def benchmark(dtype: type, repeats: int) -> None:
    kernel = compiled_gemm(dtype)
    rng = np.random.default_rng(0)
    print(f"\n{np.dtype(dtype).name}: tile {kernel.config.tile_rows}x{kernel.config.tile_columns}, "
          f"{kernel.config.lanes} lanes")
    print(f"{'product':14} {'M':>5} {'K':>5} {'N':>5} layout  ours GF/s  numpy GF/s  ratio  "
          f"max err/max|C|")
    for label, m, k, n, layout in SHAPES:
        a, b = _operands(m, k, n, layout, dtype, rng)
        run_ours, ours = kernel.bind(a, b)
        expected = np.empty((m, n), dtype)

        def run_numpy(a=a, b=b, expected=expected):
            np.matmul(a, b, out=expected)

        seconds_ours, seconds_numpy = _median_seconds([run_ours, run_numpy], repeats)
        flops = 2.0 * m * n * k
        error = float(np.abs(ours - expected).max() / np.abs(expected).max())
        print(f"{label:14} {m:5} {k:5} {n:5}   {layout}   {flops / seconds_ours / 1e9:9.1f}  "
              f"{flops / seconds_numpy / 1e9:10.1f}  {seconds_numpy / seconds_ours:5.2f}  "
              f"{error:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    options = parser.parse_args()
    started = time.perf_counter()
    kernels = {name: compiled_gemm(name) for name in ("float32", "float64")}
    print(f"host {host_cpu_name()}; GEMM objects ready in {time.perf_counter() - started:.3f} s "
          + ", ".join(f"({name}: {'cache' if kernel.library.from_cache else 'compiled'} "
                      f"{kernel.library.seconds:.3f} s)" for name, kernel in kernels.items()))
    with threadpool_limits(limits=1, user_api="blas"):
        blas = [(info["internal_api"], info.get("architecture"), info["num_threads"])
                for info in threadpool_info() if info["user_api"] == "blas"]
        print(f"numpy BLAS (single thread): {blas}")
        for name in ("float32", "float64"):
            if options.dtype in (name, "both"):
                benchmark(np.dtype(name).type, options.repeats)


if __name__ == "__main__":
    main()
