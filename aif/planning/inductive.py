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
enters with the opposite sign, as the term ``aif.InductiveCost(I, epsilon)`` of every EFE engine
(defined in ``aif.efe.inductive_cost``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..checks import check_array_list, check_finite, check_fraction, check_index_lists, check_integer
from ..errors import ModelError


def inductive_matrix(H: Sequence[ArrayLike], B: Sequence[ArrayLike], threshold: float, depth: int,
                     B_dependencies: Sequence[Sequence[int]] | None = None) -> list[np.ndarray]:
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
    depth = check_integer(depth, "depth")
    check_fraction(threshold, "threshold", "[0, 1)")
    H, B = check_array_list(H, "H"), check_array_list(B, "B")
    B_dependencies = check_index_lists(B_dependencies, "B_dependencies")
    if len(H) != len(B) or (B_dependencies is not None and len(B_dependencies) != len(B)):
        raise ModelError(f"H has {len(H)} vectors and B_dependencies {len(B_dependencies or B)} lists but B has "
                         f"{len(B)} factors")
    I = []
    for f, (H_f, B_f) in enumerate(zip(H, B, strict=False)):
        B_f = np.asarray(B_f, dtype=float)
        deps = [f] if B_dependencies is None else list(B_dependencies[f])
        if f not in deps:
            raise ModelError(f"B_dependencies[{f}] = {deps} does not include factor {f}, so its own states "
                             "cannot be traced backwards")
        if B_f.ndim != len(deps) + 2:
            raise ModelError(f"B[{f}] has {B_f.ndim} axes, expected {len(deps) + 2} for B_dependencies {deps}")
        check_finite(H_f, f"H[{f}]")
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
