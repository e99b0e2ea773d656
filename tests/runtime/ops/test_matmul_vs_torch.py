"""The matrix product (runtime/ops/matmul.py) in all of torch.matmul's cases, against PyTorch:
1-D x 1-D, 2-D x 1-D, 1-D x 2-D, 2-D x 2-D, batched and broadcast batches; values, gradients,
second derivatives, grad_fn names, and the exact error messages for shapes that do not fit."""

import numpy as np
import pytest

import runtime

torch = pytest.importorskip("torch")

SHAPES = [
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3, 4)),
    ((5, 2, 3), (3,)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((2, 1, 2, 3), (5, 3, 4)),
    ((1, 2, 3), (4, 1, 3, 2)),
    ((0, 3), (3, 2)),
    ((2, 0), (0, 3)),
]


def pair(shape, seed, dtype="float64", requires_grad=True):
    data = np.random.default_rng(seed).standard_normal(shape)
    return (runtime.tensor(data, dtype=getattr(runtime, dtype), requires_grad=requires_grad),
            torch.tensor(data, dtype=getattr(torch, dtype), requires_grad=requires_grad))


def assert_matches(ours, theirs, rtol=1e-12):
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol,
                               atol=rtol)


@pytest.mark.parametrize("shape_a, shape_b", SHAPES, ids=str)
def test_matmul_values_and_gradients_match_torch(shape_a, shape_b):
    a, ta = pair(shape_a, 0)
    b, tb = pair(shape_b, 1)
    out, tout = a @ b, ta @ tb
    assert_matches(out, tout)
    assert_matches(runtime.matmul(a, b), torch.matmul(ta, tb))
    v = np.random.default_rng(2).standard_normal(tuple(tout.shape))
    ga, gb = runtime.autograd.grad(out, [a, b], runtime.tensor(v), create_graph=True)
    tga, tgb = torch.autograd.grad(tout, [ta, tb], torch.tensor(v), create_graph=True)
    assert_matches(ga, tga)
    assert_matches(gb, tgb)
    # second derivative: d(sum(ga * ga)) / db exercises the vjp of the vjp
    (gga,) = runtime.autograd.grad((ga * ga).sum(), [b])
    (tgga,) = torch.autograd.grad((tga * tga).sum(), [tb])
    assert_matches(gga, tgga)


@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_matmul_in_float32_and_integers(dtype):
    a, ta = pair((4, 3), 0, "float32", requires_grad=False)
    b, tb = pair((3, 2), 1, "float32", requires_grad=False)
    if dtype == "int64":
        a, ta, b, tb = a.long(), ta.long(), b.long(), tb.long()
    assert_matches(a @ b, ta @ tb, rtol=1e-6)


def test_mm_bmm_mv_dot_match_torch():
    a, ta = pair((2, 3), 0)
    b, tb = pair((3, 4), 1)
    v, tv = pair((3,), 2)
    ba, tba = pair((5, 2, 3), 3)
    bb, tbb = pair((5, 3, 4), 4)
    assert_matches(runtime.mm(a, b), torch.mm(ta, tb))
    assert_matches(a.mm(b), ta.mm(tb))
    assert_matches(runtime.mv(a, v), torch.mv(ta, tv))
    assert_matches(runtime.dot(v, v), torch.dot(tv, tv))
    assert_matches(runtime.bmm(ba, bb), torch.bmm(tba, tbb))
    with pytest.raises(RuntimeError):
        runtime.mm(ba, b)
    with pytest.raises(RuntimeError):
        runtime.bmm(a, b)
    with pytest.raises(RuntimeError):
        runtime.dot(a, v)


MISMATCHED = [
    ((3,), (4,)),
    ((2, 3), (4,)),
    ((5, 2, 3), (4,)),
    ((3,), (4, 2)),
    ((2, 3), (4, 5)),
    ((5, 2, 3), (4, 2)),
    ((0, 3), (4, 2)),
    ((2, 2, 3), (3, 4, 2)),  # batch sizes that do not broadcast, reported first
]


@pytest.mark.parametrize("shape_a, shape_b", MISMATCHED, ids=str)
def test_shapes_that_do_not_fit_give_torchs_error_message(shape_a, shape_b):
    with pytest.raises(RuntimeError) as theirs:
        torch.ones(shape_a) @ torch.ones(shape_b)
    with pytest.raises(RuntimeError) as ours:
        runtime.ones(shape_a) @ runtime.ones(shape_b)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("shape_a, shape_b", [((5, 2, 3), (5, 4, 2)), ((3,), (5, 2, 3)),
                                              ((4, 3), (2, 2, 5))], ids=str)
def test_batched_shapes_that_do_not_fit_name_both_shapes(shape_a, shape_b):
    # PyTorch's message here ("Expected size for first two dimensions of batch2 tensor ...")
    # names neither shape; ours names both, in the words of the 2-D case.
    a, b = "x".join(map(str, shape_a)), "x".join(map(str, shape_b))
    with pytest.raises(RuntimeError, match=f"^mat1 and mat2 shapes cannot be multiplied "
                                           f"\\({a} and {b}\\)$"):
        runtime.ones(shape_a) @ runtime.ones(shape_b)


def test_matmul_of_a_0d_tensor_or_mixed_dtypes_is_refused_like_torch():
    for make in (lambda lib: lib.ones(()) @ lib.ones(3),
                 lambda lib: lib.ones(2, 3) @ lib.ones(3, 2, dtype=lib.float64)):
        with pytest.raises(RuntimeError) as theirs:
            make(torch)
        with pytest.raises(RuntimeError) as ours:
            make(runtime)
        assert str(ours.value) == str(theirs.value)


def name_of(node):
    """A grad_fn's class name, PyTorch's or ours; None for a missing edge."""
    if node is None:
        return None
    return node.name() if isinstance(node, runtime.autograd.Node) else type(node).__name__


@pytest.mark.parametrize("shape_a, shape_b, name", [
    ((2, 3), (3, 4), "MmBackward0"), ((2, 3), (3,), "MvBackward0"),
    ((3,), (3,), "DotBackward0")])
def test_grad_fn_names_match_torch(shape_a, shape_b, name):
    a, ta = pair(shape_a, 0)
    b, tb = pair(shape_b, 1)
    assert name_of((a @ b).grad_fn) == name_of((ta @ tb).grad_fn) == name


def test_bmm_records_bmm_backward():
    a, ta = pair((2, 2, 3), 0)
    b, tb = pair((2, 3, 4), 1)
    assert name_of(runtime.bmm(a, b).grad_fn) == name_of(torch.bmm(ta, tb).grad_fn)


def test_tutorial_layer_graph_matches_torch():
    """z = x @ w + b from the autograd tutorial: AddBackward0 -> (MmBackward0, AccumulateGrad)."""
    x, tx = pair((4, 5), 0, requires_grad=False)
    w, tw = pair((5, 3), 1)
    b, tb = pair((3,), 2)
    z, tz = runtime.matmul(x, w) + b, torch.matmul(tx, tw) + tb
    for node, tnode in [(z.grad_fn, tz.grad_fn),
                        (z.grad_fn.next_functions[0][0], tz.grad_fn.next_functions[0][0])]:
        assert name_of(node) == name_of(tnode)
        assert [name_of(n) for n, _ in node.next_functions] == \
            [name_of(n) for n, _ in tnode.next_functions]
    assert [name_of(n) for n, _ in z.grad_fn.next_functions] == ["MmBackward0", "AccumulateGrad"]
