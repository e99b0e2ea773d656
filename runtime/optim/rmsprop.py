"""`RMSprop`: gradient steps divided by a running root mean square of the gradients.

PyTorch's documented algorithm, step for step (so float64 runs agree with torch.optim.RMSprop to
rounding). For each parameter p with gradient g, per step:

    g = -g if maximize;  g = g + weight_decay * p
    v = alpha * v + (1 - alpha) * g * g
    a = a + (1 - alpha) * (g - a);  avg = sqrt(v - a * a)     [centered: a is the mean gradient]
    avg = sqrt(v)                                               [otherwise]
    b = momentum * b + g / (avg + eps);  p = p - lr * b         [if momentum > 0]
    p = p - lr * g / (avg + eps)                                [otherwise]

State per parameter, named as PyTorch names it: `step` (a 0-d float tensor), `square_avg` (v),
`momentum_buffer` (b, with momentum) and `grad_avg` (a, when centered); all start at zero.
`rmsprop_update` is this step as a function of tensors: eager `step()` runs it,
`compiler.compile_train_step` traces it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runtime import _functions as F
from runtime._creation import zeros_like
from runtime._tensor import Tensor
from runtime.optim.optimizer import Optimizer, ParamGroup


class RMSprop(Optimizer):
    """RMSprop, as torch.optim.RMSprop.

    `capturable`, `foreach` and `differentiable` are PyTorch's implementation choices; they are
    kept in the parameter groups so that repr and state_dict read as PyTorch's, and symgrad runs
    one implementation whatever their value (differentiable=True is refused)."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, capturable: bool = False, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False) -> None:
        for name, value in (("learning rate", lr), ("epsilon value", eps),
                            ("momentum value", momentum), ("weight_decay value", weight_decay),
                            ("alpha value", alpha)):
            if not 0.0 <= value:
                raise ValueError(f"Invalid {name}: {value}")
        if differentiable:
            raise NotImplementedError("RMSprop(differentiable=True) is not supported: symgrad's "
                                      "optimizer steps are not recorded by autograd")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay, "capturable": capturable,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable}
        super().__init__(params, defaults)

    def state_tensors(self, param: Tensor, group: ParamGroup) -> dict[str, Tensor]:
        state = self.state.get(param, {})
        names = (["square_avg"] + (["momentum_buffer"] if group["momentum"] > 0 else [])
                 + (["grad_avg"] if group["centered"] else []))
        return {name: state[name] if name in state else zeros_like(param) for name in names}

    def step_scalars(self, param: Tensor, group: ParamGroup) -> dict[str, float | bool]:
        return {"lr": float(group["lr"])}

    def update(self, param: Tensor, grad: Tensor, state: dict[str, Tensor],
               scalars: dict[str, Tensor], group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
        return rmsprop_update(param, grad, state, scalars, group)

    def finish_step(self, param: Tensor, group: ParamGroup, state: dict[str, Tensor]) -> None:
        self.count_step_and_store(param, state)


def rmsprop_update(p: Tensor, g: Tensor, state: dict[str, Tensor], scalars: dict[str, Tensor],
                   group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
    """RMSprop's step (the module docstring's formulas), with `RMSprop.step_scalars`' lr."""
    alpha = float(group["alpha"])
    if group["maximize"]:
        g = F.neg(g)
    if float(group["weight_decay"]) != 0:
        g = F.add(g, F.mul(p, float(group["weight_decay"])))
    square_avg = F.add(F.mul(state["square_avg"], alpha), F.mul(F.mul(g, 1 - alpha), g))
    new_state = {"square_avg": square_avg}
    if group["centered"]:
        grad_avg = new_state["grad_avg"] = _lerp(state["grad_avg"], g, 1 - alpha)
        avg = F.sqrt(F.sub(square_avg, F.mul(grad_avg, grad_avg)))
    else:
        avg = F.sqrt(square_avg)
    avg = F.add(avg, float(group["eps"]))
    if float(group["momentum"]) > 0:
        buffer = F.add(F.mul(state["momentum_buffer"], float(group["momentum"])), F.div(g, avg))
        new_state["momentum_buffer"] = buffer
        return F.sub(p, F.mul(scalars["lr"], buffer)), new_state
    return F.sub(p, F.div(F.mul(scalars["lr"], g), avg)), new_state


def _lerp(start: Tensor, end: Tensor, weight: float) -> Tensor:
    """start + weight * (end - start) in PyTorch's two forms (the one that rounds better for
    the weight), so the running mean agrees with torch's lerp_ to the last bit."""
    if abs(weight) < 0.5:
        return F.add(start, F.mul(F.sub(end, start), weight))
    return F.sub(end, F.mul(F.sub(end, start), 1 - weight))
