"""The lowering rule of every op, gathered from the family modules that mirror runtime/ops.

Each family module (elementwise, shape, indexing, reduction, softmax, matmul, conv, pooling,
embedding) defines its rules and lists them in its `RULES`; this module joins those tables, each
op named once. Elementwise ops of any kind (primitive, derivative, fused) share the one
expression rule.
"""

from __future__ import annotations

from compiler.ir import Node
from compiler.lowering import conv, embedding, indexing, matmul, pooling, reduction, shape, softmax
from compiler.lowering.context import Rule
from compiler.lowering.elementwise import elementwise
from runtime.ops.elementwise import Elementwise


def _joined(*tables: dict[str, Rule]) -> dict[str, Rule]:
    joined: dict[str, Rule] = {}
    for table in tables:
        for name, rule in table.items():
            if name in joined:
                raise ValueError(f"op {name!r} has two lowering rules")
            joined[name] = rule
    return joined


RULES = _joined(shape.RULES, indexing.RULES, reduction.RULES, softmax.RULES, matmul.RULES,
                conv.RULES, pooling.RULES, embedding.RULES)


def rule_for(node: Node) -> Rule | None:
    """The rule that lowers `node`, or None if its op has no native lowering."""
    if isinstance(node.op, Elementwise):
        return elementwise
    return RULES.get(node.op_name)
