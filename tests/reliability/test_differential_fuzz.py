"""Differential fuzzing: random models agree across symgrad eager, symgrad compiled and PyTorch.

Each example is a random composition of layers and ops (`fuzz_models`), run by `differential.
check_spec`: outputs and every gradient of the compiled module (compiled for one batch size,
called with another) equal eager symgrad's; eager and compiled equal PyTorch's, double backward
included. In CI a fixed, bounded set of examples runs; by hand,

    python -m pytest tests/reliability/test_differential_fuzz.py --soak 10000 -s [--soak-seed S]

runs 10,000 fresh random models, carries on past failures and lists every new one at the end.

A disagreement found by fuzzing becomes an entry of REGRESSIONS. While its bug is open, it is a
strict xfail naming the bug, and KNOWN_BUGS lets the random tests pass over other examples of the
same bug (counted in the soak's summary); once fixed, the xfail turns into a failure that asks for
both entries to be deleted.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import pytest
from differential import check_spec, time_limit
from fuzz_models import ModelSpec, model_specs
from hypothesis import HealthCheck, event, given, settings
from hypothesis import seed as hypothesis_seed

# message pattern -> the open bug it is a symptom of (reported to the lead with a repro)
KNOWN_BUGS: dict[str, str] = {}


def known_bug(error: BaseException) -> str | None:
    message = f"{type(error).__name__}: {error}"
    return next((bug for pattern, bug in KNOWN_BUGS.items() if re.search(pattern, message)),
                None)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


SECONDS_PER_MODEL = 60  # a model takes ~0.5 s; one taking longer is a failure


def check_unless_known(spec: ModelSpec, torch: Any) -> str | None:
    """check_spec, returning the known bug an example runs into instead of failing on it."""
    try:
        with time_limit(SECONDS_PER_MODEL):
            check_spec(spec, torch)
    except Exception as error:  # noqa: BLE001 - CompileError, AssertionError, ...
        bug = known_bug(error)
        if bug is None:
            raise
        return bug
    return None


def _xfail(bug_pattern: str) -> Any:
    return pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[bug_pattern])


# Fixed examples: disagreements found by fuzzing, and models worth keeping.
REGRESSIONS = [
    pytest.param(ModelSpec("float64", (3,), 2, 4, (("reduce", "sum", (0,), False),), ("out",), 0),
                 id="gradient-of-a-sum-over-the-batch"),
    pytest.param(ModelSpec("float32", (2, 3, 5), 5, 2, (
        ("flatten",), ("param", "rsub", (1, 30)), ("reduce", "mean", (-2, -1), False),
        ("safe", "sqrt1sq")), ("out",), 323161), id="mean-over-batch-and-features",
        ),
    pytest.param(ModelSpec("float32", (2,), 1, 1, (("scalar", "add", -1),), ("out",), 0),
                 id="x-plus-a-number"),
    pytest.param(ModelSpec("float64", (4,), 2, 2, (
        ("residual", "add", "sigmoid"), ("residual", "add", "relu")), ("out",), 0),
        id="residual-sigmoid-then-residual-relu"),
    pytest.param(ModelSpec("float32", (5,), 2, 2, (
        ("residual", "mul", "sigmoid"), ("residual", "mul", "sigmoid")), ("out",), 0),
        id="silu-of-silu"),
    pytest.param(ModelSpec("float32", (1, 28, 28), 4, 3, (
        ("flatten",), ("linear", 6, True), ("act", "relu"), ("linear", 6, True),
        ("act", "relu"), ("linear", 4, True)), ("loss", "ce", "mean"), 7),
        id="tutorial-mlp-shape-with-cross-entropy"),
    pytest.param(ModelSpec("float64", (3, 4), 1, 5, (
        ("softmax", 1, True), ("transpose", 0, 2), ("reduce", "amax", (0,), True),
        ("gram",)), ("out",), 11), id="log-softmax-transpose-amax-gram"),
    pytest.param(ModelSpec("float32", (5,), 1, 1, (
        ("linear", 1, True), ("residual", "add", "tanh"), ("residual", "add", "tanh"),
        ("residual", "add", "tanh")), ("loss", "mse", "mean"), 2832633),
        id="three-residual-tanh-blocks"),
    pytest.param(ModelSpec("float32", (1,), 1, 1, (
        ("act", "relu"), ("scalar", "rsub", -1), ("act", "relu")), ("out",), 0),
        id="relu-of-minus-one-minus-relu"),
    pytest.param(ModelSpec("float32", (1,), 1, 1, (("transpose", 0, 1), ("transpose", 0, 1)),
                           ("out",), 0),
                 id="transpose-twice-is-the-input"),
    pytest.param(ModelSpec("float32", (1,), 1, 1, (
        ("act", "relu"), ("safe", "exp_tanh"), ("act", "sigmoid")), ("out",), 0),
        id="sigmoid-of-exp-of-tanh-of-relu"),
    pytest.param(ModelSpec("float64", (2, 2, 1), 5, 7, (
        ("act", "sigmoid"), ("transpose", 0, 2), ("scalar", "add", 3.0), ("safe", "square"),
        ("act", "sigmoid")), ("out",), 360), id="sigmoid-of-a-squared-sigmoid"),
    pytest.param(ModelSpec("float32", (2, 5, 2), 2, 4, (
        ("param", "rsub", (1, 1, 2)), ("param", "add", ()), ("softmax", -1, False)),
        ("loss", "mse", "sum"), 60), id="gradient-of-a-shift-before-softmax-cancels-to-zero"),
    pytest.param(ModelSpec("float32", (5, 5), 1, 2, (
        ("gram",), ("scalar", "rsub", -1), ("residual", "add", "sigmoid"), ("gram",),
        ("safe", "exp_tanh")), ("out",), 2),  # was 23x PyTorch's error: numpy's float32 tanh
        id="float32-double-backward-through-two-grams"),  # (elementwise.py _tanh)
]


@pytest.mark.parametrize("spec", REGRESSIONS)
def test_regression(spec: ModelSpec, private_object_cache: None) -> None:
    with time_limit(10):
        check_spec(spec, _torch())


CI_EXAMPLES = 25


@settings(max_examples=CI_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec=model_specs())
def test_random_models_agree(spec: ModelSpec, private_object_cache: None) -> None:
    bug = check_unless_known(spec, _torch())
    if bug is not None:
        event(f"known bug: {bug}")


SOAK_CHUNK = 100


def _soak_chunk(chunk_seed: int, count: int, torch: Any, known: Counter[str]
                ) -> tuple[int, str | None]:
    """Run `count` random models from hypothesis seed `chunk_seed`: how many ran, and the
    (shrunk) new failure that stopped the chunk, if one did."""
    specs: list[ModelSpec] = []

    @settings(max_examples=count, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @hypothesis_seed(chunk_seed)
    @given(spec=model_specs())
    def chunk(spec: ModelSpec) -> None:
        specs.append(spec)
        bug = check_unless_known(spec, torch)
        if bug is not None:
            known[bug] += 1

    try:
        chunk()
    except Exception as error:  # noqa: BLE001 - recorded, and the soak goes on
        return len(specs), (f"seed {chunk_seed}: {specs[-1]!r}\n    {type(error).__name__}: "
                            f"{str(error)[:400]}")
    return len(specs), None


def test_soak(soak: int, soak_seed: int | None, private_object_cache: None) -> None:
    """--soak N: N fresh random models in chunks of SOAK_CHUNK, each chunk a hypothesis run of
    its own seed (--soak-seed S, S + 1, ..., or from the current time); a new failure is shrunk,
    recorded, and the next chunk goes on."""
    if not soak:
        pytest.skip("runs with --soak N")
    torch = _torch()
    known: Counter[str] = Counter()
    failures: list[str] = []
    ran = 0
    chunk_seed = int(time.time()) if soak_seed is None else soak_seed
    print(f"soak: {soak} models from hypothesis seed {chunk_seed}", flush=True)
    started = time.perf_counter()
    while ran < soak:
        count, failure = _soak_chunk(chunk_seed, min(SOAK_CHUNK, soak - ran), torch, known)
        ran += count
        chunk_seed += 1
        if failure is not None:
            failures.append(failure)
            print(f"soak: new failure {failure}", flush=True)
        print(f"soak: {ran} models in {time.perf_counter() - started:.0f} s, "
              f"{len(failures)} new failures, known bugs {dict(known)}", flush=True)
    summary = "\n".join(failures)
    assert not failures, f"{len(failures)} new failures in {ran} models:\n{summary}"
