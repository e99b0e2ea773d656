"""`runtime.accelerator`: PyTorch's device-neutral questions. A CPU is not an accelerator, so, as
in a CPU-only PyTorch build, none is available and the current one is None."""

from __future__ import annotations

from runtime._device import device


def is_available() -> bool:
    return False


def current_accelerator(check_available: bool = False) -> device | None:
    return None


def device_count() -> int:
    return 0
