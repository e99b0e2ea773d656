"""Grad mode (runtime/_grad_mode.py): no_grad, enable_grad, set_grad_enabled and inference_mode
as context managers and as decorators, nested, restored after exceptions, and per thread."""

import threading

import pytest

import runtime


def recorded(x):
    return (x * 2).requires_grad


@pytest.fixture
def x():
    return runtime.ones(2, requires_grad=True)


def test_no_grad_stops_recording(x):
    with runtime.no_grad():
        z = x * 2
    assert not z.requires_grad and z.grad_fn is None
    assert recorded(x)


def test_enable_grad_inside_no_grad(x):
    with runtime.no_grad():
        with runtime.enable_grad():
            assert recorded(x)
        assert not recorded(x)
    assert runtime.is_grad_enabled()


def test_set_grad_enabled_as_a_context_and_as_a_function(x):
    with runtime.set_grad_enabled(False):
        assert not recorded(x)
        with runtime.set_grad_enabled(True):
            assert recorded(x)
        assert not recorded(x)
    assert recorded(x)
    runtime.set_grad_enabled(False)  # takes effect at once, as in PyTorch
    assert not runtime.is_grad_enabled() and not recorded(x)
    runtime.set_grad_enabled(True)
    assert recorded(x)


def test_modes_as_decorators(x):
    @runtime.no_grad()
    def without(t):
        return recorded(t)

    @runtime.enable_grad()
    def with_grad(t):
        return recorded(t)

    @runtime.set_grad_enabled(False)
    def disabled(t):
        return recorded(t)

    assert runtime.is_grad_enabled()  # decorating changes nothing by itself
    assert not without(x) and not disabled(x)
    with runtime.no_grad():
        assert with_grad(x)
    assert runtime.is_grad_enabled() and recorded(x)
    assert without.__name__ == "without"


def test_the_mode_is_restored_after_an_exception(x):
    with pytest.raises(ValueError):
        with runtime.no_grad():
            raise ValueError("boom")
    assert runtime.is_grad_enabled()

    @runtime.no_grad()
    def fails():
        raise ValueError("boom")

    with pytest.raises(ValueError):
        fails()
    assert recorded(x)


def test_inference_mode_is_no_grad(x):
    with runtime.inference_mode():
        assert not recorded(x)
    with runtime.inference_mode(False):
        assert recorded(x)


def test_autograd_module_exports_the_modes():
    assert runtime.autograd.no_grad is runtime.no_grad
    assert runtime.autograd.enable_grad is runtime.enable_grad
    assert runtime.autograd.set_grad_enabled is runtime.set_grad_enabled


def test_grad_mode_is_per_thread(x):
    seen = []

    def worker():
        seen.append(runtime.is_grad_enabled())

    with runtime.no_grad():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert seen == [True]


def test_in_place_update_of_a_leaf_under_no_grad_like_an_optimizer():
    w = runtime.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with runtime.no_grad():
        w -= 0.1 * w.grad
    assert w.tolist() == pytest.approx([0.8, 1.6])
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
