"""The compiler's errors: what a user sees when a model cannot be compiled."""

from __future__ import annotations


class CompileError(RuntimeError):
    """A model uses something the compiler cannot lower; raised at compile time, never at run time.

    The message names the op and the line of the model's source that called it.
    """

    def __init__(self, message: str, op: str = "", origin: str = "") -> None:
        where = f" (called at {origin})" if origin else ""
        super().__init__(f"{message}{where}")
        self.op = op
        self.origin = origin
