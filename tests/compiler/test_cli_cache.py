"""`symgrad cache info|clear`."""

from __future__ import annotations

import os

import pytest

from compiler import cache_folder, cli


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(path))
    monkeypatch.setenv("SYMGRAD_CACHE_MAX_BYTES", "5M")
    monkeypatch.delenv("SYMGRAD_ARTIFACT_CACHE", raising=False)
    monkeypatch.setattr(cache_folder, "_warned", set())
    monkeypatch.setattr(cache_folder, "_estimated_bytes", {})
    return path


def _info(capsys) -> dict[str, str]:
    assert cli.main(["cache", "info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    return {line.split()[0]: line.split(None, 1)[1] for line in lines}


def test_info_shows_the_folder_entries_bytes_and_cap(cache_dir, capsys):
    cache_folder.store("objects", "a" * 64, bytes(2000))
    cache_folder.store("artifacts", "b" * 64, bytes(3000))
    info = _info(capsys)
    assert info["folder"] == str(cache_dir)
    assert info["status"] == "in use"
    assert info["entries"] == "2"
    size = sum(p.stat().st_size for p in cache_dir.rglob("*") if p.suffix in (".o", ".artifact"))
    assert info["bytes"].startswith(f"{size:,} bytes")
    assert info["cap"].startswith(f"{5 << 20:,} bytes (5.0 MiB)")


def test_info_says_why_a_folder_is_not_used(cache_dir, capsys):
    cache_dir.mkdir()
    os.chmod(cache_dir, 0o777)
    info = _info(capsys)
    assert info["status"].startswith("NOT USED: it is writable by other users")
    assert f"chmod 700 {cache_dir}" in info["status"]


def test_clear_removes_the_entries_only(cache_dir, capsys):
    cache_folder.store("objects", "c" * 64, b"x")
    cache_folder.store("artifacts", "d" * 64, b"y")
    (cache_dir / "README").write_text("the user's own note")
    assert cli.main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.strip() == f"removed 2 entries from {cache_dir}"
    assert _info(capsys)["entries"] == "0"
    assert (cache_dir / "README").read_text() == "the user's own note"


def test_an_unknown_action_is_refused(cache_dir, capsys):
    with pytest.raises(SystemExit):
        cli.main(["cache", "flush"])
    assert "invalid choice: 'flush'" in capsys.readouterr().err
