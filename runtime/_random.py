"""Random number generation: `manual_seed`, `Generator`, and the default generator.

Draws come from numpy's PCG64, so a seed reproduces symgrad's draws exactly, but not PyTorch's
(PyTorch's mt19937 and its sampling order are not reproduced).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _fresh_seed() -> int:
    """A seed below 2**63 from the operating system's entropy."""
    entropy = np.random.SeedSequence().entropy  # an int, when no entropy is given
    assert isinstance(entropy, int)
    return entropy % (2**63)


class Generator:
    """A source of random numbers (torch.Generator); `manual_seed` makes its draws reproducible."""

    def __init__(self, device: str = "cpu") -> None:
        self._seed = _fresh_seed()
        self._rng = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self._rng = np.random.Generator(np.random.PCG64(self._seed % (2**64)))
        return self

    def seed(self) -> int:
        return self.manual_seed(_fresh_seed())._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict[str, Any]:
        return dict(self._rng.bit_generator.state)

    def set_state(self, state: dict) -> Generator:
        self._rng.bit_generator.state = state
        return self

    @property
    def numpy(self) -> np.random.Generator:
        return self._rng


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator: later draws (randn, nn.Linear's init, shuffling) repeat."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def numpy_rng(generator: Generator | None) -> np.random.Generator:
    return (generator or default_generator).numpy
