"""Lowering of every elementwise op -- a runtime primitive, a derivative op, or a fused region --
from its sympy expression, by the one expression emitter (`expressions.py`).

An elementwise op needs no rule of its own: `rules.rule_for` sends every `Elementwise` here.
"""

from __future__ import annotations

from typing import Any

import sympy
from llvmlite import ir

from compiler.errors import CompileError
from compiler.ir import Node, Value
from compiler.lowering.context import FunctionLowering
from compiler.lowering.elements import (
    broadcast_strides,
    load,
    nest,
    store,
    store_bool,
    widest_float,
)
from compiler.lowering.expressions import ExpressionEmitter, lowerable
from compiler.lowering.llvm_types import I1, float_type_of
from compiler.lowering.loops import contiguous_strides
from runtime.ops.elementwise import Elementwise


def elementwise(low: FunctionLowering, node: Node) -> None:
    op: Elementwise = node.op
    out = node.output
    compute_dtype = out.dtype if out.dtype.is_floating_point else widest_float(node.inputs)
    if compute_dtype is None:
        raise CompileError(f"op '{node.op_name}' on integer values is not supported by the "
                           "compiler", node.op_name, node.origin)
    float_type = float_type_of(compute_dtype)
    expr = op.expr
    loaded: list[tuple[Any, Value]] = []
    substitutions = {}
    for symbol, value in zip(op.symbols, node.inputs):
        number = low.constant_scalar(value)
        if number is not None:
            substitutions[symbol] = sympy.Float(float(number)) if not isinstance(number, bool) \
                else sympy.Integer(int(number))
        else:
            loaded.append((symbol, value))
    expr = expr.subs(substitutions) if substitutions else expr
    missing = lowerable(expr)
    if missing is not None:
        raise CompileError(f"op '{node.op_name}' uses {missing}, which has no native lowering",
                           node.op_name, node.origin)
    emitter = ExpressionEmitter(low.builder, float_type)
    strides = [contiguous_strides(out.shape)] + [broadcast_strides(v, out.shape)
                                                 for _, v in loaded]

    def body(offsets: list[ir.Value]) -> None:
        env = {symbol: load(low, value, offset, float_type)
               for (symbol, value), offset in zip(loaded, offsets[1:])}
        result = emitter.emit(expr, env)
        if result.type == I1:
            if out.dtype.name == "bool":
                store_bool(low, out, offsets[0], result)
                return
            result = low.builder.uitofp(result, float_type)
        store(low, out, offsets[0], result, compute_dtype)

    nest(low, out.shape, strides, body)
