"""Latent goals: the desired distribution and optimal visitation against brute-force enumeration, the
GoalDivergence term against scipy in both packages, the cross-entropy planner against enumeration, and the
behaviour a person can check: a short-horizon planner drawn by the goal term reaches a goal beyond its horizon."""

import importlib.util
import itertools
import pathlib

import numpy as np
import pytest
from scipy.special import logsumexp, softmax
from scipy.stats import entropy

import aif
from aif.efe import GoalDivergence, InfoGain, TerminalValue, Utility
from aif.errors import ParameterError, PolicyError
from aif.planning import (
    CrossEntropyPlanner,
    log_desired_distribution,
    log_optimal_visitation,
    model_goal,
    soft_value_iteration,
)
from tests import efe_reference as ref


def random_mdp(rng, S=3, U=2):
    B = rng.dirichlet(np.ones(S), size=(S, U)).transpose(2, 0, 1)  # (S', S, U)
    return B, rng.normal(size=(S, U)), rng.normal(size=S)


def test_desired_distribution_is_the_softmax_of_the_values():
    V = np.array([1.0, -2.0, 0.5, 3.0])
    for alpha in (0.5, 1.0, 4.0):
        np.testing.assert_allclose(np.exp(log_desired_distribution(V, alpha)), softmax(V / alpha), atol=1e-15)
    with pytest.raises(ParameterError, match="alpha"):
        log_desired_distribution(V, 0.0)
    with pytest.raises(ParameterError, match="finite"):
        log_desired_distribution([1.0, np.inf])


def test_optimal_visitation_equals_brute_force_trajectories():
    """rho*(s) = mean_{t=1..T} p(s_t | O), p(tau | O) ∝ prod_t p(s_{t+1}|s_t,a_t) exp r(s_t,a_t) exp V_T(s_T)."""
    rng = np.random.default_rng(0)
    B, r, terminal = random_mdp(rng)
    S, U, T = 3, 2, 3
    initial = rng.dirichlet(np.ones(S))
    rho = np.zeros(S)
    for s0 in range(S):
        for actions in itertools.product(range(U), repeat=T):
            for path in itertools.product(range(S), repeat=T):
                states = (s0, *path)
                w = initial[s0] * np.exp(terminal[states[-1]])
                for t, a in enumerate(actions):
                    w *= B[states[t + 1], states[t], a] * np.exp(r[states[t], a])
                for s in path:
                    rho[s] += w / T
    rho /= rho.sum()
    np.testing.assert_allclose(np.exp(log_optimal_visitation(B, r, T, initial, terminal=terminal)), rho, atol=1e-12)
    mixed = np.exp(log_optimal_visitation(B, r, T, initial, terminal=terminal, epsilon=0.1))
    np.testing.assert_allclose(mixed, 0.9 * rho + 0.1 / S, atol=1e-12)


def test_model_goal_prefers_cells_near_the_goal():
    env = aif.envs.GridWorld((4, 4))
    model = env.generative_model(preference="goal")
    ln_p = model_goal(model, 12)
    assert ln_p.shape == (16,) and abs(logsumexp(ln_p)) < 1e-12
    d = env.distances()
    for i, j in itertools.product(range(16), repeat=2):
        if d[i] < d[j]:
            assert ln_p[i] > ln_p[j]  # closer to the goal: more desired
    V = soft_value_iteration(aif.planning.joint_transitions(model), np.zeros((12, 16, 5)), 12).V[0]
    assert np.ptp(log_desired_distribution(V)) < 1e-12  # no preferences: every state alike


def goal_case(seed):
    model, qs, policies = ref.random_case(seed)
    ln_p = np.random.default_rng(seed).normal(size=model.num_states)
    return model, qs, policies, ln_p - logsumexp(ln_p)


def test_goal_divergence_is_the_kl_of_the_beliefs_at_the_horizon():
    model, qs, policies, ln_p = goal_case(3)
    _, terms = aif.expected_free_energy(model, qs, policies, (Utility(), GoalDivergence(ln_p, 2.0)))
    for p, policy in enumerate(policies):
        q = qs
        for action in policy:
            q = ref.predict(model, q, action)
        joint = q[0]
        for q_f in q[1:]:
            joint = np.multiply.outer(joint, q_f)
        assert abs(terms["goal_divergence"][p] - 2.0 * entropy(joint.ravel(), np.exp(ln_p).ravel())) < 1e-10


def test_goal_divergence_minus_the_terminal_cross_entropy_is_the_negative_entropy():
    """The linear terminal attraction (a TerminalValue of -E_q ln p_g) and the KL differ by -H[q(s_H)]."""
    env = aif.envs.GridWorld((3, 3), slip=0.2)
    model = env.generative_model()
    ln_p = model_goal(model, 6).reshape(-1)
    policies = aif.enumerate_policies(model.num_controls, 2)
    qs = [np.full(9, 1 / 9)]
    cross = TerminalValue(lambda q: -(q[0] @ ln_p))
    _, kl = aif.expected_free_energy(model, qs, policies, (Utility(), GoalDivergence(ln_p)))
    _, ce = aif.expected_free_energy(model, qs, policies, (Utility(), cross))
    G, _ = aif.expected_free_energy(model, qs, policies, (Utility(),))
    q_H = np.stack([aif.predict(model, aif.predict(model, qs, p[0]), p[1])[0] for p in policies])
    np.testing.assert_allclose(kl["goal_divergence"] - ce["terminal_value"], -entropy(q_H, axis=1), atol=1e-12)


def test_goal_divergence_agrees_in_both_packages():
    torch = pytest.importorskip("torch")
    import aif_deep

    for seed in (1, 4):
        model, qs, policies, ln_p = goal_case(seed)
        terms = (Utility(), InfoGain(), GoalDivergence(ln_p, 0.7))
        G, out = aif.expected_free_energy(model, qs, policies, terms)
        tm = aif_deep.TabularModel.from_aif(model, device="cpu")
        q = [torch.as_tensor(x) for x in qs]
        for G_t, out_t in (aif_deep.evaluate_policies(tm, q, policies=policies, terms=terms),
                           aif_deep.PolicyEvaluator(tm, policies.shape[1], terms=terms)(q)):
            if G_t.shape[-1] != len(G):  # the evaluator scores every policy of the horizon: pick ours
                idx = [int(np.ravel_multi_index(p.ravel(), tuple(model.num_controls) * policies.shape[1]))
                       for p in policies]
                G_t, out_t = G_t[idx], {k: v[idx] for k, v in out_t.items()}
            np.testing.assert_allclose(G_t.numpy(), G, rtol=0, atol=1e-10)
            np.testing.assert_allclose(out_t["goal_divergence"].numpy(), out["goal_divergence"], rtol=0, atol=1e-10)


def test_goal_divergence_refuses_bad_goals():
    model, qs, policies, ln_p = goal_case(2)
    with pytest.raises(ParameterError, match="normalised"):
        GoalDivergence(ln_p + 1.0)
    with pytest.raises(ParameterError, match="non-finite"):
        GoalDivergence(np.array([0.0, -np.inf]))
    with pytest.raises(ParameterError, match="weight"):
        GoalDivergence(ln_p, 0.0)
    with pytest.raises(ParameterError, match="shape"):
        aif.expected_free_energy(model, qs, policies, (Utility(), GoalDivergence(np.log(np.full(7, 1 / 7)))))


def test_cross_entropy_planner_finds_the_enumerated_optimum():
    env = aif.envs.GridWorld((4, 4))
    model = env.generative_model(preference="goal")
    terms = (Utility(), GoalDivergence(model_goal(model, 10)))
    qs = [np.eye(16)[0]]
    G_all, _ = aif.expected_free_energy(model, qs, aif.enumerate_policies(model.num_controls, 3), terms)
    plan = CrossEntropyPlanner(horizon=3, samples=32, elites=8, iterations=3, efe_terms=terms).plan(
        model, qs, np.random.default_rng(0))
    assert plan.policies.shape == (5, 1, 1)  # first actions
    assert plan.G.min() == pytest.approx(G_all.min(), abs=1e-12)
    assert (plan.G >= G_all.reshape(5, 25).min(axis=1) - 1e-12).all()  # each first action: a sampled continuation
    assert int(plan.action[0]) == int(np.argmin(G_all)) // 25
    agent = aif.Agent(model, planner=CrossEntropyPlanner(horizon=3, samples=32, elites=4, efe_terms=terms),
                      rng=np.random.default_rng(0))
    assert aif.rollout(agent, env, 10, seed=0).terminated


@pytest.mark.parametrize("settings", [dict(elites=10, samples=5), dict(horizon=0), dict(smoothing=1.0),
                                      dict(iterations=1.5), dict(seed=-1)])
def test_cross_entropy_planner_refuses_bad_settings(settings):
    with pytest.raises((PolicyError, ParameterError)):
        CrossEntropyPlanner(**settings)


def test_cross_entropy_planner_needs_a_sample_per_first_action():
    model = aif.envs.GridWorld((3, 3)).generative_model()
    with pytest.raises(PolicyError, match="below the 5 joint first actions"):
        CrossEntropyPlanner(samples=4, elites=2).plan(model, [np.eye(9)[0]])


def test_goal_term_reaches_a_goal_beyond_the_policy_horizon():
    """From cells farther than the horizon (2), plain EFE with a sparse goal preference sees no difference between
    its policies; the terminal-matching planner reaches the goal from each, as the tabular agent planning over the
    whole grid with the true model (SoftQPlanner) does."""
    env = aif.envs.GridWorld((5, 5))
    model = env.generative_model(preference="goal")
    goal = GoalDivergence(model_goal(model, 16))
    far = [(0, 0), (0, 4), (2, 1)]
    agents = {"efe": dict(policy_horizon=2), "goal": dict(policy_horizon=2, efe_terms=(Utility(), goal)),
              "true model": dict(planner=aif.planning.SoftQPlanner(horizon=8))}
    reached = {name: [aif.rollout(aif.Agent(model, **kw), env, 12, options={"D": [np.eye(25)[env.index(c)]]},
                                  seed=0).terminated for c in far] for name, kw in agents.items()}
    assert reached["goal"] == reached["true model"] == [True, True, True]
    assert not any(reached["efe"])


def test_latent_goals_example_runs_quick():
    path = pathlib.Path(__file__).parents[1] / "examples" / "latent_goals.py"
    spec = importlib.util.spec_from_file_location("latent_goals", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results = example.main(["--quick"])
    assert results[5, "goal, H=2"] == results[5, "goal, CEM H=4"] == results[5, "true model"] == 1.0
    # plain EFE over two steps sees no difference between its policies: it reaches the goal only where the first
    # of the tied policies happens to lead there (1 of the 5 quick start cells)
    assert results[5, "EFE, H=2"] <= 0.2
