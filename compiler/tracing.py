"""Tracing: run a model's Python `forward` on symbolic tensors and record what it does as IR.

A `SymbolicTensor` is a runtime Tensor whose data is an IR Value. Every op reaches
`runtime.ops.apply`, which hands symbolic operands to the active `GraphBuilder`: the builder asks
the op's own shape rule for the result type and appends a Node. Concrete tensors met on the way
become graph inputs when they are the model's parameters or buffers (bound to the live tensors at
each call, never copied) and constants otherwise. Module calls are followed so that values are
named after the module that made them (`linear_relu_stack.1.out`).

Python control flow that needs a traced value (`bool(t)`, `t.item()`, `t.numpy()`) stops tracing
with a `TracingError` that says where and why. The batch size is a sympy symbol `N`, so one trace
serves every batch size.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any, cast

import numpy as np

from compiler.ir import BATCH, Graph, Value
from runtime import _dtype
from runtime._tensor import Size, Tensor
from runtime.ops import _op

_PACKAGE_DIRS = tuple(os.path.abspath(list(sys.modules[name].__path__)[0]) + os.sep
                      for name in ("runtime", "compiler"))


class TracingError(RuntimeError):
    """The model did something during tracing that a static graph cannot express."""


def user_source_line() -> str:
    """`file:line` of the innermost frame outside runtime/ and compiler/ (the model's code)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIRS) and "importlib" not in filename:
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


class SymbolicTensor(Tensor):
    """A tensor that stands for an IR value while tracing."""

    _is_symbolic = True
    _value: Value  # what it stands for

    @classmethod
    def of(cls, value: Value) -> SymbolicTensor:
        self = object.__new__(cls)
        self._value = value
        self._requires_grad = False
        self._grad_fn = None
        self._output_nr = 0
        self._grad = None
        self._retains_grad = False
        self._accumulator = None
        return self

    @property
    def shape(self) -> Size:
        return Size(self._value.shape)

    @property
    def dtype(self) -> _dtype.dtype:
        return self._value.dtype

    @property
    def ndim(self) -> int:
        return len(self._value.shape)

    def dim(self) -> int:
        return len(self._value.shape)

    def size(self, dim: int | None = None) -> Any:
        from runtime.ops.shape import wrap_dim

        return self.shape if dim is None else self._value.shape[wrap_dim(dim, self.ndim)]

    def numel(self) -> Any:
        n: Any = 1
        for s in self._value.shape:
            n = n * s
        return n

    def is_contiguous(self) -> bool:
        return True

    def _data_dependent(self, what: str) -> Any:
        raise TracingError(
            f"{what} needs the value of %{self._value.name}, which is not known while tracing "
            f"(at {user_source_line()}). A compiled model cannot branch on or read tensor values "
            "in Python; use tensor ops (e.g. runtime.where) instead.")

    def item(self) -> Any:
        return self._data_dependent("item()")

    def tolist(self) -> Any:
        return self._data_dependent("tolist()")

    def numpy(self, *, force: bool = False) -> np.ndarray:
        return self._data_dependent("numpy()")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._data_dependent("conversion to a numpy array")

    def __bool__(self) -> bool:
        return self._data_dependent("Python control flow (bool(tensor))")

    def __float__(self) -> float:
        return self._data_dependent("float(tensor)")

    def __int__(self) -> int:
        return self._data_dependent("int(tensor)")

    def __index__(self) -> int:
        return self._data_dependent("using a tensor as a Python index")

    def __len__(self) -> int:
        size = self._value.shape[0] if self._value.shape else None
        if not isinstance(size, int):
            return self._data_dependent("len() of a tensor with a symbolic first dimension")
        return size

    def detach(self) -> Tensor:
        return _stop_gradient(self)

    def _check_inplace(self) -> None:
        pass

    def _inplace_update(self, result: Tensor) -> Tensor:
        """In-place ops in a traced model become out-of-place: this tensor now names the result."""
        if result.shape != self.shape:
            raise TracingError(f"in-place update changes the shape of %{self._value.name}")
        self._value = cast(SymbolicTensor, result)._value
        return self

    def zero_(self) -> Tensor:
        raise TracingError("zero_() on a traced value; use runtime.zeros_like(x) instead")

    def _repr(self, prefix: str) -> str:
        return f"SymbolicTensor({self._value!r})"


def _stop_gradient(x: SymbolicTensor) -> Tensor:
    from compiler.ops import stop_gradient

    return _op.apply(stop_gradient, [x])


class GraphBuilder:
    """Appends the ops applied to symbolic tensors to `graph` (the handler runtime.ops calls)."""

    def __init__(self, graph: Graph, bound: dict[int, Value] | None = None) -> None:
        self.graph = graph
        self.bound = dict(bound or {})  # id(concrete tensor) -> its graph input
        self._keepalive: list[Tensor] = []
        self.scope: list[str] = []

    def value_of(self, t: Tensor) -> Value:
        if isinstance(t, SymbolicTensor):
            return t._value
        known = self.bound.get(id(t))
        if known is not None:
            return known
        value = self.graph.add_constant(np.array(t._data), name="const",
                                        wrapped_number=t._wrapped_number)
        self.bound[id(t)] = value
        self._keepalive.append(t)  # ids stay unique while the tensor lives
        return value

    def __call__(self, op: _op.Op, inputs: Sequence[Tensor], attrs: dict[str, Any]) -> Tensor:
        if op.composite:  # one autograd node eagerly; the graph holds the primitives it is made of
            return op.decompose(inputs, **attrs)
        values = [self.value_of(t) for t in inputs]
        shape, out_dtype = op.infer(values, **attrs)
        prefix = self.scope[-1] if self.scope else ""
        name = f"{prefix}.{op.name}" if prefix else op.name
        out = self.graph.add_node(op, values, attrs, shape, out_dtype, name,
                                  origin=user_source_line())
        return SymbolicTensor.of(out)

    def symbolic_size(self, expr: Any, dtype: _dtype.dtype) -> Tensor:
        """A 0-d tensor holding a size that depends on the batch size (e.g. mean's divisor)."""
        from compiler.ops import symbolic_size

        out = self.graph.add_node(symbolic_size, [], {"expr": expr, "dtype": dtype}, (), dtype,
                                  f"size.{expr}", origin=user_source_line())
        out.wrapped_number = True
        return SymbolicTensor.of(out)

    @contextlib.contextmanager
    def active(self) -> Iterator[GraphBuilder]:
        if _op.symbolic_handler() is not None:
            raise TracingError("a trace is already in progress")
        _op.set_symbolic_handler(self)
        try:
            yield self
        finally:
            _op.set_symbolic_handler(None)


@contextlib.contextmanager
def _named_module_outputs(model: Any, builder: GraphBuilder) -> Iterator[None]:
    """Follow Module.__call__ so values get the names of the modules that computed them."""
    try:
        from runtime.nn import Module
    except ImportError:
        yield
        return
    paths = {id(m): name for name, m in model.named_modules()} if isinstance(model, Module) else {}
    original = Module.__call__
    named: set[Value] = set()  # the values a module has named (the innermost module names it)

    def traced_call(module: Module, *args: Any, **kwargs: Any) -> Any:
        path = paths.get(id(module))
        if path is None or path == "":
            return original(module, *args, **kwargs)
        builder.scope.append(path)
        try:
            result = original(module, *args, **kwargs)
        finally:
            builder.scope.pop()
        if isinstance(result, SymbolicTensor) and result._value.kind == "node" \
                and result._value not in named:
            result._value.name = builder.graph.unique_name(f"{path}.out")
            named.add(result._value)
        return result

    # patched on purpose (and undone below); `module` is the instance, as `self` is
    Module.__call__ = traced_call  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        Module.__call__ = original  # type: ignore[method-assign]


def _input_names(model: Callable[..., Any], count: int) -> list[str]:
    target = getattr(model, "forward", model)
    try:
        names = [p.name for p in inspect.signature(target).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    names = names[:count]
    return names + [f"input{i}" for i in range(len(names), count)]


def named_state(model: Any) -> list[tuple[str, Tensor, str]]:
    """(name, tensor, kind) of the model's parameters and buffers, in PyTorch's order."""
    if not hasattr(model, "named_parameters"):
        return []
    state = [(n, p, "param") for n, p in model.named_parameters()]
    if hasattr(model, "named_buffers"):
        state += [(n, b, "buffer") for n, b in model.named_buffers()]
    return state


def symbolic_shape(shape: Sequence[int], batch_dim: int | None) -> tuple[Any, ...]:
    return tuple(BATCH if i == batch_dim else s for i, s in enumerate(shape))


def trace(model: Any, example_inputs: Sequence[Tensor], *, dynamic_batch: bool = True,
          name: str = "forward") -> Graph:
    """Record `model(*example_inputs)` as a Graph.

    Inputs come first, then the model's parameters and buffers by their dotted names. With
    `dynamic_batch`, dimension 0 of every input is the symbol N, so the graph serves every batch
    size. Example:

        >>> graph = compiler.trace(model, (runtime.randn(64, 1, 28, 28),))
        >>> print(graph)        # graph forward(%x: f32[N, 1, 28, 28], ...) { ... }
    """
    if isinstance(example_inputs, Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    for i, x in enumerate(example_inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"example_inputs[{i}] is a {type(x).__name__}; expected a Tensor")
        if x.ndim == 0 and dynamic_batch:
            raise ValueError(f"example_inputs[{i}] is 0-d, so it has no batch dimension; "
                             "pass dynamic_batch=False")
    graph = Graph(name)
    builder = GraphBuilder(graph)
    symbolic_inputs = []
    for input_name, x in zip(_input_names(model, len(example_inputs)), example_inputs):
        shape = symbolic_shape(x.shape, 0 if dynamic_batch else None)
        symbolic_inputs.append(SymbolicTensor.of(graph.add_input(input_name, shape, x.dtype)))
    for state_name, tensor, kind in named_state(model):
        if id(tensor) not in builder.bound:
            builder.bound[id(tensor)] = graph.add_input(state_name, tuple(tensor.shape),
                                                        tensor.dtype, kind)
    with builder.active(), _named_module_outputs(model, builder):
        result = model(*symbolic_inputs)
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    for i, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            raise TracingError(f"the model returned a {type(out).__name__} as output {i}; "
                               "a compiled model must return tensors")
        if not isinstance(out, SymbolicTensor):
            raise TracingError(f"output {i} does not depend on the inputs or parameters")
        graph.outputs.append(out._value)
    graph._return_structure = "tuple" if isinstance(result, (tuple, list)) else "single"
    return graph.verify()
