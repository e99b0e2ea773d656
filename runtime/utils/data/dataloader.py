"""`DataLoader`: iterate over a dataset in batches, as torch.utils.data.DataLoader.

A loader combines a sampler (the order of indices: sequential, or shuffled afresh on each pass
through the loader from its `generator`), a batch sampler (groups of `batch_size` indices, the
short last group dropped with `drop_last`) and a collate function (samples -> batch).

Samples are always loaded in the calling process: `num_workers`, `pin_memory`, `timeout`,
`worker_init_fn`, `multiprocessing_context`, `prefetch_factor` and `persistent_workers` are
accepted and checked as PyTorch checks them, so training scripts run unchanged, but start no
worker processes (numpy-backed samples are cheap to index, and symgrad runs on the CPU).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from runtime._random import Generator
from runtime.utils.data.collate import default_collate, default_convert
from runtime.utils.data.dataset import Dataset
from runtime.utils.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

T_co = TypeVar("T_co", covariant=True)


class DataLoader(Generic[T_co]):
    """Batches of `dataset`: `for x, y in DataLoader(TensorDataset(X, Y), batch_size=64,
    shuffle=True): ...`. `batch_size=None` turns batching off (one converted sample at a time)."""

    def __init__(self, dataset: Dataset[T_co], batch_size: int | None = 1,
                 shuffle: bool | None = None, sampler: Sampler[Any] | Iterable[Any] | None = None,
                 batch_sampler: Sampler[list[Any]] | Iterable[list[Any]] | None = None,
                 num_workers: int = 0, collate_fn: Callable[[Any], Any] | None = None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context: Any = None, generator: Generator | None = None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False) -> None:
        _check_worker_options(num_workers, timeout, prefetch_factor, persistent_workers)
        _check_exclusive_options(batch_size, shuffle, sampler, batch_sampler, drop_last)
        if sampler is None:
            sampler = (RandomSampler(dataset, generator=generator) if shuffle  # type: ignore[arg-type]
                       else SequentialSampler(dataset))  # type: ignore[arg-type]
        if batch_sampler is not None:
            batch_size, drop_last = None, False
        elif batch_size is not None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        self.collate_fn: Callable[[Any], Any] = collate_fn or (
            default_collate if batch_sampler is not None else default_convert)
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers

    def __iter__(self) -> Iterator[Any]:
        if self.batch_sampler is None:
            for index in self.sampler:
                yield self.collate_fn(self.dataset[index])
            return
        for indices in self.batch_sampler:
            yield self.collate_fn([self.dataset[i] for i in indices])

    def __len__(self) -> int:
        """The number of batches in one pass (samples, when batching is off)."""
        return len(self.batch_sampler if self.batch_sampler is not None  # type: ignore[arg-type]
                   else self.sampler)


def _check_worker_options(num_workers: int, timeout: float, prefetch_factor: int | None,
                          persistent_workers: bool) -> None:
    if num_workers < 0:
        raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                         "disable multiprocessing.")
    if timeout < 0:
        raise ValueError("timeout option should be non-negative")
    if num_workers == 0 and prefetch_factor is not None:
        raise ValueError("prefetch_factor option could only be specified in multiprocessing. "
                         "let num_workers > 0 to enable multiprocessing, otherwise set "
                         "prefetch_factor to None.")
    if persistent_workers and num_workers == 0:
        raise ValueError("persistent_workers option needs num_workers > 0")


def _check_exclusive_options(batch_size: int | None, shuffle: bool | None, sampler: Any,
                             batch_sampler: Any, drop_last: bool) -> None:
    if sampler is not None and shuffle:
        raise ValueError("sampler option is mutually exclusive with shuffle")
    if batch_sampler is not None:
        if batch_size != 1 or shuffle or sampler is not None or drop_last:
            raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                             "shuffle, sampler, and drop_last")
    elif batch_size is None and drop_last:
        raise ValueError("batch_size=None option disables auto-batching and is mutually "
                         "exclusive with drop_last")
