"""The ``aif`` command's handling of user errors, its version, and its T-maze summary at edge settings."""

import contextlib
import os
import subprocess

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import aif  # noqa: E402
from aif.cli import main, tmaze_summary_lines  # noqa: E402
from aif.envs import summarize_tmaze  # noqa: E402


def run_failing(argv, capsys):
    """Run ``aif argv``, expecting a usage error: returns the one line printed on stderr."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing ran: no trial was told
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (["demo", "tmaze", "--seed", "-1"], "argument --seed: must be a non-negative integer, got -1"),
    (["demo", "tmaze", "--seed", "one"], "argument --seed: must be a non-negative integer, got 'one'"),
    (["demo", "gridworld", "--slip", "2"], "argument --slip: must lie in [0, 1], got 2"),
    (["demo", "gridworld", "--slip", "nan"], "argument --slip: must lie in [0, 1], got nan"),
    (["demo", "tmaze", "--cue-validity", "-0.1"], "argument --cue-validity: must lie in [0, 1], got -0.1"),
    (["demo", "cue-chaining", "--steps", "0"], "argument --steps: must be a positive integer, got 0"),
])
def test_bad_arguments_are_one_line_and_exit_code_2(argv, message, capsys):
    line = run_failing(argv, capsys)
    assert line == f"aif demo {argv[1]}: error: {message} (see aif demo {argv[1]} --help)"


def test_out_that_is_a_file_or_cannot_be_created(tmp_path, capsys):
    a_file = tmp_path / "figures.png"
    a_file.write_bytes(b"")
    line = run_failing(["demo", "tmaze", "--out", str(a_file)], capsys)
    assert line.startswith(f"aif: error: --out {a_file} is a file, not a folder")
    below_a_file = a_file / "figs"
    line = run_failing(["demo", "tmaze", "--out", str(below_a_file)], capsys)
    assert line.startswith(f"aif: error: --out {below_a_file} cannot be created: ")
    assert not below_a_file.exists()


@contextlib.contextmanager
def read_only(folder):
    """Make ``folder`` refuse new files, for root too (root ignores permission bits: the immutable attribute)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: no way to make a folder read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_read_only_out_is_refused_before_any_trial(tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    with read_only(folder):
        line = run_failing(["demo", "tmaze", "--trials", "1000", "--out", str(folder)], capsys)
    assert line.startswith(f"aif: error: --out {folder} is not writable: ")
    assert list(folder.iterdir()) == []


def test_a_setting_the_library_refuses_is_one_line(capsys):
    # 5 moves over 14 steps: 6e9 policies, refused by the policy budget before anything is allocated.
    line = run_failing(["demo", "gridworld", "--horizon", "14"], capsys)
    assert line.startswith("aif: error: ") and "max_bytes" in line


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"aif {aif.__version__}\n"


# ---------------------------------------------------------------- the T-maze summary at edge settings

def summary(locations, conditions, rewards, steps=3, reward_prob=0.98, cue_validity=1.0):
    s = summarize_tmaze(np.array(locations), np.array(conditions), np.array(rewards, dtype=float))
    return tmaze_summary_lines(s, steps, reward_prob, cue_validity)


def test_summary_says_when_no_arm_was_entered(capsys):
    # One step: the agent goes to the cue and has no step left for an arm.
    assert main(["demo", "tmaze", "--steps", "1", "--trials", "3"]) == 0
    text = capsys.readouterr().out
    assert "went to the cue first in 100%; no trial entered an arm within 1 step(s)." in text
    assert "0%" not in text.replace("100%", "")


def test_summary_rates_are_over_the_trials_that_entered_an_arm():
    # Trial 0: cue, then the condition's (right) arm, rewarded; trial 1: straight to the wrong arm, loss;
    # trial 2: stays in the centre.
    lines = summary([[0, 3, 1, 1], [0, 2, 2, 2], [0, 0, 0, 0]], [0, 0, 1], [[0, 1, 1], [-1, -1, -1], [0, 0, 0]])
    assert lines[0] == ("Over 3 trial(s): went to the cue first in 33%; 2 entered an arm; of those, 50% entered "
                        "the condition's arm first and 50% were rewarded on the first arm entered.")
    assert lines[1] == ("(The condition's arm pays with p = 0.98, the other arm with p = 0.02; "
                        "the cue shows the condition's arm.)")


@pytest.mark.parametrize("reward_prob, cue_validity, expected", [
    (0.98, 0.5, "the cue is uninformative (validity 0.5)"),
    (0.98, 0.0, "the cue always shows the other arm"),
    (0.98, 0.8, "the cue shows the condition's arm with p = 0.8"),
    (0.0, 1.0, "The condition's arm pays with p = 0.0, the other arm with p = 1;"),
])
def test_summary_says_what_the_cue_and_the_arms_mean(reward_prob, cue_validity, expected):
    # At reward probability 0 the condition's arm is the losing one: entering the other arm is rewarded.
    lines = summary([[0, 2, 2, 2]], [0], [[1, 1, 1]], reward_prob=reward_prob, cue_validity=cue_validity)
    assert "0% entered the condition's arm first and 100% were rewarded" in lines[0]
    assert expected in lines[1]
