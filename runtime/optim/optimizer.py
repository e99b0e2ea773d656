"""`Optimizer`: the base of every optimizer, laid out as PyTorch's.

An optimizer holds `param_groups` (a list of dicts: `"params"`, a list of leaf tensors, plus that
group's options, filled in from `defaults`) and `state` (a dict from parameter to its per-parameter
buffers, e.g. SGD's `momentum_buffer`). `state_dict()` replaces parameters by their positions so
the state can be saved and loaded into an optimizer over other parameter objects.

A subclass writes its algorithm once, as a function of tensors made of runtime ops (as optax and
tinygrad do):

    update(param, grad, state, scalars, group) -> (new param, {name: new state tensor})

`state` holds the state tensors the update reads and rewrites (`state_tensors`), `scalars` the
numbers of this step that are computed in Python, such as the learning rate and Adam's bias
corrections (`step_scalars`, 0-d tensors), and `group` the options, which are constants of the
function. `step()` runs it under no_grad and copies the results into the parameter and its state
in place (bumping their versions); `compiler.compile_train_step` traces the very same function
into its native step. Either way `finish_step` then records the step (stores the state tensors a
first step creates, counts steps).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from copy import deepcopy
from typing import Any

import numpy as np

from runtime import _dtype
from runtime._creation import tensor
from runtime._grad_mode import enable_grad, no_grad
from runtime._tensor import Tensor

ParamGroup = dict[str, Any]
StateDict = dict[str, Any]


class _RequiredParameter:
    """The default of an option every parameter group must give (e.g. a custom optimizer's lr)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class of optimizers: `params` is an iterable of tensors, of (name, tensor) pairs, or of
    dicts each holding a group's `"params"` and the options in which it differs from `defaults`."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {params.type()}")
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[ParamGroup] = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        text = f"{type(self).__name__} ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}\n"  # groups after the first follow a blank line
            text += "".join(f"    {key}: {group[key]}\n" for key in sorted(group)
                            if key != "params")
        return text + ")"

    # ----- parameter groups -----------------------------------------------------------------------

    def add_param_group(self, param_group: ParamGroup) -> None:
        """Add a group of parameters with its own options (e.g. a layer unfrozen mid-training)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params, names = _split_names(param_group["params"])
        param_group["params"] = params
        if names:
            param_group["param_names"] = names
        for param in params:
            _check_optimizable(param)
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)
        if len(params) != len({id(p) for p in params}):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "in future, this will cause an error", UserWarning, stacklevel=3)
        self._check_disjoint(param_group)
        self.param_groups.append(param_group)

    def _check_disjoint(self, param_group: ParamGroup) -> None:
        seen: set[int] = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in group) != ("param_names" in param_group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {which} to the optimizer")
        if any(id(p) in seen for p in param_group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")

    # ----- the training-loop calls ---------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: set each `.grad` to None, or (set_to_none=False) zero it."""
        for group in self.param_groups:
            for param in group["params"]:
                grad = param._grad
                if grad is None:
                    continue
                if set_to_none:
                    param._grad = None
                else:
                    grad.detach_()
                    grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return `closure()` (the re-evaluated loss)
        when a closure is given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for param in group["params"]:
                    if param._grad is not None:
                        self._step_parameter(param, param._grad, group)
        return loss

    def _step_parameter(self, param: Tensor, grad: Tensor, group: ParamGroup) -> None:
        state = self.state_tensors(param, group)
        scalars = {name: scalar_tensor(value, param)
                   for name, value in self.step_scalars(param, group).items()}
        new_param, new_state = self.update(param, grad, state, scalars, group)
        _write(param, new_param)
        for name, buffer in state.items():
            _write(buffer, new_state[name])
        self.finish_step(param, group, state)

    # ----- the update, written once ---------------------------------------------------------------

    def update(self, param: Tensor, grad: Tensor, state: dict[str, Tensor],
               scalars: dict[str, Tensor], group: ParamGroup) -> tuple[Tensor, dict[str, Tensor]]:
        """One step of the algorithm as a function of tensors: the new parameter and the new
        value of each tensor of `state`. Written with runtime ops only, never in place, so that
        it runs eagerly and traces alike."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    def state_tensors(self, param: Tensor, group: ParamGroup) -> dict[str, Tensor]:
        """The state tensors the next update of `param` reads and rewrites, by their names in
        `state[param]`; one the first step creates is a zero tensor not yet stored."""
        return {}

    def step_scalars(self, param: Tensor, group: ParamGroup) -> dict[str, float | bool]:
        """The numbers of the next step of `param` computed in Python (read, not changed)."""
        return {}

    def finish_step(self, param: Tensor, group: ParamGroup, state: dict[str, Tensor]) -> None:
        """After `state` (from `state_tensors`) was updated in place: store it in
        `self.state[param]` (an optimizer with no state keeps none)."""
        if state:
            self.state[param].update(state)

    def count_step_and_store(self, param: Tensor, state: dict[str, Tensor]) -> None:
        """`finish_step` of an optimizer that counts steps (Adam, RMSprop, Adagrad): the first
        step creates `step`, then the buffers, in PyTorch's order."""
        stored = self.state[param]
        if "step" not in stored:
            stored["step"] = tensor(0.0, dtype=step_dtype())
        stored["step"].add_(1)
        stored.update(state)

    # ----- saving and loading -------------------------------------------------------------------

    def state_dict(self) -> StateDict:
        """`{"state": {index: buffers}, "param_groups": [options with "params": [indices]]}`, the
        parameters numbered in order of appearance across groups. Tensors are shared, not copied."""
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            for param in group["params"]:
                index_of.setdefault(id(param), len(index_of))
            packed = {key: value for key, value in group.items() if key != "params"}
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index_of[id(p)] if isinstance(p, Tensor) else p: buffers
                 for p, buffers in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: StateDict) -> None:
        """Take over the state and options saved by `state_dict()` of an optimizer over parameters
        of the same shapes, group by group; floating point buffers take the parameter's dtype."""
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(saved["params"]) != len(group["params"])
               for saved, group in zip(saved_groups, self.param_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        param_of = {index: param
                    for saved, group in zip(saved_groups, self.param_groups)
                    for index, param in zip(saved["params"], group["params"])}
        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for key, buffers in state_dict["state"].items():
            if key in param_of:
                param = param_of[key]
                state[param] = {name: _cast_buffer(value, param, name)
                                for name, value in buffers.items()}
            else:
                state[key] = buffers
        for saved, group in zip(saved_groups, self.param_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
        self.state = state
        self.param_groups = saved_groups


def _split_names(params: Any) -> tuple[list[Tensor], list[str]]:
    """The tensors of a group's "params", and their names when given as (name, tensor) pairs."""
    if isinstance(params, Tensor):
        return [params], []
    if isinstance(params, (set, frozenset)):
        raise TypeError("optimizer parameters need to be organized in ordered collections, but "
                        "the ordering of tensors in sets will change between runs. Please use a "
                        "list instead.")
    params = list(params)
    names = [p[0] for p in params if isinstance(p, tuple)]
    if names and len(names) != len(params):
        raise ValueError("all optimizer params should be with/without names. Some param names "
                         "are missing")
    return [p[1] if isinstance(p, tuple) else p for p in params], names


def _check_optimizable(param: Any) -> None:
    if not isinstance(param, Tensor):
        raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                        f"{type(param).__name__}")
    if not (param.is_leaf or param.retains_grad):
        raise ValueError("can't optimize a non-leaf Tensor")


def _cast_buffer(value: Any, param: Tensor, name: str) -> Any:
    """A loaded state value as PyTorch casts it: tensors take a floating parameter's dtype, except
    the step count, which keeps its own."""
    if isinstance(value, Tensor) and name != "step" and param.is_floating_point():
        return value.to(param.dtype)
    return value


def _write(target: Tensor, value: Tensor) -> None:
    """target's memory takes value's (same shape and dtype), in place; its version is bumped
    (what backward checks saved tensors against)."""
    np.copyto(target._data, value._data)
    target._version.bump()


def scalar_tensor(value: float | bool, param: Tensor) -> Tensor:
    """A step scalar as the 0-d tensor the update takes: bool, or the parameter's dtype (so a
    float32 update computes in float32, as PyTorch's does with Python numbers)."""
    if isinstance(value, bool):
        return tensor(value, dtype=_dtype.bool_)
    return tensor(float(value), dtype=param.dtype)


def step_dtype() -> _dtype.dtype:
    """The step count is float64 when that is the default dtype, float32 otherwise, as in
    PyTorch."""
    return _dtype.float64 if _dtype.get_default_dtype() == _dtype.float64 else _dtype.float32
