"""Whether operations record autograd history: `no_grad`, `enable_grad`, `set_grad_enabled`.

Each is a context manager and a decorator, as in PyTorch. The flag is per thread, so a compiled
module called from two threads, or a DataLoader, cannot switch recording off for the other.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_state = threading.local()


def is_grad_enabled() -> bool:
    """True when new operations on tensors that require grad are recorded."""
    return getattr(_state, "enabled", True)


def _set_enabled(enabled: bool) -> None:
    _state.enabled = enabled


class _GradModeContext:
    """Shared shape of the three: a context manager that also decorates functions."""

    _target: bool

    def __enter__(self) -> None:
        self._previous = is_grad_enabled()
        _set_enabled(self._target)

    def __exit__(self, *exc: object) -> None:
        _set_enabled(self._previous)

    def __call__(self, func: F) -> F:
        target = self._target

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            previous = is_grad_enabled()
            _set_enabled(target)
            try:
                return func(*args, **kwargs)
            finally:
                _set_enabled(previous)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradModeContext):  # noqa: N801 - the PyTorch name
    """Operations inside do not record history: results have requires_grad=False."""

    def __init__(self) -> None:
        self._target = False


class enable_grad(_GradModeContext):  # noqa: N801
    """Operations inside record history, even within `no_grad`."""

    def __init__(self) -> None:
        self._target = True


class set_grad_enabled(_GradModeContext):  # noqa: N801
    """Turn recording on or off; takes effect at once, and as a context manager restores it."""

    def __init__(self, mode: bool) -> None:
        self._previous = is_grad_enabled()
        self._target = bool(mode)
        _set_enabled(self._target)

    def __enter__(self) -> None:
        pass  # the mode was set by the constructor, as in PyTorch

    def __call__(self, func: F) -> F:
        _set_enabled(self._previous)  # used as a decorator: only the wrapped calls change mode
        return super().__call__(func)


class inference_mode(no_grad):  # noqa: N801
    """Like no_grad (symgrad has no separate inference tensors)."""

    def __init__(self, mode: bool = True) -> None:
        self._target = not mode
