"""The state of lowering one graph to one native function, which every lowering rule works on.

`FunctionLowering` owns the function being emitted (`void name(i64 *block)`, see `codegen.py` for
the calling convention), its IR builder, the arena plan, and the IR values of sizes and buffer
pointers (each made once, in the entry block); and it declares or defines the GEMM that matrix
products call. A lowering rule is a function `rule(lowering, node)` that emits one node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import sympy
from llvmlite import ir

from compiler.ir import BATCH, Graph, Node, Value
from compiler.lowering.gemm import GEMM_TYPE, GemmConfig, gemm_config, workspace_elements
from compiler.lowering.llvm_types import I8, I64, PTR, VOID, llvm_type
from compiler.lowering.memory import ArenaPlan, plan_arena
from compiler.lowering.products import emit_threaded_gemm

BLOCK_HEADER = 3  # block[0] = N, block[1] = arena, block[2] = GEMM workspace
FUNCTION_TYPE = ir.FunctionType(VOID, [PTR])  # of every lowered graph: void name(i64 *block)


class FunctionLowering:
    """State while emitting one function: the builder, buffer pointers, sizes."""

    def __init__(self, module: ir.Module, graph: Graph, symbol: str,
                 define_gemm: bool = False, avx512: bool | None = None) -> None:
        self.module = module
        self.graph = graph
        self.external = list(graph.inputs) + [v for v in graph.outputs]
        self.plan: ArenaPlan = plan_arena(graph, set(self.external))
        self.gemm: dict[str, ir.Function] = {}
        self.define_gemm = define_gemm  # False: declared, linked to the process's one GEMM
        self.avx512 = avx512  # the GEMM's tiles: None for the host's, False for portable code
        self.max_workspace = 0
        self.begin_function(symbol)

    def begin_function(self, symbol: str) -> ir.Function:
        """Start emitting into a new function `void symbol(i64 *block)` of the same calling
        convention: the builder, sizes and pointers now belong to it. A large graph is emitted
        as several such functions (each optimised on its own) that the entry calls in turn."""
        self.function = ir.Function(self.module, FUNCTION_TYPE, name=symbol)
        self.function.args[0].name = "block"
        self.function.args[0].add_attribute("noalias")
        self.builder = ir.IRBuilder(self.function.append_basic_block("entry"))
        self.block = self.function.args[0]
        self.batch = self._word(0, "N")
        self.arena = self.builder.inttoptr(self._word(1, "arena.word"), PTR, name="arena")
        self.workspace = self.builder.inttoptr(self._word(2, "workspace.word"), PTR,
                                               name="workspace")
        self._pointers: dict[Value, ir.Value] = {}
        self._sizes: dict[Any, ir.Value] = {}
        return self.function

    def _word(self, index: int, name: str) -> ir.Value:
        address = self.builder.gep(self.block, [ir.Constant(I64, index)], source_etype=I64,
                                   inbounds=True)
        return self.builder.load(address, typ=I64, name=name)

    # ----- sizes and pointers ------------------------------------------------------------------

    def size(self, expr: Any) -> ir.Value:
        """An i64 IR value of a size expression (an int or a polynomial in N)."""
        if isinstance(expr, (int, np.integer)):
            return ir.Constant(I64, int(expr))
        expr = sympy.sympify(expr)
        if expr.is_Integer:
            return ir.Constant(I64, int(expr))
        cached = self._sizes.get(expr)
        if cached is not None:
            return cached
        poly = sympy.Poly(expr, BATCH)
        with self.builder.goto_entry_block():
            result = None
            for (power,), coefficient in zip(poly.monoms(), poly.coeffs()):
                term = ir.Constant(I64, int(coefficient))
                for _ in range(power):
                    term = self.builder.mul(term, self.batch)
                result = term if result is None else self.builder.add(result, term)
        value = result if result is not None else ir.Constant(I64, 0)
        self._sizes[expr] = value
        return value

    def pointer(self, value: Value) -> ir.Value:
        """The address of a value's first element."""
        root = self.plan.storage_of(value)
        cached = self._pointers.get(root)
        if cached is not None:
            return cached
        with self.builder.goto_entry_block():
            if root in self.external:
                word = self._word(BLOCK_HEADER + self.external.index(root), f"{root.name}.word")
                result = self.builder.inttoptr(word, PTR, name=root.name)
            elif root.kind == "const":
                result = self._constant_global(root)
            else:
                offset = self.plan.offsets[root]
                bytes_ = self.builder.add(
                    self.builder.mul(ir.Constant(I64, offset.per_example), self.batch),
                    ir.Constant(I64, offset.fixed))
                result = self.builder.gep(self.arena, [bytes_], source_etype=I8, inbounds=True,
                                          name=root.name)
        self._pointers[root] = result
        return result

    def _constant_global(self, value: Value) -> ir.Value:
        """A constant array as an internal global initialised with its raw bytes (a byte
        string keeps the IR text compact for a layer's weights), in the byte order of the
        module's data layout ('E' big-endian, 'e' little, unset: this machine's)."""
        layout = str(self.module.data_layout).split("-")
        order: Literal[">", "<", "="] = ">" if "E" in layout else "<" if "e" in layout else "="
        array = np.asarray(self.graph.constants[value], dtype=value.dtype.numpy)
        data = bytearray(array.astype(array.dtype.newbyteorder(order)).tobytes()) or bytearray(1)
        array_type = ir.ArrayType(I8, len(data))
        glob = ir.GlobalVariable(self.module, array_type,
                                 name=self.module.get_unique_name(f"const.{value.name}"))
        glob.global_constant = True
        glob.linkage = "internal"
        glob.align = 64
        glob.initializer = ir.Constant(array_type, data)
        return glob

    def constant_scalar(self, value: Value) -> float | None:
        """The number held by a 0-d constant value, else None."""
        array = self.graph.constants.get(value)
        if array is not None and array.ndim == 0:
            return array.item()
        return None

    def local(self, type_: ir.Type) -> ir.Value:
        """A stack slot, allocated once in the entry block (never inside a loop)."""
        with self.builder.goto_entry_block():
            return self.builder.alloca(type_)

    def element_pointer(self, value: Value, offset: ir.Value) -> ir.Value:
        return self.builder.gep(self.pointer(value), [offset], source_etype=llvm_type(value.dtype),
                                inbounds=True)

    def gemm_function(self, dtype: Any) -> ir.Function:
        """The GEMM for `dtype`: defined in this module (export), or declared (the JIT links it
        to the copy compiled once per process, so a model's compile does not redo it)."""
        tag = dtype.name
        if tag not in self.gemm:
            config = gemm_config(tag, avx512=self.avx512)
            symbol = config.symbol("_threaded")
            existing = self.module.globals.get(symbol)
            if existing is not None:
                self.gemm[tag] = existing
            elif self.define_gemm:
                self.gemm[tag] = emit_threaded_gemm(self.module, config)
            else:
                self.gemm[tag] = ir.Function(self.module, GEMM_TYPE, name=symbol)
        return self.gemm[tag]

    def note_gemm(self, dtype: Any, m: int, n: int, k: int) -> None:
        """Record the workspace a GEMM call needs: one per thread of the team, each sized for
        the largest blocks (so it holds for every batch size)."""
        self.max_workspace = max(self.max_workspace, self._gemm_workspace_bytes(dtype))

    def _gemm_workspace_bytes(self, dtype: Any) -> int:
        config: GemmConfig = gemm_config(dtype.name, avx512=self.avx512)
        one = workspace_elements(config.row_block, config.column_block, config.depth_block,
                                 config) * config.element_bytes
        return 2 * one + 64

    def scratch(self, dtype: Any, elements: int) -> ir.Value:
        """A buffer of `elements` of `dtype` for one node's own use (patch columns), placed in
        the workspace after the GEMM's part (so the GEMMs of `dtype` that the node calls may
        run while it is in use); a fixed size, planned with the workspace, never allocated."""
        start = -(-self._gemm_workspace_bytes(dtype) // 64) * 64
        self.max_workspace = max(self.max_workspace, start + elements * dtype.itemsize)
        return self.builder.gep(self.workspace, [ir.Constant(I64, start)], source_etype=I8,
                                inbounds=True)


Rule = Callable[[FunctionLowering, Node], None]
