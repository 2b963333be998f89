"""The T-maze seen as noisy images (aif_deep.images.NoisyTMazeImages), random-action data for it
(aif_deep.training.collect_episodes), and the example that trains a neural model on it and runs the agents."""

import importlib.util
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aif.envs import AgentWrapper, GridWorld, TMaze  # noqa: E402
from aif.errors import ModelError, ParameterError  # noqa: E402
from aif_deep.episodes import collect_episodes  # noqa: E402
from aif_deep.images import TMAZE_CELLS, NoisyGridImages, NoisyTMazeImages, cell_templates  # noqa: E402
from aif_deep.training import KLWeight  # noqa: E402

torch.set_num_threads(1)
ROOT = pathlib.Path(__file__).resolve().parents[2]
# The quick setting (one run of 600 steps on 1000 episodes, 30 trials) went to the cue first in 1.00 of the
# trials with seeds 0-3 (the full setting: 1.00 on seeds 0-14); the test runs seed 0. Its (location, context)
# accuracy once shown was 0.89-0.96 (the full setting's 0.87-0.99): with KLWeight(5) and the carried message
# detached the context belief at the arms is less sure than the reward's evidence (examples/tmaze_from_images.py).
QUICK_CUE_FIRST = 0.9
QUICK_JOINT = 0.85


def _env(flip=0.05):
    return NoisyTMazeImages(AgentWrapper(TMaze(), num_controls=[4, 1]), (9, 9), flip=flip)


def test_tmaze_images_show_location_and_cue_and_pass_the_reward():
    env = _env(flip=0.0)
    for condition in (0, 1):
        obs, info = env.reset(seed=0, options={"condition": condition})
        image, reward = obs
        assert image.shape == (9, 9) and set(np.unique(image)) <= {0, 1} and reward == 0
        assert (image == env.location_templates[0]).all()  # the centre block alone
        obs, r, _, _, info = env.step(np.array([3, 0]))  # to the cue
        # the cue location's block, and a block on the side of the baited arm (0: right, 1: left)
        side = 2 if condition == 0 else 0
        expected = np.zeros((9, 9), dtype=int)
        expected[6:9, 3:6] = 1
        expected[6:9, 3 * side: 3 * side + 3] = 1
        assert (obs[0] == expected).all() and obs[1] == 0 and info["state"] == (3, condition)
        obs, r, _, _, info = env.step(np.array([1 + condition, 0]))  # to the baited arm
        assert (obs[0] == env.location_templates[1 + condition]).all()
        assert obs[1] in (1, 2) and r == {1: 1.0, 2: -1.0}[obs[1]]
    assert env.observation_space.contains((obs[0].astype(np.int8), obs[1]))


def test_tmaze_images_flip_pixels_at_the_given_rate():
    env = _env(flip=0.1)
    rng = np.random.default_rng(0)
    location = rng.integers(4, size=2000)
    cue = rng.integers(2, size=2000)
    noisy = env.render_image(location, cue, rng)
    clean = env.clean_image(location, cue)
    assert noisy.shape == (2000, 9, 9)
    assert abs((noisy != clean).mean() - 0.1) < 0.005
    # the cue is drawn at the cue location only
    assert (clean[location != 3].sum((1, 2)) == 9).all() and (clean[location == 3].sum((1, 2)) == 18).all()


def test_cell_templates_tile_the_image():
    t = cell_templates((3, 3), (8, 8), [(r, c) for r in range(3) for c in range(3)])
    assert t.shape == (9, 8, 8) and (t.sum(0) == 1).all()
    assert set(TMAZE_CELLS) == {0, 1, 2, 3}


@pytest.mark.parametrize("make, error, match", [
    (lambda: NoisyTMazeImages(AgentWrapper(TMaze()), flip=0.7), ParameterError, r"flip must lie in \[0, 0.5\]"),
    (lambda: NoisyTMazeImages(AgentWrapper(TMaze()), image_shape=(2, 9)), ParameterError, "fewer pixels"),
    (lambda: NoisyTMazeImages(AgentWrapper(TMaze()), image_shape=(9,)), ParameterError, r"must be \(H, W\)"),
    (lambda: NoisyTMazeImages(AgentWrapper(GridWorld((3, 3)))), ModelError, r"outcomes per modality \[4, 3, 2\]"),
    (lambda: NoisyGridImages(AgentWrapper(GridWorld((3, 3))), flip=-0.1), ParameterError, "flip must lie"),
    (lambda: _env().clean_image(np.array([4]), np.array([0])), ParameterError, "locations must lie in 0..3"),
    (lambda: collect_episodes(_env(), 0, 8, np.random.default_rng(0)), ParameterError, "at least 1"),
    (lambda: KLWeight(0.0), ParameterError, "KLWeight.weight must be positive"),
])
def test_bad_arguments_raise(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_collect_episodes_records_images_rewards_actions_and_true_states():
    buffer, states = collect_episodes(_env(), 5, 6, np.random.default_rng(1))
    assert len(buffer) == 5 and buffer.num_steps == 30
    images, rewards = buffer.episodes[0][0]
    assert images.shape == (7, 9, 9) and rewards.shape == (7,) and buffer.episodes[0][1].shape == (6, 2)
    for (obs, actions, r), s in zip(buffer.episodes, states, strict=False):
        assert s.shape == (7, 2) and (s[0] == [0, s[0, 1]]).all()  # start in the centre
        assert (s[1:, 0] == actions[:, 0]).all() and (actions[:, 1] == 0).all()  # "go to u"
        assert (s[:, 1] == s[0, 1]).all()  # the context never changes
        assert ((obs[1][1:] > 0) == np.isin(s[1:, 0], (1, 2))).all()  # reward outcomes in the arms only


def test_example_quick_neural_agent_goes_to_the_cue_first():
    spec = importlib.util.spec_from_file_location("tmaze_from_images", ROOT / "examples" / "tmaze_from_images.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results, accuracy = example.main(["--quick"])
    assert results["tabular"]["cue_first_rate"] == 1.0 and results["tabular"]["correct_arm_rate"] == 1.0
    # the latent classes are the true (location, context) and the transition keeps the context
    assert accuracy["location"] > 0.95 and accuracy["joint"] > QUICK_JOINT and accuracy["keep_context"] > 0.95
    neural = results["neural (images)"]
    assert neural["cue_first_rate"] >= QUICK_CUE_FIRST
    # after the cue, the carried context picks the baited arm
    assert neural["correct_arm_rate"] >= neural["cue_first_rate"] - 0.1
    # without the epistemic term the cue is worth nothing to either agent
    assert results["tabular, no info gain"]["cue_first_rate"] <= 0.1
    # the epistemic term adds about 0.5 nats to the neural agent's margin of the cue over the arms (0.51 here
    # and in the full setting at seed 0); without it the cue is not preferred (margin -0.23 nats here, +0.006
    # there, where small differences of learned utilities decide the first move, so the rate is not asserted)
    no_gain = results["neural (images), no info gain"]
    assert no_gain["cue_margin"] < 0.1 and neural["cue_margin"] - no_gain["cue_margin"] > 0.3
