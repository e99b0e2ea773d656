"""Sharing the machine: how much a training step slows while one other process keeps a core busy.

The other process is a child Python spinning in a loop, started before and killed after each
measurement. Alone and shared measurements alternate for a few rounds (so a burst of load from
elsewhere spoils one round, not the result), and the result is the median over the rounds. Each
contender runs its steps back to back, as a training loop does: after a pause, the scheduler
favours a thread that slept over the spinner for some milliseconds, so the short blocks the
other measurements take turns in would hide most of the slowdown. Never leaves a process behind.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from compiler.demo import interleaved_medians

SPIN = "while True: pass"


@contextmanager
def busy_core() -> Iterator[None]:
    """One other process spinning on a core while the block runs."""
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def slowdowns(steps: Mapping[str, Callable[[], object]], repeats: int,
              rounds: int) -> dict[str, dict[str, float]]:
    """{name: {"alone_ms", "shared_ms", "slowdown"}}: median step time alone and next to a
    busy process, and their ratio."""
    alone: dict[str, list[float]] = {name: [] for name in steps}
    shared: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, seconds in interleaved_medians(steps, repeats, block=repeats).items():
            alone[name].append(seconds)
        with busy_core():
            for name, seconds in interleaved_medians(steps, repeats, block=repeats).items():
                shared[name].append(seconds)
    results = {}
    for name in steps:
        quiet, busy = statistics.median(alone[name]), statistics.median(shared[name])
        results[name] = {"alone_ms": round(quiet * 1e3, 4), "shared_ms": round(busy * 1e3, 4),
                         "slowdown": round(busy / quiet, 3)}
    return results
