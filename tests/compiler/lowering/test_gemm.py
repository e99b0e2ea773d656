"""The packed GEMM against numpy in float64 (BLAS is the oracle), for every layout and edge size."""

import ctypes
import itertools
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from gemm_harness import compiled_gemm, gemm
from llvmlite import ir

from compiler.lowering.gemm import emit_gemm, gemm_config, workspace_elements
from compiler.lowering.target import (
    compile_object,
    host_has_feature,
    optimize,
    parse_module,
    target_machine,
)

EDGE_SIZES = [0, 1, 5, 7, 17, 63, 64, 65, 200]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-13}  # of max|C|


def _configs():
    """Every configuration this host can run: the 256-bit one always, 512-bit where present."""
    wide = [True] if host_has_feature("avx512f") else []
    return [
        gemm_config(dtype, avx512=avx512)
        for dtype in ("float32", "float64")
        for avx512 in [False, *wide]
    ]


CONFIGS = _configs()
CONFIG_IDS = [f"{c.dtype}-{c.tile_rows}x{c.tile_columns}" for c in CONFIGS]


def _stored(rng, rows, columns, dtype, transposed):
    """A rows x columns operand, stored transposed in memory if asked."""
    if transposed:
        return rng.standard_normal((columns, rows)).astype(dtype).T
    return rng.standard_normal((rows, columns)).astype(dtype)


def _assert_close(actual, a, b, dtype, base=None):
    expected = a.astype(np.float64) @ b.astype(np.float64)
    if base is not None:
        expected += base
    error = np.abs(actual - expected).max(initial=0)
    largest = np.abs(expected).max(initial=0)
    assert error <= TOLERANCE[dtype] * largest, (
        f"{a.shape} @ {b.shape}: max error {error:.2e} exceeds {TOLERANCE[dtype]} of max|C| "
        f"= {largest:.2e}"
    )


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("layout", ["NN", "TN", "NT", "TT"])
def test_every_combination_of_edge_sizes(config, layout):
    kernel = compiled_gemm(config=config)
    dtype = kernel.dtype.type
    rng = np.random.default_rng(sum(map(ord, layout)))
    for m, k, n in itertools.product(EDGE_SIZES, repeat=3):
        a = _stored(rng, m, k, dtype, layout[0] == "T")
        b = _stored(rng, k, n, dtype, layout[1] == "T")
        _assert_close(kernel(a, b), a, b, dtype)


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_shapes_that_cross_every_block_boundary(config):
    kernel = compiled_gemm(config=config)
    dtype = kernel.dtype.type
    rng = np.random.default_rng(1)
    shapes = [
        (config.row_block * 2 + 3, 2 * config.depth_block + 7, 100),  # several MC and KC blocks
        (3, 2, config.column_block + config.tile_columns + 5),  # several NC panels
        (config.tile_rows, config.depth_block + 1, config.tile_columns),  # K split 129 + 128
    ]
    for (m, k, n), layout in itertools.product(shapes, ["NN", "TN", "NT"]):
        a = _stored(rng, m, k, dtype, layout[0] == "T")
        b = _stored(rng, k, n, dtype, layout[1] == "T")
        _assert_close(kernel(a, b), a, b, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accumulate_adds_to_out(dtype):
    rng = np.random.default_rng(2)
    for m, k, n in [(65, 17, 63), (64, 64, 64), (7, 300, 5)]:
        a, b = _stored(rng, m, k, dtype, False), _stored(rng, k, n, dtype, True)
        base = rng.standard_normal((m, n)).astype(dtype)
        out = base.copy()
        assert gemm(a, b, out=out, accumulate=True) is out
        _assert_close(out, a, b, dtype, base=base)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_depth_gives_zeros_or_leaves_out_alone(dtype):
    a, b = np.ones((5, 0), dtype), np.ones((0, 9), dtype)
    out = np.full((5, 9), 3.0, dtype)
    gemm(a, b, out=out, accumulate=True)
    assert (out == 3.0).all(), "K = 0 with accumulate must leave out unchanged"
    gemm(a, b, out=out)
    assert (out == 0.0).all(), "K = 0 without accumulate must give zeros"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_any_strides_including_negative_and_sliced(dtype):
    rng = np.random.default_rng(3)
    big_a = rng.standard_normal((90, 120)).astype(dtype)
    big_b = rng.standard_normal((150, 80)).astype(dtype)
    operands = [
        (big_a[::2, ::3], big_b[:40, ::-1]),  # 45x40 @ 40x80, reversed columns
        (big_a[::-1, 5:45], big_b[::-3, 7:70][:40]),  # reversed rows, stride -3
        (big_a[:33, :70].T[::2], big_b[:33, :11]),  # transposed then strided
    ]
    for a, b in operands:
        _assert_close(gemm(a, b), a, b, dtype)


def test_writes_only_inside_out_even_when_rows_are_padded():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((37, 29)).astype(np.float32), rng.standard_normal((29, 51))
    b = b.astype(np.float32)
    canvas = np.full((40, 64), 7.0, np.float32)
    out = canvas[1:38, 3:54]
    gemm(a, b, out=out)
    _assert_close(out, a, b, np.float32)
    untouched = np.ones(canvas.shape, bool)
    untouched[1:38, 3:54] = False
    assert (canvas[untouched] == 7.0).all(), "gemm wrote outside the rows and columns of out"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parts_compose_the_whole_product(dtype):
    """Two threads will each compute a part of C; emulate the row and the column split."""
    kernel = compiled_gemm(dtype)
    rng = np.random.default_rng(5)
    m, k, n = 101, 77, 203
    a = np.ascontiguousarray(_stored(rng, m, k, dtype, True))
    b = _stored(rng, k, n, dtype, False)
    item = a.itemsize
    for row_split, column_split in [(50, n), (m, 96), (37, 101)]:
        c = np.full((m, n), np.nan, dtype)
        ranges = [
            (0, row_split, 0, column_split),
            (row_split, m, 0, column_split),
            (0, row_split, column_split, n),
            (row_split, m, column_split, n),
        ]
        for m0, m1, n0, n1 in ranges:
            workspace = np.empty(kernel.workspace_elements(m1 - m0, n1 - n0, k), dtype)
            kernel.part(
                m0,
                m1,
                n0,
                n1,
                k,
                a.ctypes.data,
                a.strides[0] // item,
                a.strides[1] // item,
                b.ctypes.data,
                b.strides[0] // item,
                b.strides[1] // item,
                c.ctypes.data,
                n,
                0,
                workspace.ctypes.data,
            )
        _assert_close(c, a, b, dtype)


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_workspace_size_in_python_matches_the_kernel(config):
    kernel = compiled_gemm(config=config)
    for m, n, k in itertools.product([0, 1, 7, 64, 193, 5000], [0, 1, 47, 48, 4200], [0, 1, 300]):
        assert kernel.workspace_elements(m, n, k) == workspace_elements(m, n, k, config)


def test_mistakes_are_reported_before_reaching_native_code():
    a32, b32 = np.ones((3, 4), np.float32), np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match="inner sizes differ"):
        gemm(a32, np.ones((5, 4), np.float32))
    with pytest.raises(TypeError, match="float64"):
        gemm(a32, b32.astype(np.float64))
    with pytest.raises(ValueError, match="accumulate=True needs `out`"):
        gemm(a32, b32, accumulate=True)
    with pytest.raises(ValueError, match="shape"):
        gemm(a32, b32, out=np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        gemm(a32, b32, out=np.empty((5, 3), np.float32).T)
    square = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        gemm(square, square, out=square)


def test_emitted_code_calls_no_library_function():
    module = ir.Module(name="standalone")
    for dtype in ("float32", "float64"):
        emit_gemm(module, gemm_config(dtype))
    module_ref = parse_module(module)
    optimize(module_ref)
    external = [
        f.name for f in module_ref.functions if f.is_declaration and not f.name.startswith("llvm.")
    ]
    assert external == [], f"the GEMM must not call library functions, but calls {external}"
    assert emit_gemm(module, gemm_config("float32")).name == "symgrad_gemm_f32"  # idempotent


def test_a_second_process_loads_the_kernel_from_the_object_cache(tmp_path):
    script = textwrap.dedent("""
        import sys
        import numpy as np
        sys.path.insert(0, "tests/compiler/lowering")
        from gemm_harness import compiled_gemm
        kernel = compiled_gemm("float32")
        a = np.arange(6, dtype=np.float32).reshape(2, 3)
        assert (kernel(a, a.T) == a @ a.T).all()
        print(kernel.library.from_cache)
    """)
    environment = {**os.environ, "SYMGRAD_CACHE_DIR": str(tmp_path)}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))

    def run():
        return subprocess.run(
            [sys.executable, "-c", script],
            env=environment,
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    assert run() == "False"
    assert len(list(tmp_path.glob("objects/*.o"))) == 1
    assert run() == "True"


def test_the_micro_kernel_is_one_noinline_function_of_vector_fmas():
    config = gemm_config("float32")
    module = ir.Module(name="inspect")
    emit_gemm(module, config)
    tile = module.get_global("symgrad_gemm_f32_tile")
    assert "noinline" in tile.attributes
    assert f"llvm.fma.v{config.lanes}f32" in str(tile)


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler driver to link")
def test_exported_object_links_alone_into_a_shared_library(tmp_path):
    """What `compiler.export` will do: an x86-64-v3 object, linked with nothing, then called."""
    config = gemm_config("float32", avx512=False)
    module = ir.Module(name="export")
    emit_gemm(module, config)
    object_path, library_path = tmp_path / "gemm.o", tmp_path / "libgemm.so"
    object_path.write_bytes(compile_object(module, target_machine(cpu="x86-64-v3")))
    subprocess.run(
        ["cc", "-shared", "-nostdlib", "-Wl,--no-undefined", "-o", library_path, object_path],
        check=True,
    )
    library = ctypes.CDLL(str(library_path))
    library.symgrad_gemm_f32_workspace.restype = ctypes.c_int64
    a = np.arange(35, dtype=np.float32).reshape(5, 7) / 10
    b = np.arange(21, dtype=np.float32).reshape(3, 7).T.copy() / 10
    c = np.empty((5, 3), np.float32)
    workspace = np.empty(
        library.symgrad_gemm_f32_workspace(*map(ctypes.c_int64, (5, 3, 7))), np.float32
    )
    arguments = [
        5,
        3,
        7,
        a.ctypes.data,
        7,
        1,
        b.ctypes.data,
        3,
        1,
        c.ctypes.data,
        3,
        0,
        workspace.ctypes.data,
    ]
    types = [ctypes.c_int64] * 3 + [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64] * 2
    types += [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p]
    library.symgrad_gemm_f32(*(t(v) for t, v in zip(types, arguments, strict=True)))
    _assert_close(c, a, b, np.float32)
