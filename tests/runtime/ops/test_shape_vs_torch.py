"""Shape ops (runtime/ops/shape.py and the composites in runtime/_functions.py) against PyTorch:
reshape, view, flatten, unflatten, squeeze, unsqueeze, transpose, t, T, mT, permute, expand,
broadcast_to, cat, stack, clone, contiguous, to/dtype conversion: values, which results share
memory, gradients, and errors."""

import numpy as np
import pytest

import runtime

torch = pytest.importorskip("torch")

DATA = np.arange(24, dtype=np.float64).reshape(2, 3, 4)


def both(data=DATA, dtype="float64", requires_grad=False):
    return (runtime.tensor(data, dtype=getattr(runtime, dtype), requires_grad=requires_grad),
            torch.tensor(data, dtype=getattr(torch, dtype), requires_grad=requires_grad))


def assert_matches(ours, theirs):
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())


SHAPE_FUNCTIONS = {
    "reshape(4, 6)": lambda t: t.reshape(4, 6),
    "reshape((-1,))": lambda t: t.reshape((-1,)),
    "reshape([3, -1, 2])": lambda t: t.reshape([3, -1, 2]),
    "view(6, 4)": lambda t: t.view(6, 4),
    "view(-1)": lambda t: t.view(-1),
    "view_as": lambda t: t.view_as(t.reshape(4, 6)),
    "flatten()": lambda t: t.flatten(),
    "flatten(1)": lambda t: t.flatten(1),
    "flatten(0, 1)": lambda t: t.flatten(0, 1),
    "flatten(-2, -1)": lambda t: t.flatten(-2, -1),
    "unflatten(2, (2, 2))": lambda t: t.unflatten(2, (2, 2)),
    "unflatten(-1, (2, -1))": lambda t: t.unflatten(-1, (2, -1)),
    "unsqueeze(0)": lambda t: t.unsqueeze(0),
    "unsqueeze(-1)": lambda t: t.unsqueeze(-1),
    "unsqueeze(2)": lambda t: t.unsqueeze(2),
    "squeeze()": lambda t: t.unsqueeze(1).unsqueeze(0).squeeze(),
    "squeeze(1)": lambda t: t.unsqueeze(1).squeeze(1),
    "squeeze(0) of size 2": lambda t: t.squeeze(0),
    "squeeze((0, 2))": lambda t: t.unsqueeze(0).unsqueeze(2).squeeze((0, 2)),
    "transpose(0, 2)": lambda t: t.transpose(0, 2),
    "transpose(-1, 1)": lambda t: t.transpose(-1, 1),
    "swapaxes(0, 1)": lambda t: t.swapaxes(0, 1),
    "permute(2, 0, 1)": lambda t: t.permute(2, 0, 1),
    "permute([1, 2, 0])": lambda t: t.permute([1, 2, 0]),
    "permute(-1, 0, 1)": lambda t: t.permute(-1, 0, 1),
    "mT": lambda t: t.mT,
    "t() of 2-D": lambda t: t[0].t(),
    "T of 2-D": lambda t: t[0].T,
    "expand(2, 2, 3, 4)": lambda t: t.expand(2, 2, 3, 4),
    "expand(-1, 3, 4) of size 1": lambda t: t[:, :1].expand(-1, 3, 4),
    "expand_as": lambda t: t[:1].expand_as(t),
    "broadcast_to": lambda t: (runtime if isinstance(t, runtime.Tensor) else torch).broadcast_to(
        t[:, :1], (2, 5, 4)),
    "clone": lambda t: t.clone(),
    "contiguous of transpose": lambda t: t.transpose(0, 1).contiguous(),
    "reshape of transpose": lambda t: t.transpose(0, 1).reshape(-1),
}


@pytest.mark.parametrize("name", SHAPE_FUNCTIONS)
def test_shape_function_matches_torch_with_gradients(name):
    fn = SHAPE_FUNCTIONS[name]
    x, tx = both(requires_grad=True)
    out, tout = fn(x), fn(tx)
    assert_matches(out, tout)
    weights = np.random.default_rng(0).standard_normal(tuple(tout.shape))
    (out * runtime.tensor(weights)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", ["view(6, 4)", "reshape(4, 6)", "flatten(1)", "unsqueeze(0)",
                                  "transpose(0, 2)", "permute(2, 0, 1)", "expand(2, 2, 3, 4)",
                                  "mT"])
def test_views_share_memory_with_their_base(name):
    x = runtime.tensor(DATA)
    view = SHAPE_FUNCTIONS[name](x)
    x.add_(1000)  # an in-place change of the base shows in the view
    assert view.numpy().min() >= 1000


def test_clone_and_contiguous_copy():
    x = runtime.tensor(DATA)
    copy = x.clone()
    transposed = x.transpose(0, 1)
    contiguous = transposed.contiguous()
    assert not transposed.is_contiguous() and contiguous.is_contiguous()
    assert x.contiguous() is x
    x.add_(1000)
    assert copy.numpy().max() < 1000 and contiguous.numpy().max() < 1000


def test_view_of_non_contiguous_memory_is_refused_like_torch():
    x, tx = both()
    with pytest.raises(RuntimeError) as theirs:
        tx.transpose(0, 1).view(-1)
    with pytest.raises(RuntimeError) as ours:
        x.transpose(0, 1).view(-1)
    assert str(ours.value) == str(theirs.value)


ERRORS = {
    "reshape to a wrong size": lambda t: t.reshape(5, 5),
    "two -1 sizes": lambda t: t.reshape(-1, -1),
    "-1 that does not divide": lambda t: t.view(5, -1),
    "transpose out of range": lambda t: t.transpose(0, 3),
    "permute with too few dims": lambda t: t.permute(0, 1),
    "permute with a repeated dim": lambda t: t.permute(0, 0, 1),
    "expand a non-singleton dim": lambda t: t.expand(2, 5, 4),
    "expand to fewer dims": lambda t: t.expand(3, 4),
    "unsqueeze out of range": lambda t: t.unsqueeze(4),
    "flatten with start after end": lambda t: t.flatten(2, 1),
    "t() of 3-D": lambda t: t.t(),
}


@pytest.mark.parametrize("name", ERRORS)
def test_shape_errors_match_torch(name):
    x, tx = both()
    with pytest.raises((RuntimeError, IndexError)) as theirs:
        ERRORS[name](tx)
    with pytest.raises(type(theirs.value)) as ours:
        ERRORS[name](x)
    assert str(ours.value) == str(theirs.value).replace("torch.", "runtime.")


def test_cat_and_stack_match_torch():
    a, ta = both(DATA[:, :1], requires_grad=True)
    b, tb = both(DATA[:, 1:], requires_grad=True)
    out, tout = runtime.cat([a, b], dim=1), torch.cat([ta, tb], dim=1)
    assert_matches(out, tout)
    assert_matches(runtime.concat((a, b), -2), torch.concat((ta, tb), -2))
    s, ts = runtime.stack([a, a], dim=1), torch.stack([ta, ta], dim=1)
    assert_matches(s, ts)
    assert_matches(runtime.stack([a, a], dim=-1), torch.stack([ta, ta], dim=-1))
    (out.sum() + s.sum() * 2).backward()
    (tout.sum() + ts.sum() * 2).backward()
    assert_matches(a.grad, ta.grad)
    assert_matches(b.grad, tb.grad)


def test_cat_promotes_dtypes_like_torch():
    assert_matches(runtime.cat([runtime.ones(2), runtime.zeros(2, dtype=runtime.int64)]),
                   torch.cat([torch.ones(2), torch.zeros(2, dtype=torch.int64)]))


def test_cat_and_stack_errors():
    with pytest.raises(RuntimeError, match="Sizes of tensors must match except in dimension 1"):
        runtime.cat([runtime.ones(2, 3), runtime.ones(3, 3)], dim=1)
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        runtime.stack([runtime.ones(2), runtime.ones(3)])
    with pytest.raises(RuntimeError, match="non-empty"):
        runtime.cat([])


@pytest.mark.parametrize("target", ["float32", "float64", "int64", "int32", "bool", "float16"])
def test_dtype_conversions_match_torch(target):
    data = np.array([[-1.5, 0.0, 2.7]])
    x, tx = both(data)
    assert_matches(x.to(getattr(runtime, target)), tx.to(getattr(torch, target)))
    assert_matches(x.to(dtype=getattr(runtime, target)), tx.to(dtype=getattr(torch, target)))
    method = {"float32": "float", "float64": "double", "int64": "long", "int32": "int",
              "bool": "bool", "float16": "half"}[target]
    assert_matches(getattr(x, method)(), getattr(tx, method)())


def test_to_same_dtype_returns_the_tensor_itself_and_copy_makes_a_copy():
    x = runtime.ones(2)
    assert x.to(runtime.float32) is x and x.to("cpu") is x and x.cpu() is x
    copy = x.to(runtime.float32, copy=True)
    assert copy is not x and runtime.equal(copy, x)
    with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
        x.to("cuda")


def test_dtype_conversion_passes_gradients_back_in_the_source_dtype():
    x, tx = both([1.0, 2.0], "float32", requires_grad=True)
    out, tout = x.double() * 3, tx.double() * 3
    out.sum().backward()
    tout.sum().backward()
    assert_matches(x.grad, tx.grad)
    assert out.grad_fn.next_functions[0][0].name() == "ToCopyBackward0"


SHAPE_GRAPHS = {
    "reshape": lambda t: t.reshape(6),
    "view": lambda t: t.view(3, 2),
    "transpose": lambda t: t.transpose(0, 1),
    "permute": lambda t: t.unsqueeze(0).permute(1, 2, 0),
    "expand": lambda t: t[:1].expand(4, 3),
    "cat": lambda t: (runtime if isinstance(t, runtime.Tensor) else torch).cat([t, t]),
    "clone": lambda t: t.clone(),
    "select": lambda t: t[0],
    "slice": lambda t: t[1:],
}


@pytest.mark.parametrize("name", SHAPE_GRAPHS)
def test_shape_grad_fn_names_match_torch(name):
    x, tx = both(DATA[0, :2, :3], requires_grad=True)
    out, tout = SHAPE_GRAPHS[name](x), SHAPE_GRAPHS[name](tx)
    assert out.grad_fn.name() == type(tout.grad_fn).__name__


def test_size_arguments_as_varargs_tuple_or_list():
    x = runtime.tensor(DATA)
    assert x.reshape(6, 4).shape == x.reshape((6, 4)).shape == x.reshape([6, 4]).shape
    assert x.permute(2, 1, 0).shape == x.permute((2, 1, 0)).shape == (4, 3, 2)
    assert x[:, :1].expand(2, 5, 4).shape == x[:, :1].expand((2, 5, 4)).shape
