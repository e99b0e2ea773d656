"""The primitive ops, one module per family; `OPS` maps each op's name to its one definition.

- elementwise: sympy-defined scalar ops (add, mul, exp, relu, sigmoid, comparisons, ...)
- shape: expand/sum_to, reshape, permute, cat, dtype conversion, clone
- reduction: sum, mean, amax/amin, argmax/argmin, gather/scatter
- matmul: the matrix product in all of torch.matmul's cases
- softmax: softmax, log_softmax
- indexing: x[key], its derivative, and x[key] = value
- rearrange: flip, roll, repeat, tril/triu
- scan: cumsum, cumprod
- sorting: argsort and the values of sort, topk, kthvalue
"""

from runtime.ops import (
                         elementwise,
                         indexing,
                         matmul,
                         rearrange,
                         reduction,
                         scan,
                         shape,
                         softmax,
                         sorting,
)
from runtime.ops._op import OPS, Op, VJPContext, apply, register, set_symbolic_handler

__all__ = ["OPS", "Op", "VJPContext", "apply", "elementwise", "indexing", "matmul", "rearrange",
           "reduction", "register", "scan", "set_symbolic_handler", "shape", "softmax", "sorting"]
