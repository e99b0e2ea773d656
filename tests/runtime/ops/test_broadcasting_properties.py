"""Broadcasting (runtime/ops/_broadcast.py, expand/sum_to in runtime/ops/shape.py) as a property:
for random pairs of shapes that broadcast, binary ops give torch's values and each operand's
gradient comes back summed to that operand's own shape."""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import runtime  # noqa: E402


@st.composite
def broadcastable_shapes(draw):
    """Two shapes that broadcast: each dim of the shorter one is the other's size or 1."""
    full = draw(st.lists(st.integers(1, 3), min_size=0, max_size=4))
    drop = draw(st.integers(0, len(full)))
    other = [draw(st.sampled_from([size, 1])) for size in full[drop:]]
    return (tuple(full), tuple(other)) if draw(st.booleans()) else (tuple(other), tuple(full))


@settings(max_examples=30, deadline=None)
@given(shapes=broadcastable_shapes(), op=st.sampled_from(["add", "sub", "mul", "div", "maximum"]))
def test_binary_ops_broadcast_and_sum_gradients_back_like_torch(shapes, op):
    rng = np.random.default_rng(0)
    a_data = rng.uniform(0.5, 2.0, shapes[0])
    b_data = rng.uniform(0.5, 2.0, shapes[1]) + 0.25  # no ties for maximum
    results = []
    for lib in (runtime, torch):
        a = lib.tensor(a_data, requires_grad=True)
        b = lib.tensor(b_data, requires_grad=True)
        out = getattr(lib, op)(a, b)
        (out * out).sum().backward()
        results.append([t.detach().numpy() for t in (out, a.grad, b.grad)])
    for ours, theirs in zip(*results):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@st.composite
def incompatible_shapes(draw):
    size = draw(st.integers(2, 4))
    other = draw(st.integers(2, 4).filter(lambda s: s != size))
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    return lead + (size,), (other,)


@settings(max_examples=15, deadline=None)
@given(shapes=incompatible_shapes())
def test_shapes_that_do_not_broadcast_give_torchs_message(shapes):
    with pytest.raises(RuntimeError) as theirs:
        torch.ones(shapes[0]) * torch.ones(shapes[1])
    with pytest.raises(RuntimeError) as ours:
        runtime.ones(shapes[0]) * runtime.ones(shapes[1])
    assert str(ours.value) == str(theirs.value)
