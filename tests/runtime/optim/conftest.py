"""Shared by the optimizer tests: run a symgrad optimizer and torch's side by side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import runtime

SHAPES = [(3, 4), (4,), ()]


@pytest.fixture
def assert_steps_match_torch() -> Callable[..., None]:
    """`check("SGD", momentum=0.9)`: 20 steps of runtime.optim.SGD and torch.optim.SGD with the
    same random float64 parameters and gradients agree within 1e-12, and so do their states."""
    torch = pytest.importorskip("torch")

    def check(name: str, steps: int = 20, **options: Any) -> None:
        rng = np.random.default_rng(2024)
        initial = [np.asarray(rng.standard_normal(shape)) for shape in SHAPES]
        ours = [runtime.tensor(a, requires_grad=True) for a in initial]
        theirs = [torch.tensor(a, requires_grad=True) for a in initial]
        our_optimizer = getattr(runtime.optim, name)(ours, **options)
        their_optimizer = getattr(torch.optim, name)(theirs, **options)
        for step in range(steps):
            for p, q in zip(ours, theirs):
                g = np.asarray(rng.standard_normal(p.shape))
                p.grad, q.grad = runtime.tensor(g), torch.tensor(g)
            our_optimizer.step()
            their_optimizer.step()
            for p, q in zip(ours, theirs):
                np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=0,
                                           atol=1e-12, err_msg=f"{name}({options}), step {step}")
        for p, q in zip(ours, theirs):
            our_state, their_state = our_optimizer.state[p], their_optimizer.state[q]
            assert our_state.keys() == their_state.keys()
            for key in our_state:
                np.testing.assert_allclose(np.asarray(our_state[key]._data),
                                           their_state[key].numpy(), rtol=0, atol=1e-12,
                                           err_msg=f"state[{key!r}] of {name}({options})")

    return check
