"""A character-level GPT's training step and inference: symgrad compiled vs PyTorch eager.

Run by hand:  python benchmarks/gpt.py [--quick] [--attention sdpa|masked]

The model is the minimal GPT people write to learn (token and position embeddings; blocks of
LayerNorm -> causal self-attention -> residual -> LayerNorm -> GELU MLP -> residual; a final
LayerNorm and a head tied to the token embedding), built by `char_gpt` from either library's
`nn`, so both run the same code from the same weights, in eval mode (dropout 0). One training
step is forward + cross-entropy over (B*T, vocab) + backward + AdamW: symgrad's
`compile_train_step` (one native call) and PyTorch eager take turns on the same batch
(round-robin, medians); tokens per second is B*T over the median step. No-grad inference of the
logits at batch 1 and 12 follows. Nothing is written to disk.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GPTConfig:
    vocab: int = 65
    block: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128


def char_gpt(torch: Any, config: GPTConfig, attention: str = "sdpa") -> Any:
    """The GPT built from `torch` (symgrad's `runtime` or PyTorch itself); `attention` is
    "sdpa" (F.scaled_dot_product_attention(is_causal=True)) or "masked" (a tril buffer,
    masked_fill with -inf, softmax)."""
    nn, F = torch.nn, torch.nn.functional
    c = config

    class CausalSelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd)  # query, key, value of all heads
            self.c_proj = nn.Linear(c.n_embd, c.n_embd)
            if attention == "masked":
                self.register_buffer("bias", torch.tril(torch.ones(c.block, c.block))
                                     .view(1, 1, c.block, c.block))

        def forward(self, x: Any) -> Any:
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(c.n_embd, dim=2)
            k = k.view(B, T, c.n_head, C // c.n_head).transpose(1, 2)  # (B, nh, T, hs)
            q = q.view(B, T, c.n_head, C // c.n_head).transpose(1, 2)
            v = v.view(B, T, c.n_head, C // c.n_head).transpose(1, 2)
            if attention == "sdpa":
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
                att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
                y = F.softmax(att, dim=-1) @ v
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.c_proj(y)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1 = nn.LayerNorm(c.n_embd)
            self.attn = CausalSelfAttention()
            self.ln_2 = nn.LayerNorm(c.n_embd)
            self.mlp = nn.Sequential(nn.Linear(c.n_embd, 4 * c.n_embd), nn.GELU(),
                                     nn.Linear(4 * c.n_embd, c.n_embd))

        def forward(self, x: Any) -> Any:
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class CharGPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte = nn.Embedding(c.vocab, c.n_embd)
            self.wpe = nn.Embedding(c.block, c.n_embd)
            self.h = nn.ModuleList([Block() for _ in range(c.n_layer)])
            self.ln_f = nn.LayerNorm(c.n_embd)
            self.lm_head = nn.Linear(c.n_embd, c.vocab, bias=False)
            self.lm_head.weight = self.wte.weight  # weight tying

        def forward(self, idx: Any) -> Any:
            pos = torch.arange(0, idx.size(1), dtype=torch.long)
            x = self.wte(idx) + self.wpe(pos)
            for block in self.h:
                x = block(x)
            return self.lm_head(self.ln_f(x))

    return CharGPT()


def gpt_loss(torch: Any) -> Callable[[Any, Any], Any]:
    """Cross-entropy of (B, T, vocab) logits against (B, T) targets, over B*T positions."""
    def loss_fn(logits: Any, targets: Any) -> Any:
        return torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)),
                                                 targets.view(-1))

    return loss_fn


def copy_weights(source: Any, target: Any, torch: Any) -> None:
    """Load `source`'s state (either library) into `target`, whose library is `torch`."""
    target.load_state_dict({k: torch.tensor(np.array(v.detach().numpy()))
                            for k, v in source.state_dict().items()})


# ----- the benchmark -----------------------------------------------------------------------------

def _batch(config: GPTConfig, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, config.vocab, (batch, config.block + 1))
    return tokens[:, :-1].copy(), tokens[:, 1:].copy()


def _round_robin(steps: dict[str, Callable[[], Any]], rounds: int, per_round: int
                 ) -> dict[str, float]:
    """Median seconds of each step, the contenders taking turns in blocks of `per_round`."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            for _ in range(per_round):
                started = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - started)
    return {name: float(np.median(t)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--attention", choices=["sdpa", "masked"], default="sdpa")
    parser.add_argument("--torch-threads", type=int, default=min(2, os.cpu_count() or 1),
                        help="PyTorch's intra-op threads (default: 2, as symgrad's GEMM uses)")
    args = parser.parse_args()
    import compiler
    import runtime

    try:
        import torch
    except ImportError:
        torch = None
    config, batch = GPTConfig(), 12
    rounds, per_round = (3, 3) if args.quick else (7, 5)
    x, y = _batch(config, batch, seed=0)

    runtime.manual_seed(0)
    ours = char_gpt(runtime, config, args.attention).eval()
    optimizer = runtime.optim.AdamW(ours.parameters(), lr=3e-4)
    xs, ys = runtime.tensor(x), runtime.tensor(y)
    started = time.perf_counter()
    step = compiler.compile_train_step(ours, gpt_loss(runtime), optimizer, example_inputs=(xs, ys))
    step(xs, ys)
    compile_seconds = time.perf_counter() - started
    steps: dict[str, Callable[[], Any]] = {"symgrad compile_train_step": lambda: step(xs, ys)}
    inference: dict[str, Callable[[], Any]] = {}
    compiled = compiler.compile(ours, (runtime.tensor(x[:1]),))
    for b in (1, batch):
        tokens = runtime.tensor(x[:b])
        inference[f"symgrad compile, batch {b}"] = \
            lambda tokens=tokens: _no_grad(runtime, compiled, tokens)

    if torch is not None:
        torch.set_num_threads(args.torch_threads)
        theirs = char_gpt(torch, config, args.attention).eval()
        copy_weights(ours, theirs, torch)
        torch_optimizer = torch.optim.AdamW(theirs.parameters(), lr=3e-4)
        tx, ty = torch.tensor(x), torch.tensor(y)
        loss_fn = gpt_loss(torch)

        def torch_step() -> float:
            torch_optimizer.zero_grad()
            loss = loss_fn(theirs(tx), ty)
            loss.backward()
            torch_optimizer.step()
            return loss.item()

        steps["PyTorch eager"] = torch_step
        for b in (1, batch):
            tokens = tx[:b]
            inference[f"PyTorch eager, batch {b}"] = \
                lambda tokens=tokens: _no_grad(torch, theirs, tokens)

    print(f"char GPT: vocab {config.vocab}, block {config.block}, {config.n_layer} layers, "
          f"{config.n_head} heads, n_embd {config.n_embd}, attention {args.attention}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"PyTorch with {args.torch_threads} threads")
    print(f"symgrad compile_train_step: {compile_seconds:.1f} s to compile and run step 1")
    print(f"\ntraining step, batch {batch} (forward, cross-entropy, backward, AdamW), medians:")
    medians = _round_robin(steps, rounds, per_round)
    for name, seconds in medians.items():
        print(f"  {name:30} {seconds * 1e3:8.2f} ms  {batch * config.block / seconds:10.0f} "
              "tokens/s")
    if "PyTorch eager" in medians:
        ratio = medians["PyTorch eager"] / medians["symgrad compile_train_step"]
        print(f"  symgrad / PyTorch eager speed: {ratio:.2f}x")
    print("\nno-grad inference of the logits, medians:")
    for name, seconds in _round_robin(inference, rounds, per_round).items():
        print(f"  {name:30} {seconds * 1e3:8.2f} ms")


def _no_grad(torch: Any, model: Any, tokens: Any) -> Any:
    with torch.no_grad():
        return model(tokens)


if __name__ == "__main__":
    main()
