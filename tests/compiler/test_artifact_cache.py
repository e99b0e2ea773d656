"""The artifact cache: a compilation done once is loaded, never redone, and never stale or trusted
when damaged."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import compiler
import runtime
from compiler import artifact_cache, pipeline
from compiler import train_step as train_step_module


class SmallNet(runtime.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.flatten = runtime.nn.Flatten()
        self.stack = runtime.nn.Sequential(runtime.nn.Linear(12, 16), runtime.nn.ReLU(),
                                           runtime.nn.Linear(16, 3))

    def forward(self, x):
        return self.stack(self.flatten(x))


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SYMGRAD_ARTIFACT_CACHE", raising=False)
    return tmp_path


def _data():
    runtime.manual_seed(3)
    return runtime.randn(8, 3, 4), runtime.randint(0, 3, (8,))


def _step(momentum: float = 0.9, seed: int = 0):
    runtime.manual_seed(seed)
    model = SmallNet()
    optimizer = runtime.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)
    step = compiler.compile_train_step(model, runtime.nn.CrossEntropyLoss(), optimizer,
                                       example_inputs=_data())
    return step, model


def _train(step, model, steps: int = 3):
    x, y = _data()
    losses = [step(x, y).item() for _ in range(steps)]
    return losses, [p.detach().numpy().copy() for p in model.parameters()]


def _refuse(*args, **kwargs):
    raise AssertionError("a cache hit must not differentiate or generate code")


def test_a_second_compilation_loads_the_first_and_trains_identically(cache_dir, monkeypatch):
    first, first_model = _step()
    assert not first.from_cache
    assert len(artifact_cache.stored_keys()) >= 1
    monkeypatch.setattr(pipeline, "grad", _refuse)
    monkeypatch.setattr(train_step_module, "build_native_to_keep", _refuse)
    second, second_model = _step()
    assert second.from_cache, "the same model, optimizer and symgrad should hit the cache"
    losses, params = _train(first, first_model)
    cached_losses, cached_params = _train(second, second_model)
    assert losses == cached_losses
    for expected, got in zip(params, cached_params):
        np.testing.assert_array_equal(got, expected)


def test_an_optimizer_option_that_changes_the_code_misses(cache_dir):
    _step(momentum=0.9)
    step, _ = _step(momentum=0.5)
    assert not step.from_cache, "momentum is compiled in: another value must compile afresh"


def test_other_symgrad_source_misses(cache_dir, monkeypatch):
    _step()
    monkeypatch.setattr(artifact_cache, "environment_key", lambda: "another symgrad")
    step, _ = _step()
    assert not step.from_cache, "an entry made by other source code must never be loaded"


def test_the_environment_key_covers_source_versions_and_cpu():
    key = artifact_cache.environment_key()
    assert len(key) == 64
    root = Path(artifact_cache.__file__).resolve().parents[1]
    assert (root / "runtime" / "ops" / "elementwise.py").is_file()  # what source_fingerprint reads


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "empty", "wrong format"])
def test_a_damaged_entry_is_ignored_and_replaced(cache_dir, damage):
    expected, _ = _train(*_step())
    paths = list((cache_dir / "artifacts").glob("*.artifact"))
    assert paths
    for path in paths:
        data = bytearray(path.read_bytes())
        if damage == "flip a byte":
            data[len(data) // 2] ^= 0xFF
        elif damage == "truncate":
            data = data[: len(data) - 7]
        elif damage == "empty":
            data = bytearray()
        else:
            data = bytearray(b"something else entirely\n") + data
        path.write_bytes(bytes(data))
        assert artifact_cache.load(path.stem) is None
    step, model = _step()
    assert not step.from_cache
    assert _train(step, model)[0] == expected
    again, _ = _step()
    assert again.from_cache, "the damaged entry should have been replaced by a good one"


def test_an_entry_whose_object_does_not_link_is_compiled_afresh(cache_dir):
    expected, _ = _train(*_step())
    for key in artifact_cache.stored_keys():
        artifact = artifact_cache.load(key)
        if "native" in artifact.objects:
            artifact.objects["native"] = b"not an object file"
            artifact_cache.store(key, artifact)
    step, model = _step()
    assert not step.from_cache
    assert _train(step, model)[0] == expected


def test_graph_key_tells_graphs_apart_exactly():
    """Constants of more than four elements print as `<float32 array [5]>`: the key reads them."""
    x = runtime.randn(4, 5)

    def scaled(factor):
        weights = runtime.ones(5) * factor
        return compiler.trace(lambda t: t * weights, (x,))

    assert artifact_cache.graph_key(scaled(2.0)) == artifact_cache.graph_key(scaled(2.0))
    assert str(scaled(2.0)) == str(scaled(2.5))
    assert artifact_cache.graph_key(scaled(2.0)) != artifact_cache.graph_key(scaled(2.5))


def test_exact_text_refuses_what_it_cannot_render():
    assert artifact_cache.exact_text((0.1, (1, "a"), None)) is not None
    assert artifact_cache.exact_text(0.1) != artifact_cache.exact_text(float(np.nextafter(0.1, 1)))
    changed = np.zeros(1000)
    changed[500] = 1
    assert artifact_cache.exact_text(np.zeros(1000)) != artifact_cache.exact_text(changed)
    assert artifact_cache.exact_text(object()) is None


def test_the_cache_can_be_turned_off(cache_dir, monkeypatch):
    monkeypatch.setenv("SYMGRAD_ARTIFACT_CACHE", "0")
    _step()
    step, _ = _step()
    assert not step.from_cache
    assert not (cache_dir / "artifacts").exists()


def test_a_fresh_process_with_every_cache_file_damaged_still_trains(cache_dir):
    """Kernels and steps alike: a process that finds only damaged files compiles and is right."""
    script = """
import numpy as np, runtime, compiler
runtime.manual_seed(0)
model = runtime.nn.Sequential(runtime.nn.Linear(6, 40), runtime.nn.ReLU(), runtime.nn.Linear(40, 2))
optimizer = runtime.optim.SGD(model.parameters(), lr=0.1)
x, y = runtime.randn(64, 6), runtime.randint(0, 2, (64,))
step = compiler.compile_train_step(model, runtime.nn.CrossEntropyLoss(), optimizer, (x, y))
print(step.from_cache, step(x, y).item())
"""

    def run() -> tuple[str, float]:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=True)
        hit, loss = done.stdout.split()
        return hit, float(loss)

    assert run()[0] == "False"
    hit, loss = run()
    assert hit == "True"
    for path in (cache_dir / "artifacts").glob("*.artifact"):
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))
    assert run() == ("False", loss)


def _compiled_run(seed: int = 0):
    """compile(): an inference call, then forward + backward; the results and the gradients."""
    runtime.manual_seed(seed)
    model = SmallNet()
    x, y = _data()
    fast = compiler.compile(model, (x,))
    with runtime.no_grad():
        inference = fast(x).numpy().copy()
    loss = runtime.nn.CrossEntropyLoss()(fast(x), y)
    loss.backward()
    return fast, inference, loss.item(), [p.grad.numpy().copy() for p in model.parameters()]


def test_compile_loads_inference_and_training_functions_from_the_cache(cache_dir, monkeypatch):
    compile_module = importlib.import_module("compiler._compile")
    _, inference, loss, grads = _compiled_run()
    monkeypatch.setattr(pipeline, "grad", _refuse)
    monkeypatch.setattr(compile_module, "build_native_to_keep", _refuse)
    monkeypatch.setattr(compile_module, "build_natives_to_keep", _refuse)
    fast, cached_inference, cached_loss, cached_grads = _compiled_run()
    assert fast.compilations == 3  # inference, forward and backward: loaded, not built
    np.testing.assert_array_equal(cached_inference, inference)
    assert cached_loss == loss
    for expected, got in zip(grads, cached_grads):
        np.testing.assert_array_equal(got, expected)


def test_compile_with_damaged_artifacts_builds_afresh(cache_dir):
    expected = _compiled_run()[1:]
    for path in (cache_dir / "artifacts").glob("*.artifact"):
        path.write_bytes(path.read_bytes()[:-1])
    _, inference, loss, grads = _compiled_run()
    np.testing.assert_array_equal(inference, expected[0])
    assert loss == expected[1]


def test_graph_key_reads_fused_bodies():
    """After fusion two graphs can differ only in a kernel's expression."""
    x = runtime.randn(4, 5)

    def fused(factor):
        return compiler.simplify(compiler.trace(lambda t: runtime.exp(runtime.tanh(t) * factor),
                                                (x,)))

    assert [n.op_name for n in fused(2).nodes] == ["fused"]
    assert artifact_cache.graph_key(fused(2)) == artifact_cache.graph_key(fused(2))
    assert artifact_cache.graph_key(fused(2)) != artifact_cache.graph_key(fused(3))


def test_the_graph_of_a_cached_step_is_built_when_read(cache_dir):
    first, _ = _step()
    second, _ = _step()
    assert second.from_cache
    assert second._graph is None, "a hit builds no graph until someone reads it"
    assert str(second.graph) == str(first.graph)


def _planted_gemm_artifact(cache_key: str) -> bytes:
    """What someone without the user's key could plant: a kernel entry whose threaded GEMM
    returns at once (so a model using it would compute garbage), sealed with a key of their own
    and otherwise exactly as symgrad writes entries."""
    from llvmlite import ir

    from compiler import cache_folder, native_build
    from compiler.lowering.target import compile_object

    _, exports = native_build._kernel_parts_ir("float32")["gemm_float32"]
    real = native_build._kernel_parts_ir("float32")["gemm_float32"][0]
    module = ir.Module(name="planted")
    function = ir.Function(module, real.globals[exports[0]].function_type, name=exports[0])
    ir.IRBuilder(function.append_basic_block()).ret_void()
    planted = artifact_cache.Artifact({"exports": exports}, {"object": compile_object(module)})
    return cache_folder.seal(b"another writer's key".ljust(32, b"\0"), artifact_cache.KIND,
                             cache_key, artifact_cache.encode(planted))


def test_a_kernel_entry_planted_by_another_writer_is_refused_and_rebuilt(cache_dir):
    from compiler import native_build

    key = native_build._kernel_key("gemm_float32")  # kernel keys can be computed in advance
    path = artifact_cache.path_of(key)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    planted = _planted_gemm_artifact(key)
    path.write_bytes(planted)
    script = """
import numpy as np, runtime, compiler
runtime.manual_seed(0)
model = runtime.nn.Linear(32, 48)
x = runtime.randn(64, 32)
with runtime.no_grad():
    got = compiler.compile(model, (x,))(x).numpy()
expected = x.numpy() @ model.weight.detach().numpy().T + model.bias.detach().numpy()
print(float(np.max(np.abs(got - expected))))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert float(done.stdout) < 1e-4, "the planted kernel ran: its outputs are wrong"
    assert path.read_bytes() != planted, "the planted entry should have been rebuilt"
    assert artifact_cache.load(key) is not None, "the rebuilt entry should be the user's own"


def test_distinct_compilations_keep_the_cache_under_its_cap(cache_dir, monkeypatch):
    """Each compile adds entries; past the cap the least recently used go, so the folder stops
    growing (it used to grow by ~60 KiB per distinct compile, for ever)."""
    from compiler import cache_folder

    monkeypatch.setenv("SYMGRAD_CACHE_MAX_BYTES", "96K")
    monkeypatch.setattr(cache_folder, "_estimated_bytes", {})
    sizes = []
    for hidden in (5, 6, 7, 8):
        runtime.manual_seed(hidden)
        model = runtime.nn.Sequential(runtime.nn.Linear(4, hidden), runtime.nn.Tanh(),
                                      runtime.nn.Linear(hidden, 2))
        x = runtime.randn(3, 4)
        fast = compiler.compile(model, (x,))
        fast(x).sum().backward()
        sizes.append(cache_folder.usage().bytes)
    assert max(sizes) <= 96 * 1024, f"cache sizes after each compile: {sizes}"
    assert cache_folder.usage().entries > 0, "trimming should keep the most recent entries"
