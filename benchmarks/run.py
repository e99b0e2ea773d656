"""The benchmark in one run: symgrad against what a user would pick instead.

Run:  python benchmarks/run.py [--quick] [--only symgrad,numpy,...] [--sections train,...]

For the PyTorch tutorial's MLP (784-512-512-10, cross-entropy, SGD, float32) it prints one
table -- training step at batch 64 and 256, no-grad inference at batch 1 and 64, and the wait
before step 1 in a fresh process (import, build, compile, first step) -- with a row for each
contender that can run here: symgrad compiled (`compiler.compile_train_step` for training,
`compiler.compile` under no_grad for inference), symgrad `compile()` + the optimizer, symgrad
eager, numpy by hand, PyTorch eager (2 threads), torch.compile, JAX jit, and the library of
`compiler.export` called from C. Next to each median: how many times faster symgrad compiled
is. Then the GEMM kernel against single-thread OpenBLAS, the slowdown of a training step next to
one busy process, and which of the performance targets are met. Timings are medians of runs in
which the contenders take turns, each turn timing a block of calls after 0.2 s of untimed ones,
so that every contender is measured warm, as in a loop (benchmarks/train_step.py supplies the
symgrad, numpy and PyTorch contenders and the timing; benchmarks/contenders.py the others).
Results go to benchmarks/results/run.json (or --json). Nothing is installed; a library that is
missing, or torch.compile that cannot compile here, is left out of the table with a note.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import train_step as ts  # this folder is on sys.path when run as a script
from contenders import (
    exported_latencies,
    jax_forward,
    jax_train_step,
    startup_scripts,
    torch_compiled_forward,
    torch_compiled_step,
)
from sharing import slowdowns

import runtime
from compiler.demo import NeuralNetwork, interleaved_medians

RESULTS = Path(__file__).resolve().parent / "results" / "run.json"
ROWS = {
    "symgrad": "symgrad compiled",
    "symgrad_loop": "symgrad compile() + SGD",
    "eager": "symgrad eager",
    "numpy": "numpy by hand",
    "torch": "PyTorch eager (2 threads)",
    "torch.compile": "torch.compile",
    "jax": "JAX jit",
    "exported": "exported library, from C",
}
GROUPS = {"symgrad": ("symgrad", "symgrad_loop", "eager"), "numpy": ("numpy",),
          "torch": ("torch",), "torch.compile": ("torch.compile",), "jax": ("jax",),
          "export": ("exported",)}
SECTIONS = ("train", "inference", "wait", "gemm", "sharing")
COLUMNS = {"train_64": "train B=64", "train_256": "train B=256", "infer_1": "infer B=1",
           "infer_64": "infer B=64", "wait": "wait, step 1"}
TRAIN_KEYS = {"train_step": "symgrad", "compiled": "symgrad_loop"}  # train_step.py's -> ours
INFERENCE_KEYS = {"compiled": "symgrad"}
SHARING_ROWS = ("symgrad", "numpy", "torch", "jax")
WARMUP_SECONDS = 0.2  # untimed calls before each block of timed ones


# ----- options and what is installed -------------------------------------------------------------

def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="few repeats (a smoke run, not a measurement)")
    parser.add_argument("--only", type=_choices(GROUPS), default=tuple(GROUPS),
                        help=f"contenders, comma-separated, of: {','.join(GROUPS)} (default all)")
    parser.add_argument("--sections", type=_choices(SECTIONS), default=SECTIONS,
                        help=f"what to measure, comma-separated, of: {','.join(SECTIONS)}")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"default {RESULTS}")
    return parser.parse_args(argv)


def _choices(allowed: Any) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in text.split(",") if name.strip())
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"{unknown or text!r}: choose from "
                                             f"{', '.join(allowed)}")
        return names
    return parse


def selected_rows(groups: tuple[str, ...]) -> set[str]:
    return {row for group in groups for row in GROUPS[group]}


def environment() -> dict[str, Any]:
    """The machine and its load, printed with warnings about what skews the numbers."""
    notes: dict[str, Any] = {
        "machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "load_average_1min": round(os.getloadavg()[0], 2)}
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        notes[variable] = os.environ.get(variable)
    print(f"{notes['machine']}, {notes['cpus']} CPUs, load average {notes['load_average_1min']}, "
          f"Python {notes['python']}, numpy {notes['numpy']}")
    if notes["OPENBLAS_CORETYPE"]:
        print(f"warning: OPENBLAS_CORETYPE={notes['OPENBLAS_CORETYPE']} is set, which can pick a "
              "slower OpenBLAS kernel for numpy; compare with "
              "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py`")
    if notes["load_average_1min"] > 1.0:
        print("warning: other processes are busy; the medians are slower and noisier than on an "
              "idle machine")
    return notes


def import_jax() -> Any:
    if importlib.util.find_spec("jax") is None:
        return None
    import jax

    return jax


def torch_compile_works(torch: Any) -> str | None:
    """None when torch.compile can compile here (it needs a C++ compiler), else why not."""
    try:
        torch.compile(lambda a: a * 2 + 1)(torch.ones(4))
    except Exception as error:  # any failure means: leave it out
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return None


def libraries(rows: set[str], notes: dict[str, Any]) -> dict[str, Any]:
    """The optional libraries the selected rows need, None where missing; drops rows that
    cannot run and says why."""
    torch = ts.import_torch() if rows & {"torch", "torch.compile"} else None
    jax = import_jax() if "jax" in rows else None
    missing = {"torch": torch is None, "torch.compile": torch is None, "jax": jax is None,
               "exported": shutil.which("cc") is None}
    if torch is not None:
        notes["torch"] = torch.__version__
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
        if "torch.compile" in rows and (problem := torch_compile_works(torch)):
            print(f"note: torch.compile does not work here ({problem}); left out")
            missing["torch.compile"] = True
    if jax is not None:
        notes["jax"] = jax.__version__
        print(f"JAX {jax.__version__} on {jax.devices()}")
    for row, absent in missing.items():
        if absent and row in rows:
            print(f"note: {ROWS[row]} is not available here; left out")
            rows.discard(row)
    return {"torch": torch, "jax": jax}


# ----- the contenders ----------------------------------------------------------------------------

def layers_of(state: dict[str, runtime.Tensor]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(state[f"linear_relu_stack.{i}.weight"].numpy().copy(),
             state[f"linear_relu_stack.{i}.bias"].numpy().copy()) for i in (0, 2, 4)]


def training_steps(size: int, state: dict[str, runtime.Tensor], rows: set[str],
                   libs: dict[str, Any]) -> dict[str, ts.Step]:
    """One training step of each selected contender at batch `size`, on the same batch."""
    torch, jax = libs["torch"], libs["jax"]
    found = ts.training_steps(size, state, torch if "torch" in rows else None)
    steps = {TRAIN_KEYS.get(key, key): step for key, step in found.items()}
    x, y = ts.batch(size, seed=size)
    if "torch.compile" in rows:
        steps["torch.compile"] = torch_compiled_step(torch, ts.torch_network(torch, state), x, y)
    if "jax" in rows:
        steps["jax"] = jax_train_step(jax, layers_of(state), x, y)
    return {row: step for row, step in steps.items() if row in rows}


def inference_calls(size: int, state: dict[str, runtime.Tensor], rows: set[str],
                    libs: dict[str, Any]) -> dict[str, Callable[[], object]]:
    """A no-grad forward of each selected contender at batch `size`."""
    torch, jax = libs["torch"], libs["jax"]
    found = ts.inference_calls(size, state, torch if "torch" in rows else None)
    calls = {INFERENCE_KEYS.get(key, key): call for key, call in found.items()}
    x, _ = ts.batch(size, seed=size + 1)
    if "torch.compile" in rows:
        calls["torch.compile"] = torch_compiled_forward(torch, ts.torch_network(torch, state), x)
    if "jax" in rows:
        calls["jax"] = jax_forward(jax, layers_of(state), x)
    return {row: call for row, call in calls.items() if row in rows}


# ----- measuring ---------------------------------------------------------------------------------

def warmed(run: Callable[[], object], seconds: float,
           pause: float = 0.05) -> Callable[[], object]:
    """`run`, which when called after a pause first runs itself for `seconds`. The timed calls
    of a block (interleaved_medians pauses, makes one untimed call, then times a block) then see
    the machine as a training loop's steps do: threads awake, caches warm, and, on a virtual
    machine, the guest's idle polling adapted (until it is, a woken thread waits for its vCPU:
    symgrad's B=64 step took 1.15 ms for ~40 steps after a pause here, then 0.8 ms)."""
    last = 0.0

    def call() -> object:
        nonlocal last
        if time.perf_counter() - last > pause:
            until = time.perf_counter() + seconds
            while time.perf_counter() < until:
                run()
        result = run()
        last = time.perf_counter()
        return result

    return call


def medians(runs: dict[str, Callable[[], object]], repeats: int, warmup: float,
            block: int = 10) -> dict[str, float]:
    """interleaved_medians of the runs, each block after `warmup` seconds of untimed calls."""
    return interleaved_medians({name: warmed(run, warmup) for name, run in runs.items()},
                               repeats, block=block)


def measure_training(table: dict[str, dict[str, float]], state: dict[str, runtime.Tensor],
                     rows: set[str], libs: dict[str, Any], repeats: int, warmup: float) -> None:
    for size in ts.TRAIN_BATCHES:
        steps = training_steps(size, state, rows, libs)
        losses = ts.losses_agree(steps)
        print(f"train B={size}: the first losses of every contender agree "
              f"({', '.join(f'{loss:.5f}' for loss in losses)}); timing {len(steps)} contenders")
        table[f"train_{size}"] = medians(steps, repeats, warmup)


def measure_inference(table: dict[str, dict[str, float]], state: dict[str, runtime.Tensor],
                      rows: set[str], libs: dict[str, Any], repeats: int,
                      warmup: float) -> None:
    for size in ts.INFERENCE_BATCHES:
        calls = inference_calls(size, state, rows, libs)
        print(f"infer B={size}: timing {len(calls)} contenders")
        table[f"infer_{size}"] = medians(calls, repeats, warmup, block=40)
    if "exported" in rows:
        model = NeuralNetwork()
        model.load_state_dict(state)
        print("exporting the MLP and timing it from C")
        try:
            latencies = exported_latencies(model, ts.INFERENCE_BATCHES, calls=repeats * 5,
                                           rounds=3 if repeats > 100 else 1)
        except Exception as error:  # the other rows are still worth reporting
            print(f"note: exporting or timing the library failed, so its row is left out: "
                  f"{type(error).__name__}: {error}")
            return
        for size, seconds in latencies.items():
            table[f"infer_{size}"]["exported"] = seconds


def seconds_to_first_step(script: str, env: dict[str, str] | None = None) -> float:
    """Wall time of a fresh Python process running `script`; raises if it fails."""
    started = time.perf_counter()
    finished = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True)
    seconds = time.perf_counter() - started
    if finished.returncode:
        raise SystemExit(f"a startup script failed:\n{script}\n{finished.stderr[-2000:]}")
    return seconds


def waits(rows: set[str], runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """(cold, warm) median seconds to step 1 by row. Cold starts with an empty compile cache
    (symgrad's object cache, torch.compile's Inductor cache) as on a first install; warm is the
    next run with that cache. Libraries without a cache between processes have cold only."""
    scripts = {"symgrad": ts.STARTUP_SCRIPTS["train_step"],
               "symgrad_loop": ts.STARTUP_SCRIPTS["compiled"],
               "eager": ts.STARTUP_SCRIPTS["eager"], "torch": ts.STARTUP_SCRIPTS["torch"],
               **startup_scripts()}
    cache_variables = {"symgrad": "SYMGRAD_CACHE_DIR", "symgrad_loop": "SYMGRAD_CACHE_DIR",
                       "torch.compile": "TORCHINDUCTOR_CACHE_DIR"}
    cold: dict[str, list[float]] = {}
    warm: dict[str, list[float]] = {}
    for _ in range(runs):  # the contenders take turns, as in the other sections
        for row, script in scripts.items():
            if row not in rows:
                continue
            variable = cache_variables.get(row)
            with tempfile.TemporaryDirectory(prefix="symgrad-run-cache-") as cache:
                env = dict(os.environ, **({variable: cache} if variable else {}))
                cold.setdefault(row, []).append(seconds_to_first_step(script, env))
                if variable:
                    warm.setdefault(row, []).append(seconds_to_first_step(script, env))
    return ({row: float(np.median(v)) for row, v in cold.items()},
            {row: float(np.median(v)) for row, v in warm.items()})


def runtime_import_is_light() -> list[str]:
    """Which of sympy and llvmlite a fresh `import runtime` loads (it should load neither)."""
    probe = ("import sys, runtime; print(' '.join(m for m in ('sympy', 'llvmlite') "
             "if m in sys.modules))")
    output = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                            text=True).stdout
    return output.split()


def gemm_rows(repeats: int) -> list[dict[str, Any]]:
    """GFLOP/s of symgrad's GEMM and of numpy (OpenBLAS, one thread), float32, on the shapes of
    benchmarks/gemm.py (the MLP's forward products and the transposed ones backward needs)."""
    import gemm
    from threadpoolctl import threadpool_limits

    kernel, rng, rows = gemm.compiled_gemm(np.float32), np.random.default_rng(0), []
    with threadpool_limits(limits=1, user_api="blas"):
        for label, m, k, n, layout in gemm.SHAPES:
            a, b = gemm._operands(m, k, n, layout, np.float32, rng)
            ours, _ = kernel.bind(a, b)
            expected = np.empty((m, n), np.float32)
            ours_s, numpy_s = gemm._median_seconds(
                [ours, lambda a=a, b=b, out=expected: np.matmul(a, b, out=out)], repeats)
            flops = 2.0 * m * n * k
            rows.append({"product": label.strip(), "m": m, "k": k, "n": n, "layout": layout,
                         "symgrad_gflops": round(flops / ours_s / 1e9, 2),
                         "numpy_gflops": round(flops / numpy_s / 1e9, 2),
                         "ratio": round(numpy_s / ours_s, 3)})
    return rows


# ----- reporting ---------------------------------------------------------------------------------

def _cell(column: str, seconds: float | None, baseline: float | None) -> str:
    if seconds is None:
        return "-"
    value = f"{seconds:.2f} s" if column == "wait" else f"{seconds * 1e3:.3f} ms"
    return value if baseline is None else f"{value} ({seconds / baseline:.2f}x)"


def print_table(table: dict[str, dict[str, float]]) -> None:
    """Medians, each with how many times faster symgrad compiled is than that row."""
    columns = [column for column in COLUMNS if column in table]
    rows = [row for row in ROWS if any(row in table[column] for column in columns)]
    print(f"\n{'':28}" + "".join(f"{COLUMNS[column]:>22}" for column in columns))
    for row in rows:
        cells = "".join(f"{_cell(c, table[c].get(row), table[c].get('symgrad')):>22}"
                        for c in columns)
        print(f"{ROWS[row]:28}{cells}")
    print("(n.nnx): how many times faster symgrad compiled is than that row; medians")


def _ratio(table: dict[str, dict[str, float]], column: str, slower: str,
           faster: str = "symgrad") -> float | None:
    values = table.get(column, {})
    if slower in values and faster in values:
        return values[slower] / values[faster]
    return None


def target_checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each performance target that this run measured: the ratio, the bound, met or not."""
    table = results["table"]
    wanted = [  # (target, measured ratio, at least)
        ("train B=64: 1.5x faster than numpy", _ratio(table, "train_64", "numpy"), 1.5),
        ("train B=64: 2x faster than PyTorch eager", _ratio(table, "train_64", "torch"), 2.0),
        ("train B=256: 1.2x faster than numpy", _ratio(table, "train_256", "numpy"), 1.2),
        ("train B=256: 1.2x faster than JAX", _ratio(table, "train_256", "jax"), 1.2),
        ("infer B=1: 2x faster than numpy (from Python)", _ratio(table, "infer_1", "numpy"), 2.0),
        ("infer B=1: exported from C 3x faster than PyTorch eager",
         _ratio(table, "infer_1", "torch", "exported"), 3.0),
        ("infer B=64: 1.2x faster than numpy", _ratio(table, "infer_64", "numpy"), 1.2),
        ("wait: 2x shorter than JAX", _ratio(table, "wait", "jax"), 2.0),
        ("wait: 10x shorter than torch.compile", _ratio(table, "wait", "torch.compile"), 10.0),
    ]
    wanted += [(f"GEMM {row['m']}x{row['k']}x{row['n']} {row['layout']}: 0.9x numpy",
                row["ratio"], 0.9) for row in results.get("gemm", [])]
    checks = [{"target": text, "measured": round(value, 3), "at_least": bound,
               "met": value >= bound} for text, value, bound in wanted if value is not None]
    if "symgrad" in results.get("sharing", {}):
        slowdown = results["sharing"]["symgrad"]["slowdown"]
        checks.append({"target": "sharing: compiled step slows by at most 2x",
                       "measured": slowdown, "at_most": 2.0, "met": slowdown <= 2.0})
    if "runtime_imports" in results:
        loaded = results["runtime_imports"]
        checks.append({"target": "import runtime loads neither sympy nor llvmlite",
                       "measured": loaded, "met": not loaded})
    return checks


def print_report(results: dict[str, Any]) -> None:
    print_table(results["table"])
    if results.get("warm_wait_s"):
        print("wait with a warm compile cache (the table: empty cache, as on a first run): "
              + ", ".join(f"{ROWS[row]} {s:.2f} s" for row, s in results["warm_wait_s"].items()))
    if results.get("gemm"):
        print(f"\nGEMM, float32, one thread   {'ours GF/s':>10} {'numpy GF/s':>11} {'ratio':>6}")
        for row in results["gemm"]:
            print(f"{row['product']:13} {row['m']:4}x{row['k']:4}x{row['n']:4} {row['layout']}"
                  f"{row['symgrad_gflops']:>10.1f} {row['numpy_gflops']:>11.1f} "
                  f"{row['ratio']:>6.2f}")
    if results.get("sharing"):
        print("\ntrain B=64 next to one busy process   alone     shared  slowdown")
        for row, values in results["sharing"].items():
            print(f"{ROWS[row]:34}{values['alone_ms']:7.3f} ms {values['shared_ms']:7.3f} ms"
                  f"{values['slowdown']:8.2f}x")
    print("\nperformance targets:")
    for check in results["targets"]:
        bound = (f">= {check['at_least']}" if "at_least" in check
                 else f"<= {check['at_most']}" if "at_most" in check else "")
        print(f"  [{'met' if check['met'] else 'NOT met'}] {check['target']}: "
              f"{check['measured']} {bound}")


def begin(section: str, loads: dict[str, float]) -> None:
    """Note the load average as `section` starts (other processes slow the libraries whose
    threads spin far more than symgrad, so a busy section is worth knowing about)."""
    loads[section] = round(os.getloadavg()[0], 2)
    print(f"-- {section} (load average {loads[section]})")


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    rows, sections = selected_rows(options.only), set(options.sections)
    repeats, warmup = (3, 0.01) if options.quick else (50, WARMUP_SECONDS)
    results: dict[str, Any] = {"environment": environment(), "quick": options.quick,
                               "warmup_seconds_per_block": warmup}
    libs = libraries(rows, results["environment"])
    runtime.manual_seed(0)
    state = NeuralNetwork().state_dict()
    table: dict[str, dict[str, float]] = {}
    loads = results["load_average_by_section"] = {}
    if "train" in sections:
        begin("train", loads)
        measure_training(table, state, rows, libs, repeats, warmup)
    if "inference" in sections:
        begin("inference", loads)
        measure_inference(table, state, rows, libs, repeats * 4, warmup)
    if "wait" in sections:
        begin("wait before step 1, in fresh processes", loads)
        table["wait"], results["warm_wait_s"] = waits(rows, runs=1 if options.quick else 3)
        results["runtime_imports"] = runtime_import_is_light()
    if "gemm" in sections:
        begin("GEMM kernel against numpy, one thread", loads)
        results["gemm"] = gemm_rows(3 if options.quick else 60)
    if "sharing" in sections:
        sharing_rows = rows & set(SHARING_ROWS)
        begin("sharing: train B=64 alone and next to a busy process", loads)
        steps = {row: warmed(step, warmup)
                 for row, step in training_steps(64, state, sharing_rows, libs).items()}
        results["sharing"] = slowdowns(steps, repeats * 4, rounds=1 if options.quick else 3)
    results["table"] = table  # medians in seconds
    results["targets"] = target_checks(results)
    print_report(results)
    results["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nload average at the end {results['load_average_1min_at_end']}; "
          f"wrote {options.json}")


if __name__ == "__main__":
    main()
