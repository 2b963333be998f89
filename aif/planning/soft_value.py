"""Control as inference: soft value iteration on a finite horizon, and a POMDP planner built on it.

Optimality variables O_t with p(O_t = 1 | s_t, a_t) = exp(r_t(s_t, a_t)) turn planning into inference
(Levine 2018, "Reinforcement learning and control as probabilistic inference", sections 2-4). For a
trajectory ``s_0, a_0, s_1, ..., a_{T-1}, s_T`` with dynamics ``B[s', s, a] = p(s' | s, a)``, action prior
``p(a | s)`` and terminal value ``V_T(s)``::

    p(tau | O) ∝ prod_t p(a_t | s_t) p(s_{t+1} | s_t, a_t) exp(r_t(s_t, a_t)) · exp(V_T(s_T))

Backward messages (in logs) ``Q_t(s, a) = ln beta_t(s, a)`` and ``V_t(s) = ln beta_t(s)``:

    exact:        Q_t(s, a) = r_t(s, a) + ln sum_s' B[s', s, a] exp V_{t+1}(s')
    variational:  Q_t(s, a) = r_t(s, a) +    sum_s' B[s', s, a]     V_{t+1}(s')
    both:         V_t(s)    = ln sum_a p(a | s) exp Q_t(s, a)
                  pi_t(a|s) = p(a | s) exp(Q_t(s, a) - V_t(s))

The exact form is the posterior ``p(a_t | s_t, O_{t:T})``; its log-expectation of exp V is optimistic
under stochastic dynamics (it behaves as if it could choose the outcome of s'). The variational form
restricts q(tau) to the true dynamics and is the optimum of maximum-entropy RL,
``V_0(s) = max_pi E_pi[sum_t r_t + ln p(a_t|s_t) - ln pi(a_t|s_t) + V_T(s_T)]``; it equals the exact
form when the dynamics are deterministic, and is never above it (Jensen).

With ``action_prior=None`` the prior weight of every action is 1 (Levine's convention), so
``V = logsumexp_a Q``; a normalised uniform prior gives the same policy with V lower by ``ln U`` per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import logsumexp

from ..checks import (
    as_numbers,
    check_beliefs,
    check_choice,
    check_finite,
    check_integer,
    check_is_model,
    check_probability,
    check_sequence,
    check_transitions,
    check_vector,
)
from ..control import enumerate_policies
from ..efe import EFEOptions, log_preferences
from ..errors import BeliefError, ModelError, ParameterError, PolicyError
from ..maths import outer
from ..model import GenerativeModel
from ..strategies import NUMPY, Planner
from .base import Plan

MODES = ("exact", "variational")


@dataclass(frozen=True, eq=False)
class SoftValues:
    """The backward messages of soft value iteration, in logs.

    Attributes:
        Q: ``(T, S, U)``, ``Q[t, s, a] = ln beta_t(s, a)``; excludes the log action prior.
        V: ``(T + 1, S)``, ``V[t, s] = ln beta_t(s)``; ``V[T]`` is the terminal value.
        policy: ``(T, S, U)``, ``policy[t, s, a] = p(a | s) exp(Q[t, s, a] - V[t, s])``; sums to one over a.
    """

    Q: np.ndarray
    V: np.ndarray
    policy: np.ndarray


def soft_value_iteration(B: np.ndarray, r: np.ndarray, horizon: int, mode: str = "exact",
                         action_prior: np.ndarray | None = None, terminal: np.ndarray | None = None) -> SoftValues:
    """Finite-horizon soft value iteration (the backward pass of control as inference).

    Args:
        B: ``(S, S, U)``, ``B[s', s, a] = p(s' | s, a)``; columns sum to one. Or deterministic dynamics as
            successor indices: an integer array ``(S, U)``, ``B[s, a] = s'`` (the one-hot columns of the dense
            form without its ``S^2 U`` entries: state spaces of thousands, such as poses on a map); both modes
            are then the same, ``Q = r + V(s')``.
        r: rewards (log-likelihoods of optimality): ``(S,)`` for ``r(s)``, ``(S, U)`` for ``r(s, a)``, or
            ``(T, S, U)`` for time-varying ``r_t(s, a)``; received at steps ``t = 0 .. T-1``; finite.
        horizon: T >= 1, the number of actions.
        mode: ``"exact"``, ``Q = r + ln E[exp V(s')]`` (the exact posterior, optimistic under stochastic
            dynamics), or ``"variational"``, ``Q = r + E[V(s')]`` (maximum-entropy RL).
        action_prior: ``(U,)`` or ``(S, U)``, ``p(a | s)``, summing to one over a; ``None`` gives every
            action weight 1.
        terminal: ``(S,)``, the value ``V_T(s)`` of the final state; zeros when absent.

    Returns:
        ``SoftValues(Q (T, S, U), V (T + 1, S), policy (T, S, U))``.
    """
    successors = _successors(B)
    if successors is None:
        B = check_transitions(as_numbers(B, "B", ModelError))
        S, _, U = B.shape
    else:
        S, U = successors.shape
    T = check_integer(horizon, "horizon")
    check_choice(mode, "mode", MODES)
    r = _rewards(r, T, S, U)
    log_prior = _log_action_prior(action_prior, S, U)
    V_next = _terminal(terminal, S)
    Q = np.empty((T, S, U))
    V = np.empty((T + 1, S))
    V[T] = V_next
    for t in range(T - 1, -1, -1):
        if successors is not None:
            backup = V_next[successors]
        elif mode == "exact":
            # ln sum_s' B[s', s, a] exp V(s'), with zero entries of B weighted out rather than logged
            backup = logsumexp(np.broadcast_to(V_next[:, None, None], B.shape), axis=0, b=B)
        else:
            backup = np.einsum("ksa,k->sa", B, V_next)
        Q[t] = r[t] + backup
        V[t] = logsumexp(Q[t] + log_prior, axis=-1)
        V_next = V[t]
    policy = np.exp(Q + log_prior - V[:-1, :, None])
    return SoftValues(Q=Q, V=V, policy=policy)


def state_marginals(B: np.ndarray, policy: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """State marginals of running a policy under the dynamics B (the forward pass of q(tau)).

    ``mu_{t+1}(s') = sum_{s, a} B[s', s, a] pi_t(a | s) mu_t(s)``. With the variational policy these are the
    marginals of the variational posterior; with the exact policy under stochastic dynamics they are what
    happens when the optimistic plan meets the real dynamics (see ``optimal_state_marginals``).

    Args:
        B: ``(S, S, U)`` transitions.
        policy: ``(T, S, U)``, ``pi_t(a | s)``.
        initial: ``(S,)``, the distribution of ``s_0``.

    Returns:
        ``(T + 1, S)``, ``mu[t] = p(s_t)``.
    """
    B = check_transitions(as_numbers(B, "B", ModelError))
    S, _, U = B.shape
    policy = as_numbers(policy, "policy", ParameterError)
    if policy.ndim != 3 or policy.shape[1:] != (S, U):
        raise ParameterError(f"policy has shape {policy.shape}, expected (T, {S}, {U}) (time, state, action)")
    mu = np.empty((policy.shape[0] + 1, S))
    mu[0] = check_vector(initial, S, "initial", ParameterError)
    for t in range(policy.shape[0]):
        mu[t + 1] = np.einsum("ksa,sa,s->k", B, policy[t], mu[t])
    return mu


def forward_messages(B: np.ndarray, r: np.ndarray, horizon: int, initial: np.ndarray,
                     action_prior: np.ndarray | None = None) -> np.ndarray:
    """Forward messages of control as inference, in logs: ``ln alpha_t(s) = ln p(s_t = s, O_{0:t-1})``.

    ``alpha_0 = initial``; ``alpha_{t+1}(s') = sum_{s, a} B[s', s, a] p(a | s) exp(r_t(s, a)) alpha_t(s)``.

    Args: as ``soft_value_iteration``; ``initial``: ``(S,)``, the distribution of ``s_0``.

    Returns:
        ``(T + 1, S)`` log forward messages (``-inf`` where a state is unreachable).
    """
    B = check_transitions(as_numbers(B, "B", ModelError))
    S, _, U = B.shape
    T = check_integer(horizon, "horizon")
    r = _rewards(r, T, S, U)
    prior = np.exp(_log_action_prior(action_prior, S, U))
    weights = B * prior[None]  # (S', S, U): p(s' | s, a) p(a | s)
    log_alpha = np.empty((T + 1, S))
    with np.errstate(divide="ignore"):
        log_alpha[0] = np.log(check_vector(initial, S, "initial", ParameterError))
    for t in range(T):
        a = np.broadcast_to((r[t] + log_alpha[t][:, None])[None], weights.shape)
        log_alpha[t + 1] = logsumexp(a, axis=(1, 2), b=weights)
    return log_alpha


def optimal_state_marginals(B: np.ndarray, r: np.ndarray, horizon: int, initial: np.ndarray,
                            action_prior: np.ndarray | None = None, terminal: np.ndarray | None = None) -> np.ndarray:
    """State marginals under optimality, ``p(s_t | O_{0:T}) ∝ alpha_t(s) beta_t(s)`` (exact posterior).

    Args: as ``soft_value_iteration`` and ``forward_messages``.

    Returns:
        ``(T + 1, S)``, each row a distribution.
    """
    values = soft_value_iteration(B, r, horizon, "exact", action_prior, terminal)
    log_joint = forward_messages(B, r, horizon, initial, action_prior) + values.V
    return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))


@dataclass(frozen=True)
class SoftQPlanner(Planner):
    """A POMDP planner that scores first actions with belief-weighted soft Q-values.

    The model's joint hidden state is flattened; rewards come from the log-preferences,
    ``r(s) = sum_m sum_o A_m[o | s] C_m[o]`` (C used as given, not normalised), received for each
    predicted state ``s_1 .. s_T`` (``C_m[:, t]`` for ``s_{t+1}`` when C is time-varying, its last column
    beyond its end, as in ``expected_free_energy``). Then ``Q(b, a) = sum_s q(s) Q_0(s, a)`` with ``q``
    the product of the factor beliefs (the QMDP approximation: the plan assumes the state is known from the
    next step on, so it puts no value on information).
    With ``horizon=1`` and ``mode="variational"``, ``-Q(b, a)`` is the EFE's utility term (minus
    expected log-preference) of the one-step policy ``a``. The joint transition array has
    ``prod(num_states)**2 * prod(num_controls)`` entries and is built at each call: this is a planner for
    small models.

    Attributes:
        horizon: T >= 1, the number of actions planned over.
        mode: ``"variational"`` (default; maximum-entropy RL, not optimistic) or ``"exact"``.
        max_bytes: a model whose joint transitions and values would take more is refused with a
            ``PolicyError`` before they are built (default 1 GiB).
    """

    backends: ClassVar[frozenset[str]] = frozenset({NUMPY})
    horizon: int = 1
    mode: str = "variational"
    max_bytes: int = 1 << 30

    def __post_init__(self):
        check_integer(self.horizon, "horizon")
        check_choice(self.mode, "SoftQPlanner.mode", MODES)
        check_integer(self.max_bytes, "SoftQPlanner.max_bytes")

    def plan(self, model: GenerativeModel, qs: list, rng: np.random.Generator | None = None) -> Plan:
        """Score the first actions; lower G is better.

        Returns:
            a ``Plan`` over the joint first actions ``enumerate_policies(num_controls, 1)`` (C order: the last
            factor's control varies fastest): ``G[i] = -Q(b, a_i)``, no terms, and ``action``
            ``(num_factors,)``, the joint action with the lowest G (the first one on ties).
        """
        T, S, U = self.horizon, math.prod(check_is_model(model).num_states), math.prod(model.num_controls)
        size_q = math.prod(as_numbers(q, f"qs[{f}]", BeliefError).size for f, q in enumerate(check_sequence(
            qs, "qs", BeliefError)))
        if size_q != S:
            raise ParameterError(f"qs describe {size_q} joint states, the model has {S}")
        qs = check_beliefs(model, qs, "qs")
        size = 8 * S * U * (2 * S + 3 * T)  # the joint B (and its einsum), r, Q and the policies over T steps
        if size > self.max_bytes:
            raise PolicyError(f"SoftQPlanner builds joint transitions over {S:,} joint states and {U:,} joint "
                              f"controls: about {size:,} bytes, above max_bytes = {self.max_bytes:,}; plan on a "
                              "smaller model or raise max_bytes")
        B = joint_transitions(model)
        r_next = joint_rewards(model, T)  # (T, S): reward of s_{t+1}
        S, U = B.shape[0], B.shape[-1]
        # stage t rewards s_t; s_0 is not chosen by any action, so it gets 0
        r = np.zeros((T, S, U))
        r[1:] = r_next[:-1, :, None]
        values = soft_value_iteration(B, r, T, self.mode, terminal=r_next[-1])
        q = outer(qs).reshape(-1)
        return Plan(-(q @ values.Q[0]), enumerate_policies(model.num_controls, 1))


def joint_transitions(model: GenerativeModel) -> np.ndarray:
    """The model's transitions on the flattened joint state and control spaces.

    ``B[s', s, u] = prod_f B_f[s'_f | s_deps(f), u_f]``, states and controls raveled in C order.

    Returns:
        ``(prod(num_states), prod(num_states), prod(num_controls))``.
    """
    F = model.num_factors
    nxt, prev, ctl = _letters(F), _letters(F, 1), _letters(F, 2)
    subs = [nxt[f] + "".join(prev[g] for g in model.B_dependencies[f]) + ctl[f] for f in range(F)]
    joint = np.einsum(",".join(subs) + "->" + "".join(nxt + prev + ctl), *model.B, optimize=True)
    S, U = int(np.prod(model.num_states)), int(np.prod(model.num_controls))
    return joint.reshape(S, S, U)


def joint_rewards(model: GenerativeModel, horizon: int) -> np.ndarray:
    """Expected log-preference of each joint state, ``r_t(s) = sum_m sum_o A_m[o | s] C_m[o, t]``.

    Returns:
        ``(horizon, prod(num_states))``; row t is for the state after t + 1 actions.
    """
    F = model.num_factors
    states = _letters(F)
    r = np.zeros((check_integer(horizon, "horizon"), *model.num_states))
    for m, (A_m, C_m) in enumerate(zip(model.A, model.C, strict=True)):
        # C as given, column t for step t (the last column beyond its end), as in expected_free_energy: (T, O)
        C_mt = np.broadcast_to(log_preferences(C_m, np.arange(horizon), EFEOptions(normalize_C=False)),
                               (horizon, C_m.shape[0]))
        deps = model.A_dependencies[m]
        # output axes in factor order, so the reshape below lines them up with the joint state
        out = "Z" + "".join(states[f] for f in sorted(deps))
        r_m = np.einsum(f"Y{''.join(states[f] for f in deps)},ZY->{out}", A_m, C_mt)
        r += r_m.reshape((horizon, *[model.num_states[f] if f in deps else 1 for f in range(F)]))
    return r.reshape(horizon, -1)


def _letters(n, block=0):
    # einsum labels, three disjoint blocks of 16 (next states, previous states, controls)
    base = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if n > 16:
        raise ModelError(f"joint planning supports at most 16 factors, the model has {n}")
    return base[16 * block : 16 * block + n]


def _successors(B):
    # deterministic dynamics given as successor indices (S, U), or None for a dense (S, S, U) array
    if not (isinstance(B, np.ndarray) and np.issubdtype(B.dtype, np.integer) and B.ndim == 2):
        return None  # an integer (S, S, U) array of 0s and 1s is the dense form
    if B.size and (B.min() < 0 or B.max() >= B.shape[0]):
        raise ModelError(f"B as successor indices must lie in [0, {B.shape[0]}), got {B.min()} .. {B.max()}")
    return B


def _rewards(r, T, S, U):
    r = as_numbers(r, "r", ParameterError)
    if r.shape not in ((S,), (S, U), (T, S, U)):
        raise ParameterError(f"r has shape {r.shape}, expected ({S},), ({S}, {U}) or ({T}, {S}, {U})")
    # finite: a large negative reward forbids a step as well as -inf does, without 0 * inf in the backups
    check_finite(r, "r", nonneg=False, error=ParameterError)
    if r.ndim == 1:
        r = r[:, None]
    return np.broadcast_to(r, (T, S, U))


def _log_action_prior(action_prior, S, U):
    if action_prior is None:
        return np.zeros((S, U))
    p = as_numbers(action_prior, "action_prior", ParameterError)
    if p.shape not in ((U,), (S, U)):
        raise ParameterError(f"action_prior has shape {p.shape}, expected ({U},) or ({S}, {U})")
    check_probability(p, "action_prior", ParameterError)
    with np.errstate(divide="ignore"):
        return np.broadcast_to(np.log(p), (S, U))


def _terminal(terminal, S):
    if terminal is None:
        return np.zeros(S)
    v = as_numbers(terminal, "terminal", ParameterError)
    if v.shape != (S,) or not np.isfinite(v).all():
        raise ParameterError(f"terminal must be a finite vector of shape ({S},), got shape {v.shape}")
    return v
