"""PyTorch's "Automatic Differentiation with torch.autograd" tutorial, written for symgrad.

The tutorial's code with `import torch` replaced by `import runtime as torch`, followed by what the
tutorial only describes in words: a second backward through a freed graph raises RuntimeError.

Run it as a script: `python examples/autograd_tutorial.py`.
"""

import runtime as torch


def tutorial():
    # Tensors, functions and the computational graph
    x = torch.ones(5)  # input tensor
    y = torch.zeros(3)  # expected output
    w = torch.randn(5, 3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    z = torch.matmul(x, w)+b
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)

    print(f"Gradient function for z = {z.grad_fn}")
    print(f"Gradient function for loss = {loss.grad_fn}")

    # Computing gradients
    loss.backward()
    print(w.grad)
    print(b.grad)

    # Disabling gradient tracking
    z = torch.matmul(x, w)+b
    print(z.requires_grad)

    with torch.no_grad():
        z = torch.matmul(x, w)+b
    print(z.requires_grad)

    z = torch.matmul(x, w)+b
    z_det = z.detach()
    print(z_det.requires_grad)

    # Tensor gradients and Jacobian products
    inp = torch.eye(4, 5, requires_grad=True)
    out = (inp+1).pow(2).t()
    out.backward(torch.ones_like(out), retain_graph=True)
    print(f"First call\n{inp.grad}")
    out.backward(torch.ones_like(out), retain_graph=True)
    print(f"\nSecond call\n{inp.grad}")
    inp.grad.zero_()
    out.backward(torch.ones_like(out), retain_graph=True)
    print(f"\nCall after zeroing gradients\n{inp.grad}")


def second_backward():
    """Saved values are freed by backward: a second one needs retain_graph=True the first time."""
    w = torch.randn(5, 3, requires_grad=True)
    loss = torch.matmul(torch.ones(5), w).sigmoid().sum()
    loss.backward()
    try:
        loss.backward()
    except RuntimeError as error:
        print(f"\nSecond backward without retain_graph=True: RuntimeError: {error}")


if __name__ == "__main__":
    tutorial()
    second_backward()
