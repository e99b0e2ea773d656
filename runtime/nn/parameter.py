"""`nn.Parameter`: a tensor that a Module registers as one of its parameters when assigned as an
attribute.

A Parameter is a leaf Tensor that shares memory (and the in-place version counter) with the tensor
it was made from; only its type and `requires_grad=True` default differ. Results of operations on
a Parameter are plain Tensors, as in PyTorch.
"""

from __future__ import annotations

from typing import Any

from runtime._creation import empty
from runtime._tensor import Tensor


class Parameter(Tensor):
    """A Tensor that is a module parameter: `nn.Parameter(torch.randn(3, 4))`."""

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> Parameter:
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter(data): expected a Tensor, got {type(data).__name__}")
        param = cls._from_array(data._data)
        param._version = data._version
        param.requires_grad_(requires_grad)  # refuses integer data, as PyTorch
        return param

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        """All the work is done by __new__ (Tensor.__init__ refuses direct construction)."""

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict[int, Any]) -> Parameter:
        """A Parameter with copied data (and grad) and a gradient path of its own."""
        if id(self) in memo:
            return memo[id(self)]
        copied = Parameter(self.detach().clone(), self.requires_grad)
        if self._grad is not None:
            copied._grad = self._grad.detach().clone()
        memo[id(self)] = copied
        return copied

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (Parameter, (self.detach().clone(), self.requires_grad))
