"""`einsum` of one or two operands, written with permute, reshape, sum and one batched matmul,
so it records, traces and differentiates like those ops.

Two operands are contracted as a batched matrix product: each letter is a batch letter (in both
operands and the output), a contracted letter (in both, not in the output), or belongs to one
side; letters of one operand that appear nowhere else are summed first. `...` stands for the
same leading dims in every operand. Repeated letters within one operand (diagonals) and three
or more operands are not supported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runtime._tensor import Tensor
from runtime.ops import matmul, reduction, shape


def einsum(equation: str, operands: Sequence[Tensor]) -> Tensor:
    inputs, output = _parse(equation.replace(" ", ""), operands)
    if len(inputs) == 1:
        (x,), (letters,) = operands, inputs
        return _to_output(*_sum_unused(x, letters, output), output)
    if len(inputs) != 2:
        raise NotImplementedError(f"einsum of {len(inputs)} operands is not supported; contract "
                                  "them two at a time")
    (a, b), (la, lb) = operands, inputs
    a, la = _sum_unused(a, la, output + lb)
    b, lb = _sum_unused(b, lb, output + la)
    sizes: dict[str, Any] = {}
    for x, letters in ((a, la), (b, lb)):
        for letter, size in zip(letters, x.shape):
            if sizes.setdefault(letter, size) != size:
                raise RuntimeError(f"einsum(): operands do not broadcast with remapped shapes "
                                   f"(original->remapped): subscript '{letter}' has size "
                                   f"{sizes[letter]} and {size}")
    batch = [c for c in output if c in la and c in lb]
    contracted = [c for c in la if c in lb and c not in output]
    left = [c for c in la if c not in lb]
    right = [c for c in lb if c not in la]
    a = _arrange(a, la, batch + left + contracted, [batch, left, contracted], sizes)
    b = _arrange(b, lb, batch + contracted + right, [batch, contracted, right], sizes)
    product = matmul.matmul(a, b)
    letters = "".join(batch + left + right)
    product = _reshape(product, tuple(sizes[c] for c in letters))
    return _to_output(product, letters, output)


def _parse(equation: str, operands: Sequence[Tensor]) -> tuple[list[str], str]:
    lhs, arrow, rhs = equation.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(operands):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation"
                           if len(operands) > len(inputs) else
                           "einsum(): fewer operands were provided than specified in the equation")
    used = set(equation) - set(".,->")
    spare = iter(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used)
    ellipsis = ""
    expanded = []
    for term, x in zip(inputs, operands):
        if "..." in term:
            n = x.ndim - (len(term) - 3)
            while len(ellipsis) < n:
                ellipsis += next(spare)
            term = term.replace("...", ellipsis[len(ellipsis) - n:])
        if len(term) != x.ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(term)}) "
                               f"does not match the number of dimensions ({x.ndim}) for operand")
        if len(set(term)) != len(term):
            raise NotImplementedError("einsum with a letter repeated in one operand (a diagonal) "
                                      "is not supported")
        expanded.append(term)
    if arrow:
        output = rhs.replace("...", ellipsis)
    else:
        counts = "".join(expanded)
        output = ellipsis + "".join(sorted(c for c in set(counts) if counts.count(c) == 1
                                           and c not in ellipsis))
    return expanded, output


def _sum_unused(x: Tensor, letters: str, keep: str) -> tuple[Tensor, str]:
    """Sum out the dims whose letter appears nowhere in `keep`."""
    unused = tuple(i for i, c in enumerate(letters) if c not in keep)
    if not unused:
        return x, letters
    return reduction.sum(x, unused), "".join(c for c in letters if c in keep)


def _arrange(x: Tensor, letters: str, order: list[str], groups: list[list[str]],
             sizes: dict[str, Any]) -> Tensor:
    """x permuted to `order` and reshaped to one dim per group (batch, rows, columns)."""
    dims = tuple(letters.index(c) for c in order)
    if dims != tuple(range(len(dims))):
        x = shape.permute(x, dims)
    grouped = []
    for group in groups:
        size = 1
        for c in group:
            size *= sizes[c]
        grouped.append(size)
    return _reshape(x, tuple(grouped))


def _reshape(x: Tensor, new_shape: tuple[Any, ...]) -> Tensor:
    return x if tuple(x.shape) == new_shape else shape.reshape(x, new_shape)


def _to_output(x: Tensor, letters: str, output: str) -> Tensor:
    if sorted(letters) != sorted(output):
        missing = set(output) - set(letters)
        raise RuntimeError(f"einsum(): output subscript {sorted(missing)[0]} does not appear in "
                           "the equation for any input operand")
    dims = tuple(letters.index(c) for c in output)
    return x if dims == tuple(range(len(dims))) else shape.permute(x, dims)
