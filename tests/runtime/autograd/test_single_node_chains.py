"""Operations PyTorch records as one autograd node are one node in symgrad too (composite ops,
runtime/ops/composite.py): nn.Linear is AddmmBackward0, the losses MseLossBackward0,
BinaryCrossEntropyWithLogitsBackward0 and NllLossBackward0, max/min along a dim MaxBackward0 /
MinBackward0, `t()` TBackward0. The chains printed are compared with PyTorch's, and the
gradients through them with finite differences and PyTorch's."""

import numpy as np
import pytest

import runtime
from runtime.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")


def tree(grad_fn):
    """The whole graph behind grad_fn: (class name, [subtrees of its edges, None where none])."""
    if grad_fn is None:
        return None
    return (type(grad_fn).__name__, [tree(n) for n, _ in grad_fn.next_functions])


def pair(lib, shape, seed, requires_grad=True):
    values = np.random.default_rng(seed).standard_normal(shape)
    return lib.tensor(values, dtype=lib.float64, requires_grad=requires_grad)


def linear(lib, x):
    layer = lib.nn.Linear(3, 2).double()
    with lib.no_grad():
        layer.weight.copy_(pair(lib, (2, 3), 1, requires_grad=False))
        layer.bias.copy_(pair(lib, (2,), 2, requires_grad=False))
    return layer(x)


GRAPHS = {
    "nn.Linear": lambda lib, x: linear(lib, x),
    "F.linear without bias": lambda lib, x: lib.nn.functional.linear(x, pair(lib, (2, 3), 3)),
    "MSELoss of Linear": lambda lib, x: lib.nn.MSELoss()(linear(lib, x),
                                                         pair(lib, (4, 2), 4, False)),
    "mse_loss, sum, target requires grad": lambda lib, x: lib.nn.functional.mse_loss(
        x, pair(lib, (4, 3), 5), reduction="sum"),
    "BCEWithLogitsLoss": lambda lib, x: lib.nn.BCEWithLogitsLoss()(
        x, lib.sigmoid(pair(lib, (4, 3), 6, False))),
    "BCE with logits, weight and pos_weight": lambda lib, x:
        lib.nn.functional.binary_cross_entropy_with_logits(
            x, lib.sigmoid(pair(lib, (4, 3), 7, False)), weight=lib.ones(3, dtype=lib.float64),
            pos_weight=lib.full((3,), 2.0, dtype=lib.float64), reduction="none"),
    "CrossEntropyLoss": lambda lib, x: lib.nn.CrossEntropyLoss()(x, lib.tensor([0, 2, 1, 1])),
    "nll_loss of log_softmax, ignore_index": lambda lib, x: lib.nn.functional.nll_loss(
        lib.log_softmax(x, 1), lib.tensor([0, 2, 1, 1]), ignore_index=1),
    "max along dim 1": lambda lib, x: lib.max(x, 1).values,
    "min along dim 0, keepdim": lambda lib, x: lib.min(x, 0, keepdim=True)[0],
    "x.t()": lambda lib, x: x.t() * 2,
}


@pytest.mark.parametrize("name", GRAPHS)
def test_graph_is_pytorchs(name):
    ours = GRAPHS[name](runtime, pair(runtime, (4, 3), 0))
    theirs = GRAPHS[name](torch, pair(torch, (4, 3), 0))
    assert tree(ours.grad_fn) == tree(theirs.grad_fn)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", GRAPHS)
def test_gradients_are_pytorchs(name):
    x, y = pair(runtime, (4, 3), 0), pair(torch, (4, 3), 0)
    GRAPHS[name](runtime, x).sum().backward()
    GRAPHS[name](torch, y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["MSELoss of Linear", "BCEWithLogitsLoss", "CrossEntropyLoss",
                                  "max along dim 1"])
def test_first_and_second_derivatives_match_finite_differences(name):
    def function(x):
        return GRAPHS[name](runtime, x)

    x = pair(runtime, (4, 3), 0)
    assert gradcheck(function, [x])
    assert gradgradcheck(function, [x])


def test_the_autograd_tutorials_loss_leads_straight_to_z():
    """`loss.grad_fn.next_functions[0][0] is z.grad_fn`, as the tutorial's picture shows."""
    for lib in (runtime, torch):
        x, y = lib.ones(5), lib.zeros(3)
        w = lib.randn(5, 3, requires_grad=True)
        b = lib.randn(3, requires_grad=True)
        z = lib.matmul(x, w) + b
        loss = lib.nn.functional.binary_cross_entropy_with_logits(z, y)
        assert type(loss.grad_fn).__name__ == "BinaryCrossEntropyWithLogitsBackward0"
        assert loss.grad_fn.next_functions[0][0] is z.grad_fn


def test_the_blitz_chain_from_mse_loss_back_through_linear():
    """The neural-networks tutorial's walk: loss.grad_fn, then its first edge twice."""
    names = {}
    for lib in (runtime, torch):
        net = lib.nn.Sequential(lib.nn.Linear(6, 4), lib.nn.ReLU(), lib.nn.Linear(4, 2))
        loss = lib.nn.MSELoss()(net(lib.ones(1, 6)), lib.zeros(1, 2))
        names[lib] = [type(loss.grad_fn).__name__,
                      type(loss.grad_fn.next_functions[0][0]).__name__,
                      type(loss.grad_fn.next_functions[0][0].next_functions[0][0]).__name__]
    assert names[runtime] == names[torch] == ["MseLossBackward0", "AddmmBackward0",
                                               "AccumulateGrad"]


def test_a_traced_linear_and_loss_are_their_primitives():
    """The compiler sees the decomposition: matmul, add, and the loss's elementwise ops."""
    compiler = pytest.importorskip("compiler")
    model = runtime.nn.Linear(3, 2)
    graph = compiler.trace(lambda x, y: runtime.nn.functional.mse_loss(model(x), y),
                           (runtime.randn(4, 3), runtime.randn(4, 2)))
    ops = {node.op_name for node in graph.nodes}
    assert {"matmul", "add", "permute"} <= ops
    assert not ops & {"addmm", "mse_loss", "t"}
