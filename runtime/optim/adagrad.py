"""`Adagrad`: gradient steps divided by the root of the sum of all squared gradients so far.

PyTorch's documented algorithm, step for step (so float64 runs agree with torch.optim.Adagrad to
rounding). For each parameter p with gradient g, at step t (counted from 1):

    g = -g if maximize;  g = g + weight_decay * p
    clr = lr / (1 + (t - 1) * lr_decay)
    s = s + g * g
    p = p - clr * g / (sqrt(s) + eps)

State per parameter, named as PyTorch names it: `step` (a 0-d float tensor) and `sum` (s), both
created with the optimizer, `sum` filled with `initial_accumulator_value`. `adagrad_update` is
this step as a function of tensors: eager `step()` runs it, `compiler.compile_train_step` traces
it; clr is computed in Python from the step count (`Adagrad.step_scalars`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runtime import _functions as F
from runtime._creation import full_like, tensor
from runtime._tensor import Tensor
from runtime.optim.optimizer import Optimizer, ParamGroup, step_dtype


class Adagrad(Optimizer):
    """Adagrad, as torch.optim.Adagrad.

    `foreach`, `differentiable` and `fused` are PyTorch's implementation choices; they are kept
    in the parameter groups so that repr and state_dict read as PyTorch's, and symgrad runs one
    implementation whatever their value (differentiable=True is refused)."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        for name, value in (("learning rate", lr), ("lr_decay value", lr_decay),
                            ("weight_decay value", weight_decay),
                            ("initial_accumulator_value value", initial_accumulator_value),
                            ("epsilon value", eps)):
            if not 0.0 <= value:
                raise ValueError(f"Invalid {name}: {value}")
        if differentiable:
            raise NotImplementedError("Adagrad(differentiable=True) is not supported: symgrad's "
                                      "optimizer steps are not recorded by autograd")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        for group in self.param_groups:  # as PyTorch: the state exists before the first step
            for param in group["params"]:
                self.state[param]["step"] = tensor(0.0, dtype=step_dtype())
                self.state[param]["sum"] = self._initial_sum(param)

    def _initial_sum(self, param: Tensor) -> Tensor:
        # PyTorch fills it from the defaults, also for a group added later
        return full_like(param, self.defaults["initial_accumulator_value"])

    def state_tensors(self, param: Tensor, group: ParamGroup) -> dict[str, Tensor]:
        stored = self.state.get(param, {}).get("sum")
        return {"sum": self._initial_sum(param) if stored is None else stored}

    def step_scalars(self, param: Tensor, group: ParamGroup) -> dict[str, float | bool]:
        """The decayed learning rate of step t: lr / (1 + (t - 1) * lr_decay)."""
        step = self.state.get(param, {}).get("step")
        t = (float(step) if step is not None else 0.0) + 1
        return {"clr": float(group["lr"]) / (1 + (t - 1) * float(group["lr_decay"]))}

    def update(self, param: Tensor, grad: Tensor, state: dict[str, Tensor],
               scalars: dict[str, Tensor], group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
        return adagrad_update(param, grad, state, scalars, group)

    def finish_step(self, param: Tensor, group: ParamGroup, state: dict[str, Tensor]) -> None:
        self.count_step_and_store(param, state)


def adagrad_update(p: Tensor, g: Tensor, state: dict[str, Tensor], scalars: dict[str, Tensor],
                   group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
    """Adagrad's step (the module docstring's formulas), with `Adagrad.step_scalars`' clr."""
    if group["maximize"]:
        g = F.neg(g)
    if float(group["weight_decay"]) != 0:
        g = F.add(g, F.mul(p, float(group["weight_decay"])))
    square_sum = F.add(state["sum"], F.mul(g, g))
    std = F.add(F.sqrt(square_sum), float(group["eps"]))
    return F.sub(p, F.div(F.mul(scalars["clr"], g), std)), {"sum": square_sum}
