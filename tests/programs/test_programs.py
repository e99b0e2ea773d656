"""Whole programs written the way the PyTorch tutorials write them, run end to end with
`import runtime as torch` and, where PyTorch is installed, once more with `import torch`: the
printed lines must agree (shapes, dtypes, devices, module reprs, grad_fn chains), and so must
every printed number, to float32 rounding."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NUMBER = re.compile(r"-?\d+\.\d+(?:e[+-]?\d+)?")


def run(source: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", source, *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"program failed:\n{result.stderr}"
    return result.stdout


def for_torch(source: str) -> str:
    switched = source.replace("import runtime as torch", "import torch")
    switched = switched.replace("from runtime import", "from torch import")
    return switched.replace("from runtime.", "from torch.")


def assert_same_output(ours: str, theirs: str, rtol: float) -> None:
    ours_lines = ours.replace("runtime.", "torch.").splitlines()
    theirs_lines = theirs.splitlines()
    assert len(ours_lines) == len(theirs_lines), f"{ours}\n---- PyTorch printed ----\n{theirs}"
    for a, b in zip(ours_lines, theirs_lines):
        assert NUMBER.sub("#", a) == NUMBER.sub("#", b), f"symgrad: {a!r}\nPyTorch: {b!r}"
        np.testing.assert_allclose([float(n) for n in NUMBER.findall(a)],
                                   [float(n) for n in NUMBER.findall(b)], rtol=rtol, atol=2e-4,
                                   err_msg=f"symgrad: {a!r}\nPyTorch: {b!r}")


@pytest.fixture(scope="module")
def sine_fit():
    return (HERE / "sine_fit_on_the_best_device.py").read_text()


def test_sine_fit_runs_on_the_cpu_and_converges(sine_fit):
    output = run(sine_fit)
    assert output.startswith("Using cpu device\nx: runtime.Size([2000]) runtime.float32 cpu\n")
    assert ("grad_fn chain: SumBackward0 -> PowBackward0 -> SubBackward0 -> AddBackward0 -> "
            "MulBackward0 -> Legendre3Backward -> AddBackward0 -> MulBackward0 -> "
            "AccumulateGrad") in output
    losses = [float(n) for n in re.findall(r"loss (\S+)", output)]
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2]
    assert output.endswith("back on cpu runtime.float64\n")


def test_sine_fit_prints_what_pytorch_prints(sine_fit):
    pytest.importorskip("torch")
    assert_same_output(run(sine_fit), run(for_torch(sine_fit)), rtol=2e-3)


@pytest.fixture(scope="module")
def quickstart():
    return (HERE / "quickstart_save_and_load.py").read_text()


def test_quickstart_trains_saves_loads_and_predicts(quickstart, tmp_path):
    output = run(quickstart, str(tmp_path))
    assert "Shape of X [N, C, H, W]: runtime.Size([16, 1, 28, 28])\n" in output
    assert "Shape of y: runtime.Size([16]) runtime.int64\n" in output
    assert "Saved PyTorch Model State to model.pth\n" in output
    assert re.search(r'^Predicted: "[^"]+", Actual: "Bag"$', output, re.M)
    losses = [float(n) for n in re.findall(r"^loss: (\S+)", output, re.M)]
    assert losses[-1] < losses[0]
    assert (tmp_path / "model.pth").exists()


def test_quickstart_prints_what_pytorch_prints_and_the_checkpoints_cross(quickstart, tmp_path):
    torch = pytest.importorskip("torch")
    import runtime

    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    ours = run(quickstart, str(tmp_path / "ours"))
    theirs = run(for_torch(quickstart), str(tmp_path / "theirs"))
    assert_same_output(ours, theirs, rtol=1e-4)
    written_by_symgrad = torch.load(tmp_path / "ours" / "model.pth")
    written_by_torch = runtime.load(tmp_path / "theirs" / "model.pth")
    for name, value in written_by_torch.items():
        np.testing.assert_allclose(value.numpy(), written_by_symgrad[name].numpy(), rtol=1e-4,
                                   atol=1e-6)


@pytest.fixture(scope="module")
def polynomial_fit():
    return (HERE / "polynomial_fit_with_rmsprop.py").read_text()


def test_polynomial_fit_with_rmsprop_converges(polynomial_fit):
    output = run(polynomial_fit)
    assert output.startswith("features: runtime.Size([2000, 3]) runtime.float32\n")
    assert "RMSprop (\nParameter Group 0\n    alpha: 0.99\n" in output
    assert ("grad_fn chain: MseLossBackward0 -> ViewBackward0 -> AddmmBackward0 -> "
            "AccumulateGrad\n") in output
    losses = [float(n) for n in re.findall(r"loss (\S+)", output)]
    assert len(losses) == 5 and all(a > b for a, b in zip(losses, losses[1:]))
    assert "{0: ['square_avg', 'step'], 1: ['square_avg', 'step']} steps: 1500.0" in output
    coefficients = [float(n) for n in NUMBER.findall(output.splitlines()[-1])]
    np.testing.assert_allclose(coefficients, [0.0, 0.82, 0.0, -0.089], atol=0.01)


def test_polynomial_fit_with_rmsprop_prints_what_pytorch_prints(polynomial_fit):
    pytest.importorskip("torch")
    assert_same_output(run(polynomial_fit), run(for_torch(polynomial_fit)), rtol=1e-4)
