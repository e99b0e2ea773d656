"""One packed, register-blocked FMA matrix product for every layout: C = A @ B or C += A @ B.

Owns the GEMM behind every native matmul, forward and backward, emitted as LLVM IR in the
Goto/BLIS scheme: C is computed in panels of NC columns, K in balanced blocks of at most KC, A in
blocks of MC rows; B is packed into micro-panels just before their first use, A too unless one
of its strides is 1 (then the micro-kernel broadcasts from A where it lies), and a noinline
micro-kernel keeps an MR x NR tile of C in vector registers, updated by `llvm.fma`.
Strides are runtime arguments, so one kernel serves A @ B, A.T @ B and A @ B.T.

The emitted code never calls a library function (it is exported into a standalone library that
links only libc) and never allocates: the caller passes a workspace. BLAS is only a test oracle.

Native symbols, for dtype tag `f32` or `f64` (T = float or double):
    void symgrad_gemm_f32(i64 M, i64 N, i64 K, T* A, i64 a_rs, i64 a_cs, T* B, i64 b_rs,
                          i64 b_cs, T* C, i64 ldc, i32 accumulate, T* workspace)
    void symgrad_gemm_f32_part(i64 m_begin, i64 m_end, i64 n_begin, i64 n_end, i64 K, <as above
                               from A on>)  -- C[m_begin:m_end, n_begin:n_end] only
    i64  symgrad_gemm_f32_workspace(i64 M, i64 N, i64 K)  -- workspace size in elements
A[i, k] is A[i * a_rs + k * a_cs] (strides in elements, any sign), B likewise, C[i, j] is
C[i * ldc + j]. With accumulate = 0 C is overwritten (K = 0 gives zeros), else added to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from compiler.lowering.llvm_types import I32, I64, PTR, VOID, element_type
from compiler.lowering.loops import counted_range
from compiler.lowering.target import host_has_feature
from compiler.lowering.vector_math import fma

_PANEL_ALIGNMENT = 64  # bytes: packed panels start on a cache line

# The native signatures (see the module docstring), declared once: every caller, emitter and
# binding of these functions takes its argument list from here.
GEMM_ARGUMENTS: tuple[tuple[str, ir.Type], ...] = (
    ("M", I64), ("N", I64), ("K", I64), ("A", PTR), ("a_rs", I64), ("a_cs", I64), ("B", PTR),
    ("b_rs", I64), ("b_cs", I64), ("C", PTR), ("ldc", I64), ("accumulate", I32),
    ("workspace", PTR))
GEMM_TYPE = ir.FunctionType(VOID, [kind for _, kind in GEMM_ARGUMENTS])
PART_ARGUMENTS: tuple[tuple[str, ir.Type], ...] = (
    ("m_begin", I64), ("m_end", I64), ("n_begin", I64), ("n_end", I64), *GEMM_ARGUMENTS[2:])
PART_TYPE = ir.FunctionType(VOID, [kind for _, kind in PART_ARGUMENTS])
WORKSPACE_TYPE = ir.FunctionType(I64, [I64, I64, I64])  # (M, N, K) -> elements
_DTYPE_TAGS = {"float32": "f32", "float64": "f64"}


@dataclass(frozen=True)
class GemmConfig:
    """Tile and blocking sizes of one emitted GEMM (all counts in elements)."""

    dtype: str  # "float32" or "float64"
    lanes: int  # vector width: the micro-kernel works on <lanes x T>
    tile_rows: int  # MR: rows of C in registers
    tile_vectors: int  # vectors per tile row, so NR = lanes * tile_vectors
    depth_block: int  # KC: largest K block (K is split into equal blocks no deeper than this)
    row_block: int  # MC: rows of A packed at once (a multiple of MR)
    column_block: int  # NC: columns of B packed at once (a multiple of NR)
    depth_unroll: int = 4  # k steps per iteration of the micro-kernel's loop

    def __post_init__(self) -> None:
        for power_of_two in (self.lanes, self.depth_unroll):
            assert power_of_two & (power_of_two - 1) == 0, "lanes and unroll: powers of two"
        assert self.row_block % self.tile_rows == 0, "MC must be a multiple of MR"
        assert self.column_block % self.tile_columns == 0, "NC must be a multiple of NR"

    @property
    def tag(self) -> str:
        return _DTYPE_TAGS[self.dtype]

    @property
    def tile_columns(self) -> int:
        return self.lanes * self.tile_vectors

    @property
    def element_bytes(self) -> int:
        return 4 if self.dtype == "float32" else 8

    def symbol(self, suffix: str = "") -> str:
        return f"symgrad_gemm_{self.tag}{suffix}"


def gemm_config(dtype: str | np.dtype | type = "float32", avx512: bool | None = None) -> GemmConfig:
    """The tuned configuration for `dtype`, with 512-bit vectors if `avx512` (default: the host).

    Without AVX-512 the tile is 6 x 2 vectors of 256 bits (twelve accumulators of sixteen
    registers); with it, 8 x 3 vectors of 512 bits (24 accumulators of 32).
    """
    name = np.dtype(dtype).name
    if name not in _DTYPE_TAGS:
        raise TypeError(f"gemm supports float32 and float64, not {name}")
    wide = host_has_feature("avx512f") if avx512 is None else avx512
    register_bytes = 64 if wide else 32
    lanes = register_bytes // np.dtype(name).itemsize
    if wide:
        return GemmConfig(name, lanes, 8, 3, depth_block=256, row_block=192, column_block=4080)
    return GemmConfig(name, lanes, 6, 2, depth_block=256, row_block=144, column_block=4080)


def workspace_elements(m: int, n: int, k: int, config: GemmConfig) -> int:
    """Elements of workspace the kernel needs for an m x n part of C with depth k.

    The same arithmetic is emitted as `symgrad_gemm_*_workspace`; tests hold the two together.
    """
    per_line = _PANEL_ALIGNMENT // config.element_bytes
    depth = _ceil_div(k, _ceil_div(k, config.depth_block)) if k > 0 else 0
    a_rows = min(config.row_block, _round_up(m, config.tile_rows))
    b_columns = min(config.column_block, _round_up(n, config.tile_columns))
    return per_line + _round_up(a_rows * depth, per_line) + depth * b_columns


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(a: int, b: int) -> int:
    return _ceil_div(a, b) * b


# ---------------------------------------------------------------------------------------------
# IR emission


def _minimum(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> ir.Value:
    return builder.select(builder.icmp_signed("<", a, b), a, b)


def ceil_div_ir(builder: ir.IRBuilder, a: ir.Value, b: int | ir.Value) -> ir.Value:
    divisor = I64(b) if isinstance(b, int) else b
    return builder.sdiv(builder.add(a, builder.sub(divisor, I64(1))), divisor)


def _round_up_ir(builder: ir.IRBuilder, a: ir.Value, b: int) -> ir.Value:
    return builder.mul(ceil_div_ir(builder, a, b), I64(b))


def _transpose(builder: ir.IRBuilder, vectors: list[ir.Value]) -> list[ir.Value]:
    """Transpose a square block held as len(vectors) vectors of that many lanes.

    log2(n) rounds; round g swaps the off-diagonal g x g sub-blocks of each 2g x 2g block.
    """
    size = len(vectors)
    gap = 1
    while gap < size:
        low_mask = [j if not j & gap else size + j - gap for j in range(size)]
        high_mask = [j + gap if not j & gap else size + j for j in range(size)]
        swapped = list(vectors)
        for i in range(size):
            if not i & gap:
                first, second = vectors[i], vectors[i + gap]
                swapped[i] = builder.shuffle_vector(first, second, _mask(low_mask))
                swapped[i + gap] = builder.shuffle_vector(first, second, _mask(high_mask))
        vectors = swapped
        gap *= 2
    return vectors


def _mask(indices: list[int]) -> ir.Constant:
    return ir.Constant(ir.VectorType(I32, len(indices)), [I32(i) for i in indices])


class _GemmEmitter:
    """Adds the functions of one GemmConfig to a module."""

    def __init__(self, module: ir.Module, config: GemmConfig) -> None:
        self.module = module
        self.config = config
        self.element = element_type(config.dtype)
        self.vector = ir.VectorType(self.element, config.lanes)
        self.vector_bytes = config.lanes * config.element_bytes

    # small helpers -----------------------------------------------------------------------------

    def _at(self, builder: ir.IRBuilder, base: ir.Value, offset: ir.Value | int) -> ir.Value:
        index = I64(offset) if isinstance(offset, int) else offset
        return builder.gep(base, [index], source_etype=self.element)

    def _alignment(self, offset_elements: int, base_alignment: int) -> int:
        """Alignment in bytes of base + offset, base aligned to `base_alignment` bytes."""
        offset_bytes = offset_elements * self.config.element_bytes
        return math.gcd(offset_bytes, base_alignment) if offset_bytes else base_alignment

    def _function(
        self,
        suffix: str,
        return_type: ir.Type,
        arguments: list[ir.Type],
        names: list[str],
        internal: bool,
    ) -> tuple[ir.Function, ir.IRBuilder]:
        function = ir.Function(
            self.module, ir.FunctionType(return_type, arguments), name=self.config.symbol(suffix)
        )
        function.attributes.add("nounwind")
        if internal:
            function.linkage = "internal"
        for argument, name in zip(function.args, names, strict=True):
            argument.name = name
        return function, ir.IRBuilder(function.append_basic_block("entry"))

    # packing -----------------------------------------------------------------------------------

    def emit_pack(self, suffix: str, width: int, panel_alignment: int) -> ir.Function:
        """`pack(depth, count, source, k_stride, lane_stride, packed)`: one micro-panel.

        packed[k * width + l] = source[k * k_stride + l * lane_stride] for l < count, and 0 for
        count <= l < width (so edge tiles compute on zeros). Used with width MR for A and NR for
        B. Fast paths: lanes contiguous (a row copy) and k contiguous (square in-register
        transposes of `lanes` x `lanes`); anything else is a strided scalar copy.
        """
        function, builder = self._function(
            suffix,
            VOID,
            [I64, I64, PTR, I64, I64, PTR],
            ["depth", "count", "source", "k_stride", "lane_stride", "packed"],
            internal=True,
        )
        depth, count, source, k_stride, lane_stride, packed = function.args
        source.add_attribute("noalias")
        packed.add_attribute("noalias")
        full = builder.icmp_signed("==", count, I64(width))
        row_alignment = self._alignment(width, panel_alignment)

        rows_contiguous = builder.and_(full, builder.icmp_signed("==", lane_stride, I64(1)))
        with builder.if_then(rows_contiguous):
            row_type = ir.VectorType(self.element, width)
            with counted_range(builder, I64(0), depth, name="k") as k:
                row = builder.load(
                    self._at(builder, source, builder.mul(k, k_stride)),
                    typ=row_type,
                    align=self.config.element_bytes,
                )
                builder.store(
                    row, self._at(builder, packed, builder.mul(k, I64(width))), align=row_alignment
                )
            builder.ret_void()

        k_contiguous = builder.and_(full, builder.icmp_signed("==", k_stride, I64(1)))
        with builder.if_then(k_contiguous):
            block = self.config.lanes
            transposed_depth = builder.and_(depth, I64(-block))
            with counted_range(builder, I64(0), transposed_depth, block, name="k0") as k0:
                self._pack_transposed_block(
                    builder, k0, source, lane_stride, packed, width, panel_alignment
                )
            self._pack_strided(
                builder,
                transposed_depth,
                depth,
                count,
                width,
                source,
                k_stride,
                lane_stride,
                packed,
            )
            builder.ret_void()

        self._pack_strided(
            builder, I64(0), depth, count, width, source, k_stride, lane_stride, packed
        )
        with counted_range(builder, I64(0), depth, name="kz") as k:
            with counted_range(builder, count, I64(width), name="lz") as lane:
                slot = builder.add(builder.mul(k, I64(width)), lane)
                builder.store(ir.Constant(self.element, 0.0), self._at(builder, packed, slot))
        builder.ret_void()
        return function

    def _pack_transposed_block(
        self,
        builder: ir.IRBuilder,
        k0: ir.Value,
        source: ir.Value,
        lane_stride: ir.Value,
        packed: ir.Value,
        width: int,
        panel_alignment: int,
    ) -> None:
        """Pack k0 .. k0+lanes-1 for all `width` lanes, `lanes` lanes at a time by transposes."""
        block = self.config.lanes
        for first_lane in range(0, width, block):
            lanes_here = min(block, width - first_lane)
            columns = []
            for lane in range(first_lane, first_lane + lanes_here):
                start = builder.add(builder.mul(I64(lane), lane_stride), k0)
                columns.append(
                    builder.load(
                        self._at(builder, source, start),
                        typ=self.vector,
                        align=self.config.element_bytes,
                    )
                )
            columns += [ir.Constant(self.vector, ir.Undefined)] * (block - lanes_here)
            for kk, row in enumerate(_transpose(builder, columns)):
                if lanes_here < block:
                    row = builder.shuffle_vector(row, row, _mask(list(range(lanes_here))))
                slot = builder.add(
                    builder.mul(builder.add(k0, I64(kk)), I64(width)), I64(first_lane)
                )
                alignment = math.gcd(
                    self._alignment(width, panel_alignment),
                    self._alignment(first_lane, panel_alignment),
                )
                builder.store(row, self._at(builder, packed, slot), align=alignment)

    def _pack_strided(
        self,
        builder: ir.IRBuilder,
        k_start: ir.Value,
        k_stop: ir.Value,
        count: ir.Value,
        width: int,
        source: ir.Value,
        k_stride: ir.Value,
        lane_stride: ir.Value,
        packed: ir.Value,
    ) -> None:
        """Scalar copy of rows k_start <= k < k_stop, lanes 0 <= l < count."""
        with counted_range(builder, k_start, k_stop, name="ks") as k:
            with counted_range(builder, I64(0), count, name="ls") as lane:
                offset = builder.add(builder.mul(k, k_stride), builder.mul(lane, lane_stride))
                value = builder.load(self._at(builder, source, offset), typ=self.element)
                slot = builder.add(builder.mul(k, I64(width)), lane)
                builder.store(value, self._at(builder, packed, slot))

    # micro-kernel ------------------------------------------------------------------------------

    def emit_tile(self, strided_a: bool = False) -> ir.Function:
        """`tile(depth, a_panel, b_panel, c, ldc, rows, columns, accumulate)`, noinline.

        Multiplies an MR x depth packed A panel by a depth x NR packed B panel in MR x NV vector
        accumulators, then writes rows x columns of them to C (added if accumulate).

        With `strided_a`, `..._tile_strided_a(depth, a, a_rs, a_cs, b_panel, ...)` reads A where
        it lies, A[r, k] at a[r * a_rs + k * a_cs] (rows past `rows` read row 0's values again,
        never past the matrix): the broadcasts of the rank-one updates need no packed layout,
        so products whose A is small skip packing it (see emit_part).
        """
        config = self.config
        rows_in_tile, vectors_per_row = config.tile_rows, config.tile_vectors
        lanes, width = config.lanes, config.tile_columns
        names = ["depth", "a_panel", "b_panel", "c", "ldc", "rows", "columns", "accumulate"]
        types = [I64, PTR, PTR, PTR, I64, I64, I64, I32]
        if strided_a:
            names[2:2], types[2:2] = ["a_rs", "a_cs"], [I64, I64]
        function, builder = self._function(
            "_tile_strided_a" if strided_a else "_tile", VOID, types, names,
            internal=True,
        )
        function.attributes.add("noinline")
        if strided_a:
            depth, a_panel, a_rs, a_cs, b_panel, c_tile, ldc, rows, columns, accumulate = (
                function.args)
            last_row = builder.sub(rows, I64(1))
            a_rows = [builder.mul(_minimum(builder, I64(r), last_row), a_rs)
                      for r in range(rows_in_tile)]
            a_step: ir.Value = a_cs
        else:
            depth, a_panel, b_panel, c_tile, ldc, rows, columns, accumulate = function.args
            a_rows = [I64(r) for r in range(rows_in_tile)]
            a_step = I64(rows_in_tile)
        for pointer in (a_panel, b_panel, c_tile):
            pointer.add_attribute("noalias")
        scratch = builder.alloca(ir.ArrayType(self.element, rows_in_tile * width), name="scratch")
        scratch.align = _PANEL_ALIGNMENT
        scratch.type = PTR  # llvmlite types allocas as typed pointers; all others here are opaque
        zero = ir.Constant(self.vector, [ir.Constant(self.element, 0.0)] * lanes)
        accumulators = [[zero] * vectors_per_row for _ in range(rows_in_tile)]

        unroll = config.depth_unroll
        unrolled_depth = builder.and_(depth, I64(-unroll))
        a_steps = (a_panel, a_step, a_rows)
        accumulators = self._k_loop(
            builder, accumulators, I64(0), unrolled_depth, unroll, a_steps, b_panel, "main"
        )
        accumulators = self._k_loop(
            builder, accumulators, unrolled_depth, depth, 1, a_steps, b_panel, "rest"
        )

        full = builder.and_(
            builder.icmp_signed("==", rows, I64(rows_in_tile)),
            builder.icmp_signed("==", columns, I64(width)),
        )
        adding = builder.icmp_signed("!=", accumulate, I32(0))
        with builder.if_then(full, likely=True):
            with builder.if_else(adding) as (then_add, otherwise_overwrite):
                with then_add:
                    self._write_tile(builder, accumulators, c_tile, ldc, add_existing=True)
                with otherwise_overwrite:
                    self._write_tile(builder, accumulators, c_tile, ldc, add_existing=False)
            builder.ret_void()

        # edge tile: spill the accumulators, copy the valid part element by element
        for r, row in enumerate(accumulators):
            for v, value in enumerate(row):
                spill_at = self._at(builder, scratch, r * width + v * lanes)
                builder.store(value, spill_at, align=self.vector_bytes)
        with builder.if_else(adding) as (then_add, otherwise_overwrite):
            with then_add:
                self._write_edge(builder, scratch, c_tile, ldc, rows, columns, add_existing=True)
            with otherwise_overwrite:
                self._write_edge(builder, scratch, c_tile, ldc, rows, columns, add_existing=False)
        builder.ret_void()
        return function

    def _write_tile(
        self,
        builder: ir.IRBuilder,
        accumulators: list[list[ir.Value]],
        c_tile: ir.Value,
        ldc: ir.Value,
        add_existing: bool,
    ) -> None:
        """C tile (+)= accumulators, whole vectors (C rows need no alignment)."""
        for r, row in enumerate(accumulators):
            for v, value in enumerate(row):
                offset = builder.add(builder.mul(I64(r), ldc), I64(v * self.config.lanes))
                target = self._at(builder, c_tile, offset)
                if add_existing:
                    existing = builder.load(
                        target, typ=self.vector, align=self.config.element_bytes
                    )
                    value = builder.fadd(existing, value)
                builder.store(value, target, align=self.config.element_bytes)

    def _write_edge(
        self,
        builder: ir.IRBuilder,
        scratch: ir.Value,
        c_tile: ir.Value,
        ldc: ir.Value,
        rows: ir.Value,
        columns: ir.Value,
        add_existing: bool,
    ) -> None:
        """C[:rows, :columns] (+)= the spilled tile, element by element."""
        width = I64(self.config.tile_columns)
        with counted_range(builder, I64(0), rows, name="r") as r:
            with counted_range(builder, I64(0), columns, name="j") as j:
                spilled = self._at(builder, scratch, builder.add(builder.mul(r, width), j))
                value = builder.load(spilled, typ=self.element)
                target = self._at(builder, c_tile, builder.add(builder.mul(r, ldc), j))
                if add_existing:
                    value = builder.fadd(builder.load(target, typ=self.element), value)
                builder.store(value, target)

    def _rank_one_update(
        self,
        builder: ir.IRBuilder,
        accumulators: list[list[ir.Value]],
        a_at: ir.Value,
        b_at: ir.Value,
        a_rows: list[ir.Value],
    ) -> list[list[ir.Value]]:
        """accumulators[r][v] += a_at[a_rows[r]] * b_at[v * lanes : (v + 1) * lanes], by FMA."""
        lanes = self.config.lanes
        undefined = ir.Constant(self.vector, ir.Undefined)
        b_vectors = [
            builder.load(
                self._at(builder, b_at, v * lanes), typ=self.vector, align=self.vector_bytes
            )
            for v in range(self.config.tile_vectors)
        ]
        updated = []
        for r, row in enumerate(accumulators):
            a_value = builder.load(self._at(builder, a_at, a_rows[r]), typ=self.element)
            a_broadcast = builder.shuffle_vector(
                builder.insert_element(undefined, a_value, I32(0)), undefined, _mask([0] * lanes)
            )
            updated.append([fma(builder, a_broadcast, b, acc) for b, acc in zip(b_vectors, row)])
        return updated

    def _k_loop(
        self,
        builder: ir.IRBuilder,
        accumulators: list[list[ir.Value]],
        start: ir.Value,
        stop: ir.Value,
        steps_per_iteration: int,
        a_steps: tuple[ir.Value, ir.Value, list[ir.Value]],
        b_panel: ir.Value,
        name: str,
    ) -> list[list[ir.Value]]:
        """Rank-one updates for k from start to stop, `steps_per_iteration` per loop iteration;
        `a_steps` is (A, its stride over k, each tile row's offset)."""
        a_panel, a_step, a_rows = a_steps
        config = self.config
        preheader = builder.block
        header = builder.append_basic_block(f"{name}.header")
        body = builder.append_basic_block(f"{name}.body")
        exit_block = builder.append_basic_block(f"{name}.exit")
        builder.branch(header)
        builder.position_at_end(header)
        k = builder.phi(I64, name=f"{name}.k")
        k.add_incoming(start, preheader)
        phis = [[builder.phi(self.vector) for _ in row] for row in accumulators]
        for phi_row, row in zip(phis, accumulators, strict=True):
            for phi, value in zip(phi_row, row, strict=True):
                phi.add_incoming(value, preheader)
        builder.cbranch(builder.icmp_signed("<", k, stop), body, exit_block)
        builder.position_at_end(body)
        updated = phis
        for step in range(steps_per_iteration):
            k_here = builder.add(k, I64(step))
            a_at = self._at(builder, a_panel, builder.mul(k_here, a_step))
            b_at = self._at(builder, b_panel, builder.mul(k_here, I64(config.tile_columns)))
            updated = self._rank_one_update(builder, updated, a_at, b_at, a_rows)
        k.add_incoming(builder.add(k, I64(steps_per_iteration)), builder.block)
        for phi_row, row in zip(phis, updated, strict=True):
            for phi, value in zip(phi_row, row, strict=True):
                phi.add_incoming(value, builder.block)
        builder.branch(header)
        builder.position_at_end(exit_block)
        return phis

    # blocking loops ----------------------------------------------------------------------------

    def _emit_layout(
        self, builder: ir.IRBuilder, m: ir.Value, n: ir.Value, k: ir.Value
    ) -> tuple[ir.Value, ir.Value, ir.Value]:
        """(K block depth, A area, total) in elements, as in `workspace_elements`."""
        config = self.config
        per_line = _PANEL_ALIGNMENT // config.element_bytes
        k_blocks = ceil_div_ir(builder, k, config.depth_block)
        k_blocks = builder.select(builder.icmp_signed("<", k_blocks, I64(1)), I64(1), k_blocks)
        depth = ceil_div_ir(builder, k, k_blocks)
        a_rows = _minimum(
            builder, I64(config.row_block), _round_up_ir(builder, m, config.tile_rows)
        )
        b_columns = _minimum(
            builder, I64(config.column_block), _round_up_ir(builder, n, config.tile_columns)
        )
        a_area = _round_up_ir(builder, builder.mul(a_rows, depth), per_line)
        total = builder.add(builder.add(I64(per_line), a_area), builder.mul(depth, b_columns))
        return depth, a_area, total

    def emit_workspace(self) -> ir.Function:
        function, builder = self._function(
            "_workspace", WORKSPACE_TYPE.return_type, list(WORKSPACE_TYPE.args), ["M", "N", "K"],
            internal=False,
        )
        builder.ret(self._emit_layout(builder, *function.args)[2])
        return function

    def emit_part(self, tile: ir.Function, pack_a: ir.Function, pack_b: ir.Function,
                  tile_strided_a: ir.Function) -> ir.Function:
        """C[m_begin:m_end, n_begin:n_end] (+)= A[m_begin:m_end, :] @ B[:, n_begin:n_end].

        This is where threads split the work: each takes a range of columns of C and its own
        workspace. A is read where it lies, unpacked, when one of its strides is 1: the
        micro-kernel's broadcasts read it as fast as a packed panel (GFLOP/s unchanged on every
        shape of benchmarks/gemm.py), and packing it cost a copy of A per column range (10% of
        a 64-row product cut in four). B is always packed (its panels are read as vectors).
        """
        config = self.config
        function, builder = self._function(
            "_part",
            VOID,
            [kind for _, kind in PART_ARGUMENTS],
            [name for name, _ in PART_ARGUMENTS],
            internal=False,
        )
        (
            m_begin,
            m_end,
            n_begin,
            n_end,
            depth_total,
            a,
            a_rs,
            a_cs,
            b,
            b_rs,
            b_cs,
            c,
            ldc,
            accumulate,
            workspace,
        ) = function.args
        c.add_attribute("noalias")
        workspace.add_attribute("noalias")
        rows = builder.sub(m_end, m_begin)
        columns = builder.sub(n_end, n_begin)
        empty = builder.or_(
            builder.icmp_signed("<=", rows, I64(0)), builder.icmp_signed("<=", columns, I64(0))
        )
        with builder.if_then(empty):
            builder.ret_void()
        with builder.if_then(builder.icmp_signed("<=", depth_total, I64(0))):
            with builder.if_then(builder.icmp_signed("==", accumulate, I32(0))):
                with counted_range(builder, m_begin, m_end, name="zi") as i:
                    with counted_range(builder, n_begin, n_end, name="zj") as j:
                        target = self._at(builder, c, builder.add(builder.mul(i, ldc), j))
                        builder.store(ir.Constant(self.element, 0.0), target)
            builder.ret_void()

        depth_block, a_area, _ = self._emit_layout(builder, rows, columns, depth_total)
        address = builder.ptrtoint(workspace, I64)
        aligned = builder.and_(
            builder.add(address, I64(_PANEL_ALIGNMENT - 1)), I64(-_PANEL_ALIGNMENT)
        )
        a_packed = builder.inttoptr(aligned, PTR)
        b_packed = self._at(builder, a_packed, a_area)
        mr, nr = config.tile_rows, config.tile_columns
        direct_a = builder.or_(builder.icmp_signed("==", a_rs, I64(1)),
                               builder.icmp_signed("==", a_cs, I64(1)))

        with counted_range(builder, n_begin, n_end, config.column_block, name="jc") as jc:
            nc = _minimum(builder, I64(config.column_block), builder.sub(n_end, jc))
            with counted_range(builder, I64(0), depth_total, depth_block, name="pc") as pc:
                kc = _minimum(builder, depth_block, builder.sub(depth_total, pc))
                later_block = builder.icmp_signed(">", pc, I64(0))
                adding = builder.or_(builder.icmp_signed("!=", accumulate, I32(0)), later_block)
                tile_accumulate = builder.zext(adding, I32)
                with counted_range(builder, m_begin, m_end, config.row_block, name="ic") as ic:
                    mc = _minimum(builder, I64(config.row_block), builder.sub(m_end, ic))
                    with builder.if_then(builder.not_(direct_a)):
                        with counted_range(builder, I64(0), mc, mr, name="ir_pack") as ir_:
                            source = builder.add(
                                builder.mul(builder.add(ic, ir_), a_rs), builder.mul(pc, a_cs)
                            )
                            builder.call(
                                pack_a,
                                [
                                    kc,
                                    _minimum(builder, I64(mr), builder.sub(mc, ir_)),
                                    self._at(builder, a, source),
                                    a_cs,
                                    a_rs,
                                    self._at(builder, a_packed, builder.mul(ir_, kc)),
                                ],
                            )
                    with counted_range(builder, I64(0), nc, nr, name="jr") as jr:
                        b_panel = self._at(builder, b_packed, builder.mul(jr, kc))
                        panel_columns = _minimum(builder, I64(nr), builder.sub(nc, jr))
                        # B micro-panels are packed during the first row block, just before use
                        with builder.if_then(builder.icmp_signed("==", ic, m_begin)):
                            source = builder.add(
                                builder.mul(pc, b_rs), builder.mul(builder.add(jc, jr), b_cs)
                            )
                            builder.call(
                                pack_b,
                                [
                                    kc,
                                    panel_columns,
                                    self._at(builder, b, source),
                                    b_rs,
                                    b_cs,
                                    b_panel,
                                ],
                            )
                        with counted_range(builder, I64(0), mc, mr, name="ir") as ir_:
                            row = builder.add(ic, ir_)
                            c_offset = builder.add(builder.mul(row, ldc), builder.add(jc, jr))
                            tile_rows = _minimum(builder, I64(mr), builder.sub(mc, ir_))
                            c_at = self._at(builder, c, c_offset)
                            with builder.if_else(direct_a) as (unpacked, packed):
                                with unpacked:
                                    a_at = builder.add(builder.mul(row, a_rs),
                                                       builder.mul(pc, a_cs))
                                    builder.call(tile_strided_a, [
                                        kc, self._at(builder, a, a_at), a_rs, a_cs, b_panel,
                                        c_at, ldc, tile_rows, panel_columns, tile_accumulate])
                                with packed:
                                    builder.call(tile, [
                                        kc, self._at(builder, a_packed, builder.mul(ir_, kc)),
                                        b_panel, c_at, ldc, tile_rows, panel_columns,
                                        tile_accumulate])
        builder.ret_void()
        return function

    def emit_product(self, part: ir.Function) -> ir.Function:
        function, builder = self._function(
            "",
            VOID,
            [kind for _, kind in GEMM_ARGUMENTS],
            [name for name, _ in GEMM_ARGUMENTS],
            internal=False,
        )
        m, n, *rest = function.args
        builder.call(part, [I64(0), m, I64(0), n, *rest])
        builder.ret_void()
        return function


def emit_gemm(module: ir.Module, config: GemmConfig | None = None) -> ir.Function:
    """Add the GEMM of `config` (default: float32 for the host) to `module`; return its entry.

    The module gains `symgrad_gemm_<tag>`, `..._part` and `..._workspace` (see the module
    docstring) plus internal packing and micro-kernel functions. Adding it twice is a no-op.
    """
    config = config or gemm_config()
    existing = module.globals.get(config.symbol())
    if existing is not None:
        return existing
    emitter = _GemmEmitter(module, config)
    element_bytes = config.element_bytes
    pack_a = emitter.emit_pack("_pack_a", config.tile_rows, panel_alignment=element_bytes)
    pack_b = emitter.emit_pack("_pack_b", config.tile_columns, panel_alignment=_PANEL_ALIGNMENT)
    part = emitter.emit_part(emitter.emit_tile(), pack_a, pack_b,
                             emitter.emit_tile(strided_a=True))
    emitter.emit_workspace()
    return emitter.emit_product(part)
