"""A character-level GPT (benchmarks/gpt.py's `char_gpt`: embeddings, causal self-attention in
both its forms, LayerNorm, a GELU MLP, a head tied to the token embedding) through the whole
compiler: `compile` for training and no-grad inference, `compile_train_step` with AdamW and SGD,
`export` to C with int64 token ids in and logits out, and `explain`. Everything equals eager
symgrad (float64 tight, float32 within tolerance) and PyTorch with the same weights."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import compiler
import runtime

_SPEC = importlib.util.spec_from_file_location(
    "gpt_benchmark", Path(__file__).resolve().parents[2] / "benchmarks" / "gpt.py")
gpt = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = gpt  # dataclasses look their module up while the class is made
_SPEC.loader.exec_module(gpt)

CONFIG = gpt.GPTConfig(vocab=65, block=16, n_layer=2, n_head=2, n_embd=32)
CC = shutil.which("cc")
FLOAT32 = {"rtol": 2e-4, "atol": 2e-5}  # a deep float32 graph: the sums run in other orders
FLOAT64 = {"rtol": 1e-10, "atol": 1e-12}


def tokens(batch: int, seed: int, length: int = CONFIG.block) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (batch, length) and the next-token targets."""
    ids = np.random.default_rng(seed).integers(0, CONFIG.vocab, (batch, length + 1))
    return ids[:, :-1].copy(), ids[:, 1:].copy()


def make_gpt(attention: str, dtype: Any = runtime.float32) -> Any:
    runtime.manual_seed(0)
    model = gpt.char_gpt(runtime, CONFIG, attention).eval()
    for name, p in model.named_parameters():  # GPT-2's initialisation: logits of a sane size
        if name.endswith("weight") and p.dim() == 2:
            with runtime.no_grad():
                runtime.nn.init.normal_(p, 0.0, 0.02)
    return model.to(dtype)


def twin(model: Any) -> Any:
    """A copy of `model` with the same weights (its tying too)."""
    other = gpt.char_gpt(runtime, CONFIG, _attention(model)).eval().to(model.wte.weight.dtype)
    gpt.copy_weights(model, other, runtime)
    return other


def _attention(model: Any) -> str:
    return "masked" if hasattr(model.h[0].attn, "bias") else "sdpa"


def loss_and_gradients(model: Any, forward: Any, x: np.ndarray, y: np.ndarray
                       ) -> tuple[float, dict[str, np.ndarray]]:
    model.zero_grad()
    loss = gpt.gpt_loss(runtime)(forward(runtime.tensor(x)), runtime.tensor(y))
    loss.backward()
    return loss.item(), {n: p.grad.numpy().copy() for n, p in model.named_parameters()}


@pytest.mark.parametrize(("attention", "dtype", "tolerance"),
                         [("sdpa", runtime.float32, FLOAT32), ("masked", runtime.float64, FLOAT64)])
def test_compiled_training_and_inference_equal_eager(attention, dtype, tolerance):
    model = make_gpt(attention, dtype)
    x, y = tokens(2, seed=1)
    compiled = compiler.compile(model, (runtime.tensor(x),))
    for batch, seed in ((2, 1), (3, 2)):  # one compilation for every batch size
        x, y = tokens(batch, seed)
        loss, grads = loss_and_gradients(model, compiled, x, y)
        eager_loss, eager_grads = loss_and_gradients(model, model, x, y)
        assert loss == pytest.approx(eager_loss, rel=tolerance["rtol"])
        assert set(grads) == set(eager_grads) and "lm_head.weight" not in grads  # tied: one
        for name in grads:
            np.testing.assert_allclose(grads[name], eager_grads[name], **tolerance,
                                       err_msg=f"{attention}: gradient of {name}")
        with runtime.no_grad():
            logits = compiled(runtime.tensor(x))
            assert logits.grad_fn is None
            np.testing.assert_allclose(logits.numpy(), model(runtime.tensor(x)).numpy(),
                                       **tolerance)


def test_the_tied_weight_gets_the_sum_of_both_uses():
    """wte.weight is the embedding and the head: its gradient is the gradient of each use."""
    model = make_gpt("masked", runtime.float64)  # the graph of the test above: compiled once
    x, y = tokens(2, seed=3)
    compiled = compiler.compile(model, (runtime.tensor(x),))
    _, grads = loss_and_gradients(model, compiled, x, y)
    untied = twin(model)
    untied.lm_head.weight = runtime.nn.Parameter(model.wte.weight.detach().clone())
    _, parts = loss_and_gradients(untied, untied, x, y)
    np.testing.assert_allclose(grads["wte.weight"],
                               parts["wte.weight"] + parts["lm_head.weight"], **FLOAT64)


def test_compiled_model_equals_pytorch_with_the_same_weights():
    torch = pytest.importorskip("torch")
    model = make_gpt("sdpa")
    theirs = gpt.char_gpt(torch, CONFIG, "sdpa").eval()
    gpt.copy_weights(model, theirs, torch)
    x, y = tokens(2, seed=4)
    compiled = compiler.compile(model, (runtime.tensor(x),))
    loss, grads = loss_and_gradients(model, compiled, x, y)
    expected = gpt.gpt_loss(torch)(theirs(torch.tensor(x)), torch.tensor(y))
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-3, atol=1e-5,
                                   err_msg=f"gradient of {name}, compiled vs PyTorch")


@pytest.mark.parametrize("optimizer", ["AdamW", "SGD"])
def test_compiled_train_steps_equal_eager_steps(optimizer):
    model = make_gpt("masked", runtime.float64)
    reference = twin(model)
    make = {"AdamW": lambda ps: runtime.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
            "SGD": lambda ps: runtime.optim.SGD(ps, lr=0.5, momentum=0.9)}[optimizer]
    loss_fn = gpt.gpt_loss(runtime)
    eager_optimizer = make(reference.parameters())
    x, y = tokens(4, seed=5)
    xs, ys = runtime.tensor(x), runtime.tensor(y)
    step = compiler.compile_train_step(model, loss_fn, make(model.parameters()),
                                       example_inputs=(xs, ys))
    for _ in range(3):
        eager_optimizer.zero_grad()
        eager_loss = loss_fn(reference(xs), ys)
        eager_loss.backward()
        eager_optimizer.step()
        assert step(xs, ys).item() == pytest.approx(eager_loss.item(), rel=1e-10)
    assert model.lm_head.weight is model.wte.weight
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), **FLOAT64,
                                   err_msg=f"{optimizer}: {name} after 3 steps")


@pytest.mark.skipif(CC is None, reason="no C compiler (cc) on PATH")
def test_exported_library_maps_token_ids_to_the_eager_logits(tmp_path):
    model = make_gpt("sdpa")
    x, _ = tokens(3, seed=6)
    result = compiler.export(model, (runtime.tensor(x[:1]),), tmp_path / "gpt")
    assert "const int64_t *input" in result.header.read_text()
    program = tmp_path / "example"
    built = subprocess.run([CC, "-O2", "-o", str(program), "example.c", "gpt.o", "-lm",
                            "-pthread"], cwd=result.out_dir, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    x.astype(np.int64).tofile(tmp_path / "tokens.bin")
    run = subprocess.run([str(program), "tokens.bin"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    printed = np.array([[float(v) for v in line.split()] for line in run.stdout.splitlines()],
                       dtype=np.float32)
    with runtime.no_grad():
        expected = model(runtime.tensor(x)).numpy()
    np.testing.assert_allclose(printed.reshape(expected.shape), expected, **FLOAT32)


def test_explain_shows_the_attention():
    model = make_gpt("masked")
    x, y = tokens(2, seed=7)
    report = compiler.explain(model, (runtime.tensor(x), runtime.tensor(y)),
                              loss_fn=gpt.gpt_loss(runtime))
    text = str(report)
    for op in ("embedding", "embedding_backward", "softmax", "matmul", "gelu"):
        assert op in text, f"explain does not show {op}"
