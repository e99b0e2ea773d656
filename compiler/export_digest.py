"""SHA-256 emitted as LLVM IR, for the exported loader to check a weights file's payload.

The exported library may call nothing but libc, so the hash is generated code: an internal
function compressing one 64-byte block (FIPS 180-4, its 64 rounds written out), called for each
block of the payload and then for the padding block. A payload is always a whole number of
blocks (export_weights.py pads every tensor to 64 bytes), so its padding is one block known when
the library is generated. `hashlib.sha256` computes the same digest on the writing side. This
module emits IR only; it knows nothing of files or models.
"""

from __future__ import annotations

from llvmlite import ir

from compiler.lowering.llvm_types import I1, I8, I32, I64, PTR
from compiler.lowering.loops import counted_loop

BLOCK = 64
DIGEST_WORDS = 8

INITIAL_STATE = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
ROUND_CONSTANTS = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)


def _word(value: int) -> ir.Constant:
    """An i32 constant from an unsigned 32-bit value (LLVM's text wants the signed spelling)."""
    return ir.Constant(I32, value - (1 << 32) if value >= 1 << 31 else value)


def padding_block(message_bytes: int) -> bytes:
    """The block SHA-256 appends to a message of whole blocks: 0x80, zeros, its bit length."""
    assert message_bytes % BLOCK == 0
    return b"\x80" + bytes(BLOCK - 9) + (8 * message_bytes).to_bytes(8, "big")


def emit_compress(module: ir.Module, name: str) -> ir.Function:
    """`void name(i32 *state, i8 *block)`: fold one 64-byte block into the 8-word state."""
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR]), name=name)
    function.linkage = "internal"
    state, block = function.args
    b = ir.IRBuilder(function.append_basic_block("entry"))

    def load(pointer: ir.Value, index: int) -> ir.Value:
        return b.load(b.gep(pointer, [ir.Constant(I64, index)], source_etype=I32), typ=I32,
                      align=1)

    def rotate(x: ir.Value, n: int) -> ir.Value:
        return b.or_(b.lshr(x, _word(n)), b.shl(x, _word(32 - n)))

    def xor3(x: ir.Value, y: ir.Value, z: ir.Value) -> ir.Value:
        return b.xor(b.xor(x, y), z)

    schedule = [b.bswap(load(block, t)) for t in range(16)]  # big-endian words
    for t in range(16, 64):
        back15, back2 = schedule[t - 15], schedule[t - 2]
        sigma0 = xor3(rotate(back15, 7), rotate(back15, 18), b.lshr(back15, _word(3)))
        sigma1 = xor3(rotate(back2, 17), rotate(back2, 19), b.lshr(back2, _word(10)))
        schedule.append(b.add(b.add(schedule[t - 16], sigma0), b.add(schedule[t - 7], sigma1)))
    initial = [load(state, i) for i in range(DIGEST_WORDS)]
    a, b_, c, d, e, f, g, h = initial
    for t in range(64):
        big_sigma1 = xor3(rotate(e, 6), rotate(e, 11), rotate(e, 25))
        choose = b.xor(b.and_(e, f), b.and_(b.not_(e), g))
        first = b.add(b.add(h, big_sigma1), b.add(choose, b.add(_word(ROUND_CONSTANTS[t]),
                                                                  schedule[t])))
        big_sigma0 = xor3(rotate(a, 2), rotate(a, 13), rotate(a, 22))
        majority = xor3(b.and_(a, b_), b.and_(a, c), b.and_(b_, c))
        second = b.add(big_sigma0, majority)
        a, b_, c, d, e, f, g, h = b.add(first, second), a, b_, c, b.add(d, first), e, f, g
    for i, (old, new) in enumerate(zip(initial, (a, b_, c, d, e, f, g, h))):
        b.store(b.add(old, new), b.gep(state, [ir.Constant(I64, i)], source_etype=I32))
    b.ret_void()
    return function


def emit_digest_differs(b: ir.IRBuilder, module: ir.Module, prefix: str, data: ir.Value,
                        message_bytes: int, expected: ir.Value) -> ir.Value:
    """Whether SHA-256 of the `message_bytes` bytes at `data` (a whole number of blocks) differs
    from the 32 bytes at `expected`; an i1."""
    compress = module.globals.get(f"{prefix}.sha256_block") or emit_compress(
        module, f"{prefix}.sha256_block")
    padding = ir.GlobalVariable(module, ir.ArrayType(I8, BLOCK), name=f"{prefix}.sha256_padding")
    padding.initializer = ir.Constant(ir.ArrayType(I8, BLOCK),
                                      bytearray(padding_block(message_bytes)))
    padding.linkage = "internal"
    padding.global_constant = True
    state = b.alloca(ir.ArrayType(I32, DIGEST_WORDS), name="sha256_state")
    for i, word in enumerate(INITIAL_STATE):
        b.store(_word(word), b.gep(state, [ir.Constant(I32, 0), ir.Constant(I32, i)]))

    def compress_block(i: ir.Value) -> None:
        offset = b.mul(i, ir.Constant(I64, BLOCK))
        b.call(compress, [state, b.gep(data, [offset], source_etype=I8)])

    counted_loop(b, ir.Constant(I64, message_bytes // BLOCK), compress_block, name="block")
    b.call(compress, [state, padding])
    differs = ir.Constant(I1, 0)
    for i in range(DIGEST_WORDS):
        word = b.load(b.gep(state, [ir.Constant(I32, 0), ir.Constant(I32, i)]), typ=I32)
        stored = b.load(b.gep(expected, [ir.Constant(I64, 4 * i)], source_etype=I8), typ=I32,
                        align=1)
        differs = b.or_(differs, b.icmp_unsigned("!=", b.bswap(word), stored))
    return differs
