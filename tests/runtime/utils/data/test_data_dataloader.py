"""runtime.utils.data.DataLoader: batches, shuffling, drop_last, len, collation, options."""

import numpy as np
import pytest

import runtime
from runtime.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler, TensorDataset


def _numbered(n=10):
    """Sample i is (features [i, i], label i): a batch shows which samples it holds."""
    x = runtime.arange(float(n)).unsqueeze(1).expand(n, 2).clone()
    return TensorDataset(x, runtime.arange(n))


class Records(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, index):
        return {"image": np.full((2, 2), index, dtype=np.float32), "label": index}


def test_batches_in_order_with_a_short_last_batch():
    batches = list(DataLoader(_numbered(10), batch_size=4))
    assert len(batches) == 3
    x, y = batches[0]
    assert x.shape == (4, 2) and x.dtype == runtime.float32
    assert y.tolist() == [0, 1, 2, 3] and y.dtype == runtime.int64
    assert batches[2][1].tolist() == [8, 9]


def test_drop_last_drops_the_short_batch_and_len_counts_batches():
    assert len(DataLoader(_numbered(10), batch_size=4)) == 3
    loader = DataLoader(_numbered(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [y.tolist() for _, y in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_default_batch_size_is_one():
    x, y = next(iter(DataLoader(_numbered(3))))
    assert x.shape == (1, 2) and y.tolist() == [0]


def test_shuffle_sees_every_sample_exactly_once_per_epoch_in_a_new_order():
    loader = DataLoader(_numbered(20), batch_size=3, shuffle=True,
                        generator=runtime.Generator().manual_seed(0))
    epochs = [[label for _, y in loader for label in y.tolist()] for _ in range(2)]
    for labels in epochs:
        assert sorted(labels) == list(range(20))
    assert epochs[0] != epochs[1]
    assert epochs[0] != list(range(20))


def test_shuffle_is_reproducible_with_a_seeded_generator():
    def order(seed):
        loader = DataLoader(_numbered(20), batch_size=5, shuffle=True,
                            generator=runtime.Generator().manual_seed(seed))
        return [[y.tolist() for _, y in loader] for _ in range(2)]

    assert order(42) == order(42)
    assert order(42) != order(43)


def test_shuffle_without_generator_follows_manual_seed():
    def order():
        runtime.manual_seed(3)
        return [y.tolist() for _, y in DataLoader(_numbered(20), batch_size=5, shuffle=True)]

    assert order() == order()


def test_features_and_labels_stay_paired_after_shuffling():
    for x, y in DataLoader(_numbered(20), batch_size=6, shuffle=True):
        assert x[:, 0].tolist() == [float(label) for label in y.tolist()]


def test_dict_samples_of_numpy_arrays_collate_into_a_dict_of_tensors():
    batch = next(iter(DataLoader(Records(), batch_size=2)))
    assert batch["image"].shape == (2, 2, 2) and batch["image"].dtype == runtime.float32
    assert batch["label"].tolist() == [0, 1]


def test_a_custom_collate_fn_receives_the_list_of_samples():
    loader = DataLoader(Records(), batch_size=2, collate_fn=lambda samples: len(samples))
    assert list(loader) == [2, 2, 1]


def test_batch_size_none_yields_converted_single_samples():
    loader = DataLoader(Records(), batch_size=None)
    assert len(loader) == 5
    first = next(iter(loader))
    assert isinstance(first["image"], runtime.Tensor) and first["image"].shape == (2, 2)
    assert first["label"] == 0


def test_a_given_sampler_or_batch_sampler_decides_the_order():
    backwards = list(range(9, -1, -1))
    loader = DataLoader(_numbered(10), batch_size=5, sampler=backwards)
    assert [y.tolist() for _, y in loader] == [[9, 8, 7, 6, 5], [4, 3, 2, 1, 0]]
    batch_sampler = BatchSampler(SequentialSampler(range(10)), 3, drop_last=True)
    loader = DataLoader(_numbered(10), batch_sampler=batch_sampler)
    assert len(loader) == 3 and [y.tolist() for _, y in loader][-1] == [6, 7, 8]


def test_worker_options_are_accepted_and_load_in_this_process():
    loader = DataLoader(_numbered(10), batch_size=5, num_workers=4, pin_memory=True,
                        persistent_workers=True, prefetch_factor=2)
    assert [y.tolist() for _, y in loader] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


@pytest.mark.parametrize("options, message", [
    ({"shuffle": True, "sampler": [0, 1]}, "sampler option is mutually exclusive with shuffle"),
    ({"batch_sampler": [[0]], "batch_size": 2}, "batch_sampler option is mutually exclusive"),
    ({"batch_size": None, "drop_last": True}, "mutually exclusive with drop_last"),
    ({"num_workers": -1}, "num_workers option should be non-negative"),
    ({"timeout": -1}, "timeout option should be non-negative"),
    ({"persistent_workers": True}, "persistent_workers option needs num_workers > 0"),
    ({"prefetch_factor": 2}, "prefetch_factor option could only be specified in multiprocessing"),
])
def test_conflicting_options_are_value_errors(options, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(_numbered(4), **options)


def test_batches_equal_torch_dataloader():
    torch = pytest.importorskip("torch")
    data = np.arange(30, dtype=np.float32).reshape(10, 3)
    labels = np.arange(10)
    ours = DataLoader(TensorDataset(runtime.from_numpy(data), runtime.from_numpy(labels)),
                      batch_size=4, drop_last=False)
    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(data), torch.from_numpy(labels)),
        batch_size=4, drop_last=False)
    assert len(ours) == len(theirs)
    for (x, y), (tx, ty) in zip(ours, theirs, strict=True):
        assert x.tolist() == tx.tolist() and y.tolist() == ty.tolist()
