"""`SummaryWriter`: scalars and histograms as TensorBoard events, as torch.utils.tensorboard
writes them (one event file per writer; `add_scalars` writes each series to a subfolder of its
own, `<log_dir>/<main_tag>_<tag>`, so that TensorBoard draws them in one chart).

The events, their protocol buffers and the file format are the `tensorboard` package's; this
module only turns tensors and numbers into them. `add_graph` draws nothing: symgrad's graphs are
shown by `compiler.explain`, so it warns and writes nothing.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from datetime import datetime
from typing import Any

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from runtime._tensor import Tensor


class SummaryWriter:
    """Writes summaries to an event file in `log_dir` (default `runs/<date>_<host><comment>`)."""

    def __init__(self, log_dir: str | None = None, comment: str = "",
                 purge_step: int | None = None, max_queue: int = 10, flush_secs: int = 120,
                 filename_suffix: str = "") -> None:
        if log_dir is None:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = str(log_dir)
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self._file_writer: EventFileWriter | None = None
        self._series_writers: dict[str, EventFileWriter] = {}

    def get_logdir(self) -> str:
        return self.log_dir

    def _writer(self, log_dir: str | None = None) -> EventFileWriter:
        if log_dir is None:
            if self._file_writer is None:
                self._file_writer = self._open(self.log_dir)
            return self._file_writer
        if log_dir not in self._series_writers:
            self._series_writers[log_dir] = self._open(log_dir)
        return self._series_writers[log_dir]

    def _open(self, log_dir: str) -> EventFileWriter:
        return EventFileWriter(log_dir, self.max_queue, self.flush_secs, self.filename_suffix)

    def _add(self, summary: Summary, global_step: int | None, walltime: float | None,
             log_dir: str | None = None) -> None:
        event = Event(summary=summary, wall_time=time.time() if walltime is None else walltime)
        if global_step is not None:
            event.step = int(global_step)
        self._writer(log_dir).add_event(event)

    # ----- what a training loop logs ------------------------------------------------------------

    def add_scalar(self, tag: str, scalar_value: Any, global_step: int | None = None,
                   walltime: float | None = None, new_style: bool = False,
                   double_precision: bool = False) -> None:
        """One number (a Python number or a one-element tensor) of the series `tag`."""
        self._add(_scalar_summary(tag, scalar_value), global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict[str, Any],
                    global_step: int | None = None, walltime: float | None = None) -> None:
        """Several series drawn in one chart `main_tag`, each in its own subfolder."""
        walltime = time.time() if walltime is None else walltime
        for tag, value in tag_scalar_dict.items():
            folder = os.path.join(self.log_dir, f"{main_tag.replace('/', '_')}_{tag}")
            self._add(_scalar_summary(main_tag, value), global_step, walltime, folder)

    def add_histogram(self, tag: str, values: Any, global_step: int | None = None,
                      bins: Any = "tensorflow", walltime: float | None = None,
                      max_bins: int | None = None) -> None:
        """The distribution of `values` (a tensor or array); `bins` as numpy.histogram takes it
        ('tensorflow', the default, is numpy's 'auto' here)."""
        array = _as_array(values).astype(np.float64).reshape(-1)
        if array.size == 0:
            raise ValueError("The histogram is empty, please file a bug report.")
        counts, limits = np.histogram(array, bins="auto" if bins == "tensorflow" else bins)
        if max_bins is not None and len(counts) > max_bins:
            counts, limits = np.histogram(array, bins=max_bins)
        histogram = HistogramProto(min=float(array.min()), max=float(array.max()),
                                   num=int(array.size), sum=float(array.sum()),
                                   sum_squares=float(np.dot(array, array)),
                                   bucket_limit=[float(x) for x in limits[1:]],
                                   bucket=[float(c) for c in counts])
        self._add(Summary(value=[Summary.Value(tag=tag, histo=histogram)]), global_step,
                  walltime)

    def add_graph(self, model: Any, input_to_model: Any = None, verbose: bool = False,
                  use_strict_trace: bool = True) -> None:
        """Not drawn: warns and writes nothing (`compiler.explain` shows symgrad's graphs)."""
        warnings.warn("SummaryWriter.add_graph writes nothing in symgrad; use compiler.explain "
                      "to see the model's graph", UserWarning, stacklevel=2)

    # ----- files ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the pending events to disk."""
        for writer in self._writers():
            writer.flush()

    def close(self) -> None:
        """Flush and close the event files (a later add_* opens new ones)."""
        for writer in self._writers():
            writer.flush()
            writer.close()
        self._file_writer = None
        self._series_writers = {}

    def _writers(self) -> list[EventFileWriter]:
        main = [self._file_writer] if self._file_writer is not None else []
        return main + list(self._series_writers.values())

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _as_array(values: Any) -> np.ndarray:
    if isinstance(values, Tensor):
        return values.detach().numpy()
    return np.asarray(values)


def _scalar_summary(tag: str, value: Any) -> Summary:
    array = _as_array(value)
    if array.size != 1:
        raise ValueError(f"scalar should be 0D, got a tensor of shape {tuple(array.shape)}")
    return Summary(value=[Summary.Value(tag=tag, simple_value=float(array.reshape(()).item()))])
