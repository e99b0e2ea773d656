"""How a DataLoader turns a list of samples into a batch: `default_collate`, `default_convert`.

`default_collate` is PyTorch's: tensors are stacked along a new first dimension, numpy arrays
become tensors first, Python floats become a float64 tensor and ints an int64 tensor, strings stay
a list, and mappings, named tuples and sequences are collated field by field (a tuple sample such
as `(x, y)` gives the list `[X, Y]`). `default_convert` (used when batching is off) only turns
numpy arrays into tensors.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, MutableMapping, MutableSequence, Sequence
from typing import Any

import numpy as np

from runtime import _dtype
from runtime._creation import as_tensor, tensor
from runtime._functions import stack
from runtime._tensor import Tensor

_STRING_OR_OBJECT = re.compile(r"[SaUO]")

_COLLATE_ERROR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
                  "lists; found {}")


def default_collate(batch: Sequence[Any]) -> Any:
    """One batch from a list of samples of the same structure."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch), 0)
    if isinstance(elem, (np.ndarray, np.generic)) and not isinstance(elem, (np.str_, np.bytes_)):
        return _collate_numpy(batch)
    if isinstance(elem, float):
        return tensor(list(batch), dtype=_dtype.float64)
    if isinstance(elem, int):
        return tensor(list(batch))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, Mapping):
        return _rebuild_mapping(elem, {key: default_collate([d[key] for d in batch])
                                       for key in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, Sequence):
        return _collate_sequences(batch)
    raise TypeError(_COLLATE_ERROR.format(type(elem)))


def _collate_numpy(batch: Sequence[Any]) -> Tensor:
    elem = batch[0]
    if _STRING_OR_OBJECT.search(elem.dtype.str) is not None:
        raise TypeError(_COLLATE_ERROR.format(elem.dtype))
    if isinstance(elem, np.ndarray):
        return default_collate([as_tensor(b) for b in batch])
    return as_tensor(np.array(batch))  # numpy scalars keep their dtype


def _collate_sequences(batch: Sequence[Any]) -> Any:
    size = len(batch[0])
    if any(len(sample) != size for sample in batch):
        raise RuntimeError("each element in list of batch should be of equal size")
    fields = [default_collate(list(field)) for field in zip(*batch)]
    elem = batch[0]
    if isinstance(elem, tuple):
        return fields  # PyTorch returns a list for tuples (backwards compatibility)
    if isinstance(elem, MutableSequence):
        clone = copy.copy(elem)
        clone[:] = fields
        return clone
    try:
        return type(elem)(fields)
    except TypeError:  # a sequence type that cannot be built from a list
        return fields


def _rebuild_mapping(elem: Mapping[Any, Any], values: dict[Any, Any]) -> Any:
    """`values` in a mapping of the same type as `elem` when that type allows it, else a dict."""
    if isinstance(elem, MutableMapping):
        clone = copy.copy(elem)
        clone.update(values)
        return clone
    try:
        return type(elem)(values)  # type: ignore[call-arg]
    except TypeError:
        return values


def default_convert(data: Any) -> Any:
    """A sample with numpy arrays (anywhere in mappings and sequences) turned into tensors."""
    if isinstance(data, (np.ndarray, np.generic)) and not isinstance(data, (np.str_, np.bytes_)):
        if _STRING_OR_OBJECT.search(data.dtype.str) is not None:
            return data
        return as_tensor(data) if isinstance(data, np.ndarray) else as_tensor(np.array(data))
    if isinstance(data, Mapping):
        return _rebuild_mapping(data, {key: default_convert(data[key]) for key in data})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]  # as PyTorch (backwards compatibility)
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        converted = [default_convert(d) for d in data]
        try:
            return type(data)(converted)  # type: ignore[call-arg]
        except TypeError:
            return converted
    return data
