"""Run a Graph with numpy, node by node, using each op's eager kernel.

The reference semantics of the IR: tests compare every pass and every native function against
it, and it runs graphs whose ops have no native lowering yet. The batch size N is read off the
inputs' shapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy

from compiler.ir import Graph, Value


def bind_sizes(graph: Graph, arrays: Sequence[np.ndarray]) -> dict[Any, int]:
    """The value of each size symbol, from the inputs' shapes; ValueError if they disagree."""
    sizes: dict[Any, int] = {}
    for value, array in zip(graph.inputs, arrays):
        if len(value.shape) != array.ndim:
            raise ValueError(f"input %{value.name} expects {value.ndim} dimensions "
                             f"{list(value.shape)}, got shape {list(array.shape)}")
        for expected, actual in zip(value.shape, array.shape):
            if isinstance(expected, sympy.Symbol):
                if sizes.setdefault(expected, actual) != actual:
                    raise ValueError(f"inconsistent batch size: {expected} is {sizes[expected]} "
                                     f"and {actual}")
            elif concrete(expected, sizes) != actual:
                raise ValueError(f"input %{value.name} expects shape {list(value.shape)}, got "
                                 f"{list(array.shape)}")
    return sizes


def concrete(value: Any, sizes: Mapping[Any, int]) -> Any:
    """`value` with size symbols replaced by their values (ints stay ints; tuples recurse)."""
    if isinstance(value, tuple):  # a named tuple (an index key's IndexSlot) keeps its type
        return type(value)(*(concrete(v, sizes) for v in value)) if hasattr(value, "_fields") \
            else tuple(concrete(v, sizes) for v in value)
    if isinstance(value, sympy.Basic):
        result = value.subs(sizes)
        return int(result) if result.is_Integer else result
    return value


def run(graph: Graph, inputs: Sequence[Any]) -> list[np.ndarray]:
    """The graph's outputs for these inputs (numpy arrays or tensors, in graph.inputs order)."""
    arrays = [np.asarray(x._data if hasattr(x, "_data") else x) for x in inputs]
    if len(arrays) != len(graph.inputs):
        raise TypeError(f"graph {graph.name} takes {len(graph.inputs)} inputs "
                        f"({', '.join(v.name for v in graph.inputs)}), got {len(arrays)}")
    sizes = bind_sizes(graph, arrays)
    env: dict[Value, np.ndarray] = dict(zip(graph.inputs, arrays))
    env.update(graph.constants)
    with np.errstate(all="ignore"):
        for node in graph.nodes:
            attrs = {k: concrete(v, sizes) for k, v in node.attrs.items()}
            if node.op.name == "size":
                attrs["sizes"] = sizes
            result = np.asarray(node.op.compute([env[v] for v in node.inputs], **attrs))
            if result.dtype != node.output.dtype.numpy:
                result = result.astype(node.output.dtype.numpy)
            env[node.output] = result
    return [env[v] for v in graph.outputs]
