"""From a Graph to a callable `runtime.native.NativeFunction`: lower, JIT, describe arguments."""

from __future__ import annotations

import ctypes
import functools
import re
from typing import Any

import numpy as np
import sympy
from llvmlite import ir

from compiler.ir import Graph, Value
from compiler.lowering.codegen import lower_graph
from compiler.lowering.gemm import gemm_config
from compiler.lowering.target import JitLibrary, jit_compile
from compiler.lowering.threads import emit_threaded_gemm
from compiler.tracing import BATCH
from runtime.native import BufferSpec, NativeFunction


def size_pair(size: Any) -> tuple[int, int]:
    """A size as (per_example, fixed): N*784 -> (784, 0), 10 -> (0, 10)."""
    if isinstance(size, int):
        return (0, size)
    poly = sympy.Poly(sympy.sympify(size), BATCH)
    if poly.degree() > 1:
        raise ValueError(f"size {size} is not linear in the batch size")
    coeffs = dict(zip(poly.monoms(), poly.coeffs()))
    return int(coeffs.get((1,), 0)), int(coeffs.get((0,), 0))


def buffer_spec(value: Value) -> BufferSpec:
    return BufferSpec(value.name, value.dtype.numpy, tuple(size_pair(s) for s in value.shape))


def symbol_name(graph: Graph) -> str:
    return "symgrad_" + re.sub(r"\W", "_", graph.name) + "_" + graph.fingerprint()[:12]


@functools.cache
def kernel_library() -> JitLibrary:
    """The process's threaded GEMMs (float32 and float64) and thread team, compiled once (and
    cached on disk); every JIT-compiled model links to these."""
    module = ir.Module(name="symgrad_kernels")
    symbols = []
    for dtype in ("float32", "float64"):
        config = gemm_config(dtype)
        emit_threaded_gemm(module, config)
        symbols.append(config.symbol("_threaded"))
    return jit_compile(module, symbols)


def gemm_address(symbol: str) -> int:
    """The address of the process's kernel named `symbol`."""
    return kernel_library()[symbol]


def build_native(graph: Graph, profile: bool = False) -> NativeFunction:
    """Lower `graph` to native code for this machine and wrap it for calls from Python.

    With `profile`, the function counts the CPU cycles each node takes; `node_profile(function)`
    reads them."""
    symbol = symbol_name(graph) + ("_profiled" if profile else "")
    module = ir.Module(name=symbol)
    counters = f"{symbol}_cycles" if profile else None
    signature = lower_graph(graph, module, symbol, profile_symbol=counters)
    imports = {f.name: gemm_address(f.name) for f in module.functions
               if f.is_declaration and f.name.startswith("symgrad_gemm_")}
    library = jit_compile(module, [symbol] + ([counters] if counters else []), imports=imports)
    function = NativeFunction(
        graph.name, library[symbol],
        [buffer_spec(v) for v in signature.inputs], [buffer_spec(v) for v in signature.outputs],
        (signature.arena_bytes.per_example, signature.arena_bytes.fixed),
        signature.workspace_bytes, keepalive=library)
    if counters:
        array = (ctypes.c_int64 * max(len(graph.nodes), 1)).from_address(library[counters])
        function.cycle_counters = np.ctypeslib.as_array(array)
        function.profiled_graph = graph
    return function


def node_profile(function: NativeFunction) -> list[tuple[str, int]]:
    """(node text, cycles so far) for a function built with profile=True, costliest first."""
    cycles = function.cycle_counters
    rows = [(node.text(), int(c)) for node, c in zip(function.profiled_graph.nodes, cycles)]
    return sorted(rows, key=lambda row: -row[1])
