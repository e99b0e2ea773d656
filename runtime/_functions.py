"""The PyTorch-named functions (`runtime.exp`, `runtime.sum`, `runtime.max`, ...), with PyTorch's
signatures, over the primitive ops in `runtime/ops`. Composite functions (std, var, norm, flatten,
squeeze, stack, ...) are written here from primitives, so the compiler traces them unchanged.
Tensor methods and operators (`runtime/_tensor_methods.py`) call these same functions.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from runtime import _dtype, return_types
from runtime._tensor import Tensor
from runtime.ops import composite, indexing, reduction, scan
from runtime.ops import elementwise as ew
from runtime.ops import matmul as _matmul
from runtime.ops import shape as shape_ops
from runtime.ops import softmax as sm
from runtime.ops.elementwise import wrap_operands


def _binary(op: ew.Elementwise, a: Any, b: Any) -> Tensor:
    return op(a, b)  # the op wraps Python numbers


# ----- arithmetic --------------------------------------------------------------------------------

def add(input: Any, other: Any, *, alpha: Any = 1, out: Tensor | None = None) -> Tensor:
    return _into(out, _binary(ew.add, input, _scaled(other, alpha)), "add")


def sub(input: Any, other: Any, *, alpha: Any = 1, out: Tensor | None = None) -> Tensor:
    return _into(out, _binary(ew.sub, input, _scaled(other, alpha)), "sub")


def _scaled(other: Any, alpha: Any) -> Any:
    """`alpha * other` of add and sub (a Python product when other is a number)."""
    if alpha == 1:
        return other
    return mul(other, alpha) if isinstance(other, Tensor) else other * alpha


def rsub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    return sub(other, input, alpha=alpha)


def mul(input: Any, other: Any, *, out: Tensor | None = None) -> Tensor:
    return _into(out, _binary(ew.mul, input, other), "mul")


def div(input: Any, other: Any, *, rounding_mode: str | None = None,
        out: Tensor | None = None) -> Tensor:
    if rounding_mode is None:
        return _into(out, _binary(ew.div, input, other), "div")
    if rounding_mode not in ("trunc", "floor"):
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' "
                           f"but found '{rounding_mode}'")
    quotient = _binary(ew.div, input, other)
    rounded = (ew.trunc if rounding_mode == "trunc" else ew.floor)(quotient)
    operands = wrap_operands([input, other])
    integral = ew.add.result_dtype(operands)
    if not integral.is_floating_point:
        rounded = shape_ops.to_dtype(rounded, integral)
    return _into(out, rounded, "div")


def true_divide(input: Any, other: Any) -> Tensor:
    return div(input, other)


def neg(input: Tensor, *, out: Tensor | None = None) -> Tensor:
    return _into(out, ew.neg(input), "neg")


def pow(input: Any, exponent: Any, *, out: Tensor | None = None) -> Tensor:  # noqa: A001
    return _into(out, _binary(ew.pow, input, exponent), "pow")


def square(input: Tensor) -> Tensor:
    return pow(input, 2)


def abs(input: Tensor, *, out: Tensor | None = None) -> Tensor:  # noqa: A001
    return _into(out, ew.abs(input), "abs")


def maximum(input: Tensor, other: Tensor, *, out: Tensor | None = None) -> Tensor:
    return _into(out, _binary(ew.maximum, input, other), "maximum")


def minimum(input: Tensor, other: Tensor, *, out: Tensor | None = None) -> Tensor:
    return _into(out, _binary(ew.minimum, input, other), "minimum")


def where(condition: Tensor, input: Any, other: Any) -> Tensor:
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        input = ew.wrapped_number(input)  # where(mask, 1.0, 0.0): the numbers decide the dtype
    x, y = wrap_operands([input, other])
    return ew.where(condition, x, y)


def exp(input: Tensor, *, out: Tensor | None = None) -> Tensor:
    return _into(out, ew.exp(input), "exp")


def log(input: Tensor, *, out: Tensor | None = None) -> Tensor:
    return _into(out, ew.log(input), "log")


def log1p(input: Tensor, *, out: Tensor | None = None) -> Tensor:
    return _into(out, ew.log1p(input), "log1p")


def sqrt(input: Tensor, *, out: Tensor | None = None) -> Tensor:
    return _into(out, ew.sqrt(input), "sqrt")


def rsqrt(input: Tensor, *, out: Tensor | None = None) -> Tensor:
    return _into(out, ew.rsqrt(input), "rsqrt")


def reciprocal(input: Tensor, *, out: Tensor | None = None) -> Tensor:
    return _into(out, ew.reciprocal(input), "reciprocal")


def relu(input: Tensor) -> Tensor:
    return ew.relu(input)


def sigmoid(input: Tensor, *, out: Tensor | None = None) -> Tensor:
    return _into(out, ew.sigmoid(input), "sigmoid")


def tanh(input: Tensor, *, out: Tensor | None = None) -> Tensor:
    return _into(out, ew.tanh(input), "tanh")


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if max is None:
        return ew.clamp_min(input, min)
    if min is None:
        return ew.clamp_max(input, max)
    return ew.clamp(input, min, max)


clip = clamp



# ----- math functions ----------------------------------------------------------------------------

def _unary(op: ew.Elementwise) -> Any:
    def function(input: Tensor, *, out: Tensor | None = None) -> Tensor:
        return _into(out, op(input), op.name)

    function.__name__ = function.__qualname__ = op.name
    function.__doc__ = f"`{op.name}` of each element (PyTorch's torch.{op.name})."
    return function


sin, cos, tan, asin, acos, atan = (_unary(op) for op in (ew.sin, ew.cos, ew.tan, ew.asin,
                                                           ew.acos, ew.atan))
sinh, cosh, asinh, acosh, atanh = (_unary(op) for op in (ew.sinh, ew.cosh, ew.asinh, ew.acosh,
                                                         ew.atanh))
erf, erfc, exp2, expm1, log2, log10 = (_unary(op) for op in (ew.erf, ew.erfc, ew.exp2, ew.expm1,
                                                              ew.log2, ew.log10))
floor, ceil, trunc, frac, sign = (_unary(op) for op in (ew.floor, ew.ceil, ew.trunc, ew.frac,
                                                        ew.sign))
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh
fix = trunc


def round(input: Tensor, *, decimals: int = 0, out: Tensor | None = None) -> Tensor:  # noqa: A001
    """Halves round to even, as PyTorch's; `decimals` scales by 10**decimals around it."""
    if decimals == 0:
        return _into(out, ew.round(input), "round")
    scale = 10.0 ** decimals
    return _into(out, div(ew.round(mul(input, scale)), scale), "round")


def atan2(input: Tensor, other: Tensor, *, out: Tensor | None = None) -> Tensor:
    return _into(out, _binary(ew.atan2, input, other), "atan2")


arctan2 = atan2


def lerp(input: Tensor, end: Tensor, weight: Any, *, out: Tensor | None = None) -> Tensor:
    """input + weight * (end - input); weight a number or a tensor."""
    return _into(out, ew.lerp(input, end, weight), "lerp")


def isinf(input: Tensor) -> Tensor:
    return eq(abs(input), float("inf")) if input.dtype.is_floating_point else ne(input, input)


def isfinite(input: Tensor) -> Tensor:
    if not input.dtype.is_floating_point:
        return eq(input, input)
    return logical_and(eq(input, input), ne(abs(input), float("inf")))


def _into(out: Tensor | None, result: Tensor, name: str = "") -> Tensor:
    """PyTorch's `out=`: the result written into `out` (resized to it, with PyTorch's warning if
    `out` was not empty), and `out` returned; refused, as in PyTorch, when grad is recorded."""
    if out is None:
        return result
    from runtime._grad_mode import is_grad_enabled

    if is_grad_enabled() and (result.requires_grad or out.requires_grad):
        raise RuntimeError(f"{name or 'the function'}(): functions with out=... arguments don't "
                           "support automatic differentiation, but one of the arguments requires "
                           "grad.")
    if out.shape != result.shape:
        if out.numel() != 0:
            import warnings

            warnings.warn(f"An output with one or more elements was resized since it had shape "
                          f"{list(out.shape)}, which does not match the required output shape "
                          f"{list(result.shape)}. This behavior is deprecated (PyTorch's); "
                          "resize it to zero elements first.", UserWarning, stacklevel=3)
        import numpy as np

        out._data = np.empty(result._data.shape, out._data.dtype)
    if result.dtype.is_floating_point and not out.dtype.is_floating_point:
        raise RuntimeError(f"result type {result.dtype.scalar_name} can't be cast to the desired "
                           f"output type {out.dtype.scalar_name}")
    out._data[...] = result._data
    out._version.bump()
    return out

# ----- comparisons -------------------------------------------------------------------------------

def eq(input: Any, other: Any) -> Tensor:
    return _binary(ew.eq, input, other)


def ne(input: Any, other: Any) -> Tensor:
    return _binary(ew.ne, input, other)


def lt(input: Any, other: Any) -> Tensor:
    return _binary(ew.lt, input, other)


def le(input: Any, other: Any) -> Tensor:
    return _binary(ew.le, input, other)


def gt(input: Any, other: Any) -> Tensor:
    return _binary(ew.gt, input, other)


def ge(input: Any, other: Any) -> Tensor:
    return _binary(ew.ge, input, other)


def logical_not(input: Tensor) -> Tensor:
    return ew.logical_not(input)


def logical_and(input: Tensor, other: Any) -> Tensor:
    return _binary(ew.logical_and, input, other)


def logical_or(input: Tensor, other: Any) -> Tensor:
    return _binary(ew.logical_or, input, other)


def logical_xor(input: Tensor, other: Any) -> Tensor:
    return _binary(ew.logical_xor, input, other)


def bitwise_not(input: Tensor) -> Tensor:
    """`~x`: logical not of a bool tensor, two's complement not (-x - 1) of an integer one."""
    if input.dtype == _dtype.bool_:
        return ew.logical_not(input)
    if input.dtype.is_floating_point:
        raise RuntimeError(f'"bitwise_not_cpu" not implemented for \'{input.dtype.scalar_name}\'')
    return sub(neg(input), 1)


def _bool_only(name: str, logical: Any) -> Any:
    def bitwise(input: Tensor, other: Any) -> Tensor:
        operands = wrap_operands([input, other])
        if builtins.any(t.dtype != _dtype.bool_ for t in operands):
            raise NotImplementedError(f"{name} is supported for bool tensors only (masks); "
                                      f"got {operands[0].dtype} and {operands[1].dtype}")
        return logical(*operands)

    bitwise.__name__ = name
    bitwise.__doc__ = f"`{name}` of bool tensors (masks): the same as logical_{name[8:]}."
    return bitwise


bitwise_and = _bool_only("bitwise_and", ew.logical_and)
bitwise_or = _bool_only("bitwise_or", ew.logical_or)
bitwise_xor = _bool_only("bitwise_xor", ew.logical_xor)


def isnan(input: Tensor) -> Tensor:
    return ne(input, input)


def all(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    zeros = shape_ops.to_dtype(eq(input, 0), _dtype.int64)
    return eq(reduction.sum(zeros, dim, keepdim), 0)


def any(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    nonzeros = shape_ops.to_dtype(ne(input, 0), _dtype.int64)
    return gt(reduction.sum(nonzeros, dim, keepdim), 0)


def equal(input: Tensor, other: Tensor) -> bool:
    return input.shape == other.shape and bool(all(eq(input, other)))


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    import numpy as np

    return bool(np.allclose(input._data, other._data, rtol=rtol, atol=atol, equal_nan=equal_nan))


# ----- reductions --------------------------------------------------------------------------------

def sum(input: Tensor, dim: Any = None, keepdim: bool = False, *,  # noqa: A001
        dtype: Any = None) -> Tensor:
    return reduction.sum(input, dim, keepdim, dtype=dtype)


def mean(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    return reduction.mean(input, dim, keepdim, dtype=dtype)


def max(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    """The largest element; with `dim`, (values, indices) along it; with a tensor, maximum."""
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    if dim is None:
        return reduction.amax(input)
    return return_types.max(_extremum_along(input, dim, keepdim, largest=True))


def min(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    if dim is None:
        return reduction.amin(input)
    return return_types.min(_extremum_along(input, dim, keepdim, largest=False))


def _extremum_along(input: Tensor, dim: int, keepdim: bool, largest: bool) -> tuple[Any, Any]:
    """(values, indices); eagerly the values are one MaxBackward0 / MinBackward0 node, as in
    PyTorch, while a trace records the argmax and gather they are made of once."""
    if input._is_symbolic or input.ndim == 0:
        return reduction.extremum_along(input, dim, keepdim, largest)
    indices = (reduction.argmax if largest else reduction.argmin)(input, dim, keepdim)
    return composite.extremum_values(input, dim, keepdim, largest), indices


def amax(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    return reduction.amax(input, dim, keepdim)


def amin(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    return reduction.amin(input, dim, keepdim)


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return reduction.argmax(input, dim, keepdim)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return reduction.argmin(input, dim, keepdim)


def var(input: Tensor, dim: Any = None, *, correction: int = 1, keepdim: bool = False,
        unbiased: bool | None = None) -> Tensor:
    if unbiased is not None:
        correction = int(unbiased)
    dims = reduction.normalize_dims(dim, input.ndim)
    count = 1
    for d in dims:
        count *= input.shape[d]
    centered = sub(input, reduction.mean(input, dims, keepdim=True))
    squares = reduction.sum(mul(centered, centered), dims, keepdim)
    return div(squares, builtins.max(count - correction, 0))


def std(input: Tensor, dim: Any = None, *, correction: int = 1, keepdim: bool = False,
        unbiased: bool | None = None) -> Tensor:
    return sqrt(var(input, dim, correction=correction, keepdim=keepdim, unbiased=unbiased))


def norm(input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Tensor:
    if p not in ("fro", 2, 2.0):
        raise NotImplementedError(f"norm(p={p!r}): only the 2-norm is supported")
    return sqrt(reduction.sum(mul(input, input), dim, keepdim))


# ----- linear algebra ----------------------------------------------------------------------------

def matmul(input: Tensor, other: Tensor, *, out: Tensor | None = None) -> Tensor:
    return _into(out, _matmul.matmul(input, other), "matmul")


def mm(input: Tensor, mat2: Tensor, *, out: Tensor | None = None) -> Tensor:
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expected 2D tensors, got {input.ndim}D and {mat2.ndim}D")
    return _into(out, _matmul.matmul(input, mat2), "mm")


def bmm(input: Tensor, mat2: Tensor, *, out: Tensor | None = None) -> Tensor:
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError(f"bmm: expected 3D tensors, got {input.ndim}D and {mat2.ndim}D")
    return _into(out, _matmul.matmul(input, mat2), "bmm")


def mv(input: Tensor, vec: Tensor) -> Tensor:
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"mv: expected a matrix and a vector, got {input.ndim}D and {vec.ndim}D")
    return _matmul.matmul(input, vec)


def dot(input: Tensor, other: Tensor) -> Tensor:
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    return _matmul.matmul(input, other)


def softmax(input: Tensor, dim: int | None = None, dtype: Any = None) -> Tensor:
    return sm.softmax(input, dim, dtype)


def log_softmax(input: Tensor, dim: int | None = None, dtype: Any = None) -> Tensor:
    return sm.log_softmax(input, dim, dtype)


# ----- shapes ------------------------------------------------------------------------------------

def _sizes(shape: Sequence[Any]) -> tuple[Any, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(input: Tensor, *shape: Any) -> Tensor:
    return shape_ops.reshape(input, _sizes(shape))


def view(input: Tensor, *shape: Any) -> Tensor:
    """Like reshape, but never copies: an error when the memory layout does not allow it."""
    if len(shape) == 1 and isinstance(shape[0], _dtype.dtype):
        raise NotImplementedError("view(dtype) reinterpretation is not supported")
    new_shape = shape_ops.infer_size(_sizes(shape), input.shape)
    if not input._is_symbolic and not _viewable(input, new_shape):
        raise RuntimeError("view size is not compatible with input tensor's size and stride (at "
                           "least one dimension spans across two contiguous subspaces). Use "
                           ".reshape(...) instead.")
    return shape_ops.reshape(input, new_shape)


def _viewable(input: Tensor, shape: tuple[int, ...]) -> bool:
    import numpy as np

    try:
        np.reshape(input._data, shape, copy=False)
    except ValueError:
        return False
    return True


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if input.ndim == 0:
        return shape_ops.reshape(input, (1,))
    start = shape_ops.wrap_dim(start_dim, input.ndim)
    end = shape_ops.wrap_dim(end_dim, input.ndim)
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = tuple(input.shape)
    merged: Any = 1
    for s in shape[start:end + 1]:
        merged = merged * s
    return shape_ops.reshape(input, shape[:start] + (merged,) + shape[end + 1:])


def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    dim = shape_ops.wrap_dim(dim, input.ndim)
    shape = tuple(input.shape)
    return shape_ops.reshape(input, shape[:dim] + tuple(sizes) + shape[dim + 1:])


def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    shape = tuple(input.shape)
    if dim is None:
        dims = {i for i, s in enumerate(shape) if s == 1}
    else:
        given = (dim,) if isinstance(dim, int) else dim
        dims = {shape_ops.wrap_dim(d, input.ndim) for d in given}
        dims = {d for d in dims if input.ndim and shape[d] == 1}
    return shape_ops.reshape(input, tuple(s for i, s in enumerate(shape) if i not in dims))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    dim = shape_ops.wrap_dim(dim, input.ndim + 1)
    shape = tuple(input.shape)
    return shape_ops.reshape(input, shape[:dim] + (1,) + shape[dim:])


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    return shape_ops.transpose(input, dim0, dim1)


swapaxes = transpose


def permute(input: Tensor, *dims: Any) -> Tensor:
    return shape_ops.permute(input, _sizes(dims))


def t(input: Tensor) -> Tensor:
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return composite.t(input) if input.ndim == 2 else input


def expand(input: Tensor, *sizes: Any) -> Tensor:
    return shape_ops.expand(input, _sizes(sizes))


def broadcast_to(input: Tensor, shape: Sequence[int]) -> Tensor:
    return shape_ops.expand(input, tuple(shape))


def cat(tensors: Sequence[Tensor], dim: int = 0, *, out: Tensor | None = None) -> Tensor:
    return _into(out, shape_ops.cat(tensors, dim), "cat")


concat = cat


def stack(tensors: Sequence[Tensor], dim: int = 0, *, out: Tensor | None = None) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    for t_ in tensors[1:]:
        if t_.shape != tensors[0].shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(tensors[0].shape)} at entry 0 and {list(t_.shape)} at "
                               "another entry")
    return _into(out, shape_ops.cat([unsqueeze(t_, dim) for t_ in tensors], dim), "stack")


def gather(input: Tensor, dim: int, index: Tensor) -> Tensor:
    return reduction.gather(input, dim, index)


def take_along_dim(input: Tensor, indices: Tensor, dim: int) -> Tensor:
    return reduction.gather(input, dim, indices)


def clone(input: Tensor) -> Tensor:
    return shape_ops.clone(input)


def index(input: Tensor, key: Any) -> Tensor:
    return indexing.index(input, key)


def numel(input: Tensor) -> int:
    return input.numel()


def result_type(tensor1: Any, tensor2: Any) -> _dtype.dtype:
    """The dtype an arithmetic op on these operands (tensors or Python numbers) gives."""
    if not isinstance(tensor1, Tensor) and not isinstance(tensor2, Tensor):
        return _dtype.result_dtype([], [], [tensor1, tensor2])
    return ew.add.result_dtype(wrap_operands([tensor1, tensor2]))


def promote_types(type1: _dtype.dtype, type2: _dtype.dtype) -> _dtype.dtype:
    """The smallest dtype both promote to (torch.promote_types)."""
    return _dtype.promote_types(type1, type2)


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def detach(input: Tensor) -> Tensor:
    return input.detach()


# ----- products and scans -----------------------------------------------------------------------

def prod(input: Tensor, dim: int | None = None, keepdim: bool = False, *,
         dtype: Any = None) -> Tensor:
    return reduction.prod(input, dim, keepdim, dtype=dtype)


def logsumexp(input: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    return reduction.logsumexp(input, dim, keepdim)


def cumsum(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    return scan.cumsum(input, dim, dtype=dtype)


def cumprod(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    return scan.cumprod(input, dim, dtype=dtype)


def einsum(equation: str, *operands: Any) -> Tensor:
    from runtime._einsum import einsum as contract

    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return contract(equation, operands)
