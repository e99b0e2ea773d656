"""Narrow products (x @ W.T with at most 16 columns, a classifier's last layer): the threaded
GEMM entry sends them to blocked dot products, which must equal float64 numpy for every edge of
the blocks -- rows and columns past a block's end, K not a whole number of vectors, K = 0 --
and add to C when asked."""

from __future__ import annotations

import ctypes
import mmap

import numpy as np
import pytest
from gemm_harness import GEMM_PROTOTYPE

from compiler.lowering.gemm import gemm_config, workspace_elements
from compiler.lowering.narrow_products import NARROW_COLUMNS
from compiler.native_build import gemm_address


def _x_at_w_t(x: np.ndarray, w: np.ndarray, out: np.ndarray, accumulate: bool) -> None:
    """out (+)= x @ w.T through symgrad_gemm_<tag>_threaded, in nn.Linear's layout."""
    config = gemm_config(x.dtype)
    function = GEMM_PROTOTYPE(gemm_address(config.symbol("_threaded")))
    (m, k), n = x.shape, w.shape[0]
    workspace = np.empty(2 * workspace_elements(m, n, k, config) + 64, x.dtype)
    function(m, n, k, x.ctypes.data, k, 1, w.ctypes.data, 1, k, out.ctypes.data, n,
             int(accumulate), workspace.ctypes.data)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,k,n", [(64, 512, 10), (65, 513, 10), (9, 17, 1), (100, 3, 16),
                                   (13, 1, 7), (256, 512, 10), (33, 40, NARROW_COLUMNS),
                                   (10, 0, 5)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_narrow_products_equal_numpy(dtype, m, k, n, accumulate):
    rng = np.random.default_rng(m * 1000 + k + n)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((n, k)).astype(dtype)
    out = rng.standard_normal((m, n)).astype(dtype)
    expected = (out.astype(np.float64) if accumulate else 0) + \
        x.astype(np.float64) @ w.T.astype(np.float64)
    _x_at_w_t(x, w, out, accumulate)
    tolerance = 2e-6 if dtype == "float32" else 1e-14
    scale = max(1.0, np.abs(x).sum(axis=1).max(initial=0.0) * np.abs(w).max(initial=0.0))
    np.testing.assert_allclose(out, expected, rtol=0, atol=tolerance * scale)


def test_narrow_products_read_nothing_past_the_matrices():
    """w ends exactly where an unreadable page begins; block edges re-read the last row or
    column instead of reading on (a read past w would crash the test process)."""
    page = mmap.PAGESIZE
    memory = mmap.mmap(-1, 2 * page, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    libc = ctypes.CDLL(None, use_errno=True)
    base = ctypes.addressof(ctypes.c_char.from_buffer(memory))
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(base + page, page, 0) == 0, "mprotect failed"
    k, n, m = 7, 3, 5  # no whole vector, a partial row block and a partial column block
    floats = np.frombuffer(memory, np.float32, count=page // 4)
    w = floats[page // 4 - n * k:].reshape(n, k)  # the last floats before the guard page
    x = np.arange(m * k, dtype=np.float32).reshape(m, k)
    w[:] = 1.0
    out = np.empty((m, n), np.float32)
    _x_at_w_t(x, w, out, accumulate=False)
    np.testing.assert_array_equal(out, np.repeat(x.sum(axis=1, keepdims=True), n, axis=1))
    libc.mprotect(base + page, page, mmap.PROT_READ | mmap.PROT_WRITE)
    del floats, w
