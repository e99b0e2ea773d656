"""The Tensor's metadata and conversions (runtime/_tensor.py, runtime/_tensor_methods.py):
shape, size(), dim(), numel, dtype, item, tolist, numpy (shared memory), Python number protocols,
len/iter, strides and contiguity, type(), repr, and the numpy interplay."""

import numpy as np
import pytest

import runtime


def test_shape_size_dim_numel():
    t = runtime.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and isinstance(t.shape, runtime.Size)
    assert repr(t.shape) == "runtime.Size([2, 3, 4])"
    assert t.size() == t.shape and t.size(1) == 3 and t.size(-1) == 4
    assert t.dim() == t.ndim == 3 and t.numel() == 24 and runtime.numel(t) == 24
    assert t.shape.numel() == 24
    with pytest.raises(IndexError, match="Dimension out of range \\(expected to be in range of "
                                         "\\[-3, 2\\], but got 3\\)"):
        t.size(3)


def test_dtype_device_and_type_names():
    t = runtime.ones(2, dtype=runtime.float64)
    assert t.dtype == runtime.float64 and t.device.type == "cpu" and t.is_floating_point()
    assert t.type() == "runtime.DoubleTensor"
    assert runtime.ones(1).type() == "runtime.FloatTensor"
    assert runtime.arange(2).type() == "runtime.LongTensor"
    assert runtime.ones(1, dtype=runtime.bool).type() == "runtime.BoolTensor"
    assert t.type(runtime.int64).dtype == runtime.int64
    assert runtime.ones(1).type_as(t).dtype == runtime.float64
    assert t.element_size() == 8 and runtime.ones(1, dtype=runtime.int16).element_size() == 2


def test_item_and_tolist():
    assert runtime.tensor(2.5).item() == 2.5 and isinstance(runtime.tensor(2.5).item(), float)
    assert runtime.tensor([7]).item() == 7 and isinstance(runtime.tensor([7]).item(), int)
    assert runtime.tensor([[True]]).item() is True
    assert runtime.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    with pytest.raises(RuntimeError, match="a Tensor with 2 elements cannot be converted to "
                                           "Scalar"):
        runtime.tensor([1, 2]).item()


def test_numpy_shares_memory_and_refuses_tensors_that_require_grad():
    t = runtime.zeros(3)
    array = t.numpy()
    array[0] = 4
    assert t.tolist() == [4.0, 0.0, 0.0]
    w = runtime.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad. "
                                           "Use tensor.detach\\(\\).numpy\\(\\) instead."):
        w.numpy()
    assert w.detach().numpy().tolist() == [0.0, 0.0]
    assert np.asarray(runtime.ones(2)).tolist() == [1.0, 1.0]
    assert np.asarray(runtime.ones(2), dtype=np.int64).dtype == np.int64


def test_python_number_protocols():
    assert float(runtime.tensor([2.5])) == 2.5 and int(runtime.tensor(3.7)) == 3
    assert bool(runtime.tensor([1])) and not bool(runtime.tensor(0.0))
    assert [10, 20, 30][runtime.tensor(1)] == 20  # __index__
    assert f"{runtime.tensor(2.5):.2f}" == "2.50"
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is "
                                           "ambiguous"):
        bool(runtime.ones(2))
    with pytest.raises(TypeError):
        [1, 2][runtime.tensor(1.0)]


def test_len_and_iteration_go_over_the_first_dimension():
    t = runtime.arange(6).reshape(3, 2)
    assert len(t) == 3
    rows = list(t)
    assert [r.tolist() for r in rows] == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(runtime.tensor(1))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(runtime.tensor(1))


def test_strides_and_contiguity():
    t = runtime.zeros(2, 3)
    assert t.stride() == (3, 1) and t.stride(0) == 3 and t.is_contiguous()
    transposed = t.t()
    assert transposed.stride() == (1, 3) and not transposed.is_contiguous()
    assert transposed.contiguous().is_contiguous()


def test_transposes():
    t = runtime.arange(24).reshape(2, 3, 4)
    assert t.mT.shape == (2, 4, 3) and t.T.shape == (4, 3, 2)
    assert runtime.arange(6).reshape(2, 3).T.tolist() == [[0, 3], [1, 4], [2, 5]]
    assert runtime.t(runtime.arange(3)).shape == (3,)
    with pytest.raises(RuntimeError, match="t\\(\\) expects a tensor with <= 2 dimensions, but "
                                           "self is 3D"):
        t.t()


def test_the_class_makes_default_dtype_tensors_as_pytorchs_legacy_constructor():
    assert runtime.Tensor([1, 2]).dtype == runtime.float32  # more in test_autograd_as_torch...
    with pytest.raises(TypeError, match="invalid combination of arguments"):
        runtime.Tensor([1], [2])
    assert runtime.is_tensor(runtime.ones(1)) and not runtime.is_tensor(np.ones(1))


def test_repr_shows_dtype_and_autograd_state():
    assert repr(runtime.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(runtime.tensor([1, 2], dtype=runtime.int32)) == \
        "tensor([1, 2], dtype=runtime.int32)"
    w = runtime.tensor([1.0], requires_grad=True)
    assert repr(w) == "tensor([1.], requires_grad=True)"
    assert repr(w * 2) == "tensor([2.], grad_fn=<MulBackward0>)"


def test_tensors_hash_by_identity_and_work_as_dict_keys():
    a, b = runtime.ones(1), runtime.ones(1)
    table = {a: "a", b: "b"}
    assert table[a] == "a" and len(table) == 2


def test_numpy_scalars_on_the_left_use_our_operators():
    t = runtime.ones(2)
    result = np.float64(2.0) * t
    assert isinstance(result, runtime.Tensor) and result.tolist() == [2.0, 2.0]


def test_requires_grad_repr_roundtrip_of_a_detached_copy():
    w = runtime.tensor([1.0, 2.0], requires_grad=True)
    assert w.detach().requires_grad is False and w.data.tolist() == [1.0, 2.0]
    w.data = runtime.tensor([3.0, 4.0])
    assert w.tolist() == [3.0, 4.0] and w.requires_grad
