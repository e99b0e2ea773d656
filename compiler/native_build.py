"""From a Graph to a callable `runtime.native.NativeFunction`: lower, JIT, describe arguments."""

from __future__ import annotations

import ctypes
import os
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import sympy
from llvmlite import ir

from compiler import artifact_cache
from compiler.ir import BATCH, Graph, Value
from compiler.lowering.gemm import gemm_config
from compiler.lowering.target import (
    JitLibrary,
    compile_object,
    compile_object_soon,
    host_object_soon,
    jit_compile,
    load_object,
    without_loop_unrolling,
)
from runtime.native import BufferSpec, NativeFunction

# A model's own loops (elementwise, reductions, softmax, copies) are optimised without LLVM's
# loop unrolling: unrolling a short constant-trip loop fully then vectorising the loop around it
# gave gathers and scatters, ~10x the code, and 5-6x the optimiser's time per node. The kernel
# parts (the GEMM and its team) keep unrolling, which their loops need.
MODEL_LOOP_UNROLLING = False


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


# The process's kernels, per dtype, in parts, each its own library linked to those it calls: the
# thread team (one for every dtype), the packed GEMM, the few-row and narrow products, and the
# threaded entry that picks among them. Only the dtypes a model uses are built, and the parts
# compile in parallel, all at O3 (the packed GEMM, unrolled by hand, would be as fast without
# LLVM's unrolling, but the few-row products need it: 4x512x512 ran at 0.75x). Code generation
# is imported where it is used: a process that finds its compilations in the artifact cache
# never needs it.
_TEAM = "team"


def _kernel_parts_ir(dtype: str) -> dict[str, tuple[ir.Module, list[str]]]:
    """Part name -> (module, exported symbols), for the team and the parts of `dtype`:
    "packed_<dtype>", "loops_<dtype>" and "gemm_<dtype>" (the threaded entry, which declares
    what the others define)."""
    from compiler.lowering.gemm import emit_gemm
    from compiler.lowering.narrow_products import emit_narrow_product
    from compiler.lowering.products import emit_threaded_gemm
    from compiler.lowering.small_products import emit_small_m_product
    from compiler.lowering.threads import RUN_SYMBOL, emit_thread_team

    team = ir.Module(name="symgrad_kernels_team")
    emit_thread_team(team)
    config = gemm_config(dtype)
    parts = {name: ir.Module(name=f"symgrad_kernels_{name}_{dtype}")
             for name in ("packed", "loops", "gemm")}
    emit_gemm(parts["packed"], config)
    exports = {"packed": [config.symbol(), config.symbol("_part"), config.symbol("_workspace")],
               "loops": [], "gemm": [config.symbol("_threaded")]}
    for function in (emit_small_m_product(parts["loops"], config),
                     emit_narrow_product(parts["loops"], config)):
        function.linkage = ""  # exported: the threaded entry calls them
        exports["loops"].append(function.name)
    defined = {**parts["packed"].globals, **parts["loops"].globals, **team.globals}
    for name in [RUN_SYMBOL, *exports["packed"], *exports["loops"]]:
        ir.Function(parts["gemm"], defined[name].function_type, name=name)  # declared only
    emit_threaded_gemm(parts["gemm"], config)
    return {_TEAM: (team, [RUN_SYMBOL]),
            **{f"{name}_{dtype}": (module, exports[name]) for name, module in parts.items()}}


def _kernel_parts(dtype: str) -> list[str]:
    return [f"packed_{dtype}", f"loops_{dtype}", _TEAM, f"gemm_{dtype}"]  # longest first


_kernel_lock = threading.Lock()
_kernel_libraries: dict[str, JitLibrary] = {}
_pending_parts: dict[str, tuple[list[str], Future[bytes]]] = {}  # part -> (exports, compiling)


def _forget_pending_after_fork() -> None:
    """In a forked child the background compilations are the parent's: never wait for them."""
    global _kernel_lock
    _kernel_lock = threading.Lock()
    _pending_parts.clear()


os.register_at_fork(after_in_child=_forget_pending_after_fork)


def _kernel_key(part: str) -> str:
    return artifact_cache.entry_key("kernels", part)


def prepare_kernels(dtypes: Iterable[Any]) -> None:
    """Start building, in the background, the kernels of `dtypes` that neither this process
    nor the disk cache has: they compile on another core while the caller traces and
    differentiates. `kernel_library` picks them up."""
    with _kernel_lock:
        for dtype in {g for d in dtypes if (g := _gemm_dtype(d)) is not None}:
            missing = [part for part in _kernel_parts(dtype) if part not in _kernel_libraries
                       and part not in _pending_parts
                       and artifact_cache.load(_kernel_key(part)) is None]
            if missing:
                emitted = _kernel_parts_ir(dtype)
                for part in missing:
                    module, exports = emitted[part]
                    _pending_parts[part] = (exports, compile_object_soon(module))


def _gemm_dtype(dtype: Any) -> str | None:
    name = getattr(dtype, "name", str(dtype))
    return name if name in ("float32", "float64") else None


def _kernel_part(part: str, dtype: str, imports: dict[str, int]) -> JitLibrary:
    """The library of one kernel part: loaded by this process, else from the disk cache, else
    compiled (or the background compilation `prepare_kernels` started, awaited)."""
    library = _kernel_libraries.get(part)
    if library is not None:
        return library
    key = _kernel_key(part)
    pending = _pending_parts.pop(part, None)
    artifact = artifact_cache.load(key)
    library = None
    if artifact is not None:
        try:
            library = load_object(artifact.objects["object"], artifact.meta["exports"], imports)
        except (RuntimeError, KeyError):  # a damaged entry: compile afresh
            library = None
    if library is None:
        if pending is not None:
            exports, compiled = pending
            object_bytes = compiled.result()
        else:
            module, exports = _kernel_parts_ir(dtype)[part]
            object_bytes = compile_object(module)
        artifact_cache.store(key, artifact_cache.Artifact({"exports": exports},
                                                          {"object": object_bytes}))
        library = load_object(object_bytes, exports, imports)
    _kernel_libraries[part] = library
    return library


def kernel_library(dtype: str = "float32") -> JitLibrary:
    """The process's threaded GEMM for `dtype` (`symgrad_gemm_<tag>_threaded`), built once per
    process (and cached on disk), with the thread team and the products it calls."""
    dtype = np.dtype(dtype).name
    with _kernel_lock:
        imports: dict[str, int] = {}
        for part in (_TEAM, f"packed_{dtype}", f"loops_{dtype}"):
            imports.update(_kernel_part(part, dtype, {}).addresses)
        return _kernel_part(f"gemm_{dtype}", dtype, imports)


def gemm_address(symbol: str) -> int:
    """The address of the process's kernel named `symbol` (`symgrad_gemm_f32_threaded`)."""
    for dtype in ("float32", "float64"):
        if symbol.startswith(gemm_config(dtype).symbol()):
            return kernel_library(dtype)[symbol]
    raise KeyError(f"no kernel named {symbol}")


def build_native(graph: Graph, profile: bool = False) -> NativeFunction:
    """Lower `graph` to native code for this machine and wrap it for calls from Python.

    With `profile`, the function counts the CPU cycles each node takes; `node_profile(function)`
    reads them."""
    return _build(graph, profile)


def build_native_to_keep(graph: Graph) -> tuple[NativeFunction, dict[str, Any], bytes]:
    """`build_native`, with what `load_native` needs to make the same function in another
    process: (function, metadata, object code)."""
    return build_natives_to_keep([graph])[0]


def build_natives_to_keep(
        graphs: Sequence[Graph]) -> list[tuple[NativeFunction, dict[str, Any], bytes]]:
    """`build_native_to_keep` of each graph; each starts compiling as soon as it is lowered, so
    LLVM works on one while the next is lowered, and on two at once (a model's forward and
    backward)."""
    compiling = []
    for graph in graphs:
        module, meta = _lower(graph, profile=False)
        compiling.append((meta, host_object_soon(_model_code(module))))
    built = []
    for meta, future in compiling:
        object_bytes = future.result()
        built.append((load_native(meta, object_bytes), meta, object_bytes))
    return built


def _lower(graph: Graph, profile: bool) -> tuple[ir.Module, dict[str, Any]]:
    """`graph` as an LLVM module, and the metadata `load_native` needs to call it."""
    from compiler.lowering.codegen import lower_graph

    symbol = symbol_name(graph) + ("_profiled" if profile else "")
    module = ir.Module(name=symbol)
    counters = f"{symbol}_cycles" if profile else None
    signature = lower_graph(graph, module, symbol, profile_symbol=counters)
    gemms = sorted(f.name for f in module.functions
                   if f.is_declaration and f.name.startswith("symgrad_gemm_"))
    meta = {"name": graph.name, "symbol": symbol, "gemms": gemms,
            "inputs": [value_meta(v) for v in signature.inputs],
            "outputs": [value_meta(v) for v in signature.outputs],
            "arena_bytes": [signature.arena_bytes.per_example, signature.arena_bytes.fixed],
            "workspace_bytes": signature.workspace_bytes}
    return module, meta


def _model_code(module: ir.Module) -> ir.Module | str:
    """A lowered graph's module as it goes to LLVM (see MODEL_LOOP_UNROLLING)."""
    return module if MODEL_LOOP_UNROLLING else without_loop_unrolling(module)


def _build(graph: Graph, profile: bool) -> NativeFunction:
    module, meta = _lower(graph, profile)
    symbol = meta["symbol"]
    counters = f"{symbol}_cycles" if profile else None
    library = jit_compile(_model_code(module), [symbol] + ([counters] if counters else []),
                          imports=lambda: {name: gemm_address(name) for name in meta["gemms"]})
    function = load_native(meta, library)
    if counters:
        array = (ctypes.c_int64 * max(len(graph.nodes), 1)).from_address(library[counters])
        function.cycle_counters = np.ctypeslib.as_array(array)
        function.profiled_graph = graph
    return function


def value_meta(value: Value) -> list[Any]:
    """A value's name, dtype and sizes (a * N + b as [a, b]) as JSON-able lists."""
    spec = buffer_spec(value)
    return [spec.name, spec.dtype.name, [list(pair) for pair in spec.sizes]]


def load_native(meta: dict[str, Any], code: JitLibrary | bytes) -> NativeFunction:
    """The native function that `meta` (from `build_native_to_keep`) describes, in `code`: a
    loaded library, or the object to load (linked to this process's GEMMs). Raises
    RuntimeError, KeyError or ValueError if they do not fit together."""
    if isinstance(code, bytes):
        code = load_object(code, [meta["symbol"]],
                           {name: gemm_address(name) for name in meta["gemms"]})

    def spec(entry: list[Any]) -> BufferSpec:
        name, dtype, sizes = entry
        return BufferSpec(name, np.dtype(dtype), tuple((int(a), int(b)) for a, b in sizes))

    return NativeFunction(meta["name"], code[meta["symbol"]],
                          [spec(e) for e in meta["inputs"]], [spec(e) for e in meta["outputs"]],
                          (int(meta["arena_bytes"][0]), int(meta["arena_bytes"][1])),
                          int(meta["workspace_bytes"]), keepalive=code)


def native_from_artifact(artifact: artifact_cache.Artifact | None,
                         name: str) -> NativeFunction | None:
    """The native function kept in `artifact` under `name` (its metadata and object), or None
    if there is no artifact or it does not load (damaged, or made for other code)."""
    if artifact is None:
        return None
    try:
        return load_native(artifact.meta[name], artifact.objects[name])
    except (RuntimeError, KeyError, ValueError, TypeError):
        return None


def node_profile(function: NativeFunction) -> list[tuple[str, int]]:
    """(node text, cycles so far) for a function built with profile=True, costliest first."""
    cycles = function.cycle_counters
    rows = [(node.text(), int(c)) for node, c in zip(function.profiled_graph.nodes, cycles)]
    return sorted(rows, key=lambda row: -row[1])
