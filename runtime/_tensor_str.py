"""The text of ``repr(tensor)``, character for character as PyTorch prints it.

This module owns tensor printing: choosing fixed, integer or scientific notation, aligning columns,
nesting brackets, summarising large tensors with ``...``, wrapping at 80 columns, and placing the
``dtype=`` / ``requires_grad=`` / ``grad_fn=`` suffixes.  It is a pure function of a numpy array and
strings the caller has already formed; it must never import torch or the runtime's tensor class.

PyTorch's default print options are fixed here (precision 4, threshold 1000, edge items 3, line
width 80); ``set_printoptions`` is not supported.

    >>> import numpy as np
    >>> print(format_tensor(np.array([[1.0, -2.5], [0.125, 4.0]]), dtype_name="runtime.float64",
    ...                     is_default_dtype=False, suffixes=["requires_grad=True"]))
    tensor([[ 1.0000, -2.5000],
            [ 0.1250,  4.0000]], dtype=runtime.float64, requires_grad=True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

PRECISION = 4  # digits after the decimal point
THRESHOLD = 1000  # more elements than this are summarised with "..."
EDGEITEMS = 3  # elements kept at each end of a summarised dimension
LINEWIDTH = 80  # columns before a row of elements or the suffixes wrap


class _ElementFormatter(Protocol):
    @property
    def width(self) -> int: ...

    def format(self, value: Any) -> str: ...


def format_tensor(
    data: np.ndarray,
    *,
    dtype_name: str,
    is_default_dtype: bool,
    suffixes: list[str],
    prefix: str = "tensor(",
) -> str:
    """Return ``repr`` of a tensor holding ``data``, exactly as PyTorch formats it.

    ``dtype_name`` is the text after ``dtype=`` (e.g. ``"runtime.float64"``); it is shown when
    ``is_default_dtype`` is false.  Bool tensors never show it.  Empty tensors show it unless they
    are floating point of the default dtype, because ``[]`` alone does not reveal the dtype.
    ``suffixes`` (e.g. ``["grad_fn=<AddBackward0>"]``) follow the dtype, in the order given.
    """
    if data.dtype.kind not in "biufc":
        raise TypeError(
            f"cannot print an array of numpy dtype {data.dtype}; "
            "expected a bool, integer, floating or complex array"
        )
    indent = len(prefix)
    all_suffixes = _shape_and_dtype_suffixes(data, dtype_name, is_default_dtype) + list(suffixes)
    return _append_suffixes(prefix + _contents_str(data, indent), all_suffixes, indent)


def _shape_and_dtype_suffixes(
    data: np.ndarray, dtype_name: str, is_default_dtype: bool
) -> list[str]:
    dtype_suffix = "dtype=" + dtype_name
    if data.size == 0:
        size_suffix = [f"size={tuple(data.shape)}"] if data.ndim != 1 else []
        # PyTorch compares an empty tensor's dtype against the default *floating* dtype only.
        shows_dtype = not (is_default_dtype and data.dtype.kind == "f")
        return size_suffix + ([dtype_suffix] if shows_dtype else [])
    if is_default_dtype or data.dtype.kind == "b":
        return []
    return [dtype_suffix]


def _append_suffixes(text: str, suffixes: list[str], indent: int) -> str:
    parts = [text]
    # PyTorch's measure of the last line (it counts two columns more than are there).
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


# -- the bracketed contents ------------------------------------------------------------------------


def _contents_str(data: np.ndarray, indent: int) -> str:
    if data.size == 0:
        return "[]"
    summarize = data.size > THRESHOLD
    # Column widths are measured over the elements that will actually be printed.
    shown = _summarized(data) if summarize else data
    formatter = _formatter_for(shown)
    if data.ndim == 0:
        return formatter.format(data.item())
    return _nested_str(data, indent, summarize, formatter)


def _summarized(data: np.ndarray) -> np.ndarray:
    """Keep only the first and last EDGEITEMS entries along every dimension that is longer."""
    for axis, size in enumerate(data.shape):
        if size > 2 * EDGEITEMS:
            edges = list(range(EDGEITEMS)) + list(range(size - EDGEITEMS, size))
            data = np.take(data, edges, axis=axis)
    return data


def _nested_str(
    data: np.ndarray, indent: int, summarize: bool, formatter: _ElementFormatter
) -> str:
    if data.ndim == 1:
        return _row_str(data, indent, summarize, formatter)
    if summarize and len(data) > 2 * EDGEITEMS:
        rows = [*data[:EDGEITEMS], None, *data[-EDGEITEMS:]]
    else:
        rows = list(data)
    slices = [
        "..." if sub is None else _nested_str(sub, indent + 1, summarize, formatter) for sub in rows
    ]
    # One blank line between matrices, two between 3-d blocks, and so on.
    separator = "," + "\n" * (data.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(slices) + "]"


def _row_str(data: np.ndarray, indent: int, summarize: bool, formatter: _ElementFormatter) -> str:
    if summarize and len(data) > 2 * EDGEITEMS:
        items = (
            [formatter.format(v) for v in data[:EDGEITEMS].tolist()]
            + [" ..."]
            + [formatter.format(v) for v in data[-EDGEITEMS:].tolist()]
        )
    else:
        items = [formatter.format(v) for v in data.tolist()]
    element_length = formatter.width + 2  # ", " between elements
    per_line = max(1, (LINEWIDTH - indent) // element_length)
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


# -- formatting one element ----------------------------------------------------------------------


def _formatter_for(shown: np.ndarray) -> _ElementFormatter:
    values = shown.reshape(-1)
    kind = values.dtype.kind
    if kind == "c":
        return _ComplexFormatter(_float_formatter(values.real), _float_formatter(values.imag))
    if kind == "f":
        return _float_formatter(values)
    return _PlainFormatter(max([1] + [len(str(v)) for v in values.tolist()]))


@dataclass(frozen=True)
class _PlainFormatter:
    """Integers and bools: ``str`` of the value, right-aligned."""

    width: int

    def format(self, value: Any) -> str:
        return str(value).rjust(self.width)


@dataclass(frozen=True)
class _FloatFormatter:
    """Floats in one of three notations, chosen once for the whole tensor, right-aligned."""

    width: int
    sci_mode: bool
    int_mode: bool

    def format(self, value: float) -> str:
        if self.sci_mode:
            text = f"{value:.{PRECISION}e}"
        elif self.int_mode:
            # A trailing "." marks whole numbers as floats; nan and inf need no marker.
            text = f"{value:.0f}" + ("" if math.isinf(value) or math.isnan(value) else ".")
        else:
            text = f"{value:.{PRECISION}f}"
        return text.rjust(self.width)


def _float_formatter(values: np.ndarray) -> _FloatFormatter:
    finite = values[np.isfinite(values) & (values != 0)]
    if finite.size == 0:
        return _FloatFormatter(width=1, sci_mode=False, int_mode=True)
    magnitudes = np.abs(finite).astype(np.float64)
    largest, smallest = magnitudes.max(), magnitudes.min()
    with np.errstate(over="ignore"):
        ratio = largest / smallest
    sci_mode = bool(ratio > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4)
    int_mode = bool(np.all(finite == np.ceil(finite)))
    numbers = finite.tolist()
    if sci_mode:
        width = max(len(f"{v:.{PRECISION}e}") for v in numbers)
    elif int_mode:
        width = max(len(f"{v:.0f}") + 1 for v in numbers)  # + 1 for the trailing "."
    else:
        width = max(len(f"{v:.{PRECISION}f}") for v in numbers)
    return _FloatFormatter(width=max(1, width), sci_mode=sci_mode, int_mode=int_mode)


@dataclass(frozen=True)
class _ComplexFormatter:
    """``real+imagj``, each part formatted by its own float formatter."""

    real: _FloatFormatter
    imag: _FloatFormatter

    @property
    def width(self) -> int:
        return self.real.width + self.imag.width + 1  # + 1 for the "j"

    def format(self, value: complex) -> str:
        imag_text = (self.imag.format(value.imag) + "j").lstrip()
        sign = "" if imag_text[0] in "+-" else "+"
        return self.real.format(value.real) + sign + imag_text
