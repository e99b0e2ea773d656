"""The `reduction=` argument of the losses: validation, the deprecated `size_average`/`reduce`
spelling, and applying it to a tensor of per-element losses.
"""

from __future__ import annotations

import warnings

from runtime._tensor import Tensor

REDUCTIONS = ("none", "mean", "sum")


def resolve(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """The reduction to use: `reduction`, unless the deprecated flags are given; validated."""
    if size_average is not None or reduce is not None:
        reduction = legacy_get_string(size_average, reduce)
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def legacy_get_string(size_average: bool | None, reduce: bool | None) -> str:
    """PyTorch's translation of the old flags (both default to True), with its warning."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(f"size_average and reduce args will be deprecated, please use "
                  f"reduction='{reduction}' instead.", UserWarning, stacklevel=4)
    return reduction


def reduce(loss: Tensor, reduction: str) -> Tensor:
    """Per-element losses as they are ('none'), summed, or averaged over all elements."""
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()
