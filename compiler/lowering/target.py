"""LLVM targets, the O3 pipeline, and the JIT with its object cache.

Owns llvmlite's initialisation, the host target machine (CPU name and features read from llvmlite),
target machines for object files and cross export, and the path from IR to callable addresses:
IR text -> O3 -> object file -> ORC. Objects are cached on disk (sealed entries of the user's
cache folder, `compiler.cache_folder`; never read back unless their seal verifies), keyed by a
hash of the IR text, CPU and features, so a module compiled once is reloaded from its object in
a millisecond or two; compilations can also start in the background
(`compile_object_soon`) and run in another process while this one goes on. Loaded libraries are
shared while anything holds them (a NativeFunction keeps its library alive) and the most recently
used ones are kept loaded; any other is unloaded by ORC when its last reference goes, so a
process that compiles many graphs keeps its memory bounded. This module never builds IR itself,
and the code it produces never calls a library function it was not asked to.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import functools
import hashlib
import itertools
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llvmlite
import llvmlite.binding as llvm
from llvmlite import ir

from compiler import cache_folder

_init_lock = threading.Lock()
_native_initialized = False
_all_targets_initialized = False


def initialize_native_target() -> None:
    """Initialise llvmlite for the host (safe to call repeatedly)."""
    global _native_initialized
    with _init_lock:
        if not _native_initialized:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            llvm.initialize_native_asmparser()
            _native_initialized = True


def _initialize_all_targets() -> None:
    global _all_targets_initialized
    initialize_native_target()
    with _init_lock:
        if not _all_targets_initialized:
            llvm.initialize_all_targets()
            llvm.initialize_all_asmprinters()
            _all_targets_initialized = True


@functools.cache
def host_cpu_name() -> str:
    """LLVM's name for the host CPU, e.g. 'znver3'."""
    initialize_native_target()
    return str(llvm.get_host_cpu_name())


@functools.cache
def host_cpu_features() -> str:
    """The feature string code is made for: the host CPU's (e.g. '+avx2,+fma,-avx512f,...'),
    edited by $SYMGRAD_CPU_FEATURES (see `with_feature_edits`)."""
    initialize_native_target()
    return with_feature_edits(str(llvm.get_host_cpu_features().flatten()),
                              os.environ.get("SYMGRAD_CPU_FEATURES", ""))


# features that cannot be on without AVX-512F (LLVM turns them off with it)
_NEEDS_AVX512F = ("avx512", "evex512", "amx-", "avx10")


def with_feature_edits(features: str, edits: str) -> str:
    """`features` with the comma-separated `edits` applied: '-avx512f' turns AVX-512 off (and
    every feature that needs it), '+name' turns one on. This is how code for a lower ISA than the
    host's -- an AVX2 machine's, on an AVX-512 host -- is built, tested and benchmarked:
    SYMGRAD_CPU_FEATURES=-avx512f python benchmarks/run.py."""
    state = {item[1:]: item[0] for item in features.split(",") if item[:1] in "+-" and item[1:]}
    for edit in (e.strip() for e in edits.split(",") if e.strip()):
        sign, name = edit[0], edit[1:]
        if sign not in "+-" or not name:
            raise ValueError(f"SYMGRAD_CPU_FEATURES: {edit!r} is not +feature or -feature "
                             "(for example -avx512f)")
        state[name] = sign
        if sign == "-" and name == "avx512f":
            for other in state:
                if other.startswith(_NEEDS_AVX512F):
                    state[other] = "-"
    return ",".join(f"{sign}{name}" for name, sign in state.items())


def host_has_feature(feature: str) -> bool:
    """Whether the host CPU has `feature` (an LLVM feature name such as 'avx512f')."""
    return f"+{feature}" in host_cpu_features().split(",")


def target_machine(
    triple: str | None = None,
    cpu: str | None = None,
    features: str | None = None,
    reloc: str = "pic",
    codemodel: str = "default",
) -> llvm.TargetMachine:
    """A target machine at optimisation level 3, for object files and cross export.

    With no triple, the host's triple, CPU and features are the defaults; for another triple, the
    CPU and features default to the target's generic ones. A CPU named for a machine (znver3) ties
    the object to it: for distribution name a level such as 'x86-64-v3'.
    """
    initialize_native_target()
    host_triple = llvm.get_process_triple()
    if triple is None or triple == host_triple:
        triple = host_triple
        cpu = host_cpu_name() if cpu is None else cpu
        features = host_cpu_features() if features is None and cpu == host_cpu_name() else features
    else:
        _initialize_all_targets()
    target = llvm.Target.from_triple(triple)
    return target.create_target_machine(
        cpu=cpu or "", features=features or "", opt=3, reloc=reloc, codemodel=codemodel
    )


@functools.cache
def host_target_machine() -> llvm.TargetMachine:
    """The host's target machine (host CPU and features, O3, position-independent, small model)."""
    return target_machine()


def optimize(module_ref: llvm.ModuleRef, machine: llvm.TargetMachine | None = None,
             unroll: bool = True) -> None:
    """Run the new pass manager's O3 pipeline, loop and SLP vectorisation on, in place; loop
    unrolling too unless `unroll` is False."""
    machine = machine or host_target_machine()
    tuning = llvm.create_pipeline_tuning_options(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    tuning.loop_unrolling = unroll
    pass_builder = llvm.create_pass_builder(machine, tuning)
    pass_builder.getModulePassManager().run(module_ref, pass_builder)


_DEFINE_LINE = re.compile(r"^(define [^\n]*?)([ \t]*\{?)$", re.MULTILINE)


def with_no_builtins(ir_text: str) -> str:
    """Mark every function definition "no-builtins".

    Without it, LLVM turns zero-fill and copy loops into calls to memset/memcpy, which the JIT
    cannot resolve and the exported library should not need. llvmlite cannot attach string
    attributes, so the attribute goes into the IR text.
    """

    def mark(match: re.Match[str]) -> str:
        header, brace = match.groups()
        return match[0] if '"no-builtins"' in header else f'{header} "no-builtins"{brace}'

    return _DEFINE_LINE.sub(mark, ir_text)


def parse_module(
    module: ir.Module | str, machine: llvm.TargetMachine | None = None
) -> llvm.ModuleRef:
    """Parse and verify IR (an llvmlite module or IR text), retargeted to `machine`."""
    machine = machine or host_target_machine()
    initialize_native_target()
    module_ref = llvm.parse_assembly(with_no_builtins(str(module)))
    module_ref.verify()
    module_ref.triple = machine.triple
    module_ref.data_layout = str(machine.target_data)
    return module_ref


def compile_object(module: ir.Module | str, machine: llvm.TargetMachine | None = None) -> bytes:
    """IR -> verified, O3-optimised object file for `machine` (the host by default; host objects
    are made by an optimiser process, see `_Optimizer`)."""
    if machine is None:
        return _optimizers.compile(str(module))
    return _compile_here(str(module), machine)


def compile_object_soon(module: ir.Module | str) -> concurrent.futures.Future[bytes]:
    """Start compiling IR for the host; the future's result is the object (as `compile_object`).

    An optimiser process does the work on another core while this process goes on (the thread
    that waits for it holds no GIL)."""
    return _background.submit(_optimizers.compile, str(module))


NO_UNROLLING = "; symgrad: loop unrolling off\n"


def without_loop_unrolling(module: ir.Module | str) -> str:
    """The IR text of `module`, marked to be optimised without loop unrolling (the mark is part
    of the text, so it travels to the optimiser process and into the object cache's key)."""
    return NO_UNROLLING + str(module)


def _compile_here(ir_text: str, machine: llvm.TargetMachine) -> bytes:
    module_ref = parse_module(ir_text, machine)
    optimize(module_ref, machine, unroll=not ir_text.startswith(NO_UNROLLING))
    return bytes(machine.emit_object(module_ref))


# ----- the optimiser process ----------------------------------------------------------------------
# llvmlite 0.50 never frees the PassInstrumentationCallbacks of a pass builder, nor what running
# the pipeline puts in them: every O3 run leaks 50-200 KB, so a process that compiles thousands of
# graphs would grow without bound. Host objects are therefore made in a child process (IR text in,
# object bytes out, over pipes; ~0.1 s to start), replaced after OPTIMIZER_RUNS modules, so the
# leak dies with it. Should the child fail to start or to answer its first request, this process
# compiles in-process instead (leaking, as before).

OPTIMIZER_RUNS = 200
OPTIMIZER_PROCESSES = max(1, min(2, os.cpu_count() or 1))  # at most this many at once
_LENGTH = struct.Struct("<Q")
_REPLY = struct.Struct("<BQ")  # status (0: object, 1: error message), payload length
_SERVE = "from compiler.lowering.target import serve_optimizer; serve_optimizer()"


_CHILD_NEEDS = ("llvmlite", "numpy", "sympy")  # what the optimiser process may import


def optimizer_command() -> list[str]:
    """The optimiser process's command line: Python isolated (-I: neither the working directory
    nor the user's site-packages on its path, no PYTHON* variables), told where symgrad is and
    where this process imported llvmlite (and numpy, sympy) from -- never the working directory
    -- so it runs the same code as this process, and nothing planted where it happens to run."""
    here = os.path.realpath(os.getcwd())
    root = str(Path(__file__).resolve().parents[2])  # where `compiler` is imported from (trusted)
    search = [root]
    for name in _CHILD_NEEDS:
        origin = getattr(sys.modules.get(name), "__file__", None)
        folder = str(Path(origin).resolve().parents[1]) if origin else None  # package's parent
        if folder and folder not in search and os.path.realpath(folder) != here:
            search.append(folder)
    bootstrap = f"import sys; sys.path[:0] = {search!r}; {_SERVE}"
    return [sys.executable, "-I", "-c", bootstrap]


def optimizer_environment() -> dict[str, str]:
    """The environment of the optimiser process: this one's, without PYTHONPATH (its search
    path is in its command line)."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


class OptimizerError(RuntimeError):
    """The optimiser process died (LLVM crashed on a module)."""


class _Optimizer:
    """The parent's end of the optimiser process: one request at a time, restarted as needed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        self._runs = 0  # requests sent to the current child
        self.served = 0  # requests answered by any child
        self.in_process = False  # no child could be used: compile here

    @property
    def started(self) -> bool:
        return self._process is not None

    def compile(self, ir_text: str) -> bytes:
        with self._lock:
            if not self.in_process:
                try:
                    return self._request(ir_text.encode())
                except OptimizerError as error:
                    if self.served:  # a child worked before: one more try with a fresh one
                        return self._request(ir_text.encode())
                    warnings.warn(f"symgrad's LLVM optimiser process is unusable ({error}); "
                                  "compiling in this process", RuntimeWarning, stacklevel=3)
                    self.in_process = True
        return _compile_here(ir_text, host_target_machine())

    def _request(self, data: bytes) -> bytes:
        if self._process is None or self._runs >= OPTIMIZER_RUNS:
            self._restart()
        process = self._process
        assert process is not None and process.stdin is not None  # piped by _restart
        self._runs += 1
        try:
            process.stdin.write(_LENGTH.pack(len(data)) + data)
            process.stdin.flush()
            status, length = _REPLY.unpack(_read_exactly(process.stdout, _REPLY.size))
            payload = _read_exactly(process.stdout, length)
        except (BrokenPipeError, EOFError) as error:  # the child is gone
            raise OptimizerError(self._died()) from error
        except BaseException:  # interrupted mid-exchange: its reply must never answer another
            self._died()
            raise
        self.served += 1
        if status:
            raise RuntimeError(payload.decode())
        return payload

    def _restart(self) -> None:
        self.close()
        self._stderr = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(
                optimizer_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._stderr, env=optimizer_environment())
        except OSError as error:
            raise OptimizerError(f"cannot start {sys.executable!r}: {error}") from None
        self._runs = 0

    def _died(self) -> str:
        """Make sure the child is gone (killed if need be); what it said before it went."""
        process, self._process = self._process, None
        code = None
        if process is not None:
            process.kill()
            code = process.wait()
        self._stderr.seek(0)
        output = self._stderr.read().decode(errors="replace").strip()
        return f"it exited with code {code}: {output[-2000:]}"

    def close(self) -> None:
        """End the child (it exits when its input closes)."""
        process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None and process.stdout is not None  # piped by _restart
            with contextlib.suppress(OSError):
                process.stdin.close()
            process.wait()
            process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's optimiser and lock are not ours; start afresh."""
        self._lock = threading.Lock()
        self._process = None
        self._runs = 0


def _read_exactly(stream: Any, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError(f"expected {size} bytes, got {len(data)}")
    return data


class _OptimizerPool:
    """Up to OPTIMIZER_PROCESSES optimiser processes (started as needed); each request goes to
    one that is free, so a background compilation does not hold up the next one."""

    def __init__(self, size: int) -> None:
        self._idle = [_Optimizer() for _ in range(size)]
        self._all = list(self._idle)
        self._available = threading.Condition()

    def compile(self, ir_text: str) -> bytes:
        with self._available:
            while not self._idle:
                self._available.wait()
            started = [w for w in self._idle if w.started]  # reuse a running child first
            worker = (started or self._idle)[-1]
            self._idle.remove(worker)
        try:
            return worker.compile(ir_text)
        finally:
            with self._available:
                self._idle.append(worker)
                self._available.notify()

    def close(self) -> None:
        for worker in self._all:
            worker.close()

    def forget_after_fork(self) -> None:
        self._available = threading.Condition()
        for worker in self._all:
            worker.forget_after_fork()
        self._idle = list(self._all)


def serve_optimizer() -> None:
    """The optimiser process: read IR texts from stdin, answer each with its object (or LLVM's
    error message) on stdout, until stdin closes."""
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = source.read(_LENGTH.size)
        if len(header) < _LENGTH.size:
            return
        ir_text = _read_exactly(source, _LENGTH.unpack(header)[0]).decode()
        try:
            status, payload = 0, _compile_here(ir_text, host_target_machine())
        except Exception as error:  # noqa: BLE001 - sent back, raised by the parent
            status, payload = 1, str(error).encode()
        sink.write(_REPLY.pack(status, len(payload)) + payload)
        sink.flush()


_optimizers = _OptimizerPool(OPTIMIZER_PROCESSES)
_background = concurrent.futures.ThreadPoolExecutor(OPTIMIZER_PROCESSES,
                                                    thread_name_prefix="symgrad-compile")
atexit.register(_optimizers.close)


def _forget_after_fork() -> None:
    """In a forked child: the parent's optimiser processes and background threads are not ours."""
    global _background
    _optimizers.forget_after_fork()
    _background = concurrent.futures.ThreadPoolExecutor(OPTIMIZER_PROCESSES,
                                                        thread_name_prefix="symgrad-compile")


os.register_at_fork(after_in_child=_forget_after_fork)


def cache_directory() -> Path:
    """Where compiled objects are kept: $SYMGRAD_CACHE_DIR, else ~/.cache/symgrad (used only
    while it is the user's own folder: see `compiler.cache_folder`)."""
    return cache_folder.location()


def object_cache_key(ir_text: str, cpu: str, features: str) -> str:
    """Hash of everything that decides the object: IR text, CPU, features, llvmlite version."""
    digest = hashlib.sha256()
    for part in (ir_text, cpu, features, llvmlite.__version__, "O3"):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _read_cached_object(key: str) -> bytes | None:
    """The object stored under `key`, if its seal verifies (see `compiler.cache_folder`)."""
    return cache_folder.load("objects", key)


def _write_cached_object(key: str, object_bytes: bytes) -> None:
    """Store sealed and atomically; an unwritable cache only costs a recompile next time."""
    cache_folder.store("objects", key, object_bytes)


@dataclass(frozen=True)
class JitLibrary:
    """Native code loaded by ORC: exported symbol addresses, valid while this object lives."""

    name: str
    addresses: Mapping[str, int]
    from_cache: bool
    seconds: float  # wall time to produce and load it (compile or cache load)
    _tracker: object = field(repr=False)

    def __getitem__(self, symbol: str) -> int:
        return self.addresses[symbol]


LibraryKey = tuple[str, frozenset[str]]  # (object hash, exported symbols)
KEPT_LIBRARIES = 64  # recently used libraries kept loaded when nothing else holds them

_jit_lock = threading.RLock()
_live_libraries: weakref.WeakValueDictionary[LibraryKey, JitLibrary] = \
    weakref.WeakValueDictionary()
_recent_libraries: OrderedDict[LibraryKey, JitLibrary] = OrderedDict()
_library_counter = itertools.count()


def _remember(key: LibraryKey, library: JitLibrary) -> None:
    """Mark `library` most recently used; drop the cache's hold on the least recently used one
    beyond KEPT_LIBRARIES (ORC unloads it once no NativeFunction holds it either)."""
    _live_libraries[key] = library
    _recent_libraries[key] = library
    _recent_libraries.move_to_end(key)
    while len(_recent_libraries) > KEPT_LIBRARIES:
        _recent_libraries.popitem(last=False)


def loaded_library_count() -> int:
    """How many JIT libraries are loaded now (held by the cache or by live native functions)."""
    with _jit_lock:
        return len(_live_libraries)


LIBRARIES_PER_JIT = 256
_current_jit: list[llvm.LLJIT] = []  # the ORC JIT new libraries go into (at most one)
_libraries_in_jit = itertools.count()


def _orc_jit() -> llvm.LLJIT:
    """The ORC JIT to link into, a fresh one every LIBRARIES_PER_JIT libraries.

    ORC keeps each library's JITDylib (~9 KB) until its JIT is destroyed, even after the library
    is unloaded; so every library holds its JIT (see _link), and a retired JIT is destroyed with
    its last library."""
    if not _current_jit or next(_libraries_in_jit) % LIBRARIES_PER_JIT == LIBRARIES_PER_JIT - 1:
        initialize_native_target()
        _current_jit[:] = [llvm.create_lljit_compiler(target_machine())]
    return _current_jit[0]


Imports = Mapping[str, int] | Callable[[], Mapping[str, int]] | None


def jit_compile(module: ir.Module | str, exports: Iterable[str],
                imports: Imports = None) -> JitLibrary:
    """Compile IR for the host and load it, returning the addresses of `exports`.

    The library is one already loaded (still held somewhere, or among the KEPT_LIBRARIES most
    recently used), else the disk cache's object loaded afresh, else LLVM's (O3) output, which is
    stored on disk for the next process. `imports` resolves symbols the module declares but does
    not define (e.g. the GEMM, compiled once per process) to addresses of code loaded earlier;
    given as a function, it is called only when the object is ready to link (so the code it
    links to may still be compiling meanwhile).
    """
    started = time.perf_counter()
    exported = frozenset(exports)
    ir_text = with_no_builtins(str(module))
    key = object_cache_key(ir_text, host_cpu_name(), host_cpu_features())
    with _jit_lock:
        library = _live_libraries.get((key, exported))
        if library is not None:
            _remember((key, exported), library)
            return library
    # compiled and linked outside the lock: `imports` may wait for code compiling elsewhere
    if callable(imports):
        imports = _Deferred(imports)
    object_bytes = _read_cached_object(key)
    tracker = None
    if object_bytes is not None:
        try:
            tracker = _link(object_bytes, exported, key, imports)
        except RuntimeError:  # a damaged cache file: compile afresh and replace it
            tracker = None
    from_cache = tracker is not None
    if tracker is None:
        object_bytes = compile_object(ir_text)
        _write_cached_object(key, object_bytes)
        tracker = _link(object_bytes, exported, key, imports)
    with _jit_lock:
        library = _live_libraries.get((key, exported))  # another thread's, linked meanwhile
        if library is None:
            library = _loaded(tracker, exported, from_cache, started)
        _remember((key, exported), library)
        return library


class _Deferred:
    """Imports computed on first use (once)."""

    def __init__(self, compute: Callable[[], Mapping[str, int]]) -> None:
        self._compute = compute
        self._value: Mapping[str, int] | None = None

    def __call__(self) -> Mapping[str, int]:
        if self._value is None:
            self._value = self._compute()
        return self._value


def host_object_soon(module: ir.Module | str) -> concurrent.futures.Future[bytes]:
    """The object of this IR for the host: the one stored on disk (a finished future), else
    compiled in the background (and stored), so several modules compile in parallel."""
    ir_text = with_no_builtins(str(module))
    key = object_cache_key(ir_text, host_cpu_name(), host_cpu_features())
    object_bytes = _read_cached_object(key)
    if object_bytes is not None:
        done: concurrent.futures.Future[bytes] = concurrent.futures.Future()
        done.set_result(object_bytes)
        return done
    return _background.submit(_compile_and_store, ir_text, key)


def _compile_and_store(ir_text: str, key: str) -> bytes:
    object_bytes = _optimizers.compile(ir_text)
    _write_cached_object(key, object_bytes)
    return object_bytes


def load_object(object_bytes: bytes, exports: Iterable[str],
                imports: Mapping[str, int] | None = None) -> JitLibrary:
    """Load an object made earlier by `compile_object` and kept by the caller (the artifact
    cache), returning the addresses of `exports`; raises RuntimeError if ORC cannot link it."""
    started = time.perf_counter()
    exported = frozenset(exports)
    digest = hashlib.sha256(object_bytes)
    digest.update(repr(sorted((imports or {}).items())).encode())
    key = digest.hexdigest()
    with _jit_lock:
        library = _live_libraries.get((key, exported))
        if library is None:
            library = _loaded(_link(object_bytes, exported, key, imports), exported, True,
                              started)
        _remember((key, exported), library)
        return library


def _loaded(tracker: llvm.ResourceTracker, exported: frozenset[str], from_cache: bool,
            started: float) -> JitLibrary:
    """The library of linked code: its exports' addresses, and the time since `started`."""
    return JitLibrary(name=tracker.name,
                      addresses={symbol: tracker[symbol] for symbol in exported},
                      from_cache=from_cache, seconds=time.perf_counter() - started,
                      _tracker=tracker)


def _link(object_bytes: bytes, exported: frozenset[str], key: str,
          imports: Imports = None) -> llvm.ResourceTracker:
    """Load an object into the process-wide ORC JIT under a fresh library name."""
    if callable(imports):
        imports = imports()  # before taking the lock: this may wait for a compilation
    builder = llvm.JITLibraryBuilder().add_object_img(object_bytes).add_current_process()
    for symbol, address in sorted((imports or {}).items()):
        builder.import_symbol(symbol, address)
    for symbol in sorted(exported):
        builder.export_symbol(symbol)
    with _jit_lock:
        jit = _orc_jit()
        tracker = builder.link(jit, f"symgrad_{next(_library_counter)}_{key[:16]}")
    tracker.jit = jit  # the JIT outlives the tracker: freed after the tracker unloads the code
    return tracker
