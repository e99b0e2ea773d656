"""nn.Dropout and F.dropout (runtime/nn/dropout.py, runtime/nn/functional.py)."""

import numpy as np
import pytest

import runtime
from runtime import nn
from runtime.nn import functional as F


def test_training_zeroes_about_p_and_scales_the_rest():
    runtime.manual_seed(0)
    x = runtime.ones(200, 100)
    y = nn.Dropout(p=0.3)(x).numpy()
    kept = y != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.01)
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)


def test_eval_mode_passes_input_through():
    layer = nn.Dropout(0.9).eval()
    x = runtime.randn(3, 4)
    assert layer(x) is x
    assert F.dropout(x, 0.9, training=False) is x


def test_gradient_flows_through_the_kept_elements_only():
    x = runtime.ones(50, 50, requires_grad=True)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())
    assert y.grad_fn.name() == "MulBackward0"


def test_extreme_probabilities():
    x = runtime.randn(10)
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 1.0).abs().sum().item() == 0


def test_manual_seed_makes_masks_reproducible():
    runtime.manual_seed(3)
    first = F.dropout(runtime.ones(20)).tolist()
    runtime.manual_seed(3)
    assert F.dropout(runtime.ones(20)).tolist() == first


def test_probability_is_validated():
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got "
                                         "1.5"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="but got -0.1"):
        F.dropout(runtime.ones(2), -0.1)


def test_dropout_in_a_model_follows_train_and_eval():
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5))
    x = runtime.ones(4, 8)
    model.eval()
    assert model(x).tolist() == model(x).tolist()
    model.train()
    runtime.manual_seed(1)
    assert (model(x).detach().numpy() == 0).any()


def test_repr_equals_torch():
    torch = pytest.importorskip("torch")
    assert repr(nn.Dropout()) == repr(torch.nn.Dropout()) == "Dropout(p=0.5, inplace=False)"
    assert repr(nn.Dropout(0.2, True)) == repr(torch.nn.Dropout(0.2, True))
