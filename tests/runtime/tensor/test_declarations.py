"""Tensor's attached methods are declared for a type checker, name for name and argument for
argument (runtime/_tensor_declarations.py against the table of runtime/_tensor_methods.py)."""

from __future__ import annotations

import inspect
from typing import Any

from runtime._tensor_declarations import TensorMethods
from runtime._tensor_methods import ATTACHED


def declared() -> dict[str, object]:
    return {name: value for name, value in vars(TensorMethods).items()
            if callable(value) or isinstance(value, property)}


def parameters(fn: Any, operands_only: bool) -> list[tuple[str, str]]:
    """The names and kinds of a function's parameters after the tensor; an operator (called
    by syntax, `x + y`) is declared with its operands only."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    if operands_only:
        params = [p for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    return [(p.name, p.kind.name) for p in params]


def test_every_attached_method_is_declared_and_nothing_else():
    missing = sorted(set(ATTACHED) - set(declared()))
    extra = sorted(set(declared()) - set(ATTACHED))
    assert not missing, f"attached but not declared in runtime/_tensor_declarations.py: {missing}"
    assert not extra, f"declared but not attached by runtime/_tensor_methods.py: {extra}"


def test_each_declaration_takes_the_arguments_of_its_function():
    for name, declaration in declared().items():
        if isinstance(declaration, property):
            continue
        implementation = ATTACHED[name]
        operator = name.startswith("__")
        assert parameters(declaration, operator) == parameters(implementation, operator), (
            f"Tensor.{name}: the declaration's parameters differ from those of "
            f"{getattr(implementation, '__qualname__', implementation)}")


def test_the_declarations_are_not_a_base_of_tensor_at_run_time():
    import runtime

    assert TensorMethods not in runtime.Tensor.__mro__
    assert runtime.ones(2).sum().item() == 2.0


def test_tensor_has_every_layer_above_it_once_runtime_is_imported():
    import runtime._tensor as tensor_module

    needed = tensor_module._Layers.__annotations__
    missing = [name for name in needed if not hasattr(tensor_module.layers, name)]
    assert not missing, f"runtime._tensor.layers not set by runtime/_tensor_methods.py: {missing}"
