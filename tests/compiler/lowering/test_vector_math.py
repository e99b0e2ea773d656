"""exp, log, tanh and erf emitted as IR, checked lane by lane against float64 references."""

import ctypes
import math

import numpy as np
import pytest
from llvmlite import ir

from compiler.lowering.target import jit_compile
from compiler.lowering.vector_math import emit_erf, emit_exp, emit_log, emit_tanh

EMITTERS = {"exp": emit_exp, "log": emit_log, "tanh": emit_tanh, "erf": emit_erf}
WIDTHS = {np.float32: (1, 8, 16), np.float64: (1, 4, 8)}


def _compile_map(function_name: str, dtype: type, width: int):
    """A native `void f(T* x, T* y, i64 n)` computing y = f(x) `width` lanes at a time."""
    element = ir.FloatType() if dtype is np.float32 else ir.DoubleType()
    lane_type = element if width == 1 else ir.VectorType(element, width)
    module = ir.Module(name=f"{function_name}_{width}")
    i64 = ir.IntType(64)
    function = ir.Function(
        module, ir.FunctionType(ir.VoidType(), [ir.PointerType(), ir.PointerType(), i64]), "f"
    )
    source, target, count = function.args
    entry = function.append_basic_block("entry")
    loop = function.append_basic_block("loop")
    done = function.append_basic_block("done")
    builder = ir.IRBuilder(entry)
    builder.cbranch(builder.icmp_signed(">", count, i64(0)), loop, done)
    builder.position_at_end(loop)
    index = builder.phi(i64)
    index.add_incoming(i64(0), entry)
    x = builder.load(builder.gep(source, [index], source_etype=element), typ=lane_type, align=1)
    builder.store(
        EMITTERS[function_name](builder, x),
        builder.gep(target, [index], source_etype=element),
        align=1,
    )
    following = builder.add(index, i64(width))
    index.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, count), loop, done)
    builder.position_at_end(done)
    builder.ret_void()
    library = jit_compile(module, ["f"])
    native = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)(library["f"])

    def apply(x: np.ndarray) -> np.ndarray:
        assert x.size % width == 0
        x = np.ascontiguousarray(x, dtype=dtype)
        y = np.empty_like(x)
        native(x.ctypes.data, y.ctypes.data, x.size)
        return y

    apply.library = library  # keep the code alive as long as `apply`
    return apply


def _ulp_distance(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Distance in units in the last place, via the monotone integer ordering of floats."""
    int_type = np.int32 if actual.dtype == np.float32 else np.int64

    def ordered(values):
        bits = values.view(int_type).astype(np.int64)
        return np.where(bits < 0, np.iinfo(int_type).min - bits, bits)

    return np.abs(ordered(actual) - ordered(expected))


def _reference(function_name: str, x: np.ndarray) -> np.ndarray:
    """float64 numpy for float32; for float64 numpy itself (its exp/log are within 1 ulp)."""
    with np.errstate(all="ignore"):
        return getattr(np, function_name)(x.astype(np.float64)).astype(x.dtype)


def _dense_grid(dtype, low, high, count=1 << 16, width=16):
    x = np.linspace(low, high, count, dtype=np.float64).astype(dtype)
    return x[: x.size - x.size % width]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("function_name", ["exp", "log"])
def test_accuracy_over_wide_range_every_width(function_name, dtype):
    if function_name == "exp":
        low, high = (-87.0, 88.0) if dtype is np.float32 else (-708.0, 709.0)
        x = _dense_grid(dtype, low, high)
    else:  # log: positive numbers spanning every exponent (denormals too), and near 1
        info = np.finfo(dtype)
        powers = np.linspace(np.log2(info.smallest_subnormal), info.maxexp - 1, (1 << 15) - 16)
        x = np.concatenate(
            [
                np.exp2(powers).astype(dtype),
                np.full(16, info.max, dtype),
                _dense_grid(dtype, 0.5, 2.0, 1 << 15),
            ]
        )
    allowed_ulps = 2 if dtype is np.float32 else 1
    expected = _reference(function_name, x)
    for width in WIDTHS[dtype]:
        actual = _compile_map(function_name, dtype, width)(x)
        worst = int(_ulp_distance(actual, expected).max())
        assert worst <= allowed_ulps, (
            f"{function_name} {np.dtype(dtype).name} x{width}: {worst} ulp, "
            f"at x={x[np.argmax(_ulp_distance(actual, expected))]!r}"
        )


def _special_inputs(dtype):
    info = np.finfo(dtype)
    denormals = [info.smallest_subnormal, info.smallest_subnormal * 3, info.tiny / 2, info.tiny]
    values = [
        0.0,
        -0.0,
        np.inf,
        -np.inf,
        np.nan,
        info.max,
        -info.max,
        1.0,
        -1.0,
        1e-30,
        -1e-30,
        88.72,
        88.73,
        -103.0,
        -104.5,
        709.7,
        709.8,
        -745.0,
        -746.0,
        1e4,
        -1e4,
        1e30,
        -1e30,
        *denormals,
        *(-d for d in denormals),
    ]
    x = np.array(values, dtype=dtype)
    return np.concatenate([x, np.zeros(-x.size % 16, dtype)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("function_name", ["exp", "log", "tanh"])
def test_special_values_match_numpy(function_name, dtype):
    x = _special_inputs(dtype)
    expected = _reference(function_name, x)
    for width in WIDTHS[dtype]:
        actual = _compile_map(function_name, dtype, width)(x)
        assert np.array_equal(np.isnan(actual), np.isnan(expected)), (x, actual, expected)
        finite_or_inf = ~np.isnan(expected)
        worst = _ulp_distance(actual[finite_or_inf], expected[finite_or_inf])
        assert worst.max() <= 2, (
            f"{function_name} x{width}: got {actual[finite_or_inf][worst > 2]} "
            f"for {x[finite_or_inf][worst > 2]}, expected {expected[finite_or_inf][worst > 2]}"
        )


def test_exact_results_at_the_edges_of_the_domain():
    x = np.array([0.0, -0.0, np.inf, -np.inf, 1.0, -1.0, np.nan, 1e-45], np.float32)
    exps = _compile_map("exp", np.float32, 8)(x)
    logs = _compile_map("log", np.float32, 8)(x)
    assert exps[:4].tolist() == [1.0, 1.0, np.inf, 0.0] and np.isnan(exps[6])
    assert logs[:3].tolist() == [-np.inf, -np.inf, np.inf]
    assert np.isnan(logs[3]) and logs[4] == 0.0 and np.isnan(logs[5]) and np.isnan(logs[6])
    assert logs[7] == np.float32(np.log(np.float64(np.float32(1e-45))))


def _every_nth_float32(step: int, limit: float) -> np.ndarray:
    """Every `step`-th float32 in [-limit, limit] in bit order (so denormals, tiny numbers and
    every binade are visited alike), with the smallest denormals, 0, -0, +-inf and NaN."""
    magnitudes = np.arange(0, np.float32(limit).view(np.int32), step, dtype=np.int32)
    positive = np.concatenate([magnitudes.view(np.float32), np.float32([1e-45, 3e-45, np.inf])])
    x = np.concatenate([positive, -positive, np.float32([np.nan])])
    return np.concatenate([x, np.zeros(-x.size % 16, np.float32)])


def test_tanh_float32_within_one_ulp_of_every_thousandth_float32():
    """The exp form 1 - 2/(e^2x + 1) cancels below |x| ~ 1 (it was 11 ulp at x = 0.125), so
    tanh is a polynomial there. (Every float32 in [0, 20] was checked once: at most 1 ulp,
    99.8% correctly rounded.)"""
    x = _every_nth_float32(1000, 20.0)
    expected = _reference("tanh", x)
    for width in WIDTHS[np.float32]:
        actual = _compile_map("tanh", np.float32, width)(x)
        assert np.array_equal(np.isnan(actual), np.isnan(x))
        distance = _ulp_distance(actual[~np.isnan(x)], expected[~np.isnan(x)])
        worst = int(distance.max())
        assert worst <= 1, (
            f"tanh float32 x{width}: {worst} ulp, at x={x[~np.isnan(x)][np.argmax(distance)]!r}"
        )


def test_tanh_float64_within_one_ulp_of_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 30
    x = np.concatenate([np.linspace(0, 3, 6000), np.geomspace(1e-12, 0.2, 1994), [20.0, 1e-300]])
    x = np.concatenate([x, -x])  # 16000 values: a whole number of vectors of every width
    expected = np.array([float(mpmath.tanh(v)) for v in x])
    for width in WIDTHS[np.float64]:
        actual = _compile_map("tanh", np.float64, width)(x)
        distance = _ulp_distance(actual, expected)
        assert distance.max() <= 1, (
            f"tanh float64 x{width}: {distance.max()} ulp, at x={x[np.argmax(distance)]!r}"
        )


def test_tanh_keeps_the_sign_of_zero_and_saturates_exactly():
    x = np.array([0.0, -0.0, np.inf, -np.inf, 9.1, -9.1, 1e30, -1e-45], np.float32)
    y = _compile_map("tanh", np.float32, 8)(x)
    assert np.signbit(y).tolist() == [False, True, False, True, False, True, False, True]
    assert y[2:7].tolist() == [1.0, -1.0, 1.0, -1.0, 1.0] and y[7] == np.float32(-1e-45)


def test_erf_float32_within_one_ulp_of_every_thousandth_float32():
    """erf is computed in double and rounded once more, so float32 results are the nearest
    float32 but for ties of the double rounding."""
    x = _every_nth_float32(1000, 10.0)
    with np.errstate(all="ignore"):
        expected = np.vectorize(math.erf, otypes=[np.float64])(x.astype(np.float64))
    expected = expected.astype(np.float32)
    for width in WIDTHS[np.float32]:
        actual = _compile_map("erf", np.float32, width)(x)
        assert np.array_equal(np.isnan(actual), np.isnan(x))
        distance = _ulp_distance(actual[~np.isnan(x)], expected[~np.isnan(x)])
        worst = int(distance.max())
        assert worst <= 1, (
            f"erf float32 x{width}: {worst} ulp, at x={x[~np.isnan(x)][np.argmax(distance)]!r}"
        )


def test_erf_float64_within_one_ulp_of_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 30
    x = np.concatenate([np.linspace(0, 6.5, 6000), np.geomspace(1e-12, 0.5, 1994),
                        [1.0, 1e-300]])
    x = np.concatenate([x, -x])  # 16000 values: a whole number of vectors of every width
    expected = np.array([float(mpmath.erf(v)) for v in x])
    for width in WIDTHS[np.float64]:
        actual = _compile_map("erf", np.float64, width)(x)
        distance = _ulp_distance(actual, expected)
        assert distance.max() <= 1, (
            f"erf float64 x{width}: {distance.max()} ulp, at x={x[np.argmax(distance)]!r}"
        )


def test_erf_keeps_the_sign_of_zero_saturates_and_keeps_nan():
    x = np.array([0.0, -0.0, np.inf, -np.inf, 7.0, -7.0, np.nan, -1e-45], np.float32)
    y = _compile_map("erf", np.float32, 8)(x)
    assert np.signbit(y[:6]).tolist() == [False, True, False, True, False, True]
    assert y[2:6].tolist() == [1.0, -1.0, 1.0, -1.0] and np.isnan(y[6])
    assert y[7] == np.float32(-1e-45 * 2 / math.sqrt(math.pi))
