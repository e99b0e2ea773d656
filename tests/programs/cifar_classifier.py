"""An image classifier the way the CIFAR-10 tutorial trains one, on a small local dataset of
CIFAR's shapes (3x32x32 images, 10 classes; torchvision cannot download here): the tutorial's
network, then a deeper residual network with batch normalisation, each trained a few steps with
SGD and momentum, its weights copied into a fresh network through the state_dict, and evaluated
overall and per class.

Run:  python tests/programs/cifar_classifier.py [--init weights.npz] [--save-init weights.npz]
symgrad is imported as torch; with `import torch` instead it runs on PyTorch unchanged. The data
comes from a seeded numpy generator, the loader does not shuffle (the data is in random order
already) and --init / --save-init load or write the starting weights, so two runs can agree.
"""

import argparse
import os
import tempfile

import numpy as np

import runtime as torch
import runtime.nn as nn
import runtime.nn.functional as F
import runtime.optim as optim
from runtime.utils.data import DataLoader, TensorDataset

classes = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)  # flatten all dimensions except batch
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut (a 1x1 convolution when the shape
    changes), as in ResNet."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.layer1 = BasicBlock(8, 8)
        self.layer2 = BasicBlock(8, 16, stride=2)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        x = self.dropout(torch.flatten(self.pool(x), 1))
        return self.fc(x)


def local_dataset(rng, n):
    """Images whose class shifts one colour channel's mean, so there is something to learn."""
    labels = rng.integers(0, 10, n)
    images = rng.standard_normal((n, 3, 32, 32)) * 0.5
    images[np.arange(n), labels % 3] += (labels[:, None, None] - 4.5) / 5
    return TensorDataset(torch.tensor(images, dtype=torch.float32), torch.tensor(labels))


def train(net, trainloader, epochs):
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    for epoch in range(epochs):  # loop over the dataset multiple times
        running_loss = 0.0
        for i, data in enumerate(trainloader, 0):
            # get the inputs; data is a list of [inputs, labels]
            inputs, labels = data
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            if i % 4 == 3:  # print every 4 mini-batches
                print(f"[{epoch + 1}, {i + 1:5d}] loss: {running_loss / 4:.4f}")
                running_loss = 0.0
    print("Finished Training")


def evaluate(net, testloader):
    correct = 0
    total = 0
    correct_pred = {classname: 0 for classname in classes}
    total_pred = {classname: 0 for classname in classes}
    # since we're not training, we don't need to calculate the gradients for our outputs
    with torch.no_grad():
        for data in testloader:
            images, labels = data
            outputs = net(images)
            # the class with the highest energy is what we choose as prediction
            _, predicted = torch.max(outputs, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
            for label, prediction in zip(labels, predicted):
                if label == prediction:
                    correct_pred[classes[label]] += 1
                total_pred[classes[label]] += 1
    print(f"Accuracy of the network on the {total} test images: {100 * correct // total} %")
    for classname, correct_count in correct_pred.items():
        if total_pred[classname]:
            accuracy = 100 * float(correct_count) / total_pred[classname]
            print(f"Accuracy for class: {classname:5s} is {accuracy:.1f} %")


def start(net, args, name):
    """Load or record the starting weights, as a checkpoint in numpy's format."""
    if args.init:
        saved = np.load(f"{args.init}.{name}.npz")
        net.load_state_dict({key: torch.tensor(saved[key]) for key in saved.files})
    if args.save_init:
        np.savez(f"{args.save_init}.{name}.npz",
                 **{key: value.numpy() for key, value in net.state_dict().items()})
    return net


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--init", help="start from the weights written by --save-init")
    parser.add_argument("--save-init", help="write the starting weights with this prefix")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    trainset, testset = local_dataset(rng, 64), local_dataset(rng, 32)
    trainloader = DataLoader(trainset, batch_size=4, shuffle=False)
    testloader = DataLoader(testset, batch_size=8, shuffle=False)

    dataiter = iter(trainloader)
    images, labels = next(dataiter)
    print(images.shape, labels.shape, images.dtype, labels.dtype)
    print(" ".join(f"{classes[labels[j]]:5s}" for j in range(4)))

    for name, make, epochs in (("net", Net, 2), ("resnet", SmallResNet, 1)):
        net = start(make(), args, name)
        print(net)
        print(sum(p.numel() for p in net.parameters()), "parameters")
        train(net, trainloader, epochs)
        # save a checkpoint and load it into a fresh network, as the tutorial does
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, f"cifar_{name}.pth")
            torch.save(net.state_dict(), path)
            trained = make()
            trained.load_state_dict(torch.load(path, weights_only=True))
        trained.eval()
        outputs = trained(images)
        print(outputs.shape, outputs.grad_fn is not None)
        evaluate(trained, testloader)


if __name__ == "__main__":
    main()
