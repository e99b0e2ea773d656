"""The exported library's C entry points, emitted as LLVM IR around the graph's native function.

    int32_t <name>_forward(const T *input, int64_t batch, U *output);
    int32_t <name>_init(const char *weights_path);     (only when the weights are in a file)

`forward` checks its arguments in the order of `ERRORS`, mallocs this call's arena and GEMM
workspace, fills the calling convention's argument block (see compiler/lowering/codegen.py) on
its own stack, calls the graph function, frees, and returns 0. It writes no global, so any number
of threads may call it at once. `init` reads a weights file (format: export_weights.py), checks
all of it, and only then publishes it in two internal globals. The only functions called here are
libc's: malloc, free, fopen, fread, fclose. This module emits no C text and knows no model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llvmlite import ir

from compiler import export_weights as file_format
from compiler.export_digest import emit_digest_differs
from compiler.export_weights import Weights
from compiler.lowering.codegen import NativeSignature
from compiler.lowering.context import BLOCK_HEADER
from compiler.lowering.llvm_types import I1, I8, I32, I64, PTR, VOID

ALIGN = 64  # the arena, the workspace and the loaded weights start on a cache line
STATE_KINDS = ("param", "buffer")


@dataclass(frozen=True)
class ErrorCode:
    """A return code: the header's macro is `<NAME>_<suffix>`."""

    suffix: str
    value: int
    meaning: str
    weights_file_only: bool = False  # only a library whose weights are in a file returns it


ERRORS = (
    ErrorCode("OK", 0, "success"),
    ErrorCode("ERROR_NULL_POINTER", 1, "a pointer argument is NULL"),
    ErrorCode("ERROR_BAD_BATCH", 2, "batch is zero or negative"),
    ErrorCode("ERROR_OUT_OF_MEMORY", 3, "batch is above MAX_BATCH, or malloc failed"),
    ErrorCode("ERROR_NOT_INITIALIZED", 4, "forward was called before init succeeded", True),
    ErrorCode("ERROR_WEIGHTS_UNREADABLE", 5, "the weights file cannot be opened", True),
    ErrorCode("ERROR_WEIGHTS_FORMAT", 6, "the file is not a symgrad weights file of this "
              "format version", True),
    ErrorCode("ERROR_WEIGHTS_MISMATCH", 7, "the weights belong to another model (tensor count, "
              "names, dtypes, shapes or size differ)", True),
    ErrorCode("ERROR_WEIGHTS_CORRUPT", 8, "the weights file is truncated, too long, or fails "
              "its SHA-256", True),
)
CODE = {error.suffix: error.value for error in ERRORS}


@dataclass(frozen=True)
class EntryPlan:
    """What the entry points wrap: the graph function, its buffers, the batch limit, and the
    weights when they live in a file (None: embedded as constants)."""

    name: str
    graph_function: ir.Function
    signature: NativeSignature
    max_batch: int
    weights: Weights | None


def _i64(value: int) -> ir.Constant:
    """An i64 constant from an unsigned 64-bit value (LLVM's text wants the signed spelling)."""
    return ir.Constant(I64, value - (1 << 64) if value >= 1 << 63 else value)


def _code(suffix: str) -> ir.Constant:
    return ir.Constant(I32, CODE[suffix])


def _is_null(b: ir.IRBuilder, pointer: ir.Value) -> ir.Value:
    return b.icmp_unsigned("==", b.ptrtoint(pointer, I64), ir.Constant(I64, 0))


def _return_if(b: ir.IRBuilder, condition: ir.Value, suffix: str,
               cleanup: Callable[[], None] = lambda: None) -> None:
    """if (condition) { cleanup(); return <suffix>; }"""
    with b.if_then(condition, likely=False):
        cleanup()
        b.ret(_code(suffix))


def _aligned_word(b: ir.IRBuilder, pointer: ir.Value) -> ir.Value:
    """The address rounded up to ALIGN, as an i64 (the allocation has ALIGN bytes to spare)."""
    word = b.add(b.ptrtoint(pointer, I64), ir.Constant(I64, ALIGN - 1))
    return b.and_(word, ir.Constant(I64, -ALIGN))


def _field(b: ir.IRBuilder, header: ir.Value, offset: int, type_: ir.IntType) -> ir.Value:
    return b.load(b.gep(header, [ir.Constant(I64, offset)], source_etype=I8), typ=type_)


class _Libc:
    """The libc functions the entry points call, declared in the module."""

    def __init__(self, module: ir.Module) -> None:
        self.malloc = self._declare(module, "malloc", PTR, [I64])
        self.free = self._declare(module, "free", VOID, [PTR])
        self.fopen = self._declare(module, "fopen", PTR, [PTR, PTR])
        self.fread = self._declare(module, "fread", I64, [PTR, I64, I64, PTR])
        self.fclose = self._declare(module, "fclose", I32, [PTR])

    @staticmethod
    def _declare(module: ir.Module, name: str, result: ir.Type, args: list[ir.Type]
                 ) -> ir.Function:
        existing = module.globals.get(name)
        if existing is not None:
            return existing
        return ir.Function(module, ir.FunctionType(result, args), name=name)


def _internal_global(module: ir.Module, name: str, type_: ir.Type,
                     initializer: ir.Constant, constant: bool = False) -> ir.GlobalVariable:
    variable = ir.GlobalVariable(module, type_, name=name)
    variable.initializer = initializer
    variable.linkage = "internal"
    variable.global_constant = constant
    return variable


def emit_entry_points(module: ir.Module, plan: EntryPlan) -> list[str]:
    """Add `<name>_forward`, and `<name>_init` when the weights are a file; return their names."""
    libc = _Libc(module)
    if plan.weights is None:
        return [_emit_forward(module, plan, libc, None).name]
    allocation = _internal_global(module, f"{plan.name}.weights.allocation", PTR,
                                  ir.Constant(PTR, None))
    weights = _internal_global(module, f"{plan.name}.weights", PTR, ir.Constant(PTR, None))
    forward = _emit_forward(module, plan, libc, weights)
    init = _emit_init(module, plan, libc, allocation, weights)
    return [forward.name, init.name]


def _emit_forward(module: ir.Module, plan: EntryPlan, libc: _Libc,
                  weights: ir.GlobalVariable | None) -> ir.Function:
    function = ir.Function(module, ir.FunctionType(I32, [PTR, I64, PTR]),
                           name=f"{plan.name}_forward")
    input_, batch, output = function.args
    input_.name, batch.name, output.name = "input", "batch", "output"
    signature = plan.signature
    b = ir.IRBuilder(function.append_basic_block("entry"))
    block = b.alloca(ir.ArrayType(I64, BLOCK_HEADER + len(signature.external)), name="block")
    _return_if(b, b.or_(_is_null(b, input_), _is_null(b, output)), "ERROR_NULL_POINTER")
    _return_if(b, b.icmp_signed("<=", batch, ir.Constant(I64, 0)), "ERROR_BAD_BATCH")
    _return_if(b, b.icmp_signed(">", batch, ir.Constant(I64, plan.max_batch)),
               "ERROR_OUT_OF_MEMORY")
    base = None
    if weights is not None:
        base = b.load(weights, typ=PTR, name="weights")
        _return_if(b, _is_null(b, base), "ERROR_NOT_INITIALIZED")
    arena_bytes = b.add(b.mul(batch, ir.Constant(I64, signature.arena_bytes.per_example)),
                        ir.Constant(I64, signature.arena_bytes.fixed + ALIGN))
    arena = b.call(libc.malloc, [arena_bytes], name="arena")
    _return_if(b, _is_null(b, arena), "ERROR_OUT_OF_MEMORY")
    workspace = b.call(libc.malloc, [ir.Constant(I64, signature.workspace_bytes + ALIGN)],
                       name="workspace")
    _return_if(b, _is_null(b, workspace), "ERROR_OUT_OF_MEMORY",
               lambda: b.call(libc.free, [arena]))
    words = [batch, _aligned_word(b, arena), _aligned_word(b, workspace)]
    words += [b.ptrtoint(p, I64) for p in _buffer_pointers(b, plan, input_, output, base)]
    for index, word in enumerate(words):
        b.store(word, b.gep(block, [ir.Constant(I32, 0), ir.Constant(I32, index)]))
    b.call(plan.graph_function, [block])
    b.call(libc.free, [workspace])
    b.call(libc.free, [arena])
    b.ret(_code("OK"))
    return function


def _buffer_pointers(b: ir.IRBuilder, plan: EntryPlan, input_: ir.Value, output: ir.Value,
                     base: ir.Value | None) -> list[ir.Value]:
    """The graph's external buffers in block order: its inputs (the caller's input, then each
    weight inside the loaded payload), then its output."""
    pointers = []
    offsets = dict(zip(plan.weights.names, plan.weights.offsets)) if plan.weights else {}
    for value in plan.signature.inputs:
        if value.kind in STATE_KINDS:
            pointers.append(b.gep(base, [ir.Constant(I64, offsets[value.name])],
                                  source_etype=I8))
        else:
            pointers.append(input_)
    return pointers + [output]


def _emit_init(module: ir.Module, plan: EntryPlan, libc: _Libc,
               allocation: ir.GlobalVariable, weights: ir.GlobalVariable) -> ir.Function:
    assert plan.weights is not None
    payload_bytes = plan.weights.payload_bytes
    function = ir.Function(module, ir.FunctionType(I32, [PTR]), name=f"{plan.name}_init")
    (path,) = function.args
    path.name = "weights_path"
    b = ir.IRBuilder(function.append_basic_block("entry"))
    header = b.alloca(ir.ArrayType(I8, file_format.HEADER.size), name="header")
    header.align = 8
    mode = _internal_global(module, f"{plan.name}.read_mode", ir.ArrayType(I8, 3),
                            ir.Constant(ir.ArrayType(I8, 3), bytearray(b"rb\0")), constant=True)
    _return_if(b, _is_null(b, path), "ERROR_NULL_POINTER")
    file = b.call(libc.fopen, [path, mode], name="file")
    _return_if(b, _is_null(b, file), "ERROR_WEIGHTS_UNREADABLE")

    def close() -> None:
        b.call(libc.fclose, [file])

    def short_read(buffer: ir.Value, nbytes: int, expected: int) -> ir.Value:
        got = b.call(libc.fread, [buffer, ir.Constant(I64, 1), ir.Constant(I64, nbytes), file])
        return b.icmp_unsigned("!=", got, ir.Constant(I64, expected))

    _return_if(b, short_read(header, file_format.HEADER.size, file_format.HEADER.size),
               "ERROR_WEIGHTS_FORMAT", close)
    _return_if(b, _header_differs(b, header, [
        (file_format.MAGIC_AT, I64, int.from_bytes(file_format.MAGIC, "little")),
        (file_format.VERSION_AT, I32, file_format.VERSION)]), "ERROR_WEIGHTS_FORMAT", close)
    _return_if(b, _header_differs(b, header, [
        (file_format.COUNT_AT, I32, len(plan.weights.arrays)),
        (file_format.LAYOUT_AT, I64, plan.weights.layout_hash()),
        (file_format.PAYLOAD_AT, I64, payload_bytes)]), "ERROR_WEIGHTS_MISMATCH", close)
    fresh = b.call(libc.malloc, [ir.Constant(I64, payload_bytes + ALIGN)], name="allocation")
    _return_if(b, _is_null(b, fresh), "ERROR_OUT_OF_MEMORY", close)
    data = b.inttoptr(_aligned_word(b, fresh), PTR, name="payload")

    def free_and_close() -> None:
        b.call(libc.free, [fresh])
        close()

    _return_if(b, short_read(data, payload_bytes, payload_bytes), "ERROR_WEIGHTS_CORRUPT",
               free_and_close)
    _return_if(b, short_read(header, 1, 0), "ERROR_WEIGHTS_CORRUPT", free_and_close)  # too long
    close()
    stored = b.gep(header, [ir.Constant(I64, file_format.DIGEST_AT)], source_etype=I8)
    _return_if(b, emit_digest_differs(b, module, plan.name, data, payload_bytes, stored),
               "ERROR_WEIGHTS_CORRUPT", lambda: b.call(libc.free, [fresh]))
    previous = b.load(allocation, typ=PTR)
    b.store(fresh, allocation)
    b.store(data, weights)
    b.call(libc.free, [previous])
    b.ret(_code("OK"))
    return function


def _header_differs(b: ir.IRBuilder, header: ir.Value,
                    fields: list[tuple[int, ir.IntType, int]]) -> ir.Value:
    """Whether any (offset, type, expected value) field of the header holds another value."""
    differs = ir.Constant(I1, 0)
    for offset, type_, expected in fields:
        value = _i64(expected) if type_ == I64 else ir.Constant(type_, expected)
        differs = b.or_(differs, b.icmp_unsigned("!=", _field(b, header, offset, type_), value))
    return differs
