"""`runtime.return_types`: the named pairs that max/min/sort/topk/kthvalue(dim) return, as
PyTorch's `torch.return_types`: a tuple you can unpack (`values, indices = x.max(1)`) with
`.values` and `.indices`, printed as PyTorch prints it, with this package's name:

    runtime.return_types.max(
    values=tensor([3., 5.]),
    indices=tensor([1, 0]))
"""

from __future__ import annotations

from typing import Any


class _ValuesIndices(tuple):
    """A (values, indices) pair; subclasses are named after the function that returned them."""

    n_fields = 2
    n_sequence_fields = 2
    n_unnamed_fields = 0

    def __new__(cls, values_indices: Any) -> _ValuesIndices:
        values, indices = values_indices
        return super().__new__(cls, (values, indices))

    @property
    def values(self) -> Any:
        return self[0]

    @property
    def indices(self) -> Any:
        return self[1]

    def __repr__(self) -> str:
        return (f"runtime.return_types.{type(self).__name__}(\nvalues={self[0]!r},\n"
                f"indices={self[1]!r})")

    def __reduce__(self) -> Any:
        return (type(self), (tuple(self),))


def _pair(name: str) -> type[_ValuesIndices]:
    return type(name, (_ValuesIndices,), {"__module__": __name__,
                                          "__doc__": f"What `{name}(dim)` returns."})


max = _pair("max")  # noqa: A001 - PyTorch's names
min = _pair("min")  # noqa: A001
sort = _pair("sort")
topk = _pair("topk")
kthvalue = _pair("kthvalue")

__all__ = ["kthvalue", "max", "min", "sort", "topk"]
