"""The shape rules of the convolution, pooling and embedding ops keep a symbolic batch size (a
sympy symbol) symbolic, so one traced graph serves every batch size; and erf's numpy kernel
without scipy."""

import math
import sys
from types import SimpleNamespace

import numpy as np
import sympy

import runtime
from runtime.ops import conv, elementwise, embedding, pooling

N = sympy.Symbol("N", positive=True, integer=True)
F32 = runtime.float32


def operand(*shape, dtype=F32):
    return SimpleNamespace(shape=shape, dtype=dtype, _wrapped_number=False)


def test_convolution_and_its_derivatives_keep_the_batch_symbolic():
    attrs = {"stride": (2, 1), "padding": ((1, 1), (0, 0)), "dilation": (1, 1), "groups": 1}
    shape, _ = conv._convolution.infer([operand(N, 3, 9, 8), operand(6, 3, 3, 3)], **attrs)
    assert shape == (N, 6, 5, 6)
    shape, _ = conv._convolution_input_grad.infer([operand(N, 6, 5, 6), operand(6, 3, 3, 3)],
                                                  input_size=(9, 8), **attrs)
    assert shape == (N, 3, 9, 8)
    shape, _ = conv._convolution_weight_grad.infer([operand(N, 3, 9, 8), operand(N, 6, 5, 6)],
                                                   kernel_size=(3, 3), **attrs)
    assert shape == (6, 3, 3, 3)


def test_pooling_and_embedding_keep_the_batch_symbolic():
    pool = {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0)}
    shape, dtype = pooling._max_pool_indices.infer([operand(N, 4, 9, 8)], dilation=(1, 1),
                                                   ceil_mode=True, **pool)
    assert shape == (N, 4, 5, 4) and dtype == runtime.int64
    shape, _ = pooling._avg_pool.infer([operand(N, 4, 9, 8)], ceil_mode=False,
                                       count_include_pad=True, divisor_override=None, **pool)
    assert shape == (N, 4, 4, 4)
    shape, _ = embedding._embedding.infer([operand(65, 32), operand(N, 16, dtype=runtime.int64)],
                                          padding_idx=None)
    assert shape == (N, 16, 32)


def test_erf_kernel_without_scipy_is_math_erf(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)  # makes `from scipy import special` fail
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    x = np.linspace(-4, 4, 17)
    np.testing.assert_array_equal(elementwise._erf(x), [math.erf(v) for v in x])
    assert elementwise._erf(x.astype(np.float32)).dtype == np.float32
