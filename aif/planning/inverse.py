"""Inverse active inference on tabular models: the log-preferences C recovered from demonstrations.

Maximum-(causal-)entropy inverse RL (Ziebart et al. 2008, 2010) through soft value iteration: a demonstrator in
state ``s`` (observed: the demonstrations hold hidden states) draws its actions from the soft-optimal policy of
``soft_value_iteration(..., mode="variational")`` for the rewards of ``SoftQPlanner``,

    r(s) = sum_m A_m[:, s] . C_m = phi(s) . theta,      phi(s) = [A_0[:, s], A_1[:, s], ...],  theta = [C_0, C_1, ...]

received by the states ``s_1 .. s_T`` its ``T`` planned actions reach. Either it plans to the end of its
demonstration (a time-varying policy pi_t) or it re-plans ``H`` steps ahead before every action (the first step
of an H-step plan, a receding horizon, as an ``aif.Agent`` with ``SoftQPlanner(horizon=H)`` at unit precision;
``IRLSettings.plan_horizon``). The log-likelihood of the demonstrated decisions,
``L(theta) = sum_n sum_t ln pi(a_t^n | s_t^n)``, has the exact gradient ``likelihood_and_gradient`` computes by
successor features (the expected features of the states the policy goes on to visit); for a demonstrator that
plans to the end under deterministic dynamics it is the empirical minus the expected feature counts,

    dL/dtheta = sum_n sum_{t=1}^T phi(s_t^n) - sum_n E_{pi, s_0^n}[sum_{t=1}^T phi(s_t)]

(there L telescopes to ``sum_t r(s_t) - V_0(s_0)``). ``fit_preferences`` maximises ``L - l2 / 2 |theta|^2`` with
L-BFGS (``scipy.optimize.minimize``). C is used as given (not normalised), so each ``C_m`` is identified up to a
constant, which the Gaussian prior sets (its mean near 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from ..checks import as_numbers, check_integer, check_is_model, check_positive
from ..errors import ParameterError, PolicyError
from ..model import GenerativeModel
from .goals import staged_rewards
from .soft_value import SoftValues, joint_transitions, soft_value_iteration


def outcome_features(model: GenerativeModel) -> np.ndarray:
    """``phi(s)`` for every joint hidden state: the outcome distributions of all modalities, concatenated.

    Returns:
        ``(prod(num_states), sum(num_obs))``; ``phi @ concatenate(C)`` is ``SoftQPlanner``'s reward ``r(s)``.
    """
    check_is_model(model)
    F = model.num_factors
    blocks = []
    for A_m, deps in zip(model.A, model.A_dependencies, strict=True):
        # A_m (O, *S[deps]) -> (O, S_0, ..., S_{F-1}) with size-1 axes for the factors it does not read
        order = np.argsort(deps)
        A_sorted = np.moveaxis(A_m, list(1 + order), list(range(1, 1 + len(deps))))
        shape = [A_m.shape[0]] + [model.num_states[f] if f in deps else 1 for f in range(F)]
        full = np.broadcast_to(A_sorted.reshape(shape), (A_m.shape[0], *model.num_states))
        blocks.append(full.reshape(A_m.shape[0], -1).T)
    return np.concatenate(blocks, axis=1)


def maxent_policy(B: np.ndarray, features: np.ndarray, theta: np.ndarray, horizon: int) -> SoftValues:
    """The demonstrator's soft-optimal (maximum-causal-entropy) policy for rewards ``features @ theta``.

    Args:
        B: ``(S, S, U)`` joint transitions; ``features``: ``(S, K)``; ``theta``: ``(K,)``; ``horizon``: T.

    Returns:
        ``soft_value_iteration(..., mode="variational")``: ``policy`` ``(T, S, U)``, ``Q``, ``V``.
    """
    stages, terminal = staged_rewards(features @ theta, horizon, B.shape[-1])
    return soft_value_iteration(B, stages, horizon, "variational", terminal=terminal)


def check_demonstrations(states: np.ndarray, actions: np.ndarray, S: int, U: int) -> tuple[np.ndarray, np.ndarray]:
    """``states`` ``(N, T + 1)`` in ``0..S-1`` and ``actions`` ``(N, T)`` in ``0..U-1`` (integers, N, T >= 1), or a
    ``PolicyError`` naming the array and the first bad entry."""
    states = as_numbers(states, "states", PolicyError, None)
    actions = as_numbers(actions, "actions", PolicyError, None)
    if states.ndim != 2 or actions.ndim != 2 or states.shape[0] != actions.shape[0] or \
            states.shape[1] != actions.shape[1] + 1 or actions.size == 0:
        raise PolicyError(f"states has shape {states.shape} and actions {actions.shape}; expected (N, T + 1) and "
                          "(N, T) with N, T >= 1 (one row per demonstration)")
    for name, x, n in (("states", states, S), ("actions", actions, U)):
        if not np.issubdtype(x.dtype, np.integer):
            raise PolicyError(f"{name} must hold integers, got dtype {x.dtype}")
        bad = (x < 0) | (x >= n)
        if bad.any():
            i = tuple(int(k) for k in np.argwhere(bad)[0])
            raise PolicyError(f"{name}{list(i)} = {x[i]} is out of range 0..{n - 1}")
    return states.astype(np.intp), actions.astype(np.intp)


def sample_demonstrations(B: np.ndarray, policy: np.ndarray, initial: np.ndarray, n: int,
                          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` trajectories of a time-varying policy ``policy`` ``(T, S, U)`` under ``B`` ``(S, S, U)`` from
    ``s_0 ~ initial`` ``(S,)``: ``states`` ``(n, T + 1)`` and ``actions`` ``(n, T)`` (joint indices)."""
    T, S, U = policy.shape
    n = check_integer(n, "n")
    states = np.empty((n, T + 1), dtype=np.intp)
    actions = np.empty((n, T), dtype=np.intp)
    states[:, 0] = _draw(np.broadcast_to(initial, (n, S)), rng)
    for t in range(T):
        actions[:, t] = _draw(policy[t, states[:, t]], rng)
        states[:, t + 1] = _draw(B[:, states[:, t], actions[:, t]].T, rng)
    return states, actions


def _draw(p, rng):
    """One index per row of ``p`` ``(n, K)`` by the inverse CDF."""
    return np.minimum((rng.random((p.shape[0], 1)) > np.cumsum(p, axis=1)).sum(axis=1), p.shape[1] - 1)


def decision_counts(states: np.ndarray, actions: np.ndarray, S: int, U: int, plan_horizon: int | None = None
                    ) -> np.ndarray:
    """How often each (plan step, state, action) occurs in the demonstrations, ``(T_plan, S, U)``.

    ``plan_horizon=None``: the demonstrator plans to the end of its demonstration, so step t of a demonstration
    is step t of its plan (``T_plan = T``). An int H: it re-plans H steps ahead before every action (receding
    horizon), so every decision is the first step of a plan (``T_plan = H``, counts in row 0 only).
    Arguments are trusted (``check_demonstrations``).
    """
    N, T = actions.shape
    T_plan = T if plan_horizon is None else plan_horizon
    step = np.broadcast_to(np.arange(T) if plan_horizon is None else np.zeros(T, dtype=np.intp), (N, T))
    counts = np.zeros(T_plan * S * U)
    np.add.at(counts, np.ravel_multi_index((step, states[:, :-1], actions), (T_plan, S, U)).ravel(), 1.0)
    return counts.reshape(T_plan, S, U)


def likelihood_and_gradient(B: np.ndarray, features: np.ndarray, theta: np.ndarray, counts: np.ndarray
                            ) -> tuple[float, np.ndarray]:
    """The log-likelihood ``L = sum counts[t, s, a] ln pi_t(a | s)`` of demonstrated decisions under
    ``maxent_policy`` (``T = counts.shape[0]``) and its exact gradient, by successor features.

    In the variational form ``Q_t(s, a) = r_t(s) + sum_s' B[s', s, a] V_{t+1}(s')`` and ``V_t = ln sum_a exp Q_t``,
    so ``dV_t(s) = sum_a pi_t(a|s) dQ_t(s, a)``: the derivatives ``Psi_t = dQ_t / dtheta`` are the expected
    features of the states the policy goes on to visit, computed backwards like the values themselves, and
    ``d ln pi_t(a|s) = Psi_t(s, a) - sum_a' pi_t(a'|s) Psi_t(s, a')``. This holds for stochastic dynamics too; for
    deterministic ones and a demonstrator that plans to the end (``decision_counts(plan_horizon=None)``) the sum
    equals the empirical minus the expected feature counts (module docstring).

    Args:
        B: ``(S, S, U)``; features: ``(S, K)``; theta: ``(K,)``; counts: ``(T, S, U)`` (``decision_counts``).

    Returns:
        ``(L, (K,) gradient)``.
    """
    T = counts.shape[0]
    values = maxent_policy(B, features, theta, T)
    L = float((counts * (values.Q - values.V[:-1, :, None])).sum())  # ln pi = Q - V (no action prior)
    grad = np.zeros(features.shape[1])
    dV = features  # (S, K): dV_T / dtheta, the terminal reward phi(s_T) . theta
    for t in range(T - 1, -1, -1):
        dQ = np.einsum("ksa,kK->saK", B, dV, optimize=True)  # (S, U, K), less the stage reward, which cancels
        dV_t = np.einsum("sa,saK->sK", values.policy[t], dQ)
        grad += np.einsum("sa,saK->K", counts[t], dQ) - counts[t].sum(axis=1) @ dV_t
        dV = dV_t + (features if t >= 1 else 0.0)  # stage t >= 1 rewards s_t
    return L, grad


@dataclass(frozen=True)
class IRLSettings:
    """Settings of ``fit_preferences``.

    Attributes:
        plan_horizon: ``None``: the demonstrator plans to the end of each demonstration (a time-varying policy);
            an int H: it re-plans H steps ahead before every action (the first step of an H-step plan, as
            ``aif.Agent(model, planner=SoftQPlanner(horizon=H), gamma=1)`` with stochastic selection from q(pi)).
        l2: precision > 0 of the zero-mean Gaussian prior on C (a MAP fit; it also fixes C's free constant).
        max_iter: L-BFGS iterations at most.
        tol: L-BFGS's ``gtol`` on the gradient.
    """

    plan_horizon: int | None = None
    l2: float = 1.0
    max_iter: int = 1000
    tol: float = 1e-6

    def __post_init__(self) -> None:
        check_integer(self.plan_horizon, "IRLSettings.plan_horizon", optional=True)
        check_positive(self.l2, "IRLSettings.l2")
        check_integer(self.max_iter, "IRLSettings.max_iter")
        check_positive(self.tol, "IRLSettings.tol")


@dataclass(frozen=True, eq=False)
class IRLResult:
    """What ``fit_preferences`` returns.

    Attributes:
        C: the recovered log-preferences, one ``(num_obs[m],)`` array per modality (C as given: not normalised).
        log_likelihood: ``L`` of the demonstrations at C (without the prior).
        iterations: L-BFGS iterations taken.
        converged: whether L-BFGS reported success.
    """

    C: list
    log_likelihood: float
    iterations: int
    converged: bool


def fit_preferences(model: GenerativeModel, states: np.ndarray, actions: np.ndarray,
                    settings: IRLSettings | None = None) -> IRLResult:
    """Recover the log-preferences C from demonstrations by maximum-entropy inverse RL (MAP, L-BFGS).

    Args:
        model: the generative model whose A and B the demonstrator acts under (its C is not read); small: the
            joint transitions are built (``joint_transitions``).
        states: int ``(N, T + 1)``, the demonstrator's joint hidden states (raveled in C order) per step.
        actions: int ``(N, T)``, its joint actions (``aif.enumerate_policies(num_controls, 1)``'s order).
        settings: ``IRLSettings``.

    Returns:
        ``IRLResult``; ``model.replace(C=result.C)`` is the model that would act as the demonstrator did.
    """
    settings = IRLSettings() if settings is None else settings
    if not isinstance(settings, IRLSettings):
        raise ParameterError(f"settings must be an aif.planning.IRLSettings, got {settings!r}")
    check_is_model(model)
    B = joint_transitions(model)
    S, U = B.shape[0], B.shape[-1]
    counts = decision_counts(*check_demonstrations(states, actions, S, U), S, U, settings.plan_horizon)
    features = outcome_features(model)

    def objective(theta):  # the negative log posterior and its gradient
        L, g = likelihood_and_gradient(B, features, theta, counts)
        return -(L - 0.5 * settings.l2 * theta @ theta), -(g - settings.l2 * theta)

    fit = minimize(objective, np.zeros(features.shape[1]), jac=True, method="L-BFGS-B",
                   options={"maxiter": settings.max_iter, "gtol": settings.tol})
    splits = np.cumsum(model.num_obs)[:-1]
    return IRLResult(C=np.split(fit.x, splits), log_likelihood=likelihood_and_gradient(B, features, fit.x, counts)[0],
                     iterations=int(fit.nit), converged=bool(fit.success))


__all__ = ["outcome_features", "maxent_policy", "check_demonstrations", "sample_demonstrations",
           "decision_counts",
           "likelihood_and_gradient", "IRLSettings", "IRLResult", "fit_preferences"]
