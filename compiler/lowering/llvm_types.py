"""The LLVM types of lowering, named once: integer widths, the opaque pointer, the floats, and
the element type of each dtype.

Every module that emits IR takes its types from here, so `I64` means the same object everywhere
and a dtype's element type is decided in one place.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()  # opaque: every pointer has this type
VOID = ir.VoidType()
FLOAT = ir.FloatType()
DOUBLE = ir.DoubleType()

_ELEMENT_TYPES = {"float32": FLOAT, "float64": DOUBLE, "int64": I64, "int32": I32, "int16": I16,
                  "int8": I8, "uint8": I8, "bool": I8}


def llvm_type(dtype: Any) -> ir.Type:
    """The LLVM type of one element of `dtype` (a bool is a byte in memory)."""
    return _ELEMENT_TYPES[dtype.name]


def float_type_of(dtype: Any) -> ir.Type:
    """The float type that arithmetic on `dtype` uses: double for float64, else float."""
    return DOUBLE if dtype.name == "float64" else FLOAT


def element_type(dtype_name: str) -> ir.Type:
    """The LLVM float type of a GEMM's dtype, "float32" or "float64"."""
    return FLOAT if dtype_name == "float32" else DOUBLE
