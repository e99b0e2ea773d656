"""Whole compilations kept on disk, so that a process compiling what an earlier one compiled
skips differentiation, simplification and code generation, and only loads object code.

An artifact is a little metadata (plain JSON: what a caller needs to call the code) and named
object files. Its key is a hash of everything that decides the code: what was compiled (the
traced graph, rendered exactly by `graph_key`, and the caller's options), symgrad's own source
(every .py file of compiler/ and runtime/), the versions of Python, numpy, sympy and llvmlite,
and the host CPU with its features. So an edit to symgrad, an upgrade or another machine can only
miss, never load stale code. Entries are sealed entries of the user's cache folder
(`compiler.cache_folder`): written atomically, authenticated with the user's key before a byte
of them is used, so an entry that is damaged, truncated, of another format or written by anyone
else is ignored (and replaced by the next store), never trusted. Set SYMGRAD_ARTIFACT_CACHE=0 to
bypass the cache.

This module never compiles anything itself, and knows nothing of what the metadata means.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compiler import cache_folder
from compiler.ir import Graph, Value
from compiler.lowering.target import host_cpu_features, host_cpu_name
from runtime._dtype import dtype as DType

FORMAT = b"symgrad-artifact 2\n"
_LENGTH = struct.Struct("<Q")
_PACKAGES = ("compiler", "runtime")


@dataclass
class Artifact:
    """What a compilation left: JSON-able metadata and object files by name."""

    meta: dict[str, Any]
    objects: dict[str, bytes] = field(default_factory=dict)


def enabled() -> bool:
    """Whether the on-disk caches are on (SYMGRAD_ARTIFACT_CACHE=0 turns them off)."""
    return cache_folder.enabled()


# ----- keys --------------------------------------------------------------------------------------

@functools.cache
def source_fingerprint() -> str:
    """A hash of symgrad's Python source (compiler/ and runtime/, every .py file by its path)."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for package in _PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _version(package: str) -> str:
    module = sys.modules.get(package)  # loaded already (tracing uses sympy): no metadata to read
    if module is not None and isinstance(getattr(module, "__version__", None), str):
        return str(module.__version__)
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


@functools.cache
def environment_key() -> str:
    """What besides the compiled graph decides the code: symgrad's source, library versions,
    the host CPU."""
    parts = [source_fingerprint(), sys.version, np.__version__, _version("sympy"),
             _version("llvmlite"), host_cpu_name(), host_cpu_features()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def entry_key(kind: str, *parts: str) -> str:
    """The key of an artifact of `kind` ("train_step", "kernels", ...) made from `parts`."""
    digest = hashlib.sha256(f"{environment_key()}\0{kind}".encode())
    for part in parts:
        digest.update(b"\0" + part.encode())
    return digest.hexdigest()


class _NotExact(Exception):
    """An attribute whose text would not identify it exactly: such a graph is not cached."""


def _exact(value: Any) -> str:
    """A text that determines `value` exactly (two different values never share one)."""
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, (tuple, list)):
        inner = ",".join(_exact(v) for v in value)
        return f"{type(value).__name__}({inner})"
    if isinstance(value, dict):
        return "dict(" + ",".join(f"{_exact(k)}:{_exact(v)}" for k, v in value.items()) + ")"
    if isinstance(value, slice):
        return f"slice({_exact(value.start)},{_exact(value.stop)},{_exact(value.step)})"
    if isinstance(value, DType):
        return f"dtype({value.name})"
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value, order="C")  # keeps a 0-d array 0-d, unlike ascontiguousarray
        return (f"array({array.dtype.str},{array.shape},"
                f"{hashlib.sha256(array.tobytes()).hexdigest()})")
    if type(value).__module__.startswith("sympy"):
        from sympy import srepr

        return srepr(value)
    raise _NotExact(type(value).__name__)


def exact_text(value: Any) -> str | None:
    """A text that determines `value` exactly, for keys; None if there is none."""
    try:
        return _exact(value)
    except _NotExact:
        return None


def _value_text(value: Value) -> str:
    return (f"{value.name}:{_exact(value.shape)}:{value.dtype.name}:{value.kind}:"
            f"{int(value.wrapped_number)}")


def graph_key(graph: Graph) -> str | None:
    """A hash that determines `graph` exactly -- every value's name, shape, dtype, kind and
    number-ness, constants' bytes, each node's op, inputs and attributes, the outputs -- or None
    if some attribute cannot be rendered exactly (the graph is then compiled, not cached)."""
    digest = hashlib.sha256()

    def add(text: str) -> None:
        digest.update(text.encode() + b"\n")

    try:
        add(f"graph {graph.name} {getattr(graph, '_return_structure', '')}")
        for value in graph.inputs:
            add("input " + _value_text(value))
        for value, array in graph.constants.items():
            add(f"constant {_value_text(value)} {_exact(array)}")
        for node in graph.nodes:
            op = node.op
            describe = getattr(op, "describe", None)  # a fused kernel: its body, as printed
            add(f"node {type(op).__module__}.{type(op).__qualname__}:{op.name} "
                f"{_value_text(node.output)} <- {','.join(v.name for v in node.inputs)} "
                f"{_exact(node.attrs)} {describe() if describe is not None else ''}")
        add("return " + ",".join(v.name for v in graph.outputs))
    except _NotExact:
        return None
    return digest.hexdigest()


# ----- files -------------------------------------------------------------------------------------

KIND = "artifacts"  # the cache folder's entries of this kind are artifacts


def load(key: str) -> Artifact | None:
    """The artifact stored under `key`, or None if there is none, or it is damaged or not
    authenticated (then it is removed, to be rebuilt)."""
    body = cache_folder.load(KIND, key)
    return None if body is None else _decode(body)


def _decode(data: bytes) -> Artifact | None:
    if not data.startswith(FORMAT):
        return None
    body = data[len(FORMAT):]
    try:
        (meta_length,) = _LENGTH.unpack_from(body)
        record = json.loads(body[_LENGTH.size:_LENGTH.size + meta_length].decode())
        offset = _LENGTH.size + meta_length
        objects = {}
        for name, length in record["objects"]:
            objects[name] = body[offset:offset + length]
            offset += length
        if offset != len(body):
            return None
        return Artifact(record["meta"], objects)
    except (ValueError, KeyError, TypeError, struct.error):
        return None


def encode(artifact: Artifact) -> bytes:
    """The bytes an artifact is kept as (before the cache folder seals them)."""
    names = list(artifact.objects)
    record = json.dumps({"meta": artifact.meta,
                         "objects": [[n, len(artifact.objects[n])] for n in names]}).encode()
    return b"".join([FORMAT, _LENGTH.pack(len(record)), record,
                     *(artifact.objects[n] for n in names)])


def store(key: str, artifact: Artifact) -> None:
    """Keep `artifact` under `key`, sealed and written atomically (a concurrent reader sees all
    of it or nothing). An unwritable or untrusted cache only costs a compilation later."""
    cache_folder.store(KIND, key, encode(artifact))


def path_of(key: str) -> Path:
    """Where the artifact of `key` is kept (for tests and cache tools)."""
    return cache_folder.location() / KIND / f"{key}{cache_folder.KINDS[KIND]}"


def stored_keys() -> Iterable[str]:
    """Keys of the artifacts on disk (for tests and cache tools)."""
    directory = cache_folder.location() / KIND
    return sorted(p.stem for p in directory.glob("*.artifact")) if directory.is_dir() else []
