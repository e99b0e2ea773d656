"""The expression emitter on sympy forms that elementwise bodies can take: constants such as E and
pi, and a Piecewise whose last condition is not True."""

import ctypes
import math

import numpy as np
import pytest
import sympy
from llvmlite import ir

from compiler.lowering.expressions import ExpressionEmitter, lowerable
from compiler.lowering.target import jit_compile

x = sympy.Symbol("x", real=True)


def native(expr, name: str):
    """`expr` of x compiled as a native `double f(double x)`."""
    double = ir.DoubleType()
    module = ir.Module(name=name)
    function = ir.Function(module, ir.FunctionType(double, [double]), "f")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    builder.ret(ExpressionEmitter(builder, double).emit_float(expr, {x: function.args[0]}))
    library = jit_compile(module, ["f"])
    f = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double)(library["f"])
    f.library = library  # keep the code alive as long as `f`
    return f


def test_constants_lower_as_their_values() -> None:
    expr = sympy.E * x + sympy.pi - sympy.exp(2)
    assert lowerable(expr) is None
    f = native(expr, "constants")
    assert f(1.0) == pytest.approx(math.e + math.pi - math.exp(2), rel=1e-15)


def test_a_piecewise_without_a_default_branch_is_nan_where_no_condition_holds() -> None:
    # what sympy.simplify made of relu(-1 - relu(x)): 0 wherever x is a number
    always_zero = sympy.Piecewise((0, (x >= -1) | (x <= 0)))
    positive_only = sympy.Piecewise((2 * x, x > 0))
    assert lowerable(always_zero) is None
    zero, doubled = native(always_zero, "always_zero"), native(positive_only, "positive_only")
    for value in (-1e4, -1.0, 0.0, 0.5, 3.0, math.inf):
        assert zero(value) == 0.0
    assert doubled(3.0) == 6.0
    assert math.isnan(doubled(-1.0))  # sympy's value: positive_only.subs(x, -1) is nan
    assert sympy.Piecewise((2 * x, x > 0)).subs(x, -1) is sympy.nan
    assert np.isnan(zero(math.nan))  # a NaN input fails every comparison
