"""Stability under long runs: memory stays flat over many calls and many compilations, and two
threads may call one compiled module at once.

Resident memory is read from /proc/self/statm (Linux; elsewhere these tests skip). Each
measurement follows a warm-up, so that what is measured is growth per call or per graph, not the
first allocation of arenas, caches and the JIT; the many-graphs measurement runs in a fresh
interpreter, where the rest of the test session cannot move it.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import compiler
import runtime as torch
from compiler.lowering import target
from runtime import nn

MB = 2**20


def resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        pytest.skip("needs /proc/self/statm")


def growth(run: Callable[[], Any]) -> int:
    """How much resident memory `run()` leaves behind (after a garbage collection)."""
    gc.collect()
    before = resident_bytes()
    run()
    gc.collect()
    return resident_bytes() - before


class MLP(nn.Module):
    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.hidden = nn.Linear(32, 16)
        self.out = nn.Linear(16, 4)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x) * self.scale))


@pytest.fixture(scope="module")
def compiled_mlp() -> tuple[MLP, compiler.CompiledModule]:
    torch.manual_seed(0)
    model = MLP()
    return model, compiler.compile(model, (torch.randn(8, 32),))


# ----- many calls ------------------------------------------------------------------------------

CALLS = 20_000


def test_20000_inference_calls_grow_memory_by_less_than_5_mb(compiled_mlp) -> None:
    _, fast = compiled_mlp
    x = torch.randn(8, 32)

    def calls(count: int) -> None:
        with torch.no_grad():
            for _ in range(count):
                fast(x)

    calls(1000)
    assert growth(lambda: calls(CALLS)) < 5 * MB


def test_20000_training_calls_grow_memory_by_less_than_5_mb(compiled_mlp) -> None:
    model, fast = compiled_mlp
    x = torch.randn(8, 32)

    def steps(count: int) -> None:
        for _ in range(count):
            model.zero_grad()
            fast(x).sum().backward()

    steps(1000)
    assert growth(lambda: steps(CALLS)) < 5 * MB


# ----- many compilations -------------------------------------------------------------------------

def _compile_and_run(scale: float) -> list[weakref.ref]:
    """Compile and run, for inference and training, a graph no other has compiled (its constant
    differs); weak references to its three JIT libraries."""
    model = MLP(scale)
    fast = compiler.compile(model, (torch.randn(8, 32),))
    x = torch.randn(8, 32)
    with torch.no_grad():
        fast(x)
    fast(x).sum().backward()
    training = fast.training_functions((False,))
    natives = [fast.inference_function(), training.forward, training.backward]
    return [weakref.ref(native._keepalive) for native in natives]


def _graph_growth(warm_up: int, measured: int) -> tuple[float, int]:
    """Bytes of resident memory per distinct graph, over `measured` graphs after `warm_up`, and
    how many of all their JIT libraries are still loaded afterwards."""
    libraries = [ref for i in range(warm_up) for ref in _compile_and_run(3.0 + i * 1e-6)]

    def measure() -> None:
        for i in range(measured):
            libraries.extend(_compile_and_run(4.0 + i * 1e-6))

    per_graph = growth(measure) / measured
    return per_graph, sum(ref() is not None for ref in libraries)


def _graph_growth_in_a_fresh_process(warm_up: int, measured: int) -> tuple[float, int]:
    """_graph_growth in a new interpreter, so that nothing else it did moves the measurement."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import test_stability; print(*test_stability._graph_growth({warm_up}, {measured}))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    per_graph, still_loaded = run.stdout.split()[-2:]
    return float(per_graph), int(still_loaded)


def test_compiling_many_graphs_keeps_memory_bounded(private_object_cache: None) -> None:
    """Each graph is three JIT libraries (inference, training forward and backward), each the
    O3 pipeline's output. Before the cache evicted libraries and LLVM's optimiser moved into a
    helper process, memory grew by ~625 KB per graph and never came back."""
    per_graph, still_loaded = _graph_growth_in_a_fresh_process(warm_up=40, measured=60)
    assert per_graph < 100 * 1024, f"{per_graph / 1024:.0f} KB per graph"
    assert still_loaded <= target.KEPT_LIBRARIES  # of 300: the others were unloaded


def test_compiling_300_graphs_keeps_memory_bounded(soak: int, private_object_cache: None) -> None:
    """--soak: 300 distinct graphs (~2 minutes)."""
    if not soak:
        pytest.skip("runs with --soak N")
    per_graph, still_loaded = _graph_growth_in_a_fresh_process(warm_up=50, measured=300)
    print(f"300 graphs: {per_graph / 1024:.1f} KB of resident memory per graph, "
          f"{still_loaded} of their libraries loaded")
    assert per_graph < 50 * 1024, f"{per_graph / 1024:.0f} KB per graph"


# ----- threads ---------------------------------------------------------------------------------

def _in_threads(work: Callable[[int], Any], threads: int = 2) -> list[Any]:
    """work(0), work(1), ... each in its own thread, started together; their results."""
    results: list[Any] = [None] * threads
    start = threading.Barrier(threads)

    def run(i: int) -> None:
        start.wait()
        results[i] = work(i)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return results


def test_two_threads_get_their_own_inference_results(compiled_mlp) -> None:
    model, fast = compiled_mlp
    inputs = [torch.randn(8 + 24 * i, 32) for i in range(2)]  # different batch sizes too
    with torch.no_grad():
        expected = [model(x).numpy() for x in inputs]

    def work(i: int) -> bool:
        with torch.no_grad():
            return all(np.allclose(fast(inputs[i]).numpy(), expected[i], rtol=1e-5, atol=1e-6)
                       for _ in range(300))

    assert _in_threads(work) == [True, True]


def test_two_threads_train_through_one_compiled_module(compiled_mlp) -> None:
    model, fast = compiled_mlp
    params = list(model.parameters())
    inputs = [torch.randn(8 + 24 * i, 32) for i in range(2)]
    expected = [torch.autograd.grad(model(x).sum(), params) for x in inputs]

    def work(i: int) -> bool:
        ok = True
        for _ in range(100):
            x = inputs[i].clone().requires_grad_(True)
            grads = torch.autograd.grad(fast(x).sum(), params)
            ok &= all(np.allclose(g.numpy(), e.numpy(), rtol=1e-4, atol=1e-5)
                      for g, e in zip(grads, expected[i]))
        return ok

    assert _in_threads(work) == [True, True]


def test_two_threads_accumulate_into_the_same_grads(compiled_mlp) -> None:
    """backward() in both threads adds both gradients into param.grad, as PyTorch does."""
    model, fast = compiled_mlp
    inputs = [torch.randn(8 + 24 * i, 32) for i in range(2)]
    model.zero_grad()
    for x in inputs:
        model(x).sum().backward()
    expected = [p.grad.numpy().copy() * 50 for p in model.parameters()]
    model.zero_grad()

    def work(i: int) -> None:
        for _ in range(50):
            fast(inputs[i]).sum().backward()

    _in_threads(work)
    for p, e in zip(model.parameters(), expected):
        np.testing.assert_allclose(p.grad.numpy(), e, rtol=1e-4, atol=1e-4)
