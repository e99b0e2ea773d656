"""Custom autograd Functions (runtime/autograd/function.py): forward(ctx, ...) runs without
recording, backward(ctx, ...) gets the gradients of the outputs, save_for_backward /
saved_tensors, needs_input_grad, several outputs, non-tensor arguments, the node's name, double
backward through a backward written with ops, and the errors PyTorch gives."""

import pytest

import runtime
from runtime.autograd import Function, gradcheck, gradgradcheck


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        result = x.exp()
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx, grad):
        (result,) = ctx.saved_tensors
        return grad * result


class Cube(Function):
    """x**3 with a backward made of ops, so it differentiates again."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x ** 2


class SplitScale(Function):
    """Two outputs and non-tensor arguments: (x[:k] * scale, x[k:] * 3)."""

    @staticmethod
    def forward(ctx, x, k, scale=2.0):
        ctx.k, ctx.scale = k, scale
        return x[:k] * scale, x[k:] * 3

    @staticmethod
    def backward(ctx, grad_head, grad_tail):
        return runtime.cat([grad_head * ctx.scale, grad_tail * 3]), None, None


def double(values):
    return runtime.tensor(values, dtype=runtime.float64, requires_grad=True)


def test_apply_computes_forward_and_backward_uses_saved_tensors():
    x = double([0.0, 1.0])
    y = Exp.apply(x)
    y.sum().backward()
    assert x.grad.numpy() == pytest.approx(y.detach().numpy())
    assert gradcheck(Exp.apply, (double([0.3, -1.2]),))


def test_the_node_is_named_after_the_function():
    y = Exp.apply(double([1.0]))
    assert y.grad_fn.name() == "ExpBackward"
    assert "grad_fn=<ExpBackward>" in repr(y)
    assert [n.name() for n, _ in y.grad_fn.next_functions] == ["AccumulateGrad"]


def test_forward_runs_without_recording():
    seen = {}

    class Spy(Function):
        @staticmethod
        def forward(ctx, x):
            inner = x * 2
            seen["inner requires grad"] = inner.requires_grad
            seen["grad enabled"] = runtime.is_grad_enabled()
            return inner

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    out = Spy.apply(double([1.0]))
    assert seen == {"inner requires grad": False, "grad enabled": False}
    assert out.requires_grad and out.grad_fn.name() == "SpyBackward"


def test_several_outputs_and_non_tensor_arguments():
    x = double([1.0, 2.0, 3.0])
    head, tail = SplitScale.apply(x, 1)
    assert head.tolist() == [2.0] and tail.tolist() == [6.0, 9.0]
    assert head.grad_fn is tail.grad_fn
    head.sum().backward()  # tail's gradient arrives as zeros
    assert x.grad.tolist() == [2.0, 0.0, 0.0]
    assert gradcheck(lambda t: SplitScale.apply(t, 2, 0.5), (double([1.0, -2.0, 0.5]),))


def test_needs_input_grad_says_which_inputs_need_a_gradient():
    seen = []

    class Record(Function):
        @staticmethod
        def forward(ctx, a, b, n):
            seen.append(ctx.needs_input_grad)
            return a * b * n

        @staticmethod
        def backward(ctx, grad):
            return grad, grad, None

    Record.apply(double([1.0]), runtime.ones(1, dtype=runtime.float64), 3)
    assert seen == [(True, False, False)]


def test_no_node_without_inputs_that_require_grad_or_under_no_grad():
    assert Exp.apply(runtime.ones(2)).grad_fn is None
    with runtime.no_grad():
        out = Exp.apply(double([1.0]))
    assert out.grad_fn is None and not out.requires_grad


def test_double_backward_through_a_backward_made_of_ops():
    x = double([1.0, 2.0])
    (g,) = runtime.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    (g2,) = runtime.autograd.grad(g.sum(), x)
    assert g.tolist() == [3.0, 12.0] and g2.tolist() == [6.0, 12.0]
    assert gradgradcheck(Cube.apply, (double([0.5, -1.5]),))


def test_saved_tensors_are_freed_after_backward():
    x = double([1.0])
    y = Cube.apply(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_saved_tensors_changed_in_place_are_detected():
    x = double([1.0, 2.0])
    h = x * 1
    y = Cube.apply(h)
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_an_input_returned_as_is_becomes_a_new_output():
    class Identity(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * 5

    x = double([1.0])
    out = Identity.apply(x)
    assert out is not x and out.grad_fn.name() == "IdentityBackward" and x.is_leaf
    out.sum().backward()
    assert x.grad.tolist() == [5.0]


def test_mark_non_differentiable_and_materialize_grads():
    seen = {}

    class MaxWithIndex(Function):
        @staticmethod
        def forward(ctx, x):
            index = x.argmax()
            ctx.mark_non_differentiable(index)
            ctx.set_materialize_grads(False)
            ctx.save_for_backward(x, index)
            return x.max(), index

        @staticmethod
        def backward(ctx, grad_value, grad_index):
            seen["grad_index"] = grad_index
            x, index = ctx.saved_tensors
            grad = runtime.zeros_like(x)
            grad[index] = grad_value
            return grad

    x = double([1.0, 5.0, 2.0])
    value, index = MaxWithIndex.apply(x)
    assert value.requires_grad and not index.requires_grad
    value.backward()
    assert seen["grad_index"] is None and x.grad.tolist() == [0.0, 1.0, 0.0]


def test_wrong_number_of_gradients_is_an_error():
    class TooMany(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    with pytest.raises(RuntimeError, match="function TooManyBackward returned an incorrect number "
                                           "of gradients \\(expected 1, got 2\\)"):
        TooMany.apply(double([1.0])).sum().backward()


def test_gradient_of_the_wrong_shape_is_an_error_and_dtype_is_cast():
    class WrongShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return runtime.ones(3)

    class WrongDtype(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad.float() * 2

    with pytest.raises(RuntimeError, match="Function WrongShapeBackward returned an invalid "
                                           "gradient at index 0 - got \\[3\\] but expected shape "
                                           "compatible with \\[2\\]"):
        WrongShape.apply(double([1.0, 2.0])).sum().backward()
    x = double([1.0, 2.0])
    WrongDtype.apply(x).sum().backward()
    assert x.grad.dtype == runtime.float64 and x.grad.tolist() == [2.0, 2.0]


def test_missing_forward_or_backward():
    class NoBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    with pytest.raises(NotImplementedError, match="You must implement either the backward"):
        NoBackward.apply(double([1.0])).sum().backward()
    with pytest.raises(NotImplementedError, match="You must implement the forward function"):
        Function.apply(double([1.0]))


def test_custom_function_matches_torch():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (runtime, torch):
        class Square(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, scale):
                ctx.save_for_backward(x)
                ctx.scale = scale
                return x * x * scale

            @staticmethod
            def backward(ctx, grad):
                (x,) = ctx.saved_tensors
                return grad * 2 * x * ctx.scale, None

        x = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = Square.apply(x.tanh(), 3.0)
        (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        (g2,) = lib.autograd.grad(g.sum(), x)
        results.append([t.detach().numpy().tolist() for t in (y, g, g2)])
    for ours, theirs in zip(*results):
        assert ours == pytest.approx(theirs, rel=1e-12)
