"""Simplification: ordered stages of small named rewrites, each logged when it fires.

    canonicalize  constant folding and identities (x*1, x+0, reshape of reshape, ...)
    stabilize     numerically safe forms (log(softmax(x)) -> log_softmax(x), ...)
    cse           merge equal nodes; drop dead ones
    fuse          maximal elementwise regions become one node holding a sympy expression
    layout        transposes folded into matrix products

and, run by `compiler.pipeline` once right after differentiation (not by `simplify`):

    saving        what backward reads from the forward (ReLU's mask from its output)

`simplify(graph)` runs them all and returns a new graph; `graph.rewrite_log` (and the `log`
argument) lists what fired. Each rewrite is a function registered for its stage in its own module,
and tested alone.
"""

from compiler.passes import canonicalize, cse, fuse, layout, saving, stabilize  # noqa: I001
from compiler.passes.driver import STAGES, RewriteLog, run_stage, simplify

__all__ = ["STAGES", "RewriteLog", "run_stage", "simplify"]
