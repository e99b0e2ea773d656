"""The primitive ops, one module per family; `OPS` maps each op's name to its one definition.

- elementwise: sympy-defined scalar ops (add, mul, exp, relu, sigmoid, comparisons, ...)
- shape: expand/sum_to, reshape, permute, cat, dtype conversion, clone
- reduction: sum, mean, amax/amin, argmax/argmin, gather/scatter
- matmul: the matrix product in all of torch.matmul's cases
- softmax: softmax, log_softmax
- indexing: x[key], its derivative, and x[key] = value
- pooling: max (fixed and adaptive windows) and average pooling, with their derivatives
- normalization: batch and layer normalisation, composed from the primitives above
- embedding: rows of a table gathered by index, and the deterministic scatter-add back
- conv: convolution over 1 or 2 spatial dims and its input and weight derivatives
- rearrange: flip, roll, repeat, tril/triu
- scan: cumsum, cumprod
- sorting: argsort and the values of sort, topk, kthvalue
- composite: ops PyTorch records as one node (addmm, the losses, max/min along a dim), each
  defined by its decomposition into the ops above
"""

from runtime.ops import (
    composite,
    conv,
    elementwise,
    embedding,
    indexing,
    matmul,
    normalization,
    pooling,
    rearrange,
    reduction,
    scan,
    shape,
    softmax,
    sorting,
)
from runtime.ops._op import OPS, Op, VJPContext, apply, register, set_symbolic_handler

__all__ = ["OPS", "Op", "VJPContext", "apply", "composite", "conv", "elementwise", "embedding",
           "indexing", "matmul", "normalization", "pooling", "rearrange", "reduction", "register",
           "scan", "set_symbolic_handler", "shape", "softmax", "sorting"]
