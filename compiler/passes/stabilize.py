"""Stabilizing rewrites: replace a composition that overflows or cancels by its safe primitive."""

from __future__ import annotations

from compiler.ir import Node, Value
from compiler.passes.driver import RewriteContext, rewrite
from runtime.ops import OPS


@rewrite("stabilize")
def log_of_softmax(node: Node, ctx: RewriteContext) -> Value | None:
    """log(softmax(x, dim)) -> log_softmax(x, dim): no log(0) = -inf for very negative logits."""
    if node.op_name != "log":
        return None
    inner = ctx.producer(node.inputs[0])
    if inner is None or inner.op_name != "softmax":
        return None
    return ctx.emit(OPS["log_softmax"], [inner.inputs[0]], inner.attrs, name=node.output.name,
                    origin=node.origin)


@rewrite("stabilize")
def log_of_sigmoid(node: Node, ctx: RewriteContext) -> Value | None:
    """log(sigmoid(x)) -> -softplus(-x): finite for every x (log(0) for x below about -88)."""
    if node.op_name != "log":
        return None
    inner = ctx.producer(node.inputs[0])
    if inner is None or inner.op_name != "sigmoid":
        return None
    negated = ctx.emit(OPS["neg"], [inner.inputs[0]], name=f"{node.output.name}.neg_x")
    softplus = ctx.emit(OPS["softplus"], [negated], name=f"{node.output.name}.softplus")
    return ctx.emit(OPS["neg"], [softplus], name=node.output.name, origin=node.origin)
