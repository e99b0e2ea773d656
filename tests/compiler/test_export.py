"""compiler.export: the tutorial model as a C library, built and run with the system C compiler.

The exported program's outputs must equal symgrad's eager forward; the library must need nothing
but libc, libm and pthreads; bad arguments and bad weights files must give the documented codes.
Tests that compile C are skipped when there is no `cc` on PATH.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import runtime
from compiler import cli
from compiler._compile import compile as compile_to_native
from compiler._export import ExportError, export
from compiler.export_command import load_model
from compiler.export_entry import ERRORS
from compiler.export_weights import HEADER, Weights, payload_digest
from runtime import nn

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = f"{ROOT / 'examples' / 'build_model.py'}:NeuralNetwork"
CODES = {e.suffix: e.value for e in ERRORS}
CC = shutil.which("cc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc) on PATH")
# what an exported object may leave undefined: libc, libm and pthreads
LIBC_SYMBOLS = {"malloc", "free", "memset", "memcpy", "memmove", "fopen", "fread", "fclose",
                "sysconf", "sched_yield"}
LIBM_SYMBOL = re.compile(r"(exp|expm1|log|log1p|pow|sqrt|tanh|sin|cos|fabs|fmax|fmin)f?")


def build_c(out: Path, sources: list[str], *, cwd: Path, libraries: tuple[str, ...] = ()) -> Path:
    """Compile and link `sources` (in `cwd`) into the program `out` with the system cc."""
    result = subprocess.run([CC, "-O2", "-o", str(out), *sources, *libraries, "-lm", "-pthread"],
                            cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"cc failed:\n{result.stderr}"
    return out


def run_program(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def printed_outputs(stdout: str) -> np.ndarray:
    return np.array([[float(v) for v in line.split()] for line in stdout.splitlines()],
                    dtype=np.float32)


def eager_forward(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with runtime.no_grad():
        return model(runtime.tensor(x)).numpy()


def images(batch: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, 1, 28, 28), dtype=np.float32)


@pytest.fixture(scope="module")
def tutorial_model() -> nn.Module:
    return load_model(TUTORIAL, seed=0)


@pytest.fixture(scope="module")
def exported(tutorial_model, tmp_path_factory):
    """The tutorial model exported as `mnist`, weights embedded."""
    return export(tutorial_model, (runtime.zeros(1, 1, 28, 28),),
                  tmp_path_factory.mktemp("export") / "mnist", "mnist")


@pytest.fixture(scope="module")
def example_programs(exported):
    """example.c linked with mnist.o, and linked with libmnist.so."""
    if CC is None:
        pytest.skip("no C compiler (cc) on PATH")
    folder = exported.out_dir
    with_object = build_c(folder / "example-object", ["example.c", "mnist.o"], cwd=folder)
    with_library = build_c(folder / "example-library", ["example.c"], cwd=folder,
                           libraries=("-L.", "-lmnist", "-Wl,-rpath,$ORIGIN"))
    return {"object": with_object, "shared library": with_library}


# ----- the files ----------------------------------------------------------------------------------

def test_export_writes_header_object_library_ir_and_example(exported):
    names = sorted(p.name for p in exported.out_dir.iterdir())
    expected = {"mnist.h", "mnist.o", "mnist.ll", "example.c", "Makefile"}
    assert expected <= set(names), names
    assert exported.weights is None and "mnist.weights" not in names
    if CC is not None:
        assert exported.shared_library == exported.out_dir / "libmnist.so"
    ir_text = exported.ir.read_text()
    assert re.search(r'^define i32 @"mnist_forward"\(ptr %"input", i64 %"batch", ptr %"output"\)',
                     ir_text, re.M), "mnist.ll does not define mnist_forward"


def test_header_documents_the_function_shapes_codes_and_the_model(exported, tutorial_model):
    header = exported.header.read_text()
    assert "int32_t mnist_forward(const float *input, int64_t batch, float *output);" in header
    assert "shape [batch, 1, 28, 28]" in header and "shape [batch, 10]" in header
    assert "#define MNIST_INPUT_SIZE_PER_EXAMPLE 784" in header
    assert "#define MNIST_OUTPUT_SIZE_PER_EXAMPLE 10" in header
    for error in ERRORS:
        if not error.weights_file_only:
            assert f"#define MNIST_{error.suffix} {error.value}  /* {error.meaning} */" in header
    assert "MNIST_ERROR_WEIGHTS_CORRUPT" not in header  # no weights file, no such code
    assert "reentrant" in header
    assert f"symgrad {runtime.__version__}" in header
    assert "(4): Linear(in_features=512, out_features=10, bias=True)" in header
    assert "Parameters: 669,706." in header
    digest = hashlib.sha256()
    for _, parameter in tutorial_model.named_parameters():
        digest.update(parameter.detach().numpy().astype("<f4").tobytes())
    assert digest.hexdigest() in header


@needs_cc
def test_header_compiles_as_c_and_cpp_free_of_warnings(exported, tmp_path):
    (tmp_path / "use.c").write_text('#include "mnist.h"\nint main(void) { return MNIST_OK; }\n')
    result = subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror",
                             f"-I{exported.out_dir}", "-c", "use.c"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ----- running the exported code ------------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 17])
@pytest.mark.parametrize("linked_with", ["object", "shared library"])
def test_example_program_prints_the_eager_forward(example_programs, tutorial_model, tmp_path,
                                                  linked_with, batch):
    x = images(batch, seed=batch)
    x.astype("<f4").tofile(tmp_path / "input.bin")
    result = run_program(example_programs[linked_with], "input.bin", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    actual = printed_outputs(result.stdout)
    assert actual.shape == (batch, 10)
    np.testing.assert_allclose(actual, eager_forward(tutorial_model, x), rtol=1e-5, atol=1e-6)


def test_example_program_reads_text_input(example_programs, tutorial_model, tmp_path):
    x = images(3, seed=7)
    np.savetxt(tmp_path / "input.txt", x.reshape(3, -1), fmt="%.9g")
    result = run_program(example_programs["object"], "--text", "input.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(printed_outputs(result.stdout), eager_forward(tutorial_model, x),
                               rtol=1e-5, atol=1e-6)


def test_example_program_reports_a_partial_example(example_programs, tmp_path):
    np.zeros(784 + 5, "<f4").tofile(tmp_path / "input.bin")
    result = run_program(example_programs["object"], "input.bin", cwd=tmp_path)
    assert result.returncode == 1
    assert "789 values is not a whole number of examples of 784 values" in result.stderr


@needs_cc
@pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH")
def test_makefile_builds_the_example_both_ways(exported, tutorial_model, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exported.out_dir, folder)
    for program in ("example", "example-shared"):
        (folder / program).unlink(missing_ok=True)
    result = subprocess.run(["make", "-s"], cwd=folder, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    x = images(2, seed=3)
    x.tofile(tmp_path / "input.bin")
    for program in ("example", "example-shared"):
        run = run_program(folder / program, tmp_path / "input.bin", cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        np.testing.assert_allclose(printed_outputs(run.stdout), eager_forward(tutorial_model, x),
                                   rtol=1e-5, atol=1e-6)


@needs_cc
def test_object_needs_only_libc_libm_and_pthreads(exported):
    result = subprocess.run(["nm", "-u", str(exported.object)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    undefined = {line.split()[-1] for line in result.stdout.splitlines() if line.strip()}
    foreign = {s for s in undefined if s not in LIBC_SYMBOLS and not s.startswith("pthread_")
               and not LIBM_SYMBOL.fullmatch(s)}
    assert undefined and not foreign, f"symbols from outside libc/libm/pthreads: {foreign}"
    defined = subprocess.run(["nm", "-g", "--defined-only", str(exported.object)],
                             capture_output=True, text=True).stdout
    assert [line.split()[-1] for line in defined.splitlines()] == ["mnist_forward"]


ERROR_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "mnist.h"

int main(void) {
    float *input = calloc(MNIST_INPUT_SIZE(5), sizeof(float));
    float output[MNIST_OUTPUT_SIZE(5)];
    printf("batch 0: %d\n", (int)mnist_forward(input, 0, output));
    printf("batch -3: %d\n", (int)mnist_forward(input, -3, output));
    printf("null input: %d\n", (int)mnist_forward(NULL, 1, output));
    printf("null output: %d\n", (int)mnist_forward(input, 1, NULL));
    printf("batch above the limit: %d\n", (int)mnist_forward(input, MNIST_MAX_BATCH + 1, output));
    printf("batch 5: %d\n", (int)mnist_forward(input, 5, output));
    free(input);
    return 0;
}
"""


def run_driver(folder: Path, source: str, tmp_path: Path, link: list[str]) -> dict[str, int]:
    """Compile a C driver against the export in `folder`; its printed 'label: code' lines."""
    (tmp_path / "driver.c").write_text(source)
    build_c(tmp_path / "driver", ["driver.c", f"-I{folder}", *link], cwd=tmp_path)
    result = run_program(tmp_path / "driver", cwd=folder)
    assert result.returncode == 0, result.stderr
    return {label: int(code) for label, code in
            (line.rsplit(": ", 1) for line in result.stdout.splitlines())}


@needs_cc
def test_bad_batch_and_null_pointers_return_the_documented_codes(exported, tmp_path):
    codes = run_driver(exported.out_dir, ERROR_DRIVER, tmp_path, [str(exported.object)])
    assert codes == {"batch 0": CODES["ERROR_BAD_BATCH"], "batch -3": CODES["ERROR_BAD_BATCH"],
                     "null input": CODES["ERROR_NULL_POINTER"],
                     "null output": CODES["ERROR_NULL_POINTER"],
                     "batch above the limit": CODES["ERROR_OUT_OF_MEMORY"],
                     "batch 5": CODES["OK"]}
    assert (CODES["OK"], CODES["ERROR_NULL_POINTER"], CODES["ERROR_BAD_BATCH"]) == (0, 1, 2)


@needs_cc
def test_max_batch_caps_the_batch(tutorial_model, tmp_path):
    result = export(tutorial_model, (runtime.zeros(1, 1, 28, 28),), tmp_path / "mnist",
                    max_batch=4)
    assert "#define MNIST_MAX_BATCH INT64_C(4)" in result.header.read_text()
    driver = ERROR_DRIVER.replace("batch 5: %d", "batch 4: %d").replace(
        "(input, 5, output)", "(input, 4, output)")
    codes = run_driver(result.out_dir, driver, tmp_path, [str(result.object)])
    assert codes["batch 4"] == CODES["OK"]
    assert codes["batch above the limit"] == CODES["ERROR_OUT_OF_MEMORY"]


THREADS_DRIVER = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mnist.h"

enum { THREADS = 4, CALLS = 20, BATCH = 64 };
static float input[MNIST_INPUT_SIZE(BATCH)], expected[MNIST_OUTPUT_SIZE(BATCH)];

static void *worker(void *failures) {
    float *output = malloc(sizeof expected);
    for (int call = 0; call < CALLS; ++call) {
        if (mnist_forward(input, BATCH, output) != MNIST_OK ||
            memcmp(output, expected, sizeof expected) != 0) ++*(int *)failures;
    }
    free(output);
    return NULL;
}

int main(void) {
    for (int i = 0; i < MNIST_INPUT_SIZE(BATCH); ++i) input[i] = (float)(i % 97) / 97.0f;
    if (mnist_forward(input, BATCH, expected) != MNIST_OK) return 1;
    pthread_t threads[THREADS];
    int failures[THREADS] = {0};
    for (int t = 0; t < THREADS; ++t) pthread_create(&threads[t], NULL, worker, &failures[t]);
    int total = 0;
    for (int t = 0; t < THREADS; ++t) {
        pthread_join(threads[t], NULL);
        total += failures[t];
    }
    printf("failures: %d\n", total);
    return 0;
}
"""


@needs_cc
def test_threads_may_call_forward_at_once(exported, tmp_path):
    codes = run_driver(exported.out_dir, THREADS_DRIVER, tmp_path, [str(exported.object)])
    assert codes == {"failures": 0}


# ----- weights in a file --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported_with_weights_file(tutorial_model, tmp_path_factory):
    result = export(tutorial_model, (runtime.zeros(1, 1, 28, 28),),
                    tmp_path_factory.mktemp("export") / "mnist", "mnist", embed_weights=False)
    if CC is None:
        pytest.skip("no C compiler (cc) on PATH")
    build_c(result.out_dir / "example", ["example.c", "mnist.o"], cwd=result.out_dir)
    return result


def test_weights_file_has_the_documented_header(tutorial_model, exported_with_weights_file):
    data = exported_with_weights_file.weights.read_bytes()
    magic, version, count, layout, payload_bytes, digest = HEADER.unpack_from(data)
    parameters = dict(tutorial_model.named_parameters())
    weights = Weights.of(list(parameters), [p.detach().numpy() for p in parameters.values()])
    assert (magic, version, count) == (b"SYMGRADW", 2, 6)
    assert HEADER.size == 64
    assert layout == weights.layout_hash()
    assert payload_bytes == len(data) - HEADER.size
    assert digest == hashlib.sha256(data[HEADER.size:]).digest() == payload_digest(
        data[HEADER.size:])
    first = parameters["linear_relu_stack.0.weight"].detach().numpy()
    np.testing.assert_array_equal(np.frombuffer(data, "<f4", first.size, HEADER.size),
                                  first.reshape(-1))


def run_with_weights(export_result, weights_path: Path, tmp_path: Path):
    x = images(2, seed=11)
    x.tofile(tmp_path / "input.bin")
    result = run_program(export_result.out_dir / "example", "--weights", weights_path,
                         tmp_path / "input.bin", cwd=tmp_path)
    return x, result


def test_good_weights_file_gives_the_eager_forward(exported_with_weights_file, tutorial_model,
                                                   tmp_path):
    x, result = run_with_weights(exported_with_weights_file, exported_with_weights_file.weights,
                                 tmp_path)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(printed_outputs(result.stdout), eager_forward(tutorial_model, x),
                               rtol=1e-5, atol=1e-6)


def test_retrained_weights_of_the_same_model_are_accepted(exported_with_weights_file, tmp_path):
    retrained = load_model(TUTORIAL, seed=1)
    names, tensors = zip(*retrained.named_parameters())
    path = tmp_path / "retrained.weights"
    path.write_bytes(Weights.of(names, [t.detach().numpy() for t in tensors]).file_bytes())
    x, result = run_with_weights(exported_with_weights_file, path, tmp_path)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(printed_outputs(result.stdout), eager_forward(retrained, x),
                               rtol=1e-5, atol=1e-6)


def corrupted(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[HEADER.size + 123_457] ^= 0x40
    return bytes(damaged)


def mismatched(_: bytes) -> bytes:
    other = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    names, tensors = zip(*other.named_parameters())
    return Weights.of(names, [t.detach().numpy() for t in tensors]).file_bytes()


@pytest.mark.parametrize("damage, code", [
    (corrupted, "ERROR_WEIGHTS_CORRUPT"),
    (lambda data: data[:-64], "ERROR_WEIGHTS_CORRUPT"),  # truncated
    (lambda data: data + b"\0", "ERROR_WEIGHTS_CORRUPT"),  # too long
    (mismatched, "ERROR_WEIGHTS_MISMATCH"),
    (lambda data: b"PK\3\4" + data[4:], "ERROR_WEIGHTS_FORMAT"),
    (lambda data: data[:20], "ERROR_WEIGHTS_FORMAT"),  # shorter than a header
], ids=["corrupted", "truncated", "too-long", "mismatched", "other-format", "tiny"])
def test_bad_weights_file_is_refused_with_its_code(exported_with_weights_file, tmp_path, damage,
                                                   code):
    path = tmp_path / "bad.weights"
    path.write_bytes(damage(exported_with_weights_file.weights.read_bytes()))
    _, result = run_with_weights(exported_with_weights_file, path, tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"(code {CODES[code]})" in result.stderr


INIT_DRIVER = r"""
#include <stdio.h>
#include "mnist.h"

int main(void) {
    static float input[MNIST_INPUT_SIZE(1)], output[MNIST_OUTPUT_SIZE(1)];
    printf("before init: %d\n", (int)mnist_forward(input, 1, output));
    printf("null path: %d\n", (int)mnist_init(NULL));
    printf("missing file: %d\n", (int)mnist_init("no-such.weights"));
    printf("init: %d\n", (int)mnist_init("mnist.weights"));
    printf("after init: %d\n", (int)mnist_forward(input, 1, output));
    printf("bad file keeps the weights: %d\n", (int)mnist_init("Makefile"));
    printf("still: %d\n", (int)mnist_forward(input, 1, output));
    return 0;
}
"""


def test_init_codes_and_forward_before_init(exported_with_weights_file, tmp_path):
    folder = exported_with_weights_file.out_dir
    codes = run_driver(folder, INIT_DRIVER, tmp_path, [str(folder / "mnist.o")])
    assert codes == {"before init": CODES["ERROR_NOT_INITIALIZED"],
                     "null path": CODES["ERROR_NULL_POINTER"],
                     "missing file": CODES["ERROR_WEIGHTS_UNREADABLE"],
                     "init": CODES["OK"], "after init": CODES["OK"],
                     "bad file keeps the weights": CODES["ERROR_WEIGHTS_FORMAT"],
                     "still": CODES["OK"]}


def test_header_of_a_weights_file_export_documents_init(exported_with_weights_file):
    header = exported_with_weights_file.header.read_text()
    assert "int32_t mnist_init(const char *weights_path);" in header
    assert "#define MNIST_ERROR_WEIGHTS_MISMATCH 7" in header
    assert "mnist_init is not reentrant" in header


# ----- other dtypes, targets, determinism, folders, the command -----------------------------------

class SmallDoubleModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3).double()
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        return self.softmax(self.linear(x))


@needs_cc
def test_float64_model_reads_and_prints_doubles(tmp_path):
    runtime.manual_seed(0)
    model = SmallDoubleModel()
    result = export(model, (runtime.zeros(1, 4, dtype=runtime.float64),), tmp_path / "small")
    assert "int32_t small_forward(const double *input, int64_t batch, double *output);" in \
        result.header.read_text()
    build_c(tmp_path / "example", ["example.c", "small.o"], cwd=result.out_dir)
    x = np.random.default_rng(0).standard_normal((5, 4))
    x.astype("<f8").tofile(tmp_path / "input.bin")
    run = run_program(tmp_path / "example", "input.bin", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    actual = np.array([[float(v) for v in line.split()] for line in run.stdout.splitlines()])
    np.testing.assert_allclose(actual, eager_forward(model, x), rtol=1e-12, atol=1e-14)


def test_cross_export_to_aarch64_writes_an_aarch64_object(tutorial_model, tmp_path):
    with pytest.warns(UserWarning, match="libmnist.so was not linked: mnist.o is for aarch64"):
        result = export(tutorial_model, (runtime.zeros(1, 1, 28, 28),), tmp_path / "mnist",
                        target="aarch64-unknown-linux-gnu")
    elf = result.object.read_bytes()
    assert elf[:4] == b"\x7fELF" and elf[4] == 2  # 64-bit
    assert int.from_bytes(elf[18:20], "little") == 183  # e_machine: EM_AARCH64
    assert result.shared_library is None and not list(tmp_path.glob("mnist/*.so"))
    assert "aarch64-unknown-linux-gnu (CPU generic)" in result.header.read_text()


@needs_cc
@pytest.mark.parametrize("batch", [1, 64])
def test_export_for_this_cpu_computes_what_the_runtime_computes(tutorial_model, tmp_path, batch):
    """With cpu='native' the library holds the same kernels `compiler.compile` runs under no_grad,
    so the outputs agree to float32 rounding (the library is one compilation unit where the JIT
    links to a separate kernel library, so LLVM may order a dot product's additions differently;
    printed with 9 digits, float32 round-trips exactly)."""
    result = export(tutorial_model, (runtime.zeros(1, 1, 28, 28),), tmp_path / "mnist",
                    cpu="native")
    assert "(CPU x86-64-v3)" not in result.header.read_text()
    build_c(tmp_path / "example", ["example.c", "mnist.o"], cwd=result.out_dir)
    x = images(batch, seed=5)
    x.tofile(tmp_path / "input.bin")
    run = run_program(tmp_path / "example", "input.bin", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    compiled = compile_to_native(tutorial_model, (runtime.tensor(x),))
    with runtime.no_grad():
        expected = compiled(runtime.tensor(x)).numpy()
    np.testing.assert_allclose(printed_outputs(run.stdout), expected, rtol=1e-6, atol=1e-7)


def test_native_cpu_of_another_target_is_refused(tutorial_model, tmp_path):
    with pytest.raises(ValueError, match="cpu='native' means this machine's CPU"):
        export(tutorial_model, (runtime.zeros(1, 1, 28, 28),), tmp_path / "m",
               target="aarch64-unknown-linux-gnu", cpu="native")


def test_unknown_target_is_a_clear_error(tutorial_model, tmp_path):
    with pytest.raises(ValueError, match="cannot export for target 'nonsense-cpu-none'"):
        export(tutorial_model, (runtime.zeros(1, 1, 28, 28),), tmp_path / "m",
               target="nonsense-cpu-none")


def test_exporting_twice_gives_byte_identical_files(exported, tutorial_model, tmp_path):
    again = export(tutorial_model, (runtime.zeros(1, 1, 28, 28),), tmp_path / "mnist", "mnist")
    assert [p.name for p in again.files] == [p.name for p in exported.files]
    for first, second in zip(exported.files, again.files):
        assert first.read_bytes() == second.read_bytes(), f"{first.name} differs"


def test_changed_weights_change_the_hash_in_the_header(tmp_path):
    first = export(load_model(TUTORIAL, seed=0), (runtime.zeros(1, 1, 28, 28),), tmp_path / "a")
    second = export(load_model(TUTORIAL, seed=1), (runtime.zeros(1, 1, 28, 28),), tmp_path / "b")
    sha = re.compile(r"[0-9a-f]{64}")
    assert sha.search(first.header.read_text())[0] != sha.search(second.header.read_text())[0]


def test_missing_folders_are_created_and_name_defaults_to_the_folder(tutorial_model, tmp_path):
    result = export(tutorial_model, (runtime.zeros(1, 1, 28, 28),),
                    tmp_path / "new" / "deeper" / "digits-v2")
    assert result.name == "digits_v2"
    assert (tmp_path / "new" / "deeper" / "digits-v2" / "digits_v2.h").is_file()


def test_folder_under_a_file_is_a_clear_error(tutorial_model, tmp_path):
    (tmp_path / "plain-file").write_text("not a folder")
    with pytest.raises(ExportError, match="cannot write the export into .*plain-file/mnist"):
        export(tutorial_model, (runtime.zeros(1, 1, 28, 28),), tmp_path / "plain-file" / "mnist")


def test_unwritable_folder_is_a_clear_error(tutorial_model, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user (root?) can write to a read-only folder")
        with pytest.raises(ExportError, match="Permission denied; choose a folder"):
            export(tutorial_model, (runtime.zeros(1, 1, 28, 28),), locked / "mnist")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("name", ["my-model", "3d", "a b", ""])
def test_name_must_be_a_c_identifier(tutorial_model, tmp_path, name):
    with pytest.raises(ValueError, match="is not a C identifier"):
        export(tutorial_model, (runtime.zeros(1, 1, 28, 28),), tmp_path / "m", name)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def forward(self, x, y):
        return self.linear(x) + y


def test_model_with_two_inputs_is_refused(tmp_path):
    with pytest.raises(ValueError, match="must take one tensor and return one; it takes 2"):
        export(TwoInputs(), (runtime.zeros(1, 3), runtime.zeros(1, 3)), tmp_path / "m")


def test_symgrad_export_command_in_another_process_writes_the_same_files(exported, tmp_path):
    """The command, run in a fresh process with another hash seed, writes byte-identical files:
    nothing in the export depends on object ids, set order or the process."""
    result = subprocess.run([sys.executable, "-m", "compiler.cli", "export", TUTORIAL, "--input",
                             "1,1,28,28", "-o", str(tmp_path / "cli"), "--name", "mnist"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert result.returncode == 0, result.stderr
    assert f"exported NeuralNetwork as mnist into {tmp_path / 'cli'}:" in result.stdout
    for path in exported.files:
        assert (tmp_path / "cli" / path.name).read_bytes() == path.read_bytes(), path.name


def test_symgrad_export_command_weights_file_and_target(tmp_path, capsys):
    status = cli.main(["export", TUTORIAL, "--input", "1,1,28,28", "-o", str(tmp_path / "arm"),
                       "--no-embed-weights", "--target", "aarch64-unknown-linux-gnu"])
    assert status == 0, capsys.readouterr().err
    assert "note: libarm.so was not linked" in capsys.readouterr().out
    assert (tmp_path / "arm" / "arm.weights").is_file()
    assert int.from_bytes((tmp_path / "arm" / "arm.o").read_bytes()[18:20], "little") == 183


@pytest.mark.parametrize("spec, message", [
    (f"{ROOT / 'examples' / 'build_model.py'}:Missing", "defines no class 'Missing' (its "
                                                        "classes: NeuralNetwork)"),
    ("no/such/file.py:Model", "no/such/file.py: no such file"),
    ("examples/build_model.py", "name the model as FILE.py:NAME"),
])
def test_symgrad_export_command_errors_name_the_mistake(tmp_path, capsys, spec, message):
    status = cli.main(["export", spec, "--input", "1,1,28,28", "-o", str(tmp_path / "m")])
    assert status == 1
    assert message in capsys.readouterr().err


# ----- files written safely, weights checked by their SHA-256 -----------------------------------

def test_links_planted_in_the_folder_are_replaced_never_written_through(tmp_path):
    model = nn.Linear(3, 2)
    outside = tmp_path / "outside"
    outside.mkdir()
    out_dir = tmp_path / "export"
    out_dir.mkdir()
    for file_name in ("mlp.h", "mlp.o", "mlp.weights", "libmlp.so", "Makefile"):
        (outside / file_name).write_text("precious\n")
        (out_dir / file_name).symlink_to(outside / file_name)
    result = export(model, (runtime.zeros(1, 3),), out_dir, "mlp", embed_weights=False)
    for path in result.files:
        assert path.is_file() and not path.is_symlink(), f"{path.name} should be a fresh file"
    for file_name in ("mlp.h", "mlp.o", "mlp.weights", "libmlp.so", "Makefile"):
        assert (outside / file_name).read_text() == "precious\n", f"{file_name} written through"
    assert "int32_t mlp_init" in (out_dir / "mlp.h").read_text()
    assert not list(out_dir.glob(".*.tmp")), "no temporary file may be left behind"


FLIP_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tiny.h"

static unsigned char original[4096], mutated[4096];
static long size;

/* init on `mutated` written over the file (same size: rewritten in place, which is fast
   where truncating is not): 1 if it was accepted */
static int accepted(const char *path) {
    FILE *f = fopen(path, "r+b");
    fwrite(mutated, 1, (size_t)size, f);
    fclose(f);
    return tiny_init(path) == TINY_OK;
}

static void flip(long bit) { mutated[bit / 8] ^= (unsigned char)(1u << (bit % 8)); }

int main(int argc, char **argv) {
    FILE *f = fopen(argv[1], "rb");
    size = (long)fread(original, 1, sizeof original, f);
    fclose(f);
    const char *scratch = argv[2];
    long bits = 8 * size, tried = 0, missed = 0;
    memcpy(mutated, original, (size_t)size);
    f = fopen(scratch, "wb");
    fclose(f);
    printf("original %d\n", accepted(scratch));
    for (long i = 0; i < bits; i++) {                     /* every single bit */
        memcpy(mutated, original, (size_t)size); flip(i);
        tried++; missed += accepted(scratch);
    }
    for (long i = 0; i < bits; i += 64)                   /* one bit in two words, each bit */
        for (long j = i + 64; j < bits; j += 64)
            for (long b = 0; b < 64; b += 7) {
                memcpy(mutated, original, (size_t)size); flip(i + b); flip(j + b);
                tried++; missed += accepted(scratch);
            }
    unsigned long long state = 12345;                     /* and random pairs */
    for (int n = 0; n < 20000; n++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        long i = (long)((state >> 20) % (unsigned long long)bits);
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        long j = (long)((state >> 20) % (unsigned long long)bits);
        if (i == j) continue;
        memcpy(mutated, original, (size_t)size); flip(i); flip(j);
        tried++; missed += accepted(scratch);
    }
    printf("tried %ld\nmissed %ld\n", tried, missed);
    return 0;
}
"""


@needs_cc
def test_every_one_and_two_bit_flip_of_a_weights_file_is_refused(tmp_path):
    """Every single bit, the same bits of every two words (the sum checksum of an earlier format
    missed these), and 20,000 random pairs: each mutated file is refused by init."""
    runtime.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    result = export(model, (runtime.zeros(1, 3),), tmp_path / "tiny", "tiny", embed_weights=False)
    assert result.weights.stat().st_size <= 1024
    (result.out_dir / "flip.c").write_text(FLIP_DRIVER)
    program = build_c(tmp_path / "flip", ["flip.c", "tiny.o"], cwd=result.out_dir)
    run = run_program(program, result.weights, tmp_path / "scratch.weights", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    counts = dict(line.split() for line in run.stdout.splitlines())
    assert counts["original"] == "1", "the unmutated file must load"
    assert int(counts["tried"]) > 8 * result.weights.stat().st_size
    assert counts["missed"] == "0", f"{counts['missed']} mutated files were accepted"
