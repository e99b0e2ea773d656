"""Shared set-up of the reliability tests: the `--soak N` option, and a throwaway object cache.

`python -m pytest tests/reliability --soak 10000` runs the differential fuzzing on N random models
(continuing past failures and listing them at the end) and the tests too slow for CI. pytest puts
this folder on sys.path, so the tests import `fuzz_models` and `differential`.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", type=int, default=0, metavar="N",
                     help="reliability: fuzz N random models and run the long stability tests")


@pytest.fixture(scope="session")
def soak(pytestconfig: pytest.Config) -> int:
    """N of --soak N, or 0 (without it, or when pytest started above this folder, where the
    option is not registered)."""
    return int(pytestconfig.getoption("soak", default=0) or 0)


@pytest.fixture(scope="module")
def private_object_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point the JIT's disk cache at a temporary folder, so random graphs do not fill
    ~/.cache/symgrad."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path_factory.mktemp("objects")))
        yield
