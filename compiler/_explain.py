"""`compiler.explain(model, example_inputs)`: what reverse mode does to a model, shown.

The report follows the compiler through every stage and keeps each result: the traced forward
graph; the reverse-mode graph exactly as `compiler.grad` builds it from the traced graph; then
what the compiler's pipeline (`compiler.pipeline`, the same functions `compiler.compile` calls)
did: the simplified joint graph with every rewrite that fired, and its split into the forward
that saves values and the backward that reads them -- the very graphs compile lowers -- with the
saved bytes per example; every elementwise kernel with its formula and the derivatives sympy
gives for it; and the FLOPs of forward and backward. `print(report)` shows it in the terminal,
`report.save_html(path)` writes one self-contained page with the graphs drawn side by side.

It only reads graphs and never runs the model's numbers: it is as cheap as tracing.

    >>> report = compiler.explain(model, (runtime.randn(64, 1, 28, 28),))
    >>> print(report)
    >>> report.save_html("report.html")
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy

from compiler import pipeline
from compiler.autodiff import grad
from compiler.ir import Graph, Node, Value, count_text
from compiler.lowering.memory import value_bytes
from compiler.partition import Partition
from compiler.passes import RewriteLog
from compiler.pipeline import PipelineRecord
from compiler.tracing import BATCH, GraphBuilder, SymbolicTensor, named_state, symbolic_shape
from runtime._tensor import Tensor
from runtime.ops.elementwise import Elementwise

# ----- elementwise kernels ------------------------------------------------------------------------

@dataclass
class Kernel:
    """One elementwise kernel of a compiled graph: its formula over its argument symbols and the
    vector-Jacobian products sympy derives from it, `g * d(formula)/d(argument)`, where `g` is
    the gradient arriving at the kernel's output."""

    op: Elementwise
    uses: list[str] = field(default_factory=list)  # "training: %out = f(%a, %b)", ...

    @property
    def title(self) -> str:
        return "fused kernel" if self.op.name == "fused" else f"{self.op.name} kernel"

    @property
    def symbols(self) -> tuple[sympy.Symbol, ...]:
        return tuple(self.op.symbols)

    @property
    def formula(self) -> sympy.Expr:
        return self.op.expr

    @property
    def incoming_gradient(self) -> sympy.Symbol:
        names = {s.name for s in self.symbols}
        name = "g"
        while name in names:
            name += "_"
        return sympy.Symbol(name, real=True)

    @property
    def derivatives(self) -> list[sympy.Expr]:
        """d(formula)/d(argument i) for each argument, as sympy simplifies it."""
        return [self.op.derivative(i) for i in range(len(self.symbols))]

    @property
    def vjps(self) -> list[sympy.Expr]:
        """g * d(formula)/d(argument i): what backward computes for argument i."""
        return [self.incoming_gradient * d for d in self.derivatives]

    def pretty(self) -> str:
        """The formula and its vector-Jacobian products, pretty-printed by sympy."""
        g = self.incoming_gradient.name
        lines = [_pretty("f", self.formula)]
        for symbol, vjp in zip(self.symbols, self.vjps):
            lines.append(_pretty(f"{g}·∂f/∂{symbol.name}", vjp))
        return "\n".join(lines)

    def latex(self) -> str:
        """The same as LaTeX (an `aligned` block)."""
        g = sympy.latex(self.incoming_gradient)
        rows = [f"f &= {sympy.latex(self.formula)}"]
        for symbol, vjp in zip(self.symbols, self.vjps):
            rows.append(f"{g}\\,\\frac{{\\partial f}}{{\\partial {sympy.latex(symbol)}}} "
                        f"&= {sympy.latex(vjp)}")
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def _pretty(label: str, expr: sympy.Expr) -> str:
    equation = sympy.Eq(sympy.Symbol(label), expr, evaluate=False)
    return sympy.pretty(equation, use_unicode=True, num_columns=120)


def _kernel_use(node: Node, symbols: Sequence[sympy.Symbol]) -> str:
    bound = ", ".join(f"{s.name}=%{v.name}" for s, v in zip(symbols, node.inputs))
    return f"%{node.output.name} = f({bound})"


def collect_kernels(graphs: Sequence[tuple[str, Graph]]) -> list[Kernel]:
    """The distinct elementwise kernels of the labelled graphs, in order of first use."""
    kernels: dict[tuple[str, str], Kernel] = {}
    for label, graph in graphs:
        for node in graph.nodes:
            op = node.op
            if not isinstance(op, Elementwise) or not node.output.dtype.is_floating_point:
                continue
            kernel = kernels.setdefault((op.name, str(op.expr)), Kernel(op))
            kernel.uses.append(f"{label}: {_kernel_use(node, op.symbols)}")
    return list(kernels.values())


# ----- FLOPs --------------------------------------------------------------------------------------

def node_flops(node: Node) -> sympy.Expr:
    """Floating point operations of one node, as its op counts them (`Op.flops`): 2*M*N*K for a
    matrix product, elements times operations of the formula for an elementwise kernel, one per
    input element for a reduction; none for moving data (reshape, permute, expand, gather...).
    An op without a FLOP rule raises NotImplementedError naming it."""
    count = node.op.flops([v.shape for v in node.inputs], node.output.shape, **node.attrs)
    return sympy.sympify(count)


def flops(nodes: Sequence[Node]) -> sympy.Expr:
    """The FLOPs of these nodes, a polynomial in the batch size N."""
    return sympy.expand(sum((node_flops(n) for n in nodes), sympy.Integer(0)))


# ----- the report ---------------------------------------------------------------------------------

@dataclass
class Report:
    """Everything `explain` found; `str(report)` is the terminal report."""

    name: str
    forward: Graph  # as traced
    reverse: Graph  # compiler.grad(forward): forward and reverse mode, as built
    simplified: Graph  # the pipeline's simplified joint graph, which `partition` splits
    inference: Graph  # the forward alone, simplified as compiled for no_grad
    rewrites: RewriteLog  # what fired on the way to `simplified`
    partition: Partition  # the forward (saving) and backward (reading) functions compile lowers
    kernels: list[Kernel]
    pipeline: PipelineRecord  # every stage's graph on the way to `partition`

    # ----- derived numbers ------------------------------------------------------------------------

    def reverse_nodes(self) -> list[Node]:
        """The nodes that `compiler.grad` added to the forward graph."""
        forward = set(self.forward.nodes)
        return [n for n in self.reverse.nodes if n not in forward]

    def flop_table(self) -> dict[str, tuple[sympy.Expr, sympy.Expr]]:
        """(forward FLOPs, backward FLOPs) as built and as compiled."""
        return {"as built": (flops(self.forward.nodes), flops(self.reverse_nodes())),
                "simplified": (flops(self.partition.forward.nodes),
                               flops(self.partition.backward.nodes))}

    def saved_values(self) -> list[tuple[Value, int, int]]:
        """(value, bytes per example, fixed bytes) of each value the forward saves."""
        return [(v, *value_bytes(v)) for v in self.partition.saved]

    def saved_bytes_text(self) -> str:
        per_example = self.partition.saved_bytes_per_example()
        fixed = self.partition.saved_bytes_fixed()
        return count_text(per_example * BATCH + fixed, " B")

    def reverse_backward_graph(self) -> Graph:
        """The reverse-mode part of `reverse` alone, reading forward values as its inputs."""
        return backward_part(self.reverse, self.reverse_nodes(), len(self.forward.outputs),
                             f"reverse_{self.name}")

    # ----- text -----------------------------------------------------------------------------------

    def sections(self) -> list[tuple[str, str]]:
        """(title, text) of each part of the report, in order."""
        return [
            ("forward graph, as traced", str(self.forward)),
            ("reverse mode, as built by compiler.grad", str(self.reverse)),
            ("gradients", self._gradients_text()),
            ("compiler pipeline stages", str(self.pipeline)),
            ("simplified (what compiler.compile lowers)", str(self.simplified)),
            (f"rewrites that fired ({len(self.rewrites.events)})",
             str(self.rewrites) or "(none)"),
            ("forward and backward functions", f"{self.partition.forward}\n\n"
                                               f"{self.partition.backward}"),
            ("saved for backward", self._saved_text()),
            ("elementwise kernels and their derivatives (by sympy)", self._kernels_text()),
            ("inference (no_grad): the forward alone, simplified", str(self.inference)),
            ("FLOPs", self._flops_text()),
        ]

    def gradients(self) -> list[tuple[Value, Value, Value]]:
        """(graph input, its gradient as built, its gradient simplified) for each input that
        reverse mode differentiates with respect to."""
        n = len(self.forward.outputs)
        by_value = {v: name for name, v in self.reverse.gradient_of.items()}
        inputs = {v.name: v for v in self.forward.inputs}
        return [(inputs[by_value[raw]], raw, simplified) for raw, simplified
                in zip(self.reverse.outputs[n:], self.simplified.outputs[n:])]

    def summary(self) -> str:
        """How big each stage is, in nodes and rewrites."""
        return (f"forward {len(self.forward.nodes)} nodes; reverse mode adds "
                f"{len(self.reverse_nodes())} as built; the simplified joint graph has "
                f"{len(self.simplified.nodes)} after {len(self.rewrites.events)} rewrites, split "
                f"into a forward function of {len(self.partition.forward.nodes)} and a backward "
                f"of {len(self.partition.backward.nodes)}")

    def _gradients_text(self) -> str:
        return "\n".join(f"  gradient of %{source.name}: %{raw.name} as built, "
                         f"%{simplified.name} simplified"
                         for source, raw, simplified in self.gradients())

    def _saved_text(self) -> str:
        lines = [f"  %{v.name}: {v.type_text()}  {count_text(per * BATCH + fixed, ' B')}"
                 for v, per, fixed in self.saved_values()]
        lines.append(f"  total: {self.saved_bytes_text()}")
        read = ", ".join(f"%{v.name}" for v in self.partition.forward_inputs_used)
        if read:
            lines.append(f"  backward also reads these inputs (not copied): {read}")
        return "\n".join(lines)

    def _kernels_text(self) -> str:
        if not self.kernels:
            return "(no elementwise kernels)"
        blocks = []
        for k, kernel in enumerate(self.kernels, 1):
            uses = "\n".join(f"    {use}" for use in kernel.uses)
            body = "\n".join(f"    {line}" for line in kernel.pretty().splitlines())
            blocks.append(f"  [{k}] {kernel.title}, used by\n{uses}\n\n{body}")
        return "\n\n".join(blocks)

    def _flops_text(self) -> str:
        lines = [f"  {'':12}{'forward':>28}{'backward':>28}"]
        for label, (forward, backward) in self.flop_table().items():
            lines.append(f"  {label:12}{count_text(forward):>28}{count_text(backward):>28}")
        return "\n".join(lines)

    def __str__(self) -> str:
        parts = [f"symgrad explain: {self.name}", f"{self.summary()}; saved for backward "
                                                   f"{self.saved_bytes_text()}"]
        for title, text in self.sections():
            parts.append(f"\n== {title} ==\n{text}")
        return "\n".join(parts) + "\n"

    def latex(self) -> str:
        """Every kernel's formula and derivatives as LaTeX, one `aligned` block each."""
        return "\n\n".join(f"% [{k}] {kernel.title}: {'; '.join(kernel.uses)}\n{kernel.latex()}"
                           for k, kernel in enumerate(self.kernels, 1))

    # ----- html -----------------------------------------------------------------------------------

    def save_html(self, path: str | Path, renderer: str = "auto") -> Path:
        """Write the report as one self-contained HTML page: the text, and the graphs drawn
        (by Graphviz's `dot` when it is on PATH, else by `compiler.draw`'s own layout; see
        `draw.svg` for `renderer`), forward beside backward, each value linked to its adjoint."""
        from compiler.explain_html import render_html

        path = Path(path)
        path.write_text(render_html(self, renderer), encoding="utf-8")
        return path


def backward_part(joint: Graph, nodes: list[Node], n_outputs: int, name: str) -> Graph:
    """A graph of `nodes` (a reverse-mode part of `joint`) whose inputs are the values they read
    from outside (the gradient seed, graph inputs, forward values) and whose outputs are the
    gradients."""
    part = joint.rebuild(nodes, joint.outputs[n_outputs:], name=name)
    defined = {n.output for n in nodes}
    outside = {v for n in nodes for v in n.inputs
               if v not in defined and v not in part.constants}
    order = [*joint.inputs, *(n.output for n in joint.nodes)]
    part.inputs = [v for v in order if v in outside]
    return part


# ----- building the report ------------------------------------------------------------------------

def explain(model: Any, example_inputs: Sequence[Tensor] | Tensor,
            loss_fn: Callable[..., Tensor] | None = None, *,
            dynamic_batch: bool = True) -> Report:
    """Trace `model`, differentiate it, simplify and partition it with the pipeline that
    `compiler.compile` runs, and return a Report of every stage.

    Without `loss_fn`, reverse mode starts from the gradient of the model's output (the vector
    of a vector-Jacobian product, an input `grad_<output>`). With `loss_fn`, the last example
    input is the target and the graph ends in `loss = loss_fn(model(*inputs), target)`, whose
    gradient `grad_loss` starts reverse mode. Gradients are taken with respect to the model's
    parameters that require grad and the example inputs that require grad, as `backward()`
    would. `model` may be an nn.Module or a function of tensors. With `dynamic_batch`, dimension
    0 of every input is the batch size N.
    """
    if isinstance(example_inputs, Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    name = _graph_name(model)
    record = PipelineRecord()
    forward = _trace_with_loss(model, example_inputs, loss_fn, dynamic_batch, name, record)
    wrt = _gradient_targets(model, forward, example_inputs)
    reverse = grad(forward, wrt=wrt, seed_input=True)

    prepared = pipeline.simplify_forward(forward, record)
    training = pipeline.training_graphs(prepared, wrt, name, n_outputs=len(forward.outputs),
                                        record=record)
    parts = training.partition
    parts.forward.name, parts.backward.name = f"forward_{name}", f"backward_{name}"
    inference = pipeline.inference_graph(prepared, f"inference_{name}")
    kernels = collect_kernels([("training", training.joint), ("inference", inference)])
    return Report(name, forward, reverse, training.joint, inference, record.log, parts, kernels,
                  record)


def _graph_name(model: Any) -> str:
    raw = getattr(model, "__name__", None) or type(model).__name__
    return re.sub(r"\W", "_", raw).strip("_") or "model"


def _trace_with_loss(model: Any, example_inputs: tuple[Tensor, ...],
                     loss_fn: Callable[..., Tensor] | None, dynamic_batch: bool,
                     name: str, record: PipelineRecord) -> Graph:
    if loss_fn is None:
        return pipeline.trace_model(model, example_inputs, dynamic_batch=dynamic_batch,
                                    name=name, record=record)
    if len(example_inputs) < 2:
        raise ValueError("with loss_fn, example_inputs are the model's inputs followed by the "
                         "target; got only one tensor")
    *model_inputs, target = example_inputs
    graph = pipeline.trace_model(model, model_inputs, dynamic_batch=dynamic_batch, name=name,
                                 record=record)
    if len(graph.outputs) != 1:
        raise ValueError("with loss_fn, the model must return one tensor")
    target_value = graph.add_input(_target_name(loss_fn), symbolic_shape(
        target.shape, 0 if dynamic_batch else None), target.dtype)
    graph.inputs.remove(target_value)
    graph.inputs.insert(len(model_inputs), target_value)  # inputs first, then parameters
    builder = GraphBuilder(graph)
    with builder.active():
        builder.scope = ["loss"]
        loss = loss_fn(SymbolicTensor.of(graph.outputs[0]), SymbolicTensor.of(target_value))
    if not isinstance(loss, SymbolicTensor):
        raise ValueError("loss_fn must return a tensor computed from the model's output")
    loss._value.name = graph.unique_name("loss")
    graph.outputs = [loss._value]
    return graph.verify()


def _target_name(loss_fn: Callable[..., Tensor]) -> str:
    """The name of loss_fn's second parameter (`target` for PyTorch's losses)."""
    try:
        parameters = list(inspect.signature(getattr(loss_fn, "forward", loss_fn)).parameters)
    except (TypeError, ValueError):
        parameters = []
    return parameters[1] if len(parameters) > 1 else "target"


def _gradient_targets(model: Any, graph: Graph, example_inputs: tuple[Tensor, ...]) -> list[Value]:
    """The graph inputs backward() would give gradients: parameters and example inputs that
    require grad and that the graph uses."""
    used = {v for n in graph.nodes for v in n.inputs}
    requires = {name: t.requires_grad for name, t, kind in named_state(model) if kind == "param"}
    by_position = dict(zip(graph.inputs, example_inputs))
    wrt = [v for v in graph.inputs if v in used and v.dtype.is_floating_point and (
        (v in by_position and by_position[v].requires_grad)
        or (v.kind == "param" and requires.get(v.name, True)))]
    if not wrt:
        raise ValueError("nothing to differentiate: no parameter of the model and no example "
                         "input requires grad")
    return wrt

