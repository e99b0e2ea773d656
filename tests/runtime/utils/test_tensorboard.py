"""runtime.utils.tensorboard.SummaryWriter: what it hands to the `tensorboard` package (checked
with a stand-in for the package's writer and protocol buffers, and, where tensorboard is
installed, by reading the event files back), and the error without the package."""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import pytest

import runtime

MODULES = ("runtime.utils.tensorboard", "runtime.utils.tensorboard.writer")


def _forget_tensorboard_modules(monkeypatch):
    for name in MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_without_the_package_the_import_error_names_it(monkeypatch):
    _forget_tensorboard_modules(monkeypatch)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # makes `import tensorboard` fail
    with pytest.raises(ImportError, match=r"'tensorboard' package.*pip install tensorboard") \
            as raised:
        importlib.import_module("runtime.utils.tensorboard")
    assert isinstance(raised.value, ModuleNotFoundError) and raised.value.name == "tensorboard"


class _Message:
    """A protocol buffer message: its fields as attributes."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


class _Summary(_Message):
    Value = type("Value", (_Message,), {})


class _EventFileWriter:
    """Records the events instead of writing them; `opened` lists every writer made."""

    opened: list[_EventFileWriter] = []

    def __init__(self, logdir, max_queue_size=10, flush_secs=120, filename_suffix=""):
        self.logdir, self.events, self.flushed, self.closed = logdir, [], 0, False
        _EventFileWriter.opened.append(self)

    def add_event(self, event):
        assert not self.closed
        self.events.append(event)

    def flush(self):
        self.flushed += 1

    def close(self):
        self.closed = True


@pytest.fixture
def stand_in(monkeypatch):
    """`runtime.utils.tensorboard` imported over a stand-in `tensorboard` package."""
    _forget_tensorboard_modules(monkeypatch)
    modules = {
        "tensorboard": {},
        "tensorboard.compat": {},
        "tensorboard.compat.proto": {},
        "tensorboard.compat.proto.event_pb2": {"Event": _Message},
        "tensorboard.compat.proto.summary_pb2": {"Summary": _Summary,
                                                 "HistogramProto": _Message},
        "tensorboard.summary": {},
        "tensorboard.summary.writer": {},
        "tensorboard.summary.writer.event_file_writer": {"EventFileWriter": _EventFileWriter},
    }
    for name, contents in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(contents)
        monkeypatch.setitem(sys.modules, name, module)
    _EventFileWriter.opened = []
    return importlib.import_module("runtime.utils.tensorboard")


def test_scalars_of_a_training_loop_become_events(stand_in, tmp_path):
    with stand_in.SummaryWriter(str(tmp_path / "run")) as writer:
        for step, loss in enumerate([0.9, 0.5, runtime.tensor(0.25)]):
            writer.add_scalar("Loss/train", loss, step, walltime=100.0 + step)
        (file_writer,) = _EventFileWriter.opened
        writer.flush()
        assert file_writer.flushed == 1
    assert file_writer.closed and file_writer.logdir == str(tmp_path / "run")
    assert [(e.step, e.wall_time) for e in file_writer.events] == [(0, 100.0), (1, 101.0),
                                                                    (2, 102.0)]
    values = [e.summary.value[0] for e in file_writer.events]
    assert [(v.tag, v.simple_value) for v in values] == [("Loss/train", 0.9), ("Loss/train", 0.5),
                                                         ("Loss/train", 0.25)]


def test_add_scalars_writes_each_series_to_its_own_folder(stand_in, tmp_path):
    writer = stand_in.SummaryWriter(str(tmp_path))
    writer.add_scalars("run/loss", {"train": 0.5, "test": 0.75}, global_step=3)
    writer.close()
    folders = {w.logdir: w.events[0] for w in _EventFileWriter.opened}
    assert set(folders) == {str(tmp_path / "run_loss_train"), str(tmp_path / "run_loss_test")}
    event = folders[str(tmp_path / "run_loss_test")]
    assert event.step == 3 and event.summary.value[0].tag == "run/loss"
    assert event.summary.value[0].simple_value == 0.75
    assert all(w.closed for w in _EventFileWriter.opened)


def test_histogram_summarises_the_values(stand_in, tmp_path):
    writer = stand_in.SummaryWriter(str(tmp_path))
    values = runtime.tensor([[0.0, 1.0], [1.0, 4.0]])
    writer.add_histogram("fc1.weight", values, 7, bins=2)
    histogram = _EventFileWriter.opened[0].events[0].summary.value[0].histo
    assert (histogram.min, histogram.max, histogram.num, histogram.sum,
            histogram.sum_squares) == (0.0, 4.0, 4, 6.0, 18.0)
    assert histogram.bucket_limit == [2.0, 4.0] and histogram.bucket == [3.0, 1.0]


def test_default_log_dir_is_under_runs_and_add_graph_warns(stand_in):
    writer = stand_in.SummaryWriter(comment="_lr0.1")
    assert writer.get_logdir().startswith("runs") and writer.get_logdir().endswith("_lr0.1")
    with pytest.warns(UserWarning, match="add_graph writes nothing"):
        writer.add_graph(runtime.nn.Linear(2, 1), runtime.ones(1, 2))
    assert _EventFileWriter.opened == []  # nothing written, no file opened


def test_a_scalar_must_be_one_number(stand_in, tmp_path):
    writer = stand_in.SummaryWriter(str(tmp_path))
    with pytest.raises(ValueError, match="scalar should be 0D"):
        writer.add_scalar("x", runtime.ones(2))


def test_event_files_read_back_with_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from runtime.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path)) as writer:
        for step in range(3):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.add_histogram("w", np.arange(10.0), 0)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [(s.step, round(s.value, 6)) for s in events.Scalars("loss")] == [
        (0, 1.0), (1, 0.5), (2, 0.333333)]
    assert events.Histograms("w")[0].histogram_value.num == 10
