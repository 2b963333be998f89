"""No runaway allocation: every public call whose memory grows combinatorially estimates its bytes and refuses above
a documented budget (with a setting to raise it), before it allocates, naming the sizes and the estimate."""

import math
import tracemalloc

import numpy as np
import pytest

import aif
from aif.efe import MAX_EFE_BYTES, efe_bytes
from aif.envs import TMaze
from aif.errors import ParameterError, PolicyError

RNG = np.random.default_rng(0)
BIG = aif.random_model(RNG, [50, 50], [50, 50], [5, 5])  # 25 joint actions: horizon 5 is 9.8M policies


def uniform(model):
    return [np.full(s, 1.0 / s) for s in model.num_states]


def test_agent_refuses_an_enumeration_it_cannot_score():
    # The policies (78 MB) fit enumerate_policies' budget; scoring them would take about 415 GB.
    with pytest.raises(PolicyError, match=r"9,765,625 policies of horizon 5 .* EFEOptions.max_bytes"):
        aif.Agent(BIG, policy_horizon=5)
    agent = aif.Agent(BIG, policy_horizon=2)  # 625 policies: about 1 MB
    agent.step([0, 1])
    assert np.isfinite(agent.G).all()


def test_max_bytes_is_a_setting():
    small = aif.EFEOptions(max_bytes=1000)
    policies = aif.enumerate_policies(BIG.num_controls, 1)
    with pytest.raises(PolicyError, match="max_bytes = 1,000"):
        aif.expected_free_energy(BIG, uniform(BIG), policies, options=small)
    with pytest.raises(PolicyError, match="max_bytes"):
        aif.Agent(BIG, efe=small)
    G, _ = aif.expected_free_energy(BIG, uniform(BIG), policies)
    assert G.shape == (25,)
    assert aif.EFEOptions().max_bytes == MAX_EFE_BYTES == 4 << 30
    for bad in (0, -1, 2.5, "1e9", None):
        with pytest.raises(ParameterError, match="EFEOptions.max_bytes"):
            aif.EFEOptions(max_bytes=bad)


def test_sequence_agent_is_budgeted_too():
    model = aif.random_model(RNG, [40, 40], [40], [5, 5])
    with pytest.raises(PolicyError, match="policies of horizon 7"):
        aif.Agent(model, policy_horizon=4, inference=aif.MarginalMessagePassing(), inference_horizon=3)


@pytest.mark.parametrize("S, O, U, H, terms", [
    ([10, 10], [10, 10], [5, 5], 3, aif.efe.DEFAULT_TERMS),
    ([30], [30, 5], [6], 4, aif.efe.DEFAULT_TERMS),
    ([3, 3, 3], [4, 4], [3, 3, 3], 3, (aif.Utility(), aif.InfoGain(joint=True))),
    ([30], [30, 5], [6], 5, (aif.Utility(), aif.InfoGain(), aif.Novelty("A"), aif.Novelty("B"))),
])
def test_estimate_follows_the_measured_peak(S, O, U, H, terms):
    model = aif.random_model(np.random.default_rng(1), S, O, U, dirichlet=True)
    policies = aif.enumerate_policies(model.num_controls, H)
    tracemalloc.start()
    aif.expected_free_energy(model, uniform(model), policies, terms)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert 0.5 < peak / efe_bytes(model, len(policies), H, terms) < 2


def test_sophisticated_inference_node_budget():
    model = TMaze().generative_model()
    with pytest.raises(PolicyError, match="max_nodes = 50 belief nodes at depth 2 of 4"):
        aif.planning.SophisticatedInference(depth=4, max_nodes=50).plan(model, model.D)
    tree = aif.planning.SophisticatedInference(depth=4).search(model, model.D)  # default budget: 1,000,000
    assert tree.num_nodes < 1_000_000
    with pytest.raises(ParameterError, match="max_nodes"):
        aif.planning.SophisticatedInference(max_nodes=0)


def test_soft_q_planner_budget():
    model = aif.random_model(RNG, [20, 20, 10], [3], [4, 4, 2])  # 4,000 joint states, 32 joint controls
    with pytest.raises(PolicyError, match="4,000 joint states and 32 joint controls"):
        aif.planning.SoftQPlanner(horizon=3).plan(model, uniform(model))
    small = aif.random_model(RNG, [5, 4], [3], [4, 2])
    assert np.isfinite(aif.planning.SoftQPlanner(horizon=3).plan(small, uniform(small)).G).all()


def test_exact_counts_the_whole_batch():
    torch = pytest.importorskip("torch")
    import aif_deep

    model = aif_deep.TabularModel.from_aif(aif.random_model(RNG, [40, 40, 40], [3], [2, 2, 2]))
    assert aif_deep.infer_states(model, [0], method=aif.Exact())[0].shape == (40,)  # one belief: 1.5 MB
    with pytest.raises(ParameterError, match="for each of 1,000 beliefs"):  # 1,000 of them: 1.5 GB
        aif_deep.infer_states(model, [torch.zeros(1000, dtype=torch.long)], method=aif.Exact())
    assert math.prod(model.num_states) * 8 * 3 * 1000 > aif.Exact().max_bytes
