"""`compiler.compile_train_step(model, loss_fn, optimizer, example_inputs)`: one native call per
training step -- forward, loss, backward and the optimizer's update.

The loss of the model is traced and differentiated as in `compiler.compile`; then the optimizer's
update (SGD with momentum, dampening, Nesterov and weight decay; Adam/AdamW with amsgrad) is
appended to the same graph with the ops of `runtime`, so fusion merges it with the last gradient
computations. Parameters and optimizer state are updated in place in their own memory (the
native function's outputs are those very arrays), so `model`, `optimizer.state` and eager code
keep seeing one set of tensors. Learning rate and Adam's bias corrections are inputs of the
graph, read from the optimizer at every call (so schedulers work); the other hyperparameters are
compiled in, and the step refuses to run if they change.

The update formulas follow PyTorch's documented algorithms, as `runtime/optim` does; a test holds
the two to the same results. `param.grad` is not written by the compiled step.

Native code cannot raise, so values that would make eager mode raise are checked in Python before
the call: a class label out of range (native gather would read it as NaN) is PyTorch's IndexError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from compiler import artifact_cache, pipeline
from compiler.index_checks import class_index_checks
from compiler.ir import Graph, Value
from compiler.native_build import build_native_to_keep, native_from_artifact, prepare_kernels
from compiler.tracing import GraphBuilder, SymbolicTensor, named_state
from runtime import _functions as F
from runtime._tensor import Tensor
from runtime.optim import SGD, Adam
from runtime.optim.adam import _init_state as init_adam_state

_BAKED = {SGD: ("momentum", "dampening", "weight_decay", "nesterov", "maximize"),
          Adam: ("betas", "eps", "weight_decay", "amsgrad", "maximize",
                 "decoupled_weight_decay")}


class _LossOfModel:
    """loss_fn(model(*inputs), target) as one traceable callable with the model's parameters."""

    def __init__(self, model: Any, loss_fn: Callable[..., Tensor]) -> None:
        self.model = model
        self.loss_fn = loss_fn

    def named_parameters(self) -> Any:
        return self.model.named_parameters()

    def named_buffers(self) -> Any:
        return self.model.named_buffers()

    def named_modules(self) -> Any:
        return self.model.named_modules()

    def __call__(self, *inputs: Tensor) -> Tensor:
        *model_inputs, target = inputs
        return self.loss_fn(self.model(*model_inputs), target)

    def forward(self, x: Tensor, target: Tensor) -> Tensor:  # names the graph's inputs
        return self(x, target)


def _kind(optimizer: Any) -> type:
    for kind in (Adam, SGD):
        if isinstance(optimizer, kind):
            return kind
    raise NotImplementedError(f"compile_train_step supports SGD, Adam and AdamW, not "
                              f"{type(optimizer).__name__}")


class CompiledTrainStep:
    """step(*inputs, target) -> the loss (a 0-d tensor), after updating the parameters."""

    def __init__(self, model: Any, loss_fn: Callable[..., Tensor], optimizer: Any,
                 example_inputs: Sequence[Tensor]) -> None:
        self.model = model
        self.optimizer = optimizer
        self.kind = _kind(optimizer)
        if len(optimizer.param_groups) != 1:
            raise NotImplementedError("compile_train_step supports one parameter group")
        self.group = optimizer.param_groups[0]
        self.baked = {k: self.group[k] for k in _BAKED[self.kind] if k in self.group}
        self.n_inputs = len(example_inputs)
        state = named_state(model)
        self.model_state = [t for _, t, _ in state]
        self.params = [t for _, t, kind in state if kind == "param" and t.requires_grad]
        group_ids = {id(p) for p in self.group["params"]}
        if {id(p) for p in self.params if p.requires_grad} != group_ids:
            raise ValueError("the optimizer must hold exactly the model's parameters that "
                             "require grad")
        prepare_kernels({p.dtype for p in self.params})  # on another core, while we trace
        graph = pipeline.simplify_forward(pipeline.trace_model(_LossOfModel(model, loss_fn),
                                                              example_inputs))
        if graph.outputs[0].shape != ():
            raise ValueError("loss_fn must return a scalar (use reduction='mean' or 'sum')")
        self.index_checks = class_index_checks(graph, self.n_inputs)
        self.state_tensors = self._ensure_state()
        self._add_update_inputs(graph)
        self._forward = graph
        self._graph: Graph | None = None
        self.inputs = list(graph.inputs)  # the native step's inputs, in order
        key = self._cache_key(graph)
        self.from_cache = key is not None and self._load(key, graph)
        if not self.from_cache:
            if self.graph.inputs != self.inputs:  # grad and simplify keep the inputs
                raise AssertionError("the step's graph changed its inputs")
            self.native, meta, object_bytes = build_native_to_keep(self.graph)
            if key is not None:
                artifact_cache.store(key, artifact_cache.Artifact(
                    {"inputs": [v.name for v in self.inputs], "native": meta},
                    {"native": object_bytes}))
        self.native_inplace = self._inplace_map()

    @property
    def graph(self) -> Graph:
        """The whole step as a graph (loss, gradients, update). After a cache hit it is built
        on first use -- grad and simplify, no code generation -- for reading."""
        if self._graph is None:
            self._graph = self._build_graph(self._forward)
        return self._graph

    # ----- the artifact cache -------------------------------------------------------------------

    def _cache_key(self, forward: Graph) -> str | None:
        """The key of this step's compilation: the traced loss graph and everything about the
        optimizer that `_build_graph` reads (None if something has no exact text)."""
        parts = [artifact_cache.graph_key(forward), self.kind.__name__,
                 artifact_cache.exact_text(sorted(self.baked.items())),
                 artifact_cache.exact_text([v.name for v in self.param_values]),
                 artifact_cache.exact_text([v.name for v in forward.inputs]),
                 type(self.model).__name__]
        if any(part is None for part in parts):
            return None
        return artifact_cache.entry_key("train_step", *parts)

    def _load(self, key: str, forward: Graph) -> bool:
        """Take the native step from the artifact cache, if it has this compilation (then
        `graph` is built only if someone reads it)."""
        artifact = artifact_cache.load(key)
        if artifact is None or artifact.meta.get("inputs") != [v.name for v in forward.inputs]:
            return False
        native = native_from_artifact(artifact, "native")  # None if damaged: compile instead
        if native is None:
            return False
        self.native = native
        return True

    # ----- the graph ----------------------------------------------------------------------------

    def _ensure_state(self) -> list[list[Tensor]]:
        """The optimizer state tensors of each parameter, created as the eager optimizer would."""
        per_param = []
        for p in self.params:
            state = self.optimizer.state[p]
            if self.kind is Adam:
                if not state:
                    init_adam_state(state, p, self.group["amsgrad"])
                names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if self.group["amsgrad"]
                                                     else [])
                per_param.append([state[n] for n in names])
            elif self.group["momentum"] != 0:
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = Tensor._from_array(np.zeros_like(p._data))
                    state["_symgrad_first_step"] = True
                per_param.append([state["momentum_buffer"]])
            else:
                per_param.append([])
        return per_param

    def _add_update_inputs(self, forward: Graph) -> None:
        """Give the traced graph the inputs of the update: hyperparameters read at each call,
        then each parameter's optimizer state."""
        self.state_inputs = forward.inputs[self.n_inputs:]
        by_tensor = {id(t): v for t, v in zip(self.model_state, self.state_inputs)}
        self.param_values = [by_tensor[id(p)] for p in self.params]
        dtype = self.param_values[0].dtype
        self.hyper_values = [forward.add_input(name, (), dtype)
                             for name in self._hyperparameter_names()]
        self.state_values: list[list[Value]] = [
            [forward.add_input(f"{p_value.name}.state{k}", p_value.shape, dtype)
             for k in range(len(states))]
            for p_value, states in zip(self.param_values, self.state_tensors)]

    def _build_graph(self, forward: Graph) -> Graph:
        """The whole step: loss, gradients (to the parameters) and the update."""
        return pipeline.train_step_graph(forward, self.param_values, self._append_update,
                                         f"{type(self.model).__name__}_train_step")

    def _append_update(self, joint: Graph) -> list[Value]:
        """Add the optimizer's update of every parameter to `joint` (the loss and its
        gradients); return the step's outputs: the loss, then each new parameter and state."""
        gradients = joint.outputs[1:]
        builder = GraphBuilder(joint)
        hyper = {v.name: SymbolicTensor.of(v) for v in self.hyper_values}
        outputs: list[Value] = [joint.outputs[0]]
        with builder.active():
            for p_value, g_value, states in zip(self.param_values, gradients,
                                                self.state_values):
                builder.scope = [f"update.{p_value.name}"]
                new_p, new_states = self._update(
                    SymbolicTensor.of(p_value), SymbolicTensor.of(g_value),
                    [SymbolicTensor.of(s) for s in states], hyper)
                outputs.append(new_p._value)
                outputs.extend(s._value for s in new_states)
        return outputs

    def _hyperparameter_names(self) -> list[str]:
        if self.kind is Adam:
            return ["lr", "step_size", "bias_correction2_sqrt"]
        return ["lr", "first_step"] if self.group["momentum"] != 0 else ["lr"]

    def _update(self, p: Tensor, g: Tensor, states: list[Tensor],
                hyper: dict[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        group = self.group
        if group["maximize"]:
            g = F.neg(g)
        if self.kind is SGD:
            return self._sgd(p, g, states, hyper, group)
        return self._adam(p, g, states, hyper, group)

    @staticmethod
    def _sgd(p: Tensor, g: Tensor, states: list[Tensor], hyper: dict[str, Tensor],
             group: dict[str, Any]) -> tuple[Tensor, list[Tensor]]:
        if group["weight_decay"] != 0:
            g = F.add(g, F.mul(p, float(group["weight_decay"])))
        new_states = []
        if group["momentum"] != 0:
            (buffer,) = states
            momentum, dampening = float(group["momentum"]), float(group["dampening"])
            first = hyper["first_step"]
            later = F.add(F.mul(buffer, momentum), F.mul(g, 1 - dampening))
            buffer = F.add(F.mul(first, g), F.mul(F.sub(1.0, first), later))
            new_states = [buffer]
            g = F.add(g, F.mul(buffer, momentum)) if group["nesterov"] else buffer
        return F.sub(p, F.mul(hyper["lr"], g)), new_states

    @staticmethod
    def _adam(p: Tensor, g: Tensor, states: list[Tensor], hyper: dict[str, Tensor],
              group: dict[str, Any]) -> tuple[Tensor, list[Tensor]]:
        beta1, beta2 = (float(b) for b in group["betas"])
        weight_decay = float(group["weight_decay"])
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p = F.mul(p, F.sub(1.0, F.mul(hyper["lr"], weight_decay)))
            else:
                g = F.add(g, F.mul(p, weight_decay))
        m, v, *rest = states
        m = F.add(m, F.mul(F.sub(g, m), 1 - beta1))
        v = F.add(F.mul(v, beta2), F.mul(F.mul(g, g), 1 - beta2))
        new_states = [m, v]
        if group["amsgrad"]:
            v_max = F.maximum(rest[0], v)
            new_states.append(v_max)
            v = v_max
        denominator = F.add(F.div(F.sqrt(v), hyper["bias_correction2_sqrt"]), float(group["eps"]))
        return F.sub(p, F.div(F.mul(hyper["step_size"], m), denominator)), new_states

    def _inplace_map(self) -> dict[int, int]:
        """Native output index -> input index whose memory it overwrites (params and states)."""
        inputs = self.inputs
        mapping = {}
        out = 1
        for p_value, states in zip(self.param_values, self.state_values):
            for value in [p_value, *states]:
                mapping[out] = inputs.index(value)
                out += 1
        return mapping

    # ----- calling -------------------------------------------------------------------------------

    def _hyperparameters(self) -> list[np.ndarray]:
        group = self.group
        for key, value in self.baked.items():
            if group[key] != value:
                raise RuntimeError(f"optimizer option {key} changed from {value} to "
                                   f"{group[key]} after compile_train_step; compile again")
        dtype = self.params[0]._data.dtype
        lr = float(group["lr"])
        if self.kind is Adam:
            state = self.optimizer.state[self.params[0]]
            t = float(state["step"]._data) + 1
            beta1, beta2 = (float(b) for b in group["betas"])
            values = [lr, lr / (1 - beta1 ** t), (1 - beta2 ** t) ** 0.5]
        elif group["momentum"] != 0:
            first = self.optimizer.state[self.params[0]].get("_symgrad_first_step", False)
            values = [lr, 1.0 if first else 0.0]
        else:
            values = [lr]
        return [np.array(v, dtype=dtype) for v in values]

    def __call__(self, *inputs: Tensor) -> Tensor:
        if len(inputs) != self.n_inputs:
            raise TypeError(f"the train step takes {self.n_inputs} tensors (inputs and target), "
                            f"got {len(inputs)}")
        for check in self.index_checks:
            check(inputs[check.position]._data)
        by_value: dict[Value, np.ndarray] = dict(zip(self.inputs, (x._data for x in inputs)))
        by_value.update((v, t._data) for v, t in zip(self.state_inputs, self.model_state))
        by_value.update(zip(self.hyper_values, self._hyperparameters()))
        for values, tensors in zip(self.state_values, self.state_tensors):
            by_value.update((v, t._data) for v, t in zip(values, tensors))
        arrays = [by_value[v] for v in self.inputs]
        results = self.native.call(arrays, self.native_inplace)
        self._after_step()
        return Tensor._from_array(results[0])

    def _after_step(self) -> None:
        for p, states in zip(self.params, self.state_tensors):
            p._version.bump()
            for s in states:
                s._version.bump()
            state = self.optimizer.state[p]
            state.pop("_symgrad_first_step", None)
            if self.kind is Adam:
                state["step"]._data += 1


def compile_train_step(model: Any, loss_fn: Callable[..., Tensor], optimizer: Any,
                       example_inputs: Sequence[Tensor]) -> CompiledTrainStep:
    """Compile forward, loss, backward and the optimizer's update into one native call.

        >>> step = compiler.compile_train_step(model, loss_fn, optimizer, example_inputs=(x, y))
        >>> loss = step(x, y)       # parameters and optimizer state updated in place
    """
    return CompiledTrainStep(model, loss_fn, optimizer, tuple(example_inputs))
