"""The backward engine: walk the recorded graph from the roots, in reverse topological order.

1. Discover the nodes reachable from the roots and count, for each, the edges that lead into it.
2. Start from the roots with their gradients; a node runs once every edge into it has delivered
   (so its incoming gradient is complete, summed over all uses).
3. Running a node: run the hooks registered on its outputs' tensors (register_hook), fill
   `.grad` of tensors that asked for it (retain_grad), apply its derivative,
   hand each input's gradient to the next node, and free its saved values unless retain_graph.
Leaves receive their gradients through AccumulateGrad nodes, which add into `.grad`. For
`autograd.grad`, the gradients arriving at the requested inputs are captured instead, and only the
part of the graph that leads to them is run.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np

from runtime import _tensor
from runtime._grad_mode import set_grad_enabled

if TYPE_CHECKING:
    from runtime._tensor import Tensor
from runtime.autograd._node import AccumulateGrad, Node

Edge = tuple[Node, int]
MaybeEdge = tuple[Node | None, int]  # a tensor that requires no grad has no edge: (None, 0)


def _root_gradients(roots: Sequence[Tensor], grads: Sequence[Tensor | None]) -> list[Tensor]:
    result = []
    for i, (root, grad) in enumerate(zip(roots, grads)):
        if not root.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a "
                               "grad_fn")
        if grad is None:
            if root.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            grad = _tensor.Tensor._from_array(np.ones(root._data.shape, dtype=root._data.dtype))
        elif not isinstance(grad, _tensor.Tensor):
            raise TypeError(f"gradient must be a Tensor or None, got {type(grad).__name__}")
        elif grad.shape != root.shape:
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                               f"{grad.shape} and output[{i}] has a shape of {root.shape}.")
        result.append(grad)
    return result


def _root_edge(root: Tensor) -> Edge:
    node, nr = root._gradient_edge()
    assert node is not None, "a root requires grad (checked by _root_gradients)"
    return node, nr


def _count_dependencies(roots: Sequence[Node]) -> dict[Node, int]:
    dependencies: dict[Node, int] = {r: 0 for r in roots}
    stack = list(dict.fromkeys(roots))
    seen = set(stack)
    while stack:
        node = stack.pop()
        for child, _ in node.next_functions:
            if child is None:
                continue
            dependencies[child] = dependencies.get(child, 0) + 1
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return dependencies


def _leading_to(targets: set[Node], nodes: Collection[Node]) -> set[Node]:
    """The nodes from which some target can be reached (only these need to run): the targets,
    and everything found by walking the graph's edges backwards from them."""
    parents: dict[Node, list[Node]] = {}
    for node in nodes:
        for child, _ in node.next_functions:
            if child is not None:
                parents.setdefault(child, []).append(node)
    found: set[Node] = set()
    stack = [t for t in targets if t in nodes]
    while stack:
        node = stack.pop()
        if node not in found:
            found.add(node)
            stack.extend(parents.get(node, ()))
    return found


def run_backward(roots: Sequence[Tensor], root_grads: Sequence[Tensor], *, retain_graph: bool,
                 create_graph: bool, capture: Sequence[MaybeEdge] | None = None,
                 accumulate: bool = True) -> dict[MaybeEdge, Tensor | None]:
    """Run the graph behind `roots`; return the gradients arriving at the `capture` edges."""
    root_edges = [_root_edge(r) for r in roots]
    dependencies = _count_dependencies([node for node, _ in root_edges])
    captured: dict[MaybeEdge, Tensor | None] = {edge: None for edge in capture or ()}
    wanted = None if accumulate else _leading_to(
        {node for node, _ in captured if node is not None}, dependencies)

    buffers: dict[Node, list[Tensor | None]] = {}
    for (node, nr), grad in zip(root_edges, root_grads):
        _add_to_buffer(buffers, node, nr, grad)
    ready = [node for node, _ in dict.fromkeys(root_edges) if dependencies[node] == 0]

    with set_grad_enabled(create_graph):
        while ready:
            node = ready.pop()
            grads_in = _run_tensor_hooks(node, buffers.pop(node, [None] * node.num_outputs))
            for nr, ref in node._retained.items():
                tensor, g = ref(), grads_in[nr]
                if tensor is not None and g is not None:
                    g = g if create_graph else g.detach()
                    tensor._grad = g if tensor._grad is None else tensor._grad + g
            for nr in range(node.num_outputs):
                if (node, nr) in captured and grads_in[nr] is not None:
                    captured[(node, nr)] = grads_in[nr]
            runs = (wanted is None or node in wanted) and any(g is not None for g in grads_in)
            if isinstance(node, AccumulateGrad) and not accumulate:
                runs = False
            grads_out = _validate(node, node.apply(grads_in)) if runs else ()
            if not retain_graph and (wanted is None or node in wanted):
                node.release()
            for (child, nr), child_grad in zip(node.next_functions, grads_out):
                if child is not None and child_grad is not None:
                    _add_to_buffer(buffers, child, nr, child_grad)
            for child, _ in node.next_functions:
                if child is None:
                    continue
                dependencies[child] -= 1
                if dependencies[child] == 0:
                    ready.append(child)
    return captured


def _run_tensor_hooks(node: Node, grads: list[Tensor | None]) -> list[Tensor | None]:
    """Each tensor hook sees its tensor's gradient and may return a replacement."""
    for nr, grad in enumerate(grads):
        if grad is None:
            continue
        for hook in node.tensor_hooks(nr):
            replaced = hook(grad)
            if replaced is not None:
                grad = grads[nr] = replaced
    return grads


def _validate(node: Node, grads: Sequence[Tensor | None]) -> list[Tensor | None]:
    """Each gradient in its input's shape and dtype, as PyTorch's engine makes them: summed
    down when the input broadcasts to it, cast to the input's dtype, an error otherwise."""
    from runtime.ops.shape import sum_to, to_dtype

    checked: list[Tensor | None] = []
    for i, (grad, meta) in enumerate(zip(grads, node.input_metadata)):
        if grad is not None and meta is not None:
            shape, dtype = meta
            if tuple(grad.shape) != tuple(shape):
                if not _expandable(tuple(shape), tuple(grad.shape)):
                    raise RuntimeError(f"Function {node.name()} returned an invalid gradient at "
                                       f"index {i} - got {list(grad.shape)} but expected shape "
                                       f"compatible with {list(shape)}")
                grad = sum_to(grad, shape)
            if grad.dtype != dtype:
                grad = to_dtype(grad, dtype)
        checked.append(grad)
    return checked


def _expandable(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(shape[::-1], target[::-1]))


def _add_to_buffer(buffers: dict[Node, list[Tensor | None]], node: Node, nr: int,
                   grad: Tensor) -> None:
    slots = buffers.setdefault(node, [None] * node.num_outputs)
    slots[nr] = grad if slots[nr] is None else slots[nr] + grad


def backward(tensors: Sequence[Tensor], grad_tensors: Sequence[Tensor | None] | None = None,
             retain_graph: bool | None = None, create_graph: bool = False,
             inputs: Sequence[Tensor] | None = None) -> None:
    """Accumulate gradients of `tensors` into the leaves' `.grad` (torch.autograd.backward)."""
    tensors = [tensors] if isinstance(tensors, _tensor.Tensor) else list(tensors)
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    elif isinstance(grad_tensors, _tensor.Tensor):
        grad_tensors = [grad_tensors]
    if retain_graph is None:
        retain_graph = create_graph
    grads = _root_gradients(tensors, grad_tensors)
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, _tensor.Tensor) else list(inputs)
        captured = run_backward(tensors, grads, retain_graph=retain_graph,
                                create_graph=create_graph,
                                capture=[t._gradient_edge() for t in inputs], accumulate=False)
        for t in inputs:
            g = captured[t._gradient_edge()]
            if g is not None:
                AccumulateGrad(t).apply([g]) if t.is_leaf else _accumulate_non_leaf(t, g)
        return
    run_backward(tensors, grads, retain_graph=retain_graph, create_graph=create_graph)


def _accumulate_non_leaf(t: Tensor, g: Tensor) -> None:
    t._grad = g if t._grad is None else t._grad + g


def grad(outputs: Sequence[Tensor] | Tensor, inputs: Sequence[Tensor] | Tensor,
         grad_outputs: Sequence[Tensor | None] | Tensor | None = None,
         retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool | None = None,
         materialize_grads: bool = False) -> tuple[Tensor | None, ...]:
    """The gradients of `outputs` with respect to `inputs`, returned rather than accumulated."""
    outputs = [outputs] if isinstance(outputs, _tensor.Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, _tensor.Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, _tensor.Tensor):
        grad_outputs = [grad_outputs]
    if retain_graph is None:
        retain_graph = create_graph
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    grads = _root_gradients(outputs, grad_outputs)
    edges = [t._gradient_edge() for t in inputs]
    captured = run_backward(outputs, grads, retain_graph=retain_graph, create_graph=create_graph,
                            capture=edges, accumulate=False)
    result: list[Tensor | None] = []
    for t, edge in zip(inputs, edges):
        g = captured[edge]
        if g is None:
            if materialize_grads:
                g = _tensor.Tensor._from_array(np.zeros_like(t._data))
            elif not allow_unused:
                raise RuntimeError(f"The differentiated Tensor at index {len(result)} appears to "
                                   "not have been used in the graph. Set allow_unused=True if "
                                   "this is the desired behavior.")
        result.append(g)
    return tuple(result)
