"""LeNet the way the 60-minute blitz's "Neural Networks" tutorial builds and trains it: define the
network, print it and its parameters, run a random 32x32 image through it, follow the loss's
grad_fn chain backwards, update the weights by hand and then with optim.SGD.

Run:  python tests/programs/lenet_blitz.py [--init weights.npz] [--save-init weights.npz]
symgrad is imported as torch; with `import torch` instead it runs on PyTorch unchanged. The image
and target come from a seeded numpy generator (the two libraries' random streams differ), and
--init / --save-init load or write the starting weights, so both runs can start from the same.
"""

import argparse

import numpy as np

import runtime as torch
import runtime.nn as nn
import runtime.nn.functional as F
import runtime.optim as optim


class Net(nn.Module):

    def __init__(self):
        super().__init__()
        # 1 input image channel, 6 output channels, 5x5 square convolution kernel
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        # an affine operation: y = Wx + b
        self.fc1 = nn.Linear(16 * 5 * 5, 120)  # 5*5 from image dimension
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, input):
        # convolution layer C1: 1 input channel, 6 output channels, 5x5 kernel, then ReLU;
        # outputs a (N, 6, 28, 28) tensor
        c1 = F.relu(self.conv1(input))
        # subsampling layer S2: 2x2 grid, purely functional, outputs (N, 6, 14, 14)
        s2 = F.max_pool2d(c1, (2, 2))
        # convolution layer C3 with ReLU: (N, 16, 10, 10)
        c3 = F.relu(self.conv2(s2))
        # subsampling layer S4: (N, 16, 5, 5); a square window can be given as one number
        s4 = F.max_pool2d(c3, 2)
        # flatten: (N, 400)
        s4 = torch.flatten(s4, 1)
        f5 = F.relu(self.fc1(s4))
        f6 = F.relu(self.fc2(f5))
        output = self.fc3(f6)
        return output


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--init", help="start from these weights (.npz of the state_dict)")
    parser.add_argument("--save-init", help="write the starting weights here (.npz)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    net = Net()
    if args.init:
        saved = np.load(args.init)
        net.load_state_dict({name: torch.tensor(saved[name]) for name in saved.files})
    if args.save_init:
        np.savez(args.save_init, **{k: v.numpy() for k, v in net.state_dict().items()})
    print(net)

    params = list(net.parameters())
    print(len(params))
    print(params[0].size())  # conv1's .weight

    input = torch.tensor(rng.standard_normal((1, 1, 32, 32)), dtype=torch.float32)
    out = net(input)
    print(out)

    net.zero_grad()
    out.backward(torch.tensor(rng.standard_normal((1, 10)), dtype=torch.float32))

    output = net(input)
    target = torch.tensor(rng.standard_normal(10), dtype=torch.float32)  # a dummy target
    target = target.view(1, -1)  # the same shape as output
    criterion = nn.MSELoss()

    loss = criterion(output, target)
    print(loss)

    print(loss.grad_fn)  # MSELoss
    print(loss.grad_fn.next_functions[0][0])  # Linear
    print(loss.grad_fn.next_functions[0][0].next_functions[0][0])  # ReLU

    net.zero_grad()  # zeroes the gradient buffers of all parameters
    print("conv1.bias.grad before backward")
    print(net.conv1.bias.grad)
    loss.backward()
    print("conv1.bias.grad after backward")
    print(net.conv1.bias.grad)

    learning_rate = 0.01
    for f in net.parameters():
        f.data.sub_(f.grad.data * learning_rate)

    optimizer = optim.SGD(net.parameters(), lr=0.01)
    for step in range(3):  # in the training loop:
        optimizer.zero_grad()  # zero the gradient buffers
        output = net(input)
        loss = criterion(output, target)
        loss.backward()
        optimizer.step()  # does the update
        print(f"step {step}: loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
