"""`runtime.backends.cuda`: CUDA's backend, which this build does not have."""


def is_built() -> bool:
    return False
