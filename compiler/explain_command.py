"""`symgrad explain FILE.py:NAME --input 1,1,28,28 [--html out.html]`: a model's explain report.

The file is imported (its folder first on sys.path, so it can import its neighbours) and NAME is
taken from it: a class is instantiated with no arguments after `runtime.manual_seed(0)`, a
function is used as it is. The report of `compiler.explain` is printed, and written as an HTML
page with `--html`. The compiler is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any


def parse_shape(text: str) -> tuple[int, ...]:
    """'1,1,28,28' -> (1, 1, 28, 28)."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape; write sizes separated by "
                                         "commas, e.g. 1,1,28,28") from None
    if any(size < 1 for size in shape):
        raise argparse.ArgumentTypeError(f"{text!r}: every size must be at least 1")
    return shape


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="FILE.py:NAME",
                        help="a Python file (or module) and the model class or function it "
                             "defines, e.g. examples/build_model.py:NeuralNetwork")
    parser.add_argument("--input", action="append", required=True, type=parse_shape,
                        metavar="SHAPE", help="shape of an example input, batch first, e.g. "
                                              "1,1,28,28; repeat it for each input")
    parser.add_argument("--html", type=Path, metavar="PATH",
                        help="also write the report as one self-contained HTML page")
    parser.add_argument("--static-batch", action="store_true",
                        help="keep dimension 0 of the inputs fixed instead of the batch size N")
    parser.add_argument("--renderer", choices=("auto", "dot", "builtin"), default="auto",
                        help="who draws the graphs in the HTML page: Graphviz's dot, symgrad's "
                             "own layout, or dot when it is installed (default)")


def load_model(spec: str) -> Any:
    """The model FILE.py:NAME (or MODULE:NAME) names; a class is instantiated, seeded."""
    import runtime

    location, separator, name = spec.rpartition(":")
    if not separator or not location or not name:
        raise ValueError(f"{spec!r}: name the model as FILE.py:NAME, e.g. "
                         "examples/build_model.py:NeuralNetwork")
    if location.endswith(".py"):
        module = _import_file(Path(location))
    else:
        module = importlib.import_module(location)
    model = getattr(module, name, None)
    if model is None:
        raise ValueError(f"{location} defines no {name!r}")
    if inspect.isclass(model):
        runtime.manual_seed(0)
        model = model()
    return model


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    module_spec = importlib.util.spec_from_file_location(f"symgrad_explain_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    return module


def run(args: argparse.Namespace) -> int:
    import runtime
    from compiler.explain import explain
    from compiler.tracing import TracingError

    try:
        model = load_model(args.model)
        inputs = [runtime.rand(*shape) for shape in args.input]
        report = explain(model, inputs, dynamic_batch=not args.static_batch)
    except (ValueError, TypeError, RuntimeError, TracingError, ImportError) as error:
        print(f"symgrad explain: error: {error}", file=sys.stderr)
        return 1
    print(report)
    if args.html is not None:
        path = report.save_html(args.html, renderer=args.renderer)
        print(f"wrote {path}")
    return 0
