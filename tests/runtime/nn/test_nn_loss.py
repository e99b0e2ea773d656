"""The losses (runtime/nn/loss.py and their runtime/nn/functional.py forms): values and input
gradients equal PyTorch's in float64 for every reduction and option, first and second derivatives
equal finite differences, and bad input raises PyTorch's errors."""

import warnings

import numpy as np
import pytest

import runtime
from runtime import nn
from runtime.autograd import gradcheck, gradgradcheck
from runtime.nn import functional as F

RNG = np.random.default_rng(1234)
LOGITS = RNG.standard_normal((6, 4))
CLASSES = np.array([0, 3, 1, 2, 3, 2])
CLASSES_WITH_IGNORED = np.array([0, -100, 1, 2, -100, 2])
CLASS_WEIGHTS = np.array([0.5, 2.0, 1.0, 3.0])
PROBABILITIES = np.exp(RNG.standard_normal((6, 4)))
PROBABILITIES /= PROBABILITIES.sum(axis=1, keepdims=True)
SPATIAL_LOGITS = RNG.standard_normal((2, 3, 2, 2))
SPATIAL_CLASSES = np.array([[[0, 2], [1, 1]], [[2, 0], [-100, 1]]])
VALUES = RNG.standard_normal((3, 4))
OTHER_VALUES = RNG.standard_normal((3, 4))
SQUASHED = 1 / (1 + np.exp(-VALUES))
BINARY_TARGETS = RNG.uniform(size=(3, 4))
ELEMENT_WEIGHTS = RNG.uniform(0.5, 2.0, size=(3, 4))
POS_WEIGHT = np.array([1.0, 2.0, 0.5, 3.0])


def softmax_rows(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def case(name, make_loss, *arrays, grad_of=(0,)):
    """make_loss(nn, tensor, reduction) builds the loss with the given framework's nn; arrays are
    its arguments; grad_of says which of them are differentiated."""
    return pytest.param(make_loss, arrays, grad_of, id=name)


LOSS_CASES = [
    case("cross_entropy", lambda nn, t, r: nn.CrossEntropyLoss(reduction=r), LOGITS, CLASSES),
    case("cross_entropy_weight",
         lambda nn, t, r: nn.CrossEntropyLoss(weight=t(CLASS_WEIGHTS), reduction=r),
         LOGITS, CLASSES),
    case("cross_entropy_ignore_index",
         lambda nn, t, r: nn.CrossEntropyLoss(ignore_index=2, reduction=r), LOGITS, CLASSES),
    case("cross_entropy_default_ignore_index",
         lambda nn, t, r: nn.CrossEntropyLoss(weight=t(CLASS_WEIGHTS), reduction=r),
         LOGITS, CLASSES_WITH_IGNORED),
    case("cross_entropy_label_smoothing",
         lambda nn, t, r: nn.CrossEntropyLoss(label_smoothing=0.2, reduction=r), LOGITS, CLASSES),
    case("cross_entropy_label_smoothing_weight_ignore",
         lambda nn, t, r: nn.CrossEntropyLoss(weight=t(CLASS_WEIGHTS), ignore_index=3,
                                              label_smoothing=0.1, reduction=r),
         LOGITS, CLASSES),
    case("cross_entropy_probabilities", lambda nn, t, r: nn.CrossEntropyLoss(reduction=r),
         LOGITS, PROBABILITIES, grad_of=(0, 1)),
    case("cross_entropy_probabilities_weight_smoothing",
         lambda nn, t, r: nn.CrossEntropyLoss(weight=t(CLASS_WEIGHTS), label_smoothing=0.3,
                                              reduction=r),
         LOGITS, PROBABILITIES, grad_of=(0, 1)),
    case("cross_entropy_spatial",
         lambda nn, t, r: nn.CrossEntropyLoss(weight=t(CLASS_WEIGHTS[:3]), reduction=r),
         SPATIAL_LOGITS, SPATIAL_CLASSES),
    case("cross_entropy_unbatched", lambda nn, t, r: nn.CrossEntropyLoss(reduction=r),
         LOGITS[0], CLASSES[1]),
    case("nll", lambda nn, t, r: nn.NLLLoss(reduction=r), LOGITS, CLASSES),
    case("nll_weight_ignore_index",
         lambda nn, t, r: nn.NLLLoss(weight=t(CLASS_WEIGHTS), ignore_index=3, reduction=r),
         LOGITS, CLASSES),
    case("nll_spatial", lambda nn, t, r: nn.NLLLoss(reduction=r), SPATIAL_LOGITS,
         SPATIAL_CLASSES),
    case("mse", lambda nn, t, r: nn.MSELoss(reduction=r), VALUES, OTHER_VALUES, grad_of=(0, 1)),
    case("bce_with_logits", lambda nn, t, r: nn.BCEWithLogitsLoss(reduction=r),
         VALUES, BINARY_TARGETS, grad_of=(0, 1)),
    case("bce_with_logits_weight_pos_weight",
         lambda nn, t, r: nn.BCEWithLogitsLoss(weight=t(ELEMENT_WEIGHTS),
                                               pos_weight=t(POS_WEIGHT), reduction=r),
         VALUES, BINARY_TARGETS, grad_of=(0, 1)),
    case("bce_with_large_logits", lambda nn, t, r: nn.BCEWithLogitsLoss(reduction=r),
         VALUES * 30, BINARY_TARGETS),
    case("bce_with_huge_logits",
         lambda nn, t, r: nn.BCEWithLogitsLoss(pos_weight=t(POS_WEIGHT), reduction=r),
         VALUES * 1000, BINARY_TARGETS),
    case("bce", lambda nn, t, r: nn.BCELoss(reduction=r), SQUASHED, BINARY_TARGETS,
         grad_of=(0, 1)),
    case("bce_weight", lambda nn, t, r: nn.BCELoss(weight=t(ELEMENT_WEIGHTS), reduction=r),
         SQUASHED, BINARY_TARGETS),
]
REDUCTIONS = ["mean", "sum", "none"]


def run_loss(lib, make_loss, arrays, grad_of, reduction):
    """The loss and the gradients of `grad_of` inputs for a random cotangent, as numpy arrays;
    the same code runs with lib = runtime and lib = torch."""
    tensors = [lib.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    loss = make_loss(lib.nn, lib.tensor, reduction)(*tensors)
    cotangent = lib.tensor(np.random.default_rng(5).standard_normal(tuple(loss.shape)))
    grads = lib.autograd.grad(loss, [tensors[i] for i in grad_of], cotangent)
    return [loss.detach().numpy(), *(g.numpy() for g in grads)]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("make_loss, arrays, grad_of", LOSS_CASES)
def test_loss_and_gradients_equal_torch(make_loss, arrays, grad_of, reduction):
    torch = pytest.importorskip("torch")
    ours = run_loss(runtime, make_loss, arrays, grad_of, reduction)
    theirs = run_loss(torch, make_loss, arrays, grad_of, reduction)
    for what, a, b in zip(["loss", *(f"grad {i}" for i in grad_of)], ours, theirs):
        assert a.shape == b.shape, what
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("make_loss, arrays, grad_of", LOSS_CASES)
def test_loss_gradients_equal_finite_differences(make_loss, arrays, grad_of, reduction):
    tensors = [runtime.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    loss = make_loss(nn, runtime.tensor, reduction)
    assert gradcheck(loss, tensors)


@pytest.mark.parametrize("make_loss, arrays, grad_of", LOSS_CASES)
def test_loss_second_derivatives_match_finite_differences(make_loss, arrays, grad_of):
    """Double backward through the composed losses (what create_graph=True relies on)."""
    tensors = [runtime.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    assert gradgradcheck(make_loss(nn, runtime.tensor, "sum"), tensors)


def test_cross_entropy_is_log_softmax_then_nll():
    logits = runtime.tensor(LOGITS)
    target = runtime.tensor(CLASSES)
    expected = -np.mean(np.log(softmax_rows(LOGITS))[np.arange(6), CLASSES])
    assert F.cross_entropy(logits, target).item() == pytest.approx(expected, rel=1e-12)
    assert F.nll_loss(F.log_softmax(logits, 1), target).item() == pytest.approx(expected, rel=1e-12)


def test_weighted_mean_divides_by_the_total_weight_of_the_targets():
    logits, target = runtime.tensor(LOGITS), runtime.tensor(CLASSES)
    weight = runtime.tensor(CLASS_WEIGHTS)
    per_sample = F.cross_entropy(logits, target, weight=weight, reduction="none").numpy()
    mean = F.cross_entropy(logits, target, weight=weight).item()
    assert mean == pytest.approx(per_sample.sum() / CLASS_WEIGHTS[CLASSES].sum(), rel=1e-12)


def test_ignored_targets_contribute_nothing_and_all_ignored_gives_nan():
    logits = runtime.tensor(LOGITS)
    per_sample = F.cross_entropy(logits, runtime.tensor(CLASSES_WITH_IGNORED), reduction="none")
    assert per_sample.numpy()[[1, 4]].tolist() == [0.0, 0.0]
    assert np.isnan(F.cross_entropy(logits, runtime.full((6,), -100)).item())


def test_loss_result_has_a_grad_fn_and_backward_reaches_the_model():
    model = nn.Linear(4, 3)
    loss = nn.CrossEntropyLoss()(model(runtime.randn(5, 4)), runtime.tensor([0, 1, 2, 1, 0]))
    assert loss.shape == () and loss.grad_fn is not None
    loss.backward()
    assert model.weight.grad.shape == (3, 4) and model.bias.grad.abs().sum().item() > 0


def test_mse_warns_when_target_broadcasts():
    with pytest.warns(UserWarning, match="different to the input size"):
        loss = F.mse_loss(runtime.zeros(3, 4), runtime.ones(4))
    assert loss.item() == 1.0


def test_mse_with_per_element_weight():
    x, y = runtime.tensor(VALUES), runtime.tensor(OTHER_VALUES)
    w = runtime.tensor(ELEMENT_WEIGHTS)
    expected = ((VALUES - OTHER_VALUES) ** 2 * ELEMENT_WEIGHTS).sum() / ELEMENT_WEIGHTS.sum()
    assert F.mse_loss(x, y, weight=w).item() == pytest.approx(expected, rel=1e-12)


def test_bce_clamps_log_at_minus_100_and_stays_finite_at_0_and_1():
    x = runtime.tensor([0.0, 1.0, 0.5], dtype=runtime.float64, requires_grad=True)
    y = runtime.tensor([1.0, 0.0, 1.0], dtype=runtime.float64)
    loss = F.binary_cross_entropy(x, y, reduction="none")
    np.testing.assert_allclose(loss.detach().numpy(), [100.0, 100.0, np.log(2)])
    loss.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_bce_with_logits_is_stable_for_huge_logits():
    z = runtime.tensor([1000.0, -1000.0], dtype=runtime.float32)
    y = runtime.tensor([0.0, 1.0], dtype=runtime.float32)
    assert F.binary_cross_entropy_with_logits(z, y, reduction="none").tolist() == [1000.0, 1000.0]


def test_bce_with_logits_gradient_is_finite_for_huge_logits():
    z = runtime.tensor([1000.0, -1000.0], dtype=runtime.float64, requires_grad=True)
    y = runtime.tensor([0.0, 1.0], dtype=runtime.float64)
    F.binary_cross_entropy_with_logits(z, y, reduction="sum").backward()
    assert z.grad.tolist() == [1.0, -1.0]


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.cross_entropy(runtime.randn(3, 5), runtime.tensor([0, 5, 1])),
     IndexError, "Target 5 is out of bounds."),
    (lambda: F.nll_loss(runtime.randn(3, 5), runtime.tensor([0, -3, 1])),
     IndexError, "Target -3 is out of bounds."),
    (lambda: F.cross_entropy(runtime.randn(3, 5), runtime.tensor([0.0, 1.0, 2.0])),
     RuntimeError, "expected target dtype to be Long or Byte, but got Float"),
    (lambda: F.cross_entropy(runtime.randn(3, 5), runtime.tensor([0, 1])),
     ValueError, r"Expected input batch_size \(3\) to match target batch_size \(2\)."),
    (lambda: F.nll_loss(runtime.randn(2, 3, 4), runtime.zeros(2, 3, dtype=runtime.int64)),
     RuntimeError, r"Expected target size \[2, 4\], got \[2, 3\]"),
    (lambda: F.cross_entropy(runtime.randn(3, 5), runtime.tensor([0, 1, 2]),
                             weight=runtime.ones(4)),
     RuntimeError, "weight tensor should be defined either for all 5 classes or no classes but "
                   r"got weight tensor of shape: \[4\]"),
    (lambda: F.cross_entropy(runtime.randn(3, 5), runtime.tensor([0, 1, 2]), reduction="avg"),
     ValueError, "avg is not a valid value for reduction"),
    (lambda: nn.MSELoss(reduction="avg")(runtime.ones(2), runtime.ones(2)),
     ValueError, "avg is not a valid value for reduction"),
    (lambda: F.cross_entropy(runtime.randn(3, 5), runtime.tensor([0, 1, 2]),
                             label_smoothing=1.5),
     RuntimeError, "label_smoothing must be between 0.0 and 1.0. Got: 1.5"),
    (lambda: F.cross_entropy(runtime.randn(3, 5), runtime.rand(3, 5), ignore_index=2),
     RuntimeError, "ignore_index is not supported for floating point target"),
    (lambda: F.cross_entropy(runtime.randn(3, 5), runtime.zeros(3, 5, dtype=runtime.int64)),
     RuntimeError, "Expected floating point type for target with class probabilities, got Long"),
    (lambda: F.binary_cross_entropy_with_logits(runtime.randn(3, 5), runtime.rand(5)),
     ValueError, r"Target size \(runtime.Size\(\[5\]\)\) must be the same as input size"),
    (lambda: F.binary_cross_entropy(runtime.rand(3), runtime.rand(5)),
     ValueError, "Using a target size .* that is different to the input size"),
    (lambda: F.binary_cross_entropy(runtime.rand(3) + 1, runtime.rand(3)),
     RuntimeError, "all elements of input should be between 0 and 1"),
])
def test_bad_input_raises_pytorch_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_same_errors_as_torch_for_bad_targets():
    torch = pytest.importorskip("torch")
    for lib in (runtime, torch):
        with pytest.raises(IndexError, match="Target 7 is out of bounds"):
            lib.nn.functional.cross_entropy(lib.zeros(2, 3), lib.tensor([1, 7]))


def test_loss_modules_print_and_keep_weights_as_buffers():
    weight = runtime.tensor([1.0, 2.0, 3.0])
    loss = nn.CrossEntropyLoss(weight=weight)
    assert repr(loss) == "CrossEntropyLoss()"
    assert list(loss.state_dict()) == ["weight"]
    assert loss.weight is weight and list(loss.parameters()) == []
    assert list(nn.BCEWithLogitsLoss(pos_weight=weight).state_dict()) == ["pos_weight"]
    assert nn.MSELoss().state_dict() == {}
    assert nn.NLLLoss().reduction == "mean" and nn.MSELoss(reduction="sum").reduction == "sum"


def test_loss_modules_repr_like_torch():
    torch = pytest.importorskip("torch")
    for name in ["CrossEntropyLoss", "NLLLoss", "MSELoss", "BCEWithLogitsLoss", "BCELoss"]:
        assert repr(getattr(nn, name)()) == repr(getattr(torch.nn, name)())


def test_legacy_size_average_and_reduce_still_choose_the_reduction():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summed = nn.MSELoss(size_average=False)
        unreduced = F.mse_loss(runtime.zeros(2), runtime.ones(2), reduce=False)
    assert summed.reduction == "sum"
    assert unreduced.tolist() == [1.0, 1.0]
    assert [str(w.message) for w in caught] == [
        "size_average and reduce args will be deprecated, please use reduction='sum' instead.",
        "size_average and reduce args will be deprecated, please use reduction='none' instead."]
