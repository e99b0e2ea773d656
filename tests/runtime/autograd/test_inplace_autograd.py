"""In-place operations and autograd (runtime/_tensor.py `_inplace_update`, the version counter in
runtime/autograd/_node.py): changed saved values are detected, leaves that require grad are
protected, no_grad allows optimizer updates, and in-place changes of tensors and of their views
give the gradients of the equivalent out-of-place program."""

import numpy as np
import pytest

import runtime
from runtime.autograd import gradcheck, gradgradcheck


def double(values):
    return runtime.tensor(values, dtype=runtime.float64, requires_grad=True)


X = [[0.1, 0.2], [0.3, -0.4]]


def test_changing_a_saved_value_in_place_is_detected_at_backward():
    x = double([1.0, 2.0])
    y = x * 2
    z = y * y  # saves y
    y.add_(1)
    with pytest.raises(RuntimeError, match="one of the variables needed for gradient computation "
                                           "has been modified by an inplace operation") as error:
        z.sum().backward()
    assert "is at version 1; expected version 0 instead" in str(error.value)
    assert "[runtime.DoubleTensor [2]], which is output 0 of AddBackward0" in str(error.value)


def test_changing_a_value_nobody_saved_is_fine():
    x = double([1.0, 2.0])
    y = x * 2
    z = y + 1  # add saves nothing
    y.mul_(3)
    z.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_every_in_place_change_bumps_the_version():
    x = runtime.zeros(3)
    for change in (lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.zero_(),
                   lambda t: t.fill_(3), lambda t: t.copy_(runtime.ones(3)),
                   lambda t: t.__setitem__(0, 5.0), lambda t: t.uniform_()):
        before = x._version.value
        change(x)
        assert x._version.value == before + 1


def test_in_place_change_of_a_leaf_that_requires_grad_is_refused():
    w = double([1.0, 2.0])
    for change in (lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.zero_(),
                   lambda t: t.exp_(), lambda t: t.__setitem__(0, 1.0)):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used "
                                               "in an in-place operation"):
            change(w)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        w[0:1].add_(1)


def test_optimizer_style_update_under_no_grad():
    w = double([1.0, 2.0])
    (w * w).sum().backward()
    lr = 0.1
    with runtime.no_grad():
        w -= lr * w.grad
        w.grad.zero_()
    assert w.tolist() == pytest.approx([0.8, 1.6])
    assert w.is_leaf and w.requires_grad and w.grad.tolist() == [0.0, 0.0]


def test_in_place_op_records_history_on_a_non_leaf():
    x = double([1.0, 2.0])
    y = x * 1
    y.exp_()
    assert y.grad_fn.name() == "ExpBackward0"
    y += 1
    assert y.grad_fn.name() == "AddBackward0"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([1.0, 2.0]))


def test_in_place_op_whose_derivative_needs_its_input():
    # exp_, sigmoid_, tanh_, relu_, pow_ overwrite the input their derivative is written in.
    def program(x):
        y = x * 1
        y.sigmoid_()
        y.tanh_()
        y.relu_()
        y.pow_(2)
        y.mul_(y)
        return y

    assert gradcheck(program, (double(X),))
    assert gradgradcheck(program, (double(X),))


def test_zero_and_fill_of_a_non_leaf_cut_the_gradient():
    x = double([1.0, 2.0, 3.0])
    y = x * 2
    y[1:].zero_()
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 0.0]
    assert y.requires_grad


def test_adding_a_tensor_that_requires_grad_into_a_plain_tensor():
    a = runtime.zeros(3, dtype=runtime.float64)
    w = double([1.0, 2.0])
    a[1:].add_(w)
    assert a.requires_grad and a.grad_fn.name() == "IndexPutBackward0"
    (a * a).sum().backward()
    assert w.grad.tolist() == [2.0, 4.0]


VIEW_CHANGES = {
    "slice": lambda y: y[:, 0].add_(10),
    "row": lambda y: y[1].mul_(y[0]),
    "view of a view": lambda y: y.view(-1)[1:3].exp_(),
    "transpose": lambda y: y.t()[0].sigmoid_(),
    "reshape": lambda y: y.reshape(4)[3:].relu_(),
    "whole tensor": lambda y: y.mul_(y),
    "zero a row": lambda y: y[0].zero_(),
    "setitem of a view": lambda y: y[1].__setitem__(0, y[0, 1] * 3),
    "setitem from itself": lambda y: y.__setitem__((slice(None), 1), y[:, 1] * 3 + y[:, 0]),
}


@pytest.mark.parametrize("name", VIEW_CHANGES)
def test_in_place_change_of_a_view_reaches_its_base(name):
    def program(x):
        y = x * 1
        VIEW_CHANGES[name](y)
        return y * y

    assert gradcheck(program, (double(X),))
    assert gradgradcheck(program, (double(X),))


def test_all_view_changes_in_sequence():
    def program(x):
        y = x * 1
        for change in VIEW_CHANGES.values():
            change(y)
        return y * y

    assert gradcheck(program, (double(X),))


def test_view_changes_match_torch():
    torch = pytest.importorskip("torch")
    grads = []
    for lib in (runtime, torch):
        x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        y = x * 1
        y[0:2].mul_(5)
        y[:, None][2].add_(1)
        (y * y).sum().backward()
        grads.append((y.tolist(), x.grad.tolist()))
    assert grads[0] == grads[1]


def test_assigning_a_value_computed_from_saved_views_is_detected_like_torch():
    x = double(X)
    y = x * 1
    y[:, 1] = y[:, 1] * y[:, 0]  # the product saved both columns, then y changed
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (y * y).sum().backward()


def test_in_place_change_of_an_expanded_tensor_is_refused():
    x = runtime.zeros(1, 3).expand(2, 3)
    with pytest.raises(RuntimeError, match="read-only"):
        x.add_(1)
