"""The pipeline that compile, explain and export share: what explain shows is, node for node, what
compile lowers, and every rewrite on the way (ReLU's mask included) is logged by name."""

from __future__ import annotations

from typing import Any

import pytest

import compiler
import runtime
from compiler import pipeline
from compiler.ir import Graph
from runtime import nn


@pytest.fixture(autouse=True)
def no_artifact_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compile afresh: a cached compilation keeps only the natives, not the graphs."""
    monkeypatch.setenv("SYMGRAD_ARTIFACT_CACHE", "0")


def structure(graph: Graph) -> list[tuple[Any, ...]]:
    """Each node as (op, attributes, operands by position, output type): two graphs with the same
    structure compute the same thing, whatever their values are named."""
    position = {v: f"input {i}" for i, v in enumerate(graph.inputs)}
    position.update({v: f"constant {i}" for i, v in enumerate(graph.constants)})
    rows = []
    for k, node in enumerate(graph.nodes):
        rows.append((node.op_name, node.op.describe() if node.op_name == "fused" else "",
                     sorted((key, repr(value)) for key, value in node.attrs.items()),
                     [position[v] for v in node.inputs], node.output.type_text()))
        position[node.output] = f"node {k}"
    rows.append(("return", [position[v] for v in graph.outputs]))
    return rows


def mlp() -> nn.Module:
    runtime.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))


class WithLoss(nn.Module):
    """loss_fn(model(x), target) as one module, the form compile() differentiates."""

    def __init__(self, model: nn.Module, loss_fn: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, x: runtime.Tensor, target: runtime.Tensor) -> runtime.Tensor:
        return self.loss_fn(self.model(x), target)


def compiled_partition(model: Any, example_inputs: tuple[runtime.Tensor, ...]) -> Any:
    compiled = compiler.compile(model, example_inputs)
    return compiled.training_functions((False,) * len(example_inputs)).partition


def assert_same_graphs(shown: Graph, lowered: Graph) -> None:
    assert len(shown.nodes) == len(lowered.nodes), f"{shown}\n\nis not\n\n{lowered}"
    assert structure(shown) == structure(lowered), f"{shown}\n\nis not\n\n{lowered}"


def test_explain_shows_the_forward_and_backward_that_compile_lowers_for_an_mlp() -> None:
    x = runtime.randn(2, 1, 28, 28)
    report = compiler.explain(mlp(), (x,))
    lowered = compiled_partition(mlp(), (x,))
    assert_same_graphs(report.partition.forward, lowered.forward)
    assert_same_graphs(report.partition.backward, lowered.backward)
    assert [v.type_text() for v in report.partition.saved] == \
        [v.type_text() for v in lowered.saved]
    # what the report says in words is true of the compiled functions
    assert (f"split into a forward function of {len(lowered.forward.nodes)} and a backward of "
            f"{len(lowered.backward.nodes)}") in report.summary()
    # the bias add and the ReLU are one kernel, because backward reads the ReLU's output only
    assert [n.op_name for n in report.partition.forward.nodes].count("relu") == 0
    assert report.rewrites.fired("relu_mask_from_output") == 1
    assert "[saving] relu_mask_from_output" in str(report)


def test_explain_shows_what_compile_lowers_for_a_model_with_a_loss() -> None:
    x, y = runtime.randn(3, 1, 28, 28), runtime.tensor([1, 0, 9])
    report = compiler.explain(mlp(), (x, y), loss_fn=nn.CrossEntropyLoss())
    lowered = compiled_partition(WithLoss(mlp(), nn.CrossEntropyLoss()), (x, y))
    assert_same_graphs(report.partition.forward, lowered.forward)
    assert_same_graphs(report.partition.backward, lowered.backward)
    assert_same_graphs(report.simplified, _training_joint(WithLoss(mlp(), nn.CrossEntropyLoss()),
                                                          (x, y)))


def _training_joint(model: nn.Module, example_inputs: tuple[runtime.Tensor, ...]) -> Graph:
    forward = pipeline.simplify_forward(pipeline.trace_model(model, example_inputs))
    wrt = [v for v in forward.inputs if v.kind == "param"]
    return pipeline.training_graphs(forward, wrt, "joint").joint


def test_the_record_lists_every_stage_in_order() -> None:
    record = pipeline.PipelineRecord()
    forward = pipeline.simplify_forward(
        pipeline.trace_model(mlp(), (runtime.randn(2, 1, 28, 28),), record=record), record)
    wrt = [v for v in forward.inputs if v.kind == "param"]
    pipeline.training_graphs(forward, wrt, "mlp_train", record=record)
    assert [name for name, _ in record.stages] == [
        "trace", "simplify_forward", "grad", "saving", "simplify", "partition.forward",
        "partition.backward"]
    assert {e.stage for e in record.log.events} >= {"saving", "fuse", "layout"}
    assert "saving" in str(record) and "1 rewrites" in str(record)
    with pytest.raises(KeyError, match="no stage 'inference'"):
        record.graph("inference")


def test_export_and_no_grad_lower_the_same_inference_graph() -> None:
    from compiler._export import inference_graph

    x = runtime.randn(2, 1, 28, 28)
    exported = inference_graph(mlp(), (x,))
    report = compiler.explain(mlp(), (x,))
    assert_same_graphs(exported, report.inference)
