"""aif_deep.Agent's policy search (``infer_policies(search=...)``) and VFE diagnostics
(``infer_states(return_info=True)``), against aif.Agent's, and aif.rollout's hooks on an aif_deep.Agent."""

import numpy as np
import pytest
import torch

import aif
import aif_deep
from aif.envs import TMaze
from aif.errors import ParameterError, PolicyError, StrategyError
from aif_deep.inference import free_energy_terms


def _model(seed=0):
    return aif.random_model(np.random.default_rng(seed), [2, 3], [3, 4, 2], [2, 3],
                            A_dependencies=[[0], [0, 1], [1]])


@pytest.mark.parametrize("guard", [aif.maths.EXACT, aif.maths.CLIP, aif.maths.LEGACY])
def test_free_energy_terms_in_torch_equal_aif_for_a_batch(guard):
    rng = np.random.default_rng(1)
    model = _model()
    tm = aif_deep.TabularModel.from_aif(model, dtype=torch.float64)
    obs = [rng.integers(o, size=5) for o in model.num_obs]
    prior = [rng.dirichlet(np.ones(s), size=5) for s in model.num_states]
    qs = [rng.dirichlet(np.ones(s), size=5) for s in model.num_states]
    out = free_energy_terms(tm, [torch.as_tensor(o) for o in obs], [torch.as_tensor(q) for q in qs],
                            [torch.as_tensor(p) for p in prior], guard=guard)
    assert out.vfe.shape == (5,)
    for b in range(5):
        ref = aif.free_energy_terms(model, [int(o[b]) for o in obs], [q[b] for q in qs], [p[b] for p in prior],
                                    guard=guard)
        for name in ("neg_entropy", "prior_cross_entropy", "accuracy"):
            assert float(getattr(out, name)[b]) == pytest.approx(float(getattr(ref, name)), abs=1e-12)
        assert float(out.vfe[b]) == pytest.approx(ref.vfe, abs=1e-12)


def test_agent_return_info_equals_aif_and_is_refused_over_time():
    model = _model(2)
    tm = aif_deep.TabularModel.from_aif(model, dtype=torch.float64)
    ref, deep = aif.Agent(model), aif_deep.Agent(tm)
    for obs in ([0, 1, 1], [2, 3, 0]):
        qs, info = ref.infer_states(obs, return_info=True)
        tqs, tinfo = deep.infer_states(obs, return_info=True)
        assert float(tinfo.vfe) == pytest.approx(info.vfe, abs=1e-12)
        ref.infer_policies(), deep.infer_policies()
        ref.sample_action(), deep.sample_action()
    batch = aif_deep.Agent(tm, batch_shape=(3,))
    _, info = batch.infer_states(torch.tensor([[0, 1, 1], [2, 3, 0], [1, 0, 1]]), return_info=True)
    assert info.vfe.shape == (3,) and bool(torch.all(info.complexity >= -1e-12))
    over_time = aif_deep.Agent(tm, inference=aif.MarginalMessagePassing(), inference_horizon=2)
    with pytest.raises(ParameterError, match="return_info is for one-step inference methods"):
        over_time.infer_states([0, 1, 1], return_info=True)


def _own(agent, qs, rng):
    q_pi, G = agent.infer_policies()
    return q_pi, G, {"best": G.argmin(-1)}


@pytest.mark.parametrize("inference", [aif.FixedPoint(), aif.MarginalMessagePassing()])
def test_a_search_replaces_the_planning_of_a_batch_of_agents(inference):
    model = _model(3)
    tm = aif_deep.TabularModel.from_aif(model, dtype=torch.float64)
    kwargs = dict(batch_shape=(2,), inference=inference)
    if isinstance(inference, aif.MarginalMessagePassing):
        kwargs["inference_horizon"] = 2
    plain, searched = aif_deep.Agent(tm, **kwargs), aif_deep.Agent(tm, **kwargs)
    obs = torch.tensor([[0, 1, 1], [2, 3, 0]])
    for agent in (plain, searched):
        agent.infer_states(obs)
    q_pi, G = plain.infer_policies()
    q_s, G_s = searched.infer_policies(search=_own)
    torch.testing.assert_close(q_s, q_pi, rtol=0, atol=0)
    torch.testing.assert_close(G_s, G, rtol=0, atol=0)
    assert searched.terms == {} and torch.equal(searched.search_info["best"], G.argmin(-1))
    # all weight on one policy per agent: deterministic selection takes its first action
    P = len(searched.policies)
    choice = torch.tensor([4, P - 1])
    searched.infer_policies(search=lambda a, qs, rng: (torch.nn.functional.one_hot(choice, P).double(), None, {}))
    assert searched.G is None
    np.testing.assert_array_equal(searched.sample_action().numpy(), searched.policies[choice.numpy(), 0])


def test_a_wrong_search_return_is_named_and_leaves_the_agent_as_it_was():
    tm = aif_deep.TabularModel.from_aif(_model(4), dtype=torch.float64)
    agent = aif_deep.Agent(tm, batch_shape=(2,))
    agent.infer_states(torch.tensor([[0, 1, 1], [2, 3, 0]]))
    P = len(agent.policies)
    bad = [((torch.ones(2, P) / P, None), StrategyError, "of length 2"),
           ((torch.ones(P) / P, None, {}), PolicyError, r"step 0: q_pi has shape \(6,\), expected \(2, 6\)"),
           ((torch.ones(2, P), None, {}), PolicyError, "q_pi"),
           ((torch.ones(2, P) / P, torch.full((2, P), float("nan")), {}), PolicyError, "G has a non-finite entry"),
           ((torch.ones(2, P) / P, None, ["x"]), StrategyError, "info of type list")]
    for found, error, match in bad:
        with pytest.raises(error, match=match):
            agent.infer_policies(search=lambda a, qs, rng, found=found: found)
        assert agent.q_pi is None and agent.search_info is None  # the failed call is undone
    with pytest.raises(StrategyError, match="search must be a function"):
        agent.infer_policies(search="efe")


def test_aif_rollout_runs_a_policy_search_on_an_aif_deep_agent():
    env = TMaze()
    tm = aif_deep.TabularModel.from_aif(env.generative_model(), dtype=torch.float64)
    plain = aif.rollout(aif_deep.Agent(tm, 2), env, 4, seed=0)
    searched = aif.rollout(aif_deep.Agent(tm, 2), env, 4, seed=0, policy_search=aif.default_policy_search)
    np.testing.assert_array_equal(plain.actions, searched.actions)
    np.testing.assert_allclose(plain.q_pi, searched.q_pi, atol=1e-15)
    # the default search returns the agent's EFE terms as its info
    assert set(searched.search_info) == set(plain.terms) and plain.terms
    for name, value in plain.terms.items():
        np.testing.assert_allclose(searched.search_info[name], value, atol=1e-15)


def test_take_action_replays_a_choice_in_both_packages():
    """take_action(u) carries the prior as sampling u would have, in aif and aif_deep (torch and NumPy routes)."""
    model = _model(5)
    tm = aif_deep.TabularModel.from_aif(model, dtype=torch.float64)
    ref = aif.Agent(model)
    ref.infer_states([0, 1, 1])
    ref.infer_policies()
    q_pi = ref.q_pi.copy()
    np.testing.assert_array_equal(ref.take_action([1, 2]), [1, 2])
    np.testing.assert_allclose(ref.prior[1], aif.predict(model, ref.qs, [1, 2])[1], atol=0)
    np.testing.assert_array_equal(ref.q_pi, q_pi)  # kept: the probability the agent gave the choice
    assert ref.t == 1
    with pytest.raises(PolicyError, match="out of range for factor 1"):
        ref.take_action([1, 3])
    assert ref.t == 1  # the failed call is undone
    for inference in (aif.FixedPoint(), aif.MarginalMessagePassing()):
        kwargs = {"inference_horizon": 2} if isinstance(inference, aif.MarginalMessagePassing) else {}
        deep = aif_deep.Agent(tm, batch_shape=(2,), inference=inference, **kwargs)
        deep.infer_states(torch.tensor([[0, 1, 1], [0, 1, 1]]))
        deep.infer_policies()
        taken = deep.take_action(torch.tensor([[1, 2], [0, 1]]))
        np.testing.assert_array_equal(taken.numpy(), [[1, 2], [0, 1]])
        assert deep.t == 1
    with pytest.raises(aif.CallOrderError, match="take_action needs q_pi"):
        aif_deep.Agent(tm).take_action([0, 0])
    one = aif_deep.Agent(tm)
    one.infer_states([0, 1, 1])
    one.infer_policies()
    one.take_action([1, 2])
    for f in range(2):
        np.testing.assert_allclose(one.prior[f].numpy(), ref.prior[f], atol=1e-12)
