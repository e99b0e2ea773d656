"""symgrad's runtime: PyTorch's programming model, eagerly, on numpy.

`import runtime as torch` runs the PyTorch tutorials' code: tensors with autograd, `nn`, `optim`,
`utils.data`. The compiler (`import compiler`) builds on this package; this package never imports
the compiler, and importing it does not import sympy or llvmlite (they load on first need).
"""

from runtime import _tensor_methods  # noqa: F401 - gives Tensor its methods
from runtime._creation import (
                               arange,
                               as_tensor,
                               empty,
                               empty_like,
                               eye,
                               from_numpy,
                               full,
                               full_like,
                               linspace,
                               normal,
                               ones,
                               ones_like,
                               rand,
                               rand_like,
                               randint,
                               randn,
                               randn_like,
                               randperm,
                               tensor,
                               zeros,
                               zeros_like,
)
from runtime._device import device, get_default_device, set_default_device
from runtime._dtype import bool_ as bool
from runtime._dtype import (
                               dtype,
                               float16,
                               float32,
                               float64,
                               get_default_dtype,
                               int8,
                               int16,
                               int32,
                               int64,
                               set_default_dtype,
                               uint8,
)
from runtime._functions import (
                               abs,
                               add,
                               all,
                               allclose,
                               amax,
                               amin,
                               any,
                               argmax,
                               argmin,
                               bitwise_and,
                               bitwise_not,
                               bitwise_or,
                               bitwise_xor,
                               bmm,
                               broadcast_to,
                               cat,
                               clamp,
                               clip,
                               clone,
                               concat,
                               detach,
                               div,
                               dot,
                               eq,
                               equal,
                               exp,
                               expand,
                               flatten,
                               gather,
                               ge,
                               gt,
                               is_tensor,
                               isnan,
                               le,
                               log,
                               log1p,
                               log_softmax,
                               logical_and,
                               logical_not,
                               logical_or,
                               logical_xor,
                               lt,
                               matmul,
                               max,
                               maximum,
                               mean,
                               min,
                               minimum,
                               mm,
                               mul,
                               mv,
                               ne,
                               neg,
                               norm,
                               numel,
                               permute,
                               pow,
                               promote_types,
                               reciprocal,
                               relu,
                               reshape,
                               result_type,
                               rsqrt,
                               rsub,
                               sigmoid,
                               softmax,
                               sqrt,
                               square,
                               squeeze,
                               stack,
                               std,
                               sub,
                               sum,
                               swapaxes,
                               t,
                               take_along_dim,
                               tanh,
                               transpose,
                               true_divide,
                               unflatten,
                               unsqueeze,
                               var,
                               where,
)
from runtime._grad_mode import (
                               enable_grad,
                               inference_mode,
                               is_grad_enabled,
                               no_grad,
                               set_grad_enabled,
)
from runtime._random import Generator, default_generator, initial_seed, manual_seed, seed
from runtime._tensor import Size, Tensor

float = float32  # noqa: A001 - PyTorch's aliases
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16

__version__ = "0.1.0"

from runtime import accelerator, autograd, backends, cuda, nn, optim, utils  # noqa: E402

__all__ = [name for name in dir() if not name.startswith("_")]
