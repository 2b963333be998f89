"""Every notebook in notebooks/ runs top to bottom in a fresh kernel, with small settings (AIF_SMOKE=1).

The notebooks check their own claims with ``assert`` cells, so a notebook whose prose no longer matches what
the library computes fails here. Each one runs in a temporary copy, so the committed outputs are untouched.
"""

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_from_a_fresh_kernel(path, tmp_path, monkeypatch):
    monkeypatch.setenv("AIF_SMOKE", "1")  # the kernel inherits this process's environment
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, on the first failing cell
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), f"{path.name}: a code cell did not run"
    assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_with_figures_and_hidden_answers(path):
    nb = nbformat.read(path, as_version=4)
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                 for o in c.get("outputs", []))
    assert images >= 2, f"{path.name} is committed with {images} figures; run it and save its outputs"
    hidden = [c for c in nb.cells if c.get("metadata", {}).get("jupyter", {}).get("source_hidden")]
    assert hidden, f"{path.name} has no exercise answers in a collapsed cell"
    assert path.stat().st_size < 1_500_000, f"{path.name} is {path.stat().st_size} bytes; keep figures small"
