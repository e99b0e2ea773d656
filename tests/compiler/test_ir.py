"""The IR on its own: building a Graph by hand, its text, verify(), fingerprint() and rebuild()."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from compiler.interpret import run
from compiler.ir import Graph, Node, Value
from runtime import float32, float64
from runtime.ops import OPS

N = sympy.Symbol("N", integer=True, positive=True)


def small_graph() -> tuple[Graph, dict[str, Value]]:
    """y = relu(x @ w + b) * 2, built node by node."""
    graph = Graph("small")
    x = graph.add_input("x", (N, 3), float32)
    w = graph.add_input("w", (3, 2), float32, kind="param")
    b = graph.add_input("b", (2,), float32, kind="param")
    two = graph.add_constant(np.array(2.0, np.float32), name="two", wrapped_number=True)
    h = graph.add_node(OPS["matmul"], [x, w], {}, (N, 2), float32, "h")
    z = graph.add_node(OPS["add"], [h, b], {}, (N, 2), float32, "z")
    r = graph.add_node(OPS["relu"], [z], {}, (N, 2), float32, "r")
    y = graph.add_node(OPS["mul"], [r, two], {}, (N, 2), float32, "y")
    graph.outputs = [y]
    return graph, {"x": x, "w": w, "b": b, "two": two, "h": h, "z": z, "r": r, "y": y}


def test_graph_prints_one_line_per_node_with_types_and_the_batch_symbol() -> None:
    graph, _ = small_graph()
    assert str(graph).splitlines() == [
        "graph small(%x: f32[N, 3], %w: f32[3, 2], %b: f32[2]) {",
        "  %two: f32[] = constant(2.0)",
        "  %h: f32[N, 2] = matmul(%x, %w)",
        "  %z: f32[N, 2] = add(%h, %b)",
        "  %r: f32[N, 2] = relu(%z)",
        "  %y: f32[N, 2] = mul(%r, %two)",
        "  return %y",
        "}",
    ]


def test_node_text_shows_attributes() -> None:
    graph = Graph()
    x = graph.add_input("x", (N, 3, 4), float64)
    s = graph.add_node(OPS["sum"], [x], {"dims": (1,), "keepdim": True}, (N, 1, 4), float64, "s")
    assert s.producer.text() == "%s: f64[N, 1, 4] = sum(%x) {dims=(1,), keepdim=True}"
    assert repr(s) == "%s: f64[N, 1, 4]"


def test_names_are_made_unique() -> None:
    graph = Graph()
    first = graph.add_input("x", (2,), float32)
    second = graph.add_node(OPS["neg"], [first], {}, (2,), float32, "x")
    third = graph.add_node(OPS["neg"], [second], {}, (2,), float32, "x")
    assert [first.name, second.name, third.name] == ["x", "x.1", "x.2"]


def test_verify_accepts_a_well_formed_graph_and_returns_it() -> None:
    graph, _ = small_graph()
    assert graph.verify() is graph


def test_verify_catches_a_use_before_definition() -> None:
    graph, v = small_graph()
    graph.nodes[0], graph.nodes[1] = graph.nodes[1], graph.nodes[0]
    with pytest.raises(ValueError, match="uses %h before it is defined"):
        graph.verify()


def test_verify_catches_a_shape_the_op_does_not_infer() -> None:
    graph, v = small_graph()
    v["r"].shape = (N, 3)
    with pytest.raises(ValueError, match=r"%r: f32\[N, 3\] = relu\(%z\): the op infers"):
        graph.verify()


def test_verify_catches_a_wrong_dtype() -> None:
    graph, v = small_graph()
    v["y"].dtype = float64
    with pytest.raises(ValueError, match="the op infers"):
        graph.verify()


def test_verify_catches_a_value_defined_twice_and_an_undefined_output() -> None:
    graph, v = small_graph()
    graph.nodes.append(graph.nodes[-1])
    with pytest.raises(ValueError, match="defined twice"):
        graph.verify()
    graph, v = small_graph()
    graph.outputs = [Value("stray", (2,), float32)]
    with pytest.raises(ValueError, match="output %stray is not defined"):
        graph.verify()


def test_fingerprint_is_stable_and_follows_structure() -> None:
    (a, _), (b, _) = small_graph(), small_graph()
    assert a.fingerprint() == b.fingerprint()
    b.nodes[2] = Node(OPS["sigmoid"], b.nodes[2].inputs, {}, b.nodes[2].output)
    assert a.fingerprint() != b.fingerprint()


def test_users_lists_the_nodes_reading_each_value() -> None:
    graph, v = small_graph()
    users = graph.users()
    assert [n.output for n in users[v["z"]]] == [v["r"]]
    assert v["y"] not in users


def test_rebuild_keeps_inputs_and_drops_unused_constants() -> None:
    graph, v = small_graph()
    rebuilt = graph.rebuild(graph.nodes[:3], [v["r"]], name="no_scale")
    assert rebuilt.inputs == graph.inputs
    assert rebuilt.constants == {}
    assert str(graph).count("constant") == 1  # the original is unchanged
    x = np.ones((4, 3), np.float32)
    w = np.full((3, 2), -1.0, np.float32)
    b = np.array([1.0, 5.0], np.float32)
    (r,) = run(rebuilt.verify(), [x, w, b])
    np.testing.assert_array_equal(r, [[0.0, 2.0]] * 4)
    (y,) = run(graph, [x, w, b])
    np.testing.assert_array_equal(y, [[0.0, 4.0]] * 4)
