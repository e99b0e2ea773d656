"""runtime.native: a NativeFunction checks every call; a call with the arrays of the last one
(a model's parameters) re-checks only what could have changed, and anything else takes the full
checks, so reusing the argument block never lets a wrong array reach native code."""

from __future__ import annotations

import numpy as np
import pytest

import runtime as torch
from compiler.native_build import build_native
from compiler.passes import simplify
from compiler.tracing import trace
from runtime import nn


class _Affine(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(x)) * 2.0


@pytest.fixture(scope="module")
def affine() -> tuple[_Affine, object, list[np.ndarray]]:
    torch.manual_seed(0)
    model = _Affine()
    graph = simplify(trace(model, (torch.randn(4, 6),)))
    function = build_native(graph)
    return model, function, [p.detach().numpy() for p in model.parameters()]


def _expected(model: _Affine, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def test_repeated_calls_with_new_inputs_are_correct(affine) -> None:
    model, function, params = affine
    rng = np.random.default_rng(1)
    for _ in range(5):  # the parameters are the same arrays each time; x is new
        x = rng.standard_normal((4, 6), dtype=np.float32)
        (out,) = function(x, *params)
        np.testing.assert_allclose(out, _expected(model, x), rtol=1e-5, atol=1e-6)


def test_the_same_input_changed_in_place_is_read_again(affine) -> None:
    model, function, params = affine
    x = np.ones((4, 6), np.float32)
    function(x, *params)
    x[:] = -np.arange(24, dtype=np.float32).reshape(4, 6)
    (out,) = function(x, *params)
    np.testing.assert_allclose(out, _expected(model, x), rtol=1e-5, atol=1e-6)


def test_outputs_are_new_arrays_each_call(affine) -> None:
    _, function, params = affine
    x = np.ones((4, 6), np.float32)
    (first,) = function(x, *params)
    (second,) = function(x, *params)
    assert first is not second and not np.shares_memory(first, second)


def test_a_new_batch_size_takes_the_full_checks(affine) -> None:
    model, function, params = affine
    function(np.ones((4, 6), np.float32), *params)
    x = np.random.default_rng(2).standard_normal((9, 6), dtype=np.float32)
    (out,) = function(x, *params)
    np.testing.assert_allclose(out, _expected(model, x), rtol=1e-5, atol=1e-6)


def test_an_array_reshaped_in_place_is_refused(affine) -> None:
    _, function, params = affine
    x = np.ones((4, 6), np.float32)
    function(x, *params)
    x.shape = (6, 4)  # the same object, another shape
    with pytest.raises(ValueError, match="expects shape"):
        function(x, *params)


def test_a_replaced_array_of_another_dtype_is_refused(affine) -> None:
    _, function, params = affine
    x = np.ones((4, 6), np.float32)
    function(x, *params)
    with pytest.raises(TypeError, match="dtype float64"):
        function(x.astype(np.float64), *params)


def test_strided_and_read_only_inputs_after_a_prepared_call(affine) -> None:
    model, function, params = affine
    function(np.ones((4, 6), np.float32), *params)
    wide = np.random.default_rng(3).standard_normal((4, 12), dtype=np.float32)
    strided = wide[:, ::2]
    (out,) = function(strided, *params)
    np.testing.assert_allclose(out, _expected(model, np.ascontiguousarray(strided)),
                               rtol=1e-5, atol=1e-6)
    frozen = np.ascontiguousarray(strided)
    frozen.flags.writeable = False
    (out,) = function(frozen, *params)
    np.testing.assert_allclose(out, _expected(model, frozen), rtol=1e-5, atol=1e-6)


def test_in_place_outputs_after_a_prepared_call_stay_checked() -> None:
    """A train step writes the parameters in place: repeated steps reuse the block; a parameter
    made read-only or replaced afterwards is caught or re-addressed, never written blindly."""
    import compiler

    torch.manual_seed(0)
    model = _Affine()
    x, target = torch.randn(4, 6), torch.randn(4, 3)
    step = compiler.compile_train_step(model, nn.MSELoss(), torch.optim.SGD(
        model.parameters(), lr=0.1), example_inputs=(x, target))
    twin = _Affine()
    twin.load_state_dict(model.state_dict())
    eager_optimizer = torch.optim.SGD(twin.parameters(), lr=0.1)
    for _ in range(3):
        step(x, target)
        eager_optimizer.zero_grad()
        nn.MSELoss()(twin(x), target).backward()
        eager_optimizer.step()
    np.testing.assert_allclose(model.linear.weight.detach().numpy(),
                               twin.linear.weight.detach().numpy(), rtol=1e-5, atol=1e-6)

    model.linear.weight._data.flags.writeable = False
    with pytest.raises(ValueError, match="updated in place"):
        step(x, target)
    model.linear.weight._data = model.linear.weight._data.copy()  # writeable, a new address
    before = model.linear.weight._data.copy()
    step(x, target)
    assert not np.array_equal(model.linear.weight._data, before)
