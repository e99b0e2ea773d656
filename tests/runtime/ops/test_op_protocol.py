"""The op protocol (runtime/ops/_op.py) and the sympy-defined elementwise ops
(runtime/ops/elementwise.py): one registered definition per op, derivatives from sympy made into
numpy kernels once, sympy loaded only on first use, and the tracer's extension point."""

import subprocess
import sys

import pytest

import runtime
from runtime.ops import OPS, Op, apply, elementwise, register, set_symbolic_handler
from runtime.ops._op import symbolic_handler


def test_every_op_is_registered_once_under_its_name():
    for name, op in OPS.items():
        assert op.name == name and isinstance(op, Op)
        assert op.backward_name or not op.differentiable
    with pytest.raises(ValueError, match="op 'add' is defined twice"):
        register(elementwise.add)


def test_importing_runtime_does_not_import_sympy_or_llvmlite():
    code = ("import sys, runtime; runtime.ones(2).sum(); "
            "print('sympy' in sys.modules, 'llvmlite' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["False", "False"]


def test_elementwise_derivatives_come_from_sympy():
    sp = elementwise.sympy()
    x, y = elementwise.mul.symbols
    assert elementwise.mul.expr == x * y
    assert elementwise.mul.derivative(0) == y and elementwise.mul.derivative(1) == x
    (t,) = elementwise.tanh.symbols
    assert sp.simplify(elementwise.tanh.derivative(0) - (1 - sp.tanh(t) ** 2)) == 0
    (r,) = elementwise.relu.symbols
    assert elementwise.relu.derivative(0) == sp.Piecewise((0, r <= 0), (1, True))


def test_kernels_are_made_once_not_per_call():
    first = elementwise.exp.kernel
    runtime.ones(3).exp()
    runtime.ones(2, 2).exp()
    assert elementwise.exp.kernel is first
    vjp = elementwise.exp._vjp_ops[0]
    assert elementwise.exp._vjp_ops[0] is vjp and vjp.kernel is vjp.kernel


def test_vjp_of_an_elementwise_op_is_an_elementwise_op_of_grad_and_the_inputs():
    vjp = elementwise.sigmoid._vjp_ops[0]
    assert isinstance(vjp, elementwise.Elementwise) and vjp.arg_names == ("grad", "x")
    assert elementwise.add._vjp_ops == [None, None]  # the gradient passes through unchanged
    second = vjp._vjp_ops[1]  # d/dx of grad * sigmoid'(x): takes a fresh gradient symbol
    assert second.arg_names[0] == "dgrad"


def test_backward_saves_only_what_the_derivatives_read():
    x = runtime.ones(2, requires_grad=True)
    w = runtime.ones(2)
    node = (x * w).grad_fn
    assert node._saved_inputs[0] is None and node._saved_inputs[1] is not None
    assert all(s is None for s in (x + w).grad_fn._saved_inputs)
    assert (x.exp()).grad_fn._saved_inputs[0] is not None


def test_a_symbolic_handler_receives_every_op():
    calls = []

    def handler(op, inputs, attrs):
        calls.append((op.name, len(inputs), attrs))
        return "traced"

    set_symbolic_handler(handler)
    try:
        assert symbolic_handler() is handler
        assert runtime.ones(2) * 3 == "traced"
        assert runtime.ones(2, 3).sum(1) == "traced"
    finally:
        set_symbolic_handler(None)
    assert calls == [("mul", 2, {}), ("sum", 1, {"dims": (1,), "keepdim": False})]
    assert symbolic_handler() is None


def test_a_symbolic_tensor_outside_of_tracing_is_an_error():
    t = runtime.ones(2)
    t._is_symbolic = True
    with pytest.raises(RuntimeError, match="a symbolic tensor was used outside of tracing"):
        apply(elementwise.neg, [t])


def test_view_ops_without_write_back_refuse_in_place_changes():
    class Strange(Op):
        name = "strange_view"
        is_view = True

    with pytest.raises(NotImplementedError, match="strange_view"):
        Strange().write_back(runtime.ones(1), runtime.ones(1))


def test_every_op_counts_its_flops():
    """Each op says what one application costs; one that does not is an error naming it."""
    for name, op in OPS.items():
        assert type(op).flops is not Op.flops, f"op {name!r} has no FLOP rule"
    assert OPS["matmul"].flops([(8, 3), (3, 5)], (8, 5)) == 2 * 8 * 5 * 3
    assert OPS["sum"].flops([(8, 3)], (), dims=(0, 1), keepdim=False) == 24
    assert OPS["permute"].flops([(8, 3)], (3, 8), dims=(1, 0)) == 0
    assert elementwise.add.flops([(8, 3), (3,)], (8, 3)) == 24  # one add per element
    assert elementwise.sigmoid.flops([(2,)], (2,)) > 2  # several operations per element

    class Uncounted(Op):
        name = "uncounted"

    with pytest.raises(NotImplementedError, match="'uncounted' has no FLOP count"):
        Uncounted().flops([(2,)], (2,))


def test_what_the_compiler_reads_off_an_op():
    """aliases_input: the compiled result is input 0's memory (a reshape of contiguous data);
    preserves_elements: a class index passes through unchanged. Both declared on the op."""
    aliasing = {name for name, op in OPS.items() if op.aliases_input}
    assert aliasing == {"reshape"}
    assert all(OPS[name].is_view for name in aliasing)
    preserving = {name for name, op in OPS.items() if op.preserves_elements}
    assert preserving == {"reshape", "expand", "permute", "clone", "to_dtype"}
    assert not OPS["index"].preserves_elements  # slicing drops elements
