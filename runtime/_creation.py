"""Making tensors: from data (tensor, as_tensor, from_numpy), filled (zeros, ones, full, empty,
eye, arange, linspace), random (rand, randn, randint, randperm, normal), and the *_like forms.

Every function takes PyTorch's arguments (`dtype=`, `device=`, `requires_grad=`, `generator=`);
a device other than the CPU raises PyTorch's error for a build without it (runtime/device.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime import _dtype
from runtime._device import check_device
from runtime._random import Generator, numpy_rng
from runtime._tensor import Tensor


def _shape(size: Sequence[Any]) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = tuple(int(s) for s in size)
    if any(s < 0 for s in shape):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(shape)}: "
                           f"{list(shape)}")
    return shape


def _finish(data: np.ndarray, requires_grad: bool) -> Tensor:
    t = Tensor._from_array(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _float_dtype(dtype: _dtype.dtype | None) -> _dtype.dtype:
    return _dtype.get_default_dtype() if dtype is None else dtype


def _random_float_dtype(dtype: _dtype.dtype | None, kernel: str) -> _dtype.dtype:
    """The dtype of a random float draw; PyTorch's error for an integer dtype."""
    d = _float_dtype(dtype)
    if not d.is_floating_point:
        raise NotImplementedError(f'"{kernel}" not implemented for \'{d.scalar_name}\'')
    return d


def _infer_dtype(data: Any) -> _dtype.dtype:
    """PyTorch's choice: a numpy array keeps its dtype; Python floats give the default float
    dtype, Python ints int64, bools bool."""
    if isinstance(data, (np.ndarray, np.generic)):
        return _dtype.from_numpy_dtype(data.dtype)
    try:
        kind = np.asarray(data).dtype.kind
    except ValueError:
        raise ValueError(_ragged_message(data)) from None
    if kind in "iu":
        return _dtype.int64
    if kind == "b":
        return _dtype.bool_
    if kind in "f" or np.asarray(data).size == 0:
        return _dtype.get_default_dtype()
    raise TypeError(f"can't convert {type(data).__name__} to a tensor: expected numbers")


def _ragged_message(data: Any) -> str:
    """PyTorch's words for a nested sequence that is not rectangular."""
    level, dim = [data], 0
    while level and all(isinstance(d, (list, tuple)) for d in level):
        children = [item for d in level for item in d]
        dim += 1
        expected = next((len(c) for c in children if isinstance(c, (list, tuple))), None)
        if expected is None:
            break
        for c in children:
            if not isinstance(c, (list, tuple)) or len(c) != expected:
                got = len(c) if isinstance(c, (list, tuple)) else type(c).__name__
                return f"expected sequence of length {expected} at dim {dim} (got {got})"
        level = children
    return "expected a rectangular nested sequence of numbers"


def _to_array(data: Any) -> Any:
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, (list, tuple)):
        return [_to_array(d) for d in data]
    return data


def tensor(data: Any, dtype: _dtype.dtype | None = None, device: Any = None,
           requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """A new tensor with a copy of `data` (nested lists of numbers, a numpy array, a tensor)."""
    check_device(device)
    raw = _to_array(data)
    if dtype is None:
        dtype = _infer_dtype(raw if not isinstance(data, Tensor) else data._data)
    try:
        array = np.array(raw, dtype=dtype.numpy, copy=True)
    except ValueError:
        raise ValueError(_ragged_message(raw)) from None
    return _finish(array, requires_grad)


def as_tensor(data: Any, dtype: _dtype.dtype | None = None, device: Any = None) -> Tensor:
    """Like tensor(), but shares memory with a tensor or numpy array of the right dtype."""
    check_device(device)
    if isinstance(data, Tensor):
        return data if dtype is None or data.dtype == dtype else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or data.dtype == dtype.numpy):
        return from_numpy(data)
    return tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with `array` (changes to one show in the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    _dtype.from_numpy_dtype(array.dtype)  # raises for unsupported types
    return Tensor._from_array(array)


def zeros(*size: Any, dtype: _dtype.dtype | None = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    check_device(device)
    return _finish(np.zeros(_shape(size), _float_dtype(dtype).numpy), requires_grad)


def ones(*size: Any, dtype: _dtype.dtype | None = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    check_device(device)
    return _finish(np.ones(_shape(size), _float_dtype(dtype).numpy), requires_grad)


def empty(*size: Any, dtype: _dtype.dtype | None = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    check_device(device)
    return _finish(np.empty(_shape(size), _float_dtype(dtype).numpy), requires_grad)


def full(size: Sequence[int], fill_value: Any, dtype: _dtype.dtype | None = None,
         device: Any = None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    if dtype is None:
        dtype = _dtype.scalar_dtype(fill_value)
    return _finish(np.full(_shape((size,)), fill_value, dtype.numpy), requires_grad)


def eye(n: int, m: int | None = None, dtype: _dtype.dtype | None = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    check_device(device)
    return _finish(np.eye(n, m, dtype=_float_dtype(dtype).numpy), requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: _dtype.dtype | None = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    if dtype is None:
        numbers = (start, end, step)
        dtype = (_dtype.int64 if all(isinstance(v, (int, np.integer)) for v in numbers)
                 else _dtype.get_default_dtype())
    return _finish(np.arange(start, end, step).astype(dtype.numpy), requires_grad)


def linspace(start: float, end: float, steps: int, dtype: _dtype.dtype | None = None,
             device: Any = None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    return _finish(np.linspace(start, end, steps).astype(_float_dtype(dtype).numpy),
                   requires_grad)


def rand(*size: Any, generator: Generator | None = None, dtype: _dtype.dtype | None = None,
         device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform draws in [0, 1)."""
    check_device(device)
    d = _random_float_dtype(dtype, "check_uniform_bounds")
    return _finish(numpy_rng(generator).random(_shape(size)).astype(d.numpy), requires_grad)


def randn(*size: Any, generator: Generator | None = None, dtype: _dtype.dtype | None = None,
          device: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal draws."""
    check_device(device)
    d = _random_float_dtype(dtype, "normal_kernel_cpu")
    data = numpy_rng(generator).standard_normal(_shape(size)).astype(d.numpy)
    return _finish(data, requires_grad)


def randint(low: int, high: int | Sequence[int] | None = None, size: Sequence[int] = (), *,
            generator: Generator | None = None, dtype: _dtype.dtype | None = None,
            device: Any = None, requires_grad: bool = False) -> Tensor:
    check_device(device)
    if high is None or isinstance(high, (tuple, list)):  # randint(high, size)
        size = size if high is None else high
        low, high = 0, low
    d = _dtype.int64 if dtype is None else dtype
    data = numpy_rng(generator).integers(low, high, size=_shape((size,))).astype(d.numpy)
    return _finish(data, requires_grad)


def randperm(n: int, *, generator: Generator | None = None, dtype: _dtype.dtype | None = None,
             device: Any = None) -> Tensor:
    check_device(device)
    d = _dtype.int64 if dtype is None else dtype
    return Tensor._from_array(numpy_rng(generator).permutation(n).astype(d.numpy))


def normal(mean: float, std: float, size: Sequence[int], *, generator: Generator | None = None,
           dtype: _dtype.dtype | None = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    check_device(device)
    d = _float_dtype(dtype)
    data = numpy_rng(generator).normal(mean, std, _shape((size,))).astype(d.numpy)
    return _finish(data, requires_grad)


def _like(x: Tensor, dtype: _dtype.dtype | None) -> tuple[tuple[int, ...], _dtype.dtype]:
    return tuple(x.shape), x.dtype if dtype is None else dtype


def zeros_like(input: Tensor, dtype: _dtype.dtype | None = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    shape, d = _like(input, dtype)
    return zeros(shape, dtype=d, device=device, requires_grad=requires_grad)


def ones_like(input: Tensor, dtype: _dtype.dtype | None = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    shape, d = _like(input, dtype)
    return ones(shape, dtype=d, device=device, requires_grad=requires_grad)


def empty_like(input: Tensor, dtype: _dtype.dtype | None = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    shape, d = _like(input, dtype)
    return empty(shape, dtype=d, device=device, requires_grad=requires_grad)


def full_like(input: Tensor, fill_value: Any, dtype: _dtype.dtype | None = None,
              device: Any = None, requires_grad: bool = False) -> Tensor:
    shape, d = _like(input, dtype)
    return full(shape, fill_value, dtype=d, device=device, requires_grad=requires_grad)


def rand_like(input: Tensor, dtype: _dtype.dtype | None = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    shape, d = _like(input, dtype)
    return rand(shape, dtype=d, device=device, requires_grad=requires_grad)


def randn_like(input: Tensor, dtype: _dtype.dtype | None = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    shape, d = _like(input, dtype)
    return randn(shape, dtype=d, device=device, requires_grad=requires_grad)
