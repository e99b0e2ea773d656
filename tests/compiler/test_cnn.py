"""Convolutional networks through the public compiler API: LeNet-5 as PyTorch's 60-minute blitz
writes it and the CIFAR-10 tutorial's network, compiled for training (mixed with eager code) and
no-grad inference, trained by compiled steps, exported to C and explained; each result equal to
eager symgrad's and, where torch is installed, to PyTorch's with the same weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from test_export import CC, build_c, printed_outputs, run_program

import compiler
import runtime
from compiler._explain import count_text, node_flops
from runtime import nn
from runtime.nn import functional as F

TOLERANCE = {runtime.float32: {"rtol": 1e-4, "atol": 1e-5},
             runtime.float64: {"rtol": 1e-10, "atol": 1e-12}}


class LeNet(nn.Module):
    """The 60-minute blitz's network, on 1x32x32 images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = runtime.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class CifarNet(nn.Module):
    """The CIFAR-10 tutorial's network, on 3x32x32 images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = runtime.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


MODELS = {"lenet": (LeNet, 1), "cifar": (CifarNet, 3)}
DTYPES = {"f32": runtime.float32, "f64": runtime.float64}


def twins(name: str, dtype: Any) -> tuple[nn.Module, nn.Module]:
    """Two copies of a model with the same weights: one to compile, one to run eagerly."""
    cls, _ = MODELS[name]
    runtime.manual_seed(0)
    model, reference = cls().to(dtype), cls().to(dtype)
    reference.load_state_dict(model.state_dict())
    return model, reference


def images(name: str, batch: int, dtype: Any, seed: int = 0) -> np.ndarray:
    channels = MODELS[name][1]
    array = np.random.default_rng(seed).standard_normal((batch, channels, 32, 32))
    return array.astype(dtype.numpy)


def labels(batch: int, seed: int = 0) -> runtime.Tensor:
    return runtime.tensor(np.random.default_rng(seed + 1).integers(0, 10, batch))


def close(actual: Any, expected: Any, dtype: Any, what: str) -> None:
    actual = actual.detach().numpy() if hasattr(actual, "detach") else np.asarray(actual)
    expected = expected.detach().numpy() if hasattr(expected, "detach") else expected
    np.testing.assert_allclose(actual, expected, err_msg=what, **TOLERANCE[dtype])


def training_pass(call: Any, model: nn.Module, x: np.ndarray,
                  y: runtime.Tensor) -> tuple[Any, ...]:
    """Forward by `call` (model or its compiled form), a loss made by eager code around its
    output, backward: the output, the loss, the input's gradient and each of model's
    parameters'."""
    inputs = runtime.tensor(x.copy(), requires_grad=True)
    out = call(inputs)
    loss = F.cross_entropy(out * 0.5 + 0.1, y)
    loss.backward()
    return out, loss, inputs.grad, [p.grad for p in model.parameters()]


@pytest.mark.parametrize("dtype", list(DTYPES), ids=list(DTYPES))
@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_training_pass_equals_eager(name: str, dtype: str) -> None:
    """Output, loss, input gradient and every parameter gradient, at two batch sizes of one
    compilation."""
    model, reference = twins(name, DTYPES[dtype])
    compiled = compiler.compile(model, (runtime.tensor(images(name, 2, DTYPES[dtype])),))
    for batch in (2, 3):
        x, y = images(name, batch, DTYPES[dtype], seed=batch), labels(batch, seed=batch)
        model.zero_grad()
        reference.zero_grad()
        got, expected = training_pass(compiled, model, x, y), \
            training_pass(reference, reference, x, y)
        for what, a, b in zip(("output", "loss", "input gradient"), got, expected):
            close(a, b, DTYPES[dtype], f"{name} batch {batch}: {what}")
        for (param, a), b in zip(model.named_parameters(), expected[3]):
            close(a.grad, b, DTYPES[dtype], f"{name} batch {batch}: gradient of {param}")


@pytest.mark.parametrize("name", list(MODELS))
def test_no_grad_inference_equals_eager(name: str) -> None:
    model, reference = twins(name, runtime.float32)
    compiled = compiler.compile(model, (runtime.tensor(images(name, 1, runtime.float32)),))
    for batch in (1, 4):
        x = runtime.tensor(images(name, batch, runtime.float32, seed=batch))
        with runtime.no_grad():
            got, expected = compiled(x), reference(x)
        assert got.grad_fn is None
        close(got, expected, runtime.float32, f"{name} inference at batch {batch}")


@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_training_pass_equals_pytorch(name: str) -> None:
    torch = pytest.importorskip("torch")
    model, _ = twins(name, runtime.float64)
    theirs = _torch_twin(torch, name, model)
    compiled = compiler.compile(model, (runtime.tensor(images(name, 3, runtime.float64)),))
    x, y = images(name, 3, runtime.float64), labels(3)
    out, loss, input_grad, grads = training_pass(compiled, model, x, y)
    tx = torch.tensor(x, requires_grad=True)
    t_out = theirs(tx)
    t_loss = torch.nn.functional.cross_entropy(t_out * 0.5 + 0.1, torch.tensor(y.numpy()))
    t_loss.backward()
    close(out, t_out.detach().numpy(), runtime.float64, f"{name}: output vs torch")
    close(loss, t_loss.detach().numpy(), runtime.float64, f"{name}: loss vs torch")
    close(input_grad, tx.grad.numpy(), runtime.float64, f"{name}: input gradient vs torch")
    for (param, theirs_param), grad in zip(theirs.named_parameters(), grads):
        close(grad, theirs_param.grad.numpy(), runtime.float64, f"{name}: {param} vs torch")


def _torch_twin(torch: Any, name: str, model: nn.Module) -> Any:
    """The same network written with torch, holding `model`'s weights."""
    tnn, tF = torch.nn, torch.nn.functional
    in_channels = MODELS[name][1]

    class Net(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = tnn.Conv2d(in_channels, 6, 5)
            self.conv2 = tnn.Conv2d(6, 16, 5)
            self.fc1 = tnn.Linear(16 * 5 * 5, 120)
            self.fc2 = tnn.Linear(120, 84)
            self.fc3 = tnn.Linear(84, 10)

        def forward(self, x):
            x = tF.max_pool2d(tF.relu(self.conv1(x)), 2)
            x = tF.max_pool2d(tF.relu(self.conv2(x)), 2)
            x = torch.flatten(x, 1)
            return self.fc3(tF.relu(self.fc2(tF.relu(self.fc1(x)))))

    net = Net().double()
    net.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    return net


OPTIMIZERS = {
    "sgd_momentum": lambda ps: runtime.optim.SGD(ps, lr=0.05, momentum=0.9),
    "adam": lambda ps: runtime.optim.Adam(ps, lr=1e-3),
}


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_train_steps_equal_eager_steps(name: str, optimizer: str) -> None:
    """Four compiled steps (float64): each loss, then every parameter, equal eager steps'."""
    model, reference = twins(name, runtime.float64)
    make = OPTIMIZERS[optimizer]
    compiled_opt, eager_opt = make(model.parameters()), make(reference.parameters())
    loss_fn = nn.CrossEntropyLoss()
    x, y = runtime.tensor(images(name, 4, runtime.float64)), labels(4)
    step = compiler.compile_train_step(model, loss_fn, compiled_opt, example_inputs=(x, y))
    for i in range(4):
        eager_opt.zero_grad()
        loss = loss_fn(reference(x), y)
        loss.backward()
        eager_opt.step()
        assert step(x, y).item() == pytest.approx(loss.item(), rel=1e-10), f"step {i}"
    for (param, a), b in zip(model.named_parameters(), reference.parameters()):
        close(a, b, runtime.float64, f"{name} after 4 {optimizer} steps: {param}")


@pytest.mark.skipif(CC is None, reason="no C compiler (cc) on PATH")
@pytest.mark.parametrize("name", list(MODELS))
def test_exported_library_computes_the_eager_forward(name: str, tmp_path) -> None:
    model, _ = twins(name, runtime.float32)
    result = compiler.export(model, (runtime.tensor(images(name, 1, runtime.float32)),),
                             tmp_path / name)
    program = build_c(tmp_path / "example", ["example.c", f"{name}.o"], cwd=result.out_dir)
    x = images(name, 3, runtime.float32, seed=4)
    x.astype("<f4").tofile(tmp_path / "input.bin")
    run = run_program(program, "input.bin", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    with runtime.no_grad():
        expected = model(runtime.tensor(x)).numpy()
    np.testing.assert_allclose(printed_outputs(run.stdout), expected, rtol=1e-4, atol=1e-5)


def test_explain_shows_the_convolutions_and_their_flops() -> None:
    model, _ = twins("lenet", runtime.float32)
    report = compiler.explain(model, runtime.tensor(images("lenet", 2, runtime.float32)))
    text = str(report)
    for op in ("convolution(", "convolution_input_grad(", "convolution_weight_grad(",
               "max_pool_indices(", "pool_scatter("):
        assert op in text, f"the report shows no {op[:-1]} node"
    conv1 = next(n for n in report.forward.nodes if n.op_name == "convolution")
    # two FLOPs per multiply-add of each output element over its 1x5x5 window, plus the bias
    assert count_text(node_flops(conv1)) == f"{(2 * 25 + 1) * 6 * 28 * 28:,}·N"
    forward_flops, backward_flops = report.flop_table()["simplified"]
    assert count_text(forward_flops) in text and count_text(backward_flops) in text


def small_resnet(lib: Any) -> Any:
    """A ResNet-style network (3x3 convolutions with padding 1, BatchNorm2d, ReLU, MaxPool2d, a
    residual block, AdaptiveAvgPool2d), written once for symgrad and for torch."""
    lnn, lF = lib.nn, lib.nn.functional

    class Block(lnn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()
            self.conv1 = lnn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn1 = lnn.BatchNorm2d(channels)
            self.conv2 = lnn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = lnn.BatchNorm2d(channels)

        def forward(self, x):
            out = lF.relu(self.bn1(self.conv1(x)))
            return lF.relu(self.bn2(self.conv2(out)) + x)

    class Net(lnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = lnn.Sequential(lnn.Conv2d(3, 8, 3, padding=1), lnn.BatchNorm2d(8),
                                       lnn.ReLU(), lnn.MaxPool2d(2))
            self.block = Block(8)
            self.pool = lnn.AdaptiveAvgPool2d((1, 1))
            self.fc = lnn.Linear(8, 10)

        def forward(self, x):
            return self.fc(lib.flatten(self.pool(self.block(self.stem(x))), 1))

    return Net()


def test_resnet_style_network_in_eval_mode_equals_eager_and_pytorch() -> None:
    """BatchNorm2d in eval mode (running statistics) inside a residual block: output, input
    gradient and parameter gradients, float64."""
    runtime.manual_seed(0)
    model, reference = small_resnet(runtime).double(), small_resnet(runtime).double()
    rng = np.random.default_rng(3)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith("running_mean"):
            value.copy_(runtime.tensor(rng.normal(0, 0.1, value.shape)))
        elif key.endswith("running_var"):
            value.copy_(runtime.tensor(rng.uniform(0.5, 1.5, value.shape)))
    reference.load_state_dict(model.state_dict())
    model.eval()
    reference.eval()
    x = rng.standard_normal((3, 3, 16, 16))
    compiled = compiler.compile(model, (runtime.tensor(x),))
    y = labels(3)
    got = training_pass(compiled, model, x, y)
    expected = training_pass(reference, reference, x, y)
    for what, a, b in zip(("output", "loss", "input gradient"), got, expected):
        close(a, b, runtime.float64, f"resnet-style: {what}")
    for (param, a), b in zip(model.named_parameters(), expected[3]):
        close(a.grad, b, runtime.float64, f"resnet-style: gradient of {param}")
    with runtime.no_grad():
        close(compiled(runtime.tensor(x[:1])), reference(runtime.tensor(x[:1])),
              runtime.float64, "resnet-style inference at batch 1")
    torch = pytest.importorskip("torch")
    theirs = small_resnet(torch).double()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    theirs.eval()
    with torch.no_grad():
        close(got[0], theirs(torch.tensor(x)).numpy(), runtime.float64, "resnet-style vs torch")
