"""Fit sin(x) on [-pi, pi] with y = a + b * P3(c + d * x), where P3 is the Legendre polynomial of
degree 3 written as a custom autograd Function, on the best device the machine offers: the
program of "Learning PyTorch with Examples", in its style, for symgrad."""

import math

import runtime as torch

# Pick a device the way current tutorials do.
if torch.accelerator.is_available():
    device = torch.accelerator.current_accelerator().type
elif torch.cuda.is_available():
    device = "cuda"
elif torch.backends.mps.is_available():
    device = "mps"
else:
    device = "cpu"
print(f"Using {device} device")
device = torch.device(device)
torch.set_default_device(device)
dtype = torch.float


class Legendre3(torch.autograd.Function):
    """P3(t) = (5 t^3 - 3 t) / 2, with its derivative written by hand."""

    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return 0.5 * (5 * t ** 3 - 3 * t)

    @staticmethod
    def backward(ctx, grad_output):
        (t,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * t ** 2 - 1)


x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
y = torch.sin(x)
print("x:", x.shape, x.dtype, x.device)

# The weights start close enough to the answer for plain gradient descent to converge.
weights = {name: torch.full((), value, device=device, dtype=dtype, requires_grad=True)
           for name, value in [("a", 0.0), ("b", -1.0), ("c", 0.0), ("d", 0.3)]}
a, b, c, d = weights.values()

learning_rate = 5e-6
P3 = Legendre3.apply
for step in range(600):
    y_pred = a + b * P3(c + d * x)
    loss = (y_pred - y).pow(2).sum()
    if step == 0:
        node, chain = loss.grad_fn, []
        while node is not None:
            chain.append(type(node).__name__)
            node = next((n for n, _ in reversed(node.next_functions) if n is not None), None)
        print("grad_fn chain:", " -> ".join(chain))
    if step % 200 == 199:
        print(f"step {step + 1}: loss {loss.item():.4f}")
    loss.backward()
    with torch.no_grad():
        for w in weights.values():
            w -= learning_rate * w.grad
            w.grad = None

print(f"Result: y = {a.item():.4f} + {b.item():.4f} * P3({c.item():.4f} + {d.item():.4f} x)")
error = (a + b * P3(c + d * x) - y).abs().max()
print(f"largest error: {error.item():.4f}")
moved = x.to("cpu").to(torch.float64)
print("back on", moved.device, moved.dtype)
