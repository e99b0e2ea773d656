"""A character-level language model in the style of the minimal GPTs people write to learn: token
and position embeddings, blocks of LayerNorm -> causal multi-head self-attention -> residual ->
LayerNorm -> GELU MLP -> residual, a final LayerNorm and a head tied to the token embedding,
trained a few steps with AdamW, a warmup-then-cosine learning rate and gradient clipping, then
asked to continue a prompt.

Run:  python tests/programs/char_language_model.py [--attention sdpa|masked|module]
                                                   [--init weights.npz] [--save-init weights.npz]
--attention picks how heads attend: F.scaled_dot_product_attention(is_causal=True), the explicit
tril mask with masked_fill and softmax, or nn.MultiheadAttention with a causal mask.
symgrad is imported as torch; with `import torch` instead it runs on PyTorch unchanged. Batches
come from a seeded numpy generator, dropout is 0 and the continuation is greedy (argmax), so two
runs from the same weights (--init / --save-init) print the same.
"""

import argparse
import math

import numpy as np

import runtime as torch
import runtime.nn as nn
import runtime.nn.functional as F

TEXT = """\
A small model reads this text one character at a time and learns which letter tends to follow
which. It sees a window of characters, looks back over the window with attention, and guesses
the next one. At first its guesses are uniform; after a few steps it has learned that a space
often follows a word, and that the letter after a q is nearly always a u.
"""

block_size = 32  # the longest context the model sees
n_embd = 32
n_head = 4
n_layer = 2
dropout = 0.0  # above zero, the two libraries' random masks would differ
batch_size = 8
max_iters = 6


class CausalSelfAttention(nn.Module):
    def __init__(self, attention):
        super().__init__()
        self.attention = attention
        if attention == "module":
            self.attn = nn.MultiheadAttention(n_embd, n_head, dropout=dropout, batch_first=True)
        else:
            self.c_attn = nn.Linear(n_embd, 3 * n_embd)  # query, key, value for all heads
            self.c_proj = nn.Linear(n_embd, n_embd)
        self.resid_dropout = nn.Dropout(dropout)
        if attention == "masked":
            self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size))
                                 .view(1, 1, block_size, block_size))

    def forward(self, x):
        B, T, C = x.size()  # batch, time, channels
        if self.attention == "module":
            future = torch.arange(T).unsqueeze(0) > torch.arange(T).unsqueeze(1)
            y, _ = self.attn(x, x, x, attn_mask=future, need_weights=False)
            return self.resid_dropout(y)
        qkv = self.c_attn(x)
        q, k, v = qkv[..., :n_embd], qkv[..., n_embd:2 * n_embd], qkv[..., 2 * n_embd:]
        k = k.view(B, T, n_head, C // n_head).transpose(1, 2)  # (B, nh, T, hs)
        q = q.view(B, T, n_head, C // n_head).transpose(1, 2)
        v = v.view(B, T, n_head, C // n_head).transpose(1, 2)
        if self.attention == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0,
                                               is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            y = att @ v  # (B, nh, T, T) x (B, nh, T, hs) -> (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, attention):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(attention)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = MLP()

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class CharGPT(nn.Module):
    def __init__(self, vocab_size, attention):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.h = nn.ModuleList([Block(attention) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        B, T = idx.size()
        pos = torch.arange(0, T, dtype=torch.long)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, sample=False):
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -block_size:]
            logits, _ = self(idx_cond)
            if sample:  # draw from the softmax, as the public minimal GPTs do
                probs = F.softmax(logits[:, -1, :], dim=-1)
                next_id = torch.multinomial(probs, num_samples=1)
            else:
                next_id = torch.argmax(logits[:, -1, :], dim=-1, keepdim=True)  # greedy
            idx = torch.cat((idx, next_id), dim=1)
        return idx


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--attention", choices=["sdpa", "masked", "module"], default="sdpa")
    parser.add_argument("--init", help="start from these weights (.npz of the state_dict)")
    parser.add_argument("--save-init", help="write the starting weights here (.npz)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    chars = sorted(set(TEXT))
    vocab_size = len(chars)
    stoi = {ch: i for i, ch in enumerate(chars)}
    itos = {i: ch for i, ch in enumerate(chars)}

    def encode(s):
        return [stoi[c] for c in s]

    def decode(ids):
        return "".join(itos[i] for i in ids)

    data = torch.tensor(encode(TEXT), dtype=torch.long)
    n = int(0.9 * len(data))
    train_data, val_data = data[:n], data[n:]
    print(vocab_size, data.shape, data.dtype)

    def get_batch(split):
        source = train_data if split == "train" else val_data
        ix = rng.integers(0, len(source) - block_size, batch_size)
        x = torch.stack([source[i:i + block_size] for i in ix])
        y = torch.stack([source[i + 1:i + block_size + 1] for i in ix])
        return x, y

    model = CharGPT(vocab_size, args.attention)
    if args.init:
        saved = np.load(args.init)
        model.load_state_dict({k: torch.tensor(saved[k]) for k in saved.files})
    if args.save_init:
        np.savez(args.save_init, **{k: v.numpy() for k, v in model.state_dict().items()})
    print(model)
    print(sum(p.numel() for p in model.parameters()), "parameters")

    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    warmup = 2

    def lr_lambda(it):
        if it < warmup:
            return (it + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (it - warmup) / (max_iters - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    for it in range(max_iters):
        xb, yb = get_batch("train")
        logits, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        print(f"iter {it}: loss {loss.item():.4f}, grad norm {norm.item():.4f}, "
              f"lr {scheduler.get_last_lr()[0]:.6f}")
    print(logits.shape)

    model.eval()
    with torch.no_grad():
        xb, yb = get_batch("val")
        _, val_loss = model(xb, yb)
    print(f"val loss {val_loss.item():.4f}")
    context = torch.tensor([encode("the ")], dtype=torch.long)
    print(repr(decode(model.generate(context, max_new_tokens=20)[0].tolist())))
    # a sampled continuation: its characters differ between libraries (their generators differ),
    # so what is printed is only that it has the right length and uses the vocabulary
    with torch.no_grad():
        sampled = model.generate(context, max_new_tokens=20, sample=True)[0].tolist()
    print(len(sampled), all(0 <= i < vocab_size for i in sampled))


if __name__ == "__main__":
    main()
