"""Lowering of convolution and its two derivatives (runtime/ops/conv.py) as GEMMs, one sample at
a time, on the threaded GEMM that matrix products call.

For each sample the input's patches are copied into columns (im2col) in a scratch buffer of the
workspace, one sample's worth (C * prod(K) rows, prod(S_out) columns: never the whole batch's):
- convolution: out_n (O, P) = W (O, C*K) @ cols (C*K, P), started from the bias when there is one;
- convolution_input_grad: cols = W^T @ g_n, then added back into the input's shape (col2im);
- convolution_weight_grad: dW (O, C*K) += g_n (O, P) @ cols^T, summed over the batch in order.
Groups take their slices of W, of the columns and of the output in turn. A 1-D convolution is
the 2-D one with a height of 1. Spatial sizes are integers; the batch size may be symbolic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llvmlite import ir

from compiler.ir import Node, Value
from compiler.lowering.context import FunctionLowering, Rule
from compiler.lowering.elements import check_float, load
from compiler.lowering.expressions import FLOAT_FLAGS
from compiler.lowering.llvm_types import I32, I64, llvm_type
from compiler.lowering.loops import counted_range


@dataclass(frozen=True)
class Geometry:
    """A convolution seen as 2-D: sizes, and each spatial attribute as (height, width)."""

    channels: int  # input channels, all groups
    size: tuple[int, int]  # input (H, W)
    kernel: tuple[int, int]
    out: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]  # low side; the high side only shortens `out`
    dilation: tuple[int, int]
    out_channels: int
    groups: int

    @property
    def positions(self) -> int:
        """Output positions per channel: the columns of the patch matrix."""
        return self.out[0] * self.out[1]

    @property
    def group_rows(self) -> int:
        """Rows of the patch matrix per group: C/groups * kernel positions."""
        return self.channels // self.groups * self.kernel[0] * self.kernel[1]

    @property
    def rows(self) -> int:
        return self.group_rows * self.groups


def _as_2d(values: tuple[Any, ...], fill: Any) -> tuple[Any, Any]:
    return (fill, values[0]) if len(values) == 1 else (values[0], values[1])


def geometry(input_shape: tuple[Any, ...], weight_shape: tuple[Any, ...],
             out_shape: tuple[Any, ...], attrs: dict[str, Any]) -> Geometry:
    """The 2-D geometry of a convolution of `input_shape` by `weight_shape` into `out_shape`."""
    return Geometry(
        channels=int(input_shape[1]), size=_as_2d(tuple(input_shape[2:]), 1),
        kernel=_as_2d(tuple(weight_shape[2:]), 1), out=_as_2d(tuple(out_shape[2:]), 1),
        stride=_as_2d(tuple(attrs["stride"]), 1),
        padding=_as_2d(tuple(lo for lo, _ in attrs["padding"]), 0),
        dilation=_as_2d(tuple(attrs["dilation"]), 1),
        out_channels=int(weight_shape[0]), groups=int(attrs["groups"]))


def _const(n: int) -> ir.Constant:
    return ir.Constant(I64, n)


def _patch_walk(low: FunctionLowering, geo: Geometry,
                body: Callable[[ir.Value, ir.Value, ir.Value | None], None]) -> None:
    """For every (patch row, output position): body(column offset, input offset within the
    sample, whether the input element exists (False in the padding))."""
    b = low.builder
    (height, width), (kh, kw) = geo.size, geo.kernel
    padded = any(geo.padding)
    with counted_range(b, _const(0), _const(geo.channels), name="c") as c:
        with counted_range(b, _const(0), _const(kh), name="kh") as i:
            with counted_range(b, _const(0), _const(kw), name="kw") as j:
                row = b.add(b.mul(b.add(b.mul(c, _const(kh)), i), _const(kw)), j)
                row_start = b.mul(row, _const(geo.positions))
                channel_start = b.mul(c, _const(height * width))
                column_shift = b.sub(b.mul(j, _const(geo.dilation[1])), _const(geo.padding[1]))
                with counted_range(b, _const(0), _const(geo.out[0]), name="oh") as oh:
                    ih = b.add(b.mul(oh, _const(geo.stride[0])),
                               b.sub(b.mul(i, _const(geo.dilation[0])), _const(geo.padding[0])))
                    inside_rows = b.icmp_unsigned("<", ih, _const(height))
                    source_row = b.add(channel_start, b.mul(ih, _const(width)))
                    target_row = b.add(row_start, b.mul(oh, _const(geo.out[1])))
                    with counted_range(b, _const(0), _const(geo.out[1]), name="ow") as ow:
                        iw = b.add(b.mul(ow, _const(geo.stride[1])), column_shift)
                        inside = b.and_(inside_rows, b.icmp_unsigned("<", iw, _const(width))) \
                            if padded else None
                        body(b.add(target_row, ow), b.add(source_row, iw), inside)


def _im2col(low: FunctionLowering, x: Value, sample_start: ir.Value, geo: Geometry,
            columns: ir.Value) -> None:
    """columns (rows, positions) = the patches of sample x[n] (zero in the padding)."""
    b = low.builder
    element = llvm_type(x.dtype)

    def body(column: ir.Value, source: ir.Value, inside: ir.Value | None) -> None:
        if inside is None:
            value = b.load(low.element_pointer(x, b.add(sample_start, source)), typ=element)
        else:  # read a valid address either way, keep zero where outside
            safe = b.select(inside, source, _const(0))
            value = b.load(low.element_pointer(x, b.add(sample_start, safe)), typ=element)
            value = b.select(inside, value, ir.Constant(element, 0.0))
        b.store(value, b.gep(columns, [column], source_etype=element, inbounds=True))

    _patch_walk(low, geo, body)


def _col2im(low: FunctionLowering, out: Value, sample_start: ir.Value, geo: Geometry,
            columns: ir.Value) -> None:
    """out[n] (zeroed first) += each column element at the input position it was read from."""
    b = low.builder
    element = llvm_type(out.dtype)
    with counted_range(b, _const(0), _const(geo.channels * geo.size[0] * geo.size[1]),
                       name="zero") as i:
        b.store(ir.Constant(element, 0.0), low.element_pointer(out, b.add(sample_start, i)))
    if geo.stride[1] == 1:
        _col2im_by_input_rows(low, out, sample_start, geo, columns)
        return

    def body(column: ir.Value, target: ir.Value, inside: ir.Value | None) -> None:
        value = b.load(b.gep(columns, [column], source_etype=element, inbounds=True),
                       typ=element)
        if inside is None:
            _add_to(low, out, b.add(sample_start, target), value)
            return
        with b.if_then(inside):
            _add_to(low, out, b.add(sample_start, target), value)

    _patch_walk(low, geo, body)


def _col2im_by_input_rows(low: FunctionLowering, out: Value, sample_start: ir.Value,
                          geo: Geometry, columns: ir.Value) -> None:
    """col2im when the width stride is 1: each input row gathers, kernel position by kernel
    position, the shifted run of columns that reads it. Every pass adds into the same run of
    the row (the store of one pass forwards to the loads of the next, which a pass per patch
    row, shifted by one element each time, defeats: it ran 6x slower)."""
    b = low.builder
    element = llvm_type(out.dtype)
    (height, width), (kh, kw), (out_h, out_w) = geo.size, geo.kernel, geo.out
    with counted_range(b, _const(0), _const(geo.channels), name="c") as c:
        with counted_range(b, _const(0), _const(height), name="ih") as ih:
            target_row = b.add(sample_start, b.mul(b.add(b.mul(c, _const(height)), ih),
                                                   _const(width)))
            with counted_range(b, _const(0), _const(kh), name="kh") as i:
                # ih = oh * stride + i * dilation - padding
                shifted = b.sub(b.add(ih, _const(geo.padding[0])),
                                b.mul(i, _const(geo.dilation[0])))
                oh = b.sdiv(shifted, _const(geo.stride[0]))
                row_exists = b.and_(b.icmp_unsigned("<", oh, _const(out_h)), b.icmp_signed(
                    "==", b.mul(oh, _const(geo.stride[0])), shifted))
                row_exists = b.and_(row_exists, b.icmp_signed(">=", shifted, _const(0)))
                with b.if_then(row_exists):
                    with counted_range(b, _const(0), _const(kw), name="kw") as j:
                        # iw = ow + j * dilation - padding
                        shift = b.sub(_const(geo.padding[1]), b.mul(j, _const(geo.dilation[1])))
                        first = _maximum(b, _const(0), b.sub(_const(0), shift))
                        last = _minimum(b, _const(width), b.sub(_const(out_w), shift))
                        row = b.add(b.mul(b.add(b.mul(c, _const(kh)), i), _const(kw)), j)
                        source_row = b.add(b.add(b.mul(row, _const(geo.positions)),
                                                 b.mul(oh, _const(out_w))), shift)
                        with counted_range(b, first, last, name="iw") as iw:
                            value = b.load(b.gep(columns, [b.add(source_row, iw)],
                                                 source_etype=element, inbounds=True),
                                           typ=element)
                            _add_to(low, out, b.add(target_row, iw), value)


def _minimum(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y), x, y)


def _maximum(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed(">", x, y), x, y)


def _add_to(low: FunctionLowering, value: Value, offset: ir.Value, addend: ir.Value) -> None:
    b = low.builder
    pointer = low.element_pointer(value, offset)
    b.store(b.fadd(b.load(pointer, typ=addend.type), addend, flags=FLOAT_FLAGS), pointer)


def _gemm(low: FunctionLowering, dtype: Any, m: int, n: int, k: int,
          a: ir.Value, a_strides: tuple[int, int], b_matrix: ir.Value,
          b_strides: tuple[int, int], c: ir.Value, ldc: int, accumulate: bool) -> None:
    gemm = low.gemm_function(dtype)
    low.note_gemm(dtype, m, n, k)
    low.builder.call(gemm, [_const(m), _const(n), _const(k), a, *map(_const, a_strides),
                            b_matrix, *map(_const, b_strides), c, _const(ldc),
                            ir.Constant(I32, int(accumulate)), low.workspace])


def _scratch_at(low: FunctionLowering, dtype: Any, columns: ir.Value,
                offset: ir.Value) -> ir.Value:
    return low.builder.gep(columns, [offset], source_etype=llvm_type(dtype), inbounds=True)


def convolution(low: FunctionLowering, node: Node) -> None:
    x, w = node.inputs[:2]
    bias = node.inputs[2] if len(node.inputs) == 3 else None
    out = node.output
    check_float(node, x, w)
    geo = geometry(x.shape, w.shape, out.shape, node.attrs)
    b = low.builder
    columns = low.scratch(x.dtype, geo.rows * geo.positions)
    per_group = geo.out_channels // geo.groups
    sample_in = geo.channels * geo.size[0] * geo.size[1]
    sample_out = geo.out_channels * geo.positions
    with counted_range(b, _const(0), low.size(x.shape[0]), name="sample") as n:
        _im2col(low, x, b.mul(n, _const(sample_in)), geo, columns)
        out_start = b.mul(n, _const(sample_out))
        if bias is not None:
            _fill_with_bias(low, bias, out, out_start, geo)
        with counted_range(b, _const(0), _const(geo.groups), name="group") as g:
            _gemm(low, out.dtype, per_group, geo.positions, geo.group_rows,
                  low.element_pointer(w, b.mul(g, _const(per_group * geo.group_rows))),
                  (geo.group_rows, 1),
                  _scratch_at(low, x.dtype, columns,
                              b.mul(g, _const(geo.group_rows * geo.positions))),
                  (geo.positions, 1),
                  low.element_pointer(out, b.add(out_start,
                                                 b.mul(g, _const(per_group * geo.positions)))),
                  geo.positions, accumulate=bias is not None)


def _fill_with_bias(low: FunctionLowering, bias: Value, out: Value, out_start: ir.Value,
                    geo: Geometry) -> None:
    b = low.builder
    element = llvm_type(out.dtype)
    with counted_range(b, _const(0), _const(geo.out_channels), name="o") as o:
        value = load(low, bias, o, element)
        row = b.add(out_start, b.mul(o, _const(geo.positions)))
        with counted_range(b, _const(0), _const(geo.positions), name="p") as p:
            b.store(value, low.element_pointer(out, b.add(row, p)))


def convolution_input_grad(low: FunctionLowering, node: Node) -> None:
    grad, w = node.inputs
    out = node.output
    check_float(node, grad, w)
    geo = geometry(out.shape, w.shape, grad.shape, node.attrs)
    b = low.builder
    columns = low.scratch(out.dtype, geo.rows * geo.positions)
    per_group = geo.out_channels // geo.groups
    sample_in = geo.channels * geo.size[0] * geo.size[1]
    sample_out = geo.out_channels * geo.positions
    with counted_range(b, _const(0), low.size(grad.shape[0]), name="sample") as n:
        grad_start = b.mul(n, _const(sample_out))
        with counted_range(b, _const(0), _const(geo.groups), name="group") as g:
            # columns_g (C/G*K, P) = W_g^T (C/G*K, O/G) @ grad_g (O/G, P)
            _gemm(low, out.dtype, geo.group_rows, geo.positions, per_group,
                  low.element_pointer(w, b.mul(g, _const(per_group * geo.group_rows))),
                  (1, geo.group_rows),
                  low.element_pointer(grad, b.add(grad_start,
                                                  b.mul(g, _const(per_group * geo.positions)))),
                  (geo.positions, 1),
                  _scratch_at(low, out.dtype, columns,
                              b.mul(g, _const(geo.group_rows * geo.positions))),
                  geo.positions, accumulate=False)
        _col2im(low, out, b.mul(n, _const(sample_in)), geo, columns)


def convolution_weight_grad(low: FunctionLowering, node: Node) -> None:
    x, grad = node.inputs
    out = node.output
    check_float(node, x, grad)
    geo = geometry(x.shape, out.shape, grad.shape, node.attrs)
    b = low.builder
    element = llvm_type(out.dtype)
    with counted_range(b, _const(0), _const(geo.out_channels * geo.group_rows), name="zero") as i:
        b.store(ir.Constant(element, 0.0), low.element_pointer(out, i))
    columns = low.scratch(x.dtype, geo.rows * geo.positions)
    per_group = geo.out_channels // geo.groups
    sample_in = geo.channels * geo.size[0] * geo.size[1]
    sample_out = geo.out_channels * geo.positions
    with counted_range(b, _const(0), low.size(x.shape[0]), name="sample") as n:
        _im2col(low, x, b.mul(n, _const(sample_in)), geo, columns)
        grad_start = b.mul(n, _const(sample_out))
        with counted_range(b, _const(0), _const(geo.groups), name="group") as g:
            # dW_g (O/G, C/G*K) += grad_g (O/G, P) @ columns_g^T (P, C/G*K)
            _gemm(low, out.dtype, per_group, geo.group_rows, geo.positions,
                  low.element_pointer(grad, b.add(grad_start,
                                                  b.mul(g, _const(per_group * geo.positions)))),
                  (geo.positions, 1),
                  _scratch_at(low, x.dtype, columns,
                              b.mul(g, _const(geo.group_rows * geo.positions))),
                  (1, geo.positions),
                  low.element_pointer(out, b.mul(g, _const(per_group * geo.group_rows))),
                  geo.group_rows, accumulate=True)


RULES: dict[str, Rule] = {
    "convolution": convolution,
    "convolution_input_grad": convolution_input_grad,
    "convolution_weight_grad": convolution_weight_grad,
}
