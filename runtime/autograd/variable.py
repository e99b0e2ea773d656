"""`Variable`, kept as PyTorch keeps it: since tensors carry autograd state themselves,
`Variable(t)` returns a tensor sharing t's memory (with `requires_grad` as asked), and every
tensor is an instance of Variable."""

from __future__ import annotations

from typing import Any


class _VariableMeta(type):
    def __instancecheck__(cls, instance: Any) -> bool:
        from runtime._tensor import Tensor  # runtime._tensor imports this package

        return isinstance(instance, Tensor)


class Variable(metaclass=_VariableMeta):
    """`Variable(data, requires_grad=False)`: a tensor, as in PyTorch."""

    def __new__(cls, data: Any, requires_grad: bool = False, volatile: bool = False) -> Any:
        from runtime._tensor import Tensor

        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        return data.detach().requires_grad_(requires_grad)
