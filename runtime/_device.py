"""Devices: `runtime.device`, the default device, and the check every tensor-making call makes.

symgrad computes on the CPU, and answers as a CPU-only PyTorch build does: `device("cuda")` can be
named (a device is a description), but making or moving a tensor there raises PyTorch's error
(AssertionError "Torch not compiled with CUDA enabled"); a device string that names no device
type is a RuntimeError. This module never allocates anything.
"""

from __future__ import annotations

from typing import Any

# PyTorch's device types, in the order its error message lists them.
DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve",
                "fpga", "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia",
                "privateuseone")
# Device types a CPU-only build knows by name but was not compiled for: an AssertionError.
_NOT_COMPILED = {"cuda": "CUDA", "xpu": "XPU", "hip": "HIP"}


class device:  # noqa: N801 - PyTorch's name
    """Where a tensor lives: `device("cpu")`, `device("cuda", 0)`, `device("cuda:1")`."""

    __slots__ = ("_type", "_index", "_previous")

    def __init__(self, type: Any = None, index: int | None = None) -> None:  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        elif isinstance(type, int) and index is None:  # device(0): the accelerator's index 0
            raise RuntimeError("Cannot access accelerator device when none is available.")
        if not isinstance(type, str):
            raise TypeError(f"device() expected a string or a device, got {_name_of(type)}")
        name, _, given_index = type.partition(":")
        if given_index:
            if index is not None:
                raise RuntimeError(f"type (string) must not include an index because index was "
                                   f"passed explicitly: {type}")
            if not given_index.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}'")
            index = int(given_index)
        if name not in DEVICE_TYPES:
            raise RuntimeError(f"Expected one of {', '.join(DEVICE_TYPES)} device type at start "
                               f"of device string: {type}")
        if index is not None and index < 0:
            raise RuntimeError("Device index must not be negative")
        self._type = name
        self._index = index

    @property
    def type(self) -> str:
        return self._type

    @property
    def index(self) -> int | None:
        return self._index

    def __repr__(self) -> str:
        if self._index is None:
            return f"device(type='{self._type}')"
        return f"device(type='{self._type}', index={self._index})"

    def __str__(self) -> str:
        return self._type if self._index is None else f"{self._type}:{self._index}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, device) and (self._type, self._index) == (other._type,
                                                                           other._index)

    def __hash__(self) -> int:
        return hash((self._type, self._index))

    def __reduce__(self) -> Any:
        return (device, (self._type,) if self._index is None else (self._type, self._index))

    def __enter__(self) -> device:  # `with runtime.device("cpu"):` sets the default device
        global _default_device
        check_device(self)
        self._previous = _default_device
        _default_device = self
        return self

    def __exit__(self, *exc: Any) -> None:
        global _default_device
        _default_device = self._previous


CPU = device("cpu")
_default_device = CPU


def _name_of(value: Any) -> str:
    return type(value).__name__


def _not_compiled(device_type: str) -> str:
    return f"Torch not compiled with {_NOT_COMPILED[device_type]} enabled"


def check_device(where: Any) -> device:
    """The CPU device if `where` (a device, a string, None for the default) names it; PyTorch's
    error for a device this build does not have."""
    if where is None:
        return _default_device
    d = where if isinstance(where, device) else device(where)
    if d.type == "cpu":
        return CPU
    if d.type in _NOT_COMPILED:
        raise AssertionError(_not_compiled(d.type))
    raise NotImplementedError(
        f"Could not run 'aten::empty.memory_format' with arguments from the "
        f"'{d.type.upper() if d.type in ('mps', 'xla', 'hpu', 'ipu') else d.type}' backend. This "
        "could be because the operator doesn't exist for this backend, or was omitted during the "
        "selective/custom build process (if using custom build). symgrad computes on the CPU "
        "only: use device='cpu'.")


def set_default_device(where: Any) -> None:
    """The device of tensors made without `device=`; only the CPU exists here."""
    global _default_device
    _default_device = CPU if where is None else check_device(where)


def get_default_device() -> device:
    return _default_device
