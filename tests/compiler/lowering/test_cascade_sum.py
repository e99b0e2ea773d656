"""Native sums add in levels (compiler/lowering/cascade_sum.py): as accurate as PyTorch's, and the
same sums as numpy's for every way a nest can be blocked (several levels, tiles of a wide output,
kept dimensions outside the blocked one, batch sizes at block boundaries, the sequential
fallback)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import compiler
import runtime
from compiler.lowering.cascade_sum import BLOCK, plan_cascade
from compiler.lowering.loops import contiguous_strides, merge_dimensions
from runtime import nn
from runtime.ops.shape import sum_to


class Reduce(nn.Module):
    def __init__(self, fn: Callable[[Any], Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Any) -> Any:
        return self.fn(x)


def _compiled_sum(fn: Callable[[Any], Any], data: np.ndarray) -> np.ndarray:
    fast = compiler.compile(Reduce(fn), (runtime.tensor(data),))
    with runtime.no_grad():
        return fast(runtime.tensor(data)).numpy()


def _ulps(values: np.ndarray, exact: np.ndarray) -> float:
    """The largest error in ulps of the exact result (its dtype is that of `values`)."""
    spacing = np.spacing(np.abs(exact).astype(values.dtype)).astype(np.longdouble)
    return float(np.max(np.abs(values.astype(np.longdouble) - exact) / spacing))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("what", ["sum(0)", "sum_to", "mean(0)"])
def test_a_column_sum_over_1000_rows_is_within_a_few_ulps(what: str, dtype: Any) -> None:
    # Positive numbers: the sum's error is not hidden by cancellation. Adding the 1000 rows one
    # after another was 20-23 ulps off in both dtypes; numpy's column sum is as bad (it adds rows
    # in turn too), PyTorch's cascade ~1-4.
    data = np.random.default_rng(0).random((1000, 512)).astype(dtype)
    fn = {"sum(0)": lambda x: x.sum(0), "sum_to": lambda x: sum_to(x, (512,)),
          "mean(0)": lambda x: x.mean(0)}[what]
    exact = data.astype(np.longdouble).sum(0) / (1000 if what == "mean(0)" else 1)
    error = _ulps(_compiled_sum(fn, data), exact)
    assert error <= 8, f"{what} of (1000, 512) {np.dtype(dtype).name}: {error:.1f} ulps off"


SHAPES = [  # (shape, dims): the comment says how the nest is blocked
    ((1000, 512), (0,)),  # the column sum: one level for 1000 rows
    ((40, 6, 50), (0, 2)),  # kept dimension between reduced ones (batch-norm style)
    ((5, 70, 7), (1,)),  # a kept dimension outside the blocked one
    ((70, 3000), (0,)),  # float32 partials hold 512: tiles of the 3000 outputs
    ((70, 300, 3), (0,)),  # tiles of a region with a dimension inside the tile
    ((40, 3, 40, 600), (0, 2)),  # region too wide and not tileable: the sequential fallback
    ((3, 5000), (1,)),  # row sums: contiguous scalars in blocks of 1024
    ((40000, 2), (0,)),  # two levels of partials (a narrow region: blocks of 128 rows)
    ((33,), (0,)),  # one row more than a block
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, dims", SHAPES, ids=[f"{s}-{d}" for s, d in SHAPES])
def test_blocked_sums_equal_numpy(shape: tuple[int, ...], dims: tuple[int, ...],
                                  dtype: Any) -> None:
    data = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    got = _compiled_sum(lambda x: x.sum(dims), data)
    exact = data.astype(np.longdouble).sum(dims)
    scale = np.abs(data.astype(np.longdouble)).sum(dims)  # the sum's condition
    error = float(np.max(np.abs(got - exact) / scale)) / float(np.finfo(dtype).eps)
    assert got.shape == exact.shape and got.dtype == dtype
    assert error <= 8, f"sum over {dims} of {shape}: error {error:.1f} eps of the magnitudes"


@pytest.mark.parametrize("width", [5, 20], ids=["row-by-row", "8-rows-at-once"])
@pytest.mark.parametrize("batch", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, BLOCK * BLOCK + 3, 70_000])
def test_any_batch_size_of_one_compiled_sum(batch: int, width: int) -> None:
    # the batch dimension is symbolic: three levels of partials, however many rows come
    rng = np.random.default_rng(batch)
    fast = compiler.compile(Reduce(lambda x: x.sum(0)), (runtime.randn(8, width),))
    data = rng.standard_normal((batch, width)).astype(np.float32)
    with runtime.no_grad():
        got = fast(runtime.tensor(data)).numpy()
    np.testing.assert_allclose(got, data.astype(np.float64).sum(0), rtol=1e-5,
                               atol=1e-5 * np.sqrt(max(batch, 1)))


def test_which_nests_are_blocked() -> None:
    def plan(shape: tuple[Any, ...], dims: tuple[int, ...], element_bytes: int = 4) -> Any:
        kept = [1 if d in dims else s for d, s in enumerate(shape)]
        own = contiguous_strides(kept)
        out = [0 if d in dims else own[d] for d in range(len(shape))]
        merged, (source_strides, out_strides) = merge_dimensions(
            shape, [contiguous_strides(shape), out])
        return plan_cascade(merged, source_strides, out_strides, element_bytes)

    assert plan((BLOCK, 100), (0,)) is None  # 32 rows: nothing to gain
    column = plan((1000, 512), (0,))
    assert (column.dim, column.levels, column.span, column.tile) == (0, 1, 512, None)
    assert column.rows_at_once == 8 and plan((1000, 3), (0,)).rows_at_once == 1
    assert plan((1000, 512), (0,), element_bytes=8).tile == 256  # 2 KB partials
    assert plan((3, 5000), (1,)).first_block == 1024
    assert plan((40, 3, 40, 600), (0, 2)) is None
