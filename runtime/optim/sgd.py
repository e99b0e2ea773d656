"""`SGD`: stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

PyTorch's documented algorithm, step for step (so float64 runs agree with torch.optim.SGD to
rounding). For each parameter p with gradient g, per step:

    g = -g if maximize;  g = g + weight_decay * p
    b = g (first step: a copy)  or  b = momentum * b + (1 - dampening) * g     [if momentum != 0]
    g = g + momentum * b if nesterov else b                                   [if momentum != 0]
    p = p - lr * g

The buffer b is `state[p]["momentum_buffer"]`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from runtime._tensor import Tensor
from runtime.optim.optimizer import Optimizer, ParamGroup, mark_modified


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), as torch.optim.SGD.

    `foreach`, `differentiable` and `fused` are PyTorch's implementation choices; they are kept in
    the parameter groups so that repr and state_dict read as PyTorch's, and symgrad runs one
    implementation whatever their value (differentiable=True is refused)."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        if differentiable:
            raise NotImplementedError("SGD(differentiable=True) is not supported: symgrad's "
                                      "optimizer steps are not recorded by autograd")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    "foreach": foreach, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)

    def _update(self, param: Tensor, grad: np.ndarray, group: ParamGroup) -> None:
        p = param._data
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad + float(group["weight_decay"]) * p
        momentum = group["momentum"]
        if momentum != 0:
            grad = self._momentum_direction(param, grad, group)
        p += -float(group["lr"]) * grad
        mark_modified(param)

    def _momentum_direction(self, param: Tensor, grad: np.ndarray, group: ParamGroup) -> Any:
        """Update the momentum buffer with `grad` and return the direction to step in."""
        state = self.state[param]
        momentum = group["momentum"]
        buffer = state.get("momentum_buffer")
        if buffer is None:
            # np.array, not .copy(): on a 0-d parameter, -grad is a numpy scalar, not an array
            buffer = state["momentum_buffer"] = Tensor._from_array(np.array(grad))
        else:
            b = buffer._data
            b *= momentum
            b += (1 - group["dampening"]) * grad
            mark_modified(buffer)
        if group["nesterov"]:
            return grad + momentum * buffer._data
        return buffer._data
