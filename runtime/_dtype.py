"""Tensor element types: the `runtime.float32`-style dtype objects and PyTorch's promotion rules.

A dtype wraps a numpy dtype. This module owns how dtypes print, which are floating point, the
default float dtype, and `result_dtype`, the type-promotion rule every op uses (PyTorch's: tensors
with dimensions decide within a category; 0-d tensors and Python numbers only lift the category).
"""

from __future__ import annotations

import numpy as np


class dtype:  # noqa: N801 - the PyTorch name
    """An element type. Compare with `==`; `.itemsize` is the size in bytes."""

    __slots__ = ("name", "numpy", "is_floating_point", "is_signed", "itemsize", "_rank",
                 "scalar_name", "c_name")

    def __init__(self, name: str, numpy_dtype: type, category_rank: int, scalar_name: str,
                 c_name: str) -> None:
        self.name = name
        self.numpy = np.dtype(numpy_dtype)
        self.is_floating_point = self.numpy.kind == "f"
        self.is_signed = self.numpy.kind in "fi"
        self.itemsize = self.numpy.itemsize
        self._rank = category_rank
        self.scalar_name = scalar_name  # as PyTorch's messages name it: 'Long', 'Float', ...
        self.c_name = c_name  # as PyTorch's matmul messages name it: 'long int', 'float', ...

    @property
    def is_complex(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"runtime.{self.name}"

    def __reduce__(self) -> str:
        return "bool_" if self.name == "bool" else self.name  # pickled as this module's global


bool_ = dtype("bool", np.bool_, 0, "Bool", "bool")
uint8 = dtype("uint8", np.uint8, 1, "Byte", "unsigned char")
int8 = dtype("int8", np.int8, 1, "Char", "signed char")
int16 = dtype("int16", np.int16, 1, "Short", "short int")
int32 = dtype("int32", np.int32, 1, "Int", "int")
int64 = dtype("int64", np.int64, 1, "Long", "long int")
float16 = dtype("float16", np.float16, 2, "Half", "c10::Half")
float32 = dtype("float32", np.float32, 2, "Float", "float")
float64 = dtype("float64", np.float64, 2, "Double", "double")

ALL_DTYPES = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
_BY_NUMPY = {d.numpy: d for d in ALL_DTYPES}

_default_float = float32


def from_numpy_dtype(numpy_dtype: np.dtype) -> dtype:
    """The runtime dtype of a numpy dtype; TypeError for types PyTorch has no equivalent of."""
    found = _BY_NUMPY.get(numpy_dtype)  # the common case: an array's np.dtype
    if found is not None:
        return found
    try:
        return _BY_NUMPY[np.dtype(numpy_dtype)]
    except KeyError:
        raise TypeError(
            f"can't convert np.ndarray of type {np.dtype(numpy_dtype)}. The only supported types "
            "are: float64, float32, float16, int64, int32, int16, int8, uint8, and bool."
        ) from None


def get_default_dtype() -> dtype:
    """The dtype of floating point tensors created without an explicit dtype (float32)."""
    return _default_float


def set_default_dtype(d: dtype) -> None:
    """Set the default floating point dtype (float32 or float64), as torch.set_default_dtype."""
    global _default_float
    if not isinstance(d, dtype) or not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_float = d


def scalar_dtype(value: object) -> dtype:
    """The dtype PyTorch gives a tensor made from one Python number."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    if isinstance(value, (float, np.floating)):
        return _default_float
    raise TypeError(f"expected a Python number, got {type(value).__name__}")


def promote_types(a: dtype, b: dtype) -> dtype:
    """torch.promote_types: the higher category wins outright (int64 with float16 is float16);
    within a category, the smallest type that holds both (uint8 with int8 is int16)."""
    if a._rank != b._rank:
        return a if a._rank > b._rank else b
    return _PROMOTED[(a, b)]


_PROMOTED = {(a, b): from_numpy_dtype(np.promote_types(a.numpy, b.numpy))
             for a in ALL_DTYPES for b in ALL_DTYPES if a._rank == b._rank}


def _promote_group(dtypes: list[dtype]) -> dtype | None:
    result = None
    for d in dtypes:
        result = d if result is None else promote_types(result, d)
    return result


def result_dtype(dimensioned: list[dtype], zero_dim: list[dtype], numbers: list[object]) -> dtype:
    """PyTorch's type promotion over an op's operands.

    `dimensioned` are dtypes of tensors with at least one dimension, `zero_dim` of 0-d tensors,
    `numbers` the Python scalars. A later group only matters when its category (bool < integer <
    floating) is higher than the result so far; a Python float then gives the default dtype.
    """
    result = _promote_group(dimensioned)
    zero = _promote_group(zero_dim)
    if result is None or (zero is not None and zero._rank > result._rank):
        result = zero
    for number in numbers:
        result = lift(result, number)
    if result is None:
        raise TypeError("result_dtype needs at least one operand")
    return result


def lift(d: dtype | None, number: object) -> dtype:
    """What a Python number does to the dtype `d` of the tensors it meets: nothing, unless its
    category is higher (a float meeting integers gives the default float dtype)."""
    own = scalar_dtype(number)
    return own if d is None or own._rank > d._rank else d
