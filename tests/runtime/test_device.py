"""Devices (runtime/_device.py, runtime.cuda, runtime.backends, runtime.accelerator) against a
CPU-only PyTorch build: the same answers, the same printed devices, the same error types."""

import pytest

import runtime
import runtime.nn as nn

torch = pytest.importorskip("torch")


def test_the_tutorials_device_selection_picks_the_cpu():
    for lib in (runtime, torch):
        accelerator = lib.accelerator.current_accelerator()
        device = accelerator.type if lib.accelerator.is_available() else "cpu"
        assert device == "cpu"
        assert accelerator is None
        assert lib.cuda.is_available() is False
        assert lib.backends.mps.is_available() is False
        assert lib.cuda.device_count() == 0
    assert runtime.device("cuda" if runtime.cuda.is_available() else "cpu").type == "cpu"


@pytest.mark.parametrize("spec", [("cpu",), ("cpu", 0), ("cuda:1",), ("cuda", 2), ("mps",)])
def test_devices_print_and_compare_as_torch(spec):
    ours, theirs = runtime.device(*spec), torch.device(*spec)
    assert repr(ours) == repr(theirs)
    assert str(ours) == str(theirs)
    assert (ours.type, ours.index) == (theirs.type, theirs.index)
    assert ours == runtime.device(*spec)
    assert (ours == str(ours)) == (theirs == str(theirs))  # a device is not equal to its string


def test_a_tensor_is_on_the_cpu():
    x = runtime.zeros(2, device="cpu")
    assert repr(x.device) == repr(torch.zeros(2).device)
    assert x.device == runtime.device("cpu")
    assert (x.is_cuda, x.get_device()) == (False, -1)
    assert repr(x) == "tensor([0., 0.])"


CREATION = {
    "zeros": lambda lib, d: lib.zeros(2, 3, device=d),
    "ones": lambda lib, d: lib.ones((2,), device=d),
    "empty": lambda lib, d: lib.empty(2, device=d),
    "full": lambda lib, d: lib.full((2,), 1.5, device=d),
    "eye": lambda lib, d: lib.eye(2, device=d),
    "arange": lambda lib, d: lib.arange(3, device=d),
    "linspace": lambda lib, d: lib.linspace(0, 1, 3, device=d),
    "tensor": lambda lib, d: lib.tensor([1.0], device=d),
    "as_tensor": lambda lib, d: lib.as_tensor([1.0], device=d),
    "rand": lambda lib, d: lib.rand(2, device=d),
    "randn": lambda lib, d: lib.randn(2, device=d),
    "randint": lambda lib, d: lib.randint(0, 3, (2,), device=d),
    "randperm": lambda lib, d: lib.randperm(3, device=d),
    "normal": lambda lib, d: lib.normal(0.0, 1.0, (2,), device=d),
    "zeros_like": lambda lib, d: lib.zeros_like(lib.ones(2), device=d),
    "new_zeros": lambda lib, d: lib.ones(2).new_zeros(3, device=d),
    "new_tensor": lambda lib, d: lib.ones(2).new_tensor([1.0], device=d),
    "new_full": lambda lib, d: lib.ones(2).new_full((2,), 3.0, device=d),
}


@pytest.mark.parametrize("name", CREATION)
def test_every_creation_function_takes_a_device(name):
    make = CREATION[name]
    for d in ("cpu", runtime.device("cpu")):
        assert make(runtime, d).device == runtime.device("cpu")
    for device in ("cuda", "cuda:0", "mps"):
        with pytest.raises(Exception) as torch_error:
            make(torch, device)
        with pytest.raises(type(torch_error.value)) as our_error:
            make(runtime, device)
        if device.startswith("cuda"):
            assert str(our_error.value) == str(torch_error.value)


def test_an_unknown_device_string_is_torchs_runtime_error():
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        runtime.device("gpu")
    with pytest.raises(RuntimeError, match="Invalid device string: 'cpu:x'"):
        runtime.device("cpu:x")


@pytest.mark.parametrize("call", ["to('cuda')", "to(device='cuda')", "cuda()",
                                  "to(torch.device('cuda'), torch.float64)"])
def test_moving_to_a_missing_device_raises_torchs_error(call):
    for lib in (runtime, torch):
        x = lib.ones(2)
        with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
            eval(f"x.{call}", {"x": x, "torch": lib})


def test_to_converts_dtype_and_keeps_the_tensor_when_nothing_changes():
    x = runtime.ones(2)
    assert x.to("cpu") is x and x.cpu() is x and x.to(runtime.float32) is x
    assert x.to("cpu", runtime.float64).dtype == runtime.float64
    assert x.to(runtime.device("cpu"), dtype=runtime.float64).dtype == runtime.float64
    assert x.to(runtime.zeros(1, dtype=runtime.int64)).dtype == runtime.int64
    copy = x.to("cpu", copy=True)
    assert copy is not x and copy.tolist() == x.tolist()


def test_default_device_is_the_cpu_and_can_be_set_to_it():
    runtime.set_default_device("cpu")
    assert runtime.get_default_device() == runtime.device("cpu")
    assert runtime.zeros(1).device.type == "cpu"
    with pytest.raises(AssertionError, match="not compiled with CUDA"):
        runtime.set_default_device("cuda")
    with runtime.device("cpu"):
        assert runtime.ones(1).device.type == "cpu"


def test_module_to_device():
    model = nn.Linear(2, 3)
    assert model.to("cpu") is model
    assert model.to(runtime.device("cpu"), runtime.float64).weight.dtype == runtime.float64
    with pytest.raises(AssertionError, match="Torch not compiled with CUDA enabled"):
        model.to("cuda")
