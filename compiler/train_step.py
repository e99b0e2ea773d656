"""`compiler.compile_train_step(model, loss_fn, optimizer, example_inputs)`: one native call per
training step -- forward, loss, backward and the optimizer's update.

The loss of the model is traced and differentiated by the compiler's pipeline, as in
`compiler.compile`; then the optimizer's own update function (`optimizer.update`, the one its
eager `step()` runs: SGD with momentum, dampening, Nesterov and weight decay; Adam/AdamW with
amsgrad) is traced onto the same graph, so fusion merges it with the last gradient computations.
Parameters and optimizer state are updated in place in their own memory (the native function's
outputs are those very arrays), so `model`, `optimizer.state` and eager code keep seeing one set
of tensors.

Everything is read as it is at each call: the model's parameters and buffers by their names, the
optimizer's state tensors (so `optimizer.load_state_dict()` after compiling resumes from the
loaded state) and the scalars of the step (learning rate, Adam's bias corrections, whether SGD's
momentum buffer exists yet), which are inputs of the graph. The optimizer's other options are
compiled in, and the step refuses to run if they change, or if the model's trainable parameters
are no longer the ones the optimizer holds. `param.grad` is not written by the compiled step.

Native code cannot raise, so values that would make eager mode raise are checked in Python before
the call: a class label out of range (native gather would read it as NaN) is PyTorch's IndexError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from compiler import artifact_cache, pipeline
from compiler._compile import LiveState
from compiler.index_checks import class_index_checks
from compiler.ir import Graph, Value
from compiler.native_build import build_native_to_keep, native_from_artifact, prepare_kernels
from compiler.tracing import GraphBuilder, SymbolicTensor, named_state
from runtime import _dtype
from runtime._tensor import Tensor
from runtime.optim import Optimizer

# options of a parameter group that are not compiled in: read at each call, or not options
_LIVE_OPTIONS = frozenset({"params", "param_names", "lr", "initial_lr"})


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


def _check_optimizer(optimizer: Any) -> None:
    if not isinstance(optimizer, Optimizer) or type(optimizer).update is Optimizer.update:
        raise NotImplementedError(
            f"compile_train_step needs an optimizer whose update is written as a function of "
            f"tensors (runtime.optim's SGD, Adam, AdamW, RMSprop, Adagrad), not "
            f"{type(optimizer).__name__}")
    if len(optimizer.param_groups) != 1:
        raise NotImplementedError("compile_train_step supports one parameter group")


class CompiledTrainStep:
    """step(*inputs, target) -> the loss (a 0-d tensor), after updating the parameters."""

    def __init__(self, model: Any, loss_fn: Callable[..., Tensor], optimizer: Any,
                 example_inputs: Sequence[Tensor]) -> None:
        self.loss_fn = loss_fn
        self.example_inputs = tuple(example_inputs)
        self.retraces: list[str] = []  # why the step was compiled again, once per time
        self._compile(model, optimizer)

    def _compile(self, model: Any, optimizer: Any) -> None:
        loss_fn, example_inputs = self.loss_fn, self.example_inputs
        self.model = model
        self.optimizer = optimizer
        _check_optimizer(optimizer)
        group = optimizer.param_groups[0]
        self.baked = {k: v for k, v in group.items() if k not in _LIVE_OPTIONS}
        self.n_inputs = len(example_inputs)
        params = [t for _, t, kind in named_state(model) if kind == "param" and t.requires_grad]
        if {id(p) for p in params} != {id(p) for p in group["params"]}:
            raise ValueError("the optimizer must hold exactly the model's parameters that "
                             "require grad")
        prepare_kernels({p.dtype for p in params})  # on another core, while we trace
        record = pipeline.PipelineRecord()
        graph = pipeline.simplify_forward(pipeline.trace_model(
            _LossOfModel(model, loss_fn), example_inputs, record=record,
            guarded=(model, loss_fn)), record)
        assert record.guard is not None
        self._guard = record.guard
        if graph.outputs[0].shape != ():
            raise ValueError("loss_fn must return a scalar (use reduction='mean' or 'sum')")
        self.index_checks = class_index_checks(graph, self.n_inputs)
        self.live_state = LiveState(model, graph.inputs[self.n_inputs:])
        self._add_update_inputs(graph, params, group)
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
        parts = [artifact_cache.graph_key(forward), type(self.optimizer).__name__,
                 artifact_cache.exact_text(sorted(self.baked.items())),
                 artifact_cache.exact_text([v.name for v in self.param_values]),
                 artifact_cache.exact_text([v.name for v in forward.inputs]),
                 type(self.model).__name__]
        known = [part for part in parts if part is not None]
        if len(known) < len(parts):
            return None
        return artifact_cache.entry_key("train_step", *known)

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

    def _add_update_inputs(self, forward: Graph, params: list[Tensor],
                           group: dict[str, Any]) -> None:
        """Give the traced graph the inputs of the update of each parameter: its optimizer
        state tensors, then the scalars of the step, named `<parameter>.<name>`."""
        by_tensor = {id(t): v for t, v in zip(self.live_state.tensors(),
                                               self.live_state.values)}
        self.param_values = [by_tensor[id(p)] for p in params]
        self.state_values: list[dict[str, Value]] = []
        self.scalar_values: list[dict[str, Value]] = []
        for p, p_value in zip(params, self.param_values):
            self.state_values.append({
                name: forward.add_input(f"{p_value.name}.{name}", p_value.shape, p_value.dtype)
                for name in self.optimizer.state_tensors(p, group)})
            self.scalar_values.append({
                name: forward.add_input(f"{p_value.name}.{name}", (), _dtype.bool_
                                        if isinstance(value, bool) else p_value.dtype)
                for name, value in self.optimizer.step_scalars(p, group).items()})

    def _build_graph(self, forward: Graph) -> Graph:
        """The whole step: loss, gradients (to the parameters) and the update."""
        return pipeline.train_step_graph(forward, self.param_values, self._append_update,
                                         f"{type(self.model).__name__}_train_step")

    def _append_update(self, joint: Graph) -> list[Value]:
        """Trace the optimizer's update of every parameter onto `joint` (the loss and its
        gradients); return the step's outputs: the loss, then each new parameter and state."""
        gradients = joint.outputs[1:]
        builder = GraphBuilder(joint)
        group = self.optimizer.param_groups[0]
        outputs: list[Value] = [joint.outputs[0]]
        with builder.active():
            for p_value, g_value, states, scalars in zip(self.param_values, gradients,
                                                         self.state_values, self.scalar_values):
                builder.scope = [f"update.{p_value.name}"]
                new_p, new_state = self.optimizer.update(
                    SymbolicTensor.of(p_value), SymbolicTensor.of(g_value),
                    {name: SymbolicTensor.of(v) for name, v in states.items()},
                    {name: SymbolicTensor.of(v) for name, v in scalars.items()}, group)
                outputs.append(new_p._value)
                outputs.extend(new_state[name]._value for name in states)
        return outputs

    def _inplace_map(self) -> dict[int, int]:
        """Native output index -> input index whose memory it overwrites (params and states)."""
        inputs = self.inputs
        mapping = {}
        out = 1
        for p_value, states in zip(self.param_values, self.state_values):
            for value in [p_value, *states.values()]:
                mapping[out] = inputs.index(value)
                out += 1
        return mapping

    # ----- calling -------------------------------------------------------------------------------

    def _group(self) -> dict[str, Any]:
        """The optimizer's parameter group now (load_state_dict replaces it), its compiled-in
        options unchanged."""
        if len(self.optimizer.param_groups) != 1:
            raise RuntimeError("the optimizer has several parameter groups now; "
                               "compile_train_step supports one")
        group = self.optimizer.param_groups[0]
        for key, value in self.baked.items():
            if group.get(key) != value:
                raise RuntimeError(f"optimizer option {key} changed from {value} to "
                                   f"{group.get(key)} after compile_train_step; compile again")
        return group

    def _params(self, state: list[Tensor], group: dict[str, Any]) -> list[Tensor]:
        """The model's trainable parameters now, checked to be the optimizer's."""
        by_value = dict(zip(self.live_state.values, state))
        params = [by_value[v] for v in self.param_values]
        held = {id(p) for p in group["params"]}
        for value, p in zip(self.param_values, params):
            if id(p) not in held:
                raise RuntimeError(
                    f"the model's parameter '{value.name}' is not one the optimizer holds (was "
                    "it replaced after compile_train_step?); eager training would not update "
                    "it either. Give the optimizer the model's parameters (a new optimizer, or "
                    "the new tensor in optimizer.param_groups) before the next step")
        if len(held) != len(params):
            raise RuntimeError("the optimizer holds parameters the model no longer has; give "
                               "it exactly the model's parameters that require grad")
        return params

    def __call__(self, *inputs: Tensor) -> Tensor:
        if len(inputs) != self.n_inputs:
            raise TypeError(f"the train step takes {self.n_inputs} tensors (inputs and target), "
                            f"got {len(inputs)}")
        if not self._guard.holds((self.model, self.loss_fn)):
            self.retraces.append(self._guard.what_changed((self.model, self.loss_fn))
                                 or "the model changed")
            self._compile(self.model, self.optimizer)
        for check in self.index_checks:
            check(inputs[check.position]._data)
        group = self._group()
        model_state = self.live_state.tensors()
        params = self._params(model_state, group)
        by_value: dict[Value, np.ndarray] = dict(zip(self.inputs, (x._data for x in inputs)))
        by_value.update((v, t._data) for v, t in zip(self.live_state.values, model_state))
        states = []
        for p, state_values, scalar_values in zip(params, self.state_values, self.scalar_values):
            state = self.optimizer.state_tensors(p, group)
            if state.keys() != state_values.keys():
                raise RuntimeError(f"the optimizer's state of a parameter is now "
                                   f"{sorted(state)}, compiled as {sorted(state_values)}; "
                                   "compile the step again")
            by_value.update((state_values[name], t._data) for name, t in state.items())
            for name, value in self.optimizer.step_scalars(p, group).items():
                v = scalar_values[name]
                by_value[v] = np.array(value, dtype=v.dtype.numpy)
            states.append(state)
        arrays = [by_value[v] for v in self.inputs]
        results = self.native.call(arrays, self.native_inplace)
        for p, state in zip(params, states):
            p._version.bump()
            for t in state.values():
                t._version.bump()
            self.optimizer.finish_step(p, group, state)
        return Tensor._from_array(results[0])


def compile_train_step(model: Any, loss_fn: Callable[..., Tensor], optimizer: Any,
                       example_inputs: Sequence[Tensor]) -> CompiledTrainStep:
    """Compile forward, loss, backward and the optimizer's update into one native call.

        >>> step = compiler.compile_train_step(model, loss_fn, optimizer, example_inputs=(x, y))
        >>> loss = step(x, y)       # parameters and optimizer state updated in place
    """
    return CompiledTrainStep(model, loss_fn, optimizer, tuple(example_inputs))
