"""Compiled convolutional networks: symgrad against PyTorch eager, side by side in one run.

Run:  python benchmarks/cnn.py [--repeats 20] [--quick]

For LeNet as the 60-minute blitz writes it (1x32x32) and the CIFAR-10 tutorial's network
(3x32x32), float32, with the same weights in both libraries:
- a training step at batch 64 (forward, cross-entropy, backward, SGD update): symgrad's
  `compile_train_step` (one native call) against PyTorch eager;
- no-grad inference at batch 1 and 64: symgrad's `compile` against PyTorch eager;
- each convolution of the networks alone at batch 64 -- forward, input gradient, weight
  gradient -- in GFLOP/s, symgrad's native code against PyTorch's convolution with one thread.
PyTorch runs with 2 threads for the networks (as many as the GEMM team of symgrad's code; set
by --torch-threads), one for the single convolutions. Contenders take turns (round-robin blocks
after a pause), so they share whatever else the machine does; the tables give medians and the
ratio (>1: symgrad faster).
Nothing is written or installed.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import compiler  # noqa: E402
import runtime  # noqa: E402
from compiler.demo import interleaved_medians  # noqa: E402
from compiler.native_build import build_native  # noqa: E402
from compiler.tracing import trace  # noqa: E402
from runtime import nn  # noqa: E402
from runtime.nn import functional as F  # noqa: E402
from runtime.ops import conv as conv_ops  # noqa: E402


def network(lib: Any, in_channels: int, pooling: str) -> Any:
    """LeNet (functional max_pool2d, as the blitz) or the CIFAR net (an nn.MaxPool2d module),
    written once for both libraries."""
    lnn, lF = lib.nn, lib.nn.functional

    class Net(lnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = lnn.Conv2d(in_channels, 6, 5)
            self.pool = lnn.MaxPool2d(2, 2)
            self.conv2 = lnn.Conv2d(6, 16, 5)
            self.fc1 = lnn.Linear(16 * 5 * 5, 120)
            self.fc2 = lnn.Linear(120, 84)
            self.fc3 = lnn.Linear(84, 10)

        def forward(self, x: Any) -> Any:
            if pooling == "functional":
                x = lF.max_pool2d(lF.relu(self.conv1(x)), (2, 2))
                x = lF.max_pool2d(lF.relu(self.conv2(x)), 2)
            else:
                x = self.pool(lF.relu(self.conv1(x)))
                x = self.pool(lF.relu(self.conv2(x)))
            x = lib.flatten(x, 1)
            return self.fc3(lF.relu(self.fc2(lF.relu(self.fc1(x)))))

    return Net()


NETWORKS = {"LeNet": (1, "functional"), "CIFAR net": (3, "module")}


def twins(torch: Any, name: str) -> tuple[nn.Module, Any]:
    channels, pooling = NETWORKS[name]
    runtime.manual_seed(0)
    ours, theirs = network(runtime, channels, pooling), network(torch, channels, pooling)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    return ours, theirs


def train_steps(torch: Any, name: str, batch: int) -> dict[str, Callable[[], object]]:
    ours, theirs = twins(torch, name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, NETWORKS[name][0], 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    xs, ys = runtime.tensor(x), runtime.tensor(y)
    step = compiler.compile_train_step(ours, nn.CrossEntropyLoss(),
                                       runtime.optim.SGD(ours.parameters(), lr=0.01),
                                       example_inputs=(xs, ys))
    xt, yt = torch.tensor(x), torch.tensor(y)
    optimizer, loss_fn = torch.optim.SGD(theirs.parameters(), lr=0.01), torch.nn.CrossEntropyLoss()

    def torch_step() -> None:
        optimizer.zero_grad()
        loss_fn(theirs(xt), yt).backward()
        optimizer.step()

    return {"symgrad": lambda: step(xs, ys), "torch": torch_step}


def inference(torch: Any, name: str, batch: int) -> dict[str, Callable[[], object]]:
    ours, theirs = twins(torch, name)
    x = np.random.default_rng(0).standard_normal((batch, NETWORKS[name][0], 32, 32))
    xs, xt = runtime.tensor(x.astype(np.float32)), torch.tensor(x.astype(np.float32))
    compiled = compiler.compile(ours, (xs,))

    def ours_call() -> None:
        with runtime.no_grad():
            compiled(xs)

    def torch_call() -> None:
        with torch.no_grad():
            theirs(xt)

    return {"symgrad": ours_call, "torch": torch_call}


# (name, input channels, output channels, input size): the convolutions of the two networks
CONVOLUTIONS = [("LeNet conv1", 1, 6, 32), ("CIFAR conv1", 3, 6, 32), ("conv2", 6, 16, 14)]
ATTRS = {"stride": (1, 1), "padding": ((0, 0), (0, 0)), "dilation": (1, 1), "groups": 1}


class _WithParameter(nn.Module):
    def __init__(self, fn: Callable[..., Any], array: np.ndarray) -> None:
        super().__init__()
        self.fn, self.parameter = fn, nn.Parameter(runtime.tensor(array))

    def forward(self, x: Any) -> Any:
        return self.fn(x, self.parameter)


def convolution_passes(torch: Any, c: int, o: int, size: int, batch: int
                       ) -> dict[str, tuple[float, dict[str, Callable[[], object]]]]:
    """For forward, input gradient and weight gradient of a 5x5 convolution: (FLOPs, runs)."""
    rng = np.random.default_rng(0)
    out = size - 4
    x = rng.standard_normal((batch, c, size, size)).astype(np.float32)
    w = rng.standard_normal((o, c, 5, 5)).astype(np.float32)
    g = rng.standard_normal((batch, o, out, out)).astype(np.float32)
    flops = 2.0 * batch * o * out * out * c * 25
    xt, wt, gt = torch.tensor(x), torch.tensor(w), torch.tensor(g)

    def native(fn: Callable[..., Any], batched: np.ndarray, fixed: np.ndarray
               ) -> Callable[[], object]:
        """fn(batched, fixed) compiled alone, `fixed` a parameter (not batched)."""
        function = build_native(trace(_WithParameter(fn, fixed), [runtime.tensor(batched)]))
        return lambda: function(batched, fixed)

    def torch_backward(mask: list[bool]) -> Callable[[], object]:
        return lambda: torch.ops.aten.convolution_backward(
            gt, xt, wt, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask)

    return {
        "forward": (flops, {"symgrad": native(lambda a, b: F.conv2d(a, b), x, w),
                            "torch": lambda: torch.nn.functional.conv2d(xt, wt)}),
        "input gradient": (flops, {
            "symgrad": native(lambda a, b: conv_ops.convolution_input_grad(
                a, b, (size, size), **ATTRS), g, w),
            "torch": torch_backward([True, False, False])}),
        "weight gradient": (flops, {
            "symgrad": native(lambda a, b: conv_ops.convolution_weight_grad(
                b, a, (5, 5), **ATTRS), g, x),
            "torch": torch_backward([False, True, False])}),
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 repeats")
    parser.add_argument("--torch-threads", type=int, default=2,
                        help="PyTorch's threads for the networks (on a busy machine, 1 is fairer)")
    args = parser.parse_args()
    repeats = 5 if args.quick else args.repeats
    try:
        import torch
    except ImportError:
        sys.exit("benchmarks/cnn.py compares against PyTorch, which is not installed")
    print(f"{cpu_name()}; float32; medians of {repeats}; ratio = torch time / symgrad time")
    torch.set_num_threads(args.torch_threads)
    print(f"\nPyTorch with {args.torch_threads} thread(s)\n"
          f"{'network':<10} {'what':<20} {'symgrad ms':>11} {'torch ms':>10} {'ratio':>6}")
    for name in NETWORKS:
        rows = [("train step, batch 64", train_steps(torch, name, 64)),
                ("inference, batch 1", inference(torch, name, 1)),
                ("inference, batch 64", inference(torch, name, 64))]
        for label, runs in rows:
            times = interleaved_medians(runs, repeats, block=5, settle=0.05)
            print(f"{name:<10} {label:<20} {times['symgrad'] * 1e3:>11.3f} "
                  f"{times['torch'] * 1e3:>10.3f} {times['torch'] / times['symgrad']:>6.2f}")
    torch.set_num_threads(1)
    print(f"\nconvolutions alone, batch 64, 5x5 kernel, GFLOP/s (torch: one thread)\n"
          f"{'layer':<12} {'pass':<16} {'symgrad':>8} {'torch':>8} {'ratio':>6}")
    for name, c, o, size in CONVOLUTIONS:
        for label, (flops, runs) in convolution_passes(torch, c, o, size, 64).items():
            times = interleaved_medians(runs, repeats, block=5, settle=0.05)
            ours, theirs = flops / times["symgrad"] / 1e9, flops / times["torch"] / 1e9
            print(f"{name:<12} {label:<16} {ours:>8.2f} {theirs:>8.2f} {ours / theirs:>6.2f}")


if __name__ == "__main__":
    main()
