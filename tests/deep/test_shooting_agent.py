"""The model-based planner of ``aif_deep.shooting`` as a strategy of the one ``aif_deep.Agent``: the Agent's cycle
(observe, learn from the last transition, plan, select) equals the cycle written out by hand step for step, and
mismatched strategies are refused by name."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import aif_deep
from aif.errors import StrategyError
from aif_deep import online
from aif_deep.shooting import CrossEntropyShooting, ModelLearning, ModelRun, RewardModel, RewardStateModel


def _parts(seed=0, **planner_settings):
    torch.manual_seed(seed)
    model = RewardStateModel(2, 3, transition=online.Ensemble(2, 3, 3, 16, seed + 1), outcome=RewardModel(2, 3, 16,
                             seed + 2), bounds=(-1.0, 1.0))
    terms = (online.RewardRisk(1.0), online.EnsembleInfoGain(1.0, noise_sd=0.01))
    planner = CrossEntropyShooting(horizon=4, samples=12, elites=3, iterations=1, efe_terms=terms, **planner_settings)
    learning = ModelLearning(batch_size=8, learning_starts=4, buffer_size=64)
    return model, planner, learning, online.Softmax(10.0, gamma_start=None)


def _scaled(env):
    low, high = env.observation_space.low, env.observation_space.high
    return lambda x: (2 * (np.asarray(x) - low) / (high - low) - 1).astype(np.float32)


STEPS = 30


def _params(model):
    nets = (model.transition, model.outcome)
    return [p.detach().clone() for net in nets for p in net.parameters()]


def _by_hand(seed, **planner_settings):
    model, planner, learning, selection = _parts(**planner_settings)
    env = gym.make("MountainCar-v0", max_episode_steps=STEPS)
    pre, rng = _scaled(env), np.random.default_rng(seed)
    learner, inference = ModelRun(learning, model, rng), online.ObservedState()
    obs, _ = env.reset(seed=seed)
    actions, G = [], []
    for step in range(STEPS):
        qs = inference.infer(model, pre(obs))
        plan = planner.plan(model, qs, rng)
        q = selection.probabilities(plan.G, step)
        action = int(rng.choice(len(q), p=q))
        actions.append(action)
        G.append(plan.G)
        obs, r, terminated, truncated, _ = env.step(action)
        learner.observe(qs[0], action, float(r), pre(obs), terminated)
        if terminated or truncated:
            break
    return actions, np.array(G), _params(model)


def _by_agent(seed, **planner_settings):
    model, planner, learning, selection = _parts(**planner_settings)
    agent = aif_deep.Agent(model, inference=online.ObservedState(), planner=planner, learning=learning,
                           selection=selection, efe_terms=planner.efe_terms, rng=np.random.default_rng(seed))
    env = gym.make("MountainCar-v0", max_episode_steps=STEPS)
    pre = _scaled(env)
    obs, _ = env.reset(seed=seed)
    reward, terminated, actions, G = None, False, [], []
    for _ in range(STEPS):
        action = int(agent.step(pre(obs), reward=reward, terminated=terminated)[0])
        actions.append(action)
        G.append(agent.G.numpy().copy())
        obs, reward, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    agent.step(pre(obs), reward=reward, terminated=terminated)  # learns from the last transition
    assert set(agent.terms) >= {"risk", "info_gain"}
    return actions, np.array(G[: len(actions)]), _params(model)


@pytest.mark.parametrize("planner_settings", [{}, {"persistence": 0.8, "warm_start": 0.5}])
def test_the_agent_runs_the_planner_and_learner_as_the_hand_written_cycle(planner_settings):
    a_hand, G_hand, params_hand = _by_hand(3, **planner_settings)
    a_agent, G_agent, params_agent = _by_agent(3, **planner_settings)
    assert a_agent == a_hand
    np.testing.assert_array_equal(G_agent, G_hand)
    assert len(params_hand) == len(params_agent) > 0
    untrained = _params(_parts()[0])
    assert any(not torch.equal(p, q) for p, q in zip(untrained, params_agent, strict=True))  # it did learn
    for p, q in zip(params_hand, params_agent, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)  # the model learned the same transitions in the same order


def test_mismatched_strategies_are_refused_by_name():
    model, planner, learning, selection = _parts()
    with pytest.raises(StrategyError, match="learns with ModelLearning"):
        aif_deep.Agent(model, inference=online.ObservedState(), planner=planner, learning=online.TDLearning(),
                       selection=selection, rng=np.random.default_rng(0))
    plain = online.StateVectorModel(2, 3, transition=online.Ensemble(2, 3, 2, 8, 1))
    with pytest.raises(StrategyError, match="RewardStateModel"):
        aif_deep.Agent(plain, inference=online.ObservedState(), planner=planner, selection=selection,
                       rng=np.random.default_rng(0))


def test_reset_forgets_the_planners_warm_start():
    """``Agent.reset()`` starts an episode: a planner that carries its last plan (``warm_start``) forgets it, as the
    example's loop does with ``planner.reset()``."""
    model, planner, learning, selection = _parts(warm_start=0.5)
    agent = aif_deep.Agent(model, inference=online.ObservedState(), planner=planner, learning=learning,
                           selection=selection, efe_terms=planner.efe_terms, rng=np.random.default_rng(0))
    agent.step(np.zeros(2, dtype=np.float32))
    assert planner.memory.sequence is not None
    agent.reset()
    assert planner.memory.p is None and planner.memory.sequence is None
