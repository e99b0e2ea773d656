"""The compiler's pipeline: the staged functions that compile, compile_train_step, export and
explain all call, so that each builds its graphs the same way.

    trace_model         model -> forward graph (refusing what cannot be traced, e.g. Dropout in
                        training mode)
    simplify_forward    the stages that keep a graph differentiable: canonicalize, stabilize, cse
    inference_graph     the forward alone, every stage: what no_grad and export lower
    differentiate       compiler.grad, then the `saving` stage (what backward reads)
    training_graphs     differentiate with a seed input, simplify, partition into forward and
                        backward functions: what a compiled module lowers for training
    train_step_graph    differentiate the loss, append the optimizer's update, simplify: the graph
                        of one compiled training step

Every rewrite that fires is recorded, by stage and name, in the `RewriteLog` passed along; a
`PipelineRecord` also keeps each stage's graph, which is what `explain` shows. The pipeline
builds graphs only: lowering them to native code is the callers' business.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from compiler.artifact_cache import graph_key
from compiler.autodiff import grad
from compiler.errors import CompileError
from compiler.guards import TraceGuard, trace_once_checked
from compiler.ir import Graph, Value
from compiler.partition import Partition, partition
from compiler.passes import RewriteLog, run_stage, simplify
from compiler.tracing import trace
from runtime._tensor import Tensor

PRE_GRAD_STAGES = ("canonicalize", "stabilize", "cse")


@dataclass
class PipelineRecord:
    """What the pipeline did: each stage's resulting graph, in order, and every rewrite."""

    stages: list[tuple[str, Graph]] = field(default_factory=list)
    log: RewriteLog = field(default_factory=RewriteLog)
    guard: TraceGuard | None = None  # what the trace depended on besides tensors

    def add(self, stage: str, graph: Graph) -> Graph:
        self.stages.append((stage, graph))
        return graph

    def graph(self, stage: str) -> Graph:
        """The graph of the last run of `stage`."""
        for name, graph in reversed(self.stages):
            if name == stage:
                return graph
        raise KeyError(f"the pipeline ran no stage {stage!r}; it ran "
                       f"{', '.join(name for name, _ in self.stages)}")

    def __str__(self) -> str:
        lines = []
        for name, graph in self.stages:
            fired = sum(1 for e in self.log.events if e.stage == name)
            rewrites = f", {fired} rewrites" if fired else ""
            lines.append(f"  {name:18} {graph.name}: {len(graph.nodes)} nodes{rewrites}")
        return "\n".join(lines)


def _record(record: PipelineRecord | None) -> PipelineRecord:
    return record if record is not None else PipelineRecord()


# ----- stages -------------------------------------------------------------------------------------

def trace_model(model: Any, example_inputs: Sequence[Tensor], *, dynamic_batch: bool = True,
                name: str = "forward", record: PipelineRecord | None = None,
                guarded: Any = None) -> Graph:
    """`compiler.trace`, after refusing layers the compiler cannot lower in their current mode,
    done twice to refuse a forward whose graph depends on more than its tensors; the record
    keeps the guard of what the trace read on `guarded` (default: the model)."""
    check_traceable_layers(model)
    graph, guard = trace_once_checked(
        lambda: trace(model, example_inputs, dynamic_batch=dynamic_batch, name=name),
        model if guarded is None else guarded, _identity)
    record = _record(record)
    record.guard = guard
    return record.add("trace", graph)


def _identity(graph: Graph) -> str:
    """What two traces of one forward must share: the graph's exact key, or its text."""
    return graph_key(graph) or str(graph)


def check_traceable_layers(model: Any) -> None:
    """Raise CompileError naming the first layer that cannot be compiled as it is: a dropout
    layer in training mode (the compiler draws no random numbers)."""
    from runtime.nn.dropout import Dropout

    named_modules = getattr(model, "named_modules", None)
    if named_modules is None:  # a function of tensors
        return
    for path, module in named_modules():
        if isinstance(module, Dropout) and module.training and module.p > 0:
            where = f"'{path}' ({module!r})" if path else repr(module)
            raise CompileError(f"the model's dropout layer {where} is in training mode, and "
                               "dropout is not compiled yet; call model.eval() before compiling "
                               "(or train that model eagerly)", op="dropout")


def simplify_forward(graph: Graph, record: PipelineRecord | None = None) -> Graph:
    """The stages that keep a graph differentiable (no fusion or layout yet)."""
    record = _record(record)
    return record.add("simplify_forward", simplify(graph, stages=PRE_GRAD_STAGES, log=record.log))


def inference_graph(forward: Graph, name: str, record: PipelineRecord | None = None) -> Graph:
    """The forward simplified by every stage: what runs under no_grad and what export lowers."""
    record = _record(record)
    graph = simplify(forward, log=record.log)
    graph.name = name
    return record.add("inference", graph)


def differentiate(forward: Graph, wrt: Sequence[Value], *, seed_input: bool,
                  record: PipelineRecord | None = None) -> Graph:
    """The joint forward-and-reverse graph: compiler.grad, then the `saving` stage."""
    record = _record(record)
    joint = record.add("grad", grad(forward, wrt=list(wrt), seed_input=seed_input))
    return record.add("saving", run_stage(joint, "saving", record.log))


@dataclass
class TrainingGraphs:
    """A model's graphs for training: the simplified joint graph and its two halves."""

    joint: Graph
    partition: Partition
    seed: Value  # the joint graph's input that is the output's gradient


def training_graphs(forward: Graph, wrt: Sequence[Value], name: str, *, n_outputs: int = 1,
                    record: PipelineRecord | None = None) -> TrainingGraphs:
    """Differentiate `forward` (gradient seeded by an input), simplify, and partition it into a
    forward function that saves values and a backward function that reads them."""
    record = _record(record)
    joint = differentiate(forward, wrt, seed_input=True, record=record)
    seed = joint.inputs[-1]
    joint = simplify(joint, log=record.log)
    joint.name = name
    record.add("simplify", joint)
    parts = partition(joint, n_outputs=n_outputs, seed=seed)
    record.add("partition.forward", parts.forward)
    record.add("partition.backward", parts.backward)
    return TrainingGraphs(joint, parts, seed)


UpdateBuilder = Callable[[Graph], list[Value]]


def train_step_graph(forward: Graph, wrt: Sequence[Value], append_update: UpdateBuilder,
                     name: str, record: PipelineRecord | None = None) -> Graph:
    """One training step as a graph: the loss `forward` (a scalar), its gradients with respect
    to `wrt`, then what `append_update(joint)` adds (the optimizer's update, given the gradients
    as `joint.outputs[1:]`; it returns the new outputs), all simplified together."""
    record = _record(record)
    joint = differentiate(forward, wrt, seed_input=False, record=record)
    joint.outputs = append_update(joint)
    record.add("update", joint)
    joint = simplify(joint, log=record.log)
    joint.name = name
    return record.add("simplify", joint)
