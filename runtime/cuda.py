"""`runtime.cuda`: what a CPU-only PyTorch build answers. There is no GPU here: `is_available()`
is False, there are no devices, and the calls that need one raise PyTorch's AssertionError."""

from __future__ import annotations

from typing import Any

from runtime._device import check_device


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def is_initialized() -> bool:
    return False


def manual_seed(seed: int) -> None:
    """Seeds nothing: without CUDA, PyTorch ignores it too (programs call it unconditionally)."""


def manual_seed_all(seed: int) -> None:
    """Seeds nothing, as manual_seed."""


def _needs_a_device(*args: Any, **kwargs: Any) -> Any:
    check_device("cuda")  # raises "Torch not compiled with CUDA enabled"


current_device = get_device_name = get_device_properties = set_device = synchronize = \
    empty_cache = _needs_a_device
