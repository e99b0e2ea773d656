"""The IR: a static DAG of op applications in SSA form, what `compiler.trace` returns.

Concepts. A `Graph` has inputs (the model's inputs, then its parameters and buffers, each a named
`Value`), constants (numbers and captured tensors), `Node`s in topological order, and outputs.
A `Node` applies one op -- a primitive of `runtime.ops` (the same object eager mode runs, so its
shape rule, derivative and kernel are the op's one definition) or a compiler op such as a fused
elementwise kernel -- to input Values and defines exactly one output Value. A `Value` has a name
that says where it came from (`linear_relu_stack.0.weight`, `flatten.out`,
`grad_linear_relu_stack.0.weight`), a shape whose sizes are ints or sympy expressions of the
symbolic batch size `N`, and a dtype.

`BATCH` is that symbol, and `value_bytes` a value's size in bytes as a polynomial in it.

Graphs print as readable text (one line per node), `verify()` themselves, and have a stable
`fingerprint()` for compile caches. Passes build new graphs (`Graph.rebuild`) rather than editing
nodes in place, so a graph you printed stays what you printed.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy

from runtime._dtype import dtype as DType
from runtime._dtype import from_numpy_dtype

if TYPE_CHECKING:
    from compiler.passes.driver import RewriteLog

BATCH = sympy.Symbol("N", integer=True, positive=True)  # the batch size, where it stays symbolic

_ids = itertools.count()


@dataclass(eq=False)
class Value:
    """One SSA value: produced by a node, or a graph input or constant."""

    name: str
    shape: tuple[Any, ...]
    dtype: DType
    kind: str = "node"  # "input", "param", "buffer", "const", "node"
    producer: Node | None = None
    wrapped_number: bool = False  # a Python number in the source (weak in type promotion)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def _wrapped_number(self) -> bool:  # the attribute name the ops' dtype rules read
        return self.wrapped_number

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def type_text(self) -> str:
        dtype = _DTYPE_SHORT.get(self.dtype.name, self.dtype.name)
        return f"{dtype}[{', '.join(map(str, self.shape))}]"

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type_text()}"


_DTYPE_SHORT = {"float32": "f32", "float64": "f64", "int64": "i64", "int32": "i32", "bool": "bool"}


@dataclass(eq=False)
class Node:
    """`output = op(inputs, **attrs)`; `origin` is where the model's source created it."""

    op: Any
    inputs: list[Value]
    attrs: dict[str, Any]
    output: Value
    origin: str = ""

    @property
    def op_name(self) -> str:
        return self.op.name

    def text(self) -> str:
        """`%out: f32[N, 3] = op(%a, %b) {attr=value}`; a fused kernel shows its expression
        (`{expr=a0 + a1}`, a0 being the first argument) since it is the kernel's whole body."""
        args = ", ".join(f"%{v.name}" for v in self.inputs)
        attrs = [f"{k}={_attr_text(v)}" for k, v in self.attrs.items()]
        describe = getattr(self.op, "describe", None)
        if describe is not None:
            attrs.append(f"expr={describe()}")
        attrs_text = f" {{{', '.join(attrs)}}}" if attrs else ""
        out = self.output
        return f"%{out.name}: {out.type_text()} = {self.op_name}({args}){attrs_text}"


def _attr_text(value: Any) -> str:
    if isinstance(value, DType):
        return _DTYPE_SHORT.get(value.name, value.name)
    if isinstance(value, tuple):
        items = ", ".join(_attr_text(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    return str(value)


class Graph:
    """A static dataflow graph; see the module docstring."""

    # Set by the step that makes them: the rewrites that fired (passes.simplify), the output
    # of each gradient (autodiff.grad), whether the model returned a tuple (tracing.trace).
    rewrite_log: RewriteLog
    gradient_of: dict[str, Value]
    _return_structure: str

    def __init__(self, name: str = "forward") -> None:
        self.name = name
        self.inputs: list[Value] = []
        self.constants: dict[Value, np.ndarray] = {}
        self.nodes: list[Node] = []
        self.outputs: list[Value] = []
        self._names: set[str] = set()

    # ----- building ------------------------------------------------------------------------------

    def unique_name(self, wanted: str) -> str:
        name = wanted
        for i in itertools.count(1):
            if name not in self._names:
                break
            name = f"{wanted}.{i}"
        self._names.add(name)
        return name

    def add_input(self, name: str, shape: Sequence[Any], dtype: DType,
                  kind: str = "input") -> Value:
        value = Value(self.unique_name(name), tuple(shape), dtype, kind)
        self.inputs.append(value)
        return value

    def add_constant(self, array: np.ndarray, name: str = "const",
                     wrapped_number: bool = False) -> Value:
        value = Value(self.unique_name(name), tuple(array.shape), from_numpy_dtype(array.dtype),
                      "const", wrapped_number=wrapped_number)
        self.constants[value] = array
        return value

    def add_node(self, op: Any, inputs: Sequence[Value], attrs: dict[str, Any],
                 shape: Sequence[Any], dtype: DType, name: str, origin: str = "") -> Value:
        output = Value(self.unique_name(name), tuple(shape), dtype, "node")
        node = Node(op, list(inputs), dict(attrs), output, origin)
        output.producer = node
        self.nodes.append(node)
        return output

    # ----- reading -------------------------------------------------------------------------------

    def users(self) -> dict[Value, list[Node]]:
        result: dict[Value, list[Node]] = {}
        for node in self.nodes:
            for v in node.inputs:
                result.setdefault(v, []).append(node)
        return result

    def __str__(self) -> str:
        """One line per input list, constant, node and return. In a graph with a reverse-mode
        part, the forward values that backward reads are marked: the header names the inputs,
        and each such node's line ends in `# read by backward`."""
        read = set(self.read_by_backward())
        params = ", ".join(repr(v) for v in self.inputs)
        read_inputs = ", ".join(f"%{v.name}" for v in self.inputs if v in read)
        header_note = f"  # backward reads {read_inputs}" if read_inputs else ""
        lines = [f"graph {self.name}({params}) {{{header_note}"]
        for value, array in self.constants.items():
            lines.append(f"  {value!r} = constant({_constant_text(array)})")
        for node in self.nodes:
            note = "  # read by backward" if node.output in read else ""
            lines.append("  " + node.text() + note)
        lines.append("  return " + ", ".join(f"%{v.name}" for v in self.outputs))
        lines.append("}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes>"

    def verify(self) -> Graph:
        """Check SSA form and types: every use defined before it, shapes as the ops infer them."""
        defined = set(self.inputs) | set(self.constants)
        for node in self.nodes:
            for v in node.inputs:
                if v not in defined:
                    raise ValueError(f"{node.text()}: uses %{v.name} before it is defined")
            if node.output in defined:
                raise ValueError(f"{node.text()}: %{node.output.name} is defined twice")
            shape, dtype = node.op.infer(node.inputs, **node.attrs)
            if tuple(shape) != node.output.shape or dtype != node.output.dtype:
                raise ValueError(f"{node.text()}: the op infers {shape} {dtype}")
            defined.add(node.output)
        for v in self.outputs:
            if v not in defined:
                raise ValueError(f"output %{v.name} is not defined")
        return self

    def fingerprint(self) -> str:
        """A stable hash of the graph's structure (not of parameter values)."""
        text = str(self)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    # ----- rewriting -----------------------------------------------------------------------------

    def rebuild(self, nodes: Iterable[Node], outputs: Sequence[Value],
                name: str | None = None) -> Graph:
        """A new graph with these inputs and constants, the given nodes and outputs (no copy of
        the Values: passes share them), dropping constants no node uses."""
        graph = Graph(name or self.name)
        graph.inputs = list(self.inputs)
        graph.nodes = list(nodes)
        graph.outputs = list(outputs)
        used = {v for n in graph.nodes for v in n.inputs} | set(graph.outputs)
        graph.constants = {v: a for v, a in self.constants.items() if v in used}
        graph._names = set(self._names)
        return graph

    # ----- the reverse-mode part, and drawing ----------------------------------------------------

    def backward_values(self) -> set[Value]:
        """The values of the graph's reverse-mode part: those named by `compiler.grad` (see
        `is_reverse_mode_name`) and every value computed from them."""
        backward = {v for v in [*self.inputs, *self.constants] if is_reverse_mode_name(v.name)}
        for node in self.nodes:
            if is_reverse_mode_name(node.output.name) or any(v in backward for v in node.inputs):
                backward.add(node.output)
        return backward

    def read_by_backward(self) -> list[Value]:
        """The forward values (inputs and node outputs, not constants) that nodes of the
        reverse-mode part read, in graph order."""
        backward = self.backward_values()
        read = {v for n in self.nodes if n.output in backward for v in n.inputs
                if v not in backward and v not in self.constants}
        return [v for v in [*self.inputs, *(n.output for n in self.nodes)] if v in read]

    def to_dot(self, decorate: Callable[[Value], dict[str, str]] | None = None) -> str:
        """The graph in Graphviz's dot language, for `dot -Tsvg`; `decorate(value)` may add dot
        attributes to each vertex (see `compiler.draw.to_dot`)."""
        from compiler.draw import to_dot

        return to_dot(self, decorate)


def is_reverse_mode_name(name: str) -> bool:
    """Whether `compiler.grad` gave this name: adjoints are `grad_<value>`, and the intermediates
    of the derivative of <value> are `d.<value>.<op>`."""
    return name.startswith(("grad_", "d."))


def _constant_text(array: np.ndarray) -> str:
    if array.ndim == 0:
        return repr(array.item())
    if array.size <= 4:
        return np.array2string(array, separator=", ")
    return f"<{array.dtype} array {list(array.shape)}>"


def value_bytes(value: Value) -> tuple[int, int]:
    """(per_example, fixed) bytes of a value: numel * itemsize as per_example * N + fixed.
    Raises ValueError for a size that is not linear in the batch size (an N x N matrix)."""
    numel: Any = 1
    for s in value.shape:
        numel = numel * s
    total = sympy.Poly(sympy.sympify(numel) * value.dtype.itemsize, BATCH)
    if total.degree() > 1:
        raise ValueError(f"%{value.name} has size {numel}, not linear in the batch size")
    coeffs = dict(zip(total.monoms(), total.coeffs()))
    return int(coeffs.get((1,), 0)), int(coeffs.get((0,), 0))


def count_text(count: Any, unit: str = "") -> str:
    """`2140160*N + 512` as `2,140,160·N + 512`, with `unit` after each number."""
    expr = sympy.expand(sympy.sympify(count))
    if not expr.free_symbols <= {BATCH} or not expr.is_polynomial(BATCH):
        return f"{expr}{unit}"
    terms = sympy.Poly(expr, BATCH).terms()
    parts = []
    for (power,), coefficient in terms:
        number = f"{int(coefficient):,}{unit}"
        parts.append(number + ("" if power == 0 else "·N" if power == 1 else f"·N^{power}"))
    return " + ".join(parts) or f"0{unit}"
