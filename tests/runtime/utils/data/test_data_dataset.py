"""runtime.utils.data datasets: TensorDataset, ConcatDataset (a + b), Subset, random_split."""

import pytest

import runtime
from runtime.utils.data import ConcatDataset, Dataset, Subset, TensorDataset, random_split


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return index * index


def test_tensor_dataset_pairs_rows_of_its_tensors():
    x = runtime.arange(12.0).reshape(4, 3)
    y = runtime.tensor([0, 1, 0, 1])
    dataset = TensorDataset(x, y)
    assert len(dataset) == 4
    features, label = dataset[2]
    assert features.tolist() == [6.0, 7.0, 8.0] and label.item() == 0
    assert dataset[-1][1].item() == 1
    assert dataset.tensors == (x, y)


def test_tensor_dataset_indexes_with_slices_too():
    dataset = TensorDataset(runtime.arange(5))
    (rows,) = dataset[1:3]
    assert rows.tolist() == [1, 2]


def test_tensor_dataset_needs_equal_first_dimensions():
    with pytest.raises(AssertionError, match=r"Size mismatch between tensors.*\[3, 4\]"):
        TensorDataset(runtime.ones(3, 2), runtime.ones(4))


def test_a_dataset_without_getitem_says_what_to_implement():
    with pytest.raises(NotImplementedError, match="should implement __getitem__"):
        Dataset()[0]


def test_adding_datasets_concatenates_them():
    both = Squares(3) + Squares(2)
    assert isinstance(both, ConcatDataset)
    assert len(both) == 5 and both.cumulative_sizes == [3, 5]
    assert [both[i] for i in range(5)] == [0, 1, 4, 0, 1]
    assert both[-1] == 1 and both[-5] == 0


def test_concat_dataset_index_errors():
    both = ConcatDataset([Squares(2), Squares(2)])
    with pytest.raises(ValueError, match="should not exceed dataset length"):
        both[-5]
    with pytest.raises(IndexError):
        both[4]
    with pytest.raises(AssertionError, match="should not be an empty iterable"):
        ConcatDataset([])


def test_subset_views_the_dataset_through_indices():
    subset = Subset(Squares(10), [9, 2, 5])
    assert len(subset) == 3
    assert [subset[i] for i in range(3)] == [81, 4, 25]


def test_random_split_partitions_every_index_exactly_once():
    parts = random_split(Squares(10), [3, 7], generator=runtime.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(parts[0].indices + parts[1].indices) == list(range(10))


def test_random_split_is_reproducible_with_a_seeded_generator():
    def split(seed):
        parts = random_split(Squares(10), [5, 5], generator=runtime.Generator().manual_seed(seed))
        return [p.indices for p in parts]

    assert split(3) == split(3)
    assert split(3) != split(4)


def test_random_split_by_fractions_gives_the_remainder_to_the_first_splits():
    parts = random_split(Squares(10), [0.33, 0.33, 0.34])
    assert [len(p) for p in parts] == [4, 3, 3]  # floor gives 3, 3, 3; one left over


def test_random_split_errors():
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        random_split(Squares(10), [3, 3])
    with pytest.raises(ValueError, match="Fraction at index 0 is not between 0 and 1"):
        random_split(Squares(10), [1.5, -0.5])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(Squares(2), [1.0, 0.0])
