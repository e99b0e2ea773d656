"""`Adam` and `AdamW`: adaptive moment estimation, with L2 or decoupled weight decay.

PyTorch's documented algorithm, step for step (so float64 runs agree with torch.optim.Adam to
rounding). For each parameter p with gradient g, at step t (counted from 1):

    g = -g if maximize
    p = p * (1 - lr * weight_decay)  if decoupled (AdamW)  else  g = g + weight_decay * p
    m = m + (1 - beta1) * (g - m)                 (PyTorch's lerp form of beta1 m + (1-beta1) g)
    v = beta2 * v + (1 - beta2) * g * g
    v_max = max(v_max, v)                         [amsgrad; the denominator then uses v_max]
    p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

State per parameter, named as PyTorch names it: `step` (a 0-d float tensor, as PyTorch stores it),
`exp_avg` (m), `exp_avg_sq` (v) and, with amsgrad, `max_exp_avg_sq` (v_max). `adam_update` is
this step as a function of tensors: eager `step()` runs it, `compiler.compile_train_step` traces
it; the step count and the numbers computed from it are Python's (`Adam.step_scalars`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runtime import _functions as F
from runtime._creation import zeros_like
from runtime._tensor import Tensor
from runtime.optim.optimizer import Optimizer, ParamGroup, StateDict


class Adam(Optimizer):
    """Adam, as torch.optim.Adam; `decoupled_weight_decay=True` makes it AdamW.

    `foreach`, `capturable`, `differentiable` and `fused` are PyTorch's implementation choices;
    they are kept in the parameter groups so that repr and state_dict read as PyTorch's, and
    symgrad runs one implementation whatever their value (differentiable=True is refused)."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False) -> None:
        _check_options(lr, betas, eps, weight_decay)
        if differentiable:
            raise NotImplementedError(f"{type(self).__name__}(differentiable=True) is not "
                                      "supported: symgrad's optimizer steps are not recorded "
                                      "by autograd")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                    "capturable": capturable, "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def state_tensors(self, param: Tensor, group: ParamGroup) -> dict[str, Tensor]:
        state = self.state.get(param, {})
        names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group["amsgrad"] else [])
        return {name: state[name] if name in state else zeros_like(param) for name in names}

    def step_scalars(self, param: Tensor, group: ParamGroup) -> dict[str, float | bool]:
        """lr, the step size lr / (1 - beta1^t), sqrt(1 - beta2^t) and the decoupled decay
        factor 1 - lr * weight_decay, for step t (counted from 1), in Python's double
        precision as PyTorch computes them."""
        step = self.state.get(param, {}).get("step")
        t = (float(step) if step is not None else 0.0) + 1
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        return {"lr": lr, "step_size": lr / (1 - beta1 ** t),
                "bias_correction2_sqrt": (1 - beta2 ** t) ** 0.5,
                "decay": 1 - lr * float(group["weight_decay"])}

    def update(self, param: Tensor, grad: Tensor, state: dict[str, Tensor],
               scalars: dict[str, Tensor], group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
        return adam_update(param, grad, state, scalars, group)

    def finish_step(self, param: Tensor, group: ParamGroup, state: dict[str, Tensor]) -> None:
        self.count_step_and_store(param, state)


def adam_update(p: Tensor, g: Tensor, state: dict[str, Tensor], scalars: dict[str, Tensor],
                group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
    """Adam's step (the module docstring's formulas), with `Adam.step_scalars`' scalars."""
    beta1, beta2 = (float(b) for b in group["betas"])
    if group["maximize"]:
        g = F.neg(g)
    if float(group["weight_decay"]) != 0:
        if group["decoupled_weight_decay"]:
            p = F.mul(p, scalars["decay"])
        else:
            g = F.add(g, F.mul(p, float(group["weight_decay"])))
    m = F.add(state["exp_avg"], F.mul(F.sub(g, state["exp_avg"]), 1 - beta1))
    v = F.add(F.mul(state["exp_avg_sq"], beta2), F.mul(F.mul(g, 1 - beta2), g))
    new_state = {"exp_avg": m, "exp_avg_sq": v}
    if group["amsgrad"]:
        v = new_state["max_exp_avg_sq"] = F.maximum(state["max_exp_avg_sq"], v)
    denominator = F.add(F.div(F.sqrt(v), scalars["bias_correction2_sqrt"]), float(group["eps"]))
    return F.sub(p, F.div(F.mul(scalars["step_size"], m), denominator)), new_state


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2), as torch.optim.AdamW."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)

    def load_state_dict(self, state_dict: StateDict) -> None:
        """As Optimizer.load_state_dict; the groups stay decoupled whatever was saved."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


def _check_options(lr: float, betas: tuple[float, float], eps: float,
                   weight_decay: float) -> None:
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")

