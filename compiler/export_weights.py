"""An exported model's weights: their bytes, their hashes, and the `<name>.weights` file format.

The weights are the model's parameters and buffers in graph-input order. They are either embedded
in the library as constants or written to a weights file that `<name>_init` loads. The file is,
in little-endian byte order:

    offset  bytes  field
    0       8      magic, b"SYMGRADW"
    8       4      format version (2)
    12      4      number of tensors
    16      8      layout hash: the first 8 bytes of sha256 of the tensors' names, dtypes, shapes
    24      8      payload bytes
    32      32     SHA-256 of the payload
    64      ...    payload: each tensor's elements in C order, zero-padded to a multiple of 64 bytes

The loader (emitted as IR in `export_entry.py`, the hash in `export_digest.py`) checks every
field before it uses a byte: the magic and version say it is such a file, count, layout and size
that it belongs to this model, the SHA-256 that it is undamaged (any change to the payload, of
one bit or many, is caught). It authenticates nothing: whoever may replace the file may also
recompute its hash. This module never touches a model; it is given names and arrays.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAGIC = b"SYMGRADW"
VERSION = 2
HEADER = struct.Struct("<8sIIQQ32s")
ALIGN = 64  # every tensor starts on a cache line of the loaded payload

# byte offsets of the header's fields, for the loader
MAGIC_AT, VERSION_AT, COUNT_AT, LAYOUT_AT, PAYLOAD_AT, DIGEST_AT = 0, 8, 12, 16, 24, 32


def _padded(nbytes: int) -> int:
    return -(-nbytes // ALIGN) * ALIGN


def payload_digest(payload: bytes) -> bytes:
    """The SHA-256 the loader recomputes over the payload."""
    return hashlib.sha256(payload).digest()


@dataclass(frozen=True)
class Weights:
    """Named tensors as an export stores them: little-endian, C-contiguous copies."""

    names: tuple[str, ...]
    arrays: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, names: Sequence[str], arrays: Sequence[np.ndarray]) -> Weights:
        copies = tuple(np.asarray(a, dtype=a.dtype.newbyteorder("<"), order="C")  # 0-d stays 0-d
                       for a in arrays)
        return cls(tuple(names), copies)

    @property
    def offsets(self) -> list[int]:
        """Where each tensor starts in the payload, in bytes."""
        offsets, cursor = [], 0
        for array in self.arrays:
            offsets.append(cursor)
            cursor += _padded(array.nbytes)
        return offsets

    @property
    def payload_bytes(self) -> int:
        return sum(_padded(a.nbytes) for a in self.arrays)

    @property
    def element_count(self) -> int:
        return sum(int(a.size) for a in self.arrays)

    def layout_text(self) -> str:
        return "".join(f"{name} {array.dtype.name} {list(array.shape)}\n"
                       for name, array in zip(self.names, self.arrays))

    def layout_hash(self) -> int:
        """What identifies the model a weights file belongs to: names, dtypes and shapes."""
        digest = hashlib.sha256(self.layout_text().encode()).digest()
        return int.from_bytes(digest[:8], "little")

    def sha256(self) -> str:
        """sha256 of the tensors' bytes (little-endian, C order), concatenated without padding."""
        digest = hashlib.sha256()
        for array in self.arrays:
            digest.update(array.tobytes())
        return digest.hexdigest()

    def payload(self) -> bytes:
        parts = []
        for array in self.arrays:
            data = array.tobytes()
            parts.append(data + bytes(_padded(len(data)) - len(data)))
        return b"".join(parts)

    def file_bytes(self) -> bytes:
        """The whole weights file: header, then payload."""
        payload = self.payload()
        header = HEADER.pack(MAGIC, VERSION, len(self.arrays), self.layout_hash(), len(payload),
                             payload_digest(payload))
        return header + payload
