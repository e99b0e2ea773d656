"""The table that gives Tensor its methods and operators, each calling a function of
`runtime/_functions.py` (so `x.exp()`, `runtime.exp(x)` and a traced `exp` are one thing).
In-place forms (`x.add_(y)`, `x += y`) compute out of place and write back into x's memory.
It also hands Tensor's own methods what they need from the modules above `runtime/_tensor.py`
(`runtime._tensor.layers`), which that module cannot import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime import _arrangement as A
from runtime import _dtype
from runtime import _functions as F
from runtime._random import Generator, numpy_rng
from runtime._tensor import Tensor, layers
from runtime.autograd import _engine
from runtime.ops import _op, indexing
from runtime.ops import shape as shape_ops


def _swap(fn: Callable[..., Any]) -> Callable[..., Any]:
    return lambda self, other: fn(other, self)


def _inplace(fn: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        self._check_inplace()
        return self._inplace_update(fn(self, *args, **kwargs))

    return method


def _to(self: Tensor, *args: Any, dtype: Any = None, device: Any = None,
        non_blocking: bool = False, copy: bool = False, memory_format: Any = None) -> Tensor:
    """to(dtype), to(device), to(device, dtype), to(other): the device is checked (only the CPU
    exists), the dtype converted; the same tensor when nothing changes, unless copy=True."""
    from runtime._device import check_device

    rest = list(args)
    if rest and isinstance(rest[0], Tensor):  # to(other, non_blocking=False, copy=False)
        other = rest.pop(0)
        dtype, device = other.dtype, other.device
    elif rest and not isinstance(rest[0], _dtype.dtype):  # to(device, dtype=None, ...)
        device = rest.pop(0)
        if device is None:
            raise TypeError("to() received an invalid combination of arguments: the device is "
                            "None; expected a device, a dtype or a tensor")
    if rest and isinstance(rest[0], _dtype.dtype):
        dtype = rest.pop(0)
    if rest and isinstance(rest[0], bool):
        rest.pop(0)  # non_blocking: every copy here is synchronous
    if rest and isinstance(rest[0], bool):
        copy = rest.pop(0)
    if rest:
        raise TypeError(f"to() received an invalid combination of arguments - got "
                        f"{tuple(type(a).__name__ for a in rest)}; expected "
                        "(device, dtype), (dtype) or (tensor)")
    if device is not None:
        check_device(device)
    out = self if dtype is None or dtype == self.dtype else F.shape_ops.to_dtype(self, dtype)
    return F.clone(out) if copy and out is self else out


def _type(self: Tensor, dtype: Any = None) -> Any:
    if dtype is None:
        return f"runtime.{self.dtype.scalar_name}Tensor"
    return _to(self, dtype)


def _contiguous(self: Tensor) -> Tensor:
    return self if self._is_symbolic or self.is_contiguous() else F.clone(self)


def _setitem(self: Tensor, key: Any, value: Any) -> None:
    self._inplace_update(indexing.index_put(self, key, value))


def _uniform_(self: Tensor, a: float = 0.0, b: float = 1.0, *,
              generator: Generator | None = None) -> Tensor:
    return self._random_(numpy_rng(generator).uniform(a, b, self._data.shape))


def _normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *,
             generator: Generator | None = None) -> Tensor:
    return self._random_(numpy_rng(generator).normal(mean, std, self._data.shape))


def _bernoulli_(self: Tensor, p: float = 0.5, *, generator: Generator | None = None) -> Tensor:
    return self._random_(numpy_rng(generator).random(self._data.shape) < p)


def _addcmul(self: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:
    return F.add(self, F.mul(F.mul(tensor1, tensor2), value))


def _addcdiv(self: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:
    return F.add(self, F.mul(F.div(tensor1, tensor2), value))


def _new(fill: Callable[..., Tensor]) -> Callable[..., Tensor]:
    def method(self: Tensor, *size: Any, dtype: Any = None, **kwargs: Any) -> Tensor:
        return fill(*size, dtype=dtype or self.dtype, **kwargs)

    return method


def _new_tensor(self: Tensor, data: Any, dtype: Any = None, device: Any = None,
                requires_grad: bool = False) -> Tensor:
    from runtime._creation import tensor

    return tensor(data, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)


def _new_full(self: Tensor, size: Any, fill_value: Any, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    from runtime._creation import full

    return full(size, fill_value, dtype=dtype or self.dtype, device=device,
                requires_grad=requires_grad)


# Elementwise math with a method and an in-place method of the same name (x.sin(), x.sin_()).
MATH = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
        "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "erf", "erfc", "exp2",
        "expm1", "log2", "log10", "floor", "ceil", "round", "trunc", "fix", "frac", "sign",
        "atan2", "arctan2")


def _attach() -> dict[str, Any]:
    from runtime import _creation
    from runtime._creation import empty, ones, zeros

    # what Tensor's own methods need from the modules above it (runtime/_tensor.py: _Layers)
    layers.zeros, layers.tensor = _creation.zeros, _creation.tensor
    layers.backward, layers.apply = _engine.backward, _op.apply
    layers.index_put, layers.expand = indexing.index_put, shape_ops.expand

    methods: dict[str, Any] = {
        # arithmetic
        "add": F.add, "sub": F.sub, "mul": F.mul, "div": F.div, "true_divide": F.div,
        "neg": F.neg, "pow": F.pow, "square": F.square, "abs": F.abs, "exp": F.exp, "log": F.log,
        "log1p": F.log1p, "sqrt": F.sqrt, "rsqrt": F.rsqrt, "reciprocal": F.reciprocal,
        "relu": F.relu, "sigmoid": F.sigmoid, "tanh": F.tanh, "clamp": F.clamp, "clip": F.clamp,
        "maximum": F.maximum, "minimum": F.minimum, "addcmul": _addcmul, "addcdiv": _addcdiv,
        "lerp": F.lerp, **{name: getattr(F, name) for name in MATH},
        "isinf": F.isinf, "isfinite": F.isfinite,
        # products, scans, sorting, rearranging
        "prod": F.prod, "logsumexp": F.logsumexp, "cumsum": F.cumsum, "cumprod": F.cumprod,
        "sort": A.sort, "argsort": A.argsort, "topk": A.topk, "kthvalue": A.kthvalue,
        "tril": A.tril, "triu": A.triu, "flip": A.flip, "roll": A.roll, "repeat": A.repeat,
        "tile": A.tile, "masked_fill": A.masked_fill, "split": A.split, "chunk": A.chunk,
        "unbind": A.unbind, "multinomial": A.multinomial,
        # comparisons
        "eq": F.eq, "ne": F.ne, "lt": F.lt, "le": F.le, "gt": F.gt, "ge": F.ge,
        "logical_not": F.logical_not, "logical_and": F.logical_and, "logical_or": F.logical_or,
        "logical_xor": F.logical_xor, "bitwise_not": F.bitwise_not,
        "bitwise_and": F.bitwise_and, "bitwise_or": F.bitwise_or, "bitwise_xor": F.bitwise_xor,
        "isnan": F.isnan, "all": F.all, "any": F.any,
        "equal": F.equal, "allclose": F.allclose,
        # reductions
        "sum": F.sum, "mean": F.mean, "max": F.max, "min": F.min, "amax": F.amax,
        "amin": F.amin, "argmax": F.argmax, "argmin": F.argmin, "var": F.var, "std": F.std,
        "norm": F.norm,
        # linear algebra
        "matmul": F.matmul, "mm": F.mm, "bmm": F.bmm, "mv": F.mv, "dot": F.dot,
        "softmax": F.softmax, "log_softmax": F.log_softmax,
        # shapes
        "reshape": F.reshape, "view": F.view, "flatten": F.flatten, "unflatten": F.unflatten,
        "squeeze": F.squeeze, "unsqueeze": F.unsqueeze, "transpose": F.transpose,
        "swapaxes": F.transpose, "permute": F.permute, "t": F.t, "expand": F.expand,
        "gather": F.gather, "take_along_dim": F.take_along_dim, "clone": F.clone,
        "contiguous": _contiguous, "to": _to, "type": _type,
        "view_as": lambda self, other: F.view(self, other.shape),
        "reshape_as": lambda self, other: F.reshape(self, other.shape),
        "expand_as": lambda self, other: F.expand(self, other.shape),
        "type_as": lambda self, other: _to(self, other.dtype),
        "float": lambda self: _to(self, _dtype.float32),
        "double": lambda self: _to(self, _dtype.float64),
        "long": lambda self: _to(self, _dtype.int64),
        "int": lambda self: _to(self, _dtype.int32),
        "bool": lambda self: _to(self, _dtype.bool_),
        "half": lambda self: _to(self, _dtype.float16),
        "new_zeros": _new(zeros), "new_ones": _new(ones), "new_empty": _new(empty),
        "new_tensor": _new_tensor, "new_full": _new_full,
        # random fills (in place)
        "uniform_": _uniform_, "normal_": _normal_, "bernoulli_": _bernoulli_,
        # operators
        # 1 + x is x + 1 and 2 / x is reciprocal(x) * 2, as in PyTorch (same graph, same bits)
        "__add__": F.add, "__radd__": F.add, "__sub__": F.sub, "__rsub__": _swap(F.sub),
        "__mul__": F.mul, "__rmul__": F.mul, "__truediv__": F.div,
        "__rtruediv__": lambda self, other: F.mul(F.reciprocal(self), other),
        "__pow__": F.pow, "__rpow__": _swap(F.pow),
        "__matmul__": F.matmul, "__rmatmul__": _swap(F.matmul), "__neg__": F.neg,
        "__abs__": F.abs, "__invert__": F.bitwise_not, "__and__": F.bitwise_and,
        "__rand__": F.bitwise_and, "__or__": F.bitwise_or, "__ror__": F.bitwise_or,
        "__xor__": F.bitwise_xor, "__rxor__": F.bitwise_xor, "__eq__": F.eq, "__ne__": F.ne,
        "__lt__": F.lt, "__le__": F.le, "__gt__": F.gt, "__ge__": F.ge,
        "__getitem__": F.index, "__setitem__": _setitem,
    }
    inplace = {
        "add_": F.add, "sub_": F.sub, "mul_": F.mul, "div_": F.div, "pow_": F.pow,
        "neg_": F.neg, "exp_": F.exp, "log_": F.log, "sqrt_": F.sqrt, "abs_": F.abs,
        "relu_": F.relu, "sigmoid_": F.sigmoid, "tanh_": F.tanh, "clamp_": F.clamp,
        "clip_": F.clamp, "addcmul_": _addcmul, "addcdiv_": _addcdiv, "lerp_": F.lerp,
        "masked_fill_": A.masked_fill, "tril_": A.tril, "triu_": A.triu, "cumsum_": F.cumsum,
        **{f"{name}_": getattr(F, name) for name in MATH}, "square_": F.square,
        "reciprocal_": F.reciprocal, "rsqrt_": F.rsqrt, "log1p_": F.log1p,
        "__iadd__": F.add, "__isub__": F.sub, "__imul__": F.mul, "__itruediv__": F.div,
        "__iand__": F.bitwise_and, "__ior__": F.bitwise_or, "__ixor__": F.bitwise_xor,
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
    for name, fn in inplace.items():
        setattr(Tensor, name, _inplace(fn))
    properties = {"T": lambda self: F.permute(self, tuple(range(self.ndim))[::-1]),
                  "mT": lambda self: F.transpose(self, -2, -1)}
    for name, fn in properties.items():
        setattr(Tensor, name, property(fn))
    return {**methods, **inplace, **properties}


# Each attached name and the function behind it (for an in-place method, its out-of-place form);
# runtime/_tensor_declarations.py declares the same names for a type checker.
ATTACHED = _attach()
