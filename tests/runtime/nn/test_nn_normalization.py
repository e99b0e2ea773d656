"""BatchNorm1d/2d and LayerNorm (modules and F.batch_norm / F.layer_norm) against PyTorch with the
same weights: outputs, input and parameter gradients, running statistics and num_batches_tracked
over several training steps, eval mode, second derivatives, printed forms and errors."""

import numpy as np
import pytest

import runtime
import runtime.nn.functional as F

torch = pytest.importorskip("torch")

MODULES = [
    (lambda lib: lib.nn.BatchNorm2d(3), (4, 3, 5, 5)),
    (lambda lib: lib.nn.BatchNorm2d(3, momentum=None), (4, 3, 2, 3)),
    (lambda lib: lib.nn.BatchNorm2d(3, track_running_stats=False), (4, 3, 2, 3)),
    (lambda lib: lib.nn.BatchNorm2d(3, bias=False, eps=1e-3, momentum=0.3), (2, 3, 2, 2)),
    (lambda lib: lib.nn.BatchNorm1d(3, affine=False), (4, 3, 6)),
    (lambda lib: lib.nn.BatchNorm1d(5), (6, 5)),
    (lambda lib: lib.nn.LayerNorm(5), (2, 4, 5)),
    (lambda lib: lib.nn.LayerNorm((4, 5), elementwise_affine=False), (2, 4, 5)),
    (lambda lib: lib.nn.LayerNorm([5], bias=False), (3, 5)),
]


def close(ours, theirs, tol=1e-12):
    np.testing.assert_allclose(np.asarray(ours.detach().numpy(), dtype=np.float64),
                               np.asarray(theirs.detach().numpy(), dtype=np.float64),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("make, shape", MODULES)
def test_module_training_steps_then_eval_match_torch(make, shape):
    ours, theirs = make(runtime).double(), make(torch).double()
    assert repr(ours) == repr(theirs)
    rng = np.random.default_rng(0)
    for _ in range(3):
        data = rng.standard_normal(shape) * 3 + 1  # off-centre, so the statistics matter
        x, tx = runtime.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
        out, expected = ours(x), theirs(tx)
        close(out, expected)
        g = rng.standard_normal(shape)
        out.backward(runtime.tensor(g))
        expected.backward(torch.tensor(g))
        close(x.grad, tx.grad)
        for p, q in zip(ours.parameters(), theirs.parameters()):
            close(p.grad, q.grad)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()):
            close(a, b)
    ours.eval()
    theirs.eval()
    data = rng.standard_normal(shape)
    close(ours(runtime.tensor(data)), theirs(torch.tensor(data)))


def test_batch_norm_buffers_are_buffers_and_in_the_state_dict():
    bn = runtime.nn.BatchNorm2d(4)
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var",
                                                   "num_batches_tracked"]
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert bn.num_batches_tracked.dtype == runtime.int64
    bn(runtime.randn(2, 4, 3, 3))
    assert bn.num_batches_tracked.item() == 1
    copy = runtime.nn.BatchNorm2d(4)
    copy.load_state_dict(bn.state_dict())
    np.testing.assert_array_equal(copy.running_mean.numpy(), bn.running_mean.numpy())


def test_functional_forms_match_torch():
    data = np.random.default_rng(1).standard_normal((4, 3, 2)) * 2
    rm, rv = np.zeros(3), np.ones(3)
    ours_rm, ours_rv = runtime.tensor(rm), runtime.tensor(rv)
    theirs_rm, theirs_rv = torch.tensor(rm), torch.tensor(rv)
    close(F.batch_norm(runtime.tensor(data), ours_rm, ours_rv, training=True, momentum=0.2),
          torch.nn.functional.batch_norm(torch.tensor(data), theirs_rm, theirs_rv, training=True,
                                         momentum=0.2))
    close(ours_rv, theirs_rv)
    close(F.batch_norm(runtime.tensor(data), ours_rm, ours_rv),
          torch.nn.functional.batch_norm(torch.tensor(data), theirs_rm, theirs_rv))
    w, b = np.arange(1.0, 3.0), np.array([0.5, -0.5])
    close(F.layer_norm(runtime.tensor(data), (2,), runtime.tensor(w), runtime.tensor(b)),
          torch.nn.functional.layer_norm(torch.tensor(data), (2,), torch.tensor(w),
                                         torch.tensor(b)))


@pytest.mark.parametrize("name", ["batch", "layer"])
def test_second_derivatives_match_torch(name):
    data = np.random.default_rng(2).standard_normal((3, 4))
    results = []
    for lib in (runtime, torch):
        x = lib.tensor(data, requires_grad=True)
        out = (lib.nn.functional.batch_norm(x, None, None, training=True) if name == "batch"
               else lib.nn.functional.layer_norm(x, (4,)))
        (gx,) = lib.autograd.grad((out ** 3).sum(), (x,), create_graph=True)
        results.append(lib.autograd.grad((gx ** 2).sum(), (x,))[0])
    close(*results, tol=1e-9)


def test_variance_is_exact_for_large_offsets():
    data = 1e8 + np.random.default_rng(3).standard_normal((64, 8))
    out = F.layer_norm(runtime.tensor(data), (8,))
    expected = torch.nn.functional.layer_norm(torch.tensor(data), (8,))
    close(out, expected, 1e-6)


def test_errors_match_torch():
    with pytest.raises(ValueError, match="expected 4D input \\(got 2D input\\)"):
        runtime.nn.BatchNorm2d(3)(runtime.randn(2, 3))
    with pytest.raises(ValueError, match="expected 2D or 3D input \\(got 4D input\\)"):
        runtime.nn.BatchNorm1d(3)(runtime.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        runtime.nn.BatchNorm1d(3)(runtime.randn(1, 3))
    with pytest.raises(RuntimeError, match="Given normalized_shape=\\[4\\]"):
        F.layer_norm(runtime.randn(2, 3), (4,))
