"""The packed GEMM called from Python on numpy arrays: JIT-compiled once per process (loaded
from the object cache when an earlier process compiled it), with ctypes prototypes made from the
native signatures that `compiler/lowering/gemm.py` declares. For tests and benchmarks only; the
compiler calls the GEMM from native code.

    >>> from gemm_harness import compiled_gemm
    >>> out = compiled_gemm("float32")(a, b)    # a @ b by the native kernel
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from llvmlite import ir

from compiler.lowering.gemm import (
    GEMM_TYPE,
    PART_TYPE,
    WORKSPACE_TYPE,
    GemmConfig,
    emit_gemm,
    gemm_config,
)
from compiler.lowering.target import JitLibrary, jit_compile


def _ctypes_signature(function_type: ir.FunctionType) -> type:
    """The ctypes prototype of a native function of this module's signatures."""
    def ctype(kind: ir.Type) -> Any:
        if isinstance(kind, ir.PointerType):
            return ctypes.c_void_p
        return {32: ctypes.c_int32, 64: ctypes.c_int64}[kind.width]

    restype = None if isinstance(function_type.return_type, ir.VoidType) else \
        ctype(function_type.return_type)
    return ctypes.CFUNCTYPE(restype, *[ctype(kind) for kind in function_type.args])


GEMM_PROTOTYPE = _ctypes_signature(GEMM_TYPE)  # of symgrad_gemm_<tag> and every entry like it
_PART_SIGNATURE = _ctypes_signature(PART_TYPE)
_WORKSPACE_SIGNATURE = _ctypes_signature(WORKSPACE_TYPE)


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _element_strides(array: np.ndarray, role: str) -> tuple[int, int]:
    itemsize = array.itemsize
    if any(stride % itemsize for stride in array.strides):
        raise ValueError(
            f"gemm: {role} has strides {array.strides} that are not a whole number "
            f"of {itemsize}-byte elements; pass a copy"
        )
    return array.strides[0] // itemsize, array.strides[1] // itemsize


class BoundGemm:
    """One product with every argument (pointers, strides, workspace) computed in advance."""

    __slots__ = ("_function", "_arguments", "_arrays")

    def __init__(self, function: Callable[..., None], arguments: tuple, arrays: tuple) -> None:
        self._function = function
        self._arguments = arguments
        self._arrays = arrays  # keeps the buffers behind the pointers alive

    def __call__(self) -> None:
        self._function(*self._arguments)


class CompiledGemm:
    """The GEMM for one dtype, JIT-compiled for the host, callable on numpy arrays."""

    def __init__(self, config: GemmConfig, library: JitLibrary) -> None:
        self.config = config
        self.library = library
        self.dtype = np.dtype(config.dtype)
        self.product = GEMM_PROTOTYPE(library[config.symbol()])
        self.part = _PART_SIGNATURE(library[config.symbol("_part")])
        self._workspace = _WORKSPACE_SIGNATURE(library[config.symbol("_workspace")])

    def workspace_elements(self, m: int, n: int, k: int) -> int:
        """Workspace the native kernel needs for an m x n result of depth k, in elements."""
        return int(self._workspace(m, n, k))

    def bind(
        self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, accumulate: bool = False
    ) -> tuple[BoundGemm, np.ndarray]:
        """Check the operands once and return (a callable computing out (+)= a @ b, out)."""
        for role, operand in (("a", a), ("b", b)):
            if not isinstance(operand, np.ndarray) or operand.ndim != 2:
                raise ValueError(
                    f"gemm: {role} must be a 2-d numpy array, got "
                    f"{getattr(operand, 'shape', type(operand).__name__)}"
                )
            if operand.dtype != self.dtype:
                raise TypeError(f"gemm: {role} is {operand.dtype}, this kernel is {self.dtype}")
        (m, k), (k_b, n) = a.shape, b.shape
        if k != k_b:
            raise ValueError(f"gemm: cannot multiply {a.shape} by {b.shape}: inner sizes differ")
        if out is None:
            if accumulate:
                raise ValueError("gemm: accumulate=True needs `out` to add to")
            out = np.empty((m, n), self.dtype)
        elif out.shape != (m, n) or out.dtype != self.dtype:
            raise ValueError(
                f"gemm: out must be {self.dtype} of shape {(m, n)}, got {out.dtype} "
                f"of shape {out.shape}"
            )
        if m > 0 and n > 1 and out.strides[1] != out.itemsize:
            raise ValueError("gemm: out's rows must be contiguous (out.strides[1] == itemsize)")
        if not out.flags.writeable:
            raise ValueError("gemm: out is read-only")
        if np.may_share_memory(out, a) or np.may_share_memory(out, b):
            raise ValueError("gemm: out overlaps an operand; pass a separate output array")
        a_rs, a_cs = _element_strides(a, "a")
        b_rs, b_cs = _element_strides(b, "b")
        ldc = _element_strides(out, "out")[0]
        workspace = np.empty(self.workspace_elements(m, n, k), self.dtype)
        arguments = (
            m,
            n,
            k,
            _address(a),
            a_rs,
            a_cs,
            _address(b),
            b_rs,
            b_cs,
            _address(out),
            ldc,
            int(accumulate),
            _address(workspace),
        )
        return BoundGemm(self.product, arguments, (a, b, out, workspace)), out

    def __call__(
        self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, accumulate: bool = False
    ) -> np.ndarray:
        run, out = self.bind(a, b, out, accumulate)
        run()
        return out


_compile_lock = threading.Lock()


@functools.cache
def _compiled(config: GemmConfig) -> CompiledGemm:
    module = ir.Module(name=config.symbol())
    emit_gemm(module, config)
    symbols = [config.symbol(), config.symbol("_part"), config.symbol("_workspace")]
    return CompiledGemm(config, jit_compile(module, symbols))


def compiled_gemm(
    dtype: str | np.dtype | type = "float32", config: GemmConfig | None = None
) -> CompiledGemm:
    """The GEMM for `dtype` (or exactly `config`), compiled once per process and loaded from
    the object cache when an earlier process compiled it."""
    with _compile_lock:
        return _compiled(config or gemm_config(dtype))


def gemm(
    a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, accumulate: bool = False
) -> np.ndarray:
    """out = a @ b (or out += a @ b) by the native kernel, for 2-d float32/float64 arrays with
    any strides; `out` must have contiguous rows."""
    return compiled_gemm(a.dtype)(a, b, out, accumulate)
