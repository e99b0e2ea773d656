"""save / load (runtime/serialization.py): PyTorch's checkpoint format in both directions, the
weights-only unpickler that refuses any other global before it runs, map_location, paths and
file objects."""

import io
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import runtime
from runtime import nn, serialization


def assert_same_tensor(ours, theirs_values, dtype_name):
    assert ours.dtype.name == dtype_name
    np.testing.assert_array_equal(ours.numpy(force=True), theirs_values)


TENSORS = {
    "float32 matrix": lambda: runtime.arange(6.0).reshape(2, 3),
    "transposed": lambda: runtime.arange(6.0).reshape(2, 3).T,
    "0-d": lambda: runtime.tensor(2.5, dtype=runtime.float64),
    "empty": lambda: runtime.zeros(0, 3),
    "int64": lambda: runtime.tensor([[1, -2], [3, 4]]),
    "bool": lambda: runtime.tensor([True, False]),
    "uint8": lambda: runtime.tensor([0, 255], dtype=runtime.uint8),
    "float16": lambda: runtime.tensor([0.5, -1.0], dtype=runtime.float16),
}


@pytest.mark.parametrize("name", TENSORS)
def test_a_tensor_round_trips_through_a_file_object(name):
    tensor = TENSORS[name]()
    buffer = io.BytesIO()
    runtime.save(tensor, buffer)
    buffer.seek(0)
    loaded = runtime.load(buffer)
    assert loaded.shape == tensor.shape and loaded.dtype == tensor.dtype
    assert runtime.equal(loaded, tensor)


def test_containers_dtypes_sizes_and_devices_round_trip(tmp_path):
    state = OrderedDict(weight=runtime.ones(2, 2, requires_grad=True), bias=runtime.zeros(2))
    obj = {"model": state, "epoch": 3, "losses": [0.5, 0.25], "pair": (1, "a"), "raw": b"\x00\x01",
           "dtype": runtime.float64, "size": runtime.Size([2, 3]), "device": runtime.device("cpu"),
           "tags": {"a", "b"}}
    runtime.save(obj, tmp_path / "checkpoint.pt")
    loaded = runtime.load(str(tmp_path / "checkpoint.pt"))
    assert type(loaded["model"]) is OrderedDict and list(loaded["model"]) == ["weight", "bias"]
    assert loaded["model"]["weight"].requires_grad and loaded["model"]["weight"].is_leaf
    assert {k: v for k, v in loaded.items() if k != "model"} == \
        {k: v for k, v in obj.items() if k != "model"}
    assert type(loaded["size"]) is runtime.Size


def test_the_archive_is_laid_out_as_pytorchs(tmp_path):
    runtime.save({"w": runtime.ones(3)}, tmp_path / "model.pth")
    with zipfile.ZipFile(tmp_path / "model.pth") as archive:
        names = archive.namelist()
        assert {"model/data.pkl", "model/data/0", "model/version", "model/byteorder"} <= set(names)
        assert archive.read("model/version") == b"3\n"
        assert archive.read("model/byteorder") == b"little"
        info = archive.getinfo("model/data/0")
        assert info.compress_type == zipfile.ZIP_STORED
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        assert start % 64 == 0  # storages aligned as PyTorch aligns them
    buffer = io.BytesIO()
    runtime.save(runtime.ones(1), buffer)
    assert zipfile.ZipFile(buffer).namelist()[0].startswith("archive/")


def test_a_state_dict_moves_between_models(tmp_path):
    runtime.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    runtime.save(model.state_dict(), tmp_path / "weights.pth")
    copy = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    copy.load_state_dict(runtime.load(tmp_path / "weights.pth", weights_only=True))
    x = runtime.randn(5, 3)
    assert runtime.equal(copy(x), model(x))


def test_a_whole_module_needs_weights_only_false(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3))
    runtime.save(model, tmp_path / "model.pth")
    with pytest.raises(pickle.UnpicklingError, match="unsupported global "
                                                      "runtime.nn.containers.Sequential"):
        runtime.load(tmp_path / "model.pth")
    loaded = runtime.load(tmp_path / "model.pth", weights_only=False)
    assert repr(loaded) == repr(model)
    assert runtime.equal(loaded[0].weight, model[0].weight)
    assert isinstance(loaded[0].weight, nn.Parameter)


class RunsACommand:
    """What a malicious checkpoint holds: unpickling it calls os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_code_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    runtime.save({"weights": runtime.ones(2), "payload": RunsACommand(marker)}, path)
    with pytest.raises(pickle.UnpicklingError, match=r"unsupported global (posix|os|nt)\.system"):
        runtime.load(path)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        runtime.load(path, weights_only=True, map_location="cpu")
    assert not marker.exists()


def test_a_tensor_reaching_outside_its_storage_is_refused():
    storage = np.arange(4, dtype=np.float32)
    with pytest.raises(pickle.UnpicklingError, match="reach element"):
        serialization._rebuild_tensor_v2(storage, 1, (2, 2), (2, 1), False, OrderedDict())
    with pytest.raises(pickle.UnpicklingError, match="invalid tensor"):
        serialization._rebuild_tensor_v2(storage, 0, (2,), (-1,), False, OrderedDict())


class SavedOnCuda(serialization._CheckpointPickler):
    """Writes storages as a CUDA machine does."""

    def persistent_id(self, obj):
        pid = super().persistent_id(obj)
        return pid if pid is None else pid[:3] + ("cuda:0",) + pid[4:]


def test_map_location_and_a_checkpoint_saved_on_a_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "_CheckpointPickler", SavedOnCuda)
    runtime.save({"w": runtime.ones(2)}, tmp_path / "gpu.pt")
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match="Attempting to deserialize object on a CUDA device"):
        runtime.load(tmp_path / "gpu.pt")
    for where in ("cpu", runtime.device("cpu"), {"cuda:0": "cpu"}, lambda storage, loc: storage):
        assert runtime.load(tmp_path / "gpu.pt", map_location=where)["w"].tolist() == [1.0, 1.0]
    with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
        runtime.load(tmp_path / "gpu.pt", map_location="cuda")


def test_not_a_zip_checkpoint_says_so(tmp_path):
    (tmp_path / "old.pt").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(RuntimeError, match="not a checkpoint in PyTorch's zip format"):
        runtime.load(tmp_path / "old.pt")


# ----- with PyTorch ------------------------------------------------------------------------------

def test_a_checkpoint_written_by_symgrad_loads_in_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    runtime.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    optimizer = runtime.optim.Adam(model.parameters(), lr=0.01)
    model(runtime.randn(2, 3)).sum().backward()
    optimizer.step()
    tensors = {name: TENSORS[name]() for name in TENSORS}
    runtime.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                  "tensors": tensors, "epoch": 2, "dtype": runtime.float64,
                  "size": runtime.Size([4])}, tmp_path / "ours.pth")
    loaded = torch.load(tmp_path / "ours.pth")  # weights_only=True in PyTorch >= 2.6
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    theirs.load_state_dict(loaded["model"])
    torch_optimizer = torch.optim.Adam(theirs.parameters(), lr=0.01)
    torch_optimizer.load_state_dict(loaded["optimizer"])
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(theirs(torch.tensor(x)).detach().numpy(),
                               model(runtime.tensor(x)).detach().numpy(), rtol=1e-6)
    for name, tensor in tensors.items():
        assert_same_tensor(tensor, loaded["tensors"][name].numpy(),
                           str(loaded["tensors"][name].dtype).removeprefix("torch."))
    assert (loaded["epoch"], loaded["dtype"], loaded["size"]) == (2, torch.float64,
                                                                  torch.Size([4]))


def test_a_checkpoint_written_by_pytorch_loads_in_symgrad(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    optimizer = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    theirs(torch.randn(2, 3)).sum().backward()
    optimizer.step()
    torch.save({"model": theirs.state_dict(), "optimizer": optimizer.state_dict(),
                "parameter": torch.nn.Parameter(torch.ones(2)),
                "view": torch.arange(12.0).reshape(3, 4)[:, 1::2],
                "scalars": [torch.tensor(3), torch.tensor(True)], "dtype": torch.int64},
               tmp_path / "theirs.pt")
    with open(tmp_path / "theirs.pt", "rb") as file:
        loaded = runtime.load(file, map_location="cpu")
    ours = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    ours.load_state_dict(loaded["model"])
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(runtime.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-6)
    momentum = loaded["optimizer"]["state"][0]["momentum_buffer"]
    np.testing.assert_array_equal(momentum.numpy(),
                                  optimizer.state_dict()["state"][0]["momentum_buffer"].numpy())
    assert loaded["optimizer"]["param_groups"][0]["params"] == [0, 1, 2, 3]
    assert isinstance(loaded["parameter"], nn.Parameter) and loaded["parameter"].requires_grad
    assert loaded["view"].tolist() == [[1.0, 3.0], [5.0, 7.0], [9.0, 11.0]]
    assert [t.item() for t in loaded["scalars"]] == [3, True]
    assert loaded["dtype"] == runtime.int64


class Settings:
    """A plain class a checkpoint may hold, once it is admitted."""

    def __init__(self, rate):
        self.rate = rate


def test_add_safe_globals_admits_a_class_you_trust(tmp_path):
    runtime.save({"settings": Settings(0.5)}, tmp_path / "c.pt")
    with pytest.raises(pickle.UnpicklingError, match="add_safe_globals"):
        runtime.load(tmp_path / "c.pt")
    with serialization.safe_globals([Settings]):
        assert runtime.load(tmp_path / "c.pt")["settings"].rate == 0.5
    assert serialization.get_safe_globals() == []
    with pytest.raises(pickle.UnpicklingError, match="Settings"):
        runtime.load(tmp_path / "c.pt")
