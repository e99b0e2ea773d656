"""The thread team and the threaded GEMM: same results as one thread, from any number of callers."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from gemm_harness import GEMM_PROTOTYPE

from compiler.lowering.gemm import gemm_config
from compiler.native_build import gemm_address


def _threaded(dtype: str):
    config = gemm_config(dtype)
    function = GEMM_PROTOTYPE(gemm_address(config.symbol("_threaded")))
    workspace = np.empty(2 * (16 + 256 * (config.row_block + config.column_block)) + 64, dtype)

    def product(a: np.ndarray, b: np.ndarray, transpose_b: bool = False) -> np.ndarray:
        m, k = a.shape
        n = b.shape[0] if transpose_b else b.shape[1]
        out = np.empty((m, n), dtype)
        b_rs, b_cs = (1, k) if transpose_b else (n, 1)
        function(m, n, k, a.ctypes.data, k, 1, b.ctypes.data, b_rs, b_cs, out.ctypes.data, n, 0,
                 workspace.ctypes.data)
        return out

    return product, workspace


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,n,k", [(64, 512, 784), (13, 700, 500), (300, 37, 400), (8, 8, 8),
                                   (1, 700, 500), (3, 40, 33), (2, 3000, 1500)])
def test_threaded_gemm_equals_numpy(dtype, m, n, k):
    rng = np.random.default_rng(0)
    product, _ = _threaded(dtype)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    expected = a @ b
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(product(a, b), expected, rtol=0,
                               atol=tolerance * np.abs(expected).max())
    np.testing.assert_allclose(product(a, np.ascontiguousarray(b.T), transpose_b=True), expected,
                               rtol=0, atol=tolerance * np.abs(expected).max())


def test_concurrent_callers_get_their_own_results():
    """Callers that find the team busy run serially on their own thread: no waiting, no mixing."""
    rng = np.random.default_rng(1)
    config = gemm_config("float32")
    function = GEMM_PROTOTYPE(gemm_address(config.symbol("_threaded")))
    failures = []

    def worker(seed: int) -> None:
        local = np.random.default_rng(seed)
        a = local.standard_normal((96, 300)).astype(np.float32)
        b = local.standard_normal((300, 200)).astype(np.float32)
        workspace = np.empty(2 * (16 + 256 * (config.row_block + config.column_block)) + 64,
                             np.float32)
        for _ in range(20):
            out = np.empty((96, 200), np.float32)
            function(96, 200, 300, a.ctypes.data, 300, 1, b.ctypes.data, 200, 1, out.ctypes.data,
                     200, 0, workspace.ctypes.data)
            if not np.allclose(out, a @ b, atol=1e-3):
                failures.append(seed)

    threads = [threading.Thread(target=worker, args=(int(s),)) for s in rng.integers(0, 1000, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
