"""Maximum-entropy inverse RL of C: the likelihood against its definition, its gradient against finite differences
and against empirical-minus-expected feature counts, and recovery of a random C on a small grid."""

import numpy as np
import pytest

import aif
from aif.errors import ParameterError, PolicyError
from aif.planning import (
    IRLSettings,
    decision_counts,
    fit_preferences,
    joint_transitions,
    likelihood_and_gradient,
    maxent_policy,
    outcome_features,
    sample_demonstrations,
    state_marginals,
)


def grid_case(slip, seed=0, shape=(3, 4), n=30, T=5):
    rng = np.random.default_rng(seed)
    model = aif.envs.GridWorld(shape, slip=slip).generative_model()
    B, phi = joint_transitions(model), outcome_features(model)
    theta = rng.normal(size=phi.shape[1])
    policy = maxent_policy(B, phi, theta, T).policy
    S = B.shape[0]
    states, actions = sample_demonstrations(B, policy, np.full(S, 1 / S), n, rng)
    return model, B, phi, theta, policy, states, actions


def test_outcome_features_give_the_soft_q_planners_rewards():
    rng = np.random.default_rng(1)
    model = aif.random_model(rng, [2, 3], [3, 2], [2, 1], A_dependencies=[[1], [0, 1]])
    r = aif.planning.joint_rewards(model.replace(C=[c[:, None] if c.ndim == 1 else c for c in model.C]), 1)[0]
    np.testing.assert_allclose(outcome_features(model) @ np.concatenate(model.C), r, atol=1e-14)


@pytest.mark.parametrize("slip, plan_horizon", [(0.0, None), (0.2, None), (0.2, 3)])
def test_likelihood_is_its_definition_and_its_gradient_the_finite_differences(slip, plan_horizon):
    model, B, phi, theta, policy, states, actions = grid_case(slip)
    S, U = B.shape[0], B.shape[-1]
    counts = decision_counts(states, actions, S, U, plan_horizon)
    L, grad = likelihood_and_gradient(B, phi, theta, counts)
    T_plan = counts.shape[0]
    pi = maxent_policy(B, phi, theta, T_plan).policy
    steps = np.broadcast_to(np.arange(actions.shape[1]) if plan_horizon is None else 0, actions.shape)
    assert L == pytest.approx(np.log(pi[steps, states[:, :-1], actions]).sum(), abs=1e-10)
    eps = 1e-6
    fd = [(likelihood_and_gradient(B, phi, theta + eps * e, counts)[0]
           - likelihood_and_gradient(B, phi, theta - eps * e, counts)[0]) / (2 * eps) for e in np.eye(len(theta))]
    np.testing.assert_allclose(grad, fd, atol=1e-6)


def test_gradient_is_empirical_minus_expected_counts_for_deterministic_dynamics():
    model, B, phi, theta, policy, states, actions = grid_case(0.0, seed=3)
    N, S = states.shape[0], B.shape[0]
    _, grad = likelihood_and_gradient(B, phi, theta, decision_counts(states, actions, S, B.shape[-1]))
    empirical = phi[states[:, 1:]].sum(axis=(0, 1))
    expected = N * state_marginals(B, policy, np.bincount(states[:, 0], minlength=S) / N)[1:].sum(axis=0) @ phi
    np.testing.assert_allclose(grad, empirical - expected, atol=1e-10)


def test_recovers_a_random_c_on_a_small_grid():
    """A 4x4 grid, a random C ~ N(0, 1), 50 demonstrations of 60 steps by a demonstrator that re-plans one step
    ahead: the recovered C correlates with the true one (the example reaches 0.98 on 5x5 with 100 steps)."""
    rng = np.random.default_rng(0)
    model = aif.envs.GridWorld((4, 4)).generative_model()
    C_true = rng.normal(size=16)
    B, phi = joint_transitions(model), outcome_features(model)
    pi = maxent_policy(B, phi, C_true, 1).policy
    states, actions = sample_demonstrations(B, np.broadcast_to(pi, (60, 16, 5)), np.full(16, 1 / 16), 50, rng)
    fit = fit_preferences(model, states, actions, IRLSettings(plan_horizon=1))
    assert fit.converged
    assert np.corrcoef(fit.C[0], C_true)[0, 1] > 0.95
    uniform = fit_preferences(model, states, rng.integers(0, 5, size=actions.shape), IRLSettings(plan_horizon=1))
    assert np.std(uniform.C[0]) < 0.25 * np.std(fit.C[0])  # actions that show no preference: a flat C


def test_bad_demonstrations_and_settings_are_refused():
    model = aif.envs.GridWorld((2, 2)).generative_model()
    states, actions = np.zeros((3, 4), dtype=int), np.zeros((3, 3), dtype=int)
    with pytest.raises(PolicyError, match="expected"):
        fit_preferences(model, states[:, :3], actions)
    with pytest.raises(PolicyError, match=r"actions\[1, 2\] = 5 is out of range 0..4"):
        fit_preferences(model, states, np.where(np.arange(9).reshape(3, 3) == 5, 5, 0))
    with pytest.raises(PolicyError, match="integers"):
        fit_preferences(model, states.astype(float), actions)
    with pytest.raises(ParameterError, match="l2"):
        IRLSettings(l2=0.0)
    with pytest.raises(ParameterError, match="plan_horizon"):
        IRLSettings(plan_horizon=0)
    with pytest.raises(ParameterError, match="IRLSettings"):
        fit_preferences(model, states, actions, settings={"l2": 1.0})
