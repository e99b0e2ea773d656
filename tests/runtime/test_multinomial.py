"""multinomial (runtime/_functions.py): draws from each row of weights, with and without
replacement, reproducible from manual_seed or a Generator, with PyTorch's shapes, dtypes and
errors. (The draws themselves are symgrad's own: PyTorch's generator is not reproduced.)"""

import numpy as np
import pytest

import runtime

WEIGHTS = runtime.tensor([[0.1, 0.0, 0.6, 0.3], [1.0, 1.0, 1.0, 1.0]])


def test_draws_with_replacement_follow_the_weights():
    runtime.manual_seed(0)
    draws = runtime.multinomial(WEIGHTS, 4000, replacement=True)
    assert draws.shape == (2, 4000) and draws.dtype == runtime.int64
    frequencies = np.bincount(draws[0].numpy(), minlength=4) / 4000
    np.testing.assert_allclose(frequencies, [0.1, 0.0, 0.6, 0.3], atol=0.03)
    assert (draws[0] != 1).all()  # a zero weight is never drawn


def test_draws_without_replacement_are_distinct_and_skip_zero_weights():
    runtime.manual_seed(1)
    for _ in range(20):
        row = runtime.multinomial(WEIGHTS[0], 3).tolist()
        assert len(set(row)) == 3 and 1 not in row
    assert runtime.multinomial(WEIGHTS[1:], 4, replacement=False)[0].sort().values.tolist() == \
        [0, 1, 2, 3]


def test_seeded_draws_repeat():
    runtime.manual_seed(7)
    first = runtime.multinomial(WEIGHTS, 5, replacement=True)
    runtime.manual_seed(7)
    assert runtime.equal(first, WEIGHTS.multinomial(5, replacement=True))
    g = runtime.Generator().manual_seed(3)
    again = runtime.Generator().manual_seed(3)
    assert runtime.equal(runtime.multinomial(WEIGHTS, 2, generator=g),
                         runtime.multinomial(WEIGHTS, 2, generator=again))


def test_errors_match_torch():
    torch = pytest.importorskip("torch")
    cases = [(lambda lib: lib.multinomial(lib.tensor([0.5, 0.5]), 3), "n_sample > prob_dist"),
             (lambda lib: lib.multinomial(lib.tensor([0.5, -0.1]), 1), "element < 0"),
             (lambda lib: lib.multinomial(lib.tensor([0.0, 0.0]), 1), "sum of probabilities"),
             (lambda lib: lib.multinomial(lib.ones(2, 2, 2), 1), "prob_dist must be 1 or 2 dim")]
    for call, words in cases:
        for lib in (runtime, torch):
            with pytest.raises(RuntimeError, match=words):
                call(lib)
