"""format_tensor must print exactly what ``repr(torch.tensor(...))`` prints.

The golden strings at the top were taken from PyTorch 2.13 and run without torch; the tests below
them compare against a live torch when it is installed, and skip otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from runtime._tensor_str import format_tensor

# -- golden strings (no torch needed) ------------------------------------------------------------

GOLDEN: list[tuple[str, np.ndarray, str, bool, list[str], str]] = [
    # (case, data, dtype_name, is_default_dtype, suffixes, expected)
    (
        "fixed_point",
        np.array([[1.0, -2.5], [0.125, 4.0]]),
        "torch.float64",
        False,
        ["requires_grad=True"],
        "tensor([[ 1.0000, -2.5000],\n"
        "        [ 0.1250,  4.0000]], dtype=torch.float64, requires_grad=True)",
    ),
    (
        "integer_valued_floats",
        np.array([1.0, 2.0, -3.0, 0.0], np.float32),
        "torch.float32",
        True,
        [],
        "tensor([ 1.,  2., -3.,  0.])",
    ),
    (
        "ratio_over_1000_is_scientific",
        np.array([1e-6, 1.0, 1e5], np.float32),
        "torch.float32",
        True,
        [],
        "tensor([1.0000e-06, 1.0000e+00, 1.0000e+05])",
    ),
    (
        "nan_and_inf_padded_to_finite_width",
        np.array([1.5, np.nan, np.inf, -np.inf], np.float32),
        "torch.float32",
        True,
        [],
        "tensor([1.5000,    nan,    inf,   -inf])",
    ),
    ("int_scalar", np.array(7), "torch.int64", True, [], "tensor(7)"),
    (
        "float_scalar",
        np.array(3.14159),
        "torch.float64",
        False,
        [],
        "tensor(3.1416, dtype=torch.float64)",
    ),
    (
        "bools",
        np.array([[True, False], [False, True]]),
        "torch.bool",
        True,
        [],
        "tensor([[ True, False],\n        [False,  True]])",
    ),
    (
        "empty_matrix_shows_size",
        np.zeros((0, 3), np.float32),
        "torch.float32",
        True,
        [],
        "tensor([], size=(0, 3))",
    ),
    (
        "empty_int_shows_dtype",
        np.zeros(0, np.int64),
        "torch.int64",
        True,
        [],
        "tensor([], dtype=torch.int64)",
    ),
    (
        "summarised",
        np.arange(2000),
        "torch.int64",
        True,
        [],
        "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])",
    ),
    (
        "blank_line_between_matrices",
        np.arange(12.0, dtype=np.float32).reshape(2, 2, 3),
        "torch.float32",
        True,
        [],
        "tensor([[[ 0.,  1.,  2.],\n"
        "         [ 3.,  4.,  5.]],\n"
        "\n"
        "        [[ 6.,  7.,  8.],\n"
        "         [ 9., 10., 11.]]])",
    ),
    (
        "row_and_suffixes_wrap",
        np.linspace(-1, 1, 15) * 2,
        "torch.float64",
        False,
        ["grad_fn=<MulBackward0>"],
        "tensor([-2.0000, -1.7143, -1.4286, -1.1429, -0.8571, -0.5714, -0.2857,  0.0000,\n"
        "         0.2857,  0.5714,  0.8571,  1.1429,  1.4286,  1.7143,  2.0000],\n"
        "       dtype=torch.float64, grad_fn=<MulBackward0>)",
    ),
    (
        "complex",
        np.array([1 + 2j, -0.5 - 1j], np.complex64),
        "torch.complex64",
        True,
        [],
        "tensor([ 1.0000+2.j, -0.5000-1.j])",
    ),
    (
        "int32_shows_dtype",
        np.array([[1, -20], [300, 4]], np.int32),
        "torch.int32",
        False,
        [],
        "tensor([[  1, -20],\n        [300,   4]], dtype=torch.int32)",
    ),
]


@pytest.mark.parametrize(
    "data, dtype_name, is_default_dtype, suffixes, expected",
    [case[1:] for case in GOLDEN],
    ids=[case[0] for case in GOLDEN],
)
def test_matches_golden_string(
    data: np.ndarray, dtype_name: str, is_default_dtype: bool, suffixes: list[str], expected: str
) -> None:
    got = format_tensor(
        data, dtype_name=dtype_name, is_default_dtype=is_default_dtype, suffixes=suffixes
    )
    assert got == expected, f"expected:\n{expected}\ngot:\n{got}"


def test_caller_chooses_the_dtype_text() -> None:
    got = format_tensor(
        np.array([1, 2], np.int32), dtype_name="runtime.int32", is_default_dtype=False, suffixes=[]
    )
    assert got == "tensor([1, 2], dtype=runtime.int32)"


def test_rejects_non_numeric_arrays() -> None:
    with pytest.raises(TypeError, match="expected a bool, integer, floating or complex array"):
        format_tensor(np.array(["a"]), dtype_name="x", is_default_dtype=True, suffixes=[])


# -- against a live torch ------------------------------------------------------------------------


def format_like_torch(tensor: Any) -> str:
    """format_tensor called with the arguments a runtime tensor mirroring ``tensor`` would pass."""
    torch = pytest.importorskip("torch")
    defaults = (torch.get_default_dtype(), torch.complex64, torch.int64, torch.bool)
    suffixes = []
    if tensor.grad_fn is not None:
        suffixes.append(f"grad_fn=<{type(tensor.grad_fn).__name__}>")
    elif tensor.requires_grad:
        suffixes.append("requires_grad=True")
    return format_tensor(
        tensor.detach().numpy(),
        dtype_name=str(tensor.dtype),
        is_default_dtype=tensor.dtype in defaults,
        suffixes=suffixes,
    )


def assert_prints_like_torch(tensor: Any) -> None:
    expected, got = repr(tensor), format_like_torch(tensor)
    assert got == expected, f"torch prints:\n{expected}\nformat_tensor gave:\n{got}"


SHAPES = [
    (),
    (1,),
    (5,),
    (7,),
    (30,),
    (3, 4),
    (2, 3, 4),
    (2, 2, 3, 2),
    (2000,),
    (40, 40),
    (7, 7, 7, 7),
    (3, 400),
]
SCALES = [1e-6, 1.0, 1e5, 1e10]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_random_normals(shape: tuple[int, ...], scale: float, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    data = (np.random.default_rng(0).standard_normal(shape) * scale).astype(dtype)
    assert_prints_like_torch(torch.from_numpy(np.array(data)))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_integer_valued_floats(shape: tuple[int, ...], dtype: str) -> None:
    torch = pytest.importorskip("torch")
    data = np.round(np.random.default_rng(1).standard_normal(shape) * 100).astype(dtype)
    assert_prints_like_torch(torch.from_numpy(np.array(data)))


@pytest.mark.parametrize("integer_valued", [False, True])
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("shape", [(4,), (3, 5), (2000,), (40, 40)], ids=str)
def test_nan_and_inf_among_values(
    shape: tuple[int, ...], scale: float, integer_valued: bool
) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    data = rng.standard_normal(shape) * scale
    if integer_valued:
        data = np.round(data)
    data.flat[[0, 1, -1]] = [np.nan, np.inf, -np.inf]
    assert_prints_like_torch(torch.from_numpy(data.astype(np.float32)))


@pytest.mark.parametrize(
    "values",
    [
        [np.nan],
        [np.inf, -np.inf],
        [0.0, -0.0],
        [0.0, np.nan],
        [5e-324, 1.0],
        [1e8, 1.5],
        [1.00000001e8],
        [9.9999e-5],
    ],
    ids=str,
)
def test_special_values(values: list[float]) -> None:
    torch = pytest.importorskip("torch")
    assert_prints_like_torch(torch.tensor(values, dtype=torch.float64))
    assert_prints_like_torch(torch.tensor(values[0], dtype=torch.float64))


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "uint8", "bool"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_integers_and_bools(shape: tuple[int, ...], dtype: str) -> None:
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(3).integers(-100, 100, shape).astype(dtype)
    assert_prints_like_torch(torch.from_numpy(np.array(data)))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int16", "bool", "complex64"])
@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0, 4)], ids=str)
def test_empty(shape: tuple[int, ...], dtype: str) -> None:
    torch = pytest.importorskip("torch")
    assert_prints_like_torch(torch.from_numpy(np.zeros(shape, dtype)))


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 4), (2000,)], ids=str)
def test_complex(shape: tuple[int, ...], dtype: str) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    data = rng.standard_normal(shape) + 1j * rng.standard_normal(shape) * 1e3
    assert_prints_like_torch(torch.from_numpy(np.array(data.astype(dtype))))


@pytest.mark.parametrize("length", range(1, 25))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_suffixes_wrap_like_torch(length: int, dtype: str) -> None:
    # Sweeps the last line's length across the 80-column limit, with suffixes of several lengths.
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(length).standard_normal(length).astype(dtype)
    leaf = torch.from_numpy(data).requires_grad_()
    assert_prints_like_torch(leaf)
    assert_prints_like_torch(leaf + 1)
    assert_prints_like_torch(leaf.exp().reshape(1, -1).softmax(dim=1))
