"""einsum (runtime/_einsum.py) against PyTorch on the equations small models write: products,
batched products, outer products, transposes, sums, traces of attention, with `...` and with
the implicit output; values and gradients of both operands."""

import numpy as np
import pytest

import runtime

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
EQUATIONS = {
    "ij,jk->ik": [(2, 3), (3, 4)],
    "ij,kj->ik": [(2, 3), (4, 3)],
    "bij,bjk->bik": [(2, 2, 3), (2, 3, 4)],
    "bhqd,bhkd->bhqk": [(2, 2, 3, 4), (2, 2, 5, 4)],
    "i,j->ij": [(3,), (4,)],
    "i,i->": [(3,), (3,)],
    "ij,ij->i": [(2, 3), (2, 3)],
    "ij->ji": [(2, 3)],
    "ij->j": [(2, 3)],
    "ijk->": [(2, 3, 4)],
    "...ij,...jk->...ik": [(2, 2, 3), (2, 3, 4)],
    "ij,jk": [(2, 3), (3, 4)],
    "ba,ca": [(2, 3), (4, 3)],
    " ij , jk -> ik ": [(2, 3), (3, 4)],
    "bi,bj->bij": [(2, 3), (2, 4)],
    "ij,k->ijk": [(2, 3), (2,)],
    "ijk,j->ik": [(2, 3, 4), (3,)],
}


@pytest.mark.parametrize("equation", EQUATIONS)
def test_einsum_matches_torch(equation):
    arrays = [RNG.standard_normal(shape) for shape in EQUATIONS[equation]]
    ours = [runtime.tensor(a, requires_grad=True, dtype=runtime.float64) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = runtime.einsum(equation, *ours), torch.einsum(equation, *theirs)
    assert tuple(out.shape) == tuple(tout.shape)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-12)
    weights = RNG.standard_normal(tuple(tout.shape))
    (out * runtime.tensor(weights)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_operands_as_a_list_and_a_batched_product_is_one_matmul():
    a, b = runtime.ones(2, 2, 3), runtime.ones(2, 3, 4)
    a.requires_grad_()
    out = runtime.einsum("bij,bjk->bik", [a, b])
    assert out.grad_fn.name() == "BmmBackward0"


def test_unsupported_and_wrong_equations_say_so():
    with pytest.raises(NotImplementedError, match="diagonal"):
        runtime.einsum("ii->i", runtime.ones(2, 2))
    with pytest.raises(RuntimeError, match="number of subscripts"):
        runtime.einsum("ij,jk->ik", runtime.ones(2), runtime.ones(2, 2))
