"""Run one random model three ways and compare: symgrad eager, symgrad compiled, PyTorch.

`run_model(spec, lib, ...)` returns the output, the gradient of <output, cotangent> with respect to
the input and every parameter, and (eager only) the double-backward gradients of
sum_i <grad_i, w_i>; `check_spec(spec, torch)` compares them:
- compiled symgrad (inference under no_grad, and training forward + native backward) against eager
  symgrad, within a tolerance per dtype;
- with torch given: eager and compiled symgrad against PyTorch. In float64 both must agree with
  PyTorch to ~1e-9; in float32 both are compared with PyTorch in float64 as the exact answer, and
  symgrad's error must stay within a small multiple of PyTorch's own float32 error.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import numpy as np
from fuzz_models import ModelSpec, build_model, make_arrays

import compiler
import runtime

Results = dict[str, np.ndarray]


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """TimeoutError if the block takes longer than `seconds` (a compile that never ends is a
    failure too). SIGALRM: the main thread only, on Unix."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"the model took longer than {seconds:g} s to compile and run")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _to_numpy(t: Any) -> np.ndarray:
    return np.array(t.detach().numpy(), copy=True)


def _inputs(lib: Any, arrays: dict[str, np.ndarray], role: str, dtype: Any) -> list[Any]:
    x = lib.tensor(arrays[f"x.{role}"].astype(dtype), requires_grad=True)
    target = arrays.get(f"target.{role}")
    if target is None:
        return [x]
    return [x, lib.tensor(target if target.dtype.kind == "i" else target.astype(dtype))]


def _cast(arrays: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    return {k: v if v.dtype.kind == "i" else v.astype(dtype) for k, v in arrays.items()}


def run_model(spec: ModelSpec, lib: Any, arrays: dict[str, np.ndarray], *,
              double_backward: bool = True) -> Results:
    """Output, first-order gradients (`grad.x`, `grad.<param>`) and, if asked, second-order ones
    (`grad2.x`, `grad2.<param>`) of the eager model built with `lib`."""
    model = build_model(spec, lib, arrays)
    dtype = arrays["x.run"].dtype
    x, *target = _inputs(lib, arrays, "run", dtype)
    params = dict(model.named_parameters())
    leaves = [x, *params.values()]
    names = ["x", *params]
    out = model(x, *target)
    cotangent = lib.tensor(arrays["cotangent"])
    grads = lib.autograd.grad(out, leaves, grad_outputs=cotangent, create_graph=double_backward,
                              allow_unused=True)
    results = {"out": _to_numpy(out)}
    for name, leaf, g in zip(names, leaves, grads):
        results[f"grad.{name}"] = np.zeros(tuple(leaf.shape), dtype) if g is None else _to_numpy(g)
    if double_backward:
        results.update(_second_order(lib, names, leaves, grads, arrays["grad2.seed"]))
    return results


def _second_order(lib: Any, names: list[str], leaves: list[Any], grads: tuple[Any, ...],
                  seed: int) -> Results:
    """Gradients of s = sum_i <grad_i, w_i> (w_i random), or nothing if s is constant."""
    rng = np.random.default_rng(int(seed))
    s = None
    for leaf, g in zip(leaves, grads):
        if g is None or not g.requires_grad:
            continue
        w = lib.tensor(rng.standard_normal(tuple(leaf.shape)).astype(g.detach().numpy().dtype))
        term = (g * w).sum()
        s = term if s is None else s + term
    if s is None:
        return {"grad2.none": np.zeros(())}
    second = lib.autograd.grad(s, leaves, allow_unused=True)
    return {f"grad2.{name}": np.zeros(tuple(leaf.shape), _to_numpy(leaf).dtype) if g is None
            else _to_numpy(g) for name, leaf, g in zip(names, leaves, second)}


def run_compiled(spec: ModelSpec, arrays: dict[str, np.ndarray]) -> tuple[Results, Results]:
    """(inference results, training results) of the model compiled by symgrad: compiled with
    the example batch, called with the run batch."""
    model = build_model(spec, runtime, arrays)
    dtype = arrays["x.run"].dtype
    example = [t.detach() for t in _inputs(runtime, arrays, "example", dtype)]
    fast = compiler.compile(model, example)
    x, *target = _inputs(runtime, arrays, "run", dtype)
    with runtime.no_grad():
        inference = {"out": _to_numpy(fast(x.detach(), *target))}
    out = fast(x, *target)
    out.backward(runtime.tensor(arrays["cotangent"]))
    training = {"out": _to_numpy(out), "grad.x": _to_numpy(x.grad)}
    for name, p in model.named_parameters():
        training[f"grad.{name}"] = np.zeros(tuple(p.shape), dtype) if p.grad is None \
            else _to_numpy(p.grad)
    return inference, training


# ----- comparing ---------------------------------------------------------------------------------

def _scale(reference: np.ndarray) -> float:
    finite = reference[np.isfinite(reference)]
    return max(1.0, float(np.max(np.abs(finite)))) if finite.size else 1.0


def assert_close_to(what: str, actual: np.ndarray, expected: np.ndarray, rtol: float) -> None:
    """Equal up to rtol relative to the largest magnitude in `expected` (gradients of random
    models span many magnitudes; elementwise relative error is meaningless near zero)."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, want {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype}, want {expected.dtype}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * _scale(expected),
                               equal_nan=True, err_msg=what)


def assert_no_worse(what: str, ours: np.ndarray, theirs: np.ndarray, exact: np.ndarray,
                    terms: int = 1) -> None:
    """float32: our error against the float64 answer is within 8x PyTorch's float32 error, plus
    a few ulps of the result's scale times sqrt(terms), where `terms` is how many values a
    gradient may sum (the rounding error of a sum grows like the square root of its length).
    That floor matters where the answer is 0 by cancellation: there PyTorch's own error can be 0
    by the symmetry of its rounding (softmax over 2 elements), which another order of evaluation
    does not reproduce."""
    assert ours.shape == exact.shape, f"{what}: shape {ours.shape}, want {exact.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype}, want {theirs.dtype}"
    exact = exact.astype(np.float64)
    our_error = np.abs(ours.astype(np.float64) - exact)
    their_error = np.abs(theirs.astype(np.float64) - exact)
    budget = 8 * np.max(their_error, initial=0.0) + 1e-6 * np.sqrt(terms) * _scale(exact)
    worst = np.max(our_error, initial=0.0)
    assert worst <= budget and np.array_equal(np.isnan(ours), np.isnan(exact)), (
        f"{what}: error {worst:.3g} against float64, PyTorch float32's is "
        f"{np.max(their_error, initial=0.0):.3g}\nours  {ours.ravel()[:8]}\nexact "
        f"{exact.ravel()[:8]}")


TOLERANCE = {"float32": 1e-4, "float64": 1e-10}


def check_spec(spec: ModelSpec, torch: Any = None) -> None:
    """All the agreements above for one spec; AssertionError names the first quantity that
    disagrees."""
    arrays = make_arrays(spec)
    arrays["grad2.seed"] = np.array(spec.seed + 1)
    eager = run_model(spec, runtime, arrays)
    inference, training = run_compiled(spec, arrays)
    rtol = TOLERANCE[spec.dtype]
    assert_close_to("compiled inference out vs eager", inference["out"], eager["out"], rtol)
    for key, value in training.items():
        assert_close_to(f"compiled training {key} vs eager", value, eager[key], rtol)
    if torch is None:
        return
    theirs = run_model(spec, torch, arrays)
    assert sorted(theirs) == sorted(eager), f"quantities: {sorted(eager)} vs {sorted(theirs)}"
    if spec.dtype == "float64":
        for key, value in theirs.items():
            assert_close_to(f"eager {key} vs torch", eager[key], value, 1e-9)
            if key in training:
                assert_close_to(f"compiled {key} vs torch", training[key], value, 1e-9)
        return
    exact = run_model(spec, torch, _cast(arrays, "float64"))
    terms = max(a.size for a in arrays.values())  # about how many values a gradient sums
    for key, value in theirs.items():
        assert_no_worse(f"eager {key} vs torch", eager[key], value, exact[key], terms)
        if key in training:
            assert_no_worse(f"compiled {key} vs torch", training[key], value, exact[key], terms)
