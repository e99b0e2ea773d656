"""`compiler.compile(model, example_inputs)`: a module that runs the model as native code.

The compiled module shares the model's parameters (it reads them at every call, so optimizer
steps are seen). With grad enabled it calls a native forward that also returns the values the
backward needs, and gives its outputs a `grad_fn` (a `CompiledBackward` node) that calls the
native backward and hands gradients to the parameters' and inputs' own autograd edges -- so the
compiled module mixes with eager ops before and after it, and the usual training loop works.
Under `no_grad` it calls an inference function that saves nothing.

One compilation serves every batch size. Each distinct (input dtypes, trailing shapes, which
inputs need gradients) gets its own native functions, compiled on first use and cached.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from compiler import artifact_cache, pipeline
from compiler.index_checks import ClassIndexCheck, class_index_checks
from compiler.ir import Graph, Value
from compiler.native_build import (
    build_native_to_keep,
    build_natives_to_keep,
    native_from_artifact,
    prepare_kernels,
    value_meta,
)
from compiler.partition import Partition
from compiler.tracing import BATCH, named_state
from runtime._dtype import from_numpy_dtype
from runtime._grad_mode import is_grad_enabled
from runtime._tensor import Tensor
from runtime.autograd._node import FREED_MESSAGE, Node
from runtime.native import NativeFunction


@dataclass
class TrainingFunctions:
    partition: Partition
    forward: NativeFunction
    backward: NativeFunction
    wrt: list[Value]  # the graph inputs whose gradients backward returns, in its output order
    kept: tuple[dict[str, Any], dict[str, bytes]] | None = None  # for the artifact cache


def _training_artifact(functions: TrainingFunctions) -> artifact_cache.Artifact:
    assert functions.kept is not None, "kept by the build that made them"
    natives, objects = functions.kept
    parts = functions.partition
    meta = {**natives, "wrt": [v.name for v in functions.wrt],
            "forward_outputs": [value_meta(v) for v in parts.forward.outputs],
            "saved": [v.name for v in parts.saved],
            "forward_inputs_used": [v.name for v in parts.forward_inputs_used]}
    return artifact_cache.Artifact(meta, objects)


def _value_of(entry: list[Any]) -> Value:
    """A Value from `value_meta`'s list: sizes a*N + b, N the symbolic batch size."""
    name, dtype, sizes = entry
    shape = tuple(int(b) if not a else int(a) * BATCH + int(b) for a, b in sizes)
    return Value(name, shape, from_numpy_dtype(np.dtype(dtype)))


class CompiledBackward(Node):
    """grad_fn of a compiled module's output: runs the native backward."""

    def __init__(self, module: CompiledModule, functions: TrainingFunctions,
                 edges: list[tuple[Node | None, int]], backward_args: list[np.ndarray],
                 versions: list[tuple[Tensor, int]], out_meta: tuple[tuple[int, ...], Any],
                 batch_size: int | None) -> None:
        super().__init__(edges)
        self._batch_size = batch_size  # the forward's N: backward needs it even when no
        self._functions = functions  # argument of its own has the batch dimension (x.sum(0))
        self._args: list[np.ndarray] | None = backward_args
        self._versions = versions
        self._out_meta = out_meta
        self._module_name = module.name

    def name(self) -> str:
        return "CompiledFunctionBackward"

    def apply(self, grad_outputs: list[Tensor | None]) -> list[Tensor | None]:
        if self._args is None:
            raise RuntimeError(FREED_MESSAGE)
        if is_grad_enabled():
            raise RuntimeError(f"create_graph=True (double backward) through the compiled "
                               f"module {self._module_name} is not supported; differentiate "
                               "the eager model instead")
        for tensor, version in self._versions:
            if tensor._version.value != version:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by "
                    f"an inplace operation: [{tensor.dtype} {list(tensor.shape)}] is at version "
                    f"{tensor._version.value}; expected version {version} instead.")
        seed = grad_outputs[0]
        shape, dtype = self._out_meta
        seed_array = np.zeros(shape, dtype) if seed is None else seed._data
        grads = self._functions.backward.call([seed_array.astype(dtype, copy=False), *self._args],
                                              batch_size=self._batch_size)
        return [Tensor._from_array(g) for g in grads]

    def release(self) -> None:
        super().release()
        self._args = None


class CompiledModule:
    """A model compiled to native code; call it like the model."""

    def __init__(self, model: Any, example_inputs: Sequence[Tensor], *,
                 dynamic_batch: bool = True) -> None:
        self.model = model
        self.name = type(model).__name__
        self.dynamic_batch = dynamic_batch
        self.example_inputs = tuple(example_inputs)
        self.compilations = 0  # native functions built (a test counts them)
        self.retraces: list[str] = []  # why the model was traced again, once per retrace
        self._trace()

    def _trace(self) -> None:
        """Trace and simplify the model and check it can be lowered; compiled functions are
        built on first use. Its guard records what the trace depended on besides tensors."""
        model = self.model
        prepare_kernels({t.dtype for _, t, _ in named_state(model)})  # meanwhile, on another core
        record = pipeline.PipelineRecord()
        self.graph = pipeline.simplify_forward(pipeline.trace_model(
            model, self.example_inputs, dynamic_batch=self.dynamic_batch, record=record),
            record)
        assert record.guard is not None
        self._guard = record.guard
        self._graph_key = artifact_cache.graph_key(self.graph)
        self.__dict__.pop("_index_checks", None)  # of the previous trace
        self._inference: NativeFunction | None = None
        self._training: dict[tuple[bool, ...], TrainingFunctions] = {}
        self._n_inputs = len(self.example_inputs)
        self._live_state = LiveState(model, self.graph.inputs[self._n_inputs:])
        self._check_lowerable()

    def _retrace_if_changed(self) -> None:
        """Trace again when something the trace depended on changed (a replaced submodule,
        a new hook, train()/eval(), an attribute forward reads): compiled code never runs a
        model that is no longer there."""
        if self._guard.holds(self.model):
            return
        reason = self._guard.what_changed(self.model) or "the model changed"
        self.retraces.append(reason)
        self._trace()

    def _check_lowerable(self) -> None:
        """Fail now, not at the first call, if the model uses an op with no native lowering
        (a graph that passed once, as the artifact cache remembers, passes again)."""
        key = self._cache_key("lowerable")
        if key is not None and artifact_cache.load(key) is not None:
            return
        from compiler.lowering.codegen import check_lowerable  # not needed by cached modules

        check_lowerable(self.graph)
        used = self._used_values()
        wrt = [v for v in self.graph.inputs[self._n_inputs:] if v.kind == "param" and v in used]
        if wrt and len(self.graph.outputs) == 1:
            check_lowerable(pipeline.differentiate(self.graph, wrt, seed_input=True))
        if key is not None:
            artifact_cache.store(key, artifact_cache.Artifact({}))

    def _used_values(self) -> set[Value]:
        """Values some node reads or the graph returns: the inputs worth differentiating."""
        return {v for n in self.graph.nodes for v in n.inputs} | set(self.graph.outputs)

    def _cache_key(self, kind: str, *parts: Any) -> str | None:
        """The artifact cache's key of a compilation of this module's graph (None: no key)."""
        texts = [artifact_cache.exact_text(p) for p in (self.name, *parts)]
        known = [t for t in texts if t is not None]
        if self._graph_key is None or len(known) < len(texts):
            return None
        return artifact_cache.entry_key(kind, self._graph_key, *known)

    # ----- building ------------------------------------------------------------------------------

    def inference_function(self) -> NativeFunction:
        if self._inference is None:
            key = self._cache_key("inference")
            artifact = artifact_cache.load(key) if key is not None else None
            self._inference = native_from_artifact(artifact, "native")
            if self._inference is None:
                graph = pipeline.inference_graph(self.graph, f"{self.name}_inference")
                self._inference, meta, object_bytes = build_native_to_keep(graph)
                if key is not None:
                    artifact_cache.store(key, artifact_cache.Artifact(
                        {"native": meta}, {"native": object_bytes}))
            self.compilations += 1
        return self._inference

    def training_functions(self, input_needs: tuple[bool, ...]) -> TrainingFunctions:
        functions = self._training.get(input_needs)
        if functions is not None:
            return functions
        if len(self.graph.outputs) != 1:
            raise NotImplementedError("training through a compiled module with several outputs "
                                      "is not supported yet; return one tensor")
        used = self._used_values()
        wrt = [v for i, v in enumerate(self.graph.inputs) if v in used and (
            (i < self._n_inputs and input_needs[i]) or (v.kind == "param" and i >= self._n_inputs))]
        key = self._cache_key("training", input_needs)
        artifact = artifact_cache.load(key) if key is not None else None
        functions = self._training_from(artifact, wrt) if artifact is not None else None
        if functions is None:
            functions = self._build_training(wrt)
            if key is not None:
                artifact_cache.store(key, _training_artifact(functions))
        self.compilations += 2
        self._training[input_needs] = functions
        return functions

    def _build_training(self, wrt: list[Value]) -> TrainingFunctions:
        parts = pipeline.training_graphs(self.graph, wrt, f"{self.name}_train").partition
        (forward, forward_meta, forward_object), (backward, backward_meta, backward_object) = \
            build_natives_to_keep([parts.forward, parts.backward])
        functions = TrainingFunctions(parts, forward, backward, wrt)
        functions.kept = ({"forward": forward_meta, "backward": backward_meta},
                          {"forward": forward_object, "backward": backward_object})
        return functions

    def _training_from(self, artifact: artifact_cache.Artifact,
                       wrt: list[Value]) -> TrainingFunctions | None:
        """The training functions an earlier process compiled for this graph, or None if the
        artifact does not fit. The partition holds what calls need: the forward's outputs, the
        saved values and the inputs backward reads (its graphs have no nodes)."""
        meta = artifact.meta
        forward = native_from_artifact(artifact, "forward")
        backward = native_from_artifact(artifact, "backward")
        inputs = {v.name: v for v in self.graph.inputs}
        try:
            if forward is None or backward is None or meta["wrt"] != [v.name for v in wrt]:
                return None
            outputs = [_value_of(entry) for entry in meta["forward_outputs"]]
            by_name = {v.name: v for v in outputs}
            saved = [by_name[name] for name in meta["saved"]]
            inputs_used = [inputs[name] for name in meta["forward_inputs_used"]]
        except (KeyError, TypeError, ValueError):
            return None
        forward_graph = Graph(f"forward_{self.name}_train")
        forward_graph.inputs, forward_graph.outputs = list(self.graph.inputs), outputs
        backward_graph = Graph(f"backward_{self.name}_train")
        parts = Partition(forward_graph, backward_graph, saved, inputs_used, n_outputs=1)
        return TrainingFunctions(parts, forward, backward, wrt)

    # ----- calling -------------------------------------------------------------------------------

    @functools.cached_property
    def _index_checks(self) -> list[ClassIndexCheck]:
        """Range checks of the inputs that are class indices (a loss inside the model)."""
        return class_index_checks(self.graph, self._n_inputs)

    def _state(self) -> list[Tensor]:
        """The model's parameters and buffers now (a replaced Parameter or submodule is seen)."""
        return self._live_state.tensors()

    def __call__(self, *inputs: Any) -> Any:
        if len(inputs) != self._n_inputs:
            raise TypeError(f"{self.name} was compiled for {self._n_inputs} inputs, got "
                            f"{len(inputs)}")
        for i, x in enumerate(inputs):
            if not isinstance(x, Tensor):
                raise TypeError(f"input {i} must be a Tensor, got {type(x).__name__}")
            if x._is_symbolic:
                return self.model(*inputs)  # traced inside a larger model: trace through
        self._retrace_if_changed()
        for check in self._index_checks:
            check(inputs[check.position]._data)
        state = self._state()
        arrays = [x._data for x in inputs] + [t._data for t in state]
        grad_mode = is_grad_enabled()
        input_needs = tuple(grad_mode and x.requires_grad for x in inputs)
        if not grad_mode or not (any(input_needs) or any(t.requires_grad for t in state)):
            (out,) = self.inference_function()(*arrays)
            return Tensor._from_array(out)
        functions = self.training_functions(input_needs)
        results = functions.forward(*arrays)
        return self._attach_backward(functions, inputs, state, arrays, results)

    def _attach_backward(self, functions: TrainingFunctions, inputs: Sequence[Tensor],
                         state: list[Tensor], arrays: list[np.ndarray],
                         results: list[np.ndarray]) -> Tensor:
        parts = functions.partition
        by_value: dict[Value, np.ndarray] = dict(zip(parts.forward.outputs, results))
        tensors = list(inputs) + state
        input_index = {v: i for i, v in enumerate(self.graph.inputs)}
        backward_args = [arrays[input_index[v]] for v in parts.forward_inputs_used]
        backward_args += [by_value[v] for v in parts.saved]
        versions = [(tensors[input_index[v]], tensors[input_index[v]]._version.value)
                    for v in parts.forward_inputs_used]
        edges = [tensors[input_index[v]]._gradient_edge() for v in functions.wrt]
        out_array = results[0]
        batch = int(inputs[0].shape[0]) if self.dynamic_batch and inputs[0].ndim else None
        node = CompiledBackward(self, functions, edges, backward_args, versions,
                                (out_array.shape, out_array.dtype), batch)
        out = Tensor._from_array(out_array)
        out._set_history(node, 0)
        return out

    def saved_bytes_per_example(self, input_needs: tuple[bool, ...] | None = None) -> int:
        needs = input_needs or (False,) * self._n_inputs
        return self.training_functions(needs).partition.saved_bytes_per_example()

    def __repr__(self) -> str:
        return f"CompiledModule({self.name}, {len(self.graph.nodes)} ops)"


class LiveState:
    """A model's parameters and buffers as they are at each call, found by their dotted names
    (a few dict lookups, so a replaced Parameter or submodule is seen), checked against the
    graph inputs they were traced as."""

    def __init__(self, model: Any, values: Sequence[Value]) -> None:
        self.model = model
        self.values = list(values)  # the graph's state inputs, named as named_state names them
        self.paths = [_path_of(v.name, v.kind) for v in self.values]

    def tensors(self) -> list[Tensor]:
        name = type(self.model).__name__
        tensors = []
        for value, (path, registry, attribute) in zip(self.values, self.paths):
            owner = self.model
            for step in path:
                modules = getattr(owner, "_modules", None)
                owner = modules.get(step) if modules is not None else None
            table = getattr(owner, registry, None)
            t = table.get(attribute) if table is not None else None
            if not isinstance(t, Tensor):
                raise RuntimeError(f"{name} no longer has '{value.name}', which it had when it "
                                   "was compiled; compile it again")
            if t._data.shape != value.shape or t._data.dtype != value.dtype.numpy:
                raise RuntimeError(f"parameter '{value.name}' is now {t.dtype} "
                                   f"{list(t.shape)}; it was compiled as {value.dtype} "
                                   f"{list(value.shape)}. Compile the model again.")
            tensors.append(t)
        return tensors


def _path_of(dotted: str, kind: str) -> tuple[list[str], str, str]:
    """'linear_relu_stack.0.weight' -> (['linear_relu_stack', '0'], '_parameters', 'weight')."""
    *path, attribute = dotted.split(".")
    return path, "_parameters" if kind == "param" else "_buffers", attribute


def compile(model: Any, example_inputs: Sequence[Tensor] | Tensor, *,  # noqa: A001
            dynamic_batch: bool = True) -> CompiledModule:
    """Compile `model` for inputs like `example_inputs` (the batch size may vary)."""
    if isinstance(example_inputs, Tensor):
        example_inputs = (example_inputs,)
    return CompiledModule(model, example_inputs, dynamic_batch=dynamic_batch)
