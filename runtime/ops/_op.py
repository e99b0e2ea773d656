"""The op protocol, the op registry, and `apply`: how every primitive op runs.

An op is defined once, in one module of `runtime/ops/`, as an `Op` with:
- `infer(inputs, **attrs)`: its shape and dtype rule (sizes may be ints or sympy expressions, so a
  symbolic batch size flows through), which also raises PyTorch's error for bad operands;
- `compute(arrays, **attrs)`: its eager kernel, on numpy arrays;
- `vjp(ctx, grad)`: its derivative, written with the op API (functions of `runtime.ops`), so the
  same rule runs eagerly, records a graph under create_graph=True, and emits IR when traced;
- `saves(needs_input_grad, **attrs)`: which inputs (and whether the output) the vjp reads;
- `edge_inputs(inputs, **attrs)`: which inputs get an edge in the recorded graph (PyTorch gives
  none to index tensors, conditions, and operands its signature takes as a Python Scalar);
- for a view op (`is_view`), `write_back(base, view_value, **attrs)`: the base after its view
  changes in place;
- `flops(input_shapes, output_shape, **attrs)`: the floating point operations of one application
  (0 for an op that only moves data); an op without this rule raises, so a missing count is seen;
- for a composite op (`composite`, runtime/ops/composite.py), `decompose(inputs, **attrs)`: the
  op written with primitive ops. Eagerly it is one kernel and one recorded node (the one PyTorch
  records, e.g. AddmmBackward0); a tracer records its decomposition instead;
- what the compiler needs to know of it: `aliases_input` (in a compiled graph, where every value
  is contiguous, the result is input 0's memory under another shape) and `preserves_elements`
  (the result holds every element of input 0 and nothing else, moved or converted, so a class
  index reaches it unchanged).

`apply(op, inputs, **attrs)` runs an op: on symbolic tensors it hands over to the tracer that the
compiler installed with `set_symbolic_handler` (the runtime never imports the compiler); on data it
computes, and when grad mode is on and an input requires grad it records an `OpNode`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from runtime import _tensor
from runtime._grad_mode import is_grad_enabled, no_grad
from runtime.autograd._node import FREED_MESSAGE, Node, SavedTensor, named_node_class

if TYPE_CHECKING:
    from runtime._dtype import dtype
    from runtime._tensor import Tensor

Shape = tuple[Any, ...]  # each size an int or a sympy expression


class Op:
    """A primitive op. Subclasses set `name` and `backward_name` and implement the rules."""

    name: str = ""
    backward_name: str = ""
    differentiable: bool = True
    is_view: bool = False  # the result shares memory with input 0 (reshape, transpose, slicing)
    aliases_input: bool = False  # compiled, the result is input 0's memory (a reshape)
    preserves_elements: bool = False  # the result is input 0's elements, moved or converted
    composite: bool = False  # defined by `decompose`, which tracers record in its place

    # Each rule takes the op's attributes as keywords; a subclass names the ones it has
    # (`def infer(self, inputs, *, dim, keepdim)`), which `*args: Any, **attrs: Any` admits.
    def infer(self, inputs: Sequence[Any], /, *args: Any, **attrs: Any) -> tuple[Shape, dtype]:
        raise NotImplementedError

    def compute(self, arrays: Sequence[np.ndarray], /, *args: Any, **attrs: Any) -> np.ndarray:
        raise NotImplementedError

    def vjp(self, ctx: VJPContext, grad: Tensor) -> Sequence[Tensor | None]:
        raise NotImplementedError(f"{self.name} is not differentiable")

    def saves(self, needs_input_grad: Sequence[bool], /, *args: Any,
              **attrs: Any) -> tuple[Sequence[int], bool]:
        """Indices of the inputs the vjp reads, and whether it reads the output."""
        return range(len(needs_input_grad)), False

    def node_name(self, inputs: Sequence[Any], /, *args: Any, **attrs: Any) -> str:
        return self.backward_name

    def edge_inputs(self, inputs: Sequence[Any], /, *args: Any, **attrs: Any) -> Sequence[int]:
        """Positions of the inputs that get an edge (an entry of `grad_fn.next_functions`)."""
        return range(len(inputs))

    def decompose(self, inputs: Sequence[Any], /, *args: Any, **attrs: Any) -> Any:
        """For a composite op: its value, computed with primitive ops."""
        raise NotImplementedError(f"{self.name} is a primitive op")

    def flops(self, input_shapes: Sequence[Shape], output_shape: Shape, /, *args: Any,
              **attrs: Any) -> Any:
        """Floating point operations of one application: an int, or a polynomial in the
        batch size when a shape holds it."""
        raise NotImplementedError(
            f"op {self.name!r} has no FLOP count: define {type(self).__name__}.flops "
            "(return 0 for an op that only moves data)")

    def write_back(self, base: Tensor, view_value: Tensor, /, *args: Any, **attrs: Any) -> Tensor:
        """For a view op: the value of `base` once its view is changed to `view_value`, built
        with ops (what an in-place change of a view does to its base's history)."""
        raise NotImplementedError(f"in-place changes of a {self.name} view are not supported")

    def __repr__(self) -> str:
        return f"<op {self.name}>"


def numel(shape: Sequence[Any]) -> Any:
    """The number of elements of a shape (an int, or an expression of symbolic sizes)."""
    count: Any = 1
    for size in shape:
        count = count * size
    return count


def moves_data(op: Op, input_shapes: Sequence[Shape], output_shape: Shape, **attrs: Any) -> int:
    """The FLOP rule of an op that only moves or converts elements: none."""
    return 0


def one_per_input_element(op: Op, input_shapes: Sequence[Shape], output_shape: Shape,
                          **attrs: Any) -> Any:
    """The FLOP rule of a reduction: one operation per element of input 0."""
    return numel(input_shapes[0])


OPS: dict[str, Op] = {}


def register(op: Op) -> Op:
    """Add an op to the registry (one name, one definition)."""
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} is defined twice")
    OPS[op.name] = op
    return op


class VJPContext:
    """What a vjp rule sees: saved inputs and output, attributes, input shapes and dtypes."""

    __slots__ = ("inputs", "output", "attrs", "needs_input_grad", "input_shapes", "input_dtypes")

    def __init__(self, inputs: list[Any], output: Any, attrs: dict[str, Any],
                 needs_input_grad: Sequence[bool], input_shapes: Sequence[Shape],
                 input_dtypes: list[dtype]) -> None:
        self.inputs = inputs
        self.output = output
        self.attrs = attrs
        self.needs_input_grad = needs_input_grad
        self.input_shapes = input_shapes
        self.input_dtypes = input_dtypes


class OpNode(Node):
    """The recorded application of a primitive op (AddBackward0, MmBackward0, ...); creating it
    makes it the `grad_fn` of `output`. Each node name is its own subclass, as in PyTorch
    (`type(node).__name__ == "AddBackward0"`)."""

    def __new__(cls, op: Op, inputs: Sequence[Tensor], output: Tensor, attrs: dict[str, Any],
                name: str) -> OpNode:
        return super().__new__(named_node_class(cls, name) if cls is OpNode else cls)

    def __init__(self, op: Op, inputs: Sequence[Tensor], output: Tensor, attrs: dict[str, Any],
                 name: str) -> None:
        edges = tuple(op.edge_inputs(inputs, **attrs))
        super().__init__([inputs[i]._gradient_edge() for i in edges],
                         [(inputs[i].shape, inputs[i].dtype) for i in edges])
        self.op = op
        self.attrs = attrs
        self._name = name
        self._edges = edges
        self.needs_input_grad = tuple(i in edges and t.requires_grad for i, t in enumerate(inputs))
        self.input_shapes = [t.shape for t in inputs]
        self.input_dtypes = [t.dtype for t in inputs]
        output._set_history(self, 0)  # before saving it: a saved output is rebuilt with history
        saved_inputs, saves_output = op.saves(self.needs_input_grad, **attrs)
        self._saved_inputs: list[SavedTensor | None] = [None] * len(inputs)
        for i in saved_inputs:
            self._saved_inputs[i] = SavedTensor(inputs[i])
        self._saved_output = SavedTensor(output, is_output=True) if saves_output else None

    def name(self) -> str:
        return self._name

    def apply(self, grad_outputs: list[Tensor | None]) -> Sequence[Tensor | None]:
        if self._released and (self._saved_output or any(self._saved_inputs)):
            raise RuntimeError(FREED_MESSAGE)
        inputs = [s.unpack(self) if s is not None else None for s in self._saved_inputs]
        output = self._saved_output.unpack(self) if self._saved_output is not None else None
        ctx = VJPContext(inputs, output, self.attrs, self.needs_input_grad, self.input_shapes,
                         self.input_dtypes)
        grad = grad_outputs[0]
        assert grad is not None, "the engine runs a node only with a gradient to pass back"
        grads = self.op.vjp(ctx, grad)
        return [grads[i] if self.needs_input_grad[i] else None for i in self._edges]

    def protect_saved(self, tensor: Tensor) -> None:
        """`tensor` is about to be overwritten in place by this node's own result (`x.exp_()`):
        keep a private copy of the saved values that share its memory, with their history."""
        for saved in (*self._saved_inputs, self._saved_output):
            if saved is not None and saved.shares_memory_with(tensor):
                saved.keep_private_copy()

    def release(self) -> None:
        super().release()
        for saved in self._saved_inputs:
            if saved is not None:
                saved.free()
        if self._saved_output is not None:
            self._saved_output.free()


class SymbolicHandler(Protocol):
    """What a tracer offers the runtime: it records an op applied to symbolic tensors, and
    makes a tensor of a size that depends on the traced batch size."""

    def __call__(self, op: Op, inputs: Sequence[Any], attrs: dict[str, Any], /) -> Any: ...

    def symbolic_size(self, expr: Any, dtype: dtype, /) -> Tensor: ...


_tracing = threading.local()


def set_symbolic_handler(handler: SymbolicHandler | None) -> None:
    """Install, for this thread, the tracer that records every op instead of running it (the
    compiler's GraphBuilder); None goes back to eager execution."""
    _tracing.handler = handler


def symbolic_handler() -> SymbolicHandler | None:
    """The tracer recording this thread's ops, if a trace is in progress."""
    return getattr(_tracing, "handler", None)


def apply(op: Op, inputs: Sequence[Tensor], **attrs: Any) -> Tensor:
    """Run `op` on `inputs`: trace it, or compute it and record it for autograd."""
    handler = getattr(_tracing, "handler", None)
    if handler is not None:
        # While tracing, every op is recorded, including ops on parameters alone (w.T).
        return handler(op, inputs, attrs)
    requires_grad = False
    for t in inputs:
        if t._is_symbolic:
            raise RuntimeError("a symbolic tensor was used outside of tracing")
        requires_grad = requires_grad or t._requires_grad
    if op.composite:  # computed by its decomposition, recorded below as one node
        with no_grad():
            data = op.decompose(inputs, **attrs)._data
    else:
        shape, out_dtype = op.infer(inputs, **attrs)
        with np.errstate(all="ignore"):  # PyTorch propagates inf and nan without warnings
            data = np.asarray(op.compute([t._data for t in inputs], **attrs))
        if data.dtype != out_dtype.numpy:
            data = data.astype(out_dtype.numpy)
    out = _tensor.Tensor._from_array(data)
    if op.is_view and np.may_share_memory(data, inputs[0]._data):
        out._version = inputs[0]._version
        out._view_of = (inputs[0], op, attrs)
    if requires_grad and op.differentiable and is_grad_enabled():
        OpNode(op, inputs, out, attrs, op.node_name(inputs, **attrs))
    return out
