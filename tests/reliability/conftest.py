"""Shared set-up of the reliability tests: the `--soak N` and `--soak-seed S` options, and a
throwaway object cache.

`python -m pytest tests/reliability --soak 10000` runs the differential fuzzing on N random models
(continuing past failures and listing them at the end) and the tests too slow for CI. Its chunks
of models use hypothesis seeds S, S + 1, ...: the current time unless `--soak-seed S` is given
(two processes soak disjoint models when their ranges S .. S + N/100 do not overlap). pytest puts
this folder on sys.path, so the tests import `fuzz_models` and `differential`.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", type=int, default=0, metavar="N",
                     help="reliability: fuzz N random models and run the long stability tests")
    parser.addoption("--soak-seed", type=int, default=None, metavar="S",
                     help="reliability: the soak's first hypothesis seed (default: the time)")


@pytest.fixture(scope="session")
def soak(pytestconfig: pytest.Config) -> int:
    """N of --soak N, or 0 (without it, or when pytest started above this folder, where the
    option is not registered)."""
    return int(pytestconfig.getoption("soak", default=0) or 0)


@pytest.fixture(scope="session")
def soak_seed(pytestconfig: pytest.Config) -> int | None:
    """S of --soak-seed S, or None (the soak then starts from the current time)."""
    return pytestconfig.getoption("soak_seed", default=None)


@pytest.fixture(scope="module")
def private_object_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point the JIT's disk cache at a temporary folder, so random graphs do not fill
    ~/.cache/symgrad."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path_factory.mktemp("objects")))
        yield
