"""runtime.autograd: the recorded graph, the backward engine, and custom Functions.

The public surface is PyTorch's: `backward`, `grad`, `Function` (with `ctx.save_for_backward`,
`ctx.saved_tensors`, `Function.apply`), the node classes behind `tensor.grad_fn`, `Variable`
(which returns a tensor, as PyTorch's), and the
gradient checks `gradcheck` / `gradgradcheck` that every op test uses.
"""

from runtime._grad_mode import enable_grad, no_grad, set_grad_enabled
from runtime.autograd._engine import backward, grad
from runtime.autograd._node import AccumulateGrad, Node
from runtime.autograd.function import Function, FunctionCtx
from runtime.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from runtime.autograd.variable import Variable

__all__ = ["AccumulateGrad", "Function", "FunctionCtx", "GradcheckError", "Node", "Variable",
           "backward", "enable_grad", "grad", "gradcheck", "gradgradcheck", "no_grad",
           "set_grad_enabled"]
