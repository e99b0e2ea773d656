"""Whole programs in the style of the public tutorials (LeNet from the blitz, the CIFAR-10
classifier, a character-level GPT) run end to end on symgrad and, where PyTorch is installed, the
same source with `import torch` runs from the same starting weights: every printed line must
agree (module reprs, shapes, dtypes, grad_fn names), numbers within float32 rounding.

Each program takes --save-init / --init to write and read its starting weights (numpy .npz), so
the two runs start alike; data comes from seeded numpy generators.
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PROGRAMS = Path(__file__).resolve().parent

NUMBER = re.compile(r"-?\d+\.?\d*(?:e[-+]?\d+)?")


def run(program: Path, *args: str, torch: bool = False) -> str:
    source = program.read_text()
    if torch:
        source = source.replace("import runtime as torch", "import torch")
        source = re.sub(r"(import|from) runtime\.", r"\1 torch.", source)
    result = subprocess.run([sys.executable, "-", *args], input=source, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return re.sub(r"0x[0-9a-f]+", "0x...", result.stdout).replace("runtime.", "torch.")


def assert_same_output(ours: str, theirs: str, rtol: float = 2e-4, atol: float = 2e-5) -> None:
    ours_lines, their_lines = ours.splitlines(), theirs.splitlines()
    assert len(ours_lines) == len(their_lines), (ours, theirs)
    for mine, other in zip(ours_lines, their_lines):
        assert NUMBER.sub("#", mine) == NUMBER.sub("#", other), (mine, other)
        a = np.array([float(x) for x in NUMBER.findall(mine)])
        b = np.array([float(x) for x in NUMBER.findall(other)])
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{mine}\n{other}")


def run_both(tmp_path, name: str, *args: str) -> tuple[str, str | None]:
    weights = str(tmp_path / "init.npz")
    ours = run(PROGRAMS / name, *args, "--save-init", weights)
    try:
        import torch  # noqa: F401
    except ImportError:
        return ours, None
    return ours, run(PROGRAMS / name, *args, "--init", weights, torch=True)


def losses(output: str, word: str = "loss") -> list[float]:
    return [float(x) for x in re.findall(word + r":? (\d+\.\d+)", output)]


def test_lenet_as_the_blitz_writes_it(tmp_path):
    ours, theirs = run_both(tmp_path, "lenet_blitz.py")
    assert "(conv1): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))" in ours
    assert "torch.Size([6, 1, 5, 5])" in ours
    steps = losses(ours)
    assert steps[-1] < steps[0]
    if theirs is not None:
        assert_same_output(ours, theirs)


def test_cifar_classifier_and_a_residual_network_train_and_evaluate(tmp_path):
    ours, theirs = run_both(tmp_path, "cifar_classifier.py")
    assert "(pool): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)" \
        in ours
    assert "(bn1): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, bias=True, " \
        "track_running_stats=True)" in ours
    assert "Accuracy of the network on the 32 test images" in ours
    if theirs is not None:
        assert_same_output(ours, theirs)


@pytest.mark.parametrize("attention", ["sdpa", "module", "masked"])
def test_character_language_model_trains_and_continues_a_prompt(tmp_path, attention):
    import runtime

    if attention == "masked" and not (hasattr(runtime, "tril") and
                                      hasattr(runtime.Tensor, "masked_fill")):
        pytest.skip("the explicit mask needs torch.tril and Tensor.masked_fill")
    ours, theirs = run_both(tmp_path, "char_language_model.py", "--attention", attention)
    assert "(wte): Embedding(31, 32)" in ours and "(gelu): GELU(approximate='none')" in ours
    steps = losses(ours)
    assert steps[-1] < steps[0]
    if theirs is not None:
        assert_same_output(ours, theirs)
