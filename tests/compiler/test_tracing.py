"""compiler.trace: a model's forward recorded as IR, with symbolic batch size, parameters as named
inputs, names from the modules, and a TracingError where Python needs a traced value."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from compiler_testing import NeuralNetwork, graph_arguments

import runtime
from compiler import TracingError, trace
from compiler.interpret import run
from compiler.tracing import BATCH
from runtime import nn


@pytest.fixture(scope="module")
def mlp_graph():
    runtime.manual_seed(0)
    model = NeuralNetwork()
    return model, trace(model, (runtime.randn(64, 1, 28, 28),))


def test_the_tutorial_mlp_prints_one_line_per_op_named_after_its_modules(mlp_graph) -> None:
    _, graph = mlp_graph
    lines = str(graph).splitlines()
    assert lines[0].startswith("graph forward(%x: f32[N, 1, 28, 28], "
                               "%linear_relu_stack.0.weight: f32[512, 784], "
                               "%linear_relu_stack.0.bias: f32[512], ")
    assert len(lines) == len(graph.nodes) + 3  # header, nodes, return, closing brace
    assert "  %flatten.out: f32[N, 784] = reshape(%x) {shape=(N, 784)}" in lines
    assert ("  %linear_relu_stack.1.out: f32[N, 512] = relu(%linear_relu_stack.0.out)"
            in lines)
    assert lines[-2] == "  return %linear_relu_stack.4.out"


def test_parameters_are_inputs_named_by_their_dotted_names_and_never_copied(mlp_graph) -> None:
    model, graph = mlp_graph
    state = [(v.name, v.kind, v.shape) for v in graph.inputs[1:]]
    assert state == [(name, "param", tuple(p.shape)) for name, p in model.named_parameters()]
    assert graph.constants == {}  # no parameter value was captured into the graph


def test_the_graph_reads_the_parameters_it_is_given_at_each_run(mlp_graph) -> None:
    model, graph = mlp_graph
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    with runtime.no_grad():
        model.linear_relu_stack[4].bias.add_(1.0)  # an optimizer step, say
        expected = model(runtime.tensor(x)).numpy()
        model.linear_relu_stack[4].bias.sub_(1.0)
    before = run(graph, graph_arguments(model, [x]))[0]
    np.testing.assert_allclose(before + 1.0, expected, rtol=1e-5, atol=1e-5)


def test_the_batch_dimension_is_symbolic_unless_asked_otherwise(mlp_graph) -> None:
    _, graph = mlp_graph
    assert graph.inputs[0].shape == (BATCH, 1, 28, 28)
    assert graph.outputs[0].shape == (BATCH, 10)
    fixed = trace(NeuralNetwork(hidden=8), (runtime.randn(3, 1, 28, 28),), dynamic_batch=False)
    assert fixed.inputs[0].shape == (3, 1, 28, 28)
    assert fixed.outputs[0].shape == (3, 10)


def test_one_trace_runs_at_every_batch_size(mlp_graph) -> None:
    model, graph = mlp_graph
    for n in (1, 7):
        x = runtime.randn(n, 1, 28, 28)
        (out,) = run(graph, graph_arguments(model, [x.numpy()]))
        with runtime.no_grad():
            np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_fingerprint_is_the_same_for_two_traces_and_any_example_batch_size() -> None:
    model = NeuralNetwork(hidden=16)
    first = trace(model, (runtime.randn(4, 1, 28, 28),))
    second = trace(model, (runtime.randn(9, 1, 28, 28),))
    assert first.fingerprint() == second.fingerprint()
    assert trace(NeuralNetwork(hidden=17), (runtime.randn(4, 1, 28, 28),)).fingerprint() \
        != first.fingerprint()


class Branching(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # Python control flow on a traced value
            return x
        return -x


def test_branching_on_a_traced_value_is_a_tracing_error_with_the_users_line() -> None:
    line = Branching.forward.__code__.co_firstlineno + 1
    with pytest.raises(TracingError, match=rf"bool\(tensor\).*test_tracing.py:{line}"):
        trace(Branching(), (runtime.randn(2, 3),))


@pytest.mark.parametrize(("read", "message"), [
    (lambda x: x.sum().item(), r"item\(\) needs the value of %sum"),
    (lambda x: x.numpy(), r"numpy\(\) needs the value of %x"),
    (lambda x: float(x.sum()), r"float\(tensor\) needs the value of %sum"),
    (lambda x: x.tolist(), r"tolist\(\) needs the value of %x"),
    (lambda x: len(x), r"len\(\) of a tensor with a symbolic first dimension"),
])
def test_reading_a_traced_value_in_python_is_a_tracing_error(read, message) -> None:
    with pytest.raises(TracingError, match=message + r".*test_tracing.py:\d+"):
        trace(read, (runtime.randn(2, 3),))


def test_sizes_read_from_a_traced_shape_stay_symbolic() -> None:
    graph = trace(lambda x: x.view(x.shape[0], -1).sum() / x.size(0), (runtime.randn(5, 2, 3),))
    assert graph.nodes[0].output.shape == (BATCH, 6)
    assert [n.op_name for n in graph.nodes] == ["reshape", "sum", "size", "div"]
    x = np.arange(12.0, dtype=np.float32).reshape(2, 2, 3)
    np.testing.assert_allclose(run(graph, [x])[0], x.sum() / 2)


class InPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Sequential(nn.Linear(3, 3), nn.ReLU(inplace=True))

    def forward(self, x):
        y = self.layer(x)
        y.mul_(2)
        return y + y.detach()


def test_in_place_ops_and_detach_are_recorded_out_of_place() -> None:
    model = InPlace()
    graph = trace(model, (runtime.randn(2, 3),))
    assert [n.op_name for n in graph.nodes][-4:] == ["relu", "mul", "stop_gradient", "add"]
    x = runtime.randn(4, 3)
    with runtime.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(run(graph, graph_arguments(model, [x.numpy()]))[0], expected,
                               rtol=1e-6)


def test_tensors_that_are_not_parameters_become_constants() -> None:
    scale = runtime.tensor([1.0, 2.0, 3.0])
    graph = trace(lambda x: x * scale, (runtime.randn(2, 3),))
    assert [v.name for v in graph.inputs] == ["x"]
    (constant,) = graph.constants.values()
    np.testing.assert_array_equal(constant, [1.0, 2.0, 3.0])


def test_buffers_are_inputs_of_kind_buffer() -> None:
    loss = nn.BCEWithLogitsLoss(pos_weight=runtime.tensor([1.0, 2.0, 0.5]))
    graph = trace(loss, (runtime.randn(4, 3), runtime.rand(4, 3)))
    assert [(v.name, v.kind) for v in graph.inputs] == [
        ("input", "input"), ("target", "input"), ("pos_weight", "buffer")]


def test_several_outputs_are_returned_in_order() -> None:
    graph = trace(lambda x: (x.exp(), x.sum(1)), (runtime.randn(2, 3),))
    assert [v.shape for v in graph.outputs] == [(BATCH, 3), (BATCH,)]


def test_a_model_must_return_tensors_computed_from_its_inputs() -> None:
    with pytest.raises(TracingError, match="returned a int"):
        trace(lambda x: 3, (runtime.randn(2, 3),))
    constant = runtime.ones(3)
    with pytest.raises(TracingError, match="does not depend on the inputs"):
        trace(lambda x: constant, (runtime.randn(2, 3),))


def test_tracing_records_only_its_own_threads_ops() -> None:
    seen = {}

    def forward(x):
        # eager work on another thread while this one traces stays eager
        worker = threading.Thread(target=lambda: seen.update(value=(runtime.ones(2) * 3).sum()))
        worker.start()
        worker.join()
        return x * 2

    graph = trace(forward, (runtime.randn(2, 3),))
    assert [n.op_name for n in graph.nodes] == ["mul"]
    assert seen["value"].item() == 6.0


def test_example_inputs_must_be_tensors_with_a_batch_dimension() -> None:
    with pytest.raises(TypeError, match="example_inputs\\[0\\] is a list"):
        trace(lambda x: x, ([1.0, 2.0],))
    with pytest.raises(ValueError, match="0-d"):
        trace(lambda x: x * 2, (runtime.tensor(1.0),))
    graph = trace(lambda x: x * 2, (runtime.tensor(1.0),), dynamic_batch=False)
    assert graph.inputs[0].shape == ()


@pytest.mark.parametrize("index", [lambda x: x[-1], lambda x: x[3], lambda x: x[-2:],
                                   lambda x: x[:2]])
def test_fixed_rows_of_the_batch_dimension_stop_tracing(index):
    """x[-2:] is two rows only when the batch has two: compiled code could not check it."""

    class Model(nn.Module):
        def forward(self, x):
            return index(x) * 2

    with pytest.raises(IndexError, match="only valid for some batch sizes"):
        trace(Model(), (runtime.randn(5, 3),))
    fixed = trace(Model(), (runtime.randn(5, 3),), dynamic_batch=False)
    assert all(isinstance(s, int) for s in fixed.outputs[0].shape)
