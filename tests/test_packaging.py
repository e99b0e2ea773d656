"""Packaging: the `symgrad` command, what the wheel ships, a light `import runtime`, and CI running
the README's test command."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import runtime
from compiler import cli

ROOT = Path(__file__).resolve().parent.parent


def run_python(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


# ----- the symgrad command ------------------------------------------------------------------------

def test_version_flag_prints_the_runtime_version():
    result = run_python("-m", "compiler.cli", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"symgrad {runtime.__version__}"


def test_installed_console_script_prints_the_version():
    script = Path(sys.executable).parent / "symgrad"
    if not script.exists():
        pytest.skip("symgrad is not installed in this environment (no console script)")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"symgrad {runtime.__version__}"


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 0
    assert "usage: symgrad" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error_that_names_it(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def _greet_command() -> cli.Command:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--name", default="world")

    def run(args: argparse.Namespace) -> int:
        print(f"hello {args.name}")
        return 3

    return cli.Command("greet", "say hello", add_arguments, run)


def test_a_command_receives_its_arguments_and_returns_the_exit_status(capsys):
    assert cli.main(["greet", "--name", "symgrad"], commands=[_greet_command()]) == 3
    assert capsys.readouterr().out == "hello symgrad\n"


def test_unknown_command_lists_the_known_ones(capsys):
    with pytest.raises(SystemExit):
        cli.main(["gret"], commands=[_greet_command()])
    assert "the commands are: greet" in capsys.readouterr().err


# ----- import weight ------------------------------------------------------------------------------

def test_import_runtime_loads_neither_sympy_nor_llvmlite_nor_the_compiler():
    heavy = ("sympy", "llvmlite", "jinja2", "torch", "compiler")
    code = f"import sys, runtime; print([m for m in {heavy!r} if m in sys.modules])"
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ----- package data -------------------------------------------------------------------------------

def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_template_file_matches_a_package_data_pattern():
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["templates"]
    templates = ROOT / "templates"
    shipped = {path for pattern in patterns for path in templates.glob(pattern)}
    files = {p for p in templates.rglob("*")
             if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    missing = sorted(str(p.relative_to(ROOT)) for p in files - shipped)
    assert not missing, f"not shipped in the wheel (add a pattern to package-data): {missing}"


def _copy_sources(destination: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("runtime", "compiler", "templates"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, destination / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, destination / name)


def test_wheel_ships_both_packages_the_templates_and_the_command(tmp_path):
    pytest.importorskip("setuptools", minversion="68")
    source = tmp_path / "src"
    _copy_sources(source)
    (source / "templates" / "report").mkdir(parents=True, exist_ok=True)
    (source / "templates" / "probe.h.j2").write_text("// {{ name }}\n")
    (source / "templates" / "report" / "probe.html").write_text("<p>{{ name }}</p>\n")
    result = run_python("-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path / "dist"), str(source), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [wheel] = (tmp_path / "dist").glob("symgrad-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {f"templates/{p.relative_to(source / 'templates').as_posix()}"
                 for p in (source / "templates").rglob("*") if p.is_file()}
    expected = {"runtime/__init__.py", "compiler/__init__.py", "compiler/cli.py", *templates}
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert wheel.name.startswith(f"symgrad-{runtime.__version__}-")
    dist_info = f"symgrad-{runtime.__version__}.dist-info"
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "symgrad = compiler.cli:main" in entry_points


# ----- CI -----------------------------------------------------------------------------------------

def readme_test_command() -> str:
    """The command in the README's "Test" section (its first shell block)."""
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Test\n(.*?)(?=^## )", readme, re.S | re.M)
    assert section, "README.md has no '## Test' section"
    block = re.search(r"```sh\n(.*?)```", section.group(1), re.S)
    assert block, "README.md's Test section has no ```sh block"
    return block.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    command = readme_test_command()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert any(line == command or line.startswith(command + " ||") for line in ci_lines), (
        f".ci/run does not run the README's test command {command!r}")


def test_ci_script_is_executable_and_stops_on_errors():
    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK), ".ci/run must be executable (chmod +x)"
    assert "set -euo pipefail" in script.read_text()
