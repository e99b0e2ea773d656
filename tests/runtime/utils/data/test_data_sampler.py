"""runtime.utils.data samplers: the order of indices, and how they are grouped into batches."""

import pytest

import runtime
from runtime.utils.data import BatchSampler, RandomSampler, SequentialSampler, SubsetRandomSampler


def test_sequential_sampler_counts_up():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    assert len(SequentialSampler(range(4))) == 4


def test_random_sampler_gives_a_new_permutation_each_pass():
    sampler = RandomSampler(range(20), generator=runtime.Generator().manual_seed(0))
    first, second = list(sampler), list(sampler)
    assert sorted(first) == sorted(second) == list(range(20))
    assert first != second


def test_random_sampler_repeats_its_passes_from_the_same_seed():
    def passes(seed):
        sampler = RandomSampler(range(20), generator=runtime.Generator().manual_seed(seed))
        return [list(sampler) for _ in range(3)]

    assert passes(5) == passes(5)
    assert passes(5) != passes(6)


def test_random_sampler_without_generator_follows_manual_seed():
    runtime.manual_seed(11)
    first = list(RandomSampler(range(20)))
    runtime.manual_seed(11)
    assert list(RandomSampler(range(20))) == first


def test_random_sampler_num_samples_beyond_the_dataset_repeats_whole_permutations():
    drawn = list(RandomSampler(range(4), num_samples=10))
    assert len(drawn) == 10
    assert sorted(drawn[:4]) == sorted(drawn[4:8]) == [0, 1, 2, 3]


def test_random_sampler_with_replacement_draws_independently():
    sampler = RandomSampler(range(3), replacement=True, num_samples=50)
    drawn = list(sampler)
    assert len(sampler) == len(drawn) == 50
    assert set(drawn) <= {0, 1, 2} and len(set(drawn)) < len(drawn)


def test_random_sampler_errors():
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, but "
                                         "got num_samples=0"):
        RandomSampler([])
    with pytest.raises(TypeError, match="replacement should be a boolean value"):
        RandomSampler(range(3), replacement=1)


def test_subset_random_sampler_permutes_the_given_indices():
    drawn = list(SubsetRandomSampler([10, 20, 30]))
    assert sorted(drawn) == [10, 20, 30]


def test_batch_sampler_groups_indices_and_keeps_or_drops_the_short_last_batch():
    assert list(BatchSampler(range(5), 2, drop_last=False)) == [[0, 1], [2, 3], [4]]
    assert list(BatchSampler(range(5), 2, drop_last=True)) == [[0, 1], [2, 3]]
    assert len(BatchSampler(range(5), 2, drop_last=False)) == 3
    assert len(BatchSampler(range(5), 2, drop_last=True)) == 2


def test_batch_sampler_errors():
    with pytest.raises(ValueError, match="batch_size should be a positive integer value, but got "
                                         "batch_size=0"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean value"):
        BatchSampler(range(3), 2, None)


def test_random_sampler_with_replacement_draws_lazily():
    """10**10 indices would need 74.5 GiB at once; the sampler draws them as they are asked
    for, as PyTorch's does."""
    import itertools
    import tracemalloc

    from runtime.utils.data import RandomSampler

    sampler = RandomSampler(range(7), replacement=True, num_samples=10**10)
    assert len(sampler) == 10**10
    tracemalloc.start()
    first = list(itertools.islice(iter(sampler), 1000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(first) == 1000 and set(first) <= set(range(7))
    assert peak < 10 * 2**20, f"drawing 1000 of 10**10 samples used {peak} bytes"
    without = RandomSampler(range(5), num_samples=10**10)
    assert sorted(itertools.islice(iter(without), 5)) == [0, 1, 2, 3, 4]
