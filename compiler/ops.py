"""Ops that exist only in compiled graphs (the runtime's primitives live in runtime/ops).

- `stop_gradient`: what `detach()` means inside a traced model: the value, with no derivative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.ops._op import Op, moves_data


class StopGradient(Op):
    name = "stop_gradient"
    backward_name = ""
    differentiable = False
    aliases_input = True
    preserves_elements = True
    flops = moves_data

    def infer(self, inputs: Sequence[Any], **attrs: Any) -> Any:
        return tuple(inputs[0].shape), inputs[0].dtype

    def compute(self, arrays: Sequence[np.ndarray], **attrs: Any) -> np.ndarray:
        return arrays[0]


stop_gradient = StopGradient()


class SymbolicSize(Op):
    """A 0-d value computed from the batch size at run time (e.g. the N*10 mean() divides by)."""

    name = "size"
    backward_name = ""
    differentiable = False
    flops = moves_data  # an integer computation on the batch size

    def infer(self, inputs: Sequence[Any], *, expr: Any, dtype: Any) -> Any:
        return (), dtype

    def compute(self, arrays: Sequence[np.ndarray], *, expr: Any, dtype: Any,
                sizes: dict[Any, int] | None = None) -> np.ndarray:
        value = expr.subs(sizes or {}) if hasattr(expr, "subs") else expr
        return np.array(float(value), dtype=dtype.numpy)


symbolic_size = SymbolicSize()
