"""Latent goals: distributions over hidden states worth reaching, from control as inference (``soft_value``).

Two goal distributions, both over the model's joint hidden state and both returned in logs, ready for the EFE
term ``aif.efe.GoalDivergence(log_goal, weight)`` (terminal matching, ``KL[q(s_H | pi) || p_g]``):

- the desired distribution ``p*(s) ∝ exp(V(s) / alpha)`` of the soft value ``V`` (``log_desired_distribution``):
  the states from which the rest of a long plan is worth most;
- the optimal visitation ``rho*(s) = 1/T sum_{t=1..T} p(s_t | O_{0:T})`` (``log_optimal_visitation``): where
  the optimality-conditioned trajectory spends its time, from the forward and backward messages of
  ``optimal_state_marginals``.

``model_goal`` builds ``p*`` for a ``GenerativeModel``: rewards ``r(s) = sum_m A_m[:, s] . C_m`` (C as given, as
``SoftQPlanner`` uses it) over a long goal horizon, so that a planner with a short policy horizon is drawn towards
states from which the preferred outcomes are reachable beyond its horizon.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from ..checks import as_numbers, check_choice, check_fraction, check_integer, check_is_model, check_positive
from ..errors import ParameterError
from ..model import GenerativeModel
from .soft_value import MODES, joint_rewards, joint_transitions, optimal_state_marginals, soft_value_iteration


def log_desired_distribution(V: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``ln p*(s)`` with ``p*(s) ∝ exp(V(s) / alpha)``, normalised over the last axis.

    Args:
        V: soft values, ``(S,)`` (or ``(..., S)``), finite, e.g. ``soft_value_iteration(...).V[0]``.
        alpha: temperature > 0; small alpha concentrates p* on the best states, large alpha spreads it.

    Returns:
        the log-probabilities, shape of ``V``.
    """
    V = as_numbers(V, "V", ParameterError)
    if V.ndim == 0 or not np.isfinite(V).all():
        raise ParameterError(f"V must be a finite array of values with a state axis, got shape {V.shape}")
    return log_softmax(V / check_positive(alpha, "alpha"), axis=-1)


def log_optimal_visitation(B: np.ndarray, r: np.ndarray, horizon: int, initial: np.ndarray,
                           action_prior: np.ndarray | None = None, terminal: np.ndarray | None = None,
                           epsilon: float = 0.0) -> np.ndarray:
    """``ln rho*(s)``: the optimality-conditioned state marginals averaged over the steps ``t = 1 .. T``.

    ``rho*(s) = (1 - epsilon) / T sum_{t=1}^T p(s_t = s | O_{0:T}) + epsilon / S``, with the marginals from
    ``optimal_state_marginals`` (the exact posterior's forward and backward messages).

    Args:
        B, r, horizon, initial, action_prior, terminal: as ``optimal_state_marginals``.
        epsilon: in [0, 1), mass spread uniformly over all states; states the plan never reaches have
            ``rho* = 0`` (``-inf`` here) unless it is positive, and ``GoalDivergence`` needs finite logs.

    Returns:
        ``(S,)`` log-probabilities (``-inf`` where ``rho*`` is zero).
    """
    epsilon = check_fraction(epsilon, "epsilon", "[0, 1)")
    marginals = optimal_state_marginals(B, r, horizon, initial, action_prior, terminal)  # (T + 1, S)
    rho = (1.0 - epsilon) * marginals[1:].mean(axis=0) + epsilon / marginals.shape[1]
    with np.errstate(divide="ignore"):
        return np.log(rho)


def model_goal(model: GenerativeModel, horizon: int, alpha: float = 1.0, mode: str = "variational") -> np.ndarray:
    """``ln p*(s)`` over the model's joint hidden state, ``p* ∝ exp(V_0(s) / alpha)``, shape ``tuple(num_states)``.

    ``V_0`` is the soft value of being in ``s`` with ``horizon`` actions to go, from ``soft_value_iteration`` on the
    joint transitions with the rewards of ``SoftQPlanner`` (``r(s) = sum_m A_m[:, s] . C_m``, C as given, received
    by the states ``s_1 .. s_T`` the actions reach; its last column beyond a time-varying C's end).

    Args:
        model: the generative model (small: the joint transitions are built, as in ``SoftQPlanner``).
        horizon: the goal horizon T >= 1, usually much longer than the policy horizon.
        alpha: temperature > 0 of p*.
        mode: ``"variational"`` (maximum-entropy RL, not optimistic) or ``"exact"``.

    Returns:
        log-probabilities of shape ``tuple(model.num_states)``, ready for ``aif.efe.GoalDivergence``.
    """
    check_is_model(model)
    T = check_integer(horizon, "horizon")
    return goal_from_tables(joint_transitions(model), joint_rewards(model, T), alpha, mode).reshape(model.num_states)


def goal_from_tables(B: np.ndarray, rewards: np.ndarray, alpha: float = 1.0, mode: str = "variational") -> np.ndarray:
    """``ln p*(s)`` over a flat state space, ``p* ∝ exp(V_0(s) / alpha)``, from transitions and state rewards.

    ``model_goal`` for any model that can be tabulated: a tabular model's joint arrays, or a neural model's
    transition network and reward head evaluated on every latent state (``aif_deep.NeuralModel.goal``).

    Args:
        B: joint transitions ``(S, S, U)``, ``B[s', s, u]``, columns summing to 1.
        rewards: ``(T, S)``, row t the reward of the state after t + 1 actions (``joint_rewards``); T >= 1 is
            the goal horizon.
        alpha: temperature > 0 of p*.
        mode: ``"variational"`` (maximum-entropy RL, not optimistic) or ``"exact"``.

    Returns:
        ``(S,)`` log-probabilities, ready (reshaped to the model's state shape) for ``aif.efe.GoalDivergence``.
    """
    check_choice(mode, "mode", MODES)
    B, rewards = as_numbers(B, "B", ParameterError), as_numbers(rewards, "rewards", ParameterError)
    if B.ndim != 3 or B.shape[0] != B.shape[1] or not np.allclose(B.sum(0), 1.0):
        raise ParameterError(f"B must be joint transitions (S, S, U) with columns summing to 1, got shape {B.shape}")
    if rewards.ndim != 2 or rewards.shape[1] != B.shape[0] or rewards.shape[0] < 1 or not np.isfinite(rewards).all():
        raise ParameterError(f"rewards must be finite (T >= 1, S = {B.shape[0]}), got shape {rewards.shape}")
    T = rewards.shape[0]
    r, terminal = staged_rewards(rewards, T, B.shape[-1])
    V = soft_value_iteration(B, r, T, mode, terminal=terminal).V[0]
    return log_desired_distribution(V, alpha)


def staged_rewards(r_next: np.ndarray, horizon: int, num_controls: int) -> tuple[np.ndarray, np.ndarray]:
    """State rewards received by the states ``s_1 .. s_T`` that T actions reach, as ``soft_value_iteration``'s
    stage rewards and terminal value (``SoftQPlanner``'s convention).

    Args:
        r_next: ``(S,)``, or ``(T, S)`` with row t the reward of ``s_{t+1}`` (``joint_rewards``).
        horizon: T; num_controls: U.

    Returns:
        ``(stages (T, S, U), terminal (S,))``: stage t rewards ``s_t`` (``s_0``, chosen by no action, gets 0) and
        the terminal value is the reward of ``s_T``.
    """
    r_next = np.broadcast_to(r_next, (horizon, r_next.shape[-1]))
    stages = np.zeros((horizon, r_next.shape[1], num_controls))
    stages[1:] = r_next[:-1, :, None]
    return stages, r_next[-1]


__all__ = ["goal_from_tables", "log_desired_distribution", "log_optimal_visitation", "model_goal", "staged_rewards"]
