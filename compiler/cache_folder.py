"""symgrad's cache folder: where it is, whether it may be trusted, and its sealed entries.

The folder ($SYMGRAD_CACHE_DIR, else ~/.cache/symgrad) is trusted only while it is the user's
own: a real folder (not a symbolic link), owned by the current user, writable by nobody else. It
is created 0700 and checked on every use; a folder that fails the check is not used at all (one
warning per folder names it and the fix), so compilations still work, just uncached.

Every entry is sealed: its bytes follow an HMAC-SHA256 computed with a random per-user key kept
in the folder (`key`, 0600, created atomically and checked like the folder) over the entry's
kind, name and contents. An entry whose seal does not verify -- damaged, truncated, written by an
older symgrad, copied from another folder or planted by someone who does not hold the key -- is
removed and reported as missing, so the caller rebuilds and overwrites it; nothing read back is
used unless it verifies. The folder is kept under a size cap ($SYMGRAD_CACHE_MAX_BYTES, default
1 GiB) by removing the least recently used entries. SYMGRAD_ARTIFACT_CACHE=0 turns every on-disk
cache off.

This module knows nothing of what entries mean; it never compiles or links anything.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

KINDS = {"objects": ".o", "artifacts": ".artifact"}  # entry kind -> file suffix (one folder each)
KEY_FILE = "key"
KEY_BYTES = 32
SEAL = b"symgrad-sealed 1\n"
DEFAULT_MAX_BYTES = 1 << 30
_SIZE = re.compile(r"\s*(\d+)\s*([kmgt]?)i?b?\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_ENTRY_NAME = re.compile(r"[0-9a-f]{64}")
TRIM_TO = 0.8  # trimming stops once the folder is under this fraction of the cap

_lock = threading.Lock()
_warned: set[str] = set()
_estimated_bytes: dict[str, int] = {}  # folder -> its entries' bytes when last counted, plus
# what this process stored since: the folder is listed again only when this passes the cap


def enabled() -> bool:
    """Whether on-disk caching is on (SYMGRAD_ARTIFACT_CACHE=0 turns it off)."""
    return os.environ.get("SYMGRAD_ARTIFACT_CACHE", "1") != "0"


def location() -> Path:
    """Where the cache folder is: $SYMGRAD_CACHE_DIR, else ~/.cache/symgrad."""
    configured = os.environ.get("SYMGRAD_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "symgrad"


def max_bytes() -> int:
    """The size cap: $SYMGRAD_CACHE_MAX_BYTES (bytes, or with a K, M, G or T suffix), else 1 GiB."""
    text = os.environ.get("SYMGRAD_CACHE_MAX_BYTES")
    if not text:
        return DEFAULT_MAX_BYTES
    match = _SIZE.fullmatch(text)
    if match is None:
        _warn_once(f"size:{text}", f"SYMGRAD_CACHE_MAX_BYTES={text!r} is not a size such as "
                   f"500M or 2G; using the default cap of {DEFAULT_MAX_BYTES >> 20} MiB")
        return DEFAULT_MAX_BYTES
    return int(match[1]) * _UNITS[match[2].lower()]


# ----- trust -------------------------------------------------------------------------------------

def untrusted_reason(path: Path) -> str | None:
    """Why `path` is not a folder only the current user can write (None: it is)."""
    try:
        info = os.lstat(path)
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    if info.st_uid != os.getuid():
        return f"is owned by another user (uid {info.st_uid})"
    if info.st_mode & 0o022:
        return f"is writable by other users (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def fix_for(path: Path, reason: str) -> str:
    """What the user should do about a folder that is untrusted for `reason`."""
    if "writable by other users" in reason:
        return f"run `chmod 700 {path}`, or set SYMGRAD_CACHE_DIR to a folder only you can write"
    return f"set SYMGRAD_CACHE_DIR to a folder only you can write, or remove {path}"


def _warn_once(topic: str, message: str) -> None:
    with _lock:
        if topic in _warned:
            return
        _warned.add(topic)
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def _make_private(path: Path) -> None:
    """Create `path` (and missing parents) as a 0700 folder, if it does not exist yet."""
    if os.path.lexists(path):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:  # made meanwhile (by another process): checked below like any other
        return
    os.chmod(path, 0o700)  # whatever the umask


def folder(kind: str | None = None) -> Path | None:
    """The cache folder (or its folder of entries of `kind`), created 0700 if missing and checked
    to be the user's own; None when caching is off or the folder cannot be trusted (warned once)."""
    if not enabled():
        return None
    root = location()
    paths = [root] if kind is None else [root, root / kind]
    for path in paths:
        try:
            _make_private(path)
        except OSError:
            return None  # an uncreatable cache only costs compilations
        reason = untrusted_reason(path)
        if reason is not None:
            _warn_once(str(path), f"symgrad's cache folder {path} {reason}, so it is not used "
                       f"and nothing is cached; {fix_for(path, reason)}")
            return None
    return paths[-1]


def _key(root: Path) -> bytes | None:
    """The folder's HMAC key: read and checked (a regular 0600 file of the user's, not a link),
    or created atomically with random bytes; None if there is no usable key."""
    path = root / KEY_FILE
    for _ in range(2):
        try:
            descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            if not _create_key(root, path):
                return None
            continue
        except OSError as error:
            _warn_once(str(path), f"symgrad's cache key {path} cannot be read "
                       f"({error.strerror or error}), so the cache is not used; remove it")
            return None
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(handle.fileno())
            key = handle.read(KEY_BYTES + 1)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid()
                or info.st_mode & 0o077 or len(key) != KEY_BYTES):
            _warn_once(str(path), f"symgrad's cache key {path} is not a {KEY_BYTES}-byte file "
                       "that only you can read, so the cache is not used; remove it (a new key "
                       "is made, and the entries made with the old one are rebuilt)")
            return None
        return key
    return None


def _create_key(root: Path, path: Path) -> bool:
    """Write a random key to a private temporary file and link it into place: the key appears
    whole or not at all, and a key another process made first is kept."""
    try:
        descriptor, temporary = tempfile.mkstemp(dir=root, prefix=".key-", suffix=".tmp")
    except OSError:
        return False
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(os.urandom(KEY_BYTES))
        os.link(temporary, path)
    except FileExistsError:
        pass
    except OSError:
        return False
    finally:
        Path(temporary).unlink(missing_ok=True)
    return True


def seal(key: bytes, kind: str, name: str, body: bytes) -> bytes:
    """An entry's file: SEAL, the HMAC-SHA256 of (kind, name, body) under `key`, then body."""
    tag = hmac.new(key, f"{kind}\0{name}\0".encode() + body, hashlib.sha256).digest()
    return SEAL + tag + body


def unseal(key: bytes, kind: str, name: str, data: bytes) -> bytes | None:
    """The body of a sealed entry, or None if its seal does not verify under `key`."""
    start = len(SEAL) + hashlib.sha256().digest_size
    if len(data) < start or not data.startswith(SEAL):
        return None
    body = data[start:]
    if not hmac.compare_digest(seal(key, kind, name, body)[:start], data[:start]):
        return None
    return body


# ----- entries -----------------------------------------------------------------------------------

def _entry(kind: str, name: str) -> Path | None:
    """The path of an entry, or None if the cache is off or untrusted."""
    if not _ENTRY_NAME.fullmatch(name):
        raise ValueError(f"cache entry names are sha256 hex digests, not {name!r}")
    directory = folder(kind)
    return None if directory is None else directory / f"{name}{KINDS[kind]}"


def load(kind: str, name: str) -> bytes | None:
    """The verified body of entry `name` of `kind`, or None (missing, off, untrusted, or failing
    its seal -- then it is removed, and the caller rebuilds it)."""
    path = _entry(kind, name)
    if path is None:
        return None
    key = _key(path.parents[1])
    if key is None:
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(descriptor, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    body = unseal(key, kind, name, data)
    if body is None:
        path.unlink(missing_ok=True)
        return None
    try:
        os.utime(path)  # most recently used: trimmed last
    except OSError:
        pass
    return body


def store(kind: str, name: str, body: bytes) -> None:
    """Keep `body` as entry `name` of `kind`: sealed, written to a temporary file and renamed into
    place (a concurrent reader sees all of it or nothing), then the folder trimmed to its cap. An
    unwritable or untrusted cache only costs a compilation later."""
    path = _entry(kind, name)
    if path is None:
        return
    key = _key(path.parents[1])
    if key is None:
        return
    temporary = None
    sealed = seal(key, kind, name, body)
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(sealed)
        os.replace(temporary, path)
        temporary = None
    except OSError:
        return
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
    root = str(path.parents[1])
    with _lock:
        estimate = _estimated_bytes.get(root)
        if estimate is not None:
            _estimated_bytes[root] = estimate + len(sealed)
    if estimate is None or estimate + len(sealed) > max_bytes():
        trim(max_bytes())


# ----- size --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Usage:
    """What the cache holds: its folder, how many entries, their bytes, and the cap."""

    folder: Path
    entries: int
    bytes: int
    max_bytes: int
    trusted: bool


def _entries(root: Path) -> list[tuple[float, int, Path]]:
    """(last use, bytes, path) of every entry of symgrad's in the folder (with the unsealed
    objects older versions kept in the folder itself, which are never read)."""
    found = []
    for directory, suffix in [(root / kind, suffix) for kind, suffix in KINDS.items()] + [
            (root, ".o")]:
        if not directory.is_dir() or untrusted_reason(directory) is not None:
            continue
        for entry in os.scandir(directory):
            if entry.name.endswith(suffix) and _ENTRY_NAME.fullmatch(entry.name[:-len(suffix)]):
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                found.append((info.st_mtime, info.st_size, Path(entry.path)))
    return found


def trim(limit: int) -> None:
    """Remove the least recently used entries until the folder holds at most `limit` bytes of
    them (down to TRIM_TO of it, so trimming is rare)."""
    root = folder()
    if root is None:
        return
    entries = _entries(root)
    total = sum(size for _, size, _ in entries)
    if total > limit:
        for _, size, path in sorted(entries, key=lambda e: e[0]):
            if total <= limit * TRIM_TO:
                break
            try:
                path.unlink()
                total -= size
            except OSError:
                pass
    with _lock:
        _estimated_bytes[str(root)] = total


def usage() -> Usage:
    """The cache's folder, entry count, bytes and cap (`symgrad cache info`)."""
    root = location()
    trusted = enabled() and os.path.isdir(root) and untrusted_reason(root) is None
    entries = _entries(root) if trusted else []
    return Usage(root, len(entries), sum(size for _, size, _ in entries), max_bytes(), trusted)


def clear() -> int:
    """Remove every entry of symgrad's (and its leftover temporary files), nothing else; the
    number of entries removed. The key stays."""
    root = location()
    if not os.path.isdir(root) or untrusted_reason(root) is not None:
        return 0
    removed = 0
    _estimated_bytes.pop(str(root), None)
    for _, _, path in _entries(root):
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    for kind in KINDS:
        directory = root / kind
        if directory.is_dir() and untrusted_reason(directory) is None:
            for leftover in directory.glob("*.tmp"):
                if leftover.is_file() and not leftover.is_symlink():
                    leftover.unlink(missing_ok=True)
    return removed
