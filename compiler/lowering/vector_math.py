"""Elementwise math emitted straight into IR: fused multiply-add, exp, log, tanh and erf.

Each emitter takes an IRBuilder and a value of type float, double, <N x float> or <N x double> and
returns a value of the same type; the vector width comes from the value. Nothing here calls libm
(LLVM scalarises `llvm.exp.v8f32` into eight `expf` calls, and the exported library must not need
them): exp, log, tanh and erf are polynomials with explicit handling of 0, infinities, NaN and
denormals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeAlias

from llvmlite import ir

FloatValue: TypeAlias = ir.Value  # a float, double or vector-of-those IR value


def _element_type(type_: ir.Type) -> ir.Type:
    return type_.element if isinstance(type_, ir.VectorType) else type_


def _like(type_: ir.Type, element: ir.Type) -> ir.Type:
    """`element`, or a vector of it as wide as `type_`."""
    return ir.VectorType(element, type_.count) if isinstance(type_, ir.VectorType) else element


def _constant(type_: ir.Type, value: float | int) -> ir.Constant:
    if isinstance(type_, ir.VectorType):
        return ir.Constant(type_, [ir.Constant(type_.element, value)] * type_.count)
    return ir.Constant(type_, value)


def _is_double(type_: ir.Type) -> bool:
    element = _element_type(type_)
    if isinstance(element, ir.DoubleType):
        return True
    if isinstance(element, ir.FloatType):
        return False
    raise TypeError(f"expected float, double or a vector of them, got {type_}")


def intrinsic_suffix(type_: ir.Type) -> str:
    """LLVM's overload mangling: float -> 'f32', <8 x double> -> 'v8f64'."""
    scalar = "f64" if _is_double(type_) else "f32"
    return f"v{type_.count}{scalar}" if isinstance(type_, ir.VectorType) else scalar


def declare_intrinsic(
    module: ir.Module, name: str, return_type: ir.Type, argument_types: list[ir.Type]
) -> ir.Function:
    """Get or declare intrinsic `name` (fully mangled, e.g. 'llvm.fma.v8f32').

    `Module.declare_intrinsic` cannot mangle vector overloads, so the name is spelled out here.
    """
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(return_type, argument_types), name=name)


def fma(builder: ir.IRBuilder, a: FloatValue, b: FloatValue, c: FloatValue) -> FloatValue:
    """a * b + c with one rounding (`llvm.fma`), for any float/double scalar or vector type."""
    type_ = a.type
    function = declare_intrinsic(
        builder.module, f"llvm.fma.{intrinsic_suffix(type_)}", type_, [type_, type_, type_]
    )
    return builder.call(function, [a, b, c])


def _horner(builder: ir.IRBuilder, x: FloatValue, coefficients: Sequence[float]) -> FloatValue:
    """c0*x^(n-1) + ... + c_(n-1), coefficients from the highest power down, by FMA."""
    result = _constant(x.type, coefficients[0])
    for coefficient in coefficients[1:]:
        result = fma(builder, result, x, _constant(x.type, coefficient))
    return result


class _Format:
    """Bit layout and constants of one IEEE binary format."""

    def __init__(self, double: bool) -> None:
        self.mantissa_bits = 52 if double else 23
        self.exponent_bias = 1023 if double else 127
        self.integer = ir.IntType(64 if double else 32)
        self.smallest_normal = 2.2250738585072014e-308 if double else 1.1754943508222875e-38
        # adding 1.5*2^p rounds |t| < 2^(p-1) to an integer held in the low mantissa bits
        self.round_shifter = 1.5 * 2.0**self.mantissa_bits
        self.round_shifter_bits = (0x4338 << 48) if double else 0x4B400000
        self.mantissa_mask = (1 << self.mantissa_bits) - 1
        self.one_bits = self.exponent_bias << self.mantissa_bits


# exp: e^x = 2^n * e^r, n = round(x / ln 2), r = x - n ln 2 (Cody-Waite: ln 2 = hi + lo)
_EXP_F32: dict[str, Any] = {
    "clamp": (-104.0, 89.0),  # beyond: 0 and inf come out of the scaling itself
    "ln2": (0.693359375, -2.12194440e-4),
    # Cephes expf: e^r ~ 1 + r + r^2 * P(r) on [-ln2/2, ln2/2]
    "poly": [
        1.9875691500e-4,
        1.3981999507e-3,
        8.3334519073e-3,
        4.1665795894e-2,
        1.6666665459e-1,
        5.0000001201e-1,
    ],
}
_EXP_F64: dict[str, Any] = {
    "clamp": (-746.0, 710.0),
    "ln2": (6.93147180369123816490e-01, 1.90821492927058770002e-10),
    # Taylor to r^13: truncation error below 1e-17 on [-ln2/2, ln2/2]
    "poly": [1.0 / math.factorial(k) for k in range(13, 1, -1)],
}


def emit_exp(builder: ir.IRBuilder, value: FloatValue) -> FloatValue:
    """e^value: within 1-2 ulp; 0 below the denormal range, inf above, NaN kept."""
    type_ = value.type
    double = _is_double(type_)
    fmt = _Format(double)
    table = _EXP_F64 if double else _EXP_F32
    int_type = _like(type_, fmt.integer)
    low, high = table["clamp"]
    ln2_hi, ln2_lo = table["ln2"]

    # clamp so that n fits the exponent arithmetic; NaN goes to `high` and is restored at the end
    x = builder.select(
        builder.fcmp_ordered("<", value, _constant(type_, high)), value, _constant(type_, high)
    )
    x = builder.select(
        builder.fcmp_ordered(">", x, _constant(type_, low)), x, _constant(type_, low)
    )
    shifter = _constant(type_, fmt.round_shifter)
    shifted = fma(builder, x, _constant(type_, 1.0 / math.log(2.0)), shifter)
    n_float = builder.fsub(shifted, shifter)
    n = builder.sub(builder.bitcast(shifted, int_type), _constant(int_type, fmt.round_shifter_bits))

    r = fma(builder, n_float, _constant(type_, -ln2_hi), x)
    r = fma(builder, n_float, _constant(type_, -ln2_lo), r)
    polynomial = _horner(builder, r, table["poly"])
    e_r = builder.fadd(fma(builder, polynomial, builder.fmul(r, r), r), _constant(type_, 1.0))

    # 2^n in two halves so that n down to the denormal range and n = 2^(exponent bits) work
    n_half = builder.ashr(n, _constant(int_type, 1))
    result = e_r
    for part in (n_half, builder.sub(n, n_half)):
        biased = builder.add(part, _constant(int_type, fmt.exponent_bias))
        scale = builder.bitcast(builder.shl(biased, _constant(int_type, fmt.mantissa_bits)), type_)
        result = builder.fmul(result, scale)
    return builder.select(builder.fcmp_unordered("uno", value, value), value, result)


# log: x = 2^e * m with m in [sqrt(1/2), sqrt(2)), log x = e ln 2 + log m, f = m - 1
_LOG_F32_POLY = [  # Cephes logf: log(1+f) ~ f - f^2/2 + f^3 * P(f)
    7.0376836292e-2,
    -1.1514610310e-1,
    1.1676998740e-1,
    -1.2420140846e-1,
    1.4249322787e-1,
    -1.6668057665e-1,
    2.0000714765e-1,
    -2.4999993993e-1,
    3.3333331174e-1,
]
_LOG_F32_LN2 = (0.693359375, -2.12194440e-4)
# fdlibm log: s = f / (2 + f), log(1+f) = f - f^2/2 + s (f^2/2 + R(s^2))
_LOG_F64_LG = [
    6.666666666666735130e-01,
    3.999999999940941908e-01,
    2.857142874366239149e-01,
    2.222219843214978396e-01,
    1.818357216161805012e-01,
    1.531383769920937332e-01,
    1.479819860511658591e-01,
]
_LOG_F64_LN2 = (6.93147180369123816490e-01, 1.90821492927058770002e-10)


def emit_log(builder: ir.IRBuilder, value: FloatValue) -> FloatValue:
    """Natural log: within 1-2 ulp; log 0 = -inf, log(negative) = NaN, log inf = inf, NaN kept."""
    type_ = value.type
    double = _is_double(type_)
    fmt = _Format(double)
    int_type = _like(type_, fmt.integer)

    # denormals: scale into the normal range first and correct the exponent
    denormal_scale_bits = fmt.mantissa_bits + 1
    is_denormal = builder.fcmp_ordered("<", value, _constant(type_, fmt.smallest_normal))
    x = builder.select(
        is_denormal, builder.fmul(value, _constant(type_, 2.0**denormal_scale_bits)), value
    )
    exponent_correction = builder.select(
        is_denormal, _constant(int_type, -denormal_scale_bits), _constant(int_type, 0)
    )
    bits = builder.bitcast(x, int_type)
    exponent = builder.sub(
        builder.lshr(bits, _constant(int_type, fmt.mantissa_bits)),
        _constant(int_type, fmt.exponent_bias),
    )
    exponent = builder.add(exponent, exponent_correction)
    mantissa_bits = builder.or_(
        builder.and_(bits, _constant(int_type, fmt.mantissa_mask)),
        _constant(int_type, fmt.one_bits),
    )
    m = builder.bitcast(mantissa_bits, type_)  # in [1, 2)
    above_sqrt2 = builder.fcmp_ordered(">", m, _constant(type_, math.sqrt(2.0)))
    m = builder.select(above_sqrt2, builder.fmul(m, _constant(type_, 0.5)), m)
    exponent = builder.add(exponent, builder.zext(above_sqrt2, int_type))
    k = builder.sitofp(exponent, type_)
    f = builder.fsub(m, _constant(type_, 1.0))

    if double:
        ln2_hi, ln2_lo = _LOG_F64_LN2
        s = builder.fdiv(f, builder.fadd(f, _constant(type_, 2.0)))
        z = builder.fmul(s, s)
        w = builder.fmul(z, z)
        odd = builder.fmul(z, _horner(builder, w, _LOG_F64_LG[6::-2]))  # Lg1 + w Lg3 + ...
        even = builder.fmul(w, _horner(builder, w, _LOG_F64_LG[5::-2]))  # Lg2 + w Lg4 + ...
        r_s = builder.fadd(odd, even)
        half_f2 = builder.fmul(builder.fmul(f, f), _constant(type_, 0.5))
        correction = fma(
            builder, s, builder.fadd(half_f2, r_s), builder.fmul(k, _constant(type_, ln2_lo))
        )
        log_m = builder.fsub(f, builder.fsub(half_f2, correction))
        result = fma(builder, k, _constant(type_, ln2_hi), log_m)
    else:
        ln2_hi, ln2_lo = _LOG_F32_LN2
        z = builder.fmul(f, f)
        y = builder.fmul(builder.fmul(_horner(builder, f, _LOG_F32_POLY), f), z)
        y = fma(builder, k, _constant(type_, ln2_lo), y)
        y = fma(builder, z, _constant(type_, -0.5), y)
        result = fma(builder, k, _constant(type_, ln2_hi), builder.fadd(f, y))

    special_cases = [
        (builder.fcmp_ordered("==", value, _constant(type_, math.inf)), math.inf),
        (builder.fcmp_ordered("==", value, _constant(type_, 0.0)), -math.inf),
        (builder.fcmp_ordered("<", value, _constant(type_, 0.0)), math.nan),
    ]
    for condition, special in special_cases:
        result = builder.select(condition, _constant(type_, special), result)
    return builder.select(builder.fcmp_unordered("uno", value, value), value, result)


def _intrinsic(builder: ir.IRBuilder, name: str, *values: FloatValue) -> FloatValue:
    """llvm.<name> (fabs, copysign) of values of one float type."""
    type_ = values[0].type
    function = declare_intrinsic(
        builder.module, f"llvm.{name}.{intrinsic_suffix(type_)}", type_, [type_] * len(values)
    )
    return builder.call(function, list(values))


# tanh: below `bound`, x + x^3 P(x^2), P minimax for the relative error of tanh (where
# 1 - 2/(e^2|x| + 1) cancels: it was 11 ulp at |x| = 1/8); above, that form, whose error is
# damped there by (2/(e^2|x| + 1)) / tanh|x| <= 0.31 (float32) and 0.8 (float64)
_TANH_F32: dict[str, Any] = {
    "bound": 1.0,
    "poly": [
        -0.00035861122887581587,
        0.0023019297514110804,
        -0.007946893572807312,
        0.021487198770046234,
        -0.0538799911737442,
        0.13332347571849823,
        -0.33333295583724976,
    ],  # 4.7e-9 relative, float32 coefficients
}
_TANH_F64: dict[str, Any] = {
    "bound": 0.625,
    "poly": [
        -1.6071916567790882e-05,
        7.714291758320668e-05,
        -0.00022856281671854164,
        0.0005863157780495896,
        -0.0014549586175370167,
        0.003591989116185921,
        -0.008863220994357782,
        0.02186948757534476,
        -0.05396825393122745,
        0.1333333333326198,
        -0.33333333333332854,
    ],  # 1.0e-17 relative
}


def emit_tanh(builder: ir.IRBuilder, value: FloatValue) -> FloatValue:
    """tanh(value): within 2 ulp; +-1 where it rounds to +-1, -0 kept, NaN kept."""
    type_ = value.type
    table = _TANH_F64 if _is_double(type_) else _TANH_F32
    magnitude = _intrinsic(builder, "fabs", value)
    e2 = emit_exp(builder, builder.fmul(magnitude, _constant(type_, 2.0)))
    one_minus = builder.fdiv(_constant(type_, 2.0), builder.fadd(e2, _constant(type_, 1.0)))
    large = builder.fsub(_constant(type_, 1.0), one_minus)
    square = builder.fmul(magnitude, magnitude)
    cube = builder.fmul(magnitude, square)
    small = fma(builder, cube, _horner(builder, square, table["poly"]), magnitude)
    below = builder.fcmp_ordered("<", magnitude, _constant(type_, table["bound"]))
    # by magnitude, then the sign: x + x^3 P would make tanh(-0) +0
    return _intrinsic(builder, "copysign", builder.select(below, small, large), value)


# erf, in double precision (a float32 argument is widened, so its result is correctly rounded
# but for the last double bit): below |x| = 1, x (2/sqrt(pi) + A(x^2)); from 1 to 6,
# 1 - erfc(|x|) with erfc(x) = e^(-x^2) B(1/x) / x; above 6 it rounds to 1. A and B are
# Chebyshev series (interpolants at the Chebyshev nodes computed with mpmath at 40 digits:
# 1 ulp relative).
_TWO_OVER_SQRT_PI = 1.1283791670955126
_ERF_SMALL = [  # erf(sqrt(s)) / sqrt(s) - 2/sqrt(pi) for s = x^2 in [0, 1]
    -0.15290222771285847, -0.14226120510371365, 0.010035582187599796, -0.0005768764699767485,
    2.741993125219606e-05, -1.1043175507344507e-06, 3.8488755420345036e-08,
    -1.1808582533875466e-09, 3.2334215826050907e-11, -7.991015947004483e-13,
    1.799072511348477e-14, -3.718635162421382e-16, 7.101507363020076e-18,
]
_ERFC_SCALED = [  # erfc(1/t) e^(1/t^2) / t for t = 1/x in [1/6, 1]
    0.49471361578208073, -0.06627963187965226, -0.0022764645742360114, 0.001717245128146866,
    -0.00032014496358247316, 2.6743225983670515e-05, 3.968695744344053e-06,
    -2.2059099609177132e-06, 5.18822760986672e-07, -6.999918836906682e-08,
    -9.071270087834272e-10, 3.81951552192842e-09, -1.3416438565181666e-09,
    2.9478922180326543e-10, -3.7867607999754376e-11, -2.1671472561499943e-12,
    3.1122292821689e-12, -1.1363842125611559e-12, 2.7739855298110054e-13,
    -4.459066811133214e-14, 1.0733136925837078e-15, 2.4789567338013236e-15,
    -1.1596965513120979e-15, 3.4582128885123845e-16, -7.531220886739288e-17,
    1.0784690260262358e-17,
]
_ERF_SATURATES = 6.0  # erf(6) is 1 - 2e-17: 1 in double
# A float32 result needs a relative error far below its half ulp (3e-8), not a double's: the
# series are cut where the terms left out are below 1e-10 (at most 1 ulp, as tested)
_ERF_TERMS_FOR_FLOAT32 = (8, 14)


def _chebyshev(builder: ir.IRBuilder, u: FloatValue, coefficients: list[float]) -> FloatValue:
    """sum c_k T_k(u) for u in [-1, 1], by Clenshaw's recurrence (stable, FMA per term)."""
    type_ = u.type
    twice_u = builder.fmul(u, _constant(type_, 2.0))
    later = _constant(type_, 0.0)  # b_(k+2)
    current = _constant(type_, 0.0)  # b_(k+1)
    for coefficient in reversed(coefficients[1:]):
        step = builder.fsub(_constant(type_, coefficient), later)
        current, later = fma(builder, twice_u, current, step), current
    return fma(builder, u, current, builder.fsub(_constant(type_, coefficients[0]), later))


def emit_erf(builder: ir.IRBuilder, value: FloatValue) -> FloatValue:
    """erf(value): within 1 ulp (float32: to the nearest but for double rounding), -0 kept,
    +-1 at +-inf, NaN kept."""
    type_ = value.type
    double_type = _like(type_, ir.DoubleType())
    double = _is_double(type_)
    x = value if double else builder.fpext(value, double_type)
    small_terms, large_terms = (None, None) if double else _ERF_TERMS_FOR_FLOAT32
    magnitude = _intrinsic(builder, "fabs", x)

    # small: x (2/sqrt(pi) + A(x^2)), the series mapped from s in [0, 1] to u = 2s - 1; the
    # constant added by the last FMA, so the series' rounding counts only at its smaller size
    square = builder.fmul(x, x)
    u_small = fma(builder, square, _constant(double_type, 2.0), _constant(double_type, -1.0))
    small = fma(builder, x, _constant(double_type, _TWO_OVER_SQRT_PI),
                builder.fmul(x, _chebyshev(builder, u_small, _ERF_SMALL[:small_terms])))
    small = _intrinsic(builder, "copysign", small, x)  # -0 + +0 would make erf(-0) +0

    # large: clamped into [1, 6] so that no lane computes with inf or NaN it does not need
    clamped = builder.select(builder.fcmp_ordered("<", magnitude, _constant(double_type, 1.0)),
                             _constant(double_type, 1.0), magnitude)
    clamped = builder.select(
        builder.fcmp_ordered(">", clamped, _constant(double_type, _ERF_SATURATES)),
        _constant(double_type, _ERF_SATURATES), clamped)
    t = builder.fdiv(_constant(double_type, 1.0), clamped)
    u_large = fma(builder, t, _constant(double_type, 2.4), _constant(double_type, -1.4))
    # e^(-x^2) with x^2 = hi + lo exactly (FMA): e^-hi (1 - lo) loses nothing to rounding x^2
    hi = builder.fmul(clamped, clamped)
    lo = fma(builder, clamped, clamped, builder.fneg(hi))
    gaussian = emit_exp(builder, builder.fneg(hi))
    gaussian = fma(builder, gaussian, builder.fneg(lo), gaussian)
    scaled = _chebyshev(builder, u_large, _ERFC_SCALED[:large_terms])
    erfc = builder.fmul(builder.fmul(gaussian, t), scaled)
    large = builder.fsub(_constant(double_type, 1.0), erfc)
    large = builder.select(
        builder.fcmp_ordered(">=", magnitude, _constant(double_type, _ERF_SATURATES)),
        _constant(double_type, 1.0), large)
    large = _intrinsic(builder, "copysign", large, x)

    is_small = builder.fcmp_ordered("<", magnitude, _constant(double_type, 1.0))
    result = builder.select(is_small, small, large)
    result = builder.select(builder.fcmp_unordered("uno", x, x), x, result)
    return result if double else builder.fptrunc(result, type_)
