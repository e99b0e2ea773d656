"""Guards: what a trace of a model depended on besides its tensors, and the checks that it holds.

Tracing runs the model's Python `forward` once and keeps only the tensor operations it did; every
Python decision on the way is frozen into the graph. A `TraceGuard` records what those decisions
could have read:
- the module tree: each submodule's dotted path, the object itself, its type, its training flag
  and its forward hooks;
- the plain Python attributes that forward read on any module (`self.scale`, `self.n_blocks`),
  with their values (compared by equality for numbers, strings and tuples of them, by identity
  otherwise).
A compiled module asks `guard.holds(model)` before each call: while `runtime.nn.module.
tree_version()` has not moved since the last check, that is one integer comparison; after any
module changed, the recorded state is compared and, if it differs, the model is traced and
compiled again.

`trace_once_checked` traces twice and refuses a forward whose graph depends on anything but its
tensors: one that draws from Python's `random` or numpy's global generator while tracing, or whose
two traces differ (the time, a global that changed).

Parameters are not guarded here: a compiled module looks them up by name at every call.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.errors import CompileError
from compiler.ir import Graph
from runtime._random import default_generator
from runtime.nn.module import Module, tree_version

_SIMPLE = (bool, int, float, complex, str, bytes, type(None))


def _is_simple(value: Any) -> bool:
    if isinstance(value, _SIMPLE):
        return True
    return isinstance(value, (tuple, frozenset)) and all(_is_simple(v) for v in value)


def _same(recorded: Any, now: Any) -> bool:
    if _is_simple(recorded):
        return type(recorded) is type(now) and bool(recorded == now)
    return recorded is now


_REGISTRIES = frozenset({"_parameters", "_buffers", "_modules", "_forward_hooks",
                         "_forward_pre_hooks", "_non_persistent_buffers_set", "training",
                         "_forward_pre_hooks_with_kwargs", "_forward_hooks_with_kwargs",
                         "_forward_hooks_always_called"})


@dataclass
class _ModuleEntry:
    path: str
    module: Module
    kind: type
    training: bool
    hooks: tuple[tuple[int, Any], ...]

    @staticmethod
    def of(path: str, module: Module) -> _ModuleEntry:
        hooks = tuple((id(h), h) for registry in (module._forward_pre_hooks,
                                                  module._forward_hooks)
                      for h in registry.values())
        return _ModuleEntry(path, module, type(module), module.training, hooks)

    def same_as(self, other: _ModuleEntry) -> bool:
        return (self.path == other.path and self.module is other.module
                and self.kind is other.kind and self.training == other.training
                and [h for _, h in self.hooks] == [h for _, h in other.hooks])


@dataclass
class TraceGuard:
    """What one trace of a model depended on; `holds(model)` says whether it still does."""

    tree: list[_ModuleEntry]
    reads: list[tuple[str, Module, str, Any]]  # (module path, module, attribute, value read)
    _version: int = field(default=-1)

    @staticmethod
    def record(model: Any, reads: list[tuple[str, Module, str, Any]]) -> TraceGuard:
        """The guard of a trace of `model` (a module, a function, or a tuple of them: a model
        and its loss) during which forward read `reads`."""
        guard = TraceGuard(_tree_of(model), reads)
        guard._version = tree_version()
        return guard

    def holds(self, model: Any) -> bool:
        if tree_version() == self._version:
            return True
        if self.what_changed(model) is not None:
            return False
        self._version = tree_version()
        return True

    def what_changed(self, model: Any) -> str | None:
        """A sentence naming the first recorded dependency that changed, or None."""
        now = _tree_of(model)
        roots = _roots(model)
        model = roots[0] if roots else model  # whose name messages use for the root path
        by_path = {entry.path: entry for entry in now}
        for entry in self.tree:
            current = by_path.get(entry.path)
            if current is None:
                return f"submodule '{entry.path}' was removed"
            if current.module is not entry.module or current.kind is not entry.kind:
                return (f"submodule '{entry.path}' was replaced "
                        f"({entry.kind.__name__} -> {current.kind.__name__})")
            if current.training != entry.training:
                mode = "train()" if current.training else "eval()"
                return f"'{entry.path or type(model).__name__}' was switched to {mode}"
            if [h for _, h in current.hooks] != [h for _, h in entry.hooks]:
                return f"the forward hooks of '{entry.path or type(model).__name__}' changed"
        if len(now) != len(self.tree):
            return "submodules were added"
        for path, module, attribute, value in self.reads:
            current = module.__dict__.get(attribute, _MISSING)
            if not _same(value, current):
                where = f"{path}.{attribute}" if path else attribute
                return f"the attribute '{where}' that forward read changed ({value!r} -> " \
                       f"{current!r})"
        return None


_MISSING = object()


def _roots(model: Any) -> list[Module]:
    parts = model if isinstance(model, tuple) else (model,)
    return [part for part in parts if isinstance(part, Module)]


def _tree_of(model: Any) -> list[_ModuleEntry]:
    roots = _roots(model)
    return [_ModuleEntry.of(f"{index}:{path}" if index else path, module)
            for index, root in enumerate(roots) for path, module in root.named_modules()]


@contextlib.contextmanager
def recording_reads(model: Any) -> Iterator[list[tuple[str, Module, str, Any]]]:
    """While active, every read of a plain instance attribute of one of `model`'s modules is
    appended to the yielded list (first read of each attribute only). Each module's class is
    swapped for a subclass of the same name that records, and restored on exit."""
    reads: list[tuple[str, Module, str, Any]] = []
    seen: set[tuple[int, str]] = set()
    paths = {id(entry.module): entry.path for entry in reversed(_tree_of(model))}
    swapped: list[tuple[Module, type]] = []

    def recorder(kind: type) -> type:
        def __getattribute__(self: Any, name: str) -> Any:  # noqa: N807
            value = object.__getattribute__(self, name)
            if name not in _REGISTRIES and not name.startswith("__"):
                instance = object.__getattribute__(self, "__dict__")
                if name in instance and (id(self), name) not in seen:
                    seen.add((id(self), name))
                    reads.append((paths.get(id(self), ""), self, name, value))
            return value

        return type(kind.__name__, (kind,), {"__getattribute__": __getattribute__,
                                              "__qualname__": kind.__qualname__,
                                              "__module__": kind.__module__})

    recorders: dict[type, type] = {}
    try:
        for module in {id(m): m for m in (e.module for e in _tree_of(model))}.values():
            kind = type(module)
            if kind not in recorders:
                recorders[kind] = recorder(kind)
            object.__setattr__(module, "__class__", recorders[kind])
            swapped.append((module, kind))
        yield reads
    finally:
        for module, kind in swapped:
            object.__setattr__(module, "__class__", kind)


@contextlib.contextmanager
def _random_state_watched() -> Iterator[list[str]]:
    """Yield a list that names, on exit, the global generators the block drew from; their
    states are restored either way."""
    used: list[str] = []
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    runtime_state = default_generator.get_state()
    try:
        yield used
    finally:
        if random.getstate() != python_state:
            used.append("Python's random module")
        after = np.random.get_state()
        if any(not np.array_equal(a, b) for a, b in zip(after, numpy_state)):
            used.append("numpy.random")
        if default_generator.get_state() != runtime_state:
            used.append("the default generator (randn, rand, randint, ...)")
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        default_generator.set_state(runtime_state)


def trace_once_checked(trace: Callable[[], Graph], model: Any,
                       key: Callable[[Graph], str]) -> tuple[Graph, TraceGuard]:
    """Trace by calling `trace()` twice and return the first graph and its guard.

    Raises CompileError when forward draws from a global random generator while tracing, or
    when the two traces differ by `key`: such a forward's Python decisions would be frozen into
    the compiled code, which would then silently differ from the model."""
    roots = _roots(model)
    name = f"{type(roots[0]).__name__}.forward" if roots else getattr(model, "__name__", "forward")
    with _random_state_watched() as used, recording_reads(model) as reads:
        graph = trace()
    if used:
        raise CompileError(
            f"{name} draws from {' and '.join(used)} while it is traced; the choice "
            "would be frozen into the compiled code. Draw it outside forward and pass it in "
            "(or keep this model eager)")
    guard = TraceGuard.record(model, reads)
    with _random_state_watched():
        again = trace()
    if key(graph) != key(again):
        raise CompileError(
            f"{name} gives a different graph each time it is traced: it depends on "
            "something other than its tensors and module attributes (the time, a global that "
            "changed, ...). Make that value an input or a module attribute, or keep this model "
            "eager")
    return graph, guard
