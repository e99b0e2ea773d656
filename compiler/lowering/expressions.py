"""Emit a sympy scalar expression as LLVM IR: the one lowering of every elementwise op.

Elementwise ops (and fused elementwise regions) are sympy expressions, so a single emitter serves
them all: sympy's `cse` shares subexpressions, then each node kind has one rule here (Add, Mul,
Pow, exp, log, log1p, sqrt, Abs, sign, tanh, erf, Max, Min, Heaviside, Piecewise, relations,
logic). Values are floating point of the kernel's compute type; conditions are i1. exp, log, tanh
and erf are the polynomials of `vector_math`, so the loops that use them vectorise and need no
libm. A constant (E, pi, exp(2)) is a float computed by sympy; a Piecewise is NaN where no
condition holds, as in sympy and in the eager kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy
from llvmlite import ir
from sympy.codegen.cfunctions import log1p

from compiler.lowering.llvm_types import I1
from compiler.lowering.vector_math import (
    declare_intrinsic,
    emit_erf,
    emit_exp,
    emit_log,
    emit_tanh,
    intrinsic_suffix,
)

# Fast-math flags that let LLVM vectorise reductions (reassoc) and contract to FMA, but not the
# full "fast" set: nnan/ninf would let it assume no inf or NaN, which PyTorch propagates, and
# arcp turns 1/sqrt(x) into an estimate that is NaN at 0 and inf.
FLOAT_FLAGS = ("reassoc", "nsz", "contract")


class UnsupportedExpression(NotImplementedError):
    """An expression node with no lowering rule."""


class ExpressionEmitter:
    """Emits expressions over `symbols` (bound to IR values) in float type `float_type`."""

    def __init__(self, builder: ir.IRBuilder, float_type: ir.Type) -> None:
        self.builder = builder
        self.type = float_type
        self.module = builder.module

    def constant(self, value: float) -> ir.Constant:
        return ir.Constant(self.type, float(value))

    def emit(self, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
        """The value of `expr` with each free symbol bound by `env`."""
        replacements, (reduced,) = sympy.cse([expr], optimizations="basic")
        env = dict(env)
        for symbol, sub in replacements:
            env[symbol] = self._emit(sub, env)
        return self._emit(reduced, env)

    def emit_float(self, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
        """Like emit, but a condition (a relation) comes back as 0.0 / 1.0."""
        value = self.emit(expr, env)
        return self._as_float(value)

    def _as_float(self, value: ir.Value) -> ir.Value:
        if value.type == I1:
            return self.builder.uitofp(value, self.type)
        return value

    def _as_bool(self, value: ir.Value) -> ir.Value:
        if value.type == I1:
            return value
        return self.builder.fcmp_unordered("!=", value, self.constant(0.0))

    def _emit(self, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
        if expr in env:
            return env[expr]
        if expr is sympy.true or expr is sympy.false:
            return ir.Constant(I1, int(bool(expr)))
        if expr.is_Number:
            return self.constant(float(expr))
        constant = _real_constant(expr)
        if constant is not None:
            return self.constant(constant)
        for kind, rule in _RULES:
            if isinstance(expr, kind):
                return rule(self, expr, env)
        raise UnsupportedExpression(f"no native lowering for {type(expr).__name__} in {expr}")

    # ----- helpers used by the rules -----------------------------------------------------------

    def args(self, expr: Any, env: dict[Any, ir.Value]) -> list[ir.Value]:
        return [self._as_float(self._emit(a, env)) for a in expr.args]

    def intrinsic(self, name: str, *values: ir.Value) -> ir.Value:
        full = f"llvm.{name}.{intrinsic_suffix(self.type)}"
        function = declare_intrinsic(self.module, full, self.type, [self.type] * len(values))
        return self.builder.call(function, list(values))

    def select(self, condition: ir.Value, a: ir.Value, b: ir.Value) -> ir.Value:
        return self.builder.select(self._as_bool(condition), a, b)


def _real_constant(expr: Any) -> float | None:
    """The value of an expression without symbols (E, pi, exp(2), sqrt(2)) as a float, or None
    when it has symbols or is not real (zoo, I)."""
    if not getattr(expr, "is_number", False):
        return None
    try:
        value = complex(expr.evalf())
    except (TypeError, ValueError):
        return None
    return value.real if value.imag == 0 else None


def _fold(op: Callable[[ir.IRBuilder], Callable[..., ir.Value]]) -> Callable[..., ir.Value]:
    def rule(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
        values = e.args(expr, env)
        result = values[0]
        for v in values[1:]:
            result = op(e.builder)(result, v, flags=FLOAT_FLAGS)
        return result

    return rule


def _mul(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    # x * y**-1 becomes a division rather than a reciprocal and a product.
    numerator, denominator = [], []
    for a in expr.args:
        if isinstance(a, sympy.Pow) and a.exp.is_Number and a.exp < 0:
            denominator.append(sympy.Pow(a.base, -a.exp))
        else:
            numerator.append(a)
    values = [e._as_float(e._emit(a, env)) for a in numerator] or [e.constant(1.0)]
    result = values[0]
    for v in values[1:]:
        result = e.builder.fmul(result, v, flags=FLOAT_FLAGS)
    for d in denominator:
        result = e.builder.fdiv(result, e._as_float(e._emit(d, env)), flags=FLOAT_FLAGS)
    return result


def _integral(number: Any) -> int | None:
    """A sympy number that is a small whole number (2, 2.0, -3) as an int, else None."""
    if not number.is_Number or not number.is_finite or abs(float(number)) > 16:
        return None
    value = float(number)
    return int(value) if value.is_integer() else None


def _pow(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    base, exponent = expr.args
    b = e._as_float(e._emit(base, env))
    n = _integral(exponent)
    if n is not None:  # x**2 and x**2.0 alike: exact products, right for negative x
        result = e.constant(1.0) if n == 0 else _power_by_squaring(e, b, abs(n))
        return e.builder.fdiv(e.constant(1.0), result, flags=FLOAT_FLAGS) if n < 0 else result
    if exponent.is_Number and float(exponent) == 0.5:
        return e.intrinsic("sqrt", b)
    if exponent.is_Number and float(exponent) == -0.5:
        return e.builder.fdiv(e.constant(1.0), e.intrinsic("sqrt", b), flags=FLOAT_FLAGS)
    return _general_power(e, b, e._as_float(e._emit(exponent, env)))


def _general_power(e: ExpressionEmitter, b: ir.Value, y: ir.Value) -> ir.Value:
    """b**y as C's pow (which numpy and PyTorch follow): exp(y * log|b|), negated when b's sign
    bit is set and y is an odd whole number, NaN for a finite negative b and a fractional y, and
    1 when y == 0 or b == 1 (even if the other operand is NaN)."""
    builder = e.builder
    magnitude = emit_exp(builder, builder.fmul(y, emit_log(builder, e.intrinsic("fabs", b)),
                                               flags=FLOAT_FLAGS))
    whole = builder.fcmp_ordered("==", e.intrinsic("floor", y), y)
    half = builder.fmul(y, e.constant(0.5))
    odd = builder.and_(whole, builder.fcmp_ordered("!=", e.intrinsic("floor", half), half))
    sign_set = builder.fcmp_ordered("<", e.intrinsic("copysign", e.constant(1.0), b),
                                    e.constant(0.0))
    signed = builder.select(builder.and_(sign_set, odd), builder.fneg(magnitude), magnitude)
    finite_negative = builder.and_(builder.fcmp_ordered("<", b, e.constant(0.0)),
                                   builder.fcmp_ordered("!=", b, e.constant(float("-inf"))))
    invalid = builder.and_(finite_negative, builder.not_(whole))
    result = builder.select(invalid, e.constant(float("nan")), signed)
    one = builder.or_(builder.fcmp_ordered("==", y, e.constant(0.0)),
                      builder.fcmp_ordered("==", b, e.constant(1.0)))
    return builder.select(one, e.constant(1.0), result)


def _power_by_squaring(e: ExpressionEmitter, b: ir.Value, n: int) -> ir.Value:
    result = None
    square = b
    while n:
        if n & 1:
            result = square if result is None else e.builder.fmul(result, square, flags=FLOAT_FLAGS)
        n >>= 1
        if n:
            square = e.builder.fmul(square, square, flags=FLOAT_FLAGS)
    return result


def _exp(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    return emit_exp(e.builder, e.args(expr, env)[0])


def _log(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    return emit_log(e.builder, e.args(expr, env)[0])


def _log1p(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    # log1p(x) = log(u) * x / (u - 1) with u = 1 + x: exact to rounding for small x (Goldberg);
    # where u is 1 the answer is x, and where u is inf it is inf (the ratio would be inf/inf).
    (x,) = e.args(expr, env)
    b = e.builder
    u = b.fadd(e.constant(1.0), x)
    ratio = b.select(b.fcmp_ordered("==", u, e.constant(float("inf"))), e.constant(1.0),
                     b.fdiv(x, b.fsub(u, e.constant(1.0))))
    corrected = b.fmul(emit_log(b, u), ratio)
    tiny = b.fcmp_ordered("==", u, e.constant(1.0))
    return b.select(tiny, x, corrected)


def _tanh(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    return emit_tanh(e.builder, e.args(expr, env)[0])


def _erf(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    return emit_erf(e.builder, e.args(expr, env)[0])


def _cosh(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    (x,) = e.args(expr, env)
    b = e.builder
    up = emit_exp(b, e.intrinsic("fabs", x))
    return b.fmul(e.constant(0.5), b.fadd(up, b.fdiv(e.constant(1.0), up)))


def _sinh(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    # expm1-free form; below |x| = 2^-12 sinh(x) = x to rounding
    (x,) = e.args(expr, env)
    b = e.builder
    magnitude = e.intrinsic("fabs", x)
    up = emit_exp(b, magnitude)
    value = b.fmul(e.constant(0.5), b.fsub(up, b.fdiv(e.constant(1.0), up)))
    small = b.fcmp_ordered("<", magnitude, e.constant(2.0**-12))
    return e.intrinsic("copysign", b.select(small, magnitude, value), x)


def _abs(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    return e.intrinsic("fabs", e.args(expr, env)[0])


def _sign(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    (x,) = e.args(expr, env)
    b = e.builder
    positive = b.uitofp(b.fcmp_ordered(">", x, e.constant(0.0)), e.type)
    negative = b.uitofp(b.fcmp_ordered("<", x, e.constant(0.0)), e.type)
    return b.fsub(positive, negative)


def _extremum(larger: bool) -> Callable[..., ir.Value]:
    def rule(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
        values = e.args(expr, env)
        result = values[0]
        for v in values[1:]:
            # keep `result` where it wins or is NaN: a NaN on either side propagates, as in
            # PyTorch's maximum/minimum
            wins = e.builder.fcmp_ordered(">" if larger else "<", result, v)
            keep = e.builder.or_(wins, e.builder.fcmp_unordered("uno", result, result))
            result = e.builder.select(keep, result, v)
        return result

    return rule


def _heaviside(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    x = e._as_float(e._emit(expr.args[0], env))
    at_zero = e._as_float(e._emit(expr.args[1], env)) if len(expr.args) > 1 else e.constant(0.5)
    b = e.builder
    step = b.uitofp(b.fcmp_ordered(">", x, e.constant(0.0)), e.type)
    return b.select(b.fcmp_ordered("==", x, e.constant(0.0)), at_zero, step)


def _piecewise(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    # Branch-free: every piece is computed and selected, so the loop stays vectorisable. Where no
    # condition holds the value is NaN, sympy's meaning (a NaN input makes every comparison false).
    pieces = list(expr.args)
    if pieces[-1].cond is sympy.true:
        result = e._as_float(e._emit(pieces.pop().expr, env))
    else:
        result = e.constant(float("nan"))
    for value, condition in reversed(pieces):
        result = e.select(e._emit(condition, env), e._as_float(e._emit(value, env)), result)
    return result


def _if_then_else(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    """sympy's ITE(c, a, b) (simplification makes it of piecewise conditions): a select."""
    condition, then, otherwise = (e._emit(a, env) for a in expr.args)
    if then.type == I1 and otherwise.type == I1:
        return e.builder.select(e._as_bool(condition), then, otherwise)
    return e.select(condition, e._as_float(then), e._as_float(otherwise))


_COMPARISONS = {sympy.StrictGreaterThan: ">", sympy.GreaterThan: ">=", sympy.StrictLessThan: "<",
                sympy.LessThan: "<=", sympy.Equality: "==", sympy.Unequality: "!="}


def _relation(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    a, b = (e._as_float(e._emit(x, env)) for x in expr.args)
    op = _COMPARISONS[type(expr)]
    if op == "!=":
        return e.builder.fcmp_unordered(op, a, b)  # NaN != NaN is true
    return e.builder.fcmp_ordered(op, a, b)


def _logic(combine: str) -> Callable[..., ir.Value]:
    def rule(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
        values = [e._as_bool(e._emit(a, env)) for a in expr.args]
        result = values[0]
        for v in values[1:]:
            result = getattr(e.builder, combine)(result, v)
        return result

    return rule


def _not(e: ExpressionEmitter, expr: Any, env: dict[Any, ir.Value]) -> ir.Value:
    return e.builder.not_(e._as_bool(e._emit(expr.args[0], env)))


_RULES: list[tuple[type, Callable[..., ir.Value]]] = [
    (sympy.Add, _fold(lambda b: b.fadd)),
    (sympy.Mul, _mul),
    (sympy.Pow, _pow),
    (sympy.exp, _exp),
    (sympy.log, _log),
    (log1p, _log1p),
    (sympy.tanh, _tanh),
    (sympy.erf, _erf),
    (sympy.cosh, _cosh),
    (sympy.sinh, _sinh),
    (sympy.Abs, _abs),
    (sympy.sign, _sign),
    (sympy.Max, _extremum(larger=True)),
    (sympy.Min, _extremum(larger=False)),
    (sympy.Heaviside, _heaviside),
    (sympy.Piecewise, _piecewise),
    (sympy.ITE, _if_then_else),
    (sympy.core.relational.Relational, _relation),
    (sympy.And, _logic("and_")),
    (sympy.Or, _logic("or_")),
    (sympy.Xor, _logic("xor")),
    (sympy.Not, _not),
]


def lowerable(expr: Any) -> str | None:
    """None if every node of `expr` has a rule here, else the name of the first that has none."""
    for node in sympy.preorder_traversal(expr):
        if node.is_Symbol or node.is_Number or node in (sympy.true, sympy.false) \
                or isinstance(node, sympy.functions.elementary.piecewise.ExprCondPair):
            continue
        if _real_constant(node) is not None:  # a constant is emitted as its value
            continue
        if not any(isinstance(node, kind) for kind, _ in _RULES):
            return type(node).__name__
    return None
