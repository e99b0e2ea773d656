"""One lowering rule per op, found by the op's name: how each node becomes loops in LLVM IR.

Every elementwise op -- a runtime primitive, a derivative op, or a fused region -- is lowered by
`elementwise`, from its sympy expression. Copies of every kind (expand, permute, clone, dtype
conversion, reshape when it cannot alias, basic slicing, cat) are strided nests. Reductions
accumulate through a nest whose output strides are 0 on reduced dimensions; a sum over a long
dimension adds in levels (`cascade_sum.py`), as accurately as PyTorch's. matmul calls the
packed GEMM of `gemm.py`; softmax walks rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sympy
from llvmlite import ir

from compiler.errors import CompileError
from compiler.ir import Node, Value
from compiler.lowering.cascade_sum import emit_cascade, plan_cascade
from compiler.lowering.expressions import FLOAT_FLAGS, ExpressionEmitter, lowerable
from compiler.lowering.llvm_types import DOUBLE, FLOAT, I1, I8, I32, I64, llvm_type
from compiler.lowering.loops import (
    contiguous_strides,
    counted_loop,
    merge_dimensions,
    strided_nest,
)
from compiler.lowering.vector_math import emit_exp, emit_log
from runtime.ops._broadcast import broadcast_shapes
from runtime.ops.elementwise import Elementwise

if TYPE_CHECKING:
    from compiler.lowering.codegen import FunctionLowering

Rule = Callable[["FunctionLowering", Node], None]
RULES: dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for name in names:
            RULES[name] = fn
        return fn

    return register


def rule_for(node: Node) -> Rule | None:
    if isinstance(node.op, Elementwise):
        return elementwise
    return RULES.get(node.op_name)


# ----- loading and storing with conversion --------------------------------------------------------

def _float_type(dtype: Any) -> ir.Type:
    return DOUBLE if dtype.name == "float64" else FLOAT


def convert(builder: ir.IRBuilder, value: ir.Value, source: Any, target_type: ir.Type,
            target: Any | None = None) -> ir.Value:
    """Convert an element of dtype `source` to LLVM type `target_type` (dtype `target`)."""
    src_type = llvm_type(source)
    if src_type == target_type:
        return value
    float_target = isinstance(target_type, (ir.FloatType, ir.DoubleType))
    if source.is_floating_point and float_target:
        wider = isinstance(target_type, ir.DoubleType)
        return builder.fpext(value, target_type) if wider else builder.fptrunc(value, target_type)
    if source.is_floating_point:  # float -> integer or bool
        if target is not None and target.name == "bool":
            nonzero = builder.fcmp_unordered("!=", value, ir.Constant(src_type, 0.0))
            return builder.zext(nonzero, target_type)
        return builder.fptosi(value, target_type)
    if float_target:
        return builder.uitofp(value, target_type) if source.name in ("bool", "uint8") \
            else builder.sitofp(value, target_type)
    if src_type.width < target_type.width:
        return builder.zext(value, target_type) if source.name in ("bool", "uint8") \
            else builder.sext(value, target_type)
    if target is not None and target.name == "bool":
        return builder.zext(builder.icmp_signed("!=", value, ir.Constant(src_type, 0)),
                            target_type)
    return builder.trunc(value, target_type)


def load(low: FunctionLowering, value: Value, offset: ir.Value, as_type: ir.Type) -> ir.Value:
    raw = low.builder.load(low.element_pointer(value, offset), typ=llvm_type(value.dtype))
    return convert(low.builder, raw, value.dtype, as_type)


def store(low: FunctionLowering, value: Value, offset: ir.Value, element: ir.Value,
          from_dtype: Any) -> None:
    converted = convert(low.builder, element, from_dtype, llvm_type(value.dtype), value.dtype)
    low.builder.store(converted, low.element_pointer(value, offset))


def broadcast_strides(value: Value, out_shape: Sequence[Any]) -> list[Any]:
    """Element strides of contiguous `value` walked along `out_shape` (0 where broadcast)."""
    own = contiguous_strides(value.shape)
    lead = len(out_shape) - len(value.shape)
    result = []
    for i in range(len(out_shape)):
        if i < lead:
            result.append(0)
            continue
        size = value.shape[i - lead]
        result.append(0 if size == 1 and out_shape[i] != 1 else own[i - lead])
    return result


def nest(low: FunctionLowering, shape: Sequence[Any], strides: Sequence[Sequence[Any]],
         body: Callable[[list[ir.Value]], None], bases: Sequence[Any] | None = None) -> None:
    """A strided nest with sizes and strides given as ints or expressions of N."""
    merged_shape, merged_strides = merge_dimensions(shape, strides)
    sizes = [low.size(s) for s in merged_shape]
    ir_strides = [[low.size(s) for s in per_operand] for per_operand in merged_strides]
    start = [low.size(b) for b in (bases or [0] * len(strides))]
    strided_nest(low.builder, sizes, ir_strides, start, body)


def _check_float(node: Node, *values: Value) -> None:
    for v in values:
        if not v.dtype.is_floating_point:
            raise CompileError(f"op '{node.op_name}' on {v.dtype} values is not supported by the "
                               "compiler (floating point only)", node.op_name, node.origin)


# ----- elementwise --------------------------------------------------------------------------------

def elementwise(low: FunctionLowering, node: Node) -> None:
    op: Elementwise = node.op
    out = node.output
    compute_dtype = out.dtype if out.dtype.is_floating_point else _widest_float(node.inputs)
    if compute_dtype is None:
        raise CompileError(f"op '{node.op_name}' on integer values is not supported by the "
                           "compiler", node.op_name, node.origin)
    float_type = _float_type(compute_dtype)
    expr = op.expr
    loaded: list[tuple[Any, Value]] = []
    substitutions = {}
    for symbol, value in zip(op.symbols, node.inputs):
        number = low.constant_scalar(value)
        if number is not None:
            substitutions[symbol] = sympy.Float(float(number)) if not isinstance(number, bool) \
                else sympy.Integer(int(number))
        else:
            loaded.append((symbol, value))
    expr = expr.subs(substitutions) if substitutions else expr
    missing = lowerable(expr)
    if missing is not None:
        raise CompileError(f"op '{node.op_name}' uses {missing}, which has no native lowering",
                           node.op_name, node.origin)
    emitter = ExpressionEmitter(low.builder, float_type)
    strides = [contiguous_strides(out.shape)] + [broadcast_strides(v, out.shape)
                                                 for _, v in loaded]

    def body(offsets: list[ir.Value]) -> None:
        env = {symbol: load(low, value, offset, float_type)
               for (symbol, value), offset in zip(loaded, offsets[1:])}
        result = emitter.emit(expr, env)
        if result.type == I1:
            if out.dtype.name == "bool":
                store_bool(low, out, offsets[0], result)
                return
            result = low.builder.uitofp(result, float_type)
        store(low, out, offsets[0], result, compute_dtype)

    nest(low, out.shape, strides, body)


def store_bool(low: FunctionLowering, out: Value, offset: ir.Value, bit: ir.Value) -> None:
    low.builder.store(low.builder.zext(bit, I8), low.element_pointer(out, offset))


def _widest_float(values: Sequence[Value]) -> Any:
    """The float type an op on these operands computes in: the widest float among them, or
    float64 for integers and bools alone (exact for integers up to 2**53, class indices say)."""
    floats = [v.dtype for v in values if v.dtype.is_floating_point]
    if not floats:
        from runtime import _dtype

        return _dtype.float64 if values else None
    return max(floats, key=lambda d: d.itemsize)


# ----- copies -------------------------------------------------------------------------------------

def copy(low: FunctionLowering, source: Value, out: Value, source_strides: Sequence[Any],
         base: Any = 0) -> None:
    """out[i] = source[base + i . source_strides], converting dtypes when they differ."""
    element = llvm_type(source.dtype)

    def body(offsets: list[ir.Value]) -> None:
        value = low.builder.load(low.element_pointer(source, offsets[1]), typ=element)
        store(low, out, offsets[0], value, source.dtype)

    nest(low, out.shape, [contiguous_strides(out.shape), list(source_strides)], body,
         bases=[0, base])


@rule("reshape", "clone", "stop_gradient", "to_dtype")
def contiguous_copy(low: FunctionLowering, node: Node) -> None:
    source = node.inputs[0]
    copy(low, source, node.output, contiguous_strides(node.output.shape))


@rule("expand")
def expand(low: FunctionLowering, node: Node) -> None:
    copy(low, node.inputs[0], node.output, broadcast_strides(node.inputs[0], node.output.shape))


@rule("permute")
def permute(low: FunctionLowering, node: Node) -> None:
    source = node.inputs[0]
    own = contiguous_strides(source.shape)
    copy(low, source, node.output, [own[d] for d in node.attrs["dims"]])


@rule("cat")
def cat(low: FunctionLowering, node: Node) -> None:
    out, dim = node.output, node.attrs["dim"]
    out_strides = contiguous_strides(out.shape)
    start: Any = 0
    for source in node.inputs:
        def body(offsets: list[ir.Value], source: Value = source) -> None:
            value = low.builder.load(low.element_pointer(source, offsets[1]),
                                     typ=llvm_type(source.dtype))
            store(low, out, offsets[0], value, source.dtype)

        nest(low, source.shape, [out_strides, contiguous_strides(source.shape)], body,
             bases=[start * out_strides[dim], 0])
        start = start + source.shape[dim]


def _basic_index_view(node: Node, shape: Sequence[Any]) -> tuple[list[Any], Any]:
    """Strides and base offset of x[key] for a key of ints, slices, None and Ellipsis only."""
    key = node.attrs["key"]
    own = contiguous_strides(shape)
    strides: list[Any] = []
    base: Any = 0
    dim = 0
    for item in key:
        if item is None:
            strides.append(0)
        elif item is Ellipsis:
            explicit = sum(1 for k in key if k is not None and k is not Ellipsis)
            for _ in range(len(shape) - explicit):
                strides.append(own[dim])
                dim += 1
        elif isinstance(item, int):
            base = base + _from_start(item, shape[dim]) * own[dim]
            dim += 1
        elif isinstance(item, tuple) and len(item) == 4:  # a slice; an IndexSlot has length 1
            _, start, stop, step = item
            begin = slice(start, stop, step).indices(shape[dim])[0] \
                if isinstance(shape[dim], int) else _from_start(start or 0, shape[dim])
            base = base + begin * own[dim]
            strides.append((step or 1) * own[dim])
            dim += 1
        else:
            raise CompileError("indexing with index tensors is not supported by the compiler yet; "
                               "use gather()", node.op_name, node.origin)
    strides.extend(own[dim:])
    return strides, base


def _from_start(position: int, size: Any) -> Any:
    """A Python index counted from the start of a dimension (-1 is size - 1; size may be N)."""
    return position if position >= 0 else size + position


@rule("index")
def index(low: FunctionLowering, node: Node) -> None:
    strides, base = _basic_index_view(node, node.inputs[0].shape)
    copy(low, node.inputs[0], node.output, strides, base)


@rule("index_add_into_zeros")
def index_add_into_zeros(low: FunctionLowering, node: Node) -> None:
    out, grad = node.output, node.inputs[0]
    _check_float(node, out)
    fill(low, out, 0.0)
    strides, base = _basic_index_view(node, out.shape)
    float_type = _float_type(out.dtype)

    def body(offsets: list[ir.Value]) -> None:
        pointer = low.element_pointer(out, offsets[1])
        total = low.builder.fadd(low.builder.load(pointer, typ=float_type),
                                 load(low, grad, offsets[0], float_type), flags=FLOAT_FLAGS)
        low.builder.store(total, pointer)

    nest(low, grad.shape, [contiguous_strides(grad.shape), strides], body, bases=[0, base])


def fill(low: FunctionLowering, out: Value, number: float) -> None:
    float_type = _float_type(out.dtype)

    def body(offsets: list[ir.Value]) -> None:
        low.builder.store(ir.Constant(float_type, number), low.element_pointer(out, offsets[0]))

    nest(low, out.shape, [contiguous_strides(out.shape)], body)


@rule("size")
def size(low: FunctionLowering, node: Node) -> None:
    out = node.output
    expr = node.attrs["expr"]
    value = low.builder.sitofp(low.size(expr), _float_type(out.dtype))
    low.builder.store(value, low.element_pointer(out, ir.Constant(I64, 0)))


# ----- reductions ---------------------------------------------------------------------------------

def _reduce(low: FunctionLowering, node: Node, dims: Sequence[int], kind: str) -> None:
    source, out = node.inputs[0], node.output
    _check_float(node, source, out)
    out_own = contiguous_strides(_kept_shape(source.shape, dims))
    out_strides = [0 if d in dims else out_own[d] for d in range(len(source.shape))]
    if kind == "sum":
        _sum(low, source, out, out_strides)
        return
    float_type = _float_type(out.dtype)
    fill(low, out, float("-inf") if kind == "max" else float("inf"))
    b = low.builder

    def body(offsets: list[ir.Value]) -> None:
        pointer = low.element_pointer(out, offsets[1])
        best = b.load(pointer, typ=float_type)
        x = load(low, source, offsets[0], float_type)
        b.store(b.select(_beats(b, kind == "max", x, best), x, best), pointer)

    nest(low, source.shape, [contiguous_strides(source.shape), out_strides], body)


def _sum(low: FunctionLowering, source: Value, out: Value, out_strides: Sequence[Any]) -> None:
    """out = the sum of `source` walked with `out_strides` (0 on reduced dimensions): in levels
    (cascade_sum.py) where a reduced dimension is long, else element after element."""
    float_type = _float_type(out.dtype)
    fill(low, out, 0.0)
    shape, (source_strides, merged_out_strides) = merge_dimensions(
        source.shape, [contiguous_strides(source.shape), out_strides])
    plan = plan_cascade(shape, source_strides, merged_out_strides,
                        8 if isinstance(float_type, ir.DoubleType) else 4)
    if plan is None:
        _sequential_sum(low, source, out, out_strides, float_type)
        return
    emit_cascade(low, plan, shape, source_strides, merged_out_strides, float_type,
                 lambda offset: load(low, source, offset, float_type),
                 lambda offset: low.element_pointer(out, offset))


def _sequential_sum(low: FunctionLowering, source: Value, out: Value, out_strides: Sequence[Any],
                    float_type: ir.Type) -> None:
    """out += each element in turn: for reductions whose every reduced dimension is short."""
    b = low.builder

    def body(offsets: list[ir.Value]) -> None:
        pointer = low.element_pointer(out, offsets[1])
        b.store(b.fadd(b.load(pointer, typ=float_type),
                       load(low, source, offsets[0], float_type), flags=FLOAT_FLAGS), pointer)

    nest(low, source.shape, [contiguous_strides(source.shape), list(out_strides)], body)


def _beats(b: ir.IRBuilder, larger: bool, x: ir.Value, best: ir.Value) -> ir.Value:
    """x replaces the running extremum `best`: it is larger (smaller), or NaN. NaN wins, as in
    PyTorch's max, min, argmax and argmin."""
    return b.or_(b.fcmp_ordered(">" if larger else "<", x, best), b.fcmp_unordered("uno", x, x))


def _kept_shape(shape: Sequence[Any], dims: Sequence[int]) -> list[Any]:
    return [1 if i in dims else s for i, s in enumerate(shape)]


@rule("sum")
def sum_(low: FunctionLowering, node: Node) -> None:
    _reduce(low, node, node.attrs["dims"], "sum")


@rule("amax")
def amax(low: FunctionLowering, node: Node) -> None:
    _reduce(low, node, node.attrs["dims"], "max")


@rule("amin")
def amin(low: FunctionLowering, node: Node) -> None:
    _reduce(low, node, node.attrs["dims"], "min")


@rule("mean")
def mean(low: FunctionLowering, node: Node) -> None:
    dims = node.attrs["dims"]
    _reduce(low, node, dims, "sum")
    count: Any = 1
    for d in dims:
        count = count * node.inputs[0].shape[d]
    out = node.output
    float_type = _float_type(out.dtype)
    scale = low.builder.fdiv(ir.Constant(float_type, 1.0),
                             low.builder.sitofp(low.size(count), float_type))

    def body(offsets: list[ir.Value]) -> None:
        pointer = low.element_pointer(out, offsets[0])
        low.builder.store(low.builder.fmul(low.builder.load(pointer, typ=float_type), scale),
                          pointer)

    nest(low, out.shape, [contiguous_strides(out.shape)], body)


@rule("sum_to")
def sum_to(low: FunctionLowering, node: Node) -> None:
    source, target = node.inputs[0].shape, node.attrs["shape"]
    lead = len(source) - len(target)
    dims = list(range(lead)) + [lead + i for i, s in enumerate(target)
                                if s == 1 and source[lead + i] != 1]
    source_value, out = node.inputs[0], node.output
    _check_float(node, source_value)
    out_own = contiguous_strides(target)
    out_strides = [0 if d in dims else out_own[d - lead] for d in range(len(source))]
    _sum(low, source_value, out, out_strides)


@rule("argmax", "argmin")
def arg_extremum(low: FunctionLowering, node: Node) -> None:
    source, out = node.inputs[0], node.output
    _check_float(node, source)
    dim = node.attrs["dim"]
    shape = list(source.shape) if dim is not None else [_numel(source.shape)]
    axis = dim if dim is not None else 0
    outer = _numel(shape[:axis])
    length = shape[axis]
    inner = _numel(shape[axis + 1:])
    float_type = _float_type(source.dtype)
    b = low.builder
    larger = node.op_name == "argmax"

    def per_outer(o: ir.Value) -> None:
        def per_inner(i: ir.Value) -> None:
            base = b.add(b.mul(o, low.size(length * inner)), i)
            best_slot = low.local(float_type)
            index_slot = low.local(I64)
            b.store(ir.Constant(float_type, float("-inf") if larger else float("inf")), best_slot)
            b.store(ir.Constant(I64, 0), index_slot)

            def step(k: ir.Value) -> None:
                x = load(low, source, b.add(base, b.mul(k, low.size(inner))), float_type)
                best = b.load(best_slot, typ=float_type)
                wins = b.and_(_beats(b, larger, x, best),
                              b.fcmp_ordered("ord", best, best))  # the first NaN stays
                b.store(b.select(wins, x, best), best_slot)
                b.store(b.select(wins, k, b.load(index_slot, typ=I64)), index_slot)

            counted_loop(b, low.size(length), step, name="k")
            target = b.add(b.mul(o, low.size(inner)), i)
            store(low, out, target, b.load(index_slot, typ=I64), _int64())

        counted_loop(b, low.size(inner), per_inner, name="inner")

    counted_loop(b, low.size(outer), per_outer, name="outer")


def _int64() -> Any:
    from runtime import _dtype

    return _dtype.int64


def _numel(shape: Sequence[Any]) -> Any:
    n: Any = 1
    for s in shape:
        n = n * s
    return n


# ----- gather / scatter ---------------------------------------------------------------------------

def _gather_walk(low: FunctionLowering, index_value: Value, dim: int, data_shape: Sequence[Any],
                 body: Callable[[ir.Value, ir.Value, ir.Value], None]) -> None:
    """For each element of index: body(offset in index, offset in data with dim := index,
    whether that index is in range). An index out of range (eager mode's IndexError, which
    native code cannot raise) is replaced by 0, so no access leaves the buffer."""
    b = low.builder
    data_strides = contiguous_strides(data_shape)
    strides = [contiguous_strides(index_value.shape),
               [0 if d == dim else data_strides[d] for d in range(len(data_shape))]]

    def visit(offsets: list[ir.Value]) -> None:
        k = load(low, index_value, offsets[0], I64)
        size = low.size(data_shape[dim])
        k = b.select(b.icmp_signed("<", k, ir.Constant(I64, 0)), b.add(k, size), k)
        valid = b.icmp_unsigned("<", k, size)  # 0 <= k < size
        k = b.select(valid, k, ir.Constant(I64, 0))
        body(offsets[0], b.add(offsets[1], b.mul(k, low.size(data_strides[dim]))), valid)

    sizes = [low.size(s) for s in index_value.shape]
    strided_nest(b, sizes, [[low.size(s) for s in per] for per in strides],
                 [ir.Constant(I64, 0)] * 2, visit)


@rule("gather")
def gather(low: FunctionLowering, node: Node) -> None:
    """out = data[..., index, ...]; NaN where the index is out of range."""
    data, index_value = node.inputs
    out = node.output
    float_type = _float_type(data.dtype)
    _check_float(node, data)
    nan = ir.Constant(float_type, float("nan"))

    def body(i: ir.Value, d: ir.Value, valid: ir.Value) -> None:
        value = low.builder.select(valid, load(low, data, d, float_type), nan)
        store(low, out, i, value, data.dtype)

    _gather_walk(low, index_value, node.attrs["dim"], data.shape, body)


@rule("scatter_add_into_zeros")
def scatter_add_into_zeros(low: FunctionLowering, node: Node) -> None:
    """zeros with grad added at index along dim; an index out of range adds nothing."""
    grad, index_value = node.inputs
    out = node.output
    _check_float(node, out)
    float_type = _float_type(out.dtype)
    fill(low, out, 0.0)
    b = low.builder

    def body(i: ir.Value, d: ir.Value, valid: ir.Value) -> None:
        pointer = low.element_pointer(out, d)
        added = b.select(valid, load(low, grad, i, float_type), ir.Constant(float_type, 0.0))
        b.store(b.fadd(b.load(pointer, typ=float_type), added), pointer)

    _gather_walk(low, index_value, node.attrs["dim"], out.shape, body)


# ----- softmax ------------------------------------------------------------------------------------

@rule("softmax", "log_softmax")
def softmax(low: FunctionLowering, node: Node) -> None:
    source, out = node.inputs[0], node.output
    _check_float(node, source)
    dim = node.attrs["dim"]
    shape = source.shape
    outer, length, inner = _numel(shape[:dim]), shape[dim], _numel(shape[dim + 1:])
    float_type = _float_type(source.dtype)
    b = low.builder
    logarithmic = node.op_name == "log_softmax"

    def per_outer(o: ir.Value) -> None:
        def per_inner(i: ir.Value) -> None:
            base = b.add(b.mul(o, low.size(length * inner)), i)
            stride = low.size(inner)
            at = lambda k: b.add(base, b.mul(k, stride))  # noqa: E731
            peak = low.local(float_type)
            total = low.local(float_type)
            b.store(ir.Constant(float_type, float("-inf")), peak)
            b.store(ir.Constant(float_type, 0.0), total)

            def find_peak(k: ir.Value) -> None:
                x = load(low, source, at(k), float_type)
                current = b.load(peak, typ=float_type)
                b.store(b.select(b.fcmp_unordered(">", x, current), x, current), peak)

            counted_loop(b, low.size(length), find_peak, name="peak")
            m = b.load(peak, typ=float_type)
            # all -inf (or a row of -inf): subtract 0 instead so the result is nan/0 like PyTorch
            m = b.select(b.fcmp_ordered("==", m, ir.Constant(float_type, float("-inf"))),
                         ir.Constant(float_type, 0.0), m)

            def accumulate(k: ir.Value) -> None:
                e = emit_exp(b, b.fsub(load(low, source, at(k), float_type), m))
                if not logarithmic:
                    store(low, out, at(k), e, source.dtype)
                b.store(b.fadd(b.load(total, typ=float_type), e, flags=FLOAT_FLAGS), total)

            counted_loop(b, low.size(length), accumulate, name="sum")
            s = b.load(total, typ=float_type)
            if logarithmic:
                log_total = emit_log(b, s)

                def write(k: ir.Value) -> None:
                    # (x - m) - log(s): x - (m + log(s)) would round log(s) to the ulp of m
                    shifted = b.fsub(load(low, source, at(k), float_type), m)
                    store(low, out, at(k), b.fsub(shifted, log_total), source.dtype)
            else:
                scale = b.fdiv(ir.Constant(float_type, 1.0), s)

                def write(k: ir.Value) -> None:
                    store(low, out, at(k), b.fmul(load(low, out, at(k), float_type), scale),
                          source.dtype)

            counted_loop(b, low.size(length), write, name="write")

        counted_loop(b, low.size(inner), per_inner, name="inner")

    counted_loop(b, low.size(outer), per_outer, name="outer")


# ----- matrix products ----------------------------------------------------------------------------

@rule("matmul", "gemm")
def matmul(low: FunctionLowering, node: Node) -> None:
    _product(low, node, *node.inputs, accumulate=False)


@rule("gemm_accumulate")
def gemm_accumulate(low: FunctionLowering, node: Node) -> None:
    """out = c + op(a) @ op(b): c is copied into out unless they are the same memory (an
    in-place update, as compile_train_step's parameters), then the GEMM adds to it."""
    c, a, b_value = node.inputs
    out = node.output
    builder = low.builder
    same = builder.icmp_unsigned("==", builder.ptrtoint(low.pointer(c), I64),
                                 builder.ptrtoint(low.pointer(out), I64))
    with builder.if_then(builder.not_(same)):
        copy(low, c, out, contiguous_strides(out.shape))
    _product(low, node, a, b_value, accumulate=True)


def _product(low: FunctionLowering, node: Node, a: Value, b_value: Value,
             accumulate: bool) -> None:
    out = node.output
    _check_float(node, a, b_value)
    transpose_a = node.attrs.get("transpose_a", False)
    transpose_b = node.attrs.get("transpose_b", False)
    a_shape = _matrix_shape(a.shape, left=True, transposed=transpose_a)
    b_shape = _matrix_shape(b_value.shape, left=False, transposed=transpose_b)
    m, k = a_shape[-2:]
    n = b_shape[-1]
    # batch dims broadcast as in torch.matmul; a 1-D operand has none (and drops a dim of out)
    batch = broadcast_shapes(a.shape[:-2], b_value.shape[:-2])
    a_rs, a_cs = _matrix_strides(a.shape, transpose_a, left=True)
    b_rs, b_cs = _matrix_strides(b_value.shape, transpose_b, left=False)
    gemm = low.gemm_function(out.dtype)
    low.note_gemm(out.dtype, m if isinstance(m, int) else 4096, n if isinstance(n, int) else 4096,
                  k if isinstance(k, int) else 4096)
    builder = low.builder
    a_batch = broadcast_strides_batch(a, batch, matrix_dims=1 if len(a.shape) == 1 else 2)
    b_batch = broadcast_strides_batch(b_value, batch,
                                      matrix_dims=1 if len(b_value.shape) == 1 else 2)
    out_batch = contiguous_strides((*batch, m, n))[:len(batch)]

    def product(offsets: list[ir.Value]) -> None:
        builder.call(gemm, [
            low.size(m), low.size(n), low.size(k),
            low.element_pointer(a, offsets[1]), low.size(a_rs), low.size(a_cs),
            low.element_pointer(b_value, offsets[2]), low.size(b_rs), low.size(b_cs),
            low.element_pointer(out, offsets[0]), low.size(n),
            ir.Constant(I32, int(accumulate)), low.workspace])

    if batch:
        nest(low, batch, [out_batch, a_batch, b_batch], product, bases=[0, 0, 0])
    else:
        product([ir.Constant(I64, 0)] * 3)


def _matrix_shape(shape: Sequence[Any], left: bool, transposed: bool) -> tuple[Any, Any]:
    if len(shape) == 1:
        return (1, shape[0]) if left else (shape[0], 1)
    rows, cols = shape[-2], shape[-1]
    return (cols, rows) if transposed else (rows, cols)


def _matrix_strides(shape: Sequence[Any], transposed: bool, left: bool) -> tuple[Any, Any]:
    """(row stride, column stride) of the operand as the product reads it."""
    if len(shape) == 1:
        return (0, 1) if left else (1, 0)
    rs, cs = shape[-1], 1
    return (cs, rs) if transposed else (rs, cs)


def broadcast_strides_batch(value: Value, batch: Sequence[Any], matrix_dims: int) -> list[Any]:
    """Strides of each batch dimension over a (possibly broadcast) batched operand."""
    own = contiguous_strides(value.shape)
    value_batch = value.shape[:len(value.shape) - matrix_dims]
    lead = len(batch) - len(value_batch)
    strides = []
    for i, size in enumerate(batch):
        j = i - lead
        if j < 0 or (value_batch[j] == 1 and size != 1):
            strides.append(0)
        else:
            strides.append(own[j])
    return strides

