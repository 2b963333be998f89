"""Inductive inference: a goal-reachability term added to the expected free energy.

Following pymdp 1.0 (``pymdp.control.generate_I_matrix``, ``calc_inductive_value_t``,
``compute_neg_efe_policy_inductive``; after Friston et al. 2023, "Active inference and intentional
behaviour"). Goals are constraints on states, ``H[f]``: ``(S_f,)``, 1 for a goal state. Backward induction
over the support of B (transitions with probability above ``threshold``, under any action) gives

    I_f[0] = H_f,    I_f[i](s) = 1  if  exists s', u: B_f[s', s, u] > threshold and I_f[i-1](s') = 1,

so ``I_f[i](s) = 1`` when a path of exactly ``i`` steps leads from ``s`` to a goal (with a stay action this
is "within i steps"). With the agent believed to be in ``j = argmax qs_f`` and ``n`` the first row with
``I_f[n, j] = 1`` (its distance to the goal), a predicted state outside ``I_f[m]``, ``m = max(n - 1, 0)``,
costs ``ln epsilon``: the policy is moving away from every shortest route. The value of a predicted
belief ``qs_next`` is

    inductive_value = sum_f [column j of I_f is not all zero] · sum_s qs_next_f(s) (1 - I_f[m, s]) ln epsilon

which is <= 0 and is added to pymdp's ``neg_efe`` at every step of a policy; in G (lower is better) it
enters with the opposite sign, ``G += -sum_t inductive_value(qs, qs_pi[t])``.
"""

from __future__ import annotations

import numpy as np

from ..control import check_policies, predict_policies
from ..errors import ModelError, ParameterError
from ..maths import CLIP


def inductive_matrix(H, B, threshold, depth, B_dependencies=None) -> list:
    """Backward reachability of the goal states, one ``(depth, S_f)`` 0/1 array per factor.

    Args:
        H: list of ``(S_f,)`` goal indicators (1 for a goal state; all zero for a factor without a goal).
        B: list of transitions, ``B[f]``: ``(S_f, *S_g for g in B_dependencies[f], U_f)``.
        threshold: transitions with probability ``> threshold`` count as possible.
        depth: number of rows of each I (>= 1); row i holds the states ``i`` steps from a goal.
        B_dependencies: as in ``GenerativeModel``; ``[f]`` per factor by default. A transition of factor f
            is possible when it is possible under some state of the other factors it depends on (pymdp 1.0
            handles only ``B_dependencies[f] == [f]``, where the two agree).

    Returns:
        ``I``: list of float arrays ``(depth, S_f)`` with entries 0 or 1.
    """
    if int(depth) != depth or depth < 1:
        raise ParameterError(f"depth must be an integer >= 1, got {depth!r}")
    if not 0 <= threshold < 1:
        raise ParameterError(f"threshold must lie in [0, 1), got {threshold}")
    if len(H) != len(B):
        raise ModelError(f"H has {len(H)} vectors but B has {len(B)} factors")
    I = []
    for f, (H_f, B_f) in enumerate(zip(H, B)):
        B_f = np.asarray(B_f, dtype=float)
        deps = [f] if B_dependencies is None else list(B_dependencies[f])
        if f not in deps:
            raise ModelError(f"B_dependencies[{f}] = {deps} does not include factor {f}, so its own states "
                             "cannot be traced backwards")
        if B_f.ndim != len(deps) + 2:
            raise ModelError(f"B[{f}] has {B_f.ndim} axes, expected {len(deps) + 2} for B_dependencies {deps}")
        H_f = np.asarray(H_f, dtype=float)
        if H_f.shape != (B_f.shape[0],):
            raise ModelError(f"H[{f}] has shape {H_f.shape}, expected ({B_f.shape[0]},)")
        own_axis = 1 + deps.index(f)
        other = tuple(ax for ax in range(1, B_f.ndim) if ax != own_axis)
        # possible[s', s]: some action (and state of the other dependencies) moves s to s'
        possible = (B_f > threshold).any(axis=other)
        I_f = np.empty((int(depth), B_f.shape[0]))
        I_f[0] = H_f
        for i in range(1, int(depth)):
            I_f[i] = (I_f[i - 1] @ possible > 0).astype(float)
        I.append(I_f)
    return I


def inductive_value(qs, qs_next, I, epsilon=1e-3) -> np.ndarray:
    """pymdp 1.0's inductive value (<= 0; add it to ``neg_efe``, subtract it from G) of predicted beliefs.

    Args:
        qs: beliefs that anchor the term, one ``(S_f,)`` vector per factor (pymdp uses the beliefs at the
            start of the policy for every step).
        qs_next: predicted beliefs, ``qs_next[f]``: ``(..., S_f)`` with any leading axes (policies, steps).
        I: from ``inductive_matrix``, ``I[f]``: ``(depth, S_f)``.
        epsilon: the cost of leaving the shortest routes is ``ln epsilon`` (``ln max(epsilon, eps)``, pymdp
            1.0's ``log_stable``).

    Returns:
        The value, with the leading shape of ``qs_next``.
    """
    if not len(qs) == len(qs_next) == len(I):
        raise ModelError(f"qs, qs_next and I have {len(qs)}, {len(qs_next)} and {len(I)} factors")
    if not 0 < epsilon < 1:
        raise ParameterError(f"epsilon must lie in (0, 1), got {epsilon}")
    log_eps = float(CLIP(epsilon))
    value = 0.0
    for f, (q_f, q_next_f, I_f) in enumerate(zip(qs, qs_next, I)):
        I_f = np.asarray(I_f, dtype=float)
        column = I_f[:, int(np.argmax(q_f))]
        # pymdp 1.0 takes the argmax of the column (the first 1 for 0/1 matrices) and scales by the column
        # sum clipped to [0, 1], which for 0/1 matrices switches the term off when no goal is reachable
        m = max(int(np.argmax(column)) - 1, 0)
        path_available = float(np.clip(column.sum(), 0.0, 1.0))
        cost_f = (1.0 - I_f[m]) * log_eps  # (S_f,)
        value = value + path_available * (np.asarray(q_next_f, dtype=float) @ cost_f)
    return np.asarray(value)


def inductive_cost(model, qs, policies, I, epsilon=1e-3) -> np.ndarray:
    """The inductive term of G for each policy: ``-sum_t inductive_value(qs, qs_pi[t])``.

    Equal to minus the inductive part of pymdp 1.0's ``compute_neg_efe_policy_inductive``.

    Args:
        model: ``aif.GenerativeModel`` (its B and B_dependencies predict the states).
        qs: current beliefs, one ``(S_f,)`` vector per factor.
        policies: ``(P, horizon, num_factors)`` int array.
        I: from ``inductive_matrix``.
        epsilon: as in ``inductive_value``.

    Returns:
        ``(P,)``, >= 0; lower is better.
    """
    qs_pi = _predicted_states(model, qs, policies)  # qs_pi[f]: (P, horizon, S_f)
    return -inductive_value(qs, qs_pi, I, epsilon).sum(axis=-1)


def _predicted_states(model, qs, policies):
    """Beliefs predicted along each policy, ``qs_pi[f]``: ``(P, horizon, S_f)``, all policies at once.

    Each factor is predicted from the previous step's marginals of the factors it depends on (the
    mean-field prediction of pymdp's ``compute_expected_state`` and of ``aif.expected_free_energy``).
    """
    policies = check_policies(model, policies)
    P, T, _ = policies.shape
    q = [np.broadcast_to(np.asarray(q_f, dtype=float), (P, s)) for q_f, s in zip(qs, model.num_states)]
    steps = []
    for t in range(T):
        q = predict_policies(model, q, policies[:, t])
        steps.append(q)
    return [np.stack([q_t[f] for q_t in steps], axis=1) for f in range(model.num_factors)]
