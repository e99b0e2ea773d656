"""Elementwise ops (runtime/ops/elementwise.py) through their public spellings, against PyTorch:
values and dtypes in float32, float64 and integers, broadcasting with tensors and Python numbers,
0-d and empty tensors, gradients, and the grad_fn each records."""

import numpy as np
import pytest

import runtime

torch = pytest.importorskip("torch")

VALUES = [-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0]


def both(data, dtype="float32", requires_grad=False):
    """The same tensor in runtime and in torch."""
    ours = runtime.tensor(data, dtype=getattr(runtime, dtype), requires_grad=requires_grad)
    theirs = torch.tensor(data, dtype=getattr(torch, dtype), requires_grad=requires_grad)
    return ours, theirs


def assert_matches(ours, theirs):
    """Same dtype, shape and values (NaN where torch has NaN). Values agree to a few units in
    the last place: float64 results below 1e-15 count as 0 (where torch's 1 - sigmoid(x)**2
    rounds to 0, the sympy derivative gives 1e-17)."""
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), (ours.dtype, theirs.dtype)
    assert tuple(ours.shape) == tuple(theirs.shape)
    tolerance = {"float64": (1e-13, 1e-15), "float32": (2e-6, 1e-7), "float16": (1e-3, 1e-4)}
    rtol, atol = tolerance.get(ours.dtype.name, (0, 0))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), equal_nan=True,
                               rtol=rtol, atol=atol)


def lib(t):
    """The library a tensor belongs to, to call its functions (runtime.where or torch.where)."""
    return runtime if isinstance(t, runtime.Tensor) else torch


# ----- unary functions ---------------------------------------------------------------------------

UNARY = ["abs", "neg", "exp", "log", "log1p", "sqrt", "rsqrt", "reciprocal", "relu", "sigmoid",
         "tanh", "square", "logical_not", "isnan",
         "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
         "erf", "erfc", "exp2", "expm1", "log2", "log10", "floor", "ceil", "round", "trunc",
         "frac", "sign", "isinf", "isfinite"]


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unary_function_matches_torch_on_floats(name, dtype):
    ours, theirs = both(VALUES + [float("inf"), float("nan")], dtype)
    assert_matches(getattr(runtime, name)(ours), getattr(torch, name)(theirs))
    assert_matches(getattr(ours, name)(), getattr(theirs, name)())


@pytest.mark.parametrize("name", UNARY)
def test_unary_function_matches_torch_on_integers(name):
    ours, theirs = both([-3, 0, 2, 5], "int64")
    try:
        expected = getattr(torch, name)(theirs)
    except NotImplementedError as refusal:  # frac of integers
        with pytest.raises(NotImplementedError, match=str(refusal)):
            getattr(runtime, name)(ours)
        return
    assert_matches(getattr(runtime, name)(ours), expected)


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("data", [2.5, [], [[]]], ids=["0-d", "empty", "empty-2d"])
def test_unary_function_matches_torch_on_0d_and_empty(name, data):
    ours, theirs = both(data)
    assert_matches(getattr(runtime, name)(ours), getattr(torch, name)(theirs))


def test_bitwise_not_of_bool_and_integer_tensors():
    for data, dtype in [([True, False], "bool"), ([0, 5, -3], "int64"), ([1, 2], "int32")]:
        ours, theirs = both(data, dtype)
        assert_matches(~ours, ~theirs)


# ----- binary functions --------------------------------------------------------------------------

ARITHMETIC = ["add", "sub", "mul", "div", "maximum", "minimum"]
COMPARISONS = ["eq", "ne", "lt", "le", "gt", "ge"]
OPERAND_PAIRS = [
    ((2, 3), "float32", (3,), "float32"),
    ((2, 1), "float64", (1, 3), "float64"),
    ((2, 3), "float32", (2, 3), "float64"),
    ((3,), "int64", (2, 3), "float32"),
    ((2, 3), "int32", (3,), "int64"),
    ((3,), "uint8", (3,), "int8"),
    ((), "float64", (2, 3), "float32"),
    ((), "int64", (3,), "int32"),
    ((0, 3), "float32", (3,), "float32"),
]


def operands(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 6, shape) if "int" in dtype else rng.uniform(0.5, 3.0, shape)
    return both(data, dtype)


@pytest.mark.parametrize("name", ARITHMETIC + COMPARISONS + ["pow"])
@pytest.mark.parametrize("shape_a, dtype_a, shape_b, dtype_b", OPERAND_PAIRS)
def test_binary_function_broadcasts_and_promotes_like_torch(name, shape_a, dtype_a, shape_b,
                                                            dtype_b):
    a, ta = operands(shape_a, dtype_a, 0)
    b, tb = operands(shape_b, dtype_b, 1)
    assert_matches(getattr(runtime, name)(a, b), getattr(torch, name)(ta, tb))


NUMBERS = [2, -3, 2.5, 0.1, True]


def assert_same_outcome(compute):
    """`compute(library)` gives the same result in runtime as in torch, or the same error."""
    try:
        expected = compute(torch)
    except RuntimeError as error:
        with pytest.raises(type(error)) as ours:
            compute(runtime)
        assert str(ours.value) == str(error)
        return
    assert_matches(compute(runtime), expected)


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "==", "<", ">="])
@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "bool"])
def test_operator_with_a_python_number_on_either_side_matches_torch(op, number, dtype):
    data = [True, False, True] if dtype == "bool" else [1, 2, 3]
    forward = eval(f"lambda x, n: x {op} n")
    reflected = eval(f"lambda x, n: n {op} x")
    assert_same_outcome(lambda lib: forward(lib.tensor(data, dtype=getattr(lib, dtype)), number))
    assert_same_outcome(lambda lib: reflected(lib.tensor(data, dtype=getattr(lib, dtype)), number))


def test_negating_a_mask_is_refused_like_torch():
    assert_same_outcome(lambda lib: -lib.tensor([True, False]))


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor"])
def test_logical_functions_and_mask_operators_match_torch(name):
    a, ta = both([0.0, 1.0, 2.0, 0.0])
    b, tb = both([0, 0, 3, 1], "int64")
    assert_matches(getattr(runtime, name)(a, b), getattr(torch, name)(ta, tb))
    ma, tma = a > 0.5, ta > 0.5
    mb, tmb = b > 0, tb > 0
    assert_matches(ma & mb, tma & tmb)
    assert_matches(ma | mb, tma | tmb)
    assert_matches(ma ^ mb, tma ^ tmb)


def test_integer_division_and_powers_follow_torch_dtypes():
    ours, theirs = both([1, 2, 3, 4], "int64")
    assert_matches(ours / 2, theirs / 2)
    assert_matches(runtime.arange(5) / 2, torch.arange(5) / 2)
    assert_matches(ours * 2.5, theirs * 2.5)
    assert_matches(ours ** 2, theirs ** 2)
    assert_matches(ours ** 0.5, theirs ** 0.5)
    assert_matches(2 ** ours, 2 ** theirs)
    with pytest.raises(RuntimeError, match="Integers to negative integer powers"):
        ours ** -1
    with pytest.raises(RuntimeError):
        theirs ** -1


def test_add_and_sub_with_alpha():
    a, ta = both([1.0, 2.0])
    b, tb = both([10.0, 20.0])
    assert_matches(runtime.add(a, b, alpha=3), torch.add(ta, tb, alpha=3))
    assert_matches(runtime.sub(a, b, alpha=0.5), torch.sub(ta, tb, alpha=0.5))
    assert_matches(a.add(b, alpha=2), ta.add(tb, alpha=2))


def test_broadcasting_error_names_both_sizes():
    with pytest.raises(RuntimeError) as ours:
        runtime.ones(2, 3) + runtime.ones(4)
    with pytest.raises(RuntimeError) as theirs:
        torch.ones(2, 3) + torch.ones(4)
    assert str(ours.value) == str(theirs.value)


# ----- where and clamp ---------------------------------------------------------------------------

def test_where_matches_torch_with_tensors_and_numbers():
    x, tx = both([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]], "float64")
    y, ty = both([10, 20, 30], "int64")
    assert_matches(runtime.where(x > 0, x, y), torch.where(tx > 0, tx, ty))
    assert_matches(runtime.where(x > 0, x, 0.0), torch.where(tx > 0, tx, 0.0))
    assert_matches(runtime.where(x > 0, 1, 0.5), torch.where(tx > 0, 1, 0.5))
    assert_matches(runtime.where(x > 0, 1, 0), torch.where(tx > 0, 1, 0))


@pytest.mark.parametrize("low, high", [(-1.0, 1.0), (-1, None), (None, 0.5), (0, 2)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_clamp_with_numbers_matches_torch(low, high, dtype):
    ours, theirs = both([-3, -1, 0, 1, 2, 3], dtype)
    assert_matches(runtime.clamp(ours, low, high), torch.clamp(theirs, low, high))
    assert_matches(ours.clamp(min=low, max=high), theirs.clamp(min=low, max=high))


def test_clamp_of_integers_with_float_bounds_promotes_like_torch():
    ours, theirs = both(list(range(5)), "int64")
    assert_matches(runtime.clamp(ours, 0.5, 2.5), torch.clamp(theirs, 0.5, 2.5))


def test_clamp_with_tensor_bounds_matches_torch():
    x, tx = both([-3.0, 0.0, 3.0], "float64")
    low, tlow = both([-1.0, 0.5, 1.0], "float64")
    high, thigh = both([2.0, 2.0, 2.0], "float64")
    assert_matches(runtime.clamp(x, low, high), torch.clamp(tx, tlow, thigh))


def test_clamp_needs_a_bound():
    with pytest.raises(RuntimeError, match="At least one of 'min' or 'max' must not be None"):
        runtime.clamp(runtime.ones(2))


# ----- gradients ---------------------------------------------------------------------------------

GRADIENT_CASES = {
    "x + y": lambda x, y: x + y,
    "x - y": lambda x, y: x - y,
    "x * y": lambda x, y: x * y,
    "x / y": lambda x, y: x / y,
    "x ** y": lambda x, y: x.abs() ** y,
    "x ** 3": lambda x, y: x ** 3,
    "2 ** x": lambda x, y: 2 ** x,
    "1 - x": lambda x, y: 1 - x,
    "2 / x": lambda x, y: 2 / x,
    "maximum": lambda x, y: x.maximum(y),
    "where": lambda x, y: lib(x).where(x > 0, x, y),
    "exp log sqrt": lambda x, y: x.exp() + y.abs().log() + y.abs().sqrt(),
    "sigmoid tanh relu": lambda x, y: x.sigmoid() * y.tanh() + x.relu(),
    "abs neg reciprocal": lambda x, y: (-x).abs() * y.reciprocal(),
    "clamp": lambda x, y: x.clamp(-0.5, 0.5) + y.clamp(min=0.0),
}


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_gradients_and_second_derivatives_match_torch(name):
    fn = GRADIENT_CASES[name]
    rng = np.random.default_rng(7)
    xd, yd = rng.standard_normal((2, 3)), rng.standard_normal(3) + 0.1
    x, tx = both(xd, "float64", requires_grad=True)
    y, ty = both(yd, "float64", requires_grad=True)
    out, tout = fn(x, y), fn(tx, ty)
    assert_matches(out, tout)
    gx, gy = runtime.autograd.grad(out.sum(), [x, y], create_graph=True, allow_unused=True)
    tgx, tgy = torch.autograd.grad(tout.sum(), [tx, ty], create_graph=True, allow_unused=True)
    for g, tg, leaf, tleaf in [(gx, tgx, x, tx), (gy, tgy, y, ty)]:
        assert (g is None) == (tg is None)
        if g is None:
            continue
        assert_matches(g, tg)
        if tg.requires_grad:  # the second derivative, summed
            (gg,) = runtime.autograd.grad(g.sum(), [leaf], allow_unused=True)
            (tgg,) = torch.autograd.grad(tg.sum(), [tleaf], allow_unused=True)
            assert (gg is None) == (tgg is None) or tgg is not None and not tgg.any()
            if gg is not None and tgg is not None:
                assert_matches(gg, tgg)


def test_gradient_of_float32_with_float64_operand_keeps_each_leaf_dtype():
    x, tx = both([1.0, 2.0], "float32", requires_grad=True)
    w, tw = both([3.0, 4.0], "float64", requires_grad=True)
    (x * w).sum().backward()
    (tx * tw).sum().backward()
    assert_matches(x.grad, tx.grad)
    assert_matches(w.grad, tw.grad)


def test_relu_gradient_is_zero_at_zero():
    x, tx = both([-1.0, 0.0, 1.0], "float64", requires_grad=True)
    x.relu().sum().backward()
    tx.relu().sum().backward()
    assert_matches(x.grad, tx.grad)
    assert x.grad.tolist() == [0.0, 0.0, 1.0]


def test_abs_gradient_is_zero_at_zero():
    x, tx = both([-1.0, 0.0, 1.0], "float64", requires_grad=True)
    x.abs().sum().backward()
    tx.abs().sum().backward()
    assert_matches(x.grad, tx.grad)


@pytest.mark.parametrize("bounds", [(-1.0, 1.0), (-1.0, None), (None, 1.0)])
def test_clamp_passes_the_gradient_at_its_boundaries_like_torch(bounds):
    x, tx = both([-2.0, -1.0, 0.0, 1.0, 2.0], "float64", requires_grad=True)
    x.clamp(*bounds).sum().backward()
    tx.clamp(*bounds).sum().backward()
    assert_matches(x.grad, tx.grad)


def test_clamp_with_tensor_bounds_sends_gradients_to_the_bounds_like_torch():
    x, tx = both([-2.0, 0.0, 2.0], "float64", requires_grad=True)
    low, tlow = both([-1.0, -1.0, -1.0], "float64", requires_grad=True)
    high, thigh = both([1.0, 1.0, 1.0], "float64", requires_grad=True)
    runtime.clamp(x, low, high).sum().backward()
    torch.clamp(tx, tlow, thigh).sum().backward()
    for ours, theirs in [(x, tx), (low, tlow), (high, thigh)]:
        assert_matches(ours.grad, theirs.grad)


def test_maximum_and_minimum_share_the_gradient_at_ties_like_torch():
    x, tx = both([1.0, 2.0, 3.0], "float64", requires_grad=True)
    y, ty = both([1.0, 0.0, 3.0], "float64", requires_grad=True)
    (runtime.maximum(x, y) + runtime.minimum(x, y) * 3).sum().backward()
    (torch.maximum(tx, ty) + torch.minimum(tx, ty) * 3).sum().backward()
    assert_matches(x.grad, tx.grad)
    assert_matches(y.grad, ty.grad)


# ----- numerical stability -----------------------------------------------------------------------

LARGE = [-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4]


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "exp"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_activations_at_large_inputs_match_torch(name, dtype):
    x, tx = both(LARGE, dtype, requires_grad=True)
    out, tout = getattr(x, name)(), getattr(tx, name)()
    assert_matches(out, tout)
    out.sum().backward()
    tout.sum().backward()
    assert_matches(x.grad, tx.grad)


def test_float32_tanh_is_correctly_rounded_and_its_gradient_as_accurate_as_torchs():
    # numpy's float32 tanh gave 0.99999994 at x = 9.86 (tanh rounds to 1.0), and the gradient
    # 1 - tanh(x)**2 was then 1.2e-7 for a true 1.1e-8: 10 times PyTorch's error (fuzz regression
    # float32-double-backward-through-two-grams)
    grid = np.linspace(-12.0, 12.0, 200_001, dtype=np.float32)
    x = runtime.tensor(grid, requires_grad=True)
    out = x.tanh()
    exact = np.tanh(grid.astype(np.float64))
    np.testing.assert_array_equal(out.detach().numpy(), exact.astype(np.float32))
    out.sum().backward()
    tx = torch.tensor(grid, requires_grad=True)
    tx.tanh().sum().backward()
    true_gradient = 1 - exact**2
    our_error = np.abs(x.grad.numpy() - true_gradient).max()
    assert our_error <= np.abs(tx.grad.numpy() - true_gradient).max() * 1.5, our_error


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_cross_entropy_with_logits_at_large_logits_matches_torch(dtype):
    from runtime.ops.elementwise import binary_cross_entropy_with_logits

    z, tz = both(LARGE, dtype, requires_grad=True)
    y, ty = both([0.0, 1.0, 0.3, 1.0, 0.0, 0.5, 1.0], dtype)
    loss = binary_cross_entropy_with_logits(z, y, 1.0)
    tloss = torch.nn.functional.binary_cross_entropy_with_logits(tz, ty, reduction="none")
    assert_matches(loss, tloss)
    loss.sum().backward()
    tloss.sum().backward()
    assert_matches(z.grad, tz.grad)
    weighted = binary_cross_entropy_with_logits(z.detach(), y, 3.0)
    tweighted = torch.nn.functional.binary_cross_entropy_with_logits(
        tz.detach(), ty, pos_weight=torch.tensor(3.0, dtype=tz.dtype), reduction="none")
    assert_matches(weighted, tweighted)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softplus_at_large_inputs_matches_torch(dtype):
    from runtime.ops.elementwise import softplus

    x, tx = both(LARGE, dtype, requires_grad=True)
    out, tout = softplus(x), torch.nn.functional.softplus(tx)
    assert_matches(out, tout)
    out.sum().backward()
    tout.sum().backward()
    assert_matches(x.grad, tx.grad)


# ----- recorded graph ----------------------------------------------------------------------------

GRAPHS = {
    "x + y": lambda x, y: x + y,
    "x + 1": lambda x, y: x + 1,
    "1 + x": lambda x, y: 1 + x,
    "x - 1": lambda x, y: x - 1,
    "1 - x": lambda x, y: 1 - x,
    "x * 2": lambda x, y: x * 2,
    "2 * x": lambda x, y: 2 * x,
    "x / y": lambda x, y: x / y,
    "2 / x": lambda x, y: 2 / x,
    "x ** 2": lambda x, y: x ** 2,
    "x ** y": lambda x, y: x ** y,
    "2 ** x": lambda x, y: 2 ** x,
    "-x": lambda x, y: -x,
    "exp": lambda x, y: x.exp(),
    "log": lambda x, y: x.log(),
    "sqrt": lambda x, y: x.sqrt(),
    "relu": lambda x, y: x.relu(),
    "sigmoid": lambda x, y: x.sigmoid(),
    "tanh": lambda x, y: x.tanh(),
    "abs": lambda x, y: x.abs(),
    "clamp": lambda x, y: x.clamp(0.0, 1.0),
    "clamp(min)": lambda x, y: x.clamp(min=0.0),
    "maximum": lambda x, y: x.maximum(y),
    "where": lambda x, y: lib(x).where(x > 0, x, y),
    "where(x, 0.)": lambda x, y: lib(x).where(x > 0, x, 0.0),
    "x.square()": lambda x, y: x.square(),
    "reciprocal": lambda x, y: x.reciprocal(),
}


@pytest.mark.parametrize("name", GRAPHS)
def test_grad_fn_name_and_next_functions_match_torch(name):
    fn = GRAPHS[name]
    x, tx = both([1.0, 2.0], requires_grad=True)
    y, ty = both([3.0, 0.5], requires_grad=True)
    out, tout = fn(x, y), fn(tx, ty)
    assert out.grad_fn.name() == type(tout.grad_fn).__name__
    ours = [None if n is None else n.name() for n, _ in out.grad_fn.next_functions]
    theirs = [None if n is None else type(n).__name__ for n, _ in tout.grad_fn.next_functions]
    assert ours == theirs
    assert repr(out).endswith(f"grad_fn=<{out.grad_fn.name()}>)")


# ----- math functions: gradients, node names, in-place and out= forms -----------------------------

MATH_DOMAINS = {"asin": [-0.9, 0.2, 0.7], "acos": [-0.9, 0.2, 0.7], "atanh": [-0.9, 0.2, 0.7],
                "acosh": [1.5, 2.0, 4.0], "log2": [0.5, 2.0, 5.0], "log10": [0.5, 2.0, 5.0]}
MATH = ["sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
        "erf", "erfc", "exp2", "expm1", "log2", "log10", "floor", "ceil", "round", "trunc",
        "frac", "sign"]


@pytest.mark.parametrize("name", MATH)
def test_math_function_gradient_and_node_match_torch(name):
    data = MATH_DOMAINS.get(name, [-1.3, 0.4, 2.6])
    x, tx = both(data, "float64", requires_grad=True)
    y, ty = getattr(runtime, name)(x), getattr(torch, name)(tx)
    assert y.grad_fn.name() == ty.grad_fn.name()
    y.backward(runtime.tensor([1.0, 2.0, 3.0], dtype=runtime.float64))
    ty.backward(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert_matches(x.grad, tx.grad)


@pytest.mark.parametrize("name", MATH)
def test_math_function_in_place_matches_torch(name):
    data = MATH_DOMAINS.get(name, [-1.3, 0.4, 2.6])
    x, tx = both(data)
    assert getattr(x, name + "_")() is x
    getattr(tx, name + "_")()
    assert_matches(x, tx)


def test_atan2_and_lerp_match_torch():
    (y, ty), (x, tx) = both([1.0, -2.0, 0.5], requires_grad=True), both([-1.0, 3.0, 0.0])
    assert_matches(runtime.atan2(y, x), torch.atan2(ty, tx))
    assert runtime.atan2(y, x).grad_fn.name() == torch.atan2(ty, tx).grad_fn.name()
    (w, tw) = both([0.0, 0.25, 1.0])
    for weight, tweight in [(0.3, 0.3), (w, tw)]:
        ours, theirs = runtime.lerp(y, x, weight), torch.lerp(ty, tx, tweight)
        assert_matches(ours, theirs)
        assert ours.grad_fn.name() == theirs.grad_fn.name()
        assert_matches(y.lerp(x, weight), ty.lerp(tx, tweight))


def test_round_with_decimals_and_div_with_rounding_modes_match_torch():
    x, tx = both([-2.345, 0.5, 1.5, 2.675])
    assert_matches(runtime.round(x, decimals=2), torch.round(tx, decimals=2))
    for mode in ("trunc", "floor"):
        assert_matches(runtime.div(x, 0.7, rounding_mode=mode),
                       torch.div(tx, 0.7, rounding_mode=mode))
        a, ta = both([7, -7, 5], "int64")
        assert_matches(runtime.div(a, 2, rounding_mode=mode), torch.div(ta, 2, rounding_mode=mode))


@pytest.mark.parametrize("call", ["add(a, b, out=out)", "mul(a, b, out=out)",
                                  "sub(a, b, alpha=2, out=out)", "matmul(m, m, out=out)",
                                  "sin(a, out=out)", "div(a, b, out=out)", "exp(a, out=out)",
                                  "pow(a, 2, out=out)", "maximum(a, b, out=out)",
                                  "cat([a, m], 1, out=out)", "stack([a, m], out=out)",
                                  "tanh(a, out=out)", "abs(a, out=out)"])
def test_out_writes_into_the_given_tensor_like_torch(call):
    results = []
    for lib in (runtime, torch):
        names = {"a": lib.tensor([[1.0, 2.0], [3.0, 4.0]]), "b": lib.tensor([0.5, -1.0]),
                 "m": lib.tensor([[1.0, 2.0], [0.0, 1.0]]), "out": lib.empty(0)}
        returned = eval(f"lib.{call}", {"lib": lib, **names})
        assert returned is names["out"]
        results.append(returned)
    assert_matches(*results)


def test_out_refuses_inputs_that_require_grad_like_torch():
    for lib in (runtime, torch):
        a = lib.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError, match="mul\\(\\): functions with out=... arguments don't "
                                               "support automatic differentiation"):
            lib.mul(a, 2, out=lib.empty(2))
        with pytest.warns(UserWarning, match="An output with one or more elements was resized"):
            with lib.no_grad():
                assert lib.mul(a, 2, out=lib.empty(3)).shape == (2,)
