"""The tutorial examples and the README's example run as scripts and print what PyTorch prints.

Each example is run twice where PyTorch is installed: as written (`import runtime as torch`) and
with the import switched back to `import torch`; the printed lines that do not depend on random
draws must agree. Without PyTorch they are checked against the expected text written here.
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

TUTORIAL_MODEL_REPR = """\
NeuralNetwork(
  (flatten): Flatten(start_dim=1, end_dim=-1)
  (linear_relu_stack): Sequential(
    (0): Linear(in_features=784, out_features=512, bias=True)
    (1): ReLU()
    (2): Linear(in_features=512, out_features=512, bias=True)
    (3): ReLU()
    (4): Linear(in_features=512, out_features=10, bias=True)
  )
)"""

TUTORIAL_PARAMETERS = [
    ("linear_relu_stack.0.weight", "[512, 784]"),
    ("linear_relu_stack.0.bias", "[512]"),
    ("linear_relu_stack.2.weight", "[512, 512]"),
    ("linear_relu_stack.2.bias", "[512]"),
    ("linear_relu_stack.4.weight", "[10, 512]"),
    ("linear_relu_stack.4.bias", "[10]"),
]

JACOBIAN_PRODUCTS = """\
First call
tensor([[4., 2., 2., 2., 2.],
        [2., 4., 2., 2., 2.],
        [2., 2., 4., 2., 2.],
        [2., 2., 2., 4., 2.]])

Second call
tensor([[8., 4., 4., 4., 4.],
        [4., 8., 4., 4., 4.],
        [4., 4., 8., 4., 4.],
        [4., 4., 4., 8., 4.]])

Call after zeroing gradients
tensor([[4., 2., 2., 2., 2.],
        [2., 4., 2., 2., 2.],
        [2., 2., 4., 2., 2.],
        [2., 2., 2., 4., 2.]])
"""

NUMBER = r"-?\d+\.\d*(?:e[+-]?\d+)?"


def run_source(source: str) -> str:
    """Run Python source as a script (in a fresh process, from the checkout); its stdout."""
    result = subprocess.run([sys.executable, "-c", source], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"script failed:\n{result.stderr}"
    return result.stdout


def with_torch(source: str) -> str:
    """The same program written for PyTorch: the imports switched back."""
    switched = source.replace("import runtime as torch", "import torch")
    switched = switched.replace("from runtime import nn", "from torch import nn")
    switched = switched.replace("from runtime.", "from torch.")
    assert switched != source, "the example does not import runtime as torch"
    return switched


def normalized(output: str) -> str:
    """Output with object addresses blanked and runtime's names spelled as PyTorch's."""
    return re.sub(r"0x[0-9a-f]+", "0x...", output).replace("runtime.", "torch.")


def section(output: str, start: str, end: str | None = None) -> str:
    """The text of `output` from the line starting with `start` to the one starting `end`."""
    match = re.search(rf"^{re.escape(start)}.*?(?=^{re.escape(end)}|\Z)" if end
                      else rf"^{re.escape(start)}.*", output, re.S | re.M)
    assert match, f"no line starting with {start!r} in the output:\n{output}"
    return match.group(0)


def numbers(text: str) -> np.ndarray:
    return np.array([float(n) for n in re.findall(NUMBER, text)])


def parameter_lines(output: str) -> list[tuple[str, str, str]]:
    """(name, size, grad_fn of the printed slice) of each "Layer: ..." entry."""
    entries = re.findall(r"^Layer: (\S+) \| Size: \S+?\((\[.*?\])\) \| Values : "
                         r".*?grad_fn=<(\w+)>", output, re.S | re.M)
    return [(name, size, grad_fn) for name, size, grad_fn in entries]


# ----- examples/build_model.py --------------------------------------------------------------------

@pytest.fixture(scope="module")
def build_model_source() -> str:
    return (EXAMPLES / "build_model.py").read_text()


@pytest.fixture(scope="module")
def build_model_output(build_model_source) -> str:
    return run_source(build_model_source)


def test_build_model_prints_the_model_as_pytorch_does(build_model_output):
    assert build_model_output.startswith("Using cpu device\n" + TUTORIAL_MODEL_REPR + "\n")
    assert f"Model structure: {TUTORIAL_MODEL_REPR}\n" in build_model_output


def test_build_model_walks_the_layers_with_the_tutorials_shapes(build_model_output):
    assert re.search(r"^Predicted class: tensor\(\[\d\]\)$", build_model_output, re.M)
    sizes = re.findall(r"^runtime\.Size\((.*)\)$", build_model_output, re.M)
    assert sizes == ["[3, 28, 28]", "[3, 784]", "[3, 20]"]


def test_build_model_relu_zeroes_the_negative_hidden_values(build_model_output):
    before = numbers(section(build_model_output, "Before ReLU:", "After ReLU:"))
    after = numbers(section(build_model_output, "After ReLU:", "Model structure:"))
    assert before.shape == after.shape == (60,)
    np.testing.assert_allclose(after, np.maximum(before, 0), atol=1e-4)
    assert "grad_fn=<ReluBackward0>" in section(build_model_output, "After ReLU:",
                                                "Model structure:")


def test_build_model_lists_parameters_with_dotted_names(build_model_output):
    entries = parameter_lines(build_model_output)
    assert [(name, size) for name, size, _ in entries] == TUTORIAL_PARAMETERS


def test_build_model_training_lowers_the_loss(build_model_output):
    losses = [float(x) for x in re.findall(rf"^step +\d+ +loss ({NUMBER})$", build_model_output,
                                           re.M)]
    assert len(losses) == 5 and losses[-1] < 0.8 * losses[0], losses
    accuracy = float(re.search(rf"^accuracy on 500 new images: ({NUMBER})$", build_model_output,
                               re.M).group(1))
    assert accuracy > 0.5


def test_build_model_matches_pytorch_where_draws_do_not_matter(build_model_source,
                                                               build_model_output):
    pytest.importorskip("torch")
    ours = normalized(build_model_output)
    theirs = normalized(run_source(with_torch(build_model_source)))
    assert section(ours, "Using", "Predicted") == section(theirs, "Using", "Predicted")
    assert section(ours, "Model structure:", "Layer:") == section(theirs, "Model structure:",
                                                                   "Layer:")
    assert parameter_lines(ours) == parameter_lines(theirs)
    assert re.findall(r"^torch\.Size.*$", ours, re.M) == re.findall(r"^torch\.Size.*$", theirs,
                                                                    re.M)


def test_build_model_is_importable_without_running_the_tutorial():
    code = ("import sys; sys.path.insert(0, 'examples'); import build_model; "
            "print(type(build_model.NeuralNetwork()).__name__)")
    assert run_source(code) == "NeuralNetwork\n"


# ----- examples/autograd_tutorial.py --------------------------------------------------------------

@pytest.fixture(scope="module")
def autograd_source() -> str:
    return (EXAMPLES / "autograd_tutorial.py").read_text()


@pytest.fixture(scope="module")
def autograd_output(autograd_source) -> str:
    return run_source(autograd_source)


def test_autograd_tutorial_names_the_grad_fns(autograd_output):
    assert re.search(r"^Gradient function for z = <AddBackward0 object at 0x[0-9a-f]+>$",
                     autograd_output, re.M)
    assert re.search(r"^Gradient function for loss = <\w+Backward\d? object at 0x[0-9a-f]+>$",
                     autograd_output, re.M)


def test_autograd_tutorial_gradients_of_w_repeat_the_gradient_of_b(autograd_output):
    # x is all ones, so d loss / d w[i, j] = d loss / d b[j] for every row i
    printed = section(autograd_output, "tensor(", "True")
    values = numbers(printed)
    assert values.shape == (18,)
    w_grad, b_grad = values[:15].reshape(5, 3), values[15:]
    np.testing.assert_array_equal(w_grad, np.tile(b_grad, (5, 1)))
    assert np.all(b_grad > 0) and np.all(b_grad < 1 / 3)  # sigmoid(z) / 3 with target 0


def test_autograd_tutorial_stops_tracking_and_accumulates(autograd_output):
    assert section(autograd_output, "True", "First call") == "True\nFalse\nFalse\n"
    assert section(autograd_output, "First call", "\nSecond backward") == JACOBIAN_PRODUCTS


def test_autograd_tutorial_second_backward_asks_for_retain_graph(autograd_output):
    line = section(autograd_output, "Second backward")
    assert line.startswith("Second backward without retain_graph=True: RuntimeError: Trying to "
                           "backward through the graph a second time")
    assert "Specify retain_graph=True" in line


def test_autograd_tutorial_matches_pytorch_after_the_random_draws(autograd_source,
                                                                  autograd_output):
    pytest.importorskip("torch")
    theirs = run_source(with_torch(autograd_source))
    assert section(autograd_output, "True") == section(theirs, "True")
    assert (normalized(section(autograd_output, "Gradient function for z", "Gradient function "
                               "for loss"))
            == normalized(section(theirs, "Gradient function for z", "Gradient function for loss")))


# ----- the README's example -----------------------------------------------------------------------

def test_readme_example_trains_the_tutorial_model():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Example: the tutorial model, trained", 1)[1].split("\n## ", 1)[0]
    [example] = re.findall(r"```python\n(.*?)```", section, re.S)
    losses = [float(x) for x in re.findall(rf"^epoch \d: loss ({NUMBER})$", run_source(example),
                                           re.M)]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
