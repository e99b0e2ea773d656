"""benchmarks/run.py runs end to end: a quick pass over a few contenders and sections prints the
table and writes its JSON. No timing is asserted (the machine may be busy); only that every
selected contender was measured and the performance targets were checked."""

import json
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


def run_benchmarks(*arguments: str, json_path: Path) -> tuple[str, dict]:
    finished = subprocess.run([sys.executable, str(RUN), "--quick", "--json", str(json_path),
                               *arguments], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    return finished.stdout, json.loads(json_path.read_text())


def test_symgrad_and_numpy_train_infer_gemm_and_sharing(tmp_path):
    stdout, results = run_benchmarks("--only", "symgrad,numpy", "--sections",
                                     "train,inference,gemm,sharing",
                                     json_path=tmp_path / "run.json")

    table = results["table"]
    assert set(table) == {"train_64", "train_256", "infer_1", "infer_64"}
    assert set(table["train_64"]) == {"symgrad", "symgrad_loop", "eager", "numpy"}
    assert set(table["infer_1"]) == {"symgrad", "eager", "numpy"}
    assert all(seconds > 0 for column in table.values() for seconds in column.values())
    assert "symgrad compiled" in stdout and "numpy by hand" in stdout
    assert "PyTorch" not in stdout  # not selected

    assert len(results["gemm"]) == 7 and all(row["symgrad_gflops"] > 0 for row in results["gemm"])
    assert set(results["sharing"]) == {"symgrad", "numpy"}
    checked = {check["target"] for check in results["targets"]}
    assert "train B=64: 1.5x faster than numpy" in checked
    assert "sharing: compiled step slows by at most 2x" in checked
    assert not any("JAX" in target for target in checked)  # JAX was not measured


def test_wait_before_step_one_in_a_fresh_process(tmp_path):
    _, results = run_benchmarks("--only", "numpy", "--sections", "wait",
                                json_path=tmp_path / "run.json")

    assert set(results["table"]) == {"wait"}
    assert 0 < results["table"]["wait"]["numpy"] < 60
    assert "import runtime loads neither sympy nor llvmlite" in {
        check["target"] for check in results["targets"]}


def test_an_unknown_contender_is_refused(tmp_path):
    finished = subprocess.run([sys.executable, str(RUN), "--only", "tensorflow"],
                              capture_output=True, text=True)

    assert finished.returncode == 2
    assert "choose from symgrad, numpy" in finished.stderr
