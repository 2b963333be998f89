"""benchmarks/bench_compile.py: its --quick mode runs and reports sane numbers, it works without a C++ compiler, and
the training steps it times are the library's (``TDRun.update``, ``ModelRun.update``)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_compile.py"


def run_script(tmp_path, *args, env=None):
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out), *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text()), proc.stdout


def test_quick_mode_reports_every_variant(tmp_path):
    # aot_eager: dynamo and AOTAutograd trace the loss and its backward, without inductor's C++ build (tens of
    # seconds on a loaded CPU); the inductor rows are the benchmark's, run by hand.
    data, stdout = run_script(tmp_path, "--backend", "aot_eager")
    train = {r["variant"]: r for r in data["rows"] if "case" in r}
    assert set(train) == {"eager", "bf16 autocast", "compile loss (default)"}
    for r in train.values():
        assert r["steps"] == 13 and r["cpu"] > 0 and r["wall"] > 0 and r["speed_cpu"] > 0
    assert train["eager"]["d1"] == 0.0 and train["eager"]["speed_cpu"] == 1.0
    assert train["compile loss (default)"]["d1"] < 1e-6  # same weights and batch: the same loss
    assert train["compile loss (default)"]["dn"] < 1e-4
    assert train["compile loss (default)"]["graphs"].startswith("1 graphs, 0 breaks")
    assert 0 < train["bf16 autocast"]["d1"] < 0.05  # bf16 rounds: near, not equal
    ev = {r["variant"]: r for r in data["rows"] if "size" in r}
    assert set(ev) == {"float64 (default)", "float32", "float32, bf16 autocast", "bfloat16 model"}
    assert ev["float64 (default)"]["err_G"] == 0.0
    assert 0 < ev["float32"]["rel_G"] < 1e-5 and ev["float32"]["err_q"] < 1e-5
    assert 1e-4 < ev["bfloat16 model"]["rel_G"] < 0.1  # bf16's 8-bit mantissa: ~1e-2 of G
    assert "| ModelLearning step" in stdout and "| 125 x 4 | float32 |" in stdout


@pytest.fixture(scope="module")
def bench():
    before = os.environ.get("TORCHINDUCTOR_COMPILE_THREADS")
    spec = importlib.util.spec_from_file_location("bench_compile", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_compile"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["bench_compile"]
        if before is None:  # the script's setting for itself; leave the test process as it was
            os.environ.pop("TORCHINDUCTOR_COMPILE_THREADS", None)
    return module


def test_without_a_compiler_the_compiled_rows_are_skipped(bench, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    # in this process: nothing is compiled; the torch threads and inductor's cache folder are left as they are
    rows = bench.main(["--quick", "--no-evaluator", "--threads", "0", "--warm-cache", "--steps", "3"])
    assert [r["variant"] for r in rows] == ["eager", "bf16 autocast"]
    assert "- no C++ compiler ('/nonexistent/c++' not found): torch.compile rows skipped" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["td", "model"])
def test_timed_step_is_the_library_update(bench, case):
    make = {"td": bench.td_trainee, "model": bench.model_trainee}[case]

    def params(run):
        if case == "td":
            return [*run.qf.parameters(), *run.ensemble.parameters(), *run.target.parameters()]
        return [*run.model.transition.parameters(), *run.model.outcome.parameters()]

    trainee, mine = make(True)
    _, library = make(True)
    before = [p.detach().clone() for p in params(mine)]
    for i in range(3):  # the bench's batch i is the library's i-th draw from the same rng
        bench.train_step(trainee, i, False)
        library.update()
    with torch.no_grad():
        assert max(float((p - q).abs().max()) for p, q in zip(params(mine), before, strict=True)) > 1e-4
        assert all(torch.equal(p, q) for p, q in zip(params(mine), params(library), strict=True))
