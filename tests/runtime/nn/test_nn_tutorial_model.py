"""The model of PyTorch's "Build the Neural Network" tutorial, written as the tutorial writes it:
its printed structure, parameter names and count, and outputs and gradients equal to torch's once
the weights are shared through a state_dict."""

import numpy as np
import pytest

import runtime
from runtime import nn

TUTORIAL_REPR = """\
NeuralNetwork(
  (flatten): Flatten(start_dim=1, end_dim=-1)
  (linear_relu_stack): Sequential(
    (0): Linear(in_features=784, out_features=512, bias=True)
    (1): ReLU()
    (2): Linear(in_features=512, out_features=512, bias=True)
    (3): ReLU()
    (4): Linear(in_features=512, out_features=10, bias=True)
  )
)"""


def tutorial_model(nn):
    """The tutorial's NeuralNetwork, built with the given framework's nn module."""

    class NeuralNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.linear_relu_stack = nn.Sequential(
                nn.Linear(28 * 28, 512),
                nn.ReLU(),
                nn.Linear(512, 512),
                nn.ReLU(),
                nn.Linear(512, 10),
            )

        def forward(self, x):
            x = self.flatten(x)
            logits = self.linear_relu_stack(x)
            return logits

    return NeuralNetwork()


def test_model_prints_as_pytorch_prints_it():
    assert repr(tutorial_model(nn)) == TUTORIAL_REPR


def test_model_repr_equals_torch_repr():
    torch = pytest.importorskip("torch")
    assert repr(tutorial_model(nn)) == repr(tutorial_model(torch.nn))


def test_named_parameters_have_dotted_names_and_tutorial_shapes():
    shapes = {name: tuple(p.shape) for name, p in tutorial_model(nn).named_parameters()}
    assert shapes == {
        "linear_relu_stack.0.weight": (512, 784), "linear_relu_stack.0.bias": (512,),
        "linear_relu_stack.2.weight": (512, 512), "linear_relu_stack.2.bias": (512,),
        "linear_relu_stack.4.weight": (10, 512), "linear_relu_stack.4.bias": (10,),
    }


def test_parameter_count_is_669706():
    model = tutorial_model(nn)
    assert sum(p.numel() for p in model.parameters()) == 669706
    assert all(p.requires_grad and p.dtype == runtime.float32 for p in model.parameters())


def test_tutorial_forward_gives_logits_and_softmax_probabilities():
    model = tutorial_model(nn).to("cpu")
    logits = model(runtime.rand(1, 28, 28))
    pred_probab = nn.Softmax(dim=1)(logits)
    y_pred = pred_probab.argmax(1)
    assert logits.shape == (1, 10) and logits.grad_fn is not None
    assert pred_probab.sum(1).item() == pytest.approx(1.0, abs=1e-6)
    assert y_pred.dtype == runtime.int64 and 0 <= y_pred.item() < 10


def test_tutorial_layer_by_layer_shapes():
    input_image = runtime.rand(3, 28, 28)
    flat_image = nn.Flatten()(input_image)
    hidden1 = nn.Linear(in_features=28 * 28, out_features=20)(flat_image)
    assert flat_image.size() == (3, 784) and hidden1.size() == (3, 20)
    assert (nn.ReLU()(hidden1).detach().numpy() >= 0).all()


def test_state_dict_keys_in_registration_order():
    assert list(tutorial_model(nn).state_dict()) == [
        "linear_relu_stack.0.weight", "linear_relu_stack.0.bias",
        "linear_relu_stack.2.weight", "linear_relu_stack.2.bias",
        "linear_relu_stack.4.weight", "linear_relu_stack.4.bias"]


def test_loading_a_torch_state_dict_gives_torch_outputs_and_gradients():
    torch = pytest.importorskip("torch")
    reference = tutorial_model(torch.nn).double()
    model = tutorial_model(nn).double()
    model.load_state_dict({k: runtime.tensor(v.numpy()) for k, v in
                           reference.state_dict().items()})
    images = np.random.default_rng(0).uniform(size=(4, 28, 28))
    labels = np.array([3, 1, 4, 1])

    ours = nn.CrossEntropyLoss()(model(runtime.tensor(images)), runtime.tensor(labels))
    theirs = torch.nn.CrossEntropyLoss()(reference(torch.tensor(images)), torch.tensor(labels))
    ours.backward()
    theirs.backward()

    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-9, atol=1e-14,
                                   err_msg=name)


def test_float32_outputs_match_torch_after_loading_its_weights():
    torch = pytest.importorskip("torch")
    reference = tutorial_model(torch.nn)
    model = tutorial_model(nn)
    model.load_state_dict({k: runtime.from_numpy(v.numpy()) for k, v in
                           reference.state_dict().items()})
    images = np.random.default_rng(1).uniform(size=(8, 28, 28)).astype(np.float32)
    with runtime.no_grad():
        ours = model(runtime.from_numpy(images)).numpy()
    with torch.no_grad():
        theirs = reference(torch.from_numpy(images)).numpy()
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
