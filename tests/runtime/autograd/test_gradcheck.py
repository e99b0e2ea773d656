"""runtime.autograd.gradcheck / gradgradcheck (runtime/autograd/gradcheck.py): the shared
finite-difference check must accept correct derivatives and catch wrong ones."""

import pytest

import runtime
from runtime.autograd import Function, GradcheckError, gradcheck, gradgradcheck


def double(*shape, seed=0):
    return runtime.randn(*shape, generator=runtime.Generator().manual_seed(seed),
                         dtype=runtime.float64, requires_grad=True)


class WrongSquare(Function):
    """x**2 with the derivative off by a factor of two."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x


class SquareWithConstantBackward(Function):
    """x**2 whose backward is right, but not differentiable (it detaches x): double backward
    is wrong."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 * x.detach()


def test_gradcheck_accepts_a_correct_composite_function():
    x, w = double(3, 4), double(4, 2, seed=1)
    assert gradcheck(lambda a, b: (a @ b).tanh().softmax(dim=1), (x, w)) is True


def test_gradcheck_accepts_a_single_tensor_and_non_tensor_arguments():
    x = double(3)
    assert gradcheck(lambda a: a.exp(), x)
    assert gradcheck(lambda a, power: a.exp() ** power, (x, 3))


def test_gradcheck_checks_only_inputs_that_require_grad():
    x, constant = double(3), runtime.randn(3, dtype=runtime.float64)
    assert gradcheck(lambda a, c: a * c.exp(), (x, constant))


def test_gradcheck_checks_every_output():
    x = double(2, 3)
    assert gradcheck(lambda a: (a.sum(0), a.max(dim=1).values), (x,))
    with pytest.raises(GradcheckError, match="output 1 with respect to input 0"):
        gradcheck(lambda a: (a.sum(0), WrongSquare.apply(a)), (x,))


def test_gradcheck_raises_on_a_wrong_derivative():
    with pytest.raises(GradcheckError, match="Jacobian mismatch for output 0 with respect to "
                                             "input 0") as error:
        gradcheck(WrongSquare.apply, (double(3),))
    assert "numerical" in str(error.value) and "analytical" in str(error.value)
    assert isinstance(error.value, RuntimeError)


def test_gradcheck_returns_false_when_told_not_to_raise():
    assert gradcheck(WrongSquare.apply, (double(3),), raise_exception=False) is False


def test_gradcheck_tolerances_decide():
    x = double(3)
    # x * (1 + 1e-4) claimed to have derivative 1: wrong by 1e-4, inside rtol=1e-3
    class SlightlyOff(Function):
        @staticmethod
        def forward(ctx, a):
            return a * (1 + 1e-4)

        @staticmethod
        def backward(ctx, grad):
            return grad

    assert gradcheck(SlightlyOff.apply, (x,))
    assert not gradcheck(SlightlyOff.apply, (x,), atol=0, rtol=1e-6, raise_exception=False)


def test_gradcheck_catches_an_output_cut_from_the_graph():
    x = double(3)
    with pytest.raises(GradcheckError, match="expected to be zero"):
        gradcheck(lambda a: a.detach() * 2, (x,))


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="at least one input tensor to require gradient"):
        gradcheck(lambda a: a * 2, (runtime.ones(2, dtype=runtime.float64),))


def test_gradcheck_warns_about_single_precision_inputs():
    x = runtime.randn(3, requires_grad=True)
    with pytest.warns(UserWarning, match="not a double precision"):
        assert gradcheck(lambda a: a * 2, (x,), eps=1e-2, atol=1e-3, rtol=1e-3)


def test_gradcheck_leaves_the_inputs_unchanged():
    x = double(2, 2)
    before = x.detach().clone()
    gradcheck(lambda a: a.sigmoid(), (x,))
    assert runtime.equal(x.detach(), before) and x.grad is None


def test_gradgradcheck_accepts_correct_second_derivatives():
    x, w = double(3, 4), double(4, 2, seed=1)
    assert gradgradcheck(lambda a, b: (a @ b).tanh().log_softmax(dim=1), (x, w))


def test_gradgradcheck_accepts_given_grad_outputs():
    x = double(3)
    v = runtime.tensor([1.0, -2.0, 0.5], dtype=runtime.float64)
    assert gradgradcheck(lambda a: a.sigmoid(), (x,), (v,))


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable():
    x = double(3)
    assert gradcheck(SquareWithConstantBackward.apply, (x,))
    with pytest.raises(GradcheckError):
        gradgradcheck(SquareWithConstantBackward.apply, (x,))
