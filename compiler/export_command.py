"""`symgrad export FILE:CLASS --input SHAPE -o DIR`: export a model class written in a Python file.

The file is imported (its own folder first on sys.path, so it can import its neighbours), the
class is instantiated with no arguments after `runtime.manual_seed(--seed)` -- so the same
command writes the same files -- and `compiler.export` writes the library. The compiler is
imported only when the command runs, so `symgrad --help` stays instant.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from compiler.model_loading import load_model, parse_shape


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="FILE:CLASS",
                        help="a Python file and the model class it defines, e.g. "
                             "examples/build_model.py:NeuralNetwork")
    parser.add_argument("--input", required=True, type=parse_shape, metavar="SHAPE",
                        help="shape of one example input, batch first, e.g. 1,1,28,28 (the "
                             "library accepts any batch size)")
    parser.add_argument("-o", "--out-dir", required=True, type=Path, metavar="DIR",
                        help="folder to write into (created if missing)")
    parser.add_argument("--name", help="prefix of the C names and files (default: the "
                                       "folder's name)")
    parser.add_argument("--target", metavar="TRIPLE",
                        help="LLVM target triple, e.g. aarch64-unknown-linux-gnu (default: "
                             "this machine, portable CPU)")
    parser.add_argument("--cpu", choices=("native",),
                        help="compile for this machine's CPU instead of the portable one")
    parser.add_argument("--no-embed-weights", dest="embed_weights", action="store_false",
                        help="write the weights to NAME.weights, loaded by NAME_init(path)")
    parser.add_argument("--max-batch", type=int, metavar="N",
                        help="largest batch the function accepts")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="dtype of the input (default float32)")
    parser.add_argument("--seed", type=int, default=0,
                        help="runtime.manual_seed before the model is built (default 0)")


def run(args: argparse.Namespace) -> int:
    import runtime
    from compiler._export import export
    from compiler.errors import CompileError
    from compiler.tracing import TracingError

    try:
        model = load_model(args.model, args.seed)
        example = runtime.zeros(args.input, dtype=getattr(runtime, args.dtype))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the notes are printed below
            result = export(model, (example,), args.out_dir, args.name,
                            embed_weights=args.embed_weights, target=args.target,
                            cpu=args.cpu, max_batch=args.max_batch)
    except (ValueError, TypeError, OSError, CompileError, TracingError) as error:
        print(f"symgrad export: error: {error}", file=sys.stderr)
        return 1
    print(f"exported {type(model).__name__} as {result.name} into {result.out_dir}:")
    for path in result.files:
        print(f"  {path.name:<24} {path.stat().st_size:>12,} bytes")
    for note in result.notes:
        print(f"note: {note}")
    print(f"build and run the example: make -C {result.out_dir} && "
          f"{result.out_dir}/example INPUT")
    return 0
