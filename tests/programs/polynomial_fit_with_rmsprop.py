"""Fit sin(x) on [-pi, pi] with a third-degree polynomial written as nn.Linear(3, 1) over the
features (x, x^2, x^3), trained by optim.RMSprop on a summed MSELoss: the optimiser program of
"Learning PyTorch with Examples", in its style, for symgrad.

The weights start from fixed values (the two libraries' random streams differ), and a MultiStepLR
schedule shrinks the steps once the fit is close: RMSprop's steps of fixed size would oscillate
around the minimum and magnify rounding differences. So the same source run with `import torch`
prints the same numbers.
"""

import math

import runtime as torch

x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)

# Each row of the input holds (x, x^2, x^3): broadcasting a column against the powers.
powers = torch.tensor([1, 2, 3])
features = x.unsqueeze(-1).pow(powers)
print("features:", features.shape, features.dtype)

model = torch.nn.Sequential(
    torch.nn.Linear(3, 1),
    torch.nn.Flatten(0, 1),
)
print(model)
with torch.no_grad():
    model[0].weight.copy_(torch.tensor([[0.5, -0.1, 0.05]]))
    model[0].bias.fill_(0.2)

loss_fn = torch.nn.MSELoss(reduction="sum")
optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[600, 900], gamma=0.1)
print(optimizer)

for t in range(1500):
    prediction = model(features)
    loss = loss_fn(prediction, y)
    if t == 0:
        node, chain = loss.grad_fn, []
        while node is not None:
            chain.append(type(node).__name__)
            node = next((n for n, _ in node.next_functions if n is not None), None)
        print("grad_fn chain:", " -> ".join(chain))
    if t % 300 == 299:
        print(f"step {t + 1}: loss {loss.item():.4f}")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()

state = optimizer.state_dict()["state"]
print("optimizer state:", {index: sorted(buffers) for index, buffers in state.items()},
      "steps:", state[0]["step"].item(), "last lr:", scheduler.get_last_lr())
linear = model[0]
print(f"Result: y = {linear.bias.item():.4f} + {linear.weight[:, 0].item():.4f} x "
      f"+ {linear.weight[:, 1].item():.4f} x^2 + {linear.weight[:, 2].item():.4f} x^3")
