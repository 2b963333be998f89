"""The prefix-sharing policy evaluator: each prefix once, chunks, explicit lists, terminal value, protocol models."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif_deep.evaluator import _prefix_tree  # noqa: E402

TOL = 1e-10


def model_and_beliefs(seed, num_states=(4, 3), num_obs=(5, 3), num_controls=(3, 1), batch=3):
    rng = np.random.default_rng(seed)
    model = aif.random_model(rng, list(num_states), list(num_obs), list(num_controls), concentration=0.5)
    qs = [rng.dirichlet(np.ones(s), size=batch) for s in model.num_states]
    return model, qs, rng


class Counting:
    """A BeliefModel that delegates to a TabularModel and counts the beliefs it is asked to score."""

    def __init__(self, inner):
        self.inner = inner
        self.scored = 0
        for name in ("num_states", "num_obs", "num_controls", "A_dependencies", "batch_shape"):
            setattr(self, name, getattr(inner, name))

    def prior(self):
        return self.inner.prior()

    def log_likelihood(self, obs, guard):
        return self.inner.log_likelihood(obs, guard)

    def predict_all(self, qs):
        return self.inner.predict_all(qs)

    def outcome_terms(self, qs, t, options):
        self.scored += qs[0].shape[0]
        return self.inner.outcome_terms(qs, t, options)


def test_each_prefix_is_evaluated_once_and_results_equal_aif():
    model, qs, _ = model_and_beliefs(0)
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    counting = Counting(tm)
    assert isinstance(counting, aif_deep.BeliefModel)
    H, K = 5, 3
    G, terms = aif_deep.evaluate_policies(counting, [torch.tensor(q) for q in qs], horizon=H)
    assert counting.scored == sum(K**t for t in range(1, H + 1))  # 363 nodes for 243 policies, not 5 * 243
    policies = aif.enumerate_policies(model.num_controls, H)
    for b in range(3):
        G_ref, terms_ref = aif.expected_free_energy(model, [q[b] for q in qs], policies)
        assert np.abs(G[b].numpy() - G_ref).max() < TOL
        assert np.abs(terms["ambiguity"][b].numpy() - terms_ref["ambiguity"]).max() < TOL


def test_chunks_and_shuffled_explicit_lists_give_the_same_result():
    model, qs, rng = model_and_beliefs(1, num_controls=(3, 2))
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    q_t = [torch.tensor(q) for q in qs]
    H = 4  # 6 joint actions: 1296 policies
    G_full, _ = aif_deep.evaluate_policies(tm, q_t, horizon=H)
    G_chunked, _ = aif_deep.evaluate_policies(tm, q_t, horizon=H, memory_budget=1_000_000)  # about 9 chunks
    assert torch.allclose(G_full, G_chunked, rtol=0, atol=TOL)
    policies = aif.enumerate_policies(model.num_controls, H)
    pick = rng.choice(len(policies), 300, replace=False)  # unsorted, a sparse subtree
    G_pick, terms_pick = aif_deep.expected_free_energy(tm, q_t, policies[pick], memory_budget=300_000)
    assert torch.allclose(G_pick, G_full[:, pick], rtol=0, atol=TOL)
    G_ref, _ = aif.expected_free_energy(model, [q[0] for q in qs], policies[pick])
    assert np.abs(G_pick[0].numpy() - G_ref).max() < TOL
    # Enumeration over some factors only (the others stay at action 0), as aif.enumerate_policies.
    G_f0, _ = aif_deep.evaluate_policies(tm, q_t, horizon=2, control_factors=[0])
    G_f0_ref, _ = aif_deep.expected_free_energy(tm, q_t, aif.enumerate_policies(model.num_controls, 2, [0]))
    assert G_f0.shape == (3, 9) and torch.allclose(G_f0, G_f0_ref, rtol=0, atol=TOL)
    # Duplicated policies are scored alike.
    G_dup, _ = aif_deep.expected_free_energy(tm, q_t, policies[[5, 5, 3]])
    assert torch.equal(G_dup[:, 0], G_dup[:, 1])


def test_prefix_tree_of_sorted_rows():
    rows = torch.tensor([[[0], [0]], [[0], [1]], [[1], [1]]])
    (p1, a1, n1), (p2, a2, n2) = _prefix_tree(rows)
    assert p1.tolist() == [0, 0] and a1[:, 0].tolist() == [0, 1] and n1.tolist() == [0, 0, 1]
    assert p2.tolist() == [0, 0, 1] and a2[:, 0].tolist() == [0, 1, 1] and n2.tolist() == [0, 1, 2]


def test_terminal_value_is_added_with_discount():
    model, qs, _ = model_and_beliefs(2, batch=1)
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    H, discount = 3, 0.9

    def value(qs_h):  # any function of the beliefs at the horizon: (N, *batch, S_f) -> (N, *batch)
        return (qs_h[0] ** 2).sum(-1) - qs_h[1][..., 0]

    G, terms = aif_deep.evaluate_policies(tm, [torch.tensor(q[0]) for q in qs], horizon=H,
                                          terms=(*aif.DEFAULT_TERMS, aif.TerminalValue(value, discount)))
    policies = aif.enumerate_policies(model.num_controls, H)
    G_ref, _ = aif.expected_free_energy(model, [q[0] for q in qs], policies)
    for p, policy in enumerate(policies):
        q = [x[0] for x in qs]
        for u in policy:
            q = aif.predict(model, q, u)
        V = float((q[0] ** 2).sum() - q[1][0])
        assert abs(float(terms["terminal_value"][p]) - discount**H * V) < TOL  # as it enters G
        assert abs(float(G[p]) - (G_ref[p] + discount**H * V)) < TOL


def test_long_horizon_small_version():
    """4 actions, horizon 7 (16,384 policies) for a batch of 4 beliefs in chunks; spot-check against aif."""
    model, qs, rng = model_and_beliefs(3, num_states=(6, 2), num_obs=(6, 3), num_controls=(4, 1), batch=4)
    tm = aif_deep.TabularModel.from_aif(model, device="cpu", dtype=torch.float64)
    H = 7
    G, terms = aif_deep.evaluate_policies(tm, [torch.tensor(q) for q in qs], horizon=H, memory_budget=32_000_000)
    assert G.shape == (4, 4**H)
    assert torch.allclose(terms["risk"] + terms["ambiguity"], -(terms["utility"] + terms["state_info_gain"]),
                          rtol=0, atol=1e-9)
    policies = aif.enumerate_policies(model.num_controls, H)
    pick = np.sort(rng.choice(len(policies), 64, replace=False))
    G_ref, _ = aif.expected_free_energy(model, [q[2] for q in qs], policies[pick])
    assert np.abs(G[2, pick].numpy() - G_ref).max() < TOL


@pytest.mark.skipif(not torch.cuda.is_available(), reason="1,048,576 policies x 64 beliefs is a GPU run; the CPU "
                    "runs test_long_horizon_small_version")
def test_million_policies_for_64_beliefs_in_one_call_on_cuda():
    """Horizon 10 with 4 actions: 1,048,576 policies for 64 beliefs, float32, in a memory budget."""
    model, qs, _ = model_and_beliefs(4, num_states=(5, 2), num_obs=(4, 2), num_controls=(4, 1), batch=1)
    device = aif_deep.default_device()
    tm = aif_deep.TabularModel.from_aif(model, device=device, dtype=torch.float32)
    batch = 64
    q = [torch.tensor(np.repeat(x, batch, 0), dtype=torch.float32, device=device) for x in qs]
    G, terms = aif_deep.evaluate_policies(tm, q, horizon=10, with_terms=False, memory_budget=1 << 30)
    assert G.shape == (batch, 4**10) and terms == {}
    assert torch.isfinite(G).all()
    # The first and last policies (all 0s, all 3s) against aif.
    for idx, action in ((0, 0), (4**10 - 1, 3)):
        policy = np.zeros((1, 10, 2), dtype=int)
        policy[..., 0] = action
        G_ref, _ = aif.expected_free_energy(model, [x[0] for x in qs], policy)
        assert abs(float(G[0, idx]) - G_ref[0]) < 1e-4 * max(1.0, abs(G_ref[0]))
    assert math.prod(G.shape) == batch * 1_048_576
