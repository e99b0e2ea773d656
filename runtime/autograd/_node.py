"""Nodes of the recorded graph: what `tensor.grad_fn` is.

Running an op on tensors that require grad creates one Node for its result. A node turns the
gradient with respect to its outputs into gradients with respect to its inputs (`apply`), and holds
the edges to where those inputs came from (`next_functions`: pairs (node, output index), or
(None, 0) for an input that needs no gradient) with each input's shape and dtype
(`input_metadata`, against which the engine checks the gradients). A leaf tensor that requires
grad is reached through its AccumulateGrad node, which adds the incoming gradient into `leaf.grad`.

Values a node needs for its backward are SavedTensors. A SavedTensor remembers the version of the
tensor when it was saved (changing it in place afterwards is an error at backward time) and is
dropped when the graph is freed after backward, unless `retain_graph=True`. A node never keeps its
own output alive: a saved output is stored as its data and rebuilt, with this node as grad_fn, on
use; so recorded graphs have no reference cycles and are freed as soon as their outputs are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from runtime._tensor import Tensor

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward."
)


class Node:
    """A backward function in the recorded graph (PyTorch's `Function` objects, such as
    AddBackward0: `named_node_class` gives each name its own subclass, so
    `type(t.grad_fn).__name__` is that name)."""

    num_outputs = 1

    def __init__(self, next_functions: Sequence[tuple[Node | None, int]],
                 input_metadata: Sequence[tuple[Any, Any] | None] | None = None) -> None:
        self._next_functions = tuple(next_functions)
        # per edge: (shape, dtype) of the input, or None where no gradient is checked
        self.input_metadata = tuple(input_metadata or (None,) * len(self._next_functions))
        self._retained: dict[int, Any] = {}  # output nr -> tensor whose .grad to fill (retain_grad)
        self._tensor_hooks: dict[int, dict[int, Any]] = {}  # output nr -> {handle id: hook}
        self._released = False

    @property
    def next_functions(self) -> tuple[tuple[Node | None, int], ...]:
        return self._next_functions

    def name(self) -> str:
        return type(self).__name__

    def tensor_hooks(self, output_nr: int) -> list[Any]:
        """Hooks registered (Tensor.register_hook) on the tensor that is output `output_nr`;
        each sees that tensor's gradient before this node uses it, and may replace it."""
        return list(self._tensor_hooks.get(output_nr, {}).values())

    def apply(self, grad_outputs: list[Tensor | None]) -> Sequence[Tensor | None]:
        """Gradients with respect to the inputs, one per edge in next_functions."""
        raise NotImplementedError

    def release(self) -> None:
        """Drop saved values (called after backward unless retain_graph=True)."""
        self._released = True

    def protect_saved(self, tensor: Tensor) -> None:
        """Called before `tensor` is overwritten in place with this node's result."""

    def __call__(self, *grad_outputs: Tensor | None) -> Any:
        grads = self.apply(list(grad_outputs))
        return grads[0] if len(grads) == 1 else tuple(grads)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"


_node_classes: dict[tuple[type, str], type] = {}
NodeT = TypeVar("NodeT", bound=Node)


def named_node_class(base: type[NodeT], name: str) -> type[NodeT]:
    """The subclass of `base` called `name` (AddBackward0, CubeBackward), made once."""
    key = (base, name)
    if key not in _node_classes:
        _node_classes[key] = type(name, (base,), {"__module__": base.__module__,
                                                  "__qualname__": name})
    return _node_classes[key]


class RemovableHandle:
    """What register_hook returns: `handle.remove()` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict[int, Any]) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


class SavedTensor:
    """A value kept for backward, checked against in-place changes and freeing."""

    __slots__ = ("_data_tensor", "_version", "_is_output", "_requires_grad", "_output_nr")

    def __init__(self, tensor: Tensor, is_output: bool = False) -> None:
        self._version = tensor._version.value
        self._is_output = is_output
        self._requires_grad = tensor.requires_grad
        self._output_nr = tensor._output_nr
        # A saved output keeps only its data: no reference back to the node, so no cycle.
        self._data_tensor: Tensor | None = tensor.detach() if is_output else tensor

    def unpack(self, owner: Node | None) -> Tensor:
        """The saved value; `owner` is the node that saved it (None for a value saved with no
        graph recorded, never an output)."""
        tensor = self._data_tensor
        if tensor is None:
            raise RuntimeError(FREED_MESSAGE)
        if tensor._version.value != self._version:
            raise RuntimeError(_modified_message(tensor, self._version,
                                                 owner if self._is_output else tensor.grad_fn))
        if self._is_output:
            rebuilt = tensor.detach()
            if self._requires_grad and owner is not None:
                rebuilt._set_history(owner, self._output_nr)
            return rebuilt
        return tensor

    def shares_memory_with(self, tensor: Tensor) -> bool:
        return self._data_tensor is not None and self._data_tensor._version is tensor._version

    def keep_private_copy(self) -> None:
        """Hold a copy of the saved values (same history), before their memory is overwritten."""
        if self._data_tensor is not None:  # freed values need no copy
            self._data_tensor = self._data_tensor._snapshot()
            self._version = self._data_tensor._version.value

    def free(self) -> None:
        self._data_tensor = None


def _modified_message(tensor: Tensor, expected_version: int, grad_fn: Node | None) -> str:
    origin = f", which is output {tensor._output_nr} of {grad_fn.name()}," if grad_fn else ""
    return ("one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: [{tensor.type()} {list(tensor.shape)}]{origin} is at version "
            f"{tensor._version.value}; expected version {expected_version} instead. Hint: the "
            "tensor was changed in place after it was saved for backward; compute the result "
            "out of place, or clone() the tensor before changing it.")


class AccumulateGrad(Node):
    """The node of a leaf that requires grad: adds each incoming gradient into `leaf.grad`."""

    def __init__(self, variable: Tensor) -> None:
        super().__init__(())
        self.variable = variable

    def tensor_hooks(self, output_nr: int) -> list[Any]:
        return list(self.variable._leaf_hooks.values())

    def apply(self, grad_outputs: list[Tensor | None]) -> Sequence[Tensor | None]:
        from runtime._grad_mode import is_grad_enabled

        grad = grad_outputs[0]
        if grad is None:
            return ()
        leaf = self.variable
        if leaf._grad is None:
            # A fresh tensor: the incoming gradient may be shared with other branches.
            leaf._grad = grad if is_grad_enabled() else grad.detach().clone()
        elif is_grad_enabled() or leaf._grad.requires_grad:
            leaf._grad = leaf._grad + grad  # create_graph=True: keep the sum differentiable
        else:
            leaf._grad._data += grad._data  # in place, as PyTorch: `g = w.grad` sees the sum
            leaf._grad._version.bump()
        return ()
