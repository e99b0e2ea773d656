"""PyTorch's "Build the Neural Network" tutorial, written for symgrad.

The tutorial's code with `import torch` replaced by `import runtime as torch`, on the CPU.
A short training run on synthetic data, not part of the tutorial, follows it.

Run it as a script (`python examples/build_model.py`); import it for `NeuralNetwork`
(later: `symgrad export examples/build_model.py:NeuralNetwork`).
"""

import runtime as torch
from runtime import nn


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28*28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def tutorial():
    device = "cpu"  # symgrad runs on the CPU
    print(f"Using {device} device")

    model = NeuralNetwork().to(device)
    print(model)

    X = torch.rand(1, 28, 28, device=device)
    logits = model(X)
    pred_probab = nn.Softmax(dim=1)(logits)
    y_pred = pred_probab.argmax(1)
    print(f"Predicted class: {y_pred}")

    # Model layers
    input_image = torch.rand(3,28,28)
    print(input_image.size())

    flatten = nn.Flatten()
    flat_image = flatten(input_image)
    print(flat_image.size())

    layer1 = nn.Linear(in_features=28*28, out_features=20)
    hidden1 = layer1(flat_image)
    print(hidden1.size())

    print(f"Before ReLU: {hidden1}\n\n")
    hidden1 = nn.ReLU()(hidden1)
    print(f"After ReLU: {hidden1}")

    seq_modules = nn.Sequential(
        flatten,
        layer1,
        nn.ReLU(),
        nn.Linear(20, 10)
    )
    input_image = torch.rand(3,28,28)
    logits = seq_modules(input_image)

    softmax = nn.Softmax(dim=1)
    pred_probab = softmax(logits)

    # Model parameters
    print(f"Model structure: {model}\n\n")

    for name, param in model.named_parameters():
        print(f"Layer: {name} | Size: {param.size()} | Values : {param[:2]} \n")


def synthetic_images(n, generator):
    """`n` 28x28 images of 10 classes: a fixed random pattern per class plus noise."""
    patterns = torch.rand(10, 28, 28, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, 10, (n,), generator=generator)
    images = patterns[labels] + 0.5 * torch.rand(n, 28, 28, generator=generator)
    return images, labels


def train(steps=20, batch_size=64):
    """Not in the tutorial: train the model above with SGD on synthetic data."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = NeuralNetwork()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(steps):
        X, y = synthetic_images(batch_size, generator)
        loss = loss_fn(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 5 == 0 or step == steps - 1:
            print(f"step {step:2d}  loss {loss.item():.4f}")
    X, y = synthetic_images(500, generator)
    with torch.no_grad():
        accuracy = (model(X).argmax(1) == y).float().mean().item()
    print(f"accuracy on 500 new images: {accuracy:.3f}")


if __name__ == "__main__":
    tutorial()
    print("Training on synthetic data (not part of the tutorial)")
    train()
