"""What PyTorch programs see of autograd, against PyTorch: node classes named after the backward
function (`type(t.grad_fn).__name__`), a custom Function's node, tensor hooks, `Variable`, and
the legacy `Tensor(...)` constructor."""

import numpy as np
import pytest

import runtime

torch = pytest.importorskip("torch")


def chain(grad_fn):
    """Class names along the first edges from grad_fn to a leaf."""
    names = []
    while grad_fn is not None:
        names.append(type(grad_fn).__name__)
        edges = [n for n, _ in grad_fn.next_functions if n is not None]
        grad_fn = edges[0] if edges else None
    return names


EXPRESSIONS = {
    "x * 2 + 1": lambda lib, x: x * 2 + 1,
    "sin(x).sum()": lambda lib, x: lib.sin(x).sum(),
    "(x @ x.T).relu().mean()": lambda lib, x: (x @ x.T).relu().mean(),
    "x.exp().log_softmax(1)": lambda lib, x: x.exp().log_softmax(1),
    "x[0].tanh().cumsum(0)": lambda lib, x: x[0].tanh().cumsum(0),
}


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_node_classes_are_named_as_torchs(name):
    data = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    ours = EXPRESSIONS[name](runtime, runtime.tensor(data, requires_grad=True))
    theirs = EXPRESSIONS[name](torch, torch.tensor(data, requires_grad=True))
    assert chain(ours.grad_fn) == chain(theirs.grad_fn)


class Cube:
    """The same custom Function in either library."""

    @staticmethod
    def of(lib):
        class Cube(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            def backward(ctx, grad):
                (x,) = ctx.saved_tensors
                return 3 * x ** 2 * grad

        return Cube


def test_a_custom_functions_node_is_named_after_it():
    for lib in (runtime, torch):
        y = Cube.of(lib).apply(lib.ones(2, requires_grad=True))
        assert type(y.grad_fn).__name__ == "CubeBackward"
        assert isinstance(y.grad_fn, lib.autograd.function.BackwardCFunction)


def test_hooks_see_and_replace_gradients_like_torchs():
    seen = {}
    for lib in (runtime, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3
        y.register_hook(lambda g: g * 10)
        leaf_grads = []
        handle = x.register_hook(lambda g, out=leaf_grads: out.append(g.tolist()))
        (y * y).sum().backward()
        handle.remove()
        (x * 2).sum().backward()
        (g,) = lib.autograd.grad((x * 5).sum(), x)
        seen[lib.__name__] = (x.grad.tolist(), leaf_grads, g.tolist())
    assert seen["runtime"] == seen["torch"]
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't "
                                           "require gradient"):
        runtime.ones(2).register_hook(lambda g: g)


def test_a_non_leaf_hook_runs_before_retain_grad_fills_grad():
    for lib in (runtime, torch):
        x = lib.ones(2, requires_grad=True)
        y = x * 2
        y.retain_grad()
        y.register_hook(lambda g: g + 1)
        y.sum().backward()
        assert y.grad.tolist() == [2.0, 2.0] and x.grad.tolist() == [4.0, 4.0]


def test_variable_returns_a_tensor_as_torchs():
    from runtime.autograd import Variable

    t = runtime.ones(2)
    v = Variable(t, requires_grad=True)
    assert type(v) is runtime.Tensor and v is not t and v.requires_grad and v.is_leaf
    assert not t.requires_grad and isinstance(t, Variable)
    v.data[0] = 5.0
    assert t.tolist() == [5.0, 1.0]  # shares memory, as PyTorch's
    with pytest.raises(TypeError, match="Variable data has to be a tensor, but got list"):
        Variable([1.0])


@pytest.mark.parametrize("args", [([1, 2],), ([[1.5], [2.0]],), (2, 3), (0,), (),
                                  (np.array([1, 2]),)], ids=repr)
def test_legacy_tensor_constructor_matches_torch(args):
    ours, theirs = runtime.Tensor(*args), torch.Tensor(*args)
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert tuple(ours.shape) == tuple(theirs.shape)
    if args and isinstance(args[0], (list, np.ndarray)):
        assert ours.tolist() == theirs.tolist()


def test_legacy_constructor_of_a_tensor_shares_it_and_follows_the_default_dtype():
    t = runtime.ones(2, dtype=runtime.float64)
    alias = runtime.Tensor(t)
    assert alias.dtype == runtime.float64
    alias[0] = 3.0
    assert t[0].item() == 3.0
    runtime.set_default_dtype(runtime.float64)
    assert runtime.Tensor([1, 2]).dtype == runtime.float64
