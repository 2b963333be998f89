"""benchmarks/minigrid_amortise.py: the planner's labelled episodes, a DAgger round and the network alone, tiny."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("minigrid")


def test_tiny_run_clones_labels_and_scores_the_network(load_script):
    out = load_script("benchmarks/minigrid_amortise.py").main(
        ["--env", "MiniGrid-Empty-5x5-v0", "--demos", "2", "--rounds", "1", "--round-episodes", "1", "--eval", "2",
         "--fit-steps", "200", "--hidden", "16"])
    # the planner's two episodes and the network's one are labelled (an Empty-5x5 episode takes 4-12 steps)
    assert len(out["rounds"]) == 1 and 3 * 4 <= out["labels"] <= 3 * 100
    assert 0.0 <= out["eval_goal"] <= 1.0 and out["eval_steps"] >= 4 and out["cpu_s"] > 0
