"""Environments: the Gymnasium contract, their generative models, their dynamics, and the agent wrapper."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import aif
from aif.envs import AgentWrapper, CueChaining, GridWorld, POMDPEnv, TMaze, tmaze_arrays
from aif.errors import ModelError, ObservationError, ParameterError, PolicyError
from aif.model import check_model

ENVS = {
    "tmaze": lambda: TMaze(),
    "tmaze-noisy": lambda: TMaze(reward_prob=0.8, cue_validity=0.9),
    "grid": lambda: GridWorld(),
    "grid-walls-slip": lambda: GridWorld((4, 6), start=(3, 0), goals=[(0, 5)], walls=[(1, 1), (2, 1), (1, 3)],
                                         slip=0.2),
    "grid-cued": lambda: GridWorld((5, 5), goals=[(0, 4), (4, 0)], cue_location=(2, 2), walls=[(1, 1)]),
    "cue-chaining": lambda: CueChaining(),
}


@pytest.mark.parametrize("name", ENVS)
def test_check_env_passes_without_warnings(name):
    env = ENVS[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("name", ENVS)
@pytest.mark.parametrize("learn", [False, True])
def test_generative_model_matches_the_environment(name, learn):
    env = ENVS[name]()
    model = check_model(env.generative_model(learn_B=learn))
    assert model.num_obs == list(env.observation_space.nvec)
    assert model.num_states == env.num_states
    assert model.num_controls == env.num_controls
    assert model.num_controls[env.control_factor] == env.action_space.n
    assert model.A_dependencies == env.A_dependencies and model.B_dependencies == env.B_dependencies
    for A_m, A_env in zip(model.A, env.A, strict=False):
        assert A_m.shape == A_env.shape
    for D_f, D_env in zip(model.D, env.D, strict=False):
        assert D_f.shape == D_env.shape
    if learn:
        f = env.control_factor
        assert model.pB is not None and [p.shape for p in model.pB] == [b.shape for b in model.B]
        np.testing.assert_allclose(model.B[f], 1.0 / model.num_states[f])
        np.testing.assert_allclose(model.pB[f], 1.0)
        for g in range(model.num_factors):
            if g != f:
                np.testing.assert_array_equal(model.B[g], env.B[g])
    else:
        assert model.pB is None
        for B_f, B_env in zip(model.B, env.B, strict=False):
            np.testing.assert_array_equal(B_f, B_env)


def test_tmaze_arrays_equal_pymdp_legacy():
    from pymdp.legacy.envs import TMazeEnv

    for a in (0.98, 0.75):
        legacy = TMazeEnv(reward_probs=[a, 1 - a])
        A, B, _ = tmaze_arrays(reward_prob=a)
        theirs_all = list(legacy.get_likelihood_dist()) + list(legacy.get_transition_dist())
        for ours, theirs in zip(A + B, theirs_all, strict=False):
            np.testing.assert_allclose(ours, theirs, atol=1e-15, rtol=0)


def test_tmaze_generative_model_is_the_demo_model():
    model = TMaze().generative_model()
    np.testing.assert_array_equal(model.C[1], [0.0, 3.0, -3.0])
    np.testing.assert_array_equal(model.D[0], [1, 0, 0, 0])
    np.testing.assert_array_equal(model.D[1], [0.5, 0.5])
    mismatched = TMaze().generative_model(reward_prob=0.6, cue_validity=0.7)
    np.testing.assert_allclose(mismatched.A[1][1:, 1, 0], [0.6, 0.4])
    np.testing.assert_allclose(mismatched.A[2][:, 3, 1], [0.3, 0.7])


def test_tmaze_learn_A_is_uninformed_about_the_arms():
    model = TMaze().generative_model(learn_A=True, prior_count=0.5)
    for arm in (1, 2):
        for c in range(2):
            np.testing.assert_array_equal(model.A[1][:, arm, c], [0.0, 0.5, 0.5])
            np.testing.assert_array_equal(model.pA[1][1:, arm, c], [0.5, 0.5])
    # Outside the arms the counts pin the true likelihood.
    np.testing.assert_allclose(model.pA[1][:, 0, 0] / model.pA[1][:, 0, 0].sum(), [1, 0, 0], atol=1e-9)
    np.testing.assert_array_equal(model.A[2], TMaze().generative_model().A[2])


def test_cue_chaining_arrays_equal_pymdp_1():
    from pymdp.envs.cue_chaining import CueChainingEnv

    theirs = CueChainingEnv()
    ours = CueChaining()
    assert ours.A_dependencies == theirs.A_dependencies
    assert ours.B_dependencies == theirs.B_dependencies
    for x, y in zip(ours.A + ours.B + ours.D, theirs.A + theirs.B + theirs.D, strict=False):
        np.testing.assert_array_equal(x, np.asarray(y, dtype=float))


def test_tmaze_cue_reveals_the_condition_and_arms_pay_as_specified():
    env = TMaze(reward_prob=0.9)
    for condition in (0, 1):
        obs, info = env.reset(seed=condition, options={"condition": condition})
        assert info["state"] == (0, condition) and env.condition == condition
        assert obs[0] == 0 and obs[1] == 0
        obs, reward, *_ = env.step(3)
        assert obs[0] == 3 and obs[2] == condition and reward == 0.0
        baited = 1 + condition
        rewards = [env.step(baited)[1] for _ in range(2000)]
        assert abs(np.mean(np.array(rewards) == 1.0) - 0.9) < 0.03
        assert set(rewards) <= {1.0, -1.0}


def test_tmaze_cue_validity():
    env = TMaze(cue_validity=0.7)
    env.reset(seed=3, options={"condition": 1})
    cues = [env.step(3)[0][2] for _ in range(3000)]
    assert abs(np.mean(np.array(cues) == 1) - 0.7) < 0.03


def test_reset_seed_reproduces_the_episode_and_draws_both_conditions():
    def episode(seed):
        env = TMaze(reward_prob=0.6)
        obs, _ = env.reset(seed=seed)
        out = [obs.tolist()]
        for a in (3, 1, 2, 0, 1):
            out.append(env.step(a)[0].tolist())
        return out, env.condition

    assert episode(7) == episode(7)
    conditions = {episode(s)[1] for s in range(20)}
    assert conditions == {0, 1}


def test_grid_walls_block_and_goal_terminates():
    env = GridWorld((3, 3), start=(0, 0), goals=[(2, 2)], walls=[(1, 0)])
    obs, _ = env.reset(seed=0)
    assert env.location(obs) == (0, 0)
    obs, *_ = env.step(1)  # down into the wall: no move
    assert env.location(obs) == (0, 0)
    obs, *_ = env.step(2)  # left off the grid: no move
    assert env.location(obs) == (0, 0)
    for a in (3, 1, 1):
        obs, reward, terminated, truncated, _ = env.step(a)
    assert env.location(obs) == (2, 1) and reward == 0.0 and not terminated
    obs, reward, terminated, truncated, _ = env.step(3)
    assert env.location(obs) == (2, 2) and reward == 1.0 and terminated and not truncated


def test_grid_distances_go_around_walls():
    env = GridWorld((3, 3), start=(0, 0), goals=[(0, 2)], walls=[(0, 1), (1, 1)])
    d = env.distances().reshape(3, 3)
    np.testing.assert_array_equal(d[:, 0], [6, 5, 4])
    np.testing.assert_array_equal(d[:, 2], [0, 1, 2])
    assert d[0, 1] == d[1, 1] == 7  # walls: unreachable, the largest distance plus one


def test_grid_slip_rate():
    env = GridWorld((1, 2), start=(0, 0), goals=[(0, 1)], slip=0.25, terminate_at_goal=False)
    moved = []
    env.reset(seed=0)
    for _ in range(2000):
        env.reset(options={})
        moved.append(env.step(3)[0][0] == 1)
    assert abs(np.mean(moved) - 0.75) < 0.03


def test_grid_cue_reveals_the_goal():
    env = GridWorld((3, 3), start=(0, 0), goals=[(0, 2), (2, 0)], cue_location=(1, 1))
    for g in (0, 1):
        obs, _ = env.reset(seed=g, options={"goal": g})
        assert env.goal == env.goals[g] and obs[2] == 0
        env.step(1)
        obs, *_ = env.step(3)
        assert env.location(obs) == (1, 1) and obs[2] == 1 + g and obs[1] == 0
    model = env.generative_model()
    np.testing.assert_array_equal(model.C[1], [0.0, 4.0])


def test_cue_chaining_chain_of_cues():
    env = CueChaining()
    obs, _ = env.reset(seed=0, options={"cue2_state": 2, "reward_condition": 0})
    assert list(obs[1:]) == [0, 0, 0]
    for a in (1, 1):  # down, down to the first cue at (2, 0)
        obs, *_ = env.step(a)
    assert env.cell(obs[0]) == (2, 0) and obs[1] == 1 + 2
    for a in (1, 3, 3, 3):  # to the third cue-2 cell, (3, 3)
        obs, *_ = env.step(a)
    assert env.cell(obs[0]) == (3, 3) and obs[2] == 1 + 0
    for a in (3, 3, 0, 0):  # to (1, 5), the first reward cell: cheese under condition 0
        obs, reward, *_ = env.step(a)
    assert env.cell(obs[0]) == (1, 5) and obs[3] == 1 and reward == 1.0


@pytest.mark.parametrize("bad, exc", [
    (lambda: GridWorld((3, 3), start=(1, 1), walls=[(1, 1)]), ParameterError),
    (lambda: GridWorld((3, 3), goals=[(3, 0)]), ParameterError),
    (lambda: GridWorld(slip=1.0), ParameterError),
    (lambda: TMaze(reward_prob=1.2), ParameterError),
    (lambda: CueChaining(reward_locations=((1, 5),)), ParameterError),
    (lambda: GridWorld().generative_model(preference="nearest"), ParameterError),
])
def test_bad_settings_raise(bad, exc):
    with pytest.raises(exc):
        bad()


def test_bad_action_and_reset_options_raise():
    env = TMaze()
    with pytest.raises(RuntimeError):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(PolicyError, match="action 4"):
        env.step(4)
    with pytest.raises(ParameterError, match="options"):
        env.reset(options={"state": (0, 2)})
    with pytest.raises(ParameterError, match="condition"):
        env.reset(options={"condition": 2})


def test_wrapper_discrete_env():
    env = AgentWrapper(gym.make("FrozenLake-v1", is_slippery=False))
    assert env.num_obs == [16] and env.num_controls == [4]
    obs, _ = env.reset(seed=0)
    assert obs == [0]
    obs, *_ = env.step(np.array([1]))  # FrozenLake: 1 = down
    assert obs == [4]


class _MultiEnv(gym.Env):
    """Observations MultiDiscrete with a non-zero start, actions MultiDiscrete: echoes the action."""

    def __init__(self):
        self.observation_space = gym.spaces.MultiDiscrete([3, 4], start=[1, 1])
        self.action_space = gym.spaces.MultiDiscrete([3, 4])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([1, 1]), {}

    def step(self, action):
        return np.asarray(action) + 1, 0.0, False, False, {}


def test_wrapper_maps_action_vectors_to_controlled_factors():
    # The agent's model has three factors; the second is uncontrolled and the env takes factors 0 and 2.
    env = AgentWrapper(_MultiEnv(), num_controls=[3, 1, 4])
    assert env.control_factors == [0, 2]
    assert env.reset()[0] == [0, 0]
    obs, *_ = env.step(np.array([2, 0, 3]))
    assert obs == [2, 3]
    with pytest.raises(ModelError, match="factor 1 has 2 controls"):
        AgentWrapper(_MultiEnv(), num_controls=[3, 2, 4], control_factors=[1, 2])


def test_wrapper_for_model_on_our_env():
    env = TMaze()
    model = env.generative_model()
    wrapped = AgentWrapper.for_model(env, model)
    assert wrapped.control_factors == [0]
    wrapped.reset(seed=1, options={"condition": 1})
    obs, *_ = wrapped.step([3, 0])
    assert obs == [3, 0, 1]


def test_wrapper_rejects_continuous_observations():
    with pytest.raises(ObservationError, match="Discrete"):
        AgentWrapper(gym.make("CartPole-v1"))


def test_rollout_of_a_model_in_which_no_factor_is_controllable():
    """The environment's action space is Discrete(1): the agent's (all-zero) actions still reach it."""
    model = aif.random_model(np.random.default_rng(0), [3, 2], [3], [1, 1])
    env = POMDPEnv(model.A, model.B, model.D)
    trajectory = aif.rollout(aif.Agent(model), env, 6, seed=0)
    assert trajectory.actions.shape == (6, 2) and not trajectory.actions.any()
    assert all(np.isfinite(q).all() for q in trajectory.qs)
    wrapped = AgentWrapper.for_model(POMDPEnv(model.A, model.B, model.D), model)
    assert wrapped.control_factors == [0]


def test_grid_model_with_a_uniform_start_locates_an_agent_placed_anywhere():
    env = GridWorld()
    obs, _ = env.reset(seed=0, options={"state": (5,)})
    believed = aif.Agent(env.generative_model()).infer_states(obs)[0]
    assert believed[5] < 0.6  # the default prior (the start cell) calls this outcome impossible
    qs = aif.Agent(env.generative_model(start="uniform")).infer_states(obs)[0]
    assert qs.argmax() == 5 and qs[5] > 0.999
    with pytest.raises(ParameterError, match="start must be"):
        env.generative_model(start="centre")
