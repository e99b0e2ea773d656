"""nn.Dropout: in training mode zeroes elements with probability p and scales the others by
1/(1-p); in eval mode it is the identity."""

from __future__ import annotations

from runtime._tensor import Tensor
from runtime.nn import functional as F
from runtime.nn.module import Module


class Dropout(Module):
    """Randomly zero elements while training (model.train()); pass input through after
    model.eval()."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
