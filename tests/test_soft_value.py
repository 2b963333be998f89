"""Soft value iteration (control as inference) against brute-force enumeration of trajectories."""

import itertools

import numpy as np
import pytest
from scipy.special import logsumexp

from aif import GenerativeModel, random_model
from aif.errors import ModelError, ParameterError
from aif.planning import (
    SoftQPlanner,
    forward_messages,
    joint_rewards,
    joint_transitions,
    optimal_state_marginals,
    soft_value_iteration,
    state_marginals,
)

TOL = 1e-10


def _g_action(plan):
    """A ``Plan``'s G over joint first actions and its action."""
    return plan.G, plan.action


def random_mdp(rng, S, U, T, time_varying=False, with_prior=False, concentration=1.0):
    B = rng.gamma(concentration, size=(S, S, U)) + 1e-12
    B /= B.sum(axis=0, keepdims=True)
    r = rng.normal(size=(T, S, U) if time_varying else (S, U))
    prior = None
    if with_prior:
        prior = rng.dirichlet(np.ones(U), size=S)
    terminal = rng.normal(size=S)
    return B, r, prior, terminal


def trajectories(B, r, T, terminal, prior=None):
    """Every trajectory (s_0, a_0, ..., a_{T-1}, s_T) with its log weight under optimality.

    log w = sum_t [ln p(a_t|s_t) + ln B[s_{t+1}, s_t, a_t] + r_t(s_t, a_t)] + terminal(s_T).
    """
    S, _, U = B.shape
    r = np.broadcast_to(r, (T, S, U))
    prior = np.ones((S, U)) if prior is None else np.broadcast_to(prior, (S, U))
    out = []
    for states in itertools.product(range(S), repeat=T + 1):
        for actions in itertools.product(range(U), repeat=T):
            logw = terminal[states[-1]]
            for t in range(T):
                s, a, s1 = states[t], actions[t], states[t + 1]
                logw += np.log(prior[s, a]) + np.log(B[s1, s, a]) + r[t, s, a]
            out.append((states, actions, logw))
    return out


CASES = [  # (S, U, T, time_varying, with_prior)
    (2, 2, 2, False, False),
    (3, 2, 2, True, False),
    (2, 2, 3, False, True),
    (3, 2, 3, True, True),
    (3, 3, 2, False, False),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_exact_values_and_first_action_posterior_match_enumeration(case):
    S, U, T, tv, wp = CASES[case]
    rng = np.random.default_rng(100 + case)
    B, r, prior, terminal = random_mdp(rng, S, U, T, tv, wp)
    values = soft_value_iteration(B, r, T, "exact", action_prior=prior, terminal=terminal)
    assert values.Q.shape == (T, S, U) and values.V.shape == (T + 1, S)
    trajs = trajectories(B, r, T, terminal, prior)
    for s0 in range(S):
        logw = np.array([w for st, _, w in trajs if st[0] == s0])
        first = np.array([ac[0] for st, ac, _ in trajs if st[0] == s0])
        V_brute = logsumexp(logw)
        assert abs(values.V[0, s0] - V_brute) < TOL
        post = np.array([np.exp(logsumexp(logw[first == a]) - V_brute) for a in range(U)])
        np.testing.assert_allclose(values.policy[0, s0], post, atol=TOL, rtol=0)
    # later steps: p(a_t | s_t, O) from the enumeration (s_0 uniform, so every state has mass)
    logw = np.array([w for *_, w in trajs])
    for t in range(1, T):
        s_t = np.array([st[t] for st, _, _ in trajs])
        a_t = np.array([ac[t] for _, ac, _ in trajs])
        for s in range(S):
            z = logsumexp(logw[s_t == s])
            post = [np.exp(logsumexp(logw[(s_t == s) & (a_t == a)]) - z) for a in range(U)]
            np.testing.assert_allclose(values.policy[t, s], post, atol=TOL, rtol=0)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_optimal_state_marginals_match_enumeration(case):
    S, U, T, tv, wp = CASES[case]
    rng = np.random.default_rng(200 + case)
    B, r, prior, terminal = random_mdp(rng, S, U, T, tv, wp)
    initial = rng.dirichlet(np.ones(S))
    trajs = trajectories(B, r, T, terminal, prior)
    logw = np.array([w + np.log(initial[st[0]]) for st, _, w in trajs])
    w = np.exp(logw - logsumexp(logw))
    brute = np.zeros((T + 1, S))
    for (states, _, _), w_i in zip(trajs, w, strict=False):
        brute[np.arange(T + 1), states] += w_i
    marg = optimal_state_marginals(B, r, T, initial, action_prior=prior, terminal=terminal)
    np.testing.assert_allclose(marg, brute, atol=TOL, rtol=0)
    # the forward messages carry the evidence: log p(O) = logsumexp(ln alpha_T + V_T)
    log_alpha = forward_messages(B, r, T, initial, action_prior=prior)
    assert abs(logsumexp(log_alpha[T] + terminal) - logsumexp(logw)) < TOL


def elbo(B, r, T, terminal, policy, s0, prior=None):
    """E_q[sum_t r_t + ln p(a_t|s_t) - ln pi_t(a_t|s_t) + terminal], q = pi with the true dynamics."""
    S, _, U = B.shape
    r = np.broadcast_to(r, (T, S, U))
    prior = np.ones((S, U)) if prior is None else np.broadcast_to(prior, (S, U))
    total = 0.0
    for states in itertools.product(range(S), repeat=T):
        states = (s0,) + states
        for actions in itertools.product(range(U), repeat=T):
            q, ret = 1.0, terminal[states[-1]]
            for t in range(T):
                s, a, s1 = states[t], actions[t], states[t + 1]
                q *= policy[t, s, a] * B[s1, s, a]
                ret += r[t, s, a] + np.log(prior[s, a]) - np.log(policy[t, s, a])
            total += q * ret
    return total


@pytest.mark.parametrize("case", range(len(CASES)))
def test_variational_value_is_the_maximum_entropy_optimum(case):
    S, U, T, tv, wp = CASES[case]
    rng = np.random.default_rng(300 + case)
    B, r, prior, terminal = random_mdp(rng, S, U, T, tv, wp)
    var = soft_value_iteration(B, r, T, "variational", action_prior=prior, terminal=terminal)
    exact = soft_value_iteration(B, r, T, "exact", action_prior=prior, terminal=terminal)
    np.testing.assert_allclose(var.policy.sum(axis=-1), 1.0, atol=1e-12)
    for s0 in range(S):
        assert abs(elbo(B, r, T, terminal, var.policy, s0, prior) - var.V[0, s0]) < TOL
        # any other policy scores lower; the exact log-evidence bounds them all (Jensen)
        for _ in range(5):
            other = rng.dirichlet(np.ones(U), size=(T, S))
            assert elbo(B, r, T, terminal, other, s0, prior) < var.V[0, s0]
        assert var.V[0, s0] < exact.V[0, s0]


def test_exact_equals_variational_under_deterministic_dynamics():
    rng = np.random.default_rng(4)
    S, U, T = 3, 2, 3
    B = np.zeros((S, S, U))
    B[rng.integers(S, size=(S, U)), np.arange(S)[:, None], np.arange(U)[None]] = 1.0
    r = rng.normal(size=(S, U))
    exact = soft_value_iteration(B, r, T, "exact")
    var = soft_value_iteration(B, r, T, "variational")
    np.testing.assert_allclose(exact.Q, var.Q, atol=1e-12)
    np.testing.assert_allclose(exact.policy, var.policy, atol=1e-12)
    # with deterministic dynamics the posterior's marginals are those of running its policy from the
    # posterior over s_0, p(s_0 | O) ∝ p(s_0) exp V_0(s_0)
    initial = rng.dirichlet(np.ones(S))
    marg = optimal_state_marginals(B, r, T, initial)
    np.testing.assert_allclose(marg[0], initial * np.exp(exact.V[0]) / (initial @ np.exp(exact.V[0])),
                               atol=1e-12)
    np.testing.assert_allclose(marg, state_marginals(B, exact.policy, marg[0]), atol=1e-12)


def test_state_marginals_match_enumeration_of_the_policy():
    rng = np.random.default_rng(5)
    S, U, T = 3, 2, 3
    B, r, _, _ = random_mdp(rng, S, U, T)
    policy = rng.dirichlet(np.ones(U), size=(T, S))
    initial = rng.dirichlet(np.ones(S))
    brute = np.zeros((T + 1, S))
    for states in itertools.product(range(S), repeat=T + 1):
        for actions in itertools.product(range(U), repeat=T):
            p = initial[states[0]]
            for t in range(T):
                p *= policy[t, states[t], actions[t]] * B[states[t + 1], states[t], actions[t]]
            brute[np.arange(T + 1), states] += p
    np.testing.assert_allclose(state_marginals(B, policy, initial), brute, atol=TOL, rtol=0)


def lottery(p_win=1e-3, big=20.0, r_safe=1.0):
    """State 0 is the start; action 0 (safe) goes to state 1 (reward r_safe); action 1 (lottery) goes to
    state 2 (reward `big`) with probability p_win and to state 3 (reward 0) otherwise."""
    B = np.zeros((4, 4, 2))
    B[1, 0, 0] = 1.0
    B[2, 0, 1], B[3, 0, 1] = p_win, 1.0 - p_win
    for s in (1, 2, 3):
        B[s, s, :] = 1.0  # absorbing
    return B, np.array([0.0, r_safe, big, 0.0])


def test_lottery_exact_posterior_is_optimistic_variational_is_not():
    B, reward = lottery()
    expected_lottery = 1e-3 * 20.0
    assert expected_lottery < 1.0  # the lottery is worse on average
    exact = soft_value_iteration(B, np.zeros(4), 1, "exact", terminal=reward)
    var = soft_value_iteration(B, np.zeros(4), 1, "variational", terminal=reward)
    # exact: Q(lottery) = ln(p e^20 + (1 - p)) ~ 13.1, far above the safe 1
    assert abs(exact.Q[0, 0, 1] - np.log(1e-3 * np.exp(20.0) + 0.999)) < 1e-12
    assert exact.policy[0, 0, 1] > 0.999
    # variational: Q(lottery) = E[r] = 0.02 < 1
    np.testing.assert_allclose(var.Q[0, 0], [1.0, expected_lottery], atol=1e-12)
    assert var.policy[0, 0, 0] > var.policy[0, 0, 1]
    # the optimism shows in the posterior marginals: the posterior believes it will win
    marg = optimal_state_marginals(B, np.zeros(4), 1, np.eye(4)[0], terminal=reward)
    assert marg[1, 2] > 0.99
    # running the exact policy in the real dynamics wins almost never
    assert state_marginals(B, exact.policy, np.eye(4)[0])[1, 2] < 2e-3


def test_action_prior_normalised_uniform_only_shifts_values():
    rng = np.random.default_rng(6)
    B, r, _, terminal = random_mdp(rng, 3, 2, 3)
    for mode in ("exact", "variational"):
        a = soft_value_iteration(B, r, 3, mode, terminal=terminal)
        b = soft_value_iteration(B, r, 3, mode, action_prior=np.full(2, 0.5), terminal=terminal)
        np.testing.assert_allclose(a.policy, b.policy, atol=1e-12)
        # one ln 2 per remaining step
        np.testing.assert_allclose(a.V - b.V, np.log(2) * np.arange(3, -1, -1)[:, None] + np.zeros(3), atol=1e-12)


def test_bad_inputs_raise():
    B, reward = lottery()
    with pytest.raises(ParameterError, match="mode"):
        soft_value_iteration(B, reward, 1, "optimistic")
    with pytest.raises(ParameterError, match="horizon"):
        soft_value_iteration(B, reward, 0)
    with pytest.raises(ParameterError, match="r has shape"):
        soft_value_iteration(B, np.zeros(3), 1)
    with pytest.raises(ParameterError, match=r"non-finite entry -inf at index \(2,\)"):
        soft_value_iteration(B, np.array([0.0, 1.0, -np.inf, 0.0]), 1)
    bad = B.copy()
    bad[0, 1, 0] = 0.5
    with pytest.raises(ModelError, match=r"at \(state, action\) \(1, 0\)"):
        soft_value_iteration(bad, reward, 1)
    with pytest.raises(ParameterError, match="action_prior"):
        soft_value_iteration(B, reward, 1, action_prior=[0.7, 0.7])
    with pytest.raises(ParameterError):
        SoftQPlanner(horizon=2, mode="maximum")


# --- the POMDP planner ---------------------------------------------------------------------------------


def test_joint_transitions_and_rewards_match_loops():
    rng = np.random.default_rng(7)
    model = random_model(rng, [2, 3], [3, 2], num_controls=[2, 3],
                         A_dependencies=[[1, 0], [1]], B_dependencies=[[0], [1, 0]])
    B = joint_transitions(model)
    R = joint_rewards(model, 1)[0]
    S, U = model.num_states, model.num_controls
    for (n0, n1), (s0, s1), (u0, u1) in itertools.product(np.ndindex(*S), np.ndindex(*S), np.ndindex(*U)):
        p = model.B[0][n0, s0, u0] * model.B[1][n1, s1, s0, u1]
        assert abs(B[np.ravel_multi_index((n0, n1), S), np.ravel_multi_index((s0, s1), S),
                     np.ravel_multi_index((u0, u1), U)] - p) < 1e-14
    for s0, s1 in np.ndindex(*S):
        want = model.A[0][:, s1, s0] @ model.C[0] + model.A[1][:, s1] @ model.C[1]
        assert abs(R[np.ravel_multi_index((s0, s1), S)] - want) < 1e-14


def test_one_step_variational_planner_is_the_expected_utility():
    rng = np.random.default_rng(8)
    model = random_model(rng, [3, 2], [4, 3], num_controls=[3, 2], C_scale=2.0)
    qs = [rng.dirichlet(np.ones(s)) for s in model.num_states]
    G, action = _g_action(SoftQPlanner(horizon=1).plan(model, qs))
    want = []
    for u in itertools.product(*[range(u) for u in model.num_controls]):
        nxt = [model.B[f][:, :, u[f]] @ qs[f] for f in range(2)]
        want.append(-sum(np.einsum("oij,i,j->o", A_m, *nxt) @ C_m for A_m, C_m in zip(model.A, model.C, strict=False)))
    np.testing.assert_allclose(G, want, atol=1e-12)
    assert tuple(action) == np.unravel_index(np.argmin(want), model.num_controls)


def test_one_step_planner_agrees_with_efe_utility_when_available():
    import aif

    if not hasattr(aif, "expected_free_energy"):
        pytest.skip("aif.expected_free_energy is not there yet")
    rng = np.random.default_rng(9)
    model = random_model(rng, [3, 2], [4, 3], num_controls=[3, 2])
    qs = [rng.dirichlet(np.ones(s)) for s in model.num_states]
    policies = aif.enumerate_policies(model.num_controls, 1)
    # C as given, as the planner uses it
    G_efe, _ = aif.expected_free_energy(model, qs, policies, terms=(aif.Utility(),),
                                        options=aif.EFEOptions(normalize_C=False))
    G, _ = _g_action(SoftQPlanner(horizon=1).plan(model, qs))
    np.testing.assert_allclose(G, G_efe, atol=1e-10)


def corridor(n=5, goal_reward=3.0, slip=0.0):
    """A corridor of n cells; actions left, stay, right (slipping to 'stay' with probability `slip`);
    the agent sees its cell and prefers the last one."""
    B = np.zeros((n, n, 3))
    for s in range(n):
        for u, step in enumerate((-1, 0, 1)):
            B[min(max(s + step, 0), n - 1), s, u] += 1.0 - slip
            B[s, s, u] += slip
    C = np.zeros(n)
    C[-1] = goal_reward
    return GenerativeModel([np.eye(n)], [B], [C])


def test_planner_walks_down_the_corridor_to_the_goal():
    model = corridor()
    for mode in ("variational", "exact"):
        planner = SoftQPlanner(horizon=4, mode=mode)
        s = 0
        for _ in range(4):
            _, action = _g_action(planner.plan(model, [np.eye(5)[s]]))
            s = int(np.argmax(model.B[0][:, s, action[0]]))
        assert s == 4
    # horizon 2 from the start cannot see the goal: every action scores the same
    G, _ = _g_action(SoftQPlanner(horizon=2).plan(model, [np.eye(5)[0]]))
    np.testing.assert_allclose(G, G[0], atol=1e-12)
    # belief-weighted: half sure of being at the goal end, the planner stays or moves right, not left
    G, action = _g_action(SoftQPlanner(horizon=2).plan(model, [np.array([0, 0, 0, 0.5, 0.5])]))
    assert action[0] in (1, 2) and G[0] > G[1]


def test_exact_planner_equals_variational_on_deterministic_model_and_differs_on_slippery():
    qs = [np.array([0.2, 0.3, 0.5, 0.0, 0.0])]
    G_var, _ = _g_action(SoftQPlanner(horizon=3, mode="variational").plan(corridor(), qs))
    G_ex, _ = _g_action(SoftQPlanner(horizon=3, mode="exact").plan(corridor(), qs))
    np.testing.assert_allclose(G_var, G_ex, atol=1e-12)
    G_var, _ = _g_action(SoftQPlanner(horizon=3, mode="variational").plan(corridor(slip=0.3), qs))
    G_ex, _ = _g_action(SoftQPlanner(horizon=3, mode="exact").plan(corridor(slip=0.3), qs))
    assert np.all(G_ex < G_var)  # the exact posterior is optimistic


def test_planner_rejects_beliefs_of_the_wrong_size():
    with pytest.raises(ParameterError, match="joint states"):
        SoftQPlanner().plan(corridor(), [np.ones(4) / 4])


def test_time_varying_preferences_keep_their_last_column():
    rng = np.random.default_rng(10)
    model = random_model(rng, [3], [2], num_controls=[2])
    C = rng.normal(size=(2, 2))
    model = model.replace(C=[C])
    R = joint_rewards(model, 3)
    np.testing.assert_allclose(R, (model.A[0].T @ C[:, [0, 1, 1]]).T, atol=1e-14)


def test_successor_indices_give_the_dense_forms_values():
    # deterministic dynamics as successor indices (S, U): the same Q, V and policy as the dense one-hot B
    rng = np.random.default_rng(11)
    S, U, T = 6, 3, 5
    succ = rng.integers(S, size=(S, U))
    B = np.zeros((S, S, U))
    B[succ, np.arange(S)[:, None], np.arange(U)[None]] = 1.0
    r = rng.normal(size=(S, U))
    prior = rng.dirichlet(np.ones(U))
    for mode in ("exact", "variational"):
        dense = soft_value_iteration(B, r, T, mode, action_prior=prior, terminal=rng.normal(size=S))
        sparse = soft_value_iteration(succ, r, T, mode, action_prior=prior, terminal=dense.V[T])
        for a, b in ((dense.Q, sparse.Q), (dense.V, sparse.V), (dense.policy, sparse.policy)):
            np.testing.assert_allclose(a, b, atol=1e-12)
    # an integer dense array of 0s and 1s is still read as the dense form
    np.testing.assert_allclose(soft_value_iteration(B.astype(int), r, T).Q, soft_value_iteration(B, r, T).Q)
    with pytest.raises(ModelError, match=r"successor indices must lie in \[0, 6\)"):
        soft_value_iteration(np.where(succ == 0, S, succ), r, T)
