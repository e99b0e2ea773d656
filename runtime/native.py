"""Calling native functions that the compiler made: checks first, then one ctypes call.

A `NativeFunction` knows the dtype and shape of every argument (sizes are `a * N + b` in the
batch size N), so it checks each call before any native code runs: argument count, dtype, rank,
sizes, one batch size for all inputs, and memory (the bytes a call needs are added up before any
is allocated, so a batch too large fails with MemoryError at once). Bad input raises a Python
error that names the argument and what was expected; it never reaches native code. Non-contiguous
inputs are copied (as PyTorch would accept them); a wrong dtype is an error, as in PyTorch.

This module is the runtime's side of the compiler's calling convention (see
compiler/lowering/codegen.py): one int64 argument block [N, arena, workspace, buffers...],
kept per thread and rewritten in place. It never imports the compiler.
"""

from __future__ import annotations

import ctypes
import functools
import os
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
    """Where an array's data starts (~0.2 us through ctypes' buffer view, 1 us through
    __array_interface__, which read-only and empty arrays need)."""
    try:
        # numpy's stubs do not declare ndarray's buffer protocol
        return ctypes.addressof(ctypes.c_char.from_buffer(array))  # type: ignore[arg-type]
    except (TypeError, ValueError, BufferError):
        return array.__array_interface__["data"][0]


@dataclass
class _Prepared:
    """A thread's last call, so that the next one with the same arrays (a model's parameters,
    this thread's arena) checks only what changed: the argument block already holds their
    addresses. Holding the arrays keeps their memory (and so the addresses) alive: numpy
    refuses to resize an array that something else references."""

    arrays: list[np.ndarray]
    shapes: list[tuple[int, ...]]
    output_shapes: list[tuple[int, ...]]
    block_address: int
    inplace: dict[int, int]  # output -> the input it is written into
    targets: frozenset[int]  # those inputs, which must stay the same writeable arrays


class NativeFunction:
    """A native function of the compiler's calling convention, called with numpy arrays."""

    # Set by the compiler on a function built with profile=True: its per-node cycle counts
    cycle_counters: np.ndarray
    profiled_graph: Any

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
        need = self._arena_need(n)
        if getattr(local, "block", None) is None:
            local.block = np.zeros(BLOCK_HEADER + len(self.inputs) + len(self.outputs), np.int64)
            local.workspace = np.empty(self.workspace_bytes + _ALIGN, np.uint8)
            local.arena = np.empty(0, np.uint8)
        if local.arena.size < need:
            local.arena = np.empty(0, np.uint8)  # let the old one go before asking for more
            local.arena = np.empty(need, np.uint8)
        return local.block, local.arena, local.workspace

    def _arena_need(self, n: int) -> int:
        return self.arena_bytes[0] * n + self.arena_bytes[1] + _ALIGN

    def _bytes_needed(self, n: int, arrays: Sequence[np.ndarray], inplace: dict[int, int]) -> int:
        """What a call allocates: contiguous copies of strided inputs, new outputs, and the
        arena (beyond what this thread's arena already has)."""
        copies = sum(spec.dtype.itemsize * _count(spec.shape(n))
                     for spec, array in zip(self.inputs, arrays) if not array.flags.c_contiguous)
        outputs = sum(spec.dtype.itemsize * _count(spec.shape(n))
                      for i, spec in enumerate(self.outputs) if i not in inplace)
        arena = getattr(self._local, "arena", None)
        return copies + outputs + max(self._arena_need(n) - (0 if arena is None else arena.size),
                                      0)

    def _memory_error(self, n: int, need: int) -> MemoryError:
        return MemoryError(f"{self.name}: batch size {n} needs {_size_text(need)} for its "
                           f"outputs and intermediates, and this machine has "
                           f"{_size_text(physical_memory())}; use a smaller batch")

    def batch_size(self, arrays: Sequence[np.ndarray], given: int | None = None) -> int:
        """The batch size the inputs' shapes imply (they must agree), else `given`; an error if
        neither tells it and the outputs or intermediates depend on it."""
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
        if given is not None and n is not None and given != n:
            raise ValueError(f"{self.name}: called for batch size {given}, but the inputs have "
                             f"batch size {n}")
        n = n if n is not None else given
        if n is None and self._depends_on_batch():
            raise ValueError(f"{self.name}: no input has the batch dimension, so the batch size "
                             "must be given (call(arrays, batch_size=N))")
        return 0 if n is None else n

    def _depends_on_batch(self) -> bool:
        return bool(self.arena_bytes[0]) or any(a for spec in self.outputs for a, _ in spec.sizes)

    def check(self, arrays: Sequence[Any], batch_size: int | None = None,
              inplace: dict[int, int] | None = None) -> tuple[list[np.ndarray], int]:
        """The arrays, contiguous, and the batch size; a clear error for anything wrong."""
        if len(arrays) != len(self.inputs):
            names = ", ".join(s.name for s in self.inputs)
            raise TypeError(f"{self.name} takes {len(self.inputs)} arguments ({names}), got "
                            f"{len(arrays)}")
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
        n = self.batch_size(arrays, batch_size)
        for spec, array in zip(self.inputs, arrays):
            if array.shape != spec.shape(n):
                raise ValueError(f"{self.name}: argument '{spec.name}' expects shape "
                                 f"{spec.describe()} = {spec.shape(n)} for batch size {n}, got "
                                 f"{tuple(array.shape)}")
        if n > getattr(self._local, "largest_batch", -1):  # smaller batches have fitted
            need = self._bytes_needed(n, arrays, inplace or {})
            if need > physical_memory():
                raise self._memory_error(n, need)
        try:
            return [a if a.flags.c_contiguous else np.ascontiguousarray(a) for a in arrays], n
        except MemoryError:
            raise self._memory_error(n, self._bytes_needed(n, arrays, inplace or {})) from None

    def __call__(self, *arrays: Any) -> list[np.ndarray]:
        return self.call(arrays)

    def call(self, arrays: Sequence[Any], inplace: dict[int, int] | None = None,
             batch_size: int | None = None) -> list[np.ndarray]:
        """Call with `arrays`; outputs are new arrays, except output i for i in `inplace`, which
        is written into input inplace[i] (that array must be contiguous and writeable).
        `batch_size` is needed only when no input has the batch dimension."""
        inplace = inplace or {}
        prepared = getattr(self._local, "prepared", None)
        if prepared is not None and batch_size is None and inplace == prepared.inplace and \
                self._still_prepared(prepared, arrays):
            block = self._local.block
            outputs = []
            for i, (spec, shape) in enumerate(zip(self.outputs, prepared.output_shapes)):
                if i in inplace:  # the block already points at that input
                    outputs.append(arrays[inplace[i]])
                    continue
                outputs.append(np.empty(shape, spec.dtype))
                block[BLOCK_HEADER + len(self.inputs) + i] = _address(outputs[i])
            self._function(prepared.block_address)
            return outputs
        return self._call_checked(arrays, inplace, batch_size)

    def _still_prepared(self, prepared: _Prepared, arrays: Sequence[Any]) -> bool:
        """Whether `arrays` pass the checks of the prepared call: the same arrays, unchanged,
        or, in their place, contiguous arrays of the same dtype and shape (whose addresses go
        into the block). Anything else takes the full checks."""
        if len(arrays) != len(prepared.arrays):
            return False
        block = self._local.block
        for i, (array, known, shape, spec) in enumerate(zip(arrays, prepared.arrays,
                                                            prepared.shapes, self.inputs)):
            if array is known:
                if array.shape != shape or array.dtype != spec.dtype or \
                        not array.flags.c_contiguous or \
                        (i in prepared.targets and not array.flags.writeable):
                    return False
                continue
            if i in prepared.targets or not isinstance(array, np.ndarray) or \
                    array.dtype != spec.dtype or \
                    array.shape != shape or not array.flags.c_contiguous:
                return False
            block[BLOCK_HEADER + i] = _address(array)
            prepared.arrays[i] = array
        return True

    def _call_checked(self, arrays: Sequence[Any], inplace: dict[int, int],
                      batch_size: int | None) -> list[np.ndarray]:
        self._local.prepared = None
        checked, n = self.check(arrays, batch_size, inplace)
        try:
            outputs = [self._output(i, spec, n, checked, arrays, inplace)
                       for i, spec in enumerate(self.outputs)]
            block, arena, workspace = self._scratch(n)
        except MemoryError:
            raise self._memory_error(n, self._bytes_needed(n, checked, inplace)) from None
        block[0] = n
        block[1] = _aligned(_address(arena))
        block[2] = _aligned(_address(workspace))
        for i, array in enumerate(checked + outputs):
            block[BLOCK_HEADER + i] = _address(array)
        self._function(_address(block))
        self._local.largest_batch = max(n, getattr(self._local, "largest_batch", -1))
        if all(c is a for c, a in zip(checked, arrays)):
            self._local.prepared = _Prepared(list(checked), [a.shape for a in checked],
                                             [o.shape for o in outputs], _address(block),
                                             dict(inplace), frozenset(inplace.values()))
        return outputs

    def _output(self, i: int, spec: BufferSpec, n: int, checked: list[np.ndarray],
                arrays: Sequence[Any], inplace: dict[int, int]) -> np.ndarray:
        if i not in inplace:
            return np.empty(spec.shape(n), spec.dtype)
        target = checked[inplace[i]]
        if target is not arrays[inplace[i]] or not target.flags.writeable or \
                target.shape != spec.shape(n) or target.dtype != spec.dtype:
            raise ValueError(f"{self.name}: '{self.inputs[inplace[i]].name}' is updated in "
                             "place, so it must be a contiguous, writeable array of shape "
                             f"{spec.shape(n)} and dtype {spec.dtype}")
        return target


@functools.cache
def physical_memory() -> int:
    """Bytes of RAM this machine has (what no single call may exceed)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _aligned(address: int) -> int:
    return -(-address // _ALIGN) * _ALIGN


def _count(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def _size_text(size: int) -> str:
    """1536 -> '1.5 KiB'."""
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
