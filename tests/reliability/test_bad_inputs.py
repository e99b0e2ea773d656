"""Every bad input of docs/bad_inputs.md, run: the table is the spec, this file its proof.

Each row of the table names a case of CASES below. A row whose error column names an exception
must raise exactly that type with the row's message (`…` stands for any text); a row saying
"works" must run (the case asserts what it returns); a row naming a C return code must return it
from the exported library; a row marked "pending" is a known gap, a strict xfail until fixed.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import random
import re
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import compiler
import runtime as torch
from compiler import cache_folder
from compiler.export_entry import ERRORS
from compiler.export_weights import HEADER, Weights
from runtime import nn

TABLE = Path(__file__).resolve().parents[2] / "docs" / "bad_inputs.md"


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(4, 3)
        self.out = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


class TwoInputs(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y


def _mlp() -> MLP:
    torch.manual_seed(0)
    return MLP()


@functools.cache
def _compiled() -> tuple[MLP, compiler.CompiledModule]:
    """One compiled MLP shared by the cases that do not change it."""
    model = _mlp()
    return model, compiler.compile(model, (torch.randn(5, 4),))


def _infer(x: torch.Tensor) -> torch.Tensor:
    model, fast = _compiled()
    with torch.no_grad():
        return fast(x)


def _same_as_eager(x: torch.Tensor) -> None:
    model, _ = _compiled()
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(_infer(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def _recompiled(change: Callable[[MLP], Any]) -> torch.Tensor:
    """Compile a fresh MLP, apply `change` to it, and call the compiled module."""
    model = _mlp()
    fast = compiler.compile(model, (torch.randn(5, 4),))
    change(model)
    with torch.no_grad():
        return fast(torch.randn(5, 4))


# ----- inputs of a compiled module -----------------------------------------------------------

def wrong_size() -> Any:
    return _infer(torch.randn(5, 3))


def wrong_rank() -> Any:
    return _infer(torch.randn(4))


def float64_into_float32() -> Any:
    return _infer(torch.randn(5, 4, dtype=torch.float64))


def float64_into_float32_training() -> Any:
    _, fast = _compiled()
    return fast(torch.randn(5, 4, dtype=torch.float64, requires_grad=True))


def integer_input() -> Any:
    return _infer(torch.ones(5, 4, dtype=torch.int64))


def not_a_tensor() -> Any:
    return _infer(np.zeros((5, 4), np.float32))


def wrong_input_count() -> Any:
    _, fast = _compiled()
    return fast(torch.randn(5, 4), torch.randn(5, 4))


def batch_sizes_disagree() -> Any:
    fast = compiler.compile(TwoInputs(), (torch.randn(5, 4), torch.randn(5, 4)))
    with torch.no_grad():
        return fast(torch.randn(5, 4), torch.randn(3, 4))


def non_contiguous() -> None:
    x = torch.randn(4, 10).t()[::2]
    assert not x.is_contiguous()
    _same_as_eager(x)


def read_only_input() -> None:
    array = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    array.flags.writeable = False
    _same_as_eager(torch.from_numpy(array))
    model, fast = _compiled()
    x = torch.from_numpy(array).requires_grad_(True)
    fast(x).sum().backward()
    assert x.grad.shape == (6, 4)


def nan_and_inf() -> None:
    array = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    array[1, 2], array[3, 0], array[4, 1] = np.nan, np.inf, -np.inf
    x = torch.tensor(array)
    got = _infer(x).numpy()
    assert np.isfinite(got[[0, 2, 5]]).all()  # other examples are unharmed
    assert not np.isfinite(got[[1, 3, 4]]).all(axis=1).any()
    _same_as_eager(x)
    torch_ = pytest.importorskip("torch")
    model, _ = _compiled()
    twin = torch_.nn.Sequential(torch_.nn.Linear(4, 3), torch_.nn.ReLU(), torch_.nn.Linear(3, 2))
    twin.load_state_dict({k.replace("hidden", "0").replace("out", "2"): torch_.tensor(v.numpy())
                          for k, v in model.state_dict().items()})
    np.testing.assert_allclose(got, twin(torch_.tensor(array)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def batch_0() -> None:
    model, fast = _compiled()
    with torch.no_grad():
        assert fast(torch.randn(0, 4)).shape == (0, 2)
    model.zero_grad()
    loss = nn.functional.cross_entropy(fast(torch.randn(0, 4)), torch.zeros(0, dtype=torch.int64))
    loss.backward()
    assert np.isnan(loss.item())  # the mean of nothing, as in PyTorch
    assert all(not p.grad.numpy().any() for p in model.parameters())


def train_step_batch_0() -> None:
    model = _mlp()
    step = compiler.compile_train_step(model, nn.CrossEntropyLoss(),
                                       torch.optim.SGD(model.parameters(), lr=0.1),
                                       (torch.randn(5, 4), torch.tensor([0, 1, 0, 1, 0])))
    before = [p.detach().numpy().copy() for p in model.parameters()]
    loss = step(torch.randn(0, 4), torch.zeros(0, dtype=torch.int64))
    assert np.isnan(loss.item())
    for p, old in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.detach().numpy(), old)


def huge_batch() -> Any:
    x = torch.zeros(1, 4).expand(10**12, 4)  # a view: no memory behind it
    fast = compiler.compile(_mlp(), (torch.randn(5, 4),))

    def native_code(block: int) -> None:
        raise AssertionError("native code ran")

    fast.inference_function()._function = native_code
    with torch.no_grad():
        return fast(x)


def label_out_of_range() -> Any:
    model = _mlp()
    loss_fn = nn.CrossEntropyLoss()
    step = compiler.compile_train_step(model, loss_fn, torch.optim.SGD(model.parameters(), lr=1.0),
                                       (torch.randn(5, 4), torch.tensor([0, 1, 0, 1, 0])))
    before = [p.detach().numpy().copy() for p in model.parameters()]
    try:
        return step(torch.randn(5, 4), torch.tensor([0, 1, 7, 1, 0]))
    finally:
        for p, old in zip(model.parameters(), before):
            np.testing.assert_array_equal(p.detach().numpy(), old)


class LossInside(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mlp = _mlp()

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(self.mlp(x), target)


def label_out_of_range_in_compiled_module() -> Any:
    fast = compiler.compile(LossInside(), (torch.randn(5, 4), torch.tensor([0, 1, 0, 1, 0])))
    with torch.no_grad():
        return fast(torch.randn(5, 4), torch.tensor([0, 1, 7, 1, 0]))


# ----- parameters after compiling ------------------------------------------------------------

def parameter_replaced() -> None:
    model = _mlp()
    fast = compiler.compile(model, (torch.randn(5, 4),))
    model.out.weight = nn.Parameter(torch.ones(2, 3))
    x = torch.randn(5, 4)
    with torch.no_grad():
        np.testing.assert_allclose(fast(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def parameter_resized() -> Any:
    def resize(model: MLP) -> None:
        model.out.weight = nn.Parameter(torch.randn(2, 5))

    return _recompiled(resize)


def parameter_removed() -> Any:
    def remove(model: MLP) -> None:
        model.hidden.bias = None

    return _recompiled(remove)


def model_converted() -> Any:
    return _recompiled(lambda model: model.double())


def layer_replaced() -> None:
    model = _mlp()
    fast = compiler.compile(model, (torch.randn(5, 4),))
    model.out = nn.Linear(3, 2)
    _same_as(fast, model)
    assert fast.retraces == ["submodule 'out' was replaced (Linear -> Linear)"]


def forward_hook_added() -> None:
    model = _mlp()
    fast = compiler.compile(model, (torch.randn(5, 4),))
    model.hidden.register_forward_hook(lambda module, args, out: out * 0)
    _same_as(fast, model)
    assert fast.retraces == ["the forward hooks of 'hidden' changed"]


def _same_as(fast: Any, model: MLP) -> None:
    x = torch.randn(5, 4)
    with torch.no_grad():
        np.testing.assert_allclose(fast(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def parameter_replaced_in_train_step() -> Any:
    model, _, step = _train_step(lambda ps: torch.optim.SGD(ps, lr=0.1))
    model.out.weight = nn.Parameter(torch.ones(2, 3))
    return step(torch.randn(5, 4), torch.randn(5, 2))


def _train_step(optimizer: Callable[..., Any]) -> tuple[MLP, Any, Any]:
    model = _mlp()
    opt = optimizer(model.parameters())
    example = (torch.randn(5, 4), torch.randn(5, 2))
    return model, opt, compiler.compile_train_step(model, nn.MSELoss(), opt, example)


def read_only_parameter_in_train_step() -> Any:
    model, _, step = _train_step(lambda ps: torch.optim.SGD(ps, lr=0.1))
    frozen = model.hidden.weight.detach().numpy().copy()
    frozen.flags.writeable = False
    model.hidden.weight.data = torch.from_numpy(frozen)
    return step(torch.randn(5, 4), torch.randn(5, 2))


def optimizer_option_changed() -> Any:
    _, opt, step = _train_step(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9))
    opt.param_groups[0]["momentum"] = 0.5
    return step(torch.randn(5, 4), torch.randn(5, 2))


def train_step_target_dtype() -> Any:
    _, _, step = _train_step(lambda ps: torch.optim.Adam(ps))
    return step(torch.randn(5, 4), torch.randn(5, 2, dtype=torch.float64))


# ----- tracing and compiling -----------------------------------------------------------------

def _compile_function(forward: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    class Model(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return forward(x)

    return compiler.compile(Model(), (torch.randn(5, 4),))


def forward_draws_random() -> Any:
    return _compile_function(lambda x: x * random.random())


def dropout_in_training() -> Any:
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.25))
    return compiler.compile(model, (torch.randn(5, 4),))


def index_tensor() -> Any:
    return _compile_function(lambda x: x[torch.tensor([0, 2])])


def boolean_mask() -> Any:
    return _compile_function(lambda x: x[x > 0])


def index_put() -> Any:
    def forward(x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        y[torch.tensor([0])] = 1.0
        return y

    return _compile_function(forward)


def python_if_on_a_tensor() -> Any:
    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x
        return -x

    return _compile_function(forward)


def item_in_forward() -> Any:
    return _compile_function(lambda x: x * x.max().item())


# ----- backward through a compiled module ----------------------------------------------------

def backward_twice() -> Any:
    _, fast = _compiled()
    loss = fast(torch.randn(5, 4, requires_grad=True)).sum()
    loss.backward()
    return loss.backward()


def double_backward() -> Any:
    _, fast = _compiled()
    x = torch.randn(5, 4, requires_grad=True)
    (g,) = torch.autograd.grad(fast(x).sum(), x, create_graph=True)
    return g


def input_modified_in_place() -> Any:
    _, fast = _compiled()
    x = torch.randn(5, 4)
    loss = fast(x).sum()
    x.add_(1.0)
    return loss.backward()


# ----- export -------------------------------------------------------------------------------

def export_missing_folder(tmp_path: Path) -> None:
    result = compiler.export(_mlp(), (torch.randn(1, 4),), tmp_path / "new" / "deeper", "mlp")
    assert result.header == tmp_path / "new" / "deeper" / "mlp.h" and result.header.is_file()


def export_under_a_file(tmp_path: Path) -> Any:
    (tmp_path / "plain-file").write_text("not a folder")
    return compiler.export(_mlp(), (torch.randn(1, 4),), tmp_path / "plain-file" / "mlp")


def export_unwritable_folder(tmp_path: Path) -> Any:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if _writable(locked):
        pytest.skip("this user (root?) can write into a read-only folder")
    return compiler.export(_mlp(), (torch.randn(1, 4),), locked / "mlp")


def _writable(folder: Path) -> bool:
    try:
        (folder / "probe").write_text("")
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


@functools.cache
def _exported_library(folder: Path) -> tuple[Path, ctypes.CDLL]:
    """The MLP exported with a weights file, and its loaded shared library."""
    result = compiler.export(_mlp(), (torch.randn(1, 4),), folder, "mlp", embed_weights=False)
    if result.shared_library is None:
        pytest.skip(f"no shared library was linked here: {result.notes}")
    library = ctypes.CDLL(str(result.shared_library))
    library.mlp_init.argtypes = [ctypes.c_char_p]
    library.mlp_init.restype = ctypes.c_int32
    library.mlp_forward.restype = ctypes.c_int32
    return result.weights, library


def _init_with(tmp_path: Path, damage: Callable[[bytes], bytes]) -> int:
    weights, library = _exported_library(tmp_path.parent / "exported-mlp")
    path = tmp_path / "damaged.weights"
    path.write_bytes(damage(weights.read_bytes()))
    return library.mlp_init(str(path).encode())


def weights_file_corrupted(tmp_path: Path) -> int:
    def flip_a_byte(data: bytes) -> bytes:
        return data[:-8] + bytes([data[-8] ^ 1]) + data[-7:]

    return _init_with(tmp_path, flip_a_byte)


def weights_file_truncated(tmp_path: Path) -> int:
    return _init_with(tmp_path, lambda data: data[:-64])


def weights_file_of_another_model(tmp_path: Path) -> int:
    other = nn.Linear(4, 2)
    names, tensors = zip(*other.named_parameters())
    return _init_with(tmp_path, lambda _: Weights.of(
        names, [t.detach().numpy() for t in tensors]).file_bytes())


def weights_file_not_weights(tmp_path: Path) -> int:
    return _init_with(tmp_path, lambda _: b"#include <stdio.h>\n" * 4)


def weights_file_missing(tmp_path: Path) -> int:
    _, library = _exported_library(tmp_path.parent / "exported-mlp")
    return library.mlp_init(str(tmp_path / "no-such.weights").encode())


def export_batch_0(tmp_path: Path) -> int:
    weights, library = _exported_library(tmp_path.parent / "exported-mlp")
    assert library.mlp_init(str(weights).encode()) == 0
    inputs = np.zeros((1, 4), np.float32)
    output = np.zeros((1, 2), np.float32)
    return library.mlp_forward(inputs.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(0),
                               output.ctypes.data_as(ctypes.c_void_p))


# ----- a hostile environment ------------------------------------------------------------------

@contextlib.contextmanager
def _cache_at(folder: Path, **environment: str) -> Iterator[None]:
    """symgrad's cache folder at `folder` (and other variables) while the block runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYMGRAD_CACHE_DIR", str(folder))
        patch.delenv("SYMGRAD_ARTIFACT_CACHE", raising=False)
        for name, value in environment.items():
            patch.setenv(name, value)
        patch.setattr(cache_folder, "_warned", set())
        patch.setattr(cache_folder, "_estimated_bytes", {})
        yield


def _compiles_uncached_with_one_warning(folder: Path) -> None:
    """A fresh model compiled with the cache at `folder`: right outputs, nothing written there,
    and one warning that names the folder."""
    before = sorted(folder.rglob("*")) if folder.is_dir() else []
    with _cache_at(folder), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            _same_as_eager_after_compiling(_mlp())
    messages = [str(w.message) for w in caught if str(folder) in str(w.message)]
    assert len(messages) == 1 and "not used" in messages[0], messages
    assert (sorted(folder.rglob("*")) if folder.is_dir() else []) == before


def _same_as_eager_after_compiling(model: MLP) -> None:
    x = torch.randn(5, 4)
    fast = compiler.compile(model, (x,))
    with torch.no_grad():
        np.testing.assert_allclose(fast(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def cache_folder_writable_by_others(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o777)
    _compiles_uncached_with_one_warning(folder)


def cache_folder_of_another_user(tmp_path: Path) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    if os.getuid() != 0:
        pytest.skip("only root can make a folder another user's")
    os.chown(folder, 4242, 4242)
    _compiles_uncached_with_one_warning(folder)


def cache_folder_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    _compiles_uncached_with_one_warning(tmp_path / "link")


def cache_entry_planted(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    with _cache_at(folder):
        _same_as_eager_after_compiling(_mlp())
        entries = sorted(folder.rglob("*.artifact")) + sorted(folder.rglob("*.o"))
        assert entries
        for path in entries:  # every entry re-sealed under a key that is not the user's
            kind, name = path.parent.name, path.name.partition(".")[0]
            body = cache_folder.load(kind, name)
            path.write_bytes(cache_folder.seal(bytes(32), kind, name, body))
        _same_as_eager_after_compiling(_mlp())
        for path in entries:
            assert cache_folder.load(path.parent.name, path.name.partition(".")[0]) is not None


def cache_object_truncated(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    with _cache_at(folder):
        _same_as_eager_after_compiling(_mlp())
        for path in folder.rglob("*.o"):
            path.write_bytes(path.read_bytes()[:200])
        shutil.rmtree(folder / "artifacts")  # so the raw objects are read again
        _same_as_eager_after_compiling(_mlp())


def cache_off(tmp_path: Path) -> None:
    with _cache_at(tmp_path / "cache", SYMGRAD_ARTIFACT_CACHE="0"):
        _same_as_eager_after_compiling(_mlp())
    assert not (tmp_path / "cache").exists()


def export_over_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "outside.h").write_text("someone's file\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mlp.h").symlink_to(tmp_path / "outside.h")
    result = compiler.export(_mlp(), (torch.randn(1, 4),), tmp_path / "out", "mlp")
    assert not result.header.is_symlink() and "mlp_forward" in result.header.read_text()
    assert (tmp_path / "outside.h").read_text() == "someone's file\n"


def weights_file_two_bit_flip(tmp_path: Path) -> int:
    def flip_bit_62_of_two_words(data: bytes) -> bytes:
        payload = bytearray(data[HEADER.size:])
        for word in (2, 3):
            payload[8 * word + 7] ^= 0x40
        return data[:HEADER.size] + bytes(payload)

    return _init_with(tmp_path, flip_bit_62_of_two_words)


CASES: dict[str, Callable[..., Any]] = {
    name.replace("_", "-"): case for name, case in list(globals().items())
    if callable(case) and not name.startswith("_") and getattr(case, "__module__", "") == __name__
    and name[0].islower()}


# ----- the table -----------------------------------------------------------------------------

def table_rows() -> list[tuple[str, str, str]]:
    """(case, error cell, message cell) of each row of the table."""
    rows = []
    for line in TABLE.read_text().splitlines():
        match = re.fullmatch(r"\| `([\w-]+)` \|[^|]*\| ([^|]*) \| ([^|]*) \|", line.strip())
        if match:
            rows.append(match.groups())
    return rows


def _message_pattern(cell: str) -> str:
    text = re.fullmatch(r"`(.*)`", cell.strip())
    assert text, f"message cell must be `...`: {cell!r}"
    return ".*".join(re.escape(part) for part in text[1].split("…"))


def _run(case: Callable[..., Any], tmp_path: Path) -> Any:
    return case(tmp_path) if case.__code__.co_argcount else case()


def _check_row(name: str, error: str, message: str, tmp_path: Path) -> None:
    case = CASES[name]
    if error.startswith("works"):
        _run(case, tmp_path)
        return
    code = re.fullmatch(r"C: `(\w+)` \((\d+)\)", error)
    if code:
        meanings = {e.suffix: (e.value, e.meaning) for e in ERRORS}
        assert meanings[code[1]] == (int(code[2]), message.strip()), f"{name}: table vs ERRORS"
        assert _run(case, tmp_path) == int(code[2]), f"{name}: wrong return code"
        return
    exception = re.match(r"`(\w+)`", error)
    assert exception, f"{name}: error cell {error!r} names no exception"
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the type is checked by name below
        _run(case, tmp_path)
    assert type(raised.value).__name__ == exception[1], f"{name}: raised {raised.value!r}"
    assert re.fullmatch(_message_pattern(message), str(raised.value), re.DOTALL), (
        f"{name}: message\n  {raised.value}\ndoes not match the table's\n  {message}")


def _row_params() -> list[Any]:
    return [pytest.param(*row, id=row[0], marks=pytest.mark.xfail(strict=True, reason=row[1]))
            if "pending" in row[1] else pytest.param(*row, id=row[0]) for row in table_rows()]


@pytest.mark.parametrize("name, error, message", _row_params())
def test_table_row_holds(name: str, error: str, message: str, tmp_path: Path) -> None:
    _check_row(name, error, message, tmp_path)


def test_every_case_has_a_row_and_every_row_a_case() -> None:
    names = [row[0] for row in table_rows()]
    assert len(names) == len(set(names)), "a case has two rows"
    assert sorted(names) == sorted(CASES)
