"""Elementwise ops, each defined by one sympy scalar expression.

An op here is a function of scalar symbols returning a sympy expression, registered with
`@elementwise(name, backward_name)`. Everything else is derived from that expression, never written
by hand: the eager numpy kernel (sympy's lambdify, made once per op), the partial derivatives
(`sympy.diff`, simplified unless simplifying makes them overflow; the vector-Jacobian product for
input i is itself an elementwise op with body `grad * d(expr)/d(x_i)`, so double backward works by
construction), which inputs backward must save (the symbols the derivatives mention), and later the
compiler's fused native loops.

sympy is imported on first use of an op, not when `runtime` is imported.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import numpy as np

from runtime import _dtype
from runtime._imports import import_whole
from runtime.ops import _op
from runtime.ops._broadcast import broadcast_shapes
from runtime.ops._op import Op, Shape, VJPContext, apply, numel, register

_sympy_module = None


def sympy() -> Any:
    """The sympy module, imported on first need."""
    global _sympy_module
    if _sympy_module is None:
        _sympy_module = import_whole("sympy")  # a Ctrl-C here must not break the next call
    return _sympy_module


class Elementwise(Op):
    """An op applied to each element of its broadcast operands, given as a sympy expression.

    `result` says how the output dtype follows the inputs: "promote" (PyTorch's promotion),
    "float" (promotion, then integers become the default float), or "bool" (comparisons).
    `dtype_inputs` names the inputs that take part in promotion (all by default), and
    `no_edge_inputs` those that never get a gradient (a condition).
    `check_operands`, if given, raises PyTorch's refusal of operands beyond shapes and dtypes
    (a bool operand of `-`).
    `scalar_overloads` maps positions that PyTorch's signature takes as a Python Scalar to the
    node name of that overload: when exactly those operands are Python numbers, the node is
    named so and they get no edge (`x ** 2` is PowBackward0 with one edge, `x ** y` PowBackward1).
    """

    def __init__(self, name: str, backward_name: str, body: Callable[..., Any], *,
                 result: str = "promote", differentiable: bool = True,
                 dtype_inputs: Sequence[int] | None = None, symbols: Sequence[str] | None = None,
                 expr: Any = None, no_edge_inputs: Sequence[int] = (),
                 scalar_overloads: dict[tuple[int, ...], str] | None = None,
                 check_operands: Callable[[Sequence[Any]], None] | None = None) -> None:
        self.name = name
        self.backward_name = backward_name
        self._body = body
        self.arg_names = tuple(symbols or [p for p in inspect.signature(body).parameters
                                           if p != "sp"])
        self.result = result
        self.differentiable = differentiable
        self.dtype_inputs = tuple(range(len(self.arg_names)) if dtype_inputs is None
                                  else dtype_inputs)
        self.no_edge_inputs = tuple(no_edge_inputs)
        self.scalar_overloads = scalar_overloads or {}
        self.check_operands = check_operands
        if expr is not None:
            self.__dict__["expr"] = expr

    def _scalar_operands(self, inputs: Sequence[Any]) -> tuple[int, ...]:
        return tuple(i for i, t in enumerate(inputs) if t._wrapped_number)

    def node_name(self, inputs: Sequence[Any], **attrs: Any) -> str:
        return self.scalar_overloads.get(self._scalar_operands(inputs), self.backward_name)

    def edge_inputs(self, inputs: Sequence[Any], **attrs: Any) -> Sequence[int]:
        scalars = self._scalar_operands(inputs)
        dropped = set(self.no_edge_inputs) | (set(scalars) if scalars in self.scalar_overloads
                                              else set())
        return [i for i in range(len(inputs)) if i not in dropped]

    @cached_property
    def symbols(self) -> tuple[Any, ...]:
        sp = sympy()
        return tuple(sp.Symbol(n, real=True) for n in self.arg_names)

    @cached_property
    def expr(self) -> Any:
        """The scalar expression of the op in its input symbols."""
        return self._body(*self.symbols, sp=sympy())

    @cached_property
    def kernel(self) -> Callable[..., np.ndarray]:
        """The eager numpy kernel: lambdify of the expression, made once. Products are moved
        into Piecewise branches first (grad * where(c, 0, 1) becomes where(c, 0, grad)), so no
        branch is a constant array of the wrong dtype."""
        sp = sympy()
        return sp.lambdify(self.symbols, sp.piecewise_fold(self.expr),
                           modules=[{"where": _where, "tanh": _tanh, **_KERNEL_FUNCTIONS}, "numpy"],
                           printer=_kernel_printer())

    def infer(self, inputs: Sequence[Any], **attrs: Any) -> tuple[tuple[Any, ...], _dtype.dtype]:
        if len(inputs) != len(self.arg_names):
            raise TypeError(f"{self.name}() takes {len(self.arg_names)} tensors, got {len(inputs)}")
        if self.check_operands is not None:
            self.check_operands(inputs)
        shape = broadcast_shapes(*(t.shape for t in inputs))
        return shape, self.result_dtype([inputs[i] for i in self.dtype_inputs])

    def result_dtype(self, operands: Sequence[Any]) -> _dtype.dtype:
        if self.result == "bool":
            return _dtype.bool_
        first = operands[0].dtype
        if all(not t._wrapped_number and t.dtype == first for t in operands):  # the usual case
            return first if self.result == "promote" or first.is_floating_point else \
                _dtype.get_default_dtype()
        dimensioned = [t.dtype for t in operands if len(t.shape) and not t._wrapped_number]
        zero_dim = [t.dtype for t in operands if not len(t.shape) and not t._wrapped_number]
        numbers = [_number_of(t.dtype) for t in operands if t._wrapped_number]
        d = _dtype.result_dtype(dimensioned, zero_dim, numbers)
        if self.result == "float" and not d.is_floating_point:
            return _dtype.get_default_dtype()
        return d

    def compute(self, arrays: Sequence[np.ndarray], **attrs: Any) -> np.ndarray:
        try:
            out = np.asarray(self.kernel(*arrays))
        except ValueError as error:  # numpy's "Integers to negative integer powers ..."
            raise RuntimeError(str(error)) from None
        shape = out.shape
        if any(a.shape != shape and a.ndim for a in arrays):
            shape = np.broadcast_shapes(*(a.shape for a in arrays))
        if out.shape != shape:  # a constant body (a derivative like 2) does not broadcast itself
            out = np.broadcast_to(out, shape).copy()
        return out

    def flops(self, input_shapes: Sequence[Shape], output_shape: Shape, **attrs: Any) -> Any:
        """The operations of the formula (at least one) per output element."""
        return numel(output_shape) * max(1, sympy().count_ops(self.expr))

    # ----- derivatives -------------------------------------------------------------------------

    simplify_derivatives = True  # False for bodies whose simplification has no time bound

    def derivative(self, i: int) -> Any:
        """d(expr)/d(input i), almost everywhere, simplified by sympy (if simplify_derivatives)."""
        return self._derivatives[i]

    @cached_property
    def _derivatives(self) -> list[Any]:
        raw = [_almost_everywhere(sympy().diff(self.expr, s)) for s in self.symbols]
        if not self.simplify_derivatives:
            return raw
        return [_simplest_stable_form(d, self.symbols) for d in raw]

    @cached_property
    def _vjp_ops(self) -> list[Elementwise | None]:
        """For each input, the op `grad * d(expr)/d(x_i)`; None where that is just `grad`."""
        sp = sympy()
        grad_name = "grad"
        while grad_name in self.arg_names:  # the vjp of a vjp already has a `grad`
            grad_name = "d" + grad_name
        grad = sp.Symbol(grad_name, real=True)
        ops: list[Elementwise | None] = []
        for i in range(len(self.symbols)):
            body = grad * self.derivative(i)
            if body == grad:
                ops.append(None)
                continue
            used = [s.name for s in self.symbols if s in body.free_symbols]
            ops.append(Elementwise(
                f"{self.name}_vjp{i}", _double_backward_name(self.backward_name),
                lambda *a, **k: None, symbols=[grad_name, *used], expr=body, dtype_inputs=[0]))
        return ops

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> tuple[Sequence[int], bool]:
        names: set[str] = set()
        for i, needed in enumerate(needs_input_grad):
            op = self._vjp_ops[i] if needed else None
            if op is not None:
                names.update(op.arg_names[1:])
        return [i for i, n in enumerate(self.arg_names) if n in names], False

    def vjp(self, ctx: VJPContext, grad: Any) -> list[Any]:
        from runtime.ops.shape import sum_to

        grads: list[Any] = []
        by_name = dict(zip(self.arg_names, ctx.inputs))
        for i, needed in enumerate(ctx.needs_input_grad):
            if not needed:
                grads.append(None)
                continue
            op = self._vjp_ops[i]
            g = grad if op is None else apply(op, [grad, *(by_name[n] for n in op.arg_names[1:])])
            grads.append(sum_to(g, ctx.input_shapes[i]))
        return grads

    def __call__(self, *operands: Any) -> Any:
        return apply(self, wrap_operands(operands))


def _where(condition: Any, a: Any, b: Any) -> np.ndarray:
    """np.where(condition, a, b) of the kernels. numpy's where mispredicts a branch per element
    on a random mask (relu's): five times slower than the blend a*c + b*(1 - c), which is exact
    when both sides are finite floats; otherwise, np.where."""
    dtype = np.result_type(a, b)
    if dtype.kind == "f" and np.isfinite(a).all() and np.isfinite(b).all():
        return np.multiply(a, condition, dtype=dtype) + np.multiply(b, ~condition, dtype=dtype)
    return np.where(condition, a, b)


def _tanh(x: Any) -> np.ndarray:
    """tanh of the kernels: float32 is evaluated in float64 and rounded, so it is correctly
    rounded, as PyTorch's is. numpy's float32 tanh is up to 1.4 ulps off, and near saturation
    often one ulp below 1 (0.99999994 at x = 9.86, where tanh(x) rounds to 1.0); the derivative
    1 - tanh(x)**2 turns that ulp into a gradient 10 times the true one (1.2e-7 for 1.1e-8). It
    costs what PyTorch's tanh costs, ~1 ns an element, 6 times numpy's float32 tanh."""
    x = np.asarray(x)
    if x.dtype == np.float32:
        return np.tanh(x, dtype=np.float64).astype(np.float32)
    return np.tanh(x)


def _kernel_printer() -> Any:
    """sympy's numpy printer, with a Piecewise as nested `where`s rather than `select`, whose
    per-call list building makes relu and its derivative several times slower."""
    from sympy.printing.numpy import NumPyPrinter

    class WherePrinter(NumPyPrinter):
        def _print_Piecewise(self, expr: Any) -> str:
            printed = "nan"  # no condition holds
            for value, condition in reversed(expr.args):
                if condition == sympy().true:
                    printed = self._print(value)
                else:
                    printed = (f"where({self._print(condition)}, {self._print(value)}, "
                               f"{printed})")
            return printed

    return WherePrinter({"fully_qualified_modules": False, "inline": True,
                         "allow_unknown_functions": True})


# Where a derivative is evaluated to see whether simplifying it made it overflow.
_PROBES = (-1e4, -30.0, -1.0, -0.5, 0.0, 0.5, 1.0, 30.0, 1e4)


def _simplest_stable_form(derivative: Any, symbols: Sequence[Any]) -> Any:
    """sympy's simplification of a derivative, unless that, or its own derivatives, overflows
    where the derivative as differentiated does not.

    The derivative is taken almost everywhere, as PyTorch's: a kink (abs, maximum) differentiates
    to a step (sign, Heaviside) whose own derivative, a DiracDelta, is 0. Simplifying can undo a
    stable form: the derivative of softplus's branch log1p(exp(-x)), x > 0, is
    -exp(-x)/(1 + exp(-x)), which sympy rewrites into exp(x)/(exp(x) + 1), inf/inf at x = 1e4;
    sigmoid's exp(-x)/(1 + exp(-x))**2 becomes 1/(4*cosh(x/2)**2), finite, but its derivative
    is inf/inf. It can also repair one: pow's x**y*y/x is nan at x = 0 where x**(y - 1)*y is not.
    """
    sp = sympy()
    raw = _almost_everywhere(derivative)
    simplified = _almost_everywhere(sp.simplify(raw))
    stable = _finite_wherever(simplified, raw, symbols) and all(
        _finite_wherever(_almost_everywhere(sp.diff(simplified, s)),
                         _almost_everywhere(sp.diff(raw, s)), symbols) for s in symbols)
    return simplified if stable else raw


def _almost_everywhere(expr: Any) -> Any:
    """`expr` with every DiracDelta (the derivative of a step, at a kink) taken as 0."""
    sp = sympy()
    return expr.replace(sp.DiracDelta, lambda *args: sp.S.Zero)


def _finite_wherever(candidate: Any, reference: Any, symbols: Sequence[Any]) -> bool:
    """Whether `candidate` is finite at every probe point where `reference` is."""
    grids = np.meshgrid(*([np.array(_PROBES)] * len(symbols)), indexing="ij")
    with np.errstate(all="ignore"):  # numpy as a module: lambdify's "numpy" star-imports it all
        functions = [sympy().lambdify(symbols, e, modules=[_KERNEL_FUNCTIONS, np])
                     for e in (candidate, reference)]
        values = [np.broadcast_to(f(*grids), grids[0].shape) for f in functions]
    return bool(np.all(np.isfinite(values[0]) | ~np.isfinite(values[1])))


def _double_backward_name(backward_name: str) -> str:
    """The node name of a vjp op: PowBackward1 -> PowBackwardBackward0."""
    return backward_name.rstrip("0123456789") + "Backward0"


def _number_of(d: _dtype.dtype) -> object:
    return True if d == _dtype.bool_ else (1.0 if d.is_floating_point else 1)


def wrap_operands(operands: Sequence[Any]) -> list[Any]:
    """Operands as tensors: Python numbers become 0-d 'wrapped number' tensors of the right
    dtype."""
    from runtime._tensor import Tensor

    tensors = [x for x in operands if isinstance(x, Tensor)]
    if len(tensors) == len(operands):
        return list(operands)
    if not tensors:
        raise TypeError("expected at least one tensor operand")
    tensors_dtype = _dtype.result_dtype([t.dtype for t in tensors if t.ndim],
                                         [t.dtype for t in tensors if not t.ndim], [])
    operands = [_symbolic_size_as_number(x) for x in operands]
    numbers = [x for x in operands if not isinstance(x, Tensor)]
    for x in numbers:
        if not isinstance(x, (int, float, bool, np.number, np.bool_)) and not _is_size(x):
            raise TypeError(f"unsupported operand type {type(x).__name__}; expected a Tensor or a "
                            "Python number")
    wrapped = []
    for x in operands:
        if isinstance(x, Tensor):
            wrapped.append(x)
            continue
        if _is_size(x):  # a size that depends on the traced batch size: the tracer's value
            d = _dtype.lift(tensors_dtype, 1)
            handler = _op.symbolic_handler()
            assert handler is not None, "a symbolic size exists only while tracing"
            wrapped.append(handler.symbolic_size(x, d))
            continue
        wrapped.append(wrapped_number(x, _dtype.lift(tensors_dtype, x)))
    return wrapped


def wrapped_number(x: Any, d: _dtype.dtype | None = None) -> Any:
    """A Python number as a 0-d tensor that promotes like a number (`_wrapped_number`), of dtype
    `d` (a float never becomes an integer) or of the number's own dtype."""
    from runtime._tensor import Tensor

    if d is None or isinstance(x, (bool, np.bool_)) or isinstance(x, float) and \
            not d.is_floating_point:
        d = _dtype.scalar_dtype(x)  # a bool stays bool, so ops can refuse it like PyTorch
    t = Tensor._from_array(np.asarray(x).astype(d.numpy))  # wraps around, as uint8 * -2 does
    t._wrapped_number = True
    return t


def _is_size(x: Any) -> bool:
    """A symbolic size (a sympy expression of the batch size) met while tracing."""
    return _op.symbolic_handler() is not None and bool(getattr(x, "free_symbols", None))


def _symbolic_size_as_number(x: Any) -> Any:
    """A sympy number (a size that turned out constant) as a Python int or float."""
    if getattr(x, "is_Number", False):
        return int(x) if x.is_Integer else float(x)
    return x


def elementwise(name: str, backward_name: str, **options: Any) -> Callable[[Callable], Elementwise]:
    """Register a function of sympy symbols as an elementwise op (used as a decorator)."""

    def define(body: Callable[..., Any]) -> Elementwise:
        op = Elementwise(name, backward_name, body, **options)
        register(op)
        return op

    return define


# ----- arithmetic ------------------------------------------------------------------------------

@elementwise("add", "AddBackward0")
def add(x, y, sp):
    return x + y


_INVERT_MASK = ("If you are trying to invert a mask, use the `~` or `logical_not()` operator "
                "instead.")


def _refuse_bool_subtraction(inputs: Sequence[Any]) -> None:
    bools = sum(t.dtype == _dtype.bool_ for t in inputs)
    if bools == 2:
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                           "Use the `^` or `logical_xor()` operator instead.")
    if bools:
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. "
                           + _INVERT_MASK)


def _refuse_bool_negation(inputs: Sequence[Any]) -> None:
    if inputs[0].dtype == _dtype.bool_:
        raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. "
                           + _INVERT_MASK)


def _refuse_bool_tensor_powers(inputs: Sequence[Any]) -> None:
    base, exponent = inputs
    if base.dtype == exponent.dtype == _dtype.bool_ and not exponent._wrapped_number:
        raise NotImplementedError("\"pow\" not implemented for 'Bool'")


@elementwise("sub", "SubBackward0", scalar_overloads={(0,): "RsubBackward1"},
             check_operands=_refuse_bool_subtraction)
def sub(x, y, sp):
    return x - y


@elementwise("mul", "MulBackward0")
def mul(x, y, sp):
    return x * y


@elementwise("div", "DivBackward0", result="float")
def div(x, y, sp):
    return x / y


@elementwise("neg", "NegBackward0", check_operands=_refuse_bool_negation)
def neg(x, sp):
    return -x


@elementwise("pow", "PowBackward1", check_operands=_refuse_bool_tensor_powers,
             scalar_overloads={(1,): "PowBackward0", (0,): "PowBackward2"})
def pow(x, y, sp):  # noqa: A001 - the PyTorch name
    return x**y


@elementwise("abs", "AbsBackward0")
def abs(x, sp):  # noqa: A001
    return sp.Abs(x)


@elementwise("maximum", "MaximumBackward0")
def maximum(x, y, sp):
    return sp.Max(x, y)


@elementwise("minimum", "MinimumBackward0")
def minimum(x, y, sp):
    return sp.Min(x, y)


@elementwise("where", "WhereBackward0", dtype_inputs=(1, 2), no_edge_inputs=(0,))
def where(condition, x, y, sp):
    return sp.Piecewise((x, sp.Ne(condition, 0)), (y, True))


# ----- transcendental ----------------------------------------------------------------------------

@elementwise("exp", "ExpBackward0", result="float")
def exp(x, sp):
    return sp.exp(x)


@elementwise("log", "LogBackward0", result="float")
def log(x, sp):
    return sp.log(x)


@elementwise("log1p", "Log1PBackward0", result="float")
def log1p(x, sp):
    from sympy.codegen.cfunctions import log1p

    return log1p(x)


@elementwise("sqrt", "SqrtBackward0", result="float")
def sqrt(x, sp):
    return sp.sqrt(x)


@elementwise("rsqrt", "RsqrtBackward0", result="float")
def rsqrt(x, sp):
    return 1 / sp.sqrt(x)


@elementwise("reciprocal", "ReciprocalBackward0", result="float")
def reciprocal(x, sp):
    return 1 / x


# ----- activations -----------------------------------------------------------------------------

@elementwise("relu", "ReluBackward0")
def relu(x, sp):
    # Piecewise, not Max(x, 0): its derivative at 0 is 0, as PyTorch's; NaN stays NaN.
    return sp.Piecewise((0, x <= 0), (x, True))


@elementwise("leaky_relu", "LeakyReluBackward0", dtype_inputs=(0,),
             scalar_overloads={(1,): "LeakyReluBackward0"})
def leaky_relu(x, negative_slope, sp):
    return sp.Piecewise((negative_slope * x, x <= 0), (x, True))


@elementwise("sigmoid", "SigmoidBackward0", result="float")
def sigmoid(x, sp):
    # Two branches so that neither exp overflows; their derivatives are stable too.
    return sp.Piecewise((1 / (1 + sp.exp(-x)), x >= 0), (sp.exp(x) / (1 + sp.exp(x)), True))


@elementwise("tanh", "TanhBackward0", result="float")
def tanh(x, sp):
    return sp.tanh(x)


@elementwise("softplus", "SoftplusBackward0", result="float")
def softplus(x, sp):
    from sympy.codegen.cfunctions import log1p

    return sp.Piecewise((x + log1p(sp.exp(-x)), x > 0), (log1p(sp.exp(x)), True))


@elementwise("silu", "SiluBackward0", result="float")
def silu(x, sp):
    return sp.Piecewise((x / (1 + sp.exp(-x)), x >= 0), (x * sp.exp(x) / (1 + sp.exp(x)), True))


@elementwise("gelu", "GeluBackward0", result="float")
def gelu(x, sp):
    return x / 2 * (1 + sp.erf(x / sp.sqrt(2)))


@elementwise("gelu_tanh", "GeluBackward0", result="float")
def gelu_tanh(x, sp):  # GELU(approximate='tanh')
    return x / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (x + sp.Rational(44715, 10**6) * x**3)))


@elementwise("elu", "EluBackward0", dtype_inputs=(0,), scalar_overloads={(1,): "EluBackward0"})
def elu(x, alpha, sp):
    from sympy.codegen.cfunctions import expm1

    return sp.Piecewise((alpha * expm1(x), x <= 0), (x, True))


@elementwise("clamp", "ClampBackward0", scalar_overloads={(1, 2): "ClampBackward1"})
def clamp(x, low, high, sp):
    # Gradient passes where low <= x <= high, boundaries included, as PyTorch's.
    return sp.Piecewise((low, x < low), (high, x > high), (x, True))


@elementwise("clamp_min", "ClampBackward0", scalar_overloads={(1,): "ClampBackward1"})
def clamp_min(x, low, sp):
    return sp.Piecewise((low, x < low), (x, True))


@elementwise("clamp_max", "ClampBackward0", scalar_overloads={(1,): "ClampBackward1"})
def clamp_max(x, high, sp):
    return sp.Piecewise((high, x > high), (x, True))


@elementwise("binary_cross_entropy_with_logits", "BinaryCrossEntropyWithLogitsBackward0",
             result="float", dtype_inputs=(0, 1))
def binary_cross_entropy_with_logits(z, y, pos_weight, sp):
    """-(pos_weight * y * log(sigmoid(z)) + (1 - y) * log(1 - sigmoid(z))), in a form that never
    overflows: log(1 + exp(-|z|)) plus a linear part."""
    from sympy.codegen.cfunctions import log1p

    softplus_neg_z = sp.Piecewise((log1p(sp.exp(-z)), z > 0), (-z + log1p(sp.exp(z)), True))
    return (1 - y) * z + (1 + (pos_weight - 1) * y) * softplus_neg_z


# ----- comparisons (not differentiable) ----------------------------------------------------------

@elementwise("eq", "", result="bool", differentiable=False)
def eq(x, y, sp):
    return sp.Eq(x, y, evaluate=False)


@elementwise("ne", "", result="bool", differentiable=False)
def ne(x, y, sp):
    return sp.Ne(x, y, evaluate=False)


@elementwise("lt", "", result="bool", differentiable=False)
def lt(x, y, sp):
    return sp.StrictLessThan(x, y, evaluate=False)


@elementwise("le", "", result="bool", differentiable=False)
def le(x, y, sp):
    return sp.LessThan(x, y, evaluate=False)


@elementwise("gt", "", result="bool", differentiable=False)
def gt(x, y, sp):
    return sp.StrictGreaterThan(x, y, evaluate=False)


@elementwise("ge", "", result="bool", differentiable=False)
def ge(x, y, sp):
    return sp.GreaterThan(x, y, evaluate=False)


@elementwise("logical_not", "", result="bool", differentiable=False)
def logical_not(x, sp):
    return sp.Eq(x, 0, evaluate=False)


@elementwise("logical_and", "", result="bool", differentiable=False)
def logical_and(x, y, sp):
    return sp.And(sp.Ne(x, 0), sp.Ne(y, 0))


@elementwise("logical_or", "", result="bool", differentiable=False)
def logical_or(x, y, sp):
    return sp.Or(sp.Ne(x, 0), sp.Ne(y, 0))


@elementwise("logical_xor", "", result="bool", differentiable=False)
def logical_xor(x, y, sp):
    return sp.Xor(sp.Ne(x, 0), sp.Ne(y, 0))


# ----- math functions: trigonometric, hyperbolic, error, exponential, rounding ------------------
# Each is one sympy formula, as the ops above; a rounding function is a step, whose derivative is
# 0 almost everywhere (`_step`), as PyTorch's.

def _step(name: str) -> Any:
    """A sympy function `name` whose derivative is 0 (floor, ceil, trunc, rint): its kernel is
    numpy's function of that name (see `_KERNEL_FUNCTIONS`)."""
    if name not in _steps:
        sp = sympy()
        _steps[name] = type(name, (sp.Function,), {"fdiff": lambda self, argindex=1: sp.S.Zero})
    return _steps[name]


_steps: dict[str, Any] = {}


def _erf(x: Any) -> np.ndarray:
    return _special("erf", x)


def _erfc(x: Any) -> np.ndarray:
    return _special("erfc", x)


def _special(name: str, x: Any) -> np.ndarray:
    """erf / erfc of the kernels: scipy's when installed, otherwise Python's math module per
    element (correctly rounded in float64, evaluated in float64 for float32)."""
    x = np.asarray(x)
    try:
        from scipy import special

        return getattr(special, name)(x)
    except ImportError:
        import math

        values = np.frompyfunc(getattr(math, name), 1, 1)(x.astype(np.float64))
        return np.asarray(values, dtype=np.float64).astype(x.dtype if x.dtype.kind == "f"
                                                           else np.float64)


# Functions the kernels call by name that numpy spells differently or lacks.
_KERNEL_FUNCTIONS = {"erf": _erf, "erfc": _erfc, "ceil": np.ceil, "floor": np.floor,
                     "trunc": np.trunc, "rint": np.rint}


@elementwise("sin", "SinBackward0", result="float")
def sin(x, sp):
    return sp.sin(x)


@elementwise("cos", "CosBackward0", result="float")
def cos(x, sp):
    return sp.cos(x)


@elementwise("tan", "TanBackward0", result="float")
def tan(x, sp):
    return sp.tan(x)


@elementwise("asin", "AsinBackward0", result="float")
def asin(x, sp):
    return sp.asin(x)


@elementwise("acos", "AcosBackward0", result="float")
def acos(x, sp):
    return sp.acos(x)


@elementwise("atan", "AtanBackward0", result="float")
def atan(x, sp):
    return sp.atan(x)


@elementwise("atan2", "Atan2Backward0", result="float")
def atan2(y, x, sp):
    return sp.atan2(y, x)


@elementwise("sinh", "SinhBackward0", result="float")
def sinh(x, sp):
    return sp.sinh(x)


@elementwise("cosh", "CoshBackward0", result="float")
def cosh(x, sp):
    return sp.cosh(x)


@elementwise("asinh", "AsinhBackward0", result="float")
def asinh(x, sp):
    return sp.asinh(x)


@elementwise("acosh", "AcoshBackward0", result="float")
def acosh(x, sp):
    return sp.acosh(x)


@elementwise("atanh", "AtanhBackward0", result="float")
def atanh(x, sp):
    return sp.atanh(x)


@elementwise("erf", "ErfBackward0", result="float")
def erf(x, sp):
    return sp.erf(x)


@elementwise("erfc", "ErfcBackward0", result="float")
def erfc(x, sp):
    return sp.erfc(x)


@elementwise("exp2", "Exp2Backward0", result="float")
def exp2(x, sp):
    from sympy.codegen.cfunctions import exp2

    return exp2(x)


@elementwise("expm1", "Expm1Backward0", result="float")
def expm1(x, sp):
    from sympy.codegen.cfunctions import expm1

    return expm1(x)


@elementwise("log2", "Log2Backward0", result="float")
def log2(x, sp):
    from sympy.codegen.cfunctions import log2

    return log2(x)


@elementwise("log10", "Log10Backward0", result="float")
def log10(x, sp):
    from sympy.codegen.cfunctions import log10

    return log10(x)


@elementwise("floor", "FloorBackward0")
def floor(x, sp):
    return _step("floor")(x)


@elementwise("ceil", "CeilBackward0")
def ceil(x, sp):
    return _step("ceil")(x)


@elementwise("trunc", "TruncBackward0")
def trunc(x, sp):
    return _step("trunc")(x)


@elementwise("round", "RoundBackward0")
def round(x, sp):  # noqa: A001 - halves to even, as PyTorch's
    return _step("rint")(x)


def _refuse_integer_frac(inputs: Sequence[Any]) -> None:
    if not inputs[0].dtype.is_floating_point:
        raise NotImplementedError(f'"frac_cpu" not implemented for '
                                  f"'{inputs[0].dtype.scalar_name}'")


@elementwise("frac", "FracBackward0", check_operands=_refuse_integer_frac)
def frac(x, sp):
    return x - _step("trunc")(x)


@elementwise("sign", "SignBackward0")
def sign(x, sp):
    return sp.Piecewise((1, x > 0), (-1, x < 0), (0, True))  # sign(NaN) is 0, as PyTorch's


@elementwise("lerp", "LerpBackward1", result="float", scalar_overloads={(2,): "LerpBackward0"})
def lerp(start, end, weight, sp):
    return start + weight * (end - start)


@elementwise("masked_fill", "MaskedFillBackward1", dtype_inputs=(0,), no_edge_inputs=(1,),
             scalar_overloads={(2,): "MaskedFillBackward0"})
def masked_fill(x, mask, value, sp):
    return sp.Piecewise((value, sp.Ne(mask, 0)), (x, True))
