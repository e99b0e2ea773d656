"""`runtime.backends.cudnn`: cuDNN's flags. Programs set `benchmark` and `deterministic`; they
change nothing on the CPU, as in a CPU-only PyTorch build."""

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False
