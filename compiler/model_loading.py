"""What the `symgrad` commands share: naming a model as FILE.py:NAME (or MODULE:NAME) and an
input shape as 1,1,28,28."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any


def parse_shape(text: str) -> tuple[int, ...]:
    """'1,1,28,28' -> (1, 1, 28, 28); an argparse error naming the mistake otherwise."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape; write sizes separated by "
                                         "commas, e.g. 1,1,28,28") from None
    if not shape or any(size < 1 for size in shape):
        raise argparse.ArgumentTypeError(f"{text!r}: every size must be at least 1")
    return shape


def load_model(spec: str, seed: int = 0) -> Any:
    """The model FILE.py:NAME or MODULE:NAME names: a class is instantiated after
    runtime.manual_seed(seed), anything else (a function, an instance) is returned as it is."""
    import runtime

    location, separator, name = spec.rpartition(":")
    if not separator or not location or not name:
        raise ValueError(f"{spec!r}: name the model as FILE.py:NAME, e.g. "
                         "examples/build_model.py:NeuralNetwork")
    module = _import_file(Path(location)) if location.endswith(".py") \
        else importlib.import_module(location)
    model = getattr(module, name, None)
    if model is None:
        defined = sorted(n for n, v in vars(module).items()
                         if inspect.isclass(v) and v.__module__ == module.__name__)
        raise ValueError(f"{location} defines no class {name!r} (its classes: "
                         f"{', '.join(defined) or 'none'})")
    if inspect.isclass(model):
        runtime.manual_seed(seed)
        model = model()
    return model


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    module_spec = importlib.util.spec_from_file_location(f"symgrad_model_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    return module
