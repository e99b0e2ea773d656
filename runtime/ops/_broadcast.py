"""Broadcasting of shapes (PyTorch's and numpy's rule), for ints and symbolic sizes alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Shape = tuple[Any, ...]


def broadcast_shapes(*shapes: Sequence[Any]) -> Shape:
    """The shape that operands of these shapes broadcast to; RuntimeError if they do not."""
    shaped = [tuple(s) for s in shapes if len(s)]  # 0-d operands change nothing
    if not shaped or all(s == shaped[0] for s in shaped[1:]):
        return shaped[0] if shaped else ()
    ndim = max((len(s) for s in shapes), default=0)
    result: list[Any] = []
    for k in range(ndim, 0, -1):
        size: Any = 1
        for which, shape in enumerate(shapes):
            if len(shape) < k:
                continue
            s = shape[len(shape) - k]
            if _is_one(s):
                continue
            if _is_one(size):
                size = s
            elif s != size:
                first = next(i for i, sh in enumerate(shapes) if len(sh) >= k
                             and sh[len(sh) - k] == size)
                names = "abcdefgh"
                raise RuntimeError(
                    f"The size of tensor {names[first]} ({size}) must match the size of tensor "
                    f"{names[which]} ({s}) at non-singleton dimension {ndim - k}"
                )
        result.append(size)
    return tuple(result)


def _is_one(size: Any) -> bool:
    return isinstance(size, int) and size == 1 or (not isinstance(size, int) and size == 1)
