"""The cache folder is used only while it is the user's own, and nothing read back from it is used
unless its seal verifies: raw objects and artifacts alike."""

from __future__ import annotations

import ctypes
import os
import random
import stat
import warnings

import pytest

from compiler import cache_folder
from compiler.lowering import target


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A cache folder that does not exist yet (symgrad creates it)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(path))
    monkeypatch.delenv("SYMGRAD_ARTIFACT_CACHE", raising=False)
    monkeypatch.delenv("SYMGRAD_CACHE_MAX_BYTES", raising=False)
    monkeypatch.setattr(cache_folder, "_warned", set())
    monkeypatch.setattr(cache_folder, "_estimated_bytes", {})
    return path


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _adder_ir() -> tuple[str, str, int]:
    """A tiny module of its own (a fresh constant, so its object is not cached yet): IR, symbol,
    the constant it adds."""
    constant = random.randrange(1, 1 << 40)
    symbol = f"symgrad_test_add_{constant}"
    return (f"define i64 @{symbol}(i64 %a) {{\n  %r = add i64 %a, {constant}\n  ret i64 %r\n}}\n",
            symbol, constant)


def _object_key(ir_text: str) -> str:
    return target.object_cache_key(target.with_no_builtins(ir_text), target.host_cpu_name(),
                                   target.host_cpu_features())


def _call(object_bytes: bytes, symbol: str, argument: int) -> int:
    library = target.load_object(object_bytes, [symbol])
    return ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(library[symbol])(argument)


# ----- the folder ---------------------------------------------------------------------------------

def test_the_folder_its_kinds_and_its_key_are_private_even_under_umask_000(cache_dir):
    previous = os.umask(0)
    try:
        cache_folder.store("objects", "a" * 64, b"object")
    finally:
        os.umask(previous)
    assert _mode(cache_dir) == 0o700
    assert _mode(cache_dir / "objects") == 0o700
    assert _mode(cache_dir / "key") == 0o600
    assert _mode(cache_dir / "objects" / ("a" * 64 + ".o")) == 0o600
    assert cache_folder.load("objects", "a" * 64) == b"object"


@pytest.mark.parametrize("problem", ["world-writable", "group-writable", "symlink",
                                     "other owner"])
def test_a_folder_others_can_write_is_not_used_with_one_warning(cache_dir, tmp_path, problem):
    if problem == "symlink":
        real = tmp_path / "real"
        real.mkdir(mode=0o700)
        cache_dir.symlink_to(real)
    else:
        cache_dir.mkdir(mode=0o700)
        if problem == "other owner":
            if os.getuid() != 0:
                pytest.skip("only root can give a folder to another user")
            os.chown(cache_dir, 4242, 4242)
        else:
            os.chmod(cache_dir, 0o777 if problem == "world-writable" else 0o770)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            cache_folder.store("objects", "b" * 64, b"object")
            assert cache_folder.load("objects", "b" * 64) is None
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, f"expected one warning, got {messages}"
    assert str(cache_dir) in messages[0] and "not used" in messages[0]
    assert "SYMGRAD_CACHE_DIR" in messages[0] or "chmod 700" in messages[0]
    assert not list(tmp_path.rglob("*.o")), "nothing may be written into an untrusted folder"


def test_an_untrusted_folder_still_compiles(cache_dir):
    cache_dir.mkdir(mode=0o777)
    os.chmod(cache_dir, 0o777)
    ir_text, symbol, constant = _adder_ir()
    with pytest.warns(RuntimeWarning, match="not used"):
        object_bytes = target.host_object_soon(ir_text).result()
    assert _call(object_bytes, symbol, 1) == constant + 1
    assert not list(cache_dir.rglob("*.o"))


def test_a_key_others_can_read_or_a_linked_key_is_refused(cache_dir, tmp_path):
    cache_folder.store("objects", "c" * 64, b"object")
    key = cache_dir / "key"
    os.chmod(key, 0o644)
    with pytest.warns(RuntimeWarning, match="cache key"):
        assert cache_folder.load("objects", "c" * 64) is None
    key.unlink()
    (tmp_path / "elsewhere").write_bytes(bytes(32))
    key.symlink_to(tmp_path / "elsewhere")
    cache_folder._warned.clear()
    with pytest.warns(RuntimeWarning, match="cache key"):
        assert cache_folder.load("objects", "c" * 64) is None


def test_caching_off_writes_nothing_at_all(cache_dir, monkeypatch):
    monkeypatch.setenv("SYMGRAD_ARTIFACT_CACHE", "0")
    ir_text, symbol, constant = _adder_ir()
    assert _call(target.host_object_soon(ir_text).result(), symbol, 2) == constant + 2
    library = target.jit_compile(_adder_ir()[0], [])
    assert not library.from_cache
    assert not cache_dir.exists(), "SYMGRAD_ARTIFACT_CACHE=0 must turn the object cache off too"


# ----- sealed entries -----------------------------------------------------------------------------

def test_an_entry_sealed_with_another_key_is_refused_and_removed(cache_dir):
    cache_folder.store("objects", "d" * 64, b"genuine")
    path = cache_dir / "objects" / ("d" * 64 + ".o")
    path.write_bytes(cache_folder.seal(os.urandom(32), "objects", "d" * 64, b"planted"))
    assert cache_folder.load("objects", "d" * 64) is None
    assert not path.exists()


def test_an_entry_moved_to_another_name_is_refused(cache_dir):
    cache_folder.store("objects", "e" * 64, b"object of e")
    os.replace(cache_dir / "objects" / ("e" * 64 + ".o"), cache_dir / "objects" / ("f" * 64 + ".o"))
    assert cache_folder.load("objects", "f" * 64) is None


@pytest.mark.parametrize("damage", ["truncate", "flip a bit", "empty", "unsealed object"])
def test_a_damaged_raw_object_is_rebuilt_and_overwritten_never_linked(cache_dir, damage):
    ir_text, symbol, constant = _adder_ir()
    good = target.host_object_soon(ir_text).result()
    (path,) = cache_dir.rglob(f"{_object_key(ir_text)}.o")
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "flip a bit":
        data[len(data) // 2] ^= 0x10
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(good)  # a bare object, as an older symgrad kept them
    path.write_bytes(bytes(data))
    again = target.host_object_soon(ir_text).result()
    assert _call(again, symbol, 3) == constant + 3
    assert cache_folder.load("objects", _object_key(ir_text)) is not None, \
        "the damaged object should have been replaced by a good one"


def test_a_damaged_raw_object_does_not_break_jit_compile(cache_dir):
    ir_text, symbol, constant = _adder_ir()
    target.jit_compile(ir_text, [symbol])
    (path,) = cache_dir.rglob(f"{_object_key(ir_text)}.o")
    path.write_bytes(path.read_bytes()[:100])
    library = target.jit_compile(ir_text + "\n", [symbol])  # other text: not the loaded library
    assert not library.from_cache
    function = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(library[symbol])
    assert function(4) == constant + 4


# ----- size ---------------------------------------------------------------------------------------

def test_the_least_recently_used_entries_go_first_when_over_the_cap(cache_dir, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_MAX_BYTES", "13000")  # 12 entries of ~1 KB fit, 13 do not
    names = [f"{i:064x}" for i in range(12)]
    for age, name in enumerate(names):
        cache_folder.store("objects", name, bytes(1000))
        os.utime(cache_dir / "objects" / f"{name}.o", (1000 + age, 1000 + age))
    cache_folder.load("objects", names[0])  # used again: now the most recent
    cache_folder.store("objects", "9" * 64, bytes(1000))
    kept = {p.stem for p in (cache_dir / "objects").glob("*.o")}
    assert names[0] in kept and "9" * 64 in kept
    assert names[1] not in kept and names[2] not in kept
    assert cache_folder.usage().bytes <= 13000 * cache_folder.TRIM_TO


@pytest.mark.parametrize("text, expected", [("2G", 2 << 30), ("500M", 500 << 20),
                                            ("4096", 4096), ("64KiB", 64 << 10)])
def test_the_cap_reads_sizes_with_units(monkeypatch, text, expected):
    monkeypatch.setenv("SYMGRAD_CACHE_MAX_BYTES", text)
    assert cache_folder.max_bytes() == expected


def test_a_nonsense_cap_warns_and_keeps_the_default(monkeypatch):
    monkeypatch.setattr(cache_folder, "_warned", set())
    monkeypatch.setenv("SYMGRAD_CACHE_MAX_BYTES", "lots")
    with pytest.warns(RuntimeWarning, match="SYMGRAD_CACHE_MAX_BYTES"):
        assert cache_folder.max_bytes() == cache_folder.DEFAULT_MAX_BYTES


def test_clear_removes_symgrads_entries_and_nothing_else(cache_dir):
    cache_folder.store("objects", "1" * 64, b"x")
    cache_folder.store("artifacts", "2" * 64, b"y")
    (cache_dir / ("3" * 64 + ".o")).write_bytes(b"an unsealed object of an older symgrad")
    (cache_dir / "notes.txt").write_text("the user's own file")
    (cache_dir / "objects" / "mine.o").write_bytes(b"not named like an entry")
    assert cache_folder.usage().entries == 3
    assert cache_folder.clear() == 3
    assert cache_folder.usage().entries == 0
    assert (cache_dir / "notes.txt").exists() and (cache_dir / "objects" / "mine.o").exists()
    assert (cache_dir / "key").exists()
