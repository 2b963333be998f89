"""Agent options that pymdp 1.0's Agent has: an observation preprocessor and inductive inference from goals."""

from __future__ import annotations

import numpy as np
import pytest

import aif
from aif.efe import InductiveCost
from aif.envs import TMaze
from aif.errors import ObservationError, StrategyError
from aif.planning import inductive_matrix


def test_preprocess_is_applied_before_inference_and_its_output_is_checked():
    model = TMaze().generative_model()
    names = {"start": 0, "left": 1, "right": 2, "cue": 3}
    to_indices = lambda raw: [names[raw["where"]], raw["reward"], raw["cue"]]  # noqa: E731
    agent = aif.Agent(model, preprocess=to_indices)
    plain = aif.Agent(model)
    for raw in ({"where": "start", "reward": 0, "cue": 0}, {"where": "cue", "reward": 0, "cue": 1}):
        assert np.array_equal(agent.step(raw), plain.step(to_indices(raw)))
        assert all(np.array_equal(q, p) for q, p in zip(agent.qs, plain.qs, strict=True))
    with pytest.raises(ObservationError, match="out of range"):
        agent.step({"where": "start", "reward": 7, "cue": 0})
    with pytest.raises(StrategyError, match="preprocess"):
        aif.Agent(model, preprocess="indices")  # type: ignore[arg-type]


def test_inductive_cost_from_goals_is_the_term_of_the_goals_reachability():
    model = TMaze().generative_model()
    H = [np.eye(model.num_states[0])[1], np.zeros(model.num_states[1])]  # goal: the left arm
    term = InductiveCost.from_goals(model, H, depth=3)
    expected = inductive_matrix(H, model.B, 0.1, 3, model.B_dependencies)
    assert all(np.array_equal(a, b) for a, b in zip(term.I, expected, strict=True)) and term.epsilon == 1e-3
    plain = aif.Agent(model, policy_horizon=2)
    guided = aif.Agent(model, policy_horizon=2, efe_terms=(*aif.DEFAULT_TERMS, term))
    for agent in (plain, guided):
        agent.infer_states([0, 0, 0])
        agent.infer_policies()
    assert (guided.terms["inductive_cost"] >= 0).all() and guided.terms["inductive_cost"].max() > 0
    # every policy that ends away from the left arm pays the cost; their q(pi) falls against the plain agent's
    ends_left = guided.policies[:, -1, 0] == 1
    assert guided.q_pi[ends_left].sum() > plain.q_pi[ends_left].sum()


def test_aif_deep_agent_preprocesses_as_aif_does():
    torch = pytest.importorskip("torch")
    import aif_deep

    model = TMaze().generative_model()
    to_indices = lambda raw: [raw // 6, (raw // 2) % 3, raw % 2]  # noqa: E731  (one code for the three outcomes)
    tabular = aif_deep.TabularModel.from_aif(model, dtype=torch.float64)
    deep = aif_deep.Agent(tabular, preprocess=to_indices)
    numpy_agent = aif.Agent(model, preprocess=to_indices)
    for raw in (0, 19, 7):
        assert np.array_equal(deep.step(raw).numpy(), numpy_agent.step(raw))
        assert all(np.allclose(q.numpy(), p, atol=1e-12) for q, p in zip(deep.qs, numpy_agent.qs, strict=True))
    with pytest.raises(StrategyError, match="preprocess"):
        aif_deep.Agent(tabular, preprocess=3)  # type: ignore[arg-type]


def test_aif_deep_agent_runs_numpy_only_state_inference_on_a_tabular_model():
    torch = pytest.importorskip("torch")
    import aif_deep

    model = TMaze().generative_model(learn_A=True)
    tabular = aif_deep.TabularModel.from_aif(model, dtype=torch.float64)
    learning = aif.Learning(online=False, smoothing=True, learn_B=False)
    deep = aif_deep.Agent(tabular, inference=aif.VariationalFiltering.pymdp(), learning=learning)
    numpy_agent = aif.Agent(model, inference=aif.VariationalFiltering.pymdp(), learning=learning)
    ours, theirs = (aif.rollout(agent, TMaze(), 3, seed=0) for agent in (deep, numpy_agent))
    assert np.array_equal(ours.actions, theirs.actions)
    assert all(np.allclose(q, p, atol=1e-12) for q, p in zip(ours.qs, theirs.qs, strict=True))
    deep.learn()
    learned = numpy_agent.learn()
    assert np.allclose(deep.model.to_aif().pA[0], learned.pA[0], atol=1e-12)
