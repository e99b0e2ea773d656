"""compiler.compile on the tutorial MLP: outputs, losses and every gradient equal eager mode; the
compiled module shares the model's parameters, accumulates grads, mixes with eager ops before and
after it, serves every batch size from one compilation, and refuses bad calls before any native
code runs."""

from __future__ import annotations

import numpy as np
import pytest
from compiler_testing import NeuralNetwork, assert_close

import runtime
from compiler import CompiledModule, CompileError, compile
from runtime import nn


def assert_gradient_close(got: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    """float32 gradients summed over 784 and 512 terms in another order: equal to 1e-4 of each
    element, or to 1e-5 of the largest element (where sums cancel)."""
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


def tutorial_model(dtype=runtime.float32, classes: int = 10, seed: int = 0) -> NeuralNetwork:
    runtime.manual_seed(seed)
    model = NeuralNetwork(classes=classes)
    return model.double() if dtype == runtime.float64 else model


def images(n: int, dtype=runtime.float32, seed: int = 1) -> runtime.Tensor:
    rng = np.random.default_rng(seed)
    return runtime.tensor(rng.standard_normal((n, 1, 28, 28)), dtype=dtype)


@pytest.fixture(scope="module")
def compiled() -> tuple[NeuralNetwork, CompiledModule]:
    model = tutorial_model()
    return model, compile(model, (images(64),))


def eager_and_compiled_gradients(model, fast, x, loss_of):
    """(eager loss, eager grads, compiled loss, compiled grads) of loss_of(output)."""
    model.zero_grad()
    eager_loss = loss_of(model(x))
    eager_loss.backward()
    eager = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    compiled_loss = loss_of(fast(x))
    compiled_loss.backward()
    got = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    return eager_loss.item(), eager, compiled_loss.item(), got


LOSSES = {
    "cross_entropy": (10, lambda out, n: nn.CrossEntropyLoss()(
        out, runtime.tensor(np.arange(n) % 10))),
    "mse_on_softmax": (10, lambda out, n: nn.MSELoss()(
        nn.Softmax(dim=1)(out), runtime.tensor(np.eye(10, dtype=np.float32)[np.arange(n) % 10]))),
    "bce_with_logits": (1, lambda out, n: nn.BCEWithLogitsLoss()(
        out, runtime.tensor((np.arange(n) % 2).astype(np.float32).reshape(n, 1)))),
}


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_forward_loss_and_gradients_equal_eager(loss: str) -> None:
    classes, loss_of = LOSSES[loss]
    model = tutorial_model(classes=classes)
    x = images(32)
    fast = compile(model, (x,))
    with runtime.no_grad():
        assert_close(fast(x).numpy(), model(x).numpy(), "forward", scale=10)
    eager_loss, eager, compiled_loss, got = eager_and_compiled_gradients(
        model, fast, x, lambda out: loss_of(out, 32))
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-5)
    for (name, _), g, e in zip(model.named_parameters(), got, eager):
        assert_gradient_close(g, e, name)


def test_a_float64_model_matches_eager_to_rounding() -> None:
    model = tutorial_model(runtime.float64)
    x = images(16, runtime.float64)
    fast = compile(model, (x,))
    target = runtime.tensor(np.arange(16) % 10)
    eager_loss, eager, compiled_loss, got = eager_and_compiled_gradients(
        model, fast, x, lambda out: nn.functional.cross_entropy(out, target))
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-13)
    for g, e in zip(got, eager):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-13)


def test_the_compiled_module_shares_parameters_with_the_model(compiled) -> None:
    model, fast = compiled
    x = images(8)
    before = fast(x)
    optimizer = runtime.optim.SGD(model.parameters(), lr=0.1)
    before.sum().backward()
    optimizer.step()  # updates model.parameters() in place
    model.zero_grad()
    with runtime.no_grad():
        after = fast(x)
        assert_close(after.numpy(), model(x).numpy(), "after the step", scale=10)
    assert np.abs(after.numpy() - before.detach().numpy()).max() > 1e-3


def test_gradients_accumulate_over_two_backward_calls_like_eager(compiled) -> None:
    model, fast = compiled
    x, y = images(8, seed=2), images(8, seed=3)
    model.zero_grad()
    fast(x).sum().backward()
    fast(y).square().mean().backward()
    compiled_grads = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    model(x).sum().backward()
    model(y).square().mean().backward()
    for g, p in zip(compiled_grads, model.parameters()):
        assert_gradient_close(g, p.grad.numpy())
    model.zero_grad()


def test_eager_ops_before_and_after_get_gradients_including_the_input(compiled) -> None:
    model, fast = compiled
    a = images(6, seed=4).requires_grad_(True)
    weights = runtime.linspace(0.5, 2.0, 10)

    def loss_of(module):
        x = a * 2  # eager, before
        return (module(x).tanh() * weights).sum()  # eager, after

    model.zero_grad()
    loss_of(model).backward()
    eager_input_grad = a.grad.numpy().copy()
    eager = [p.grad.numpy().copy() for p in model.parameters()]
    a.grad = None
    model.zero_grad()
    loss_of(fast).backward()
    assert_gradient_close(a.grad.numpy(), eager_input_grad, "input")
    for p, e in zip(model.parameters(), eager):
        assert_gradient_close(p.grad.numpy(), e)
    model.zero_grad()


def test_no_grad_runs_the_inference_function_and_records_nothing() -> None:
    model = tutorial_model()
    fast = compile(model, (images(4),))
    with runtime.no_grad():
        out = fast(images(4))
    assert out.grad_fn is None and not out.requires_grad
    assert fast.compilations == 1  # only the inference function was built
    assert fast._training == {}
    out = fast(images(4))
    assert out.grad_fn is not None and out.grad_fn.name() == "CompiledFunctionBackward"
    assert fast.compilations == 3  # forward and backward of the training pair


def test_every_batch_size_runs_on_one_compilation(compiled) -> None:
    model, fast = compiled
    with runtime.no_grad():
        fast(images(2))
    before = fast.compilations
    target = runtime.tensor
    for n in (1, 7, 64, 1000):
        x = images(n, seed=n)
        loss = nn.functional.cross_entropy(fast(x), target(np.arange(n) % 10))
        loss.backward()
        with runtime.no_grad():
            assert_close(fast(x).numpy(), model(x).numpy(), f"batch {n}", scale=10)
    assert fast.compilations == before
    model.zero_grad()


def test_a_second_backward_without_retain_graph_raises(compiled) -> None:
    model, fast = compiled
    out = fast(images(3)).sum()
    out.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        out.backward()
    model.zero_grad()


def test_retain_graph_allows_a_second_backward(compiled) -> None:
    model, fast = compiled
    model.zero_grad()
    out = fast(images(3)).sum()
    out.backward(retain_graph=True)
    first = model.linear_relu_stack[0].bias.grad.numpy().copy()
    out.backward()
    np.testing.assert_allclose(model.linear_relu_stack[0].bias.grad.numpy(), 2 * first,
                               rtol=1e-6)
    model.zero_grad()


@pytest.mark.parametrize(("args", "error", "message"), [
    ((runtime.randn(4, 1, 28, 27),), ValueError, r"expects shape \(N, 1, 28, 28\)"),
    ((runtime.randn(4, 784),), ValueError, "expects 4 dimensions"),
    ((runtime.randn(4, 1, 28, 28, dtype=runtime.float64),), TypeError, "dtype float64, "
     "expected float32"),
    ((), TypeError, "compiled for 1 inputs, got 0"),
    ((np.zeros((4, 1, 28, 28), np.float32),), TypeError, "must be a Tensor"),
])
def test_bad_calls_are_python_errors_before_native_code(compiled, args, error, message) -> None:
    _, fast = compiled
    with pytest.raises(error, match=message):
        fast(*args)
    with runtime.no_grad(), pytest.raises(error, match=message):
        fast(*args)


def test_a_non_contiguous_input_is_copied(compiled) -> None:
    model, fast = compiled
    x = images(5).transpose(2, 3)  # a view with swapped strides
    assert not x.is_contiguous()
    with runtime.no_grad():
        assert_close(fast(x).numpy(), model(x).numpy(), "transposed input", scale=10)


def test_nan_input_propagates_like_eager(compiled) -> None:
    model, fast = compiled
    x = images(3)
    x[1, 0, 5, 5] = float("nan")
    with runtime.no_grad():
        got, expected = fast(x).numpy(), model(x).numpy()
    assert np.isnan(got[1]).all() and np.isfinite(got[[0, 2]]).all()
    assert_close(got, expected, "NaN row", scale=10)


def test_compile_from_the_package_is_the_function_after_any_import() -> None:
    import subprocess
    import sys

    script = "from compiler import CompiledModule, compile; print(callable(compile))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == "True", result.stderr


class TwoBiases(nn.Module):
    """Two parameters whose gradients are one value of the backward graph."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.shift = nn.Parameter(runtime.linspace(-1.0, 1.0, 3))

    def forward(self, x):
        return self.linear(x) + self.shift


def test_parameters_with_the_same_gradient_each_receive_it() -> None:
    model = TwoBiases()
    fast = compile(model, (runtime.randn(5, 4),))
    garbage = [np.full(3, 123.0, np.float32) for _ in range(100)]  # recycled by numpy
    del garbage
    fast(runtime.randn(5, 4)).sum().backward()
    np.testing.assert_array_equal(model.linear.bias.grad.numpy(), [5.0, 5.0, 5.0])
    np.testing.assert_array_equal(model.shift.grad.numpy(), [5.0, 5.0, 5.0])


class Shift(nn.Module):
    """x + b: the gradient of x is the gradient of the output itself."""

    def __init__(self) -> None:
        super().__init__()
        self.b = nn.Parameter(runtime.zeros(3))

    def forward(self, x):
        return x + self.b


def test_an_input_gradient_that_is_the_outputs_gradient() -> None:
    model = Shift()
    fast = compile(model, (runtime.randn(5, 3),))
    x = runtime.randn(5, 3, requires_grad=True)
    (fast(x) * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((5, 3), 2.0))
    np.testing.assert_array_equal(model.b.grad.numpy(), [10.0, 10.0, 10.0])


def test_a_model_with_an_unlowerable_op_fails_at_compile_time() -> None:
    class Picks(nn.Module):
        def forward(self, x):
            return x[:, [0, 3]]

    with pytest.raises(CompileError, match="index tensors") as error:
        compile(Picks(), (runtime.randn(2, 5),))
    assert error.value.op == "index"


def test_dropout_in_training_mode_is_a_compile_error_naming_the_layer() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.25), nn.Linear(8, 2))
    x = runtime.randn(3, 4)
    with pytest.raises(CompileError, match=r"dropout layer '2' \(Dropout\(p=0.25.*model.eval") \
            as error:
        compile(model, (x,))
    assert error.value.op == "dropout"
    model.eval()  # dropout is the identity in eval mode, so the model compiles
    assert_close(compile(model, (x,))(x), model(x))


def test_training_reaches_the_accuracy_of_eager_training() -> None:
    """300 SGD steps of the tutorial's MLP, shrunk to 8x8 images and 32 hidden units, on noisy
    copies of 10 prototypes, eager and compiled from the same seed."""
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((10, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 10, 1200)
    data = centers[labels] + 1.5 * rng.standard_normal((1200, 1, 8, 8)).astype(np.float32)
    x_all, y_all = runtime.tensor(data), runtime.tensor(labels)

    def train(compiled_module: bool) -> tuple[float, float]:
        runtime.manual_seed(5)
        model = NeuralNetwork(hidden=32, inputs=64)
        module = compile(model, (x_all[:32],)) if compiled_module else model
        optimizer = runtime.optim.SGD(model.parameters(), lr=0.05)
        loss_fn = nn.CrossEntropyLoss()
        for step in range(300):
            start = (step * 32) % 1000
            loss = loss_fn(module(x_all[start:start + 32]), y_all[start:start + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with runtime.no_grad():
            predicted = module(x_all[1000:]).argmax(1)
        return float((predicted == y_all[1000:]).float().mean()), loss.item()

    eager_accuracy, eager_loss = train(False)
    compiled_accuracy, compiled_loss = train(True)
    assert eager_accuracy > 0.9
    assert compiled_accuracy == pytest.approx(eager_accuracy, abs=0.011)
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-3, abs=1e-4)
