"""Helpers of the rewrite tests: run one rewrite (or graph pass) alone on a traced function, and
check that the rewritten graph computes what the original does."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import runtime
from compiler import trace
from compiler.interpret import run
from compiler.ir import Graph
from compiler.passes import RewriteLog
from compiler.passes.cse import eliminate_dead_code
from compiler.passes.driver import run_rewrites


def traced(fn: Callable[..., Any], *shapes: tuple[int, ...]) -> Graph:
    """fn traced on float64 inputs of these shapes (dim 0 is the symbolic batch)."""
    return trace(fn, [runtime.randn(*shape, dtype=runtime.float64) for shape in shapes])


def rewrite_alone(graph: Graph, rewrite: Callable[..., Any], stage: str = "test"
                  ) -> tuple[Graph, RewriteLog]:
    """One pass of `rewrite` (a node rewrite or a graph pass) and nothing else; the nodes it
    left without users are then dropped, so the result reads as what the rewrite made."""
    log = RewriteLog()
    if getattr(rewrite, "is_graph_pass", False):
        return rewrite(graph, log).verify(), log
    rewritten = run_rewrites(graph, stage, [rewrite], log)
    return eliminate_dead_code(rewritten).verify(), log


def assert_same_results(before: Graph, after: Graph, shapes: Sequence[tuple[int, ...]],
                        batch: int = 5, rtol: float = 1e-13) -> None:
    """Both graphs give the same outputs on random float64 inputs (dim 0 resized to `batch`)."""
    rng = np.random.default_rng(batch)
    arrays = [rng.standard_normal((batch, *shape[1:])) for shape in shapes]
    for got, expected in zip(run(after, arrays), run(before, arrays)):
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol)


def op_names(graph: Graph) -> list[str]:
    return [node.op_name for node in graph.nodes]
