"""Composite ops: operations PyTorch runs as one kernel with one autograd node, which symgrad
defines by a decomposition into primitive ops.

Eagerly a composite op computes its decomposition without recording it and records one node
with PyTorch's name (`AddmmBackward0`, `MseLossBackward0`, ...), so `grad_fn` chains read as
PyTorch's. Its derivative is the decomposition's, by autograd (addmm writes its own, the hot
path of nn.Linear). A tracer records the decomposition in its place (compiler/tracing.py), so
the compiler only ever sees primitive ops. A composite op never computes anything of its own:
what it gives is always exactly its decomposition's value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runtime._grad_mode import enable_grad, is_grad_enabled
from runtime.ops import elementwise as ew
from runtime.ops._op import Op, Shape, VJPContext, apply, numel, register
from runtime.ops.matmul import matmul
from runtime.ops.reduction import extremum_along
from runtime.ops.shape import transpose


class Composite(Op):
    """An op given by `decompose`; subclasses set `name`, `backward_name` and `flops`."""

    composite = True

    def vjp(self, ctx: VJPContext, grad: Any) -> Sequence[Any]:
        """The decomposition's gradient: it is rebuilt on the saved inputs and differentiated.
        Under create_graph the inputs keep their history, so the result differentiates again."""
        from runtime.autograd._engine import grad as autograd_grad

        needed = [i for i, need in enumerate(ctx.needs_input_grad) if need]
        create_graph = is_grad_enabled()
        with enable_grad():
            inputs = list(ctx.inputs) if create_graph else [
                x.detach().requires_grad_() if i in needed else x
                for i, x in enumerate(ctx.inputs)]
            output = self.decompose(inputs, **ctx.attrs)
            grads = autograd_grad(output, [inputs[i] for i in needed], grad,
                                  retain_graph=create_graph, create_graph=create_graph,
                                  allow_unused=True)
        result: list[Any] = [None] * len(inputs)
        for i, g in zip(needed, grads):
            result[i] = g
        return result


class Addmm(Composite):
    """bias + mat1 @ mat2 for 2-D mat1 and mat2 (nn.Linear's 2-D case: mat2 is weight.t())."""

    name = "addmm"
    backward_name = "AddmmBackward0"

    def decompose(self, inputs: Sequence[Any], **attrs: Any) -> Any:
        bias, mat1, mat2 = inputs
        return ew.add(matmul(mat1, mat2), bias)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> tuple[Sequence[int], bool]:
        return [i for i, other in ((1, 2), (2, 1)) if needs_input_grad[other]], False

    def vjp(self, ctx: VJPContext, grad: Any) -> Sequence[Any]:
        _, mat1, mat2 = ctx.inputs
        need = ctx.needs_input_grad
        return (grad,  # the engine sums it down to the bias' shape
                matmul(grad, transpose(mat2, 0, 1)) if need[1] else None,
                matmul(transpose(mat1, 0, 1), grad) if need[2] else None)

    def flops(self, input_shapes: Sequence[Shape], output_shape: Shape, **attrs: Any) -> Any:
        return (2 * input_shapes[1][1] + 1) * numel(output_shape)


class MatrixTranspose(Composite):
    """x.t() of a matrix: a transpose view that PyTorch records as TBackward0."""

    name = "t"
    backward_name = "TBackward0"
    is_view = True

    def decompose(self, inputs: Sequence[Any], **attrs: Any) -> Any:
        return transpose(inputs[0], 0, 1)

    def saves(self, needs_input_grad: Sequence[bool], **attrs: Any) -> tuple[Sequence[int], bool]:
        return (), False

    def vjp(self, ctx: VJPContext, grad: Any) -> Sequence[Any]:
        return [transpose(grad, 0, 1)]

    def write_back(self, base: Any, view_value: Any, **attrs: Any) -> Any:
        return transpose(view_value, 0, 1)

    def flops(self, input_shapes: Sequence[Shape], output_shape: Shape, **attrs: Any) -> Any:
        return 0


class ExtremumValues(Composite):
    """The values of max(x, dim) or min(x, dim) (the indices are argmax's, not differentiable)."""

    def __init__(self, largest: bool) -> None:
        self.largest = largest
        self.name = "max_values" if largest else "min_values"
        self.backward_name = "MaxBackward0" if largest else "MinBackward0"

    def decompose(self, inputs: Sequence[Any], **attrs: Any) -> Any:
        return extremum_along(inputs[0], attrs["dim"], attrs["keepdim"], self.largest)[0]

    def flops(self, input_shapes: Sequence[Shape], output_shape: Shape, **attrs: Any) -> Any:
        return numel(input_shapes[0])


class Loss(Composite):
    """A loss function whose decomposition is its formula in nn.functional, which hands it over
    with `set_formula` when it loads (the formulas live with their checks, and the ops never
    import the layers above them). Input and a floating point target get graph edges, as in
    PyTorch; class indices get none; weights (which PyTorch refuses to differentiate) get one
    when they require grad."""

    def __init__(self, function: str, backward_name: str, flops_per_element: int,
                 name: str = "") -> None:
        self.function = function
        self.name = name or function
        self.backward_name = backward_name
        self.flops_per_element = flops_per_element
        self.formula: Any = None

    def set_formula(self, formula: Any) -> None:
        self.formula = formula

    def decompose(self, inputs: Sequence[Any], **attrs: Any) -> Any:
        if self.formula is None:
            raise RuntimeError(f"{self.name}'s formula is set when runtime.nn loads; "
                               "import runtime first")
        return self.formula(*inputs, **attrs)

    def edge_inputs(self, inputs: Sequence[Any], **attrs: Any) -> Sequence[int]:
        return [i for i, t in enumerate(inputs)
                if t.dtype.is_floating_point and (i < 2 or t.requires_grad)]

    def flops(self, input_shapes: Sequence[Shape], output_shape: Shape, **attrs: Any) -> Any:
        return self.flops_per_element * numel(input_shapes[0])


_addmm = register(Addmm())
_t = register(MatrixTranspose())
_max_values = register(ExtremumValues(largest=True))
_min_values = register(ExtremumValues(largest=False))
LOSSES = {loss.function: loss for loss in (
    Loss("mse_loss", "MseLossBackward0", flops_per_element=3),
    Loss("binary_cross_entropy_with_logits", "BinaryCrossEntropyWithLogitsBackward0",
         flops_per_element=8, name="bce_with_logits_loss"),
    Loss("nll_loss", "NllLossBackward0", flops_per_element=2))}
for _loss in LOSSES.values():
    register(_loss)
_mse_loss = LOSSES["mse_loss"]
_bce_with_logits = LOSSES["binary_cross_entropy_with_logits"]
_nll_loss = LOSSES["nll_loss"]


def addmm(bias: Any, mat1: Any, mat2: Any) -> Any:
    return apply(_addmm, [bias, mat1, mat2])


def t(x: Any) -> Any:
    return apply(_t, [x])


def extremum_values(x: Any, dim: int, keepdim: bool, largest: bool) -> Any:
    return apply(_max_values if largest else _min_values, [x], dim=dim, keepdim=keepdim)


def mse_loss(input: Any, target: Any, reduction: str) -> Any:
    return apply(_mse_loss, [input, target], reduction=reduction)


def binary_cross_entropy_with_logits(input: Any, target: Any, weight: Any, pos_weight: Any,
                                     reduction: str) -> Any:
    inputs = [input, target] + [t for t in (weight, pos_weight) if t is not None]
    return apply(_bce_with_logits, inputs, reduction=reduction, has_weight=weight is not None,
                 has_pos_weight=pos_weight is not None)


def nll_loss(input: Any, target: Any, weight: Any, ignore_index: int, reduction: str) -> Any:
    inputs = [input, target] + ([weight] if weight is not None else [])
    return apply(_nll_loss, inputs, ignore_index=ignore_index, reduction=reduction)
