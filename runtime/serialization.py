"""`save` and `load` in PyTorch's own checkpoint format, so files move both ways between symgrad
and PyTorch.

The format: a zip archive (records stored uncompressed, each tensor's bytes aligned to 64) under
one folder, `<name>/`:
- `data.pkl`: the object, pickled with protocol 2; each tensor is the call
  `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`, and each
  storage a persistent id `('storage', torch.<Type>Storage, key, location, numel)`;
- `data/<key>`: a storage's bytes, little-endian;
- `version`, `byteorder`, `.format_version`, `.storage_alignment`, `.data/serialization_id`.
Pickles name PyTorch's globals (`torch float32`, `torch Size`, `collections OrderedDict`); this
module maps them to symgrad's objects and back.

A pickle is a program: loading one can run any code it names. So `load` uses, by default
(`weights_only=True`, as PyTorch >= 2.6), an unpickler that admits only the globals a checkpoint
of tensors and containers needs (`_ALLOWED`) and refuses every other one with an
UnpicklingError naming it, before anything runs; tensor sizes and strides are checked against
their storage. Only `weights_only=False` (for files you trust, such as a whole pickled model)
unpickles anything.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
import secrets
import struct
import types
import zipfile
from collections import OrderedDict
from typing import Any

import numpy as np

from runtime import _dtype
from runtime._device import check_device, device
from runtime._tensor import Size, Tensor

# ----- storages ----------------------------------------------------------------------------------


class _StorageType:
    """A PyTorch typed-storage class (`torch.FloatStorage`) as it appears in a pickle."""

    def __init__(self, d: _dtype.dtype) -> None:
        self.dtype = d
        self.name = f"{d.scalar_name}Storage"

    def __repr__(self) -> str:
        return f"torch.{self.name}"


_STORAGE_TYPES = {d: _StorageType(d) for d in (_dtype.bool_, _dtype.uint8, _dtype.int8,
                                               _dtype.int16, _dtype.int32, _dtype.int64,
                                               _dtype.float16, _dtype.float32, _dtype.float64)}
_STORAGE_BY_NAME = {t.name: t for t in _STORAGE_TYPES.values()}


class _Storage:
    """A tensor's memory being written: its flat data, under a record key."""

    def __init__(self, data: np.ndarray, key: str) -> None:
        self.data = data
        self.key = key


# ----- rebuilding tensors (the functions pickles call) -------------------------------------------

def _rebuild_tensor_v2(storage: np.ndarray, storage_offset: int, size: Any, stride: Any,
                       requires_grad: bool, backward_hooks: Any, metadata: Any = None) -> Tensor:
    """A tensor with the given size and stride over a storage (PyTorch's rebuild function),
    copied out of it once every index is checked to stay inside the storage."""
    size, stride = tuple(size), tuple(stride)
    numbers = (storage_offset, *size, *stride)
    if len(size) != len(stride) or not all(type(n) is int and n >= 0 for n in numbers):
        raise pickle.UnpicklingError(f"invalid tensor in checkpoint: size {size}, stride "
                                     f"{stride}, offset {storage_offset}")
    if all(size):
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.size:
            raise pickle.UnpicklingError(f"invalid tensor in checkpoint: size {size} and stride "
                                         f"{stride} reach element {last} of a storage of "
                                         f"{storage.size}")
    itemsize = storage.itemsize
    start = storage[storage_offset:] if all(size) else storage
    view = np.lib.stride_tricks.as_strided(start, shape=size,
                                           strides=[s * itemsize for s in stride],
                                           writeable=False)
    tensor = Tensor._from_array(np.array(view, copy=True))
    if requires_grad:
        tensor.requires_grad_(True)
    return tensor


def _rebuild_parameter(data: Tensor, requires_grad: bool, backward_hooks: Any) -> Any:
    from runtime.nn.parameter import Parameter

    return Parameter(data, requires_grad)


def _rebuild_parameter_with_state(data: Tensor, requires_grad: bool, backward_hooks: Any,
                                  state: Any) -> Any:
    parameter = _rebuild_parameter(data, requires_grad, backward_hooks)
    if state:
        raise pickle.UnpicklingError("a Parameter with extra Python state is not supported")
    return parameter


# ----- names in pickles --------------------------------------------------------------------------

_DTYPE_NAMES = {"float32": _dtype.float32, "float": _dtype.float32, "float64": _dtype.float64,
                "double": _dtype.float64, "float16": _dtype.float16, "half": _dtype.float16,
                "int64": _dtype.int64, "long": _dtype.int64, "int32": _dtype.int32,
                "int": _dtype.int32, "int16": _dtype.int16, "short": _dtype.int16,
                "int8": _dtype.int8, "uint8": _dtype.uint8, "bool": _dtype.bool_}

# (module, name) -> object: every global a weights-only load admits.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("torch", "Size"): Size,
    ("torch", "device"): device,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "range"): range,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
    ("_codecs", "encode"): codecs.encode,  # how protocol 2 spells a bytes object
    **{("torch", name): d for name, d in _DTYPE_NAMES.items()},
    **{("torch", t.name): t for t in _STORAGE_TYPES.values()},
}

_user_allowed: dict[tuple[str, str], Any] = {}  # add_safe_globals


def add_safe_globals(safe_globals: list[Any]) -> None:
    """Admit more globals in weights-only loads: classes or functions (found under their
    module and qualified name), or (object, "module.name") pairs. Only for globals you trust:
    a weights-only load then calls them with the checkpoint's arguments."""
    for entry in safe_globals:
        obj, full_name = entry if isinstance(entry, tuple) else (
            entry, f"{entry.__module__}.{entry.__qualname__}")
        module, _, name = full_name.rpartition(".")
        _user_allowed[(module, name)] = obj


def get_safe_globals() -> list[Any]:
    return list(_user_allowed.values())


def clear_safe_globals() -> None:
    _user_allowed.clear()


class safe_globals:  # noqa: N801 - PyTorch's name
    """`with safe_globals([...]):` admits the globals for the loads inside the block only."""

    def __init__(self, globals_: list[Any]) -> None:
        self._globals = globals_

    def __enter__(self) -> None:
        self._before = dict(_user_allowed)
        add_safe_globals(self._globals)

    def __exit__(self, *exc: Any) -> None:
        _user_allowed.clear()
        _user_allowed.update(self._before)


# symgrad object -> (module, name) it is written as, so that PyTorch finds its own globals.
_WRITTEN_AS: dict[int, tuple[str, str]] = {
    id(_rebuild_tensor_v2): ("torch._utils", "_rebuild_tensor_v2"),
    id(_rebuild_parameter): ("torch._utils", "_rebuild_parameter"),
    id(Size): ("torch", "Size"),
    id(device): ("torch", "device"),
    **{id(d): ("torch", d.name) for d in _STORAGE_TYPES},
    **{id(t): ("torch", t.name) for t in _STORAGE_TYPES.values()},
}


# ----- writing -----------------------------------------------------------------------------------

class _CheckpointPickler(pickle._Pickler):  # the Python pickler: its save_global can be replaced
    """Pickles tensors as PyTorch does (rebuild calls over persistent storages) and writes
    symgrad's dtypes, Size, device and rebuild functions under PyTorch's names."""

    # typeshed declares only part of pickle._Pickler (not save_global, write or memoize, and
    # its dispatch as taking an Unpickler): hence the ignores below.
    dispatch = pickle._Pickler.dispatch.copy()
    dispatch[types.FunctionType] = lambda self, obj: (  # (this class's save_global)
        self.save_global(obj))  # type: ignore[attr-defined]

    def __init__(self, file: Any, protocol: int) -> None:
        super().__init__(file, protocol)
        self.storages: list[_Storage] = []

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, _Storage):
            d = _dtype.from_numpy_dtype(obj.data.dtype)
            return ("storage", _STORAGE_TYPES[d], obj.key, "cpu", int(obj.data.size))
        return None

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Tensor):
            if obj._is_symbolic:
                raise pickle.PicklingError("a traced (symbolic) tensor has no values to save")
            from runtime.nn.parameter import Parameter

            if isinstance(obj, Parameter):
                return _rebuild_parameter, (obj.detach(), obj.requires_grad, OrderedDict())
            data = np.array(obj._data, order="C")  # (ascontiguousarray makes 0-d 1-d)
            storage = _Storage(data.reshape(-1), str(len(self.storages)))
            self.storages.append(storage)
            stride = tuple(s // data.itemsize for s in data.strides)
            return _rebuild_tensor_v2, (storage, 0, tuple(data.shape), stride,
                                        obj.requires_grad, OrderedDict())
        if isinstance(obj, (_dtype.dtype, _StorageType)):
            return obj.name  # a global, written by save_global under PyTorch's name
        if isinstance(obj, Size):
            return Size, (tuple(obj),)
        if isinstance(obj, device):
            return device, (obj.type,) if obj.index is None else (obj.type, obj.index)
        return NotImplemented

    def save_global(self, obj: Any, name: str | None = None) -> None:
        written = _WRITTEN_AS.get(id(obj))
        if written is None:
            super().save_global(obj, name)  # type: ignore[misc]
            return
        module, qualname = written
        self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode())  # type: ignore[attr-defined]
        self.memoize(obj)  # type: ignore[attr-defined]


def save(obj: Any, f: Any, pickle_module: Any = pickle, pickle_protocol: int = 2,
         _use_new_zipfile_serialization: bool = True, _disable_byteorder_record: bool = False
         ) -> None:
    """Write `obj` (tensors, state_dicts, optimiser state, containers of them, or with
    weights_only=False on load, any picklable object) to a path or a binary file object."""
    if not _use_new_zipfile_serialization:
        raise NotImplementedError("symgrad writes only PyTorch's zip format")
    buffer = io.BytesIO()
    pickler = _CheckpointPickler(buffer, pickle_protocol)
    pickler.dump(obj)
    prefix = _archive_name(f)
    records = [("data.pkl", buffer.getvalue()), (".format_version", b"1"),
               (".storage_alignment", b"64")]
    if not _disable_byteorder_record:
        records.append(("byteorder", b"little"))
    for storage in pickler.storages:
        records.append((f"data/{storage.key}", storage.data.astype(
            storage.data.dtype.newbyteorder("<"), copy=False).tobytes()))
    records += [("version", b"3\n"), (".data/serialization_id", str(
        secrets.randbelow(10**40)).zfill(40).encode())]
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as file:
            _write_archive(file, prefix, records)
    else:
        _write_archive(f, prefix, records)


def _archive_name(f: Any) -> str:
    """PyTorch's folder name: the file's name without its extension, or 'archive'."""
    if isinstance(f, (str, os.PathLike)):
        stem = os.path.splitext(os.path.basename(os.fspath(f)))[0]
        return stem or "archive"
    return "archive"


def _write_archive(file: Any, prefix: str, records: list[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
        assert archive.fp is not None  # open for writing
        for name, data in records:
            info = zipfile.ZipInfo(f"{prefix}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            start = archive.fp.tell() + 30 + len(info.filename.encode()) + 4  # header + field
            padding = -start % 64
            info.extra = b"FB" + struct.pack("<H", padding) + b"Z" * padding  # as PyTorch pads
            archive.writestr(info, data)


# ----- reading -----------------------------------------------------------------------------------

_CUDA_ON_CPU = ("Attempting to deserialize object on a CUDA device but torch.cuda.is_available() "
                "is False. If you are running on a CPU-only machine, please use torch.load with "
                "map_location=torch.device('cpu') to map your storages to the CPU.")


class _CheckpointUnpickler(pickle.Unpickler):
    """Reads data.pkl: storages from the archive's records; globals from the allow-list
    (weights_only) or, for trusted files, mapped to symgrad's where PyTorch's are named."""

    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str, map_location: Any,
                 weights_only: bool, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._archive = archive
        self._prefix = prefix
        self._map_location = map_location
        self._weights_only = weights_only
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # how protocol 2 names Python 3's builtins
            module = "builtins"
        allowed = _ALLOWED.get((module, name), _user_allowed.get((module, name)))
        if allowed is not None:
            return allowed
        if self._weights_only:
            raise pickle.UnpicklingError(
                f"Weights only load failed: unsupported global {module}.{name} was found in "
                "the checkpoint. A pickle can run any code it names, so weights_only=True (the "
                "default) admits only tensors, dtypes, sizes and containers. If you trust the "
                "source of this file, load it with weights_only=False, or admit this global "
                f"with runtime.serialization.add_safe_globals([{module}.{name}]).")
        if module.split(".")[0] == "torch":
            raise pickle.UnpicklingError(f"the checkpoint needs PyTorch's {module}.{name}, which "
                                         "symgrad does not provide (a whole pickled PyTorch "
                                         "model?); save and load its state_dict() instead")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and isinstance(pid[4], int)):
            raise pickle.UnpicklingError(f"unsupported persistent id in checkpoint: {pid!r}")
        _, storage_type, key, location, numel = pid
        self._check_location(str(location))
        if key not in self._storages:
            try:
                raw = self._archive.read(f"{self._prefix}/data/{key}")
            except KeyError:
                raise pickle.UnpicklingError(f"checkpoint has no record data/{key}") from None
            dtype = storage_type.dtype.numpy.newbyteorder("<")
            if len(raw) != numel * dtype.itemsize:
                raise pickle.UnpicklingError(f"storage data/{key} holds {len(raw)} bytes, not "
                                             f"{numel} elements of {storage_type.dtype}")
            self._storages[key] = np.frombuffer(raw, dtype).astype(storage_type.dtype.numpy)
        return self._storages[key]

    def _check_location(self, location: str) -> None:
        """Where the storage goes: map_location (a device, string, dict or function) applied to
        where it was saved; only the CPU exists here."""
        target: Any = self._map_location
        if target is None:
            if location.startswith("cuda"):
                raise RuntimeError(_CUDA_ON_CPU)
            target = location
        elif isinstance(target, dict):
            target = target.get(location, location)
            if str(target).startswith("cuda"):
                raise RuntimeError(_CUDA_ON_CPU)
        elif callable(target):
            return  # PyTorch would call it with each storage; here every storage is on the CPU
        check_device(target)


def load(f: Any, map_location: Any = None, pickle_module: Any = None, *,
         weights_only: bool | None = None, mmap: bool | None = None,
         **pickle_load_args: Any) -> Any:
    """Read a checkpoint written by `save` or by PyTorch's torch.save (zip format), from a path
    or a binary file object. `weights_only` is True unless given: see the module's docstring."""
    if weights_only is None:
        weights_only = True
    if pickle_module is not None and weights_only:
        raise RuntimeError("Can not safely load weights when explicit pickle_module is specified")
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as file:
            return _load_archive(file, map_location, weights_only, pickle_load_args)
    return _load_archive(f, map_location, weights_only, pickle_load_args)


def _load_archive(file: Any, map_location: Any, weights_only: bool,
                  pickle_load_args: dict[str, Any]) -> Any:
    start = file.tell() if file.seekable() else 0
    if not zipfile.is_zipfile(file):
        raise RuntimeError("not a checkpoint in PyTorch's zip format (files from torch.save "
                           "before PyTorch 1.6, or with _use_new_zipfile_serialization=False, "
                           "are not supported)")
    file.seek(start)
    with zipfile.ZipFile(file) as archive:
        pickles = [n for n in archive.namelist() if n.count("/") == 1 and
                   n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise RuntimeError("the checkpoint has no single <name>/data.pkl record")
        prefix = pickles[0].split("/")[0]
        byteorder = f"{prefix}/byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder) != b"little":
            raise RuntimeError("the checkpoint was written on a big-endian machine; symgrad "
                               "reads little-endian checkpoints only")
        data = io.BytesIO(archive.read(pickles[0]))
        pickle_load_args.setdefault("encoding", "utf-8")
        unpickler = _CheckpointUnpickler(data, archive, prefix, map_location, weights_only,
                                         **pickle_load_args)
        return unpickler.load()
