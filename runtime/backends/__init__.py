"""`runtime.backends`: the flags and questions PyTorch programs ask of its backends (`mps`,
`cuda`, `cudnn`), answered as a CPU-only build does."""

from runtime.backends import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
