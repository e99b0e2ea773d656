"""Calling native functions that the compiler made: checks first, then one ctypes call.

A `NativeFunction` knows the dtype and shape of every argument (sizes are `a * N + b` in the
batch size N), so it checks each call before any native code runs: argument count, dtype, rank,
sizes, one batch size for all inputs, and memory. Bad input raises a Python error that names the
argument and what was expected; it never reaches native code. Non-contiguous inputs are copied
(as PyTorch would accept them); a wrong dtype is an error, as in PyTorch.

This module is the runtime's side of the compiler's calling convention (see
compiler/lowering/codegen.py): one int64 argument block [N, arena, workspace, buffers...],
kept per thread and rewritten in place. It never imports the compiler.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BLOCK_HEADER = 3
_ALIGN = 64
_CALL = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


@dataclass(frozen=True)
class BufferSpec:
    """One argument: its name, dtype, and each size as (per_example, fixed) -> a * N + b."""

    name: str
    dtype: np.dtype
    sizes: tuple[tuple[int, int], ...]

    def shape(self, n: int) -> tuple[int, ...]:
        return tuple(a * n + b for a, b in self.sizes)

    def describe(self) -> str:
        dims = [("N" if (a, b) == (1, 0) else f"{a}*N+{b}" if b else f"{a}*N") if a else str(b)
                for a, b in self.sizes]
        return f"({', '.join(dims)})"


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


class NativeFunction:
    """A native function of the compiler's calling convention, called with numpy arrays."""

    def __init__(self, name: str, address: int, inputs: Sequence[BufferSpec],
                 outputs: Sequence[BufferSpec], arena_bytes: tuple[int, int],
                 workspace_bytes: int, keepalive: Any = None) -> None:
        self.name = name
        self._function = _CALL(address)
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.arena_bytes = arena_bytes
        self.workspace_bytes = workspace_bytes
        self._keepalive = keepalive  # the JIT library: code lives as long as this object
        self._local = threading.local()
        self._batch_inputs = [i for i, spec in enumerate(self.inputs)
                              if any(a for a, _ in spec.sizes)]

    def _scratch(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This thread's argument block, arena and workspace, grown for batch size n."""
        local = self._local
        need = self.arena_bytes[0] * n + self.arena_bytes[1] + _ALIGN
        if getattr(local, "block", None) is None:
            local.block = np.zeros(BLOCK_HEADER + len(self.inputs) + len(self.outputs), np.int64)
            local.workspace = np.empty(self.workspace_bytes + _ALIGN, np.uint8)
            local.arena = np.empty(0, np.uint8)
        if local.arena.size < need:
            try:
                local.arena = np.empty(need, np.uint8)
            except MemoryError:
                raise MemoryError(f"{self.name}: batch size {n} needs {need / 2**30:.1f} GiB of "
                                  "intermediate memory; use a smaller batch") from None
        return local.block, local.arena, local.workspace

    def batch_size(self, arrays: Sequence[np.ndarray]) -> int:
        n = None
        for i in self._batch_inputs:
            spec, array = self.inputs[i], arrays[i]
            (a, b) = next((a, b) for a, b in spec.sizes if a)
            dim = next(d for d, (a_, _) in enumerate(spec.sizes) if a_)
            if array.ndim != len(spec.sizes):
                break  # reported by check()
            value, remainder = divmod(array.shape[dim] - b, a)
            if remainder or value < 0:
                raise ValueError(f"{self.name}: input '{spec.name}' expects shape "
                                 f"{spec.describe()}, got {tuple(array.shape)}")
            if n is None:
                n = value
            elif n != value:
                raise ValueError(f"{self.name}: inputs disagree on the batch size: "
                                 f"'{spec.name}' has {value}, an earlier input has {n}")
        return 0 if n is None else n

    def check(self, arrays: Sequence[Any]) -> tuple[list[np.ndarray], int]:
        """The arrays, contiguous, and the batch size; a clear error for anything wrong."""
        if len(arrays) != len(self.inputs):
            names = ", ".join(s.name for s in self.inputs)
            raise TypeError(f"{self.name} takes {len(self.inputs)} arguments ({names}), got "
                            f"{len(arrays)}")
        checked = []
        for spec, array in zip(self.inputs, arrays):
            if not isinstance(array, np.ndarray):
                raise TypeError(f"{self.name}: argument '{spec.name}' must be an array, got "
                                f"{type(array).__name__}")
            if array.dtype != spec.dtype:
                raise TypeError(f"{self.name}: argument '{spec.name}' has dtype {array.dtype}, "
                                f"expected {spec.dtype}")
            if array.ndim != len(spec.sizes):
                raise ValueError(f"{self.name}: argument '{spec.name}' expects "
                                 f"{len(spec.sizes)} dimensions {spec.describe()}, got shape "
                                 f"{tuple(array.shape)}")
            if not array.flags.c_contiguous:
                array = np.ascontiguousarray(array)
            checked.append(array)
        n = self.batch_size(checked)
        for spec, array in zip(self.inputs, checked):
            if array.shape != spec.shape(n):
                raise ValueError(f"{self.name}: argument '{spec.name}' expects shape "
                                 f"{spec.describe()} = {spec.shape(n)} for batch size {n}, got "
                                 f"{tuple(array.shape)}")
        return checked, n

    def __call__(self, *arrays: Any) -> list[np.ndarray]:
        return self.call(arrays)

    def call(self, arrays: Sequence[Any], inplace: dict[int, int] | None = None
             ) -> list[np.ndarray]:
        """Call with `arrays`; outputs are new arrays, except output i for i in `inplace`, which
        is written into input inplace[i] (that array must be contiguous and writeable)."""
        checked, n = self.check(arrays)
        inplace = inplace or {}
        outputs = []
        for i, spec in enumerate(self.outputs):
            if i in inplace:
                target = checked[inplace[i]]
                if target is not arrays[inplace[i]] or not target.flags.writeable or \
                        target.shape != spec.shape(n) or target.dtype != spec.dtype:
                    raise ValueError(f"{self.name}: '{self.inputs[inplace[i]].name}' is updated "
                                     "in place, so it must be a contiguous, writeable array of "
                                     f"shape {spec.shape(n)} and dtype {spec.dtype}")
                outputs.append(target)
            else:
                outputs.append(np.empty(spec.shape(n), spec.dtype))
        block, arena, workspace = self._scratch(n)
        block[0] = n
        block[1] = _aligned(_address(arena))
        block[2] = _aligned(_address(workspace))
        for i, array in enumerate(checked + outputs):
            block[BLOCK_HEADER + i] = _address(array)
        self._function(_address(block))
        return outputs


def _aligned(address: int) -> int:
    return -(-address // _ALIGN) * _ALIGN
