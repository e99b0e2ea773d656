"""`SGD`: stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

PyTorch's documented algorithm, step for step (so float64 runs agree with torch.optim.SGD to
rounding). For each parameter p with gradient g, per step:

    g = -g if maximize;  g = g + weight_decay * p
    b = g (first step: a copy)  or  b = momentum * b + (1 - dampening) * g     [if momentum != 0]
    g = g + momentum * b if nesterov else b                                   [if momentum != 0]
    p = p - lr * g

The buffer b is `state[p]["momentum_buffer"]`. `sgd_update` is this step as a function of
tensors: eager `step()` runs it, `compiler.compile_train_step` traces it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runtime import _functions as F
from runtime._creation import zeros_like
from runtime._tensor import Tensor
from runtime.optim.optimizer import Optimizer, ParamGroup


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

    def state_tensors(self, param: Tensor, group: ParamGroup) -> dict[str, Tensor]:
        if group["momentum"] == 0:
            return {}
        buffer = self.state.get(param, {}).get("momentum_buffer")
        return {"momentum_buffer": zeros_like(param) if buffer is None else buffer}

    def step_scalars(self, param: Tensor, group: ParamGroup) -> dict[str, float | bool]:
        """lr and, with momentum, the buffer's factors: b = b * buffer_decay + g * gradient_weight,
        which are (momentum, 1 - dampening), or (0, 1) on the first step, when b does not exist
        yet (its zero placeholder then drops out and b starts as g, exactly)."""
        scalars: dict[str, float | bool] = {"lr": float(group["lr"])}
        if group["momentum"] != 0:
            first_step = "momentum_buffer" not in self.state.get(param, {})
            scalars["buffer_decay"] = 0.0 if first_step else float(group["momentum"])
            scalars["gradient_weight"] = 1.0 if first_step else 1 - float(group["dampening"])
        return scalars

    def update(self, param: Tensor, grad: Tensor, state: dict[str, Tensor],
               scalars: dict[str, Tensor], group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
        return sgd_update(param, grad, state, scalars, group)


def sgd_update(p: Tensor, g: Tensor, state: dict[str, Tensor], scalars: dict[str, Tensor],
               group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
    """SGD's step (the module docstring's formulas) with `SGD.step_scalars`' scalars."""
    if group["maximize"]:
        g = F.neg(g)
    if group["weight_decay"] != 0:
        g = F.add(g, F.mul(p, float(group["weight_decay"])))
    new_state = {}
    momentum = float(group["momentum"])
    if momentum != 0:
        buffer = F.add(F.mul(state["momentum_buffer"], scalars["buffer_decay"]),
                       F.mul(g, scalars["gradient_weight"]))
        new_state["momentum_buffer"] = buffer
        g = F.add(g, F.mul(buffer, momentum)) if group["nesterov"] else buffer
    return F.sub(p, F.mul(scalars["lr"], g)), new_state
