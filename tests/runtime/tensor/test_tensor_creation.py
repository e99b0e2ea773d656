"""Making tensors (runtime/_creation.py) and random numbers (runtime/_random.py): dtypes inferred
as PyTorch infers them, sizes as varargs / tuple / list / Size, requires_grad=, errors for bad
sizes and data, memory sharing of from_numpy / as_tensor, and reproducible draws."""

import numpy as np
import pytest

import runtime


def describe(t):
    return t.dtype.name, tuple(t.shape), t.tolist()


# ----- from data ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data, dtype, shape", [
    ([[1, 2], [3, 4]], "int64", (2, 2)),
    ([1.0, 2], "float32", (2,)),
    ([True, False], "bool", (2,)),
    ([True, 2], "int64", (2,)),
    (3, "int64", ()),
    (2.5, "float32", ()),
    ([], "float32", (0,)),
    ([[], []], "float32", (2, 0)),
    (np.ones(2, np.float32), "float32", (2,)),
    (np.ones(2, np.int32), "int32", (2,)),
    (np.float64(2.5), "float64", ()),
    (np.int16(2), "int16", ()),
    ((1, 2, 3), "int64", (3,)),
])
def test_tensor_infers_dtype_and_shape_like_pytorch(data, dtype, shape):
    t = runtime.tensor(data)
    assert t.dtype.name == dtype and tuple(t.shape) == shape
    assert t.is_leaf and not t.requires_grad


def test_tensor_from_tensors_and_with_a_dtype():
    assert describe(runtime.tensor([runtime.tensor(1), runtime.tensor(2)])) == ("int64", (2,),
                                                                                [1, 2])
    assert describe(runtime.tensor([1, 2], dtype=runtime.float64)) == ("float64", (2,),
                                                                       [1.0, 2.0])
    source = runtime.ones(2, requires_grad=True)
    copy = runtime.tensor(source.detach())
    assert copy.tolist() == [1.0, 1.0] and not copy.requires_grad


def test_tensor_copies_its_data():
    array = np.zeros(3)
    t = runtime.tensor(array)
    array[0] = 5
    assert t.tolist() == [0.0, 0.0, 0.0]


def test_tensor_refuses_ragged_and_non_numeric_data():
    with pytest.raises(ValueError, match="expected sequence of length 2 at dim 1 \\(got 1\\)"):
        runtime.tensor([[1, 2], [3]])
    with pytest.raises(TypeError):
        runtime.tensor(["a"])


def test_from_numpy_and_as_tensor_share_memory():
    array = np.arange(3.0)
    shared = runtime.from_numpy(array)
    also_shared = runtime.as_tensor(array)
    array[0] = 7
    assert shared.tolist()[0] == 7 and also_shared.tolist()[0] == 7
    shared.add_(1)
    assert array[0] == 8
    assert runtime.as_tensor(array, dtype=runtime.float32).dtype == runtime.float32
    t = runtime.ones(2)
    assert runtime.as_tensor(t) is t
    with pytest.raises(TypeError, match="expected np.ndarray"):
        runtime.from_numpy([1, 2])
    with pytest.raises(TypeError, match="can't convert np.ndarray of type complex64"):
        runtime.from_numpy(np.ones(2, np.complex64))


# ----- filled ------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [runtime.zeros, runtime.ones, runtime.empty, runtime.rand,
                                  runtime.randn])
def test_sizes_as_varargs_tuple_list_or_size(make):
    for size in [(2, 3), ((2, 3),), ([2, 3],), (runtime.Size([2, 3]),)]:
        t = make(*size)
        assert t.shape == (2, 3) and t.dtype == runtime.float32
    assert make(()).shape == () and make(0).shape == (0,)
    assert make(2, dtype=runtime.float64).dtype == runtime.float64
    assert make(2, requires_grad=True).requires_grad


@pytest.mark.parametrize("make", [runtime.zeros, runtime.ones, runtime.empty, runtime.rand,
                                  runtime.randn])
def test_negative_sizes_are_refused(make):
    with pytest.raises(RuntimeError, match="Trying to create tensor with negative dimension -1: "
                                           "\\[2, -1\\]"):
        make(2, -1)


def test_zeros_ones_full_eye_values():
    assert describe(runtime.zeros(2, dtype=runtime.int64)) == ("int64", (2,), [0, 0])
    assert describe(runtime.ones(2, dtype=runtime.bool)) == ("bool", (2,), [True, True])
    assert describe(runtime.full((2,), 7)) == ("int64", (2,), [7, 7])
    assert describe(runtime.full([2], 7.0)) == ("float32", (2,), [7.0, 7.0])
    assert describe(runtime.full((1,), False)) == ("bool", (1,), [False])
    assert describe(runtime.full((2,), 7, dtype=runtime.float64)) == ("float64", (2,),
                                                                     [7.0, 7.0])
    assert describe(runtime.eye(2)) == ("float32", (2, 2), [[1.0, 0.0], [0.0, 1.0]])
    assert describe(runtime.eye(2, 3, dtype=runtime.int64)) == ("int64", (2, 3),
                                                               [[1, 0, 0], [0, 1, 0]])


@pytest.mark.parametrize("args, kwargs, expected", [
    ((5,), {}, ("int64", (5,), [0, 1, 2, 3, 4])),
    ((2, 7, 2), {}, ("int64", (3,), [2, 4, 6])),
    ((5, 0, -2), {}, ("int64", (3,), [5, 3, 1])),
    ((0.0, 1.0, 0.25), {}, ("float32", (4,), [0.0, 0.25, 0.5, 0.75])),
    ((2.5,), {}, ("float32", (3,), [0.0, 1.0, 2.0])),
    ((3,), {"dtype": runtime.float64}, ("float64", (3,), [0.0, 1.0, 2.0])),
    ((runtime.tensor(3),), {}, ("int64", (3,), [0, 1, 2])),
])
def test_arange(args, kwargs, expected):
    assert describe(runtime.arange(*args, **kwargs)) == expected


def test_arange_errors():
    with pytest.raises(RuntimeError, match="step must be nonzero"):
        runtime.arange(0, 1, 0)
    with pytest.raises(RuntimeError, match="upper bound and lower bound inconsistent with step "
                                           "sign"):
        runtime.arange(0, 5, -1)


def test_linspace():
    assert describe(runtime.linspace(0, 1, 5)) == ("float32", (5,), [0.0, 0.25, 0.5, 0.75, 1.0])
    assert runtime.linspace(0, 1, 3, dtype=runtime.float64).dtype == runtime.float64


def test_like_functions_take_shape_and_dtype_from_their_input():
    source = runtime.ones(2, 3, dtype=runtime.int32, requires_grad=False)
    assert describe(runtime.zeros_like(source)) == ("int32", (2, 3), [[0] * 3] * 2)
    assert describe(runtime.ones_like(source, dtype=runtime.float64))[:2] == ("float64", (2, 3))
    assert describe(runtime.full_like(source, 2.7)) == ("int32", (2, 3), [[2] * 3] * 2)
    assert runtime.empty_like(source).shape == (2, 3)
    floats = runtime.ones(4, requires_grad=True)
    assert not runtime.zeros_like(floats).requires_grad
    assert runtime.zeros_like(floats, requires_grad=True).requires_grad
    assert runtime.rand_like(floats).shape == (4,) and runtime.randn_like(floats).shape == (4,)


def test_new_methods_keep_the_dtype():
    t = runtime.ones(2, dtype=runtime.float64)
    assert describe(t.new_zeros(3)) == ("float64", (3,), [0.0] * 3)
    assert describe(t.new_ones((1, 2))) == ("float64", (1, 2), [[1.0, 1.0]])
    assert describe(t.new_full((2,), 3)) == ("float64", (2,), [3.0, 3.0])
    assert describe(t.new_tensor([1, 2])) == ("float64", (2,), [1.0, 2.0])
    assert t.new_empty(4).shape == (4,)


def test_device_must_be_the_cpu():
    assert runtime.zeros(2, device="cpu").device == runtime.device("cpu")
    with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
        runtime.zeros(2, device="cuda")


# ----- random ------------------------------------------------------------------------------------

def draws():
    return [runtime.rand(3).tolist(), runtime.randn(2, 2).tolist(),
            runtime.randint(0, 10, (4,)).tolist(), runtime.randperm(5).tolist(),
            runtime.normal(1.0, 2.0, (2,)).tolist(), runtime.empty(3).uniform_(-1, 1).tolist(),
            runtime.empty(2).normal_(0, 3).tolist(), runtime.rand_like(runtime.ones(2)).tolist()]


def test_manual_seed_makes_draws_reproducible():
    runtime.manual_seed(123)
    first = draws()
    runtime.manual_seed(123)
    assert draws() == first
    runtime.manual_seed(124)
    assert draws() != first
    assert runtime.initial_seed() == 124


def test_a_generator_draws_independently_of_the_default_one():
    g = runtime.Generator().manual_seed(7)
    expected = runtime.randn(3, generator=g).tolist()
    runtime.manual_seed(0)
    runtime.rand(100)  # the default generator's draws do not affect g's
    g.manual_seed(7)
    assert runtime.randn(3, generator=g).tolist() == expected
    state = g.get_state()
    after = runtime.rand(2, generator=g).tolist()
    g.set_state(state)
    assert runtime.rand(2, generator=g).tolist() == after


def test_random_values_lie_in_their_ranges():
    runtime.manual_seed(0)
    u = runtime.rand(1000)
    assert 0 <= u.min().item() and u.max().item() < 1
    r = runtime.randint(3, 5, (1000,))
    assert set(r.tolist()) == {3, 4} and r.dtype == runtime.int64
    assert runtime.randint(5, (3,)).max().item() < 5
    assert sorted(runtime.randperm(6).tolist()) == list(range(6))
    n = runtime.randn(10000, dtype=runtime.float64)
    assert abs(n.mean().item()) < 0.05 and abs(n.std().item() - 1) < 0.05


def test_random_floats_need_a_floating_dtype():
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        runtime.rand(2, dtype=runtime.int64)
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        runtime.randn(2, dtype=runtime.int64)
