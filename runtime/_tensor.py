"""The Tensor: an n-dimensional array (a numpy array) with autograd history.

A tensor owns its data (`_data`, a numpy array, possibly a view shared with other tensors), its
autograd state (`requires_grad`, `grad`, `grad_fn`, whether it is a leaf) and a version counter
shared by all views of the same memory, which in-place operations bump so that backward can refuse
values changed after they were saved. Math lives in `runtime/ops`; the operator and method spellings
(`+`, `.sum()`, `.view()` ...) are attached in `runtime/_tensor_methods.py`.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from runtime import _dtype
from runtime._grad_mode import is_grad_enabled
from runtime.autograd._node import AccumulateGrad, Node

if TYPE_CHECKING:  # the methods attached at import time, declared (runtime/_tensor_methods.py)
    from runtime._tensor_declarations import TensorMethods
else:
    TensorMethods = object

TensorT = TypeVar("TensorT", bound="Tensor")


class _Layers:
    """What Tensor's own methods need from the modules above it, which import this one (so it
    cannot import them): `runtime/_tensor_methods.py` sets them when it gives Tensor its other
    methods (importing `runtime` does), as the compiler installs its tracer with
    `runtime.ops._op.set_symbolic_handler`."""

    zeros: Callable[..., Tensor]  # runtime._creation: Tensor(2, 3)
    tensor: Callable[..., Tensor]  # runtime._creation: Tensor(data)
    backward: Callable[..., None]  # runtime.autograd._engine
    apply: Callable[..., Tensor]  # runtime.ops._op: an in-place change of a view
    index_put: Callable[[Tensor, Any, Any], Tensor]  # runtime.ops.indexing: in-place updates
    expand: Callable[[Tensor, Sequence[Any]], Tensor]  # runtime.ops.shape: copy_


layers = _Layers()


class _VersionCounter:
    """How many in-place changes a piece of memory has seen; shared by a tensor and its views."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        self.value += 1


class Size(tuple):
    """A tensor's shape: a tuple of ints that prints as `runtime.Size([2, 3])`."""

    def __repr__(self) -> str:
        return f"runtime.Size({list(self)})"

    def numel(self) -> int:
        return int(np.prod(self, dtype=np.int64))


class Tensor(TensorMethods):
    """A multi-dimensional array that can record the operations applied to it."""

    _is_symbolic = False  # True for the compiler's traced tensors
    _wrapped_number = False  # True for a Python number wrapped to take part in an op
    __array_priority__ = 1000  # numpy scalars on the left defer to our operators

    # Set by _from_array (a traced tensor sets the autograd ones and has no data)
    _data: np.ndarray
    _requires_grad: bool
    _grad_fn: Node | None
    _output_nr: int
    _grad: Tensor | None
    _retains_grad: bool
    _version: _VersionCounter
    _accumulator: weakref.ref | None
    _view_of: tuple[Tensor, Any, dict[str, Any]] | None  # (base, op, attrs)
    _leaf_hooks: dict[int, Any]  # register_hook on a leaf: {handle id: hook}

    def __new__(cls, *args: Any, device: Any = None) -> Tensor:
        """`Tensor(data)`, `Tensor(2, 3)`, `Tensor(size)`, `Tensor()`, `Tensor(other)`: PyTorch's
        legacy constructor, a tensor of the default float dtype (sizes give zeros here, where
        PyTorch leaves the memory uninitialized); `Tensor(other)` shares other's memory."""
        if cls is not Tensor:
            raise TypeError(f"{cls.__name__}(...) must be created by its own constructor")
        if len(args) == 1 and isinstance(args[0], Tensor):
            return args[0].detach()
        if not args:
            return layers.zeros(0, device=device)
        if all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args):
            return layers.zeros(*args, device=device)
        if len(args) == 1 and isinstance(args[0], Size):
            return layers.zeros(tuple(args[0]), device=device)
        if len(args) == 1:
            return layers.tensor(args[0], dtype=_dtype.get_default_dtype(), device=device)
        raise TypeError(f"Tensor() received an invalid combination of arguments: {args!r}; "
                        "expected data, sizes, or a tensor")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """All the work is done by __new__."""

    @classmethod
    def _from_array(cls: type[TensorT], data: np.ndarray, requires_grad: bool = False) -> TensorT:
        """Wrap a numpy array without copying it (internal constructor)."""
        self = object.__new__(cls)
        self._data = data
        self._requires_grad = requires_grad
        self._grad_fn = None
        self._output_nr = 0
        self._grad = None
        self._retains_grad = False
        self._version = _VersionCounter()
        self._accumulator = None
        self._view_of = None
        self._leaf_hooks = {}
        return self

    # ----- autograd state -------------------------------------------------------------------

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if self._grad_fn is not None and not value:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if value and not self.dtype.is_floating_point:
            raise RuntimeError("Only Tensors of floating point and complex dtype can require "
                               "gradients")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set requires_grad in place and return self."""
        self.requires_grad = requires_grad
        return self

    @property
    def grad_fn(self) -> Node | None:
        return self._grad_fn

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None

    @property
    def grad(self) -> Tensor | None:
        if self._grad_fn is not None and not self._retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its "
                ".grad attribute won't be populated during autograd.backward(). If you indeed want "
                "the .grad field to be populated for a non-leaf Tensor, use .retain_grad() on the "
                "non-leaf Tensor. If you access the non-leaf Tensor by mistake, make sure you "
                "access the leaf Tensor instead.",
                UserWarning,
                stacklevel=2,
            )
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got "
                                f"{type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError(f"assigned grad has data of a different size: expected "
                                   f"{list(self.shape)}, got {list(value.shape)}")
            if value.dtype != self.dtype:
                raise RuntimeError(f"assigned grad has data of a different type: expected "
                                   f"{self.dtype}, got {value.dtype}")
        self._grad = value

    def register_hook(self, hook: Any) -> Any:
        """Call `hook(grad)` with this tensor's gradient each time it is computed; a returned
        tensor replaces the gradient. Returns a handle whose remove() unregisters the hook."""
        from runtime.autograd._node import RemovableHandle

        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._grad_fn is None:
            hooks = self._leaf_hooks
        else:
            hooks = self._grad_fn._tensor_hooks.setdefault(self._output_nr, {})
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def retain_grad(self) -> None:
        """Fill `.grad` of this non-leaf tensor during backward."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._grad_fn is None or self._retains_grad:
            return
        self._retains_grad = True
        self._grad_fn._retained[self._output_nr] = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def _set_history(self, node: Node, output_nr: int) -> None:
        self._grad_fn = node
        self._output_nr = output_nr
        self._requires_grad = True

    def _gradient_edge(self) -> tuple[Node | None, int]:
        """Where a gradient for this tensor goes: its grad_fn, its AccumulateGrad, or nowhere."""
        if self._grad_fn is not None:
            return (self._grad_fn, self._output_nr)
        if not self._requires_grad:
            return (None, 0)
        accumulator = self._accumulator() if self._accumulator is not None else None
        if accumulator is None:
            accumulator = AccumulateGrad(self)
            self._accumulator = weakref.ref(accumulator)
        return (accumulator, 0)

    def backward(self, gradient: Tensor | None = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs: Sequence[Tensor] | None = None) -> None:
        """Accumulate the gradient of this tensor into the `.grad` of the leaves it depends on."""
        layers.backward([self], [gradient], retain_graph=retain_graph,
                        create_graph=create_graph, inputs=inputs)

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory and version counter)."""
        out = Tensor._from_array(self._data)
        out._version = self._version
        return out

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph in place, making it a leaf."""
        self._grad_fn = None
        self._output_nr = 0
        self._requires_grad = False
        return self

    @property
    def data(self) -> Tensor:
        return Tensor._from_array(self._data)

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value._data
        self._version = _VersionCounter()

    # ----- metadata ---------------------------------------------------------------------------

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None) -> Any:
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim)]

    @property
    def dtype(self) -> _dtype.dtype:
        return _dtype.from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> Any:
        from runtime._device import CPU

        return CPU

    is_cuda = False
    is_cpu = True

    def get_device(self) -> int:
        """The device index: -1 for the CPU, as PyTorch."""
        return -1

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def element_size(self) -> int:
        return self._data.itemsize

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def stride(self, dim: int | None = None) -> Any:
        strides = tuple(s // self._data.itemsize for s in self._data.strides)
        return strides if dim is None else strides[_wrap_dim(dim, self._data.ndim)]

    # ----- conversion to Python and numpy -------------------------------------------------------

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted "
                               "to Scalar")
        return self._data.reshape(()).item()

    def tolist(self) -> Any:
        return self._data.tolist()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The data as a numpy array sharing memory with this tensor."""
        if self._requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        return self._data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._data if dtype is None else self._data.astype(dtype)

    def cpu(self) -> Tensor:
        return self

    def cuda(self, device: Any = None, non_blocking: bool = False) -> Tensor:
        from runtime._device import check_device

        check_device("cuda")  # raises: this build has no CUDA
        return self

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._data.reshape(()))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0:
            return format(self.item(), spec)
        return format(repr(self), spec)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return self._repr(prefix="tensor(")

    def _repr(self, prefix: str) -> str:
        from runtime._tensor_str import format_tensor

        suffixes = []
        if self._grad_fn is not None:
            suffixes.append(f"grad_fn=<{self._grad_fn.name()}>")
        elif self._requires_grad:
            suffixes.append("requires_grad=True")
        d = self.dtype
        default = (d == _dtype.get_default_dtype() or d == _dtype.int64 or d == _dtype.bool_)
        return format_tensor(self._data, dtype_name=repr(d), is_default_dtype=default,
                             suffixes=suffixes, prefix=prefix)

    # ----- in-place updates -----------------------------------------------------------------------

    def _check_inplace(self) -> None:
        if is_grad_enabled() and self._requires_grad and self._grad_fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                               "operation.")

    def _inplace_update(self, result: Tensor) -> Tensor:
        """Make this tensor hold `result` (an out-of-place result of the same shape), in place.

        Used by every `op_()` method and by `x[key] = value`: the memory (and its views) is
        overwritten, the version is bumped, and when grad mode records, the tensor takes the
        history of its new value, and so does the tensor it is a view of (PyTorch's CopySlices).
        """
        self._check_inplace()
        if result.dtype.is_floating_point and not self.dtype.is_floating_point:
            raise RuntimeError(f"result type {result.dtype} can't be cast to the desired output "
                               f"type {self.dtype}")
        if result.shape != self.shape:
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast "
                               f"shape {list(result.shape)}")
        if not self._data.flags.writeable:
            raise RuntimeError("the tensor's memory is read-only (an expanded tensor, or a "
                               "read-only numpy array); clone() it before modifying it in place")
        recording = is_grad_enabled() and (self._requires_grad or result.requires_grad)
        if recording and result._grad_fn is None:
            # New values that owe nothing to the old ones: a node that passes them no gradient.
            result = layers.index_put(self, Ellipsis, result)
        if recording and self._view_of is not None:
            return self._update_view(result)
        if result._grad_fn is not None:
            result._grad_fn.protect_saved(self)
        np.copyto(self._data, result._data, casting="unsafe")
        self._version.bump()
        if result._grad_fn is not None:
            self._set_history(result._grad_fn, result._output_nr)
        return self

    def _update_view(self, result: Tensor) -> Tensor:
        """An in-place change of a view that records: the base takes the change into its
        history (its view op's `write_back`), and this view becomes a view of the new base."""
        assert self._view_of is not None, "_inplace_update calls this for a view only"
        base, op, attrs = self._view_of
        if base._requires_grad and base._grad_fn is None:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in an "
                               "in-place operation.")
        if result._grad_fn is not None:
            result._grad_fn.protect_saved(self)
        base._inplace_update(op.write_back(base, result, **attrs))
        view = layers.apply(op, [base], **attrs)
        assert view._grad_fn is not None, "a view of a base that records has a grad_fn"
        self._set_history(view._grad_fn, view._output_nr)
        return self

    def _snapshot(self) -> Tensor:
        """A copy of the current values with the same history (what a node keeps of a tensor
        that is about to change in place)."""
        copy = Tensor._from_array(self._data.copy(), self._requires_grad)
        copy._grad_fn, copy._output_nr = self._grad_fn, self._output_nr
        return copy

    def _fill_values(self, values: Any) -> Tensor:
        """Overwrite with constant `values` (broadcast), as zero_, fill_ and random fills do."""
        self._check_inplace()
        if is_grad_enabled() and self._requires_grad:
            constant = np.broadcast_to(np.asarray(values, dtype=self._data.dtype), self.shape)
            return self._inplace_update(Tensor._from_array(constant))
        if not self._data.flags.writeable:
            raise RuntimeError("the tensor's memory is read-only (an expanded tensor, or a "
                               "read-only numpy array); clone() it before modifying it in place")
        self._data[...] = values
        self._version.bump()
        return self

    def zero_(self) -> Tensor:
        return self._fill_values(0)

    def fill_(self, value: Any) -> Tensor:
        return self._fill_values(float(value) if isinstance(value, Tensor) else value)

    def copy_(self, src: Any) -> Tensor:
        src = src if isinstance(src, Tensor) else Tensor._from_array(np.asarray(src))
        expanded = layers.expand(src.to(self.dtype), self.shape)
        return self._inplace_update(expanded)

    def _random_(self, values: np.ndarray) -> Tensor:
        return self._fill_values(values)


def _wrap_dim(dim: int, ndim: int) -> int:
    """A dimension index in [0, ndim), accepting negative indices as PyTorch does."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim % n
