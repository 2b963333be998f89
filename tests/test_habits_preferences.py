"""Habits (``pE``) and preferences (``pC``): Dirichlet counts of ``aif.GenerativeModel``, learned by the Agent.

SPM's own numbers for the Agent's learned counts are in tests/test_spm_trials.py (``e`` and ``c`` from spm_MDP_VB_X);
here: the model's rules (E and C from the counts), files, the torch model, the Agent's online and offline updates
against their equations (sums of the q(pi) it chose from and of the outcomes it saw), and bad input.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import digamma, log_softmax

import aif
import aif_deep
from aif.errors import ModelError, ParameterError
from aif.io import load_model, save_model


def tmaze(**changes):
    env = aif.envs.TMaze()
    return env, env.generative_model().replace(**changes)


def test_the_model_reads_E_and_C_from_their_counts():
    _, model = tmaze()
    pE = np.array([1.0, 3.0, 0.5, 0.5])
    pC = [np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, 8.0, 0.25]), np.array([[1.0, 2.0], [3.0, 1.0]])]
    m = model.replace(E=None, C=None, pE=pE, pC=pC)
    np.testing.assert_allclose(m.E, pE / pE.sum())
    for C_m, c in zip(m.C, pC, strict=True):  # SPM's ln softmax(psi(c + 1/32)), per column
        np.testing.assert_allclose(C_m, np.log(np.exp(log_softmax(digamma(c + 1 / 32), axis=0)) + 1e-16), atol=1e-14)
    assert m.C[2].shape == (2, 2)
    # given with its array, the array stays as given (as A beside pA)
    kept = model.replace(pE=pE, pC=[np.ones_like(c) for c in model.C])
    np.testing.assert_array_equal(kept.C[0], model.C[0])
    assert kept.E is None or np.allclose(kept.E, pE / pE.sum())
    # a zero count is an outcome never preferred (ln 1e-16 after the 1/32 offset: far below the others)
    zero = model.replace(C=None, pC=[np.array([0.0, 4, 4, 4]), np.ones(3), np.ones(2)])
    assert zero.C[0][0] < zero.C[0][1] - 4


def test_counts_survive_files_pruning_and_the_torch_model(tmp_path):
    _, model = tmaze()
    pE, pC = np.array([1.0, 3.0, 0.5, 0.5]), [np.arange(1.0, 5.0), np.array([0.5, 8.0, 0.25]), np.ones((2, 3))]
    m = model.replace(E=None, C=None, pE=pE, pC=pC)
    save_model(tmp_path / "m.npz", m)
    loaded = load_model(tmp_path / "m.npz")
    for name in ("pC", "C"):
        for x, y in zip(getattr(loaded, name), getattr(m, name), strict=True):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(loaded.pE, pE)
    np.testing.assert_array_equal(loaded.E, m.E)
    save_model(tmp_path / "plain.npz", model)  # a model without the counts loads without them
    assert load_model(tmp_path / "plain.npz").pE is None and load_model(tmp_path / "plain.npz").pC is None
    pruned = aif.prune_model(m, outcomes=[[], [2], []])
    np.testing.assert_array_equal(pruned.pC[1], [0.5, 8.0])
    np.testing.assert_array_equal(pruned.pE, pE)
    # the torch model: stacked over a batch, and back
    other = m.replace(pE=2 * pE, pC=[2 * c for c in pC], E=None, C=None)
    deep = aif_deep.TabularModel.from_aif([m, other], device="cpu")
    assert tuple(deep.pE.shape) == (2, 4) and tuple(deep.pC[2].shape) == (2, 2, 3)
    back = deep.to_aif(1)
    np.testing.assert_allclose(back.pE, 2 * pE)
    np.testing.assert_allclose(back.C[1], other.C[1])
    with pytest.raises(ModelError, match="pE"):
        aif_deep.TabularModel.from_aif([m, m.replace(pE=None)], device="cpu")


def run(agent, env, steps, seed):
    """``steps`` steps of one episode; returns the observations and the q(pi) each action was chosen from."""
    obs, _ = env.reset(seed=seed)
    seen, chosen = [], []
    for _ in range(steps):
        seen.append([int(o) for o in obs])
        action = agent.step(obs)
        chosen.append(agent.q_pi.copy())
        obs, *_ = env.step(int(action[0]))
    return seen, chosen


@pytest.mark.parametrize("online", [True, False])
def test_the_agent_learns_habits_from_the_q_pi_it_chose_from(online):
    env, model = tmaze(E=None, pE=np.full(4, 2.0))
    agent = aif.Agent(model, learning=aif.Learning(learn_A=False, learn_B=False, learn_E=True, lr_E=0.5,
                                                   online=online))
    _, chosen = run(agent, env, 3, seed=1)
    if not online:
        np.testing.assert_array_equal(agent.model.pE, np.full(4, 2.0))  # nothing until learn()
        agent.learn()
    expected = 2.0 + 0.5 * np.sum(chosen, axis=0)
    np.testing.assert_allclose(agent.model.pE, expected, atol=1e-14)
    np.testing.assert_allclose(agent.model.E, expected / expected.sum(), atol=1e-14)
    # with forgetting, towards the initial counts: pE' = f pE + (1 - f) pE0 + lr q(pi) at every choice
    agent = aif.Agent(model, learning=aif.Learning(learn_A=False, learn_B=False, learn_E=True, forgetting=0.5,
                                                   online=online))
    _, chosen = run(agent, env, 2, seed=1)
    agent.learn() if not online else None
    pE = np.full(4, 2.0)
    for q in chosen:
        pE = 0.5 * pE + 0.5 * 2.0 + q
    np.testing.assert_allclose(agent.model.pE, pE, atol=1e-14)


@pytest.mark.parametrize("online", [True, False])
def test_the_agent_learns_preferences_from_the_outcomes_it_saw(online):
    pC = [np.ones(4), np.array([1.0, 4.0, 0.5]), np.ones((2, 2))]  # the last: one column per step (C by time)
    env, model = tmaze(C=None, pC=pC)
    agent = aif.Agent(model, learning=aif.Learning(learn_A=False, learn_B=False, learn_C=[0, 2], lr_C=2.0,
                                                   online=online))
    seen, _ = run(agent, env, 3, seed=2)
    if not online:
        agent.learn()
    counts = np.ones(4) + 2.0 * np.bincount([o[0] for o in seen], minlength=4)
    np.testing.assert_allclose(agent.model.pC[0], counts)
    np.testing.assert_array_equal(agent.model.pC[1], pC[1])  # not chosen
    by_step = np.ones((2, 2))
    for t, o in enumerate(seen):  # step t into column min(t, T - 1), the column C scores it with
        by_step[o[2], min(t, 1)] += 2.0
    np.testing.assert_allclose(agent.model.pC[2], by_step)
    for C_m, c in zip(agent.model.C, agent.model.pC, strict=True):
        np.testing.assert_allclose(C_m, aif.preferences_from_counts([c])[0])


def test_an_agent_over_time_learns_habits_and_preferences_offline():
    """Marginal message passing over a moving window: the same updates at learn(), from the recorded steps."""
    env, model = tmaze(E=None, pE=np.ones(16), C=None, pC=[np.ones(4), np.ones(3), np.ones(2)])
    agent = aif.Agent(model, policy_horizon=2, inference=aif.MarginalMessagePassing(), inference_horizon=2,
                      learning=aif.Learning(learn_A=False, learn_B=False, learn_E=True, learn_C=True, online=False))
    seen, chosen = run(agent, env, 3, seed=3)
    model = agent.learn()
    np.testing.assert_allclose(model.pE, 1.0 + np.sum(chosen, axis=0), atol=1e-14)
    np.testing.assert_allclose(model.pC[1], 1.0 + np.bincount([o[1] for o in seen], minlength=3))


def test_bad_habit_and_preference_settings_are_refused():
    _, model = tmaze()
    with pytest.raises(ModelError, match=r"pE has shape \(2, 2\)"):
        model.replace(pE=np.ones((2, 2)))
    with pytest.raises(ModelError, match="pE sum to 0"):
        model.replace(pE=np.zeros(4))
    with pytest.raises(ModelError, match="pE has shape .* but E"):
        model.replace(E=np.full(3, 1 / 3), pE=np.ones(4))
    with pytest.raises(ModelError, match="pC has 2 arrays"):
        model.replace(pC=[np.ones(4), np.ones(3)])
    with pytest.raises(ModelError, match=r"pC\[1\] has shape \(4,\), expected \(3,\)"):
        model.replace(pC=[np.ones(4), np.ones(4), np.ones(2)])
    with pytest.raises(ModelError, match=r"pC\[0\] has shape \(4, 2\) but C\[0\] \(4,\)"):
        model.replace(pC=[np.ones((4, 2)), np.ones(3), np.ones(2)])
    with pytest.raises(ModelError, match="negative"):
        model.replace(C=None, pC=[-np.ones(4), np.ones(3), np.ones(2)])
    with pytest.raises(ParameterError, match="Learning.learn_E must be True or False"):
        aif.Learning(learn_E=[0])
    with pytest.raises(ParameterError, match="Learning.lr_C"):
        aif.Learning(lr_C=-1.0)
    with pytest.raises(ParameterError, match="learn_E needs Dirichlet counts: the model has no pE"):
        aif.Agent(model, learning=aif.Learning(learn_A=False, learn_B=False, learn_E=True))
    with pytest.raises(ParameterError, match="learn_C names modality 3"):
        aif.Agent(model.replace(pC=[np.ones(4), np.ones(3), np.ones(2)]),
                  learning=aif.Learning(learn_A=False, learn_B=False, learn_C=[3]))
    with pytest.raises(ParameterError, match="start must be"):
        aif.update_C([np.ones(2)], [[0]], start=-1)
    with pytest.raises(ParameterError, match="planner"):
        aif.Agent(model.replace(pE=np.ones(4)), planner=aif.planning.SophisticatedInference(),
                  learning=aif.Learning(learn_A=False, learn_B=False, learn_E=True))


def test_aif_deep_learns_habits_and_preferences_as_aif_does():
    """aif_deep.Agent with Learning(learn_E=..., learn_C=...) runs them through aif (its NumPy route): the learned
    counts of each agent of a batch equal an aif.Agent's given the same observations."""
    env, model = tmaze(E=None, pE=np.full(4, 2.0), C=None, pC=[np.ones(4), np.array([1.0, 4.0, 0.5]), np.ones(2)])
    models = [model, model.replace(pE=np.arange(1.0, 5.0), E=None)]
    learning = aif.Learning(learn_A=False, learn_B=False, learn_E=True, learn_C=True, lr=0.5)
    deep = aif_deep.Agent(aif_deep.TabularModel.from_aif(models, device="cpu"), learning=learning)
    ones = [aif.Agent(m, learning=learning) for m in models]
    obs, _ = env.reset(seed=4)
    for _ in range(3):
        deep.step([int(o) for o in obs])
        actions = [agent.step(obs) for agent in ones]
        obs, *_ = env.step(int(actions[0][0]))
    for k, agent in enumerate(ones):
        np.testing.assert_allclose(deep.model.pE[k].numpy(), agent.model.pE, atol=1e-14)
        np.testing.assert_allclose(deep.model.E[k].numpy(), agent.model.E, atol=1e-14)
        for m in range(3):
            np.testing.assert_allclose(deep.model.pC[m][k].numpy(), agent.model.pC[m], atol=1e-14)
            np.testing.assert_allclose(deep.model.C[m][k].numpy(), agent.model.C[m], atol=1e-14)
    assert not np.allclose(deep.model.pE[0].numpy(), 2.0)  # the habits moved
