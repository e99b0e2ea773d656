"""SYMGRAD_CPU_FEATURES: code for a lower ISA than the host's (an AVX2 machine's on an AVX-512
host) is built, run and checked, so both code paths are tested on whichever host runs the suite."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.lowering.target import with_feature_edits

ROOT = Path(__file__).resolve().parents[3]


def test_turning_avx512f_off_turns_off_what_needs_it():
    host = "+avx2,+fma,+avx512f,+avx512bw,+avx512vl,+evex512,+sse4.2"
    edited = with_feature_edits(host, "-avx512f").split(",")
    assert "-avx512f" in edited and "-avx512bw" in edited and "-avx512vl" in edited
    assert "-evex512" in edited and "+avx2" in edited and "+fma" in edited


def test_no_edits_keep_the_features_and_a_bad_edit_is_named():
    assert with_feature_edits("+avx2,-avx512f", "") == "+avx2,-avx512f"
    assert with_feature_edits("+avx2", "+fma").split(",") == ["+avx2", "+fma"]
    with pytest.raises(ValueError, match="'avx512f' is not \\+feature or -feature"):
        with_feature_edits("+avx2", "avx512f")


_PROBE = """
import llvmlite.binding as llvm
import runtime as torch, compiler
from compiler.lowering import gemm, target
from compiler.native_build import _lower
from compiler.passes import simplify

assert not target.host_has_feature("avx512f")
assert gemm.gemm_config("float32").lanes == 8  # the 256-bit tile
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(16, 40), torch.nn.Tanh(), torch.nn.Linear(40, 3))
x = torch.randn(33, 16)
fast = compiler.compile(model, (x,))
with torch.no_grad():
    assert torch.allclose(fast(x), model(x), atol=1e-5)
module, _ = _lower(simplify(compiler.trace(model, (x,))), False)
ref = target.parse_module(str(module), target.host_target_machine())
target.optimize(ref)
assembly = target.host_target_machine().emit_assembly(ref)
assert "ymm" in assembly and "zmm" not in assembly, "AVX-512 registers in AVX2 code"
print("ok")
"""


def test_code_built_without_avx512_runs_and_uses_no_avx512_registers(tmp_path):
    env = {**os.environ, "SYMGRAD_CPU_FEATURES": "-avx512f", "SYMGRAD_CACHE_DIR": str(tmp_path),
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
