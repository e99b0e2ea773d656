"""runtime.utils.data.default_collate / default_convert: samples to batches, as PyTorch."""

from collections import namedtuple

import numpy as np
import pytest

import runtime
from runtime.utils.data import default_collate, default_convert

Point = namedtuple("Point", ["x", "y"])


def test_tensors_are_stacked_along_a_new_first_dimension():
    batch = default_collate([runtime.tensor([1.0, 2.0]), runtime.tensor([3.0, 4.0])])
    assert batch.shape == (2, 2) and batch.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_zero_dim_tensors_stack_into_a_vector():
    assert default_collate([runtime.tensor(1), runtime.tensor(2)]).tolist() == [1, 2]


def test_a_tuple_sample_gives_a_list_of_batches():
    batch = default_collate([(runtime.ones(3), 0), (runtime.zeros(3), 1)])
    assert isinstance(batch, list) and len(batch) == 2
    features, labels = batch
    assert features.shape == (2, 3)
    assert labels.dtype == runtime.int64 and labels.tolist() == [0, 1]


def test_python_floats_become_float64_and_bools_bool():
    assert default_collate([0.5, 1.5]).dtype == runtime.float64
    assert default_collate([True, False]).dtype == runtime.bool


def test_numpy_arrays_and_scalars_become_tensors_of_their_dtype():
    arrays = default_collate([np.ones(2, np.float32), np.zeros(2, np.float32)])
    assert arrays.dtype == runtime.float32 and arrays.shape == (2, 2)
    scalars = default_collate([np.float64(1.0), np.float64(2.0)])
    assert scalars.dtype == runtime.float64 and scalars.tolist() == [1.0, 2.0]


def test_strings_stay_a_list():
    assert default_collate(["cat", "dog"]) == ["cat", "dog"]


def test_dicts_are_collated_key_by_key():
    batch = default_collate([{"image": runtime.ones(2), "label": 3},
                             {"image": runtime.zeros(2), "label": 4}])
    assert set(batch) == {"image", "label"}
    assert batch["image"].shape == (2, 2) and batch["label"].tolist() == [3, 4]


def test_namedtuples_keep_their_type_and_lists_stay_lists():
    points = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(points, Point) and points.x.tolist() == [1, 3]
    nested = default_collate([[1, 2], [3, 4]])
    assert isinstance(nested, list) and [t.tolist() for t in nested] == [[1, 3], [2, 4]]


def test_unequal_sequence_lengths_and_unknown_types_are_errors():
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal "
                                           "size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="batch must contain tensors, numpy arrays, numbers, dicts "
                                        "or lists; found <class 'object'>"):
        default_collate([object(), object()])


def test_default_convert_only_turns_numpy_into_tensors():
    converted = default_convert((np.arange(3), 7, "label"))
    assert isinstance(converted, list)
    assert isinstance(converted[0], runtime.Tensor) and converted[0].tolist() == [0, 1, 2]
    assert converted[1:] == [7, "label"]
    assert default_convert({"x": np.ones(1)})["x"].dtype == runtime.float64


def test_collate_equals_torch_on_a_nested_sample():
    torch_collate = pytest.importorskip("torch.utils.data").default_collate
    samples = [{"x": np.full(2, float(i)), "y": (i, float(i))} for i in range(3)]
    ours, theirs = default_collate(samples), torch_collate(samples)
    assert ours["x"].tolist() == theirs["x"].tolist()
    assert str(ours["x"].dtype).split(".")[1] == str(theirs["x"].dtype).split(".")[1]
    assert [t.tolist() for t in ours["y"]] == [t.tolist() for t in theirs["y"]]
    assert [str(t.dtype).split(".")[1] for t in ours["y"]] == \
        [str(t.dtype).split(".")[1] for t in theirs["y"]]
