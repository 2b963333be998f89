"""The K-armed bandit: the Gymnasium contract, its arrays against its probabilities, reversals, the two agent models,
the vector environment, fitting a learning agent on it, and bad input."""

import warnings

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import aif
import aif_deep
from aif.envs import Bandit, POMDPVectorEnv
from aif.envs.bandit import NO_REWARD, NULL, REWARD, bandit_arrays
from aif.errors import ParameterError
from aif.model import check_model
from aif_deep.fit import choice_likelihood


@pytest.mark.parametrize("env", [Bandit(), Bandit([0.9, 0.5, 0.1], reversals=[4, 9])], ids=["drawn", "reversal"])
def test_check_env_passes_without_warnings(env):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


def test_outcome_frequencies_follow_the_probabilities_and_reversals():
    env = Bandit([0.8, 0.3, 0.5], reversals=[100, 200])
    pulls = 300
    env.reset(seed=0)
    hits, n = np.zeros((3, 3)), np.zeros((3, 3))  # (phase, arm): rewards and pulls
    for i in range(pulls):
        arm = i % 3
        obs, reward, terminated, truncated, info = env.step(arm)
        assert obs[0] == arm + 1 and reward == float(obs[1] == REWARD) and obs[1] != NULL
        assert not terminated and not truncated
        phase = sum(r <= i for r in env.reversals)
        hits[phase, arm] += reward
        n[phase, arm] += 1
    # each phase's rates lie within 4 standard errors of its probabilities (reversed in the middle phase)
    for phase, expected in enumerate(([0.8, 0.3, 0.5], [0.5, 0.3, 0.8], [0.8, 0.3, 0.5])):
        p = np.array(expected)
        assert np.all(np.abs(hits[phase] / n[phase] - p) < 4 * np.sqrt(p * (1 - p) / n[phase]))
        np.testing.assert_array_equal(env.arm_probabilities(100 * phase), p)
        np.testing.assert_array_equal(env.arm_probabilities(100 * phase + 99), p)


def test_arrays_are_the_probabilities_at_each_pull():
    p = np.array([0.9, 0.2])
    A, B, D = bandit_arrays(p, reversals=[2, 5])
    env = Bandit(p, reversals=[2, 5])
    L = 6
    assert [a.shape for a in A] == [(3, 3), (3, 3, L + 1)] and [b.shape for b in B] == [(3, 3, 2), (L + 1, L + 1, 1)]
    np.testing.assert_array_equal(A[1][:, 0, :], np.eye(3)[NULL][:, None].repeat(L + 1, 1))
    for i in range(12):  # after pull i the clock is min(i + 1, L)
        c = min(i + 1, L)
        np.testing.assert_allclose(A[1][REWARD, 1:, c], env.arm_probabilities(i))
        np.testing.assert_allclose(A[1][NO_REWARD, 1:, c], 1 - env.arm_probabilities(i))
    np.testing.assert_array_equal(B[0][:, :, 1], np.eye(3)[:, [2, 2, 2]])  # pull arm 1 from anywhere
    assert D[0][0] == 1 and D[1][0] == 1


def test_drawn_probabilities_are_reproducible():
    a, b = Bandit(num_arms=5, seed=7), Bandit(num_arms=5, seed=7)
    np.testing.assert_array_equal(a.probs, b.probs)
    assert a.probs.shape == (5,) and not np.array_equal(a.probs, Bandit(num_arms=5, seed=8).probs)
    assert a.action_space.n == 5 and list(a.observation_space.nvec) == [6, 3]


def test_counts_model():
    env = Bandit([0.7, 0.4, 0.1])
    model = check_model(env.generative_model(reward_preference=1.5, prior_count=0.5))
    assert model.num_states == [4] and model.num_obs == [4, 3] and model.num_controls == [3]
    np.testing.assert_allclose(model.A[1][:, 1:], np.array([0, 0.5, 0.5])[:, None].repeat(3, 1))
    np.testing.assert_allclose(model.pA[1][REWARD:, 1:], 0.5)
    np.testing.assert_allclose(model.C[1], [0, 1.5, 0])
    np.testing.assert_array_equal(model.B[0], env.B[0])


def test_context_model_defaults_and_volatility():
    env = Bandit([0.2, 0.9, 0.4])
    model = check_model(env.generative_model(kind="context", switch_prob=0.1))
    assert model.num_states == [4, 3] and model.A_dependencies == [[0], [0, 1]] and model.pA is None
    # the arm the agent thinks is good pays 0.9, the others the mean of the rest (0.3)
    np.testing.assert_allclose(model.A[1][REWARD, 1:, :], np.where(np.eye(3), 0.9, 0.3))
    np.testing.assert_allclose(model.B[1][:, :, 0], np.where(np.eye(3), 0.9, 0.05))
    np.testing.assert_allclose(model.D[1], 1 / 3)


def test_novelty_of_an_arm_is_one_over_its_counts():
    """The impossible null outcome of an arm is a zero count, so pymdp.legacy's novelty is 1 / (a_reward + a_none)."""
    model = Bandit([0.5, 0.5, 0.5]).generative_model(prior_count=2.0)
    pA = [p.copy() for p in model.pA]
    pA[1][REWARD:, 1:] = [[2.0, 5.0, 1.0], [2.0, 3.0, 0.5]]
    gain = aif.efe.pA_info_gain(pA, [np.eye(4)[1:]])  # the three arms, certain
    np.testing.assert_allclose(gain, 1.0 / np.array([4.0, 8.0, 1.5]), rtol=1e-6)  # the arm modality adds ~0


def test_learning_agent_with_novelty_finds_the_better_arm():
    env = Bandit([0.15, 0.85])
    model = env.generative_model()
    agent = aif.Agent(model, gamma=8.0, alpha=8.0, efe_terms=(aif.Utility(), aif.Novelty("A")),
                      learning=aif.Learning(learn_A=[1], learn_B=False), rng=np.random.default_rng(0))
    obs, _ = env.reset(seed=1)
    arms = []
    for _ in range(60):
        arms.append(int(agent.step(obs)[0]))
        obs, *_ = env.step(arms[-1])
    assert np.mean(np.array(arms[-20:]) == 1) > 0.8
    learned = agent.model.A[1][REWARD, 1:]
    assert learned[1] > 0.6 > 0.4 > learned[0]


def test_context_agent_seeks_information_then_exploits():
    env = Bandit([0.2, 0.8])
    model = env.generative_model(kind="context")
    agent = aif.Agent(model, gamma=16.0, selection=aif.Selection("deterministic"), rng=np.random.default_rng(0))
    obs, _ = env.reset(seed=3)
    arms = []
    for _ in range(20):
        arms.append(int(agent.step(obs)[0]))
        obs, *_ = env.step(arms[-1])
    assert agent.qs[1][1] > 0.99  # it knows arm 1 is the good one
    assert all(a == 1 for a in arms[-10:])


def test_vector_env_follows_the_reversal():
    """The reversal lives in the arrays (the clock factor), so N copies sampled from them reverse too."""
    env = Bandit([0.9, 0.1], reversals=[3])
    vec = POMDPVectorEnv(env, 2000)
    obs, _ = vec.reset(seed=5)
    assert obs.shape == (2000, 2) and (obs == [0, NULL]).all()
    for i in range(6):
        obs, rewards, *_ = vec.step(np.zeros(2000, dtype=int))
        assert (obs[:, 0] == 1).all()
        assert abs(rewards.mean() - env.arm_probabilities(i)[0]) < 0.03  # 4.5 standard errors at p = 0.1


def test_a_learning_agent_is_fitted_on_the_bandit():
    """The choice likelihood of the counts model with learning runs on bandit data, and the true learning rate
    scores better than a far one (a differentiable likelihood H6's recovery builds on)."""
    env = Bandit([0.8, 0.2])
    model = env.generative_model()
    learning = aif.Learning(learn_A=[1], learn_B=False, lr=1.0)
    agent = aif.Agent(model, gamma=4.0, alpha=4.0, learning=learning, selection=aif.Selection("stochastic", "full"),
                      rng=np.random.default_rng(2))
    obs, _ = env.reset(seed=2)
    observations, actions = [obs], []
    for _ in range(40):
        actions.append(agent.step(obs).copy())
        obs, *_ = env.step(int(actions[-1][0]))
        observations.append(obs)
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    like = choice_likelihood(tm, np.array(observations)[None], np.array(actions)[None], gamma=4.0,
                             alpha=4.0, learning=learning)
    near = like({"lr": torch.tensor([1.0], dtype=torch.float64)}).item()
    far = like({"lr": torch.tensor([0.01], dtype=torch.float64)}).item()
    assert np.isfinite(near) and near > far


@pytest.mark.parametrize("kwargs, match", [
    (dict(probs=[0.5]), "at least 2"),
    (dict(probs=[0.5, 1.2]), r"in \[0, 1\]"),
    (dict(probs=[0.5, 0.2], seed=1), "not both"),
    (dict(probs=[0.5, 0.2], num_arms=3), "num_arms = 3"),
    (dict(num_arms=1), "at least 2"),
    (dict(probs=[0.5, 0.2], reversals=[3, 3]), "strictly increasing"),
    (dict(probs=[0.5, 0.2], reversals=[0]), ">= 1"),
    (dict(probs="ab"), "must be numbers"),
])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        Bandit(**kwargs)


def test_bad_model_settings_are_refused():
    env = Bandit([0.5, 0.2])
    with pytest.raises(ParameterError, match="kind must be 'counts' or 'context'"):
        env.generative_model(kind="oracle")
    with pytest.raises(ParameterError, match="switch_prob do not apply to kind='counts'"):
        env.generative_model(switch_prob=0.1)
    with pytest.raises(ParameterError, match="prior_count do not apply to kind='context'"):
        env.generative_model(kind="context", prior_count=2.0)
    with pytest.raises(ParameterError, match="good_prob must lie"):
        env.generative_model(kind="context", good_prob=1.5)
    with pytest.raises(ParameterError, match="pull must be an integer"):
        env.arm_probabilities(-1)
