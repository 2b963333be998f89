"""benchmarks/mountaincar_checks.py's ``starts``: the first flags of two agents over paired seeds and the exact tests
cited by benchmarks/results/mountaincar.md."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("gymnasium")
pytest.importorskip("scipy")


@pytest.fixture
def checks(load_script):
    return load_script("benchmarks/mountaincar_checks.py")


def _runs(firsts: list[int], episodes: int = 10) -> dict[int, np.ndarray]:
    """Returns per seed whose first episode above -200 is ``firsts[seed]`` (0: none)."""
    runs = {}
    for seed, f in enumerate(firsts):
        r = np.full(episodes, -200.0)
        if f:
            r[f - 1:] = -120.0
        runs[seed] = r
    return runs


def test_starts_counts_the_seeds_that_never_reach_the_flag_and_tests_them(checks):
    a = _runs([2] * 12)
    b = _runs([2, 0, 3, 0, 2, 0, 2, 0, 0, 2, 0, 0])  # 7 of 12 never reach it
    c = checks.compare_starts(a, b)
    assert c["seeds"] == list(range(12)) and c["episodes"] == 10
    assert c["first_b"].tolist() == [2, 0, 3, 0, 2, 0, 2, 0, 0, 2, 0, 0]
    assert (c["never_a"], c["never_b"], c["only_a"], c["only_b"]) == (0, 7, 0, 7)
    assert c["mcnemar"] == pytest.approx(2 * 0.5 ** 7)  # all 7 discordant seeds one way
    assert c["fisher"] == pytest.approx(2 * 792 / 346104)  # 0 of 12 against 7: 2 C(12, 7) / C(24, 7), symmetric
    assert c["mean_a"][0] == pytest.approx((-200 - 9 * 120) / 10) and c["mean_b"][1] == -200.0
    assert c["ci_a"][0] == 0.0 and c["ci_a"][1] == pytest.approx(1 - 0.025 ** (1 / 12))  # Clopper-Pearson, 0 of 12
    assert c["ci_b"][0] < 7 / 12 < c["ci_b"][1]
    assert c["wilcoxon"] < 0.05  # a higher on the 8 seeds that differ, equal on the 4 others
    # the same counts both ways round give no evidence; only the shared seeds and episodes count
    c = checks.compare_starts(_runs([0, 2, 2]), _runs([2, 0, 2, 2], episodes=12))
    assert (c["seeds"], c["episodes"], c["only_a"], c["only_b"]) == ([0, 1, 2], 10, 1, 1)
    assert c["mcnemar"] == pytest.approx(1.0) and c["fisher"] == pytest.approx(1.0)


def test_starts_reads_save_files(tmp_path, capsys, checks):
    np.savez(tmp_path / "w1.npz", **{f"A|{s}": r for s, r in _runs([2, 2, 4]).items()})
    np.savez(tmp_path / "w0.npz", **{f"B|{s}": r for s, r in _runs([2, 0, 0]).items()})
    checks.starts(str(tmp_path / "w1*.npz"), str(tmp_path / "w0*.npz"))
    out = capsys.readouterr().out
    assert "B: never reached the flag in 10 episodes on 2 of 3 seeds (1, 2)" in out
    assert "A: never reached the flag in 10 episodes on 0 of 3 seeds" in out
    assert "McNemar p = 0.5" in out
    with pytest.raises(SystemExit, match="one agent"):
        checks.starts(str(tmp_path / "*.npz"), str(tmp_path / "w0*.npz"))


def test_starts_reads_logs_with_the_flags_the_runs_counted(tmp_path, capsys, checks):
    """A flag on an episode's last step scores -200: the log's count of it is used, not the returns."""
    lines = {"A": [(0, [-200, -200, -150], 2), (1, [-200, -120, -110], 2)],
             "B": [(0, [-200, -130, -120], 2), (1, [-200, -200, -200], None)]}
    for name, runs in lines.items():
        text = ""
        for seed, returns, flag in runs:
            text += "".join(f"    {name} seed {seed} episode {e + 1}: return {r}, highest position 0.1, planned "
                            f"epistemic value 0.000 per model step, model loss 0.1, 3 s\n"
                            for e, r in enumerate(returns))
            text += f"  done: {name} seed {seed}: flag first reached in episode {flag or 'not reached'} and in ...\n"
        (tmp_path / f"{name}.log").write_text(text)
    name, returns, flags = checks._returns(str(tmp_path / "A.log"))
    assert name == "A" and flags == {0: 2, 1: 2} and returns[0].tolist() == [-200, -200, -150]
    checks.starts(str(tmp_path / "A.log"), str(tmp_path / "B.log"))
    out = capsys.readouterr().out
    assert "seed   0: A  2  -183.3 | B  2  -150.0" in out  # seed 0 of A: episode 2 reached the flag on step 200
    assert "B: never reached the flag in 3 episodes on 1 of 2 seeds (1)" in out
