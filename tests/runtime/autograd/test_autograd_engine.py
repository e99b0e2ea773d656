"""The backward engine (runtime/autograd/_engine.py, _node.py) and the autograd attributes of
tensors, as the PyTorch tutorial describes them: requires_grad, is_leaf, grad_fn, backward with
gradient / retain_graph / create_graph / inputs, accumulation into leaves, freed graphs, .grad of
non-leaves, retain_grad, detach, and autograd.grad."""

import gc
import weakref

import numpy as np
import pytest

import runtime
from runtime import autograd


def leaf(values, dtype=runtime.float64):
    return runtime.tensor(values, dtype=dtype, requires_grad=True)


# ----- requires_grad, leaves and grad_fn ---------------------------------------------------------

def test_requires_grad_at_creation_or_later():
    w = runtime.randn(5, 3, requires_grad=True)
    b = runtime.randn(3)
    assert w.requires_grad and not b.requires_grad
    assert b.requires_grad_() is b and b.requires_grad
    b.requires_grad_(False)
    assert not b.requires_grad
    b.requires_grad = True
    assert b.requires_grad


def test_only_floating_point_tensors_can_require_grad():
    with pytest.raises(RuntimeError, match="Only Tensors of floating point and complex dtype can "
                                           "require gradients"):
        runtime.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError):
        runtime.arange(3).requires_grad_()


def test_results_of_ops_on_tensors_that_require_grad_are_non_leaves_with_a_grad_fn():
    x = runtime.ones(5)
    w = runtime.randn(5, 3, requires_grad=True)
    b = runtime.randn(3, requires_grad=True)
    z = runtime.matmul(x, w) + b
    assert x.is_leaf and w.is_leaf and not z.is_leaf
    assert x.grad_fn is None and w.grad_fn is None
    assert z.requires_grad and z.grad_fn.name() == "AddBackward0"
    assert (x * 2).grad_fn is None and not (x * 2).requires_grad
    assert repr(z.grad_fn).startswith("<AddBackward0 object at 0x")


def test_next_functions_lead_back_to_the_leaves():
    x = runtime.ones(5)
    w = runtime.randn(5, 3, requires_grad=True)
    b = runtime.randn(3, requires_grad=True)
    z = runtime.matmul(x, w) + b
    (mm, _), (accumulate_b, _) = z.grad_fn.next_functions
    assert mm.name() == "MmBackward0"
    assert isinstance(accumulate_b, autograd.AccumulateGrad) and accumulate_b.variable is b
    (none, _), (accumulate_w, _) = mm.next_functions
    assert none is None and accumulate_w.variable is w


def test_a_non_leaf_cannot_stop_requiring_grad():
    y = leaf([1.0]) * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf "
                                           "variables"):
        y.requires_grad_(False)


# ----- backward ----------------------------------------------------------------------------------

def test_backward_fills_grad_of_the_leaves():
    x = runtime.ones(5)
    y = runtime.zeros(3)
    w = runtime.tensor(np.linspace(-1, 1, 15).reshape(5, 3), dtype=runtime.float32,
                       requires_grad=True)
    b = runtime.tensor([0.1, -0.2, 0.3], requires_grad=True)
    z = runtime.matmul(x, w) + b
    loss = (z - y).square().mean()
    loss.backward()
    expected_b = 2 * (x.numpy() @ w.detach().numpy() + b.detach().numpy()) / 3
    np.testing.assert_allclose(b.grad.numpy(), expected_b, rtol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), np.outer(x.numpy(), expected_b), rtol=1e-6)
    assert w.grad.dtype == w.dtype and w.grad.shape == w.shape


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    first = x.grad
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]
    assert first is x.grad  # accumulated in place, as PyTorch does


def test_a_leaf_used_twice_gets_the_sum_of_both_paths():
    x = leaf([3.0])
    (x * x + x.exp() + x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0 + np.exp(3.0) + 1.0])


def test_second_backward_through_freed_saved_values_raises_and_retain_graph_allows_it():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time") \
            as error:
        y.backward()
    assert "Specify retain_graph=True" in str(error.value)


def test_a_graph_that_saved_nothing_can_backward_twice_like_pytorch():
    x = leaf([1.0, 2.0])
    y = (x + 1).sum()
    y.backward()
    y.backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar "
                                           "outputs"):
        (x * 2).backward()
    (x * 2).backward(runtime.tensor([1.0, 10.0], dtype=runtime.float64))
    assert x.grad.tolist() == [2.0, 20.0]


def test_backward_of_a_one_element_tensor_needs_no_gradient():
    x = leaf([3.0])
    (x * 2).backward()
    assert x.grad.tolist() == [2.0]


def test_backward_gradient_of_the_wrong_shape_is_refused():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="Mismatch in shape: grad_output\\[0\\] has a shape of "
                                           "runtime.Size\\(\\[3\\]\\) and output\\[0\\] has a "
                                           "shape of runtime.Size\\(\\[2\\]\\)"):
        (x * 2).backward(runtime.ones(3, dtype=runtime.float64))


def test_backward_of_a_tensor_that_does_not_require_grad_is_refused():
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad and does "
                                           "not have a grad_fn"):
        runtime.ones(2).sum().backward()


def test_backward_with_inputs_fills_only_those():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x * w).sum().backward(inputs=[x])
    assert x.grad.tolist() == [3.0, 4.0] and w.grad is None


def test_autograd_backward_with_several_roots():
    x = leaf([1.0, 2.0])
    autograd.backward([(x * x).sum(), x * 3], [None, runtime.ones(2, dtype=runtime.float64)])
    assert x.grad.tolist() == [5.0, 7.0]


def test_grad_keeps_the_dtype_of_each_leaf():
    x = leaf([1.0, 2.0], dtype=runtime.float32)
    w = leaf([3.0, 4.0], dtype=runtime.float64)
    (x * w).sum().backward()
    assert x.grad.dtype == runtime.float32 and w.grad.dtype == runtime.float64


# ----- .grad of non-leaves, retain_grad ----------------------------------------------------------

def test_grad_of_a_non_leaf_is_none_with_a_warning():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.sum().backward()
    with pytest.warns(UserWarning, match="The .grad attribute of a Tensor that is not a leaf "
                                         "Tensor is being accessed"):
        assert y.grad is None


def test_retain_grad_fills_grad_of_a_non_leaf():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.retain_grad()
    assert y.retains_grad and not x.retains_grad
    (y * y).sum().backward()
    assert y.grad.tolist() == [4.0, 8.0]
    assert x.grad.tolist() == [8.0, 16.0]


def test_retain_grad_needs_requires_grad():
    with pytest.raises(RuntimeError, match="can't retain_grad on Tensor that has "
                                           "requires_grad=False"):
        runtime.ones(2).retain_grad()


def test_assigning_grad_checks_shape_and_dtype():
    x = leaf([1.0, 2.0])
    x.grad = runtime.ones(2, dtype=runtime.float64)
    x.grad = None
    with pytest.raises(RuntimeError, match="assigned grad has data of a different size"):
        x.grad = runtime.ones(3, dtype=runtime.float64)
    with pytest.raises(RuntimeError, match="assigned grad has data of a different type"):
        x.grad = runtime.ones(2, dtype=runtime.float32)


# ----- detach ------------------------------------------------------------------------------------

def test_detach_shares_data_but_not_history():
    x = leaf([1.0, 2.0])
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    y.data.add_(1)  # .data is another detached view of the same memory
    assert d.tolist() == [3.0, 5.0]
    assert runtime.detach(y).tolist() == [3.0, 5.0]


def test_detach_in_place_makes_a_leaf():
    x = leaf([1.0, 2.0])
    y = x * 2
    assert y.detach_() is y
    assert y.is_leaf and not y.requires_grad and y.grad_fn is None
    z = leaf([1.0]).detach_()
    assert not z.requires_grad


def test_detached_value_stops_the_gradient():
    x = leaf([2.0])
    (x * x.detach()).backward()
    assert x.grad.tolist() == [2.0]


# ----- autograd.grad -----------------------------------------------------------------------------

def test_grad_returns_gradients_without_touching_leaves():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = x * w
    gx, gw = autograd.grad(y, (x, w), grad_outputs=runtime.tensor([1.0, 10.0],
                                                                   dtype=runtime.float64))
    assert gx.tolist() == [3.0, 40.0] and gw.tolist() == [1.0, 20.0]
    assert x.grad is None and w.grad is None


def test_grad_of_several_outputs_sums_them():
    x = leaf([1.0, 2.0])
    (g,) = autograd.grad([(x * x).sum(), (x * 3).sum()], [x])
    assert g.tolist() == [5.0, 7.0]


def test_grad_of_a_single_input_is_a_one_tuple():
    x = leaf([1.0])
    result = autograd.grad((x * 5).sum(), x)
    assert isinstance(result, tuple) and result[0].tolist() == [5.0]


def test_grad_with_an_unused_input_needs_allow_unused():
    x, unused = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match="The differentiated Tensor at index 1 appears to not "
                                           "have been used in the graph. Set allow_unused=True"):
        autograd.grad((x * 2).sum(), [x, unused])
    gx, gu = autograd.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gx.tolist() == [2.0] and gu is None
    gx, gu = autograd.grad((x * 2).sum(), [x, unused], materialize_grads=True)
    assert gu.tolist() == [0.0]


def test_grad_frees_the_graph_unless_retained():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    autograd.grad(y, x, retain_graph=True)
    autograd.grad(y, x)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        autograd.grad(y, x)


def test_grad_with_respect_to_a_non_leaf():
    x = leaf([1.0, 2.0])
    h = x * 3
    (g,) = autograd.grad((h * h).sum(), h)
    assert g.tolist() == [6.0, 12.0]


def test_grad_needs_inputs_that_require_grad():
    with pytest.raises(RuntimeError, match="One of the differentiated Tensors does not require "
                                           "grad"):
        autograd.grad(leaf([1.0]).sum(), runtime.ones(1))


# ----- double backward ---------------------------------------------------------------------------

def test_create_graph_makes_gradients_differentiable():
    x = leaf([1.0, 2.0])
    (g,) = autograd.grad((x ** 3).sum(), x, create_graph=True)
    assert g.requires_grad and g.tolist() == [3.0, 12.0]
    (g2,) = autograd.grad(g.sum(), x)
    assert g2.tolist() == [6.0, 12.0]


def test_backward_with_create_graph_leaves_a_differentiable_grad():
    x = leaf([1.0, 2.0])
    (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    g.sum().backward()
    assert x.grad.tolist() == [6.0, 12.0]


def test_third_derivative_of_sigmoid():
    x = leaf([0.3])
    s = float(1 / (1 + np.exp(-0.3)))
    (g1,) = autograd.grad(x.sigmoid().sum(), x, create_graph=True)
    (g2,) = autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = autograd.grad(g2.sum(), x)
    np.testing.assert_allclose(g1.detach().numpy(), [s * (1 - s)])
    np.testing.assert_allclose(g2.detach().numpy(), [s * (1 - s) * (1 - 2 * s)])
    np.testing.assert_allclose(g3.numpy(), [s * (1 - s) * (1 - 6 * s + 6 * s * s)])


# ----- graph lifetime ----------------------------------------------------------------------------

def test_a_graph_is_freed_with_its_output():
    x = leaf([1.0, 2.0])
    y = (x * x).exp().sum()
    node = weakref.ref(y.grad_fn)
    del y
    gc.collect()
    assert node() is None


def test_backward_runs_nodes_in_dependency_order_on_a_diamond():
    x = leaf([2.0])
    a = x * 3
    b = a.exp() + a * a  # two paths from a
    c = b * a
    c.backward()
    a_value = 6.0
    expected = 3 * ((np.exp(a_value) + 2 * a_value) * a_value + np.exp(a_value) + a_value ** 2)
    np.testing.assert_allclose(x.grad.numpy(), [expected])
