"""The Agent's learning (online and offline) and its planners, against the pure functions they wrap."""

import numpy as np
import pytest

import aif
from aif import learning


def _model(seed=0):
    return aif.random_model(np.random.default_rng(seed), [3, 2], [3, 2], [2, 1], dirichlet=True)


def test_online_learning_applies_update_A_and_update_B_with_the_agents_beliefs():
    model = _model()
    agent = aif.Agent(model, learning=aif.Learning(lr=0.5, forgetting=0.9))
    pA, pB = model.pA, model.pB
    qs_prev = action = None
    for obs in ([0, 1], [2, 0], [1, 1]):
        agent.step(obs)
        # forgetting decays the counts towards the model's initial counts (Learning.forget_to_prior)
        pA = learning.update_A(pA, obs, agent.qs, lr=0.5, forgetting=0.9, prior=model.pA)
        if qs_prev is not None:
            pB = learning.update_B(pB, agent.qs, qs_prev, action, lr=0.5, forgetting=0.9, prior=model.pB)
        qs_prev, action = agent.qs, agent.action
        for a, b in zip(agent.model.pA, pA, strict=False):
            np.testing.assert_allclose(a, b, atol=1e-12)
        for a, b in zip(agent.model.pB, pB, strict=False):
            np.testing.assert_allclose(a, b, atol=1e-12)
    # The arrays the agent uses are the Dirichlet means.
    np.testing.assert_allclose(agent.model.A[0], pA[0] / pA[0].sum(axis=0), atol=1e-12)


def test_forgetting_towards_zero_or_towards_the_prior():
    model = _model(3)
    for to_prior in (True, False):
        agent = aif.Agent(model, learning=aif.Learning(lr=0.0, forgetting=0.5, forget_to_prior=to_prior))
        for obs in ([0, 1], [2, 0], [1, 1]):
            agent.step(obs)
        expected = model.pA[0] if to_prior else model.pA[0] * 0.5 ** 3
        np.testing.assert_allclose(agent.model.pA[0], expected, rtol=1e-12)


def test_offline_learning_waits_for_learn_and_then_updates():
    model = _model(1)
    agent = aif.Agent(model, learning=aif.Learning(online=False, learn_D=True))
    for obs in ([0, 1], [2, 0]):
        agent.step(obs)
    assert all(np.array_equal(a, b) for a, b in zip(agent.model.pA, model.pA, strict=False))
    first_qs = agent.history[0][1]
    learned = agent.learn()
    assert not np.allclose(learned.pA[0], model.pA[0])
    np.testing.assert_allclose(learned.pD[0], model.pD[0] + first_qs[0], atol=1e-12)


def test_learning_needs_counts_and_valid_rates():
    model = aif.random_model(np.random.default_rng(0), [3], [3])
    with pytest.raises(ValueError, match="needs Dirichlet counts: the model has no pA"):
        aif.Agent(model, learning=aif.Learning())
    with pytest.raises(ValueError, match="lr must be >= 0"):
        aif.Learning(lr=-1)


def test_agent_with_policy_enumeration_planner_equals_the_default_agent():
    from aif.planning.base import PolicyEnumeration

    model = _model(2)
    plain = aif.Agent(model, policy_horizon=2)
    planned = aif.Agent(model, planner=PolicyEnumeration(horizon=2))
    for obs in ([0, 1], [2, 0], [1, 1]):
        np.testing.assert_array_equal(plain.step(obs), planned.step(obs))
        np.testing.assert_allclose(plain.q_pi, planned.q_pi, atol=1e-12)
        np.testing.assert_allclose(plain.G, planned.G, atol=1e-12)
