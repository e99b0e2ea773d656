"""`compiler.export`: a model as a standalone C library (libc, libm and pthreads; no Python).

    >>> compiler.export(model, (runtime.randn(1, 1, 28, 28),), "build/mnist", "mnist")

writes into build/mnist/: `mnist.h` (the API, shapes, error codes, thread-safety, the model),
`mnist.o` and `libmnist.so` (the weights inside), `mnist.ll` (the LLVM IR, for study), and
`example.c` + `Makefile`, which build a program that runs the model on an input file. With
`embed_weights=False` the weights go to `mnist.weights`, loaded by `mnist_init(path)`.

The exported code is the no-grad forward that `compiler.compile` runs under `no_grad` (the same
trace and simplification), lowered with the GEMM defined in the module for a portable CPU
(x86-64-v3 on x86-64) and wrapped by the entry points of `export_entry.py`. The model is traced
as it is: call `model.eval()` first if it has layers that behave differently in training.
All C text comes from the jinja2 templates in `templates/export/`; this module only computes what
they show. The same model and weights give byte-identical files.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

import runtime
from compiler import pipeline
from compiler.export_entry import ERRORS, STATE_KINDS, EntryPlan, emit_entry_points
from compiler.export_weights import Weights
from compiler.ir import Graph, Node, Value
from compiler.lowering.codegen import NativeSignature, lower_graph
from compiler.lowering.memory import value_bytes
from compiler.lowering.target import (
    compile_object,
    host_cpu_name,
    host_has_feature,
    target_machine,
    with_no_builtins,
)
from compiler.tracing import named_state
from runtime._tensor import Tensor

SIZE_LIMIT = 2**62  # no buffer of an exported function may be larger (bytes); sets MAX_BATCH
# dtype -> (C type, printf format, the cast printf needs)
C_TYPES = {"float32": ("float", "%.9g", "double"), "float64": ("double", "%.17g", "double"),
           "int64": ("int64_t", "%lld", "long long"), "int32": ("int32_t", "%d", "int"),
           "bool": ("uint8_t", "%d", "int")}
INPUT_DTYPES = ("float32", "float64", "int64")  # int64: token ids of an embedding


class ExportError(OSError):
    """The export's files could not be written (or linked)."""


@dataclass(frozen=True)
class ExportResult:
    """The files an export wrote; `shared_library` is None when it could not be linked here
    (no C compiler, or a cross target), and `notes` say why."""

    name: str
    out_dir: Path
    header: Path
    object: Path
    shared_library: Path | None
    ir: Path
    example: Path
    makefile: Path
    weights: Path | None
    notes: tuple[str, ...]

    @property
    def files(self) -> list[Path]:
        paths = [self.header, self.object, self.shared_library, self.ir, self.example,
                 self.makefile, self.weights]
        return [p for p in paths if p is not None]


def export(model: Any, example_inputs: Sequence[Tensor] | Tensor, out_dir: str | Path,
           name: str | None = None, *, embed_weights: bool = True, target: str | None = None,
           cpu: str | None = None, max_batch: int | None = None) -> ExportResult:
    """Export `model`'s no-grad forward for inputs like `example_inputs` (any batch size) as a C
    library in `out_dir` (created if missing), with functions named `<name>_...`.

    `name` defaults to the folder's name. `target` is an LLVM triple such as
    'aarch64-unknown-linux-gnu' (default: this machine's), compiled for the architecture's
    portable CPU (x86-64-v3: AVX2 and FMA) or, with `cpu='native'`, for this very machine.
    `max_batch` caps the batch size the function accepts (default: as large as memory sizes can
    be). The model is traced as it is: call `model.eval()` first if it has dropout or other
    layers that behave differently in training. Returns the paths written.
    """
    name = c_name(name, Path(out_dir))
    out_dir = _create_folder(Path(out_dir))  # before the work: a bad folder fails at once
    example_inputs = (example_inputs,) if isinstance(example_inputs, Tensor) else example_inputs
    graph = inference_graph(model, tuple(example_inputs))
    weights = model_weights(graph, model)
    if embed_weights:
        graph = embed(graph, weights)
    machine = export_machine(target, cpu, needs_weights_file=not embed_weights)
    module, plan = build_module(graph, name, machine, weights=None if embed_weights else weights,
                                max_batch=max_batch)
    ir_text = with_no_builtins(str(module))
    context = _template_context(model, graph, plan, weights, machine)
    return _write_files(out_dir, name, ir_text, compile_object(ir_text, machine.llvm),
                        context, None if embed_weights else weights,
                        native=_runs_here(machine.llvm.triple))


# ----- the graph --------------------------------------------------------------------------------

def c_name(name: str | None, out_dir: Path) -> str:
    """`name`, checked to be a C identifier; by default the folder's name made into one."""
    if name is None:
        name = re.sub(r"\W", "_", out_dir.resolve().name) or "model"
        name = f"_{name}" if name[0].isdigit() else name
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"export name {name!r} is not a C identifier; use letters, digits and "
                         "_ (not starting with a digit), e.g. 'mnist'")
    return name


def inference_graph(model: Any, example_inputs: tuple[Tensor, ...]) -> Graph:
    """The no-grad forward as `compiler.compile` builds it, checked to fit the C API: one
    floating-point input with the batch in dimension 0, and one output."""
    traced = pipeline.trace_model(model, example_inputs)
    graph = pipeline.inference_graph(pipeline.simplify_forward(traced), "forward")
    inputs = [v for v in graph.inputs if v.kind not in STATE_KINDS]
    if len(inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(f"export makes `int <name>_forward(input, batch, output)`, so the model "
                         f"must take one tensor and return one; it takes {len(inputs)} and "
                         f"returns {len(graph.outputs)}")
    if inputs[0].dtype.name not in INPUT_DTYPES:
        raise TypeError(f"the exported input must be float32, float64 or int64, not "
                        f"{inputs[0].dtype.name}")
    if graph.outputs[0].dtype.name not in C_TYPES:
        raise TypeError(f"the model's output is {graph.outputs[0].dtype.name}, which the C API "
                        f"cannot return; return one of {', '.join(C_TYPES)}")
    return graph


def model_weights(graph: Graph, model: Any) -> Weights:
    """The live values of the graph's parameter and buffer inputs, in graph order."""
    tensors = {state_name: tensor for state_name, tensor, _ in named_state(model)}
    state = [v for v in graph.inputs if v.kind in STATE_KINDS]
    return Weights.of([v.name for v in state], [tensors[v.name].detach().numpy() for v in state])


def embed(graph: Graph, weights: Weights) -> Graph:
    """The graph with each parameter and buffer input replaced by a constant holding its value
    (so code generation makes it a global of the library)."""
    arrays = dict(zip(weights.names, weights.arrays))
    constants = {v: Value(v.name, v.shape, v.dtype, "const") for v in graph.inputs
                 if v.kind in STATE_KINDS}
    nodes = [Node(n.op, [constants.get(v, v) for v in n.inputs], n.attrs, n.output, n.origin)
             for n in graph.nodes]
    embedded = graph.rebuild(nodes, graph.outputs)
    embedded.inputs = [v for v in graph.inputs if v not in constants]
    embedded.constants.update({c: arrays[c.name] for c in constants.values()})
    return embedded.verify()


# ----- LLVM ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportMachine:
    """The LLVM target machine of an export, its CPU's name, and whether its GEMM tiles use
    512-bit vectors."""

    llvm: llvm.TargetMachine
    cpu: str
    avx512: bool


def export_machine(target: str | None, cpu: str | None = None,
                   needs_weights_file: bool = False) -> ExportMachine:
    """The machine for `target` (default: this machine's triple) and `cpu`: None is the
    architecture's portable CPU (x86-64-v3 on x86-64, else generic), 'native' this machine's."""
    host = llvm.get_process_triple()
    triple = target or host
    if cpu == "native":
        if triple != host:
            raise ValueError(f"cpu='native' means this machine's CPU, so the target must be "
                             f"this machine's ({host}), not {triple!r}")
        return ExportMachine(target_machine(), host_cpu_name(), host_has_feature("avx512f"))
    if cpu is not None:
        raise ValueError(f"cpu must be None (portable) or 'native', not {cpu!r}")
    cpu = "x86-64-v3" if triple.startswith("x86_64") else "generic"
    try:
        machine = target_machine(triple, cpu=cpu, features="")
    except RuntimeError as error:
        raise ValueError(f"cannot export for target {triple!r} ({error}); give an LLVM triple "
                         "such as 'x86_64-unknown-linux-gnu' or 'aarch64-unknown-linux-gnu'"
                         ) from None
    layout = str(machine.target_data).split("-")
    if any(spec.startswith("p:32") for spec in layout):
        raise ValueError(f"target {triple!r} has 32-bit pointers; export needs a 64-bit target")
    if needs_weights_file and "E" in layout:
        raise ValueError(f"target {triple!r} is big-endian; weights files are little-endian, so "
                         "export with embed_weights=True")
    return ExportMachine(machine, cpu, avx512=False)


def build_module(graph: Graph, name: str, machine: ExportMachine, *,
                 weights: Weights | None, max_batch: int | None) -> tuple[ir.Module, EntryPlan]:
    """One LLVM module: the graph's function, its GEMMs (portable tiles, defined here), and the
    entry points; every function but the entry points internal, so exports link side by side."""
    module = ir.Module(name=name)
    module.triple = machine.llvm.triple
    module.data_layout = str(machine.llvm.target_data)
    signature = lower_graph(graph, module, f"{name}_graph", define_gemm=True,
                            avx512=machine.avx512)
    plan = EntryPlan(name, module.globals[signature.symbol], signature,
                     _max_batch(signature, max_batch), weights)
    exported = emit_entry_points(module, plan)
    for function in module.functions:
        if not function.is_declaration and function.name not in exported:
            function.linkage = "internal"
    return module, plan


def _max_batch(signature: NativeSignature, requested: int | None) -> int:
    """The largest batch whose buffers all stay under SIZE_LIMIT bytes (and `requested`)."""
    sizes = [(signature.arena_bytes.per_example, signature.arena_bytes.fixed)]
    sizes += [value_bytes(v) for v in signature.external]
    limit = min([(SIZE_LIMIT - fixed) // per for per, fixed in sizes if per] or [SIZE_LIMIT])
    if requested is not None:
        if requested < 1:
            raise ValueError(f"max_batch must be at least 1, got {requested}")
        limit = min(limit, requested)
    return limit


def _runs_here(triple: str) -> bool:
    host = llvm.get_process_triple()
    return triple.split("-")[0] == host.split("-")[0] and triple.endswith(host.split("-")[-1])


# ----- the files --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Buffer:
    """A graph input or output as the header describes it."""

    dtype: str
    ctype: str
    print_format: str
    print_cast: str
    shape: str  # e.g. "batch, 1, 28, 28"
    per_example: int  # elements: per_example * batch + fixed
    fixed: int


def _buffer(value: Value) -> _Buffer:
    per_example, fixed = value_bytes(value)
    itemsize = value.dtype.itemsize
    ctype, print_format, print_cast = C_TYPES[value.dtype.name]
    shape = ", ".join(str(s).replace("N", "batch") for s in value.shape)
    return _Buffer(value.dtype.name, ctype, print_format, print_cast, shape,
                   per_example // itemsize, fixed // itemsize)


def _template_context(model: Any, graph: Graph, plan: EntryPlan, weights: Weights,
                      machine: ExportMachine) -> dict[str, Any]:
    """What the templates show: names, shapes, sizes, codes, the model and its weights."""
    name, signature, embedded = plan.name, plan.signature, plan.weights is None
    parameters = list(model.parameters()) if hasattr(model, "parameters") else []
    input_value = next(v for v in graph.inputs if v.kind not in STATE_KINDS)
    return {
        "name": name, "NAME": name.upper(), "version": runtime.__version__,
        "model_class": type(model).__name__, "model_lines": repr(model).splitlines(),
        "parameter_count": sum(int(np.prod(p.shape)) for p in parameters),
        "weights": [(n, a.dtype.name, list(a.shape)) for n, a in zip(weights.names,
                                                                      weights.arrays)],
        "weights_bytes": sum(a.nbytes for a in weights.arrays),
        "weights_sha256": weights.sha256(), "embedded": embedded,
        "input": _buffer(input_value), "output": _buffer(graph.outputs[0]),
        "max_batch": plan.max_batch, "triple": machine.llvm.triple, "cpu": machine.cpu,
        "scratch": (signature.arena_bytes.per_example,
                    signature.arena_bytes.fixed + signature.workspace_bytes + 128),
        "errors": [e for e in ERRORS if embedded is False or not e.weights_file_only],
    }


def _environment() -> jinja2.Environment:
    """The templates of templates/export/, found through the import system as resources of the
    installed `templates` package (a wheel or a checkout alike)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("templates", "export"), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)


def render(template: str, **context: Any) -> str:
    """Render one of templates/export/ (the benchmark's timing harness uses this too)."""
    return _environment().get_template(template).render(**context)


def _write_files(out_dir: Path, name: str, ir_text: str, object_bytes: bytes,
                 context: dict[str, Any], weights: Weights | None, native: bool) -> ExportResult:
    contents: dict[str, bytes] = {
        f"{name}.h": render("header.h.j2", **context).encode(),
        f"{name}.o": object_bytes,
        f"{name}.ll": ir_text.encode(),
        "example.c": render("example.c.j2", **context).encode(),
        "Makefile": render("Makefile.j2", **context).encode(),
    }
    if weights is not None:
        contents[f"{name}.weights"] = weights.file_bytes()
    try:
        for file_name, data in contents.items():
            _write_file(out_dir, file_name, data)
    except OSError as error:
        raise _cannot_write(out_dir, error) from None
    library, notes = _link_shared_library(out_dir, name, native, context["triple"])
    for note in notes:
        warnings.warn(note, stacklevel=3)
    return ExportResult(name, out_dir, out_dir / f"{name}.h", out_dir / f"{name}.o", library,
                        out_dir / f"{name}.ll", out_dir / "example.c", out_dir / "Makefile",
                        out_dir / f"{name}.weights" if weights is not None else None,
                        tuple(notes))


def _temporary_name(out_dir: Path, file_name: str) -> Path:
    return out_dir / f".{file_name}.{secrets.token_hex(8)}.tmp"


def _write_file(out_dir: Path, file_name: str, data: bytes) -> None:
    """Write `data` to a fresh temporary file of out_dir (created here, so never a link someone
    left there) and rename it to `file_name`: whatever was at that name -- an older export, or
    a symbolic link pointing elsewhere -- is replaced, never written through."""
    temporary = _temporary_name(out_dir, file_name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, out_dir / file_name)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _create_folder(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _cannot_write(out_dir, error) from None
    return out_dir


def _cannot_write(out_dir: Path, error: OSError) -> ExportError:
    return ExportError(f"cannot write the export into {str(out_dir)!r}: "
                       f"{error.strerror or error}; choose a folder you can write to")


def _link_shared_library(out_dir: Path, name: str, native: bool, triple: str
                         ) -> tuple[Path | None, list[str]]:
    """lib<name>.so from the object with the system C compiler, when there is one and the
    object is for this machine; otherwise None and a note saying how to link it."""
    compiler = shutil.which("cc")
    if not native:
        return None, [f"lib{name}.so was not linked: {name}.o is for {triple}; link it with "
                      f"that target's C compiler (make CC=<cross cc> lib{name}.so)"]
    if compiler is None:
        return None, [f"lib{name}.so was not linked: no C compiler ('cc') on PATH; {name}.o is "
                      "complete, link it with `cc -shared` where one is installed"]
    library = f"lib{name}.so"
    temporary = _temporary_name(out_dir, library)  # linked aside, then renamed into place
    try:
        result = subprocess.run([compiler, "-shared", "-pthread", f"-Wl,-soname,{library}",
                                 "-o", temporary.name, f"{name}.o", "-lm"], cwd=out_dir,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise ExportError(f"cc could not link {library} from {name}.o:\n{result.stderr}")
        os.replace(temporary, out_dir / library)
    finally:
        temporary.unlink(missing_ok=True)
    return out_dir / library, []

