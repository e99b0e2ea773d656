"""Eager convolutional networks: symgrad against PyTorch eager, side by side in one run.

Run:  python benchmarks/eager_conv.py [--batch 64] [--repeats 15] [--threads 1]

For LeNet as the 60-minute blitz writes it (1x32x32) and the CIFAR-10 tutorial's network
(3x32x32), both float32, it times forward alone and forward + backward of a summed output, with
the same weights in both libraries, and prints the median of each and symgrad's time as a
multiple of PyTorch's (below 2.0 is the target for eager code). Times are the process's CPU time
(on a shared machine, wall time mostly measures the neighbours); contenders take turns, so what
load remains slows both alike. `--threads` sets PyTorch's threads and numpy's BLAS threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import numpy as np
    import torch
    from cnn import network  # the two networks, written once for both libraries

    import runtime

    torch.set_num_threads(args.threads)
    print(f"batch {args.batch}, float32, {args.threads} thread(s), median CPU time of "
          f"{args.repeats}")
    print(f"{'network':<8} {'pass':<17} {'symgrad ms':>11} {'torch ms':>9} {'ratio':>6}")
    for name, channels, pooling in (("LeNet", 1, "functional"), ("CIFAR", 3, "module")):
        ours = network(runtime, channels, pooling)
        theirs = network(torch, channels, pooling)
        with torch.no_grad():
            for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
                q.copy_(torch.from_numpy(p.detach().numpy().copy()))
        data = np.random.default_rng(0).standard_normal((args.batch, channels, 32, 32))
        x_ours = runtime.tensor(data.astype(np.float32))
        x_theirs = torch.from_numpy(data.astype(np.float32))
        for label, run in (("forward", _forward), ("forward+backward", _step)):
            t_ours, t_theirs = _take_turns(partial(run, ours, x_ours),
                                           partial(run, theirs, x_theirs), args.repeats)
            print(f"{name:<8} {label:<17} {t_ours * 1e3:>11.2f} {t_theirs * 1e3:>9.2f} "
                  f"{t_ours / t_theirs:>6.2f}")


def _forward(net: object, x: object) -> None:
    net(x)  # type: ignore[operator]


def _step(net: object, x: object) -> None:
    net.zero_grad()  # type: ignore[attr-defined]
    net(x).sum().backward()  # type: ignore[operator]


def _take_turns(first: Callable[[], object], second: Callable[[], object],
                repeats: int) -> tuple[float, float]:
    times: tuple[list[float], list[float]] = ([], [])
    for fn in (first, second):
        fn()  # warm up
    for _ in range(repeats):
        for fn, record in zip((first, second), times):
            start = time.process_time()
            fn()
            record.append(time.process_time() - start)
    return tuple(sorted(t)[len(t) // 2] for t in times)  # type: ignore[return-value]


if __name__ == "__main__":
    main()
