"""``examples/pymdp_demos.py``: pymdp 1.0's demo notebooks run by pymdp and by aif agree where pymdp defines the number.

pymdp 1.0's JAX compilation is nearly all of the time (seconds per demo), so the test runs the demo whose pymdp
side is fewest compiled calls: the complex action dependency notebook's first model (flattened B, prior, posterior,
q(pi) and the action per control). The inductive example's I, G and q(pi) are checked against pymdp by
``tests/test_inductive.py``. The other demos run the same helpers (``replay``, ``max_diff``) on pymdp's episodes:
``python examples/pymdp_demos.py --quick`` runs them all.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("pymdp")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pymdp_demos.py"
TESTED = ["action-dependency"]


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("pymdp_demos_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def test_quick_demos_agree_with_pymdp(example, capsys):
    rows = example.main(["--quick", *[arg for name in TESTED for arg in ("--demo", name)]])
    print(capsys.readouterr().out)
    assert {r.demo for r in rows} == set(TESTED)
    compared = [r for r in rows if r.diff is not None]
    # every number pymdp defines here: B, prior and posterior, and q(pi) of the notebook's first action structure
    assert len(compared) == 3
    for row in compared:
        assert row.diff < 1e-8, f"{row.demo}: {row.what} differs from pymdp's by {row.diff:.1e}"
    assert not any(r.note for r in rows)  # no difference to explain
    moves = [r for r in rows if r.what.endswith("action per control")]
    assert len(moves) == 1 and all(r.aif == r.pymdp for r in moves)  # the same action per control


def test_unknown_demo_is_refused(example, capsys):
    with pytest.raises(SystemExit):
        example.main(["--demo", "tmaze"])
    assert "unknown demo 'tmaze'" in capsys.readouterr().err
