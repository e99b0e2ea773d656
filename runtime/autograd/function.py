"""Custom differentiable functions: subclass `Function`, write `forward(ctx, ...)` and
`backward(ctx, ...)`, call `MyFunction.apply(...)`.

`forward` runs without recording (its ops do not enter the graph); the outputs get one node,
`MyFunctionBackward`, whose apply calls the user's `backward` with the gradients of the outputs
(missing ones as zeros). Tensors passed to `ctx.save_for_backward` are SavedTensors: freed after
backward, checked against in-place changes, and differentiable again when create_graph=True.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from runtime import _tensor
from runtime._grad_mode import is_grad_enabled, no_grad

if TYPE_CHECKING:
    from runtime._tensor import Tensor
from runtime.autograd._node import FREED_MESSAGE, Node, SavedTensor, named_node_class


class FunctionCtx:
    """The `ctx` of a custom Function: saved tensors, flags, and any attribute you set."""

    def __init__(self) -> None:
        self._to_save: tuple[Tensor | None, ...] = ()
        self._saved: list[SavedTensor | None] | None = []
        self._node: Node | None = None
        self.needs_input_grad: tuple[bool, ...] = ()
        self.materialize_grads = True
        self._non_differentiable: set[int] = set()

    def save_for_backward(self, *tensors: Tensor | None) -> None:
        self._to_save = tensors

    def mark_non_differentiable(self, *tensors: Tensor) -> None:
        self._non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = value

    @property
    def saved_tensors(self) -> tuple[Tensor | None, ...]:
        if self._saved is None:
            raise RuntimeError(FREED_MESSAGE)
        return tuple(s.unpack(self._node) if s is not None else None for s in self._saved)


class BackwardCFunction(Node):
    """The node of a custom Function's outputs; its class is named after the Function
    (`ExpBackward`, a subclass of BackwardCFunction, as in PyTorch)."""

    def __init__(self, function: type[Function], ctx: FunctionCtx, args: Sequence[Any],
                 output_meta: list[Tensor]):
        tensors = [a if isinstance(a, _tensor.Tensor) else None for a in args]
        super().__init__([(None, 0) if t is None else t._gradient_edge() for t in tensors],
                         [None if t is None else (t.shape, t.dtype) for t in tensors])
        self._function = function
        self.ctx = ctx
        self.num_outputs = len(output_meta)
        self._output_meta = [(t._data.shape, t._data.dtype) for t in output_meta]

    def name(self) -> str:
        return f"{self._function.__name__}Backward"

    def apply(self, grad_outputs: list[Tensor | None]) -> Sequence[Tensor | None]:
        if self.ctx.materialize_grads:
            grad_outputs = [_tensor.Tensor._from_array(np.zeros(shape, dtype)) if g is None else g
                            for g, (shape, dtype) in zip(grad_outputs, self._output_meta)]
        grads = self._function.backward(self.ctx, *grad_outputs)
        grads = grads if isinstance(grads, tuple) else (grads,)
        n_inputs = len(self.next_functions)
        if len(grads) > n_inputs and all(g is None for g in grads[n_inputs:]):
            grads = grads[:n_inputs]
        if len(grads) != n_inputs:
            raise RuntimeError(f"function {self.name()} returned an incorrect number of gradients "
                               f"(expected {n_inputs}, got {len(grads)})")
        return [g if self.ctx.needs_input_grad[i] else None for i, g in enumerate(grads)]

    def release(self) -> None:
        super().release()
        self.ctx._saved = None


class Function:
    """Base class of custom autograd functions (use the class, never instances: `F.apply(x)`)."""

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Any) -> Any:
        raise NotImplementedError("You must implement either the backward or vjp method for your "
                                  "custom autograd.Function to use it with backward mode AD.")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        ctx = FunctionCtx()
        tensor_args = [a for a in args if isinstance(a, _tensor.Tensor)]
        ctx.needs_input_grad = tuple(isinstance(a, _tensor.Tensor) and a.requires_grad
                                     for a in args)
        with no_grad():
            outputs = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(outputs, tuple)
        output_list = [outputs] if single else list(outputs)
        records = is_grad_enabled() and any(t.requires_grad for t in tensor_args)
        if records:
            tensors_out = [o for o in output_list if isinstance(o, _tensor.Tensor)]
            node_class = named_node_class(BackwardCFunction, f"{cls.__name__}Backward")
            node = node_class(cls, ctx, args, tensors_out)
            ctx._node = node
            nr = 0
            for i, o in enumerate(output_list):
                if not isinstance(o, _tensor.Tensor):
                    continue
                if any(o is a for a in args):  # an input returned as is: a new tensor, like PyTorch
                    o = output_list[i] = o.detach()
                if id(o) not in ctx._non_differentiable and o.dtype.is_floating_point:
                    o._set_history(node, nr)
                nr += 1
        ctx._saved = [SavedTensor(t, is_output=any(t is o for o in output_list) and records)
                      if t is not None else None for t in ctx._to_save]
        return output_list[0] if single else tuple(output_list)
