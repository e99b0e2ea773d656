"""Checks of class indices before native code: a cross-entropy or NLL target outside
[0, n_classes) raises PyTorch's IndexError instead of reading outside a row (the native gather
gives NaN there). Found once per graph: the inputs that reach a gather's index unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from compiler.ir import Graph


@dataclass(frozen=True)
class ClassIndexCheck:
    """Graph input `position` holds class indices (a cross-entropy or NLL target): each must be
    in [0, n_classes) or be the loss's ignore_index, as eager mode checks before its gather."""

    position: int
    n_classes: int
    ignored: tuple[int, ...]

    def __call__(self, array: np.ndarray) -> None:
        if array.dtype.kind not in "iu" or array.size == 0:
            return  # a wrong dtype is reported by the native call's own checks
        if array.min() >= 0 and array.max() < self.n_classes:  # the common case, ~2 us at B=64
            return
        valid = ((array >= 0) & (array < self.n_classes)) | np.isin(array, self.ignored)
        if not valid.all():
            raise IndexError(f"Target {array[~valid].flat[0]} is out of bounds.")


def class_index_checks(graph: Graph, n_inputs: int) -> list[ClassIndexCheck]:
    """A check for each of the first `n_inputs` inputs of `graph` that reaches the index of a
    gather unchanged: through ops that preserve its elements (views, copies, integer
    conversions: `Op.preserves_elements`) and the ignore_index substitution
    where(eq(t, ignore_index), 0, t) of `runtime.nn.functional._nll_terms`."""
    checks = []
    for node in graph.nodes:
        if node.op_name != "gather" or not isinstance(node.inputs[0].shape[node.attrs["dim"]],
                                                      int):
            continue
        value, ignored = node.inputs[1], []
        while (producer := value.producer) is not None:
            if producer.op.preserves_elements and \
                    not producer.inputs[0].dtype.is_floating_point:
                value = producer.inputs[0]
            elif (ignore_index := _ignore_value(graph, producer)) is not None:
                ignored.append(ignore_index)
                value = producer.inputs[2]
            else:
                break
        if value in graph.inputs[:n_inputs]:
            checks.append(ClassIndexCheck(graph.inputs.index(value),
                                          node.inputs[0].shape[node.attrs["dim"]], tuple(ignored)))
    return checks


def _ignore_value(graph: Graph, where: Any) -> int | None:
    """c for where(eq(t, c), k, t) with constants c and k, else None."""
    if where.op_name != "where":
        return None
    condition, replacement, kept = where.inputs
    test = condition.producer
    if test is None or test.op_name != "eq" or replacement not in graph.constants:
        return None
    a, b = test.inputs
    if a is kept and b in graph.constants and graph.constants[b].size == 1:
        return int(graph.constants[b])
    return None
