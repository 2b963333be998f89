"""benchmarks/minigrid_summary.py: runs labelled by the options that change their agent (map-sac's information gain
and hindsight), episodes to a 20-episode success rate of 0.9, and the CPU time per step the run recorded."""

import json


def test_map_sac_runs_are_labelled_and_timed(tmp_path, capsys, load_script):
    summary = load_script("benchmarks/minigrid_summary.py")
    settings = ("Settings(env='MiniGrid-FourRooms-v0', episodes=40, td=TDLearning(lr=0.0005, discount=0.99, "
                "hard_min=False, n_step=3, twin=True, train_every=4), info_gain=0.1, info_gain_baseline=0.0, "
                "alpha=0.01, target_entropy=None, alpha_lr=0.0003, floor=0.05, hindsight=4)")
    # 20 failures (100 steps each), then 20 successes in 10 steps (return 1 - 0.9 * 10 / 100)
    returns = [0.0] * 20 + [0.91] * 20
    run = {"agent": "map-sac", "seed": 0, "returns": returns, "goal": [r > 0 for r in returns], "wall_s": 10.0,
           "cpu_s": 2.2, "success_return": 0.1}
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"settings": settings, "runs": [run]}))
    summary.main([str(path)])
    row = capsys.readouterr().out.splitlines()[-1]
    assert "`map-sac --info-gain 0.1 --target-entropy 0 --floor 0.05 --n-step 3 --twin --hindsight 4`" in row
    # 18 of the last 20 at episode 38, after 2,000 + 180 steps; 2.2 s of CPU over 2,200 steps
    assert "| 38 (2,180) |" in row and "| 2,200 | 10 s (2 s, 1.0 ms/step) |" in row
    # a task's own budget overrides --budget: the first 20 episodes alone never reach 0.9
    summary.main([str(path), "--budget", "20"])
    assert "| 20 | 0.00 | not reached |" in capsys.readouterr().out
    summary.main([str(path), "--budget", "20", "--budget-for", "MiniGrid-FourRooms-v0=40"])
    assert "| 38 (2,180) |" in capsys.readouterr().out
