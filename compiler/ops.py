"""Ops that exist only in compiled graphs (the runtime's primitives live in runtime/ops).

- `stop_gradient`: what `detach()` means inside a traced model: the value, with no derivative;
- `size`: a 0-d value computed from the batch size at run time;
- `gemm`, `gemm_accumulate`: the matrix product with transpose flags, and added onto a matrix
  (made by the layout rewrites, after differentiation);
- `FusedElementwise`: a region of elementwise ops as one sympy expression (made by fusion).

The rewrites that make them live in compiler/passes; this module only defines them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runtime.ops._op import Op, Shape, moves_data, numel
from runtime.ops.elementwise import Elementwise
from runtime.ops.matmul import matmul_shape


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


class Gemm(Op):
    """C = op(A) @ op(B) for 2-D A and B, op = transpose where the flag says so."""

    name = "gemm"
    backward_name = "MmBackward0"
    differentiable = False  # only made after differentiation

    def infer(self, inputs: Sequence[Any], *, transpose_a: bool, transpose_b: bool) -> Any:
        a, b = inputs
        a_shape = tuple(a.shape)[::-1] if transpose_a else tuple(a.shape)
        b_shape = tuple(b.shape)[::-1] if transpose_b else tuple(b.shape)
        return matmul_shape(a_shape, b_shape), a.dtype

    def compute(self, arrays: Sequence[np.ndarray], *, transpose_a: bool,
                transpose_b: bool) -> np.ndarray:
        a, b = arrays
        return np.matmul(a.T if transpose_a else a, b.T if transpose_b else b)

    def flops(self, input_shapes: Sequence[Shape], output_shape: Shape, *, transpose_a: bool,
              transpose_b: bool) -> Any:
        """A multiply and an add per output element and step of the inner dimension."""
        a = input_shapes[0]
        return 2 * numel(output_shape) * (a[0] if transpose_a else a[1])


gemm = Gemm()


class GemmAccumulate(Op):
    """out = c + op(A) @ op(B) for 2-D operands: a matrix product added onto a matrix."""

    name = "gemm_accumulate"
    backward_name = ""
    differentiable = False

    def infer(self, inputs: Sequence[Any], *, transpose_a: bool, transpose_b: bool) -> Any:
        c, a, b = inputs
        shape, dtype = gemm.infer([a, b], transpose_a=transpose_a, transpose_b=transpose_b)
        if tuple(shape) != tuple(c.shape):
            raise ValueError(f"gemm_accumulate: product {shape} does not match {tuple(c.shape)}")
        return tuple(c.shape), c.dtype

    def compute(self, arrays: Sequence[np.ndarray], *, transpose_a: bool,
                transpose_b: bool) -> np.ndarray:
        c, a, b = arrays
        return c + gemm.compute([a, b], transpose_a=transpose_a, transpose_b=transpose_b)

    def flops(self, input_shapes: Sequence[Shape], output_shape: Shape, *, transpose_a: bool,
              transpose_b: bool) -> Any:
        """The product's, and one add per element of c."""
        product = gemm.flops(input_shapes[1:], output_shape, transpose_a=transpose_a,
                             transpose_b=transpose_b)
        return product + numel(output_shape)


gemm_accumulate = GemmAccumulate()


class FusedElementwise(Elementwise):
    """An elementwise op made by fusion: `expr` over symbols a0, a1, ..., and a fixed dtype."""

    def __init__(self, expr: Any, symbols: Sequence[Any], out_dtype: Any) -> None:
        names = [s.name for s in symbols]
        super().__init__("fused", "FusedBackward0", lambda *a, **k: None, symbols=names,
                         expr=expr, result="promote")
        self.__dict__["symbols"] = tuple(symbols)
        self.out_dtype = out_dtype
        self.fused_expr = expr

    def infer(self, inputs: Sequence[Any], **attrs: Any) -> Any:
        shape, _ = super().infer(inputs, **attrs)
        return shape, self.out_dtype

    def describe(self) -> str:
        return str(self.expr)

    simplify_derivatives = False  # sympy.simplify of a fused body has no time bound
