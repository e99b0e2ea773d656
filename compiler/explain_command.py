"""`symgrad explain FILE.py:NAME --input 1,1,28,28 [--html out.html]`: a model's explain report.

The file is imported (its folder first on sys.path, so it can import its neighbours) and NAME is
taken from it: a class is instantiated with no arguments after `runtime.manual_seed(0)`, a
function is used as it is. The report of `compiler.explain` is printed, and written as an HTML
page with `--html`. The compiler is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.model_loading import load_model, parse_shape


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


def run(args: argparse.Namespace) -> int:
    import runtime
    from compiler._explain import explain
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
