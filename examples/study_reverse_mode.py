"""Study what reverse mode does to the graph of PyTorch's autograd tutorial.

The tutorial's one-layer network -- z = x @ w + b, then binary cross-entropy with logits
against y -- handed to `compiler.explain`: the forward graph; the adjoints that reverse mode adds
(`grad_<value>` is the gradient of the loss with respect to <value>); what simplification removed;
and the fused loss kernel's derivative as sympy gives it, which is sigmoid(z) - y. Last, the
reverse-mode graph is run on the tutorial's tensors and agrees with `loss.backward()`.

Run it as a script: `python examples/study_reverse_mode.py [--html report.html]`.
"""

import argparse

import numpy as np
import sympy

import compiler
import runtime as torch


def one_layer(x, w, b):
    return torch.matmul(x, w) + b


def bce_with_logits(z, y):
    return torch.nn.functional.binary_cross_entropy_with_logits(z, y)


def heading(text):
    print(f"\n{text}\n{'-' * len(text)}")


def show_adjoints(report):
    """Each adjoint reverse mode built, and which of them are the gradients asked for."""
    for node in report.reverse_nodes():
        name = node.output.name
        if name.startswith("grad_"):
            print(f"  d loss / d %{name.removeprefix('grad_')}  is  %{name} = {node.op_name}(...)")
    for source, adjoint, _ in report.gradients():
        print(f"  the gradient of %{source.name} is %{adjoint.name}")
    print("  (`d.<value>.*` nodes are intermediates of the derivative at <value>)")


def show_what_simplification_removed(report):
    kept = {n.output.name for n in report.simplified.nodes}
    removed = [n for n in report.reverse.nodes if n.output.name not in kept]
    print(f"  {len(report.reverse.nodes)} nodes as built, {len(report.simplified.nodes)} after "
          "simplification. Gone or replaced:")
    for node in removed:
        print(f"    {node.text()}")
    print("  by these rewrites (before -> after):")
    print("\n".join(f"    {line}" for line in str(report.rewrites).splitlines()))
    print("  The simplified graph:")
    print(report.simplified)


def show_loss_kernel(report):
    """The fused kernel computing the loss elementwise, and its derivative in z."""
    kernel = next(k for k in report.kernels
                  if any(use.startswith("training: %loss.") for use in k.uses))
    print(f"  {kernel.uses[0]}")
    print("\n".join(f"    {line}" for line in kernel.pretty().splitlines()))
    z, y = kernel.symbols[:2]
    derivative = kernel.derivatives[0]
    expected = 1 / (1 + sympy.exp(-z)) - y
    branches = derivative.args if isinstance(derivative, sympy.Piecewise) else [(derivative, True)]
    agrees = all(sympy.simplify(branch - expected) == 0 for branch, _ in branches)
    print(f"  sympy: d f / d {z} == sigmoid({z}) - {y} on every branch: {agrees}")


def check_against_eager(report, x, w, b, y):
    """Run the reverse-mode graph with numpy and compare with loss.backward()."""
    loss = bce_with_logits(one_layer(x, w, b), y)
    loss.backward()
    inputs = [t.detach().numpy() for t in (x, w, b, y)] + [np.ones((), np.float32)]
    loss_value, grad_w, grad_b = compiler.run_graph(report.reverse, inputs)
    print(f"  loss {float(loss_value):.6f} (eager {loss.item():.6f})")
    print(f"  grad_w matches w.grad: {np.allclose(grad_w, w.grad.numpy(), atol=1e-6)}")
    print(f"  grad_b matches b.grad: {np.allclose(grad_b, b.grad.numpy(), atol=1e-6)}")


def main(html=None):
    torch.manual_seed(0)
    x = torch.ones(5)  # input tensor
    y = torch.zeros(3)  # expected output
    w = torch.randn(5, 3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    report = compiler.explain(one_layer, (x, w, b, y), loss_fn=bce_with_logits,
                              dynamic_batch=False)

    heading("1. The forward graph, as traced")
    print(report.forward)
    heading("2. Reverse mode, as built: the forward graph followed by its adjoints")
    print(report.reverse)
    show_adjoints(report)
    heading("3. What simplification removed")
    show_what_simplification_removed(report)
    heading("4. The fused loss kernel and its derivative, by sympy")
    show_loss_kernel(report)
    heading("5. What backward keeps, and the numbers")
    print(f"  saved for backward: {', '.join('%' + v.name for v in report.partition.saved)} "
          f"({report.saved_bytes_text()})")
    check_against_eager(report, x, w, b, y)
    if html:
        print(f"\nwrote {report.save_html(html)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", help="also write the full report as an HTML page")
    main(parser.parse_args().html)
