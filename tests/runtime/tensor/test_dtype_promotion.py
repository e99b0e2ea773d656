"""Type promotion (runtime/_dtype.py) against torch.result_type for every pair of dtypes, with
tensors that have dimensions, 0-d tensors and Python numbers, as operands of arithmetic."""

import itertools

import pytest

import runtime
from runtime import _dtype

torch = pytest.importorskip("torch")

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
NUMBERS = [True, 3, -2, 2.5]


def make(lib, name, zero_dim):
    shape = () if zero_dim else (2,)
    return lib.ones(shape, dtype=getattr(lib, name))


@pytest.mark.parametrize("a, b", list(itertools.product(NAMES, NAMES)))
def test_promote_types_matches_torch(a, b):
    ours = _dtype.promote_types(getattr(runtime, a), getattr(runtime, b))
    assert ours.name == str(torch.promote_types(getattr(torch, a), getattr(torch, b)))[6:]


@pytest.mark.parametrize("a, b", list(itertools.product(NAMES, NAMES)))
@pytest.mark.parametrize("zero_dim_a, zero_dim_b", [(False, False), (False, True), (True, True)])
def test_result_dtype_of_two_tensors_matches_torch(a, b, zero_dim_a, zero_dim_b):
    expected = torch.result_type(make(torch, a, zero_dim_a), make(torch, b, zero_dim_b))
    x, y = make(runtime, a, zero_dim_a), make(runtime, b, zero_dim_b)
    assert runtime.result_type(x, y).name == str(expected)[6:]
    if "bool" not in (a, b):  # `*` of two bools is fine, but `-` is refused, as in torch
        assert (x * y).dtype.name == str(expected)[6:]
        assert (y * x).dtype.name == str(expected)[6:]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("number", NUMBERS, ids=repr)
@pytest.mark.parametrize("zero_dim", [False, True])
def test_result_dtype_of_a_tensor_and_a_number_matches_torch(name, number, zero_dim):
    expected = str(torch.result_type(make(torch, name, zero_dim), number))[6:]
    x = make(runtime, name, zero_dim)
    assert runtime.result_type(x, number).name == expected
    assert (x * number).dtype.name == expected
    assert (number * x).dtype.name == expected


@pytest.mark.parametrize("default", ["float32", "float64"])
def test_python_floats_follow_the_default_dtype(default):
    runtime.set_default_dtype(getattr(runtime, default))
    assert runtime.get_default_dtype() == getattr(runtime, default)
    assert (runtime.arange(3) * 0.5).dtype.name == default
    assert runtime.tensor([1.5]).dtype.name == default
    assert runtime.ones(2).dtype.name == default
    assert (runtime.ones(2, dtype=runtime.float32) * 0.5).dtype == runtime.float32


def test_set_default_dtype_refuses_integer_types():
    with pytest.raises(TypeError, match="only floating-point types"):
        runtime.set_default_dtype(runtime.int64)


def test_dtype_objects_print_and_compare_like_torchs():
    assert repr(runtime.float32) == "runtime.float32" and str(runtime.int64) == "runtime.int64"
    assert runtime.float is runtime.float32 and runtime.double is runtime.float64
    assert runtime.long is runtime.int64 and runtime.int is runtime.int32
    assert runtime.half is runtime.float16 and runtime.short is runtime.int16
    assert runtime.float32.is_floating_point and not runtime.int64.is_floating_point
    assert runtime.float64.itemsize == 8 and runtime.bool.itemsize == 1
    assert runtime.int8.is_signed and not runtime.uint8.is_signed


def test_dtypes_survive_pickling():
    import pickle

    for name in NAMES:
        d = getattr(runtime, name)
        assert pickle.loads(pickle.dumps(d)) is d
