r"""Dirichlet learning of A, B and D, parameter information gain ("novelty"), Bayesian model reduction.

Counts ``pA[m]``, ``pB[f]``, ``pD[f]`` have the shapes of ``A[m]``, ``B[f]``, ``D[f]`` (see ``aif.model``):
the first axis is the outcome (or next state), every column is a Dirichlet over it, and the model's
array is the column-normalised mean of the counts.

Learning (one time step; every function is pure and returns new arrays)::

    pA[m]'          = forgetting * pA[m] + lr * o_m ⊗ qs[g] ⊗ ... (g in A_dependencies[m])
    pB[f]'          = forgetting * pB[f]                                       (every action slice)
    pB[f]'[..., u]  += lr * qs[f] ⊗ qs_prev[g] ⊗ ...   (g in B_dependencies[f], u = action[f])
                    (or += lr * joint[f], a pairwise posterior q(s_f', s_g, ...) from smoothing)
    pD[f]'          = forgetting * pD[f] + lr * qs[f]

``o_m`` is a one-hot vector or a probability vector; ⊗ is the outer product. With ``forgetting = 1``
(the default) these are exactly pymdp.legacy's ``update_obs_likelihood_dirichlet_factorized``,
``update_state_likelihood_dirichlet_interactions``, ``update_state_prior_dirichlet`` and pymdp 1.0's
``pymdp.learning`` updates (1.0 sums the same outer products over a time axis). Neither pymdp has a
forgetting factor, so there is nothing to reproduce there and no second convention: ``forgetting < 1``
discounts the old counts before the new evidence is added (the volatility / "forgetting" of SPM-style
models).

Zero counts are structural zeros: the mean gives them probability 0, they carry no novelty (both pymdps mask
``W``), and learning leaves them at zero (``mask_zeros=True``, the default: pymdp.legacy and SPM's
``spm_MDP_VB_X`` multiply the update by ``A > 0``, ``B > 0``, ``pD > 0``; here the mask is on the counts, the
same when the array is their mean, and it also holds with forgetting). ``mask_zeros=False`` adds evidence to
zero counts as pymdp 1.0 does. A column of zeros has no mean and is refused (``checks.check_dirichlet``).

Parameter information gain (novelty) for one future step under each policy, positive = valuable::

    W(a)             = 1/a0 - 1/a                 a0 = column sums (SPM's spm_wnorm; negative entries)
    pA_info_gain(π)  = - Σ_m Σ_o qo_m(o | π) Σ_s W(pA[m])[o, s] Π_g qs_g(s_g | π)
    pB_info_gain(π)  = - Σ_f Σ_{s', s} qs_f(s' | π) W(pB[f])[s', s, u_f(π)] Π_g qs_prev_g(s_g | π)

``W`` comes in three conventions (``WNorm``), among them pymdp 1.0's exact
``W_exact(a) = -(ln a0 - ln a + ψ(a + 1) - ψ(a0 + 1))``. With ``W_exact`` and ``qo`` the predicted outcome of a
single known column, ``-Σ_o qo(o) W_exact[o]`` is exactly the mutual information between that column and the
outcome, E_o KL[Dir(a + e_o) || Dir(a)]. The heuristic ``W`` is -2 times the large-count expansion of it (Da
Costa et al. 2020, eqs. D.15 to D.17), so for well-counted columns the heuristic scores about twice the exact
value. Bayesian model reduction of Dirichlet counts: ``reduce_dirichlet``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from . import checks
from .errors import BeliefError, ModelError, ParameterError, PolicyError
from .maths import EPS, LEGACY_EPS, outer
from .model import GenerativeModel, preferences_from_counts
from .strategies import Learner
from .utils import normalize

# ----------------------------------------------------------------------------------------------------------
# Novelty weights


@dataclass(frozen=True)
class WNorm:
    """How the novelty weights ``W`` are computed from Dirichlet counts ``a`` (columns along axis 0).

    Attributes:
        exact: ``False``: the heuristic ``1/a0 - 1/a`` (SPM, pymdp.legacy); ``True``: pymdp 1.0's exact
            ``-(ln a0 - ln a + ψ(a+1) - ψ(a0+1))``.
        eps: heuristic: added to every count before the reciprocals; exact: counts are clipped below at it.
        scale: a factor on every weight, > 0 (1; SPM12's ``spm_MDP_VB_X`` halves them: its local ``spm_wnorm``,
            ``WNORM_SPM12_TRIAL``).
    """

    exact: bool = False
    eps: float = LEGACY_EPS
    scale: float = 1.0

    def __post_init__(self):
        checks.check_fraction(self.eps, "WNorm.eps", "(0, 1)")
        checks.check_positive(self.scale, "WNorm.scale")


WNORM_LEGACY = WNorm(exact=False, eps=LEGACY_EPS)  # pymdp.legacy.maths.spm_wnorm: A + 1e-16
WNORM_SPM = WNorm(exact=False, eps=float(np.exp(-16)))  # SPM spm_wnorm.m: A + exp(-16)
WNORM_EXACT = WNorm(exact=True, eps=EPS)  # pymdp 1.0 maths.spm_wnorm (exact_param_info_gain=True)
WNORM_SPM12_TRIAL = WNorm(exact=False, eps=LEGACY_EPS, scale=0.5)  # spm_MDP_VB_X's own: (1/a0 - 1/(a + 1e-16)) / 2


def spm_wnorm(a: np.ndarray, wnorm: WNorm = WNORM_LEGACY) -> np.ndarray:
    """Novelty weights of Dirichlet counts, one per count (non-positive entries).

    Args:
        a: counts, shape ``(n, *columns)``; every column ``a[:, j...]`` is one Dirichlet.
        wnorm: the convention (``WNORM_LEGACY``, ``WNORM_SPM``, ``WNORM_EXACT``, ``WNORM_SPM12_TRIAL``).

    Returns:
        ``W``, the shape of ``a``: ``1/a0 - 1/a`` (heuristic) or ``-(ln a0 - ln a + ψ(a+1) - ψ(a0+1))``.
        Unmasked: zero counts give large negative weights; the information-gain functions mask them.
    """
    a = checks.as_numbers(a, "a", ModelError)
    checks.check_finite(a, "a")  # zero counts allowed (masked by the callers), negative ones not
    if not wnorm.exact:
        a = a + wnorm.eps
        W = 1.0 / a.sum(axis=0) - 1.0 / a
    else:
        a = np.maximum(a, wnorm.eps)
        a0 = np.maximum(a.sum(axis=0), wnorm.eps)
        # ln a0 - ln a + ψ(a+1) - ψ(a0+1) rather than the equivalent 1/a - 1/a0 + ψ(a) - ψ(a0): the two
        # diverging pairs of the latter cancel badly for small counts (pymdp 1.0 makes the same choice).
        W = -(np.log(a0) - np.log(a) + digamma(a + 1.0) - digamma(a0 + 1.0))
    return W if wnorm.scale == 1.0 else wnorm.scale * W


# ----------------------------------------------------------------------------------------------------------
# Learning


def _selection(which, n, name):
    if which is None:
        return range(n)
    return [checks.check_index(i, f"{name}[{k}]", n) for k, i in enumerate(checks.check_sequence(which, name,
                                                                                                  ParameterError))]


def _forget(p, forgetting, prior, label):
    """forgetting * p + (1 - forgetting) * prior: old counts decay towards ``prior`` (towards zero without one)."""
    if prior is None or forgetting == 1:
        return forgetting * p
    if prior.shape != p.shape:
        raise ModelError(f"prior counts for {label} have shape {prior.shape}, expected {p.shape}")
    return forgetting * p + (1.0 - forgetting) * prior


def _prior(prior, n):
    """The counts forgetting decays towards, one array per modality or factor (``None`` each when absent)."""
    if prior is None:
        return [None] * n
    prior = checks.check_count_list(prior, "prior")
    if len(prior) != n:
        raise ModelError(f"prior has {len(prior)} arrays, expected {n}")
    return prior


def _add(p, evidence, lr, forgetting, prior, mask_zeros, label):
    """forget(p) + lr * evidence; with ``mask_zeros`` the structural zeros of ``p`` stay zero."""
    new = _forget(p, forgetting, prior, label) + lr * evidence
    return np.where(p > 0, new, 0.0) if mask_zeros else new


def update_A(pA: Sequence[ArrayLike], obs: Sequence[Any], qs: Sequence[ArrayLike], lr: float = 1.0,
             forgetting: float = 1.0, *, A_dependencies: Sequence[Sequence[int]] | None = None,
             modalities: Sequence[int] | None = None, prior: Sequence[ArrayLike] | None = None,
             mask_zeros: bool = True) -> list:
    """Dirichlet update of the likelihood counts after one observation: ``forgetting*pA + lr * o ⊗ qs``.

    Args:
        pA: counts, ``pA[m]`` of shape ``(num_obs[m], *num_states[g] for g in A_dependencies[m])``,
            non-negative (zeros are structural, see the module docstring).
        obs: one entry per modality: an outcome index or a probability vector ``(num_obs[m],)``.
        qs: posterior beliefs, ``qs[f]`` of shape ``(num_states[f],)``.
        lr: learning rate, >= 0.
        forgetting: in (0, 1]; the old counts are multiplied by it (1 = none).
        prior: optional counts shaped like ``pA`` that forgetting decays towards:
            ``forgetting * pA + (1 - forgetting) * prior`` (towards zero when absent). Decaying towards zero
            shrinks counts the agent never updates without bound (their novelty then grows as 1/count).
        A_dependencies: factors each modality depends on; all factors by default.
        modalities: indices of the modalities to update (all by default); the others are returned as copies.
        mask_zeros: zero counts stay zero (``True``: pymdp.legacy, SPM) or receive evidence (``False``: pymdp 1.0).

    Returns:
        New counts, a list of fresh arrays shaped like ``pA`` (the input is not modified).

    Raises:
        ParameterError: ``lr`` or ``forgetting`` out of range. ModelError: counts negative, a column of
        zeros, bad dependencies. ObservationError: an outcome out of range or not a distribution. BeliefError:
            a belief of the wrong size or not a distribution.
    """
    checks.check_rates(lr, forgetting)
    pA = checks.check_count_list(pA, "pA")
    qs = checks.check_array_list(qs, "qs", BeliefError)
    obs = checks.check_obs_list(obs, len(pA), "pA")
    A_dependencies = checks.check_dependencies(A_dependencies, len(pA), len(qs), "A",
                                               default=lambda m: list(range(len(qs))))
    out, prior = [p.copy() for p in pA], _prior(prior, len(pA))
    for m in _selection(modalities, len(pA), "modalities"):
        deps = A_dependencies[m]
        if pA[m].ndim != len(deps) + 1:
            raise ModelError(f"pA[{m}] has {pA[m].ndim} axes, expected {len(deps) + 1} (outcomes, then the "
                             f"factors {deps} of A_dependencies[{m}])")
        o_m = checks.check_outcome(obs[m], pA[m].shape[0], m)
        o_m = np.eye(pA[m].shape[0])[o_m] if isinstance(o_m, int) else o_m  # one-hot
        factors = [checks.check_vector(qs[g], pA[m].shape[i + 1], f"qs[{g}]", BeliefError) for i, g in enumerate(deps)]
        counts = outer([o_m, *factors])  # (num_obs[m], *num_states[deps])
        out[m] = _add(pA[m], counts, lr, forgetting, prior[m], mask_zeros, f"pA[{m}]")
    return out


def update_B(pB: Sequence[ArrayLike], qs: Sequence[ArrayLike] | None, qs_prev: Sequence[ArrayLike] | None,
             action: ArrayLike, lr: float = 1.0, forgetting: float = 1.0, *,
             B_dependencies: Sequence[Sequence[int]] | None = None, factors: Sequence[int] | None = None,
             prior: Sequence[ArrayLike] | None = None, mask_zeros: bool = True,
             joint: Sequence[ArrayLike] | None = None) -> list:
    """Dirichlet update of the transition counts after one transition under ``action``.

    ``pB[f]' = forgetting * pB[f]``, then ``pB[f]'[..., action[f]] += lr * q_f``, where ``q_f`` is the belief
    about the transition: the outer product of marginals ``qs[f] ⊗ qs_prev[g] ⊗ ...`` (``g`` in
    ``B_dependencies[f]``), or, given ``joint``, the pairwise posterior ``joint[f]`` that smoothing gives, which
    keeps the correlation between the two time steps that the product of marginals discards.

    Args:
        pB: counts, ``pB[f]`` of shape ``(num_states[f], *num_states[g] for g in B_dependencies[f],
            num_controls[f])``, non-negative.
        qs: beliefs after the transition, ``qs[f]`` of shape ``(num_states[f],)``; ``None`` with ``joint``.
        qs_prev: beliefs before it, same shapes; ``None`` with ``joint``.
        action: ``(num_factors,)`` int, the action taken on each factor (0 on an uncontrolled factor).
        lr: learning rate, >= 0.
        forgetting: in (0, 1]; the old counts (every action slice) are multiplied by it (1 = none).
        B_dependencies: factors each factor's transition depends on; ``[[0], [1], ...]`` by default.
        factors: indices of the factors to update (all by default); the others are returned as copies.
        prior, mask_zeros: as in ``update_A``.
        joint: instead of ``qs`` and ``qs_prev``, one joint distribution per factor, ``joint[f]`` of shape
            ``(num_states[f], *num_states[g] for g in B_dependencies[f])`` (the shape of ``pB[f]`` without the
            control axis), summing to 1: ``joint[f][s, i, ...] = q(s_f = s after the transition, s_g = i, ...
            before it)``. This is one time step of pymdp 1.0's ``joint_beliefs[f]`` (its arrays carry a leading
            ``(T - 1)`` time axis that ``update_state_transition_dirichlet`` sums over; call this once per
            transition); with ``B_dependencies[f] == [f]`` it is the ``(next, current)`` pairwise posterior of
            pymdp 1.0's smoothing (``joint_dist_factor``). ``aif.filtering``'s smoothing gives these joints
            with the time axis in front: pass ``[j[t] for j in smoothed.joints]`` for the transition into step
            ``t + 1``.

    Returns:
        New counts, a list of fresh arrays shaped like ``pB``.

    Raises:
        ParameterError: as ``update_A``.
        ModelError: as ``update_A``.
        BeliefError: as ``update_A``, and when both or neither of ``joint`` and ``qs``/``qs_prev`` are given.
        PolicyError: an action out of range.
    """
    checks.check_rates(lr, forgetting)
    pB = checks.check_count_list(pB, "pB")
    nf = len(pB)
    both = joint is not None and (qs is not None or qs_prev is not None)
    if both or (joint is None and (qs is None or qs_prev is None)):
        raise BeliefError("update_B takes the beliefs about the transition either as qs and qs_prev (marginals) or "
                          "as joint (pairwise posteriors), not both or neither")
    if joint is not None:
        joint = checks.check_array_list(joint, "joint", BeliefError)
        if len(joint) != nf:
            raise BeliefError(f"joint must have one array per factor ({nf}), got {len(joint)}")
    else:
        qs = checks.check_array_list(qs, "qs", BeliefError)
        qs_prev = checks.check_array_list(qs_prev, "qs_prev", BeliefError)
        if len(qs) != nf or len(qs_prev) != nf:
            raise BeliefError(f"qs and qs_prev must have one vector per factor ({nf}), got {len(qs)} and "
                              f"{len(qs_prev)}")
    action = np.asarray(action)
    if action.shape != (nf,) or not np.issubdtype(action.dtype, np.integer):
        raise PolicyError(f"action must be an integer array of shape ({nf},), one action per factor; got "
                          f"{action!r}")
    B_dependencies = checks.check_dependencies(B_dependencies, nf, nf, "B", default=lambda f: [f])
    out, prior = [p.copy() for p in pB], _prior(prior, nf)
    for f in _selection(factors, nf, "factors"):
        deps = B_dependencies[f]
        if pB[f].ndim != len(deps) + 2:
            raise ModelError(f"pB[{f}] has {pB[f].ndim} axes, expected {len(deps) + 2} (next state, the "
                             f"factors {deps} of B_dependencies[{f}], control)")
        num_controls = pB[f].shape[-1]
        u = int(action[f])
        if not 0 <= u < num_controls:
            raise PolicyError(f"action {u} is out of range for factor {f} with {num_controls} controls "
                              f"(0 to {num_controls - 1})")
        evidence = np.zeros_like(pB[f])
        if joint is not None:
            evidence[..., u] = _check_joint(joint[f], pB[f].shape[:-1], f)
        else:
            q_next = checks.check_vector(qs[f], pB[f].shape[0], f"qs[{f}]", BeliefError)  # type: ignore[index]
            q_deps = [checks.check_vector(qs_prev[g], pB[f].shape[i + 1], f"qs_prev[{g}]",  # type: ignore[index]
                                          BeliefError) for i, g in enumerate(deps)]
            evidence[..., u] = outer([q_next, *q_deps])  # (num_states[f], *num_states[deps])
        out[f] = _add(pB[f], evidence, lr, forgetting, prior[f], mask_zeros, f"pB[{f}]")
    return out


def _check_joint(joint_f: np.ndarray, shape: tuple, f: int) -> np.ndarray:
    """``joint[f]``: a joint distribution of shape ``shape`` (``BeliefError`` naming the factor)."""
    if joint_f.shape != shape:
        raise BeliefError(f"joint[{f}] has shape {joint_f.shape}, expected {shape}: the next state of factor {f}, "
                          "then the previous states of the factors in its B_dependencies")
    checks.check_probability(joint_f.reshape(-1), f"joint[{f}] (flattened)", BeliefError)
    return joint_f


def update_D(pD: Sequence[ArrayLike], qs: Sequence[ArrayLike], lr: float = 1.0, forgetting: float = 1.0, *,
             factors: Sequence[int] | None = None, prior: Sequence[ArrayLike] | None = None,
             mask_zeros: bool = True) -> list:
    """Dirichlet update of the initial-state counts: ``pD[f]' = forgetting * pD[f] + lr * qs[f]``.

    Args:
        pD: counts, ``pD[f]`` of shape ``(num_states[f],)``, non-negative.
        qs: beliefs about the initial state, ``qs[f]`` of shape ``(num_states[f],)``.
        lr, forgetting, factors, prior, mask_zeros: as in ``update_B`` (pymdp.legacy's
            ``update_state_prior_dirichlet`` updates only ``pD > 0``).

    Returns:
        New counts, a list of fresh arrays shaped like ``pD``.
    """
    checks.check_rates(lr, forgetting)
    pD = checks.check_count_list(pD, "pD")
    qs = checks.check_array_list(qs, "qs", BeliefError)
    if len(qs) != len(pD):
        raise BeliefError(f"qs has {len(qs)} vectors but pD has {len(pD)} factors")
    out, prior = [p.copy() for p in pD], _prior(prior, len(pD))
    for f in _selection(factors, len(pD), "factors"):
        if pD[f].ndim != 1:
            raise ModelError(f"pD[{f}] has shape {pD[f].shape}, expected (num_states[{f}],)")
        out[f] = _add(pD[f], checks.check_vector(qs[f], pD[f].shape[0], f"qs[{f}]", BeliefError), lr, forgetting,
                      prior[f], mask_zeros, f"pD[{f}]")
    return out


def update_E(pE: ArrayLike, q_pi: ArrayLike, lr: float = 1.0, forgetting: float = 1.0, *,
             prior: ArrayLike | None = None) -> np.ndarray:
    """Habit learning: Dirichlet counts over policies grow by the policy posterior, ``pE' = forgetting pE + lr q(pi)``.

    SPM's ``spm_MDP_VB_X`` adds ``eta * u(:, T)``, the q(pi) of a trial's last step, to ``MDP.e`` at the end of each
    trial (no mask: every policy can gain counts); the policy prior of the next trial is ``E = pE / sum(pE)``, entering
    q(pi) as ``ln E`` (habits: the policies chosen before become more probable a priori).

    Args:
        pE: ``(P,)`` counts, non-negative with a positive sum.
        q_pi: ``(P,)`` a distribution over the same policies.
        lr, forgetting, prior: as ``update_A``'s.

    Returns:
        the new counts ``(P,)``.
    """
    checks.check_rates(lr, forgetting)
    e = checks.check_count_list([pE], "pE")[0]
    if e.ndim != 1:
        raise ModelError(f"pE has shape {e.shape}, expected (num_policies,)")
    q = checks.check_vector(q_pi, e.shape[0], "q_pi", PolicyError)
    towards = None if prior is None else checks.check_count_list([prior], "prior")[0]
    return _add(e, q, lr, forgetting, towards, False, "pE")


def update_C(pC: Sequence[ArrayLike], obs: Sequence[Sequence[Any]], lr: float = 1.0, forgetting: float = 1.0, *,
             modalities: Sequence[int] | None = None, prior: Sequence[ArrayLike] | None = None,
             mask_zeros: bool = True, start: int | None = None) -> list:
    """Preference learning: Dirichlet counts over outcomes grow by the outcomes observed (SPM's ``MDP.c``).

    ``pC[m]' = forgetting pC[m] + lr sum_t o_{m,t}`` for counts ``(num_obs[m],)``; for time-varying counts
    ``(num_obs[m], T)``, column ``t`` gains ``lr o_{m,t}`` alone. SPM's ``spm_MDP_VB_X`` turns a count vector into
    ``(num_obs[m], T)`` columns before a trial (pass ``np.repeat(c[:, None], T, 1)`` to reproduce it) and updates
    them at its end, masked by ``c > 0``; its log-preferences are :func:`preferences_from_counts`.

    Args:
        pC: counts, ``pC[m]`` of shape ``(num_obs[m],)`` or ``(num_obs[m], T)``, non-negative.
        obs: the ``T`` observations of a trial (``T = 1`` for one step), each one outcome index or probability
            vector per modality.
        lr, forgetting, modalities, prior, mask_zeros: as ``update_A``'s.
        start: ``None``: ``obs`` is a whole trial, one observation per column of time-varying counts. An int: ``obs``
            are the observations of steps ``start, start + 1, ...`` of a trial (an agent's, one step at a time):
            step ``tau`` adds to column ``min(tau, T - 1)``, the column a time-varying C scores it with.

    Returns:
        new counts, a list shaped like ``pC``.
    """
    checks.check_rates(lr, forgetting)
    pC = checks.check_count_list(pC, "pC")
    obs = [checks.check_obs_list(o, len(pC), "pC") for o in checks.check_sequence(obs, "obs", ParameterError)]
    start = None if start is None else checks.check_index(start, "start")
    out, prior = [p.copy() for p in pC], _prior(prior, len(pC))
    for m in _selection(modalities, len(pC), "modalities"):
        num_obs = pC[m].shape[0]
        seen = np.zeros((num_obs, len(obs)))  # (num_obs[m], T): one column per observation
        for t, o in enumerate(obs):
            o_m = checks.check_outcome(o[m], num_obs, m)
            seen[:, t] = np.eye(num_obs)[o_m] if isinstance(o_m, int) else o_m
        if pC[m].ndim not in (1, 2):
            raise ModelError(f"pC[{m}] has shape {pC[m].shape}, expected (num_obs[{m}],) or (num_obs[{m}], T)")
        if pC[m].ndim == 2 and start is None and pC[m].shape[1] != len(obs):
            raise ModelError(f"pC[{m}] has {pC[m].shape[1]} columns (one per step) but {len(obs)} observations came")
        if pC[m].ndim == 1:
            evidence = seen.sum(axis=1)
        elif start is None:
            evidence = seen
        else:  # step start + k into column min(start + k, T - 1)
            evidence = np.zeros_like(pC[m])
            np.add.at(evidence.T, np.minimum(start + np.arange(len(obs)), pC[m].shape[1] - 1), seen.T)
        out[m] = _add(pC[m], evidence, lr, forgetting, prior[m], mask_zeros, f"pC[{m}]")
    return out


def learn_trial(counts: dict, obs: Sequence[Sequence[Any]], qs_policies: Sequence[ArrayLike], q_pi: ArrayLike,
                policies: ArrayLike, *, lr: float = 1.0, lr_D: float = 1.0, forgetting: float = 1.0,
                A_dependencies: Sequence[Sequence[int]] | None = None,
                B_dependencies: Sequence[Sequence[int]] | None = None, mask_zeros: bool = True,
                prior: dict | None = None) -> dict:
    """SPM's learning at the end of a trial (``spm_MDP_VB_X``, after its last step), from each policy's beliefs.

    With ``X_t = sum_pi q_T(pi) q(s_t | pi)`` (the beliefs averaged with the last step's q(pi), SPM's ``X``)::

        pA[m] += lr sum_t o_{m,t} ⊗ X_t[deps]                                   (MDP.a, masked by pA > 0)
        pB[f][..., u] += lr sum_{t>=1} sum_{pi: u_f(pi, t-1) = u} q_t(pi) q(s_t|pi) ⊗ q(s_{t-1}|pi)[deps]
                                                                                (MDP.b, masked by pB > 0)
        pC[m] += lr o_{m,t} (column t, or summed: ``update_C``)                 (MDP.c, masked by pC > 0)
        pD[f] += lr_D X_0[f]                                                    (MDP.d, masked by pD > 0)
        pE += lr q_T(pi)                                                        (MDP.e: ``update_E``)

    each after the old counts are multiplied by ``forgetting`` (SPM has no forgetting: 1). B is learned from each
    policy's own pairwise beliefs weighted by the q(pi) *of the step that reached* ``t`` (SPM's ``u(k, t)``), not
    from the averaged ``X``; SPM adds ``X_0`` to ``d`` without its learning rate (``lr_D = 1``).

    Args:
        counts: the counts to learn, any of ``"pA"``, ``"pB"``, ``"pC"``, ``"pD"`` (lists, shaped as in ``aif.model``;
            ``pC`` as in ``update_C``) and ``"pE"`` (``(P,)``).
        obs: the trial's ``T`` observations, one outcome index or probability vector per modality each.
        qs_policies: ``qs_policies[f]`` of shape ``(P, T, S_f)``: each policy's beliefs about every step of the trial
            at its end (SPM's ``MDP.Q{f}``, transposed to policies first).
        q_pi: ``(T, P)``: the policy posterior at each step (SPM's ``MDP.R``, transposed).
        policies: ``(P, T - 1, num_factors)`` int: every policy's actions over the trial (SPM's ``MDP.V``, 0-based).
        lr: learning rate (SPM's ``eta``); lr_D: the rate of ``pD``; forgetting: in (0, 1].
        A_dependencies, B_dependencies: as the model's (all factors, and each factor its own, by default).
        mask_zeros: zero counts stay zero (SPM).
        prior: counts that forgetting decays towards, under the keys of ``counts`` (towards zero when absent), as
            ``update_A``'s ``prior``.

    Returns:
        a dict with the new counts under the keys given.
    """
    checks.check_rates(lr, forgetting)
    checks.check_rates(lr_D, forgetting)
    unknown = set(counts) - {"pA", "pB", "pC", "pD", "pE"}
    if unknown:
        raise ParameterError(f"counts has unknown keys {sorted(unknown)}: give any of pA, pB, pC, pD, pE")
    qs = [checks.as_numbers(q, f"qs_policies[{f}]", BeliefError)
          for f, q in enumerate(checks.check_sequence(qs_policies, "qs_policies", BeliefError))]
    q_pi = checks.as_numbers(q_pi, "q_pi", PolicyError)
    policies = np.asarray(policies)
    T, P = q_pi.shape if q_pi.ndim == 2 else (0, 0)
    if q_pi.ndim != 2 or any(q.ndim != 3 or q.shape[:2] != (P, T) for q in qs):
        raise BeliefError(f"q_pi must be (T, P) and every qs_policies[f] (P, T, S_f); got {q_pi.shape} and "
                          f"{[q.shape for q in qs]}")
    if policies.shape != (P, T - 1, len(qs)) or not np.issubdtype(policies.dtype, np.integer):
        raise PolicyError(f"policies must be an integer array of shape {(P, T - 1, len(qs))}, got {policies.shape}")
    if len(obs) != T:
        raise ParameterError(f"obs has {len(obs)} observations but the beliefs cover {T} steps")
    X = [[q_pi[-1] @ q[:, t] for q in qs] for t in range(T)]  # (S_f,) per step and factor
    prior = {} if prior is None else prior
    towards = {name: _prior(prior.get(name), len(counts[name])) for name in ("pA", "pB") if name in counts}
    out: dict[str, Any] = {}
    if "pA" in counts:
        pA = checks.check_count_list(counts["pA"], "pA")
        deps = checks.check_dependencies(A_dependencies, len(pA), len(qs), "A", default=lambda m: list(range(len(qs))))
        new = []
        for m, p in enumerate(pA):
            evidence = np.zeros_like(p)
            for t, o in enumerate(obs):
                o_m = checks.check_outcome(checks.check_obs_list(o, len(pA), "pA")[m], p.shape[0], m)
                o_m = np.eye(p.shape[0])[o_m] if isinstance(o_m, int) else o_m
                evidence += outer([o_m, *[X[t][g] for g in deps[m]]])
            new.append(_add(p, evidence, lr, forgetting, towards["pA"][m], mask_zeros, f"pA[{m}]"))
        out["pA"] = new
    if "pB" in counts:
        pB = checks.check_count_list(counts["pB"], "pB")
        deps = checks.check_dependencies(B_dependencies, len(pB), len(qs), "B", default=lambda f: [f])
        new = []
        for f, p in enumerate(pB):
            evidence = np.zeros_like(p)
            for t in range(1, T):
                for k in range(P):  # each policy's own transition, under its own action
                    pair = outer([qs[f][k, t], *[qs[g][k, t - 1] for g in deps[f]]])
                    evidence[..., policies[k, t - 1, f]] += q_pi[t, k] * pair
            new.append(_add(p, evidence, lr, forgetting, towards["pB"][f], mask_zeros, f"pB[{f}]"))
        out["pB"] = new
    if "pC" in counts:
        out["pC"] = update_C(counts["pC"], obs, lr, forgetting, mask_zeros=mask_zeros, prior=prior.get("pC"))
    if "pD" in counts:
        out["pD"] = update_D(counts["pD"], X[0], lr_D, forgetting, mask_zeros=mask_zeros, prior=prior.get("pD"))
    if "pE" in counts:
        out["pE"] = update_E(counts["pE"], q_pi[-1], lr, forgetting, prior=prior.get("pE"))
    return out


@dataclass(frozen=True)
class Learning(Learner):
    """Dirichlet learning of the model's counts by an ``aif.Agent``: the settings, and the updates they make.

    Attributes:
        lr: learning rate (counts added per observation), >= 0.
        forgetting: factor in (0, 1] applied to the old counts before each update (1 = none).
        learn_A, learn_B, learn_D: which counts to update (each needs the model's pA / pB / pD): ``True`` all,
            ``False`` none, or a list of the modalities (A) or factors (B, D) to update, the others left as they
            are (pymdp.legacy's ``modalities_to_learn`` and ``factors_to_learn``; stored as a tuple).
        learn_E: learn the habits, the counts ``pE`` over the agent's policies (SPM's ``MDP.e``): each step's q(pi)
            is added when its action is chosen (``update_E``); with SPM's policies over the trial, the last step's
            q(pi) at the trial's end (``learn_trial``). The model's ``E`` is then the counts' mean.
        learn_C: learn the preferences, the counts ``pC`` over outcomes (SPM's ``MDP.c``): ``True``, ``False`` or
            a list of modalities, as ``learn_A``; each observation is added (``update_C``; time-varying counts
            ``(num_obs[m], T)`` in the column of its step) and ``C`` is ``preferences_from_counts(pC)``.
        lr_A, lr_B, lr_D, lr_E, lr_C: learning rates of each kind of count, >= 0; ``None`` (the default) uses
            ``lr`` (pymdp.legacy's ``lr_pA``, ``lr_pB``, ``lr_pD``; SPM has one ``eta`` for all but ``d``).
        online: update after every observation (``True``) or only when ``learn()`` is called, from the
            episode recorded since the last ``reset`` (``False``). D is learned from the episode's first
            posterior in both cases, at ``learn()`` or ``reset()``.
        forget_to_prior: with ``forgetting < 1``, old counts decay towards the model's initial counts
            (``True``) rather than towards zero (``False``), so counts the agent never revisits stay at their
            prior instead of shrinking to nothing (and their novelty growing without bound).
            The price: forgetting caps the evidence a column holds at about ``lr / (1 - forgetting)``
            observations while the prior keeps its full weight: give a weak prior (small counts), or forget
            towards zero and accept the growing novelty (measured in benchmarks/results/soak_forgetting.md).
        mask_zeros: zero counts are structural zeros (what the modeller rules out) that learning leaves at
            zero, so a belief's small mass on them never makes them possible (``True``: pymdp.legacy and SPM);
            ``False`` adds evidence to them as pymdp 1.0 does, so a zero is only a weak prior and can be learned.
        smoothing: offline learning (``online=False``) from smoothed beliefs: at ``learn()`` the beliefs the
            agent filtered during the episode are smoothed backwards (``aif.smooth``), A and D are learned from
            the smoothed marginals and B from the smoothed pairwise beliefs of each transition (pymdp 1.0's
            ``"ovf"`` and ``"exact"`` agents learn so). One-step inference methods only: a method over time
            already smooths within its window.

    With an inference method over time (``MarginalMessagePassing``, ``VariationalMessagePassing``), online
    learning uses each step's belief about the present (averaged over policies) and offline learning replays the
    episode from the beliefs held at ``learn()``: the steps the last window covers from its policy-averaged
    beliefs about them. With SPM's policies over the whole trial (``SequenceOptions(policies="trial")``), offline
    learning at the trial's end is ``spm_MDP_VB_X``'s (``learn_trial``): A and D from the beliefs averaged with the
    last q(pi) (SPM adds D's without its learning rate: ``lr_D=1``), B from each policy's own pairwise beliefs
    weighted by the q(pi) of each step (not from the averaged beliefs, which the two agree with only when the
    policies agree about each transition).
    """

    lr: float = 1.0
    forgetting: float = 1.0
    learn_A: bool | Sequence[int] = True
    learn_B: bool | Sequence[int] = True
    learn_D: bool | Sequence[int] = False
    online: bool = True
    forget_to_prior: bool = True
    mask_zeros: bool = True
    lr_A: float | None = None
    lr_B: float | None = None
    lr_D: float | None = None
    smoothing: bool = False
    learn_E: bool = False
    learn_C: bool | Sequence[int] = False
    lr_E: float | None = None
    lr_C: float | None = None

    def __post_init__(self):
        checks.check_real(self.lr, "Learning.lr", 0.0)
        for name in ("online", "forget_to_prior", "mask_zeros", "smoothing", "learn_E"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ParameterError(f"Learning.{name} must be True or False, got {getattr(self, name)!r}")
        if self.smoothing and self.online:
            raise ParameterError("Learning.smoothing smooths a finished episode: it needs online=False")
        checks.check_fraction(self.forgetting, "Learning.forgetting", "(0, 1]")
        for name in "ABDEC":
            if getattr(self, f"lr_{name}") is not None:
                checks.check_real(getattr(self, f"lr_{name}"), f"Learning.lr_{name}", 0.0)
            which = getattr(self, f"learn_{name}")
            if isinstance(which, (bool, np.bool_)):
                continue
            if not isinstance(which, (list, tuple, range, np.ndarray)):
                raise ParameterError(f"Learning.learn_{name} must be True, False or a list of indices, got {which!r}")
            which = tuple(checks.check_index(i, f"Learning.learn_{name}[{k}]") for k, i in enumerate(which))
            if len(set(which)) < len(which):
                raise ParameterError(f"Learning.learn_{name} = {list(which)} names an index twice")
            object.__setattr__(self, f"learn_{name}", which)  # frozen: stored once, as a tuple

    def chosen(self, name: str) -> Sequence[int] | None:
        """The modalities (``"A"``, ``"C"``) or factors (``"B"``, ``"D"``) to learn: ``None`` for all of them."""
        which = getattr(self, f"learn_{name}")
        return None if which is True else () if which is False else which

    def rate(self, name: str) -> float:
        """The learning rate of ``p{name}``: ``lr_{name}``, else ``lr``."""
        lr = getattr(self, f"lr_{name}")
        return self.lr if lr is None else lr

    def check_model(self, num_modalities: int, num_factors: int) -> None:
        """Every chosen modality and factor exists in the model (``ParameterError`` naming the first that does not)."""
        for name, n, one, many in (("A", num_modalities, "modality", "modalities"),
                                   ("B", num_factors, "factor", "factors"), ("D", num_factors, "factor", "factors"),
                                   ("C", num_modalities, "modality", "modalities")):
            bad = [i for i in self.chosen(name) or () if i >= n]
            if bad:
                raise ParameterError(f"Learning.learn_{name} names {one} {bad[0]}, but the model has {n} {many} "
                                     f"(0 to {n - 1})")

    def update(self, model: GenerativeModel, obs: Any, qs: list, previous: tuple | None, initial: dict,
               joint: list | None = None, t: int = 0) -> GenerativeModel:
        """``model`` after the A (and C) update of one observation, that of step ``t`` of the episode, and, with
        ``previous = (qs_prev, action)``, the B update of the transition into it (from the pairwise beliefs
        ``joint`` when given, one per factor, as ``update_B``'s); ``initial``: the counts forgetting decays towards
        (``forget_to_prior``)."""
        rates: dict[str, Any] = dict(forgetting=self.forgetting, mask_zeros=self.mask_zeros)
        changes: dict[str, Any] = {}
        if self.learn_C:
            changes.update(pC=update_C(cast(list, model.pC), [obs], self.rate("C"), modalities=self.chosen("C"),
                                       prior=self._towards(initial, "pC"), start=t, **rates), C=None)
        if self.learn_A:
            changes.update(pA=update_A(cast(list, model.pA), obs, qs, A_dependencies=model.A_dependencies,
                                       modalities=self.chosen("A"), lr=self.rate("A"),
                                       prior=self._towards(initial, "pA"), **rates), A=None)
        if self.learn_B and previous is not None:
            qs_prev, action = previous
            after, before = (qs, qs_prev) if joint is None else (None, None)
            changes.update(pB=update_B(cast(list, model.pB), after, before, action, B_dependencies=model.B_dependencies,
                                       factors=self.chosen("B"), lr=self.rate("B"), joint=joint,
                                       prior=self._towards(initial, "pB"), **rates), B=None)
        return model.replace(**changes) if changes else model

    def update_initial(self, model: GenerativeModel, qs_first: list | None, initial: dict) -> GenerativeModel:
        """``model`` after the D update from an episode's first posterior (unchanged without ``learn_D`` or one)."""
        if not (self.learn_D and qs_first is not None):
            return model
        pD = update_D(cast(list, model.pD), qs_first, self.rate("D"), self.forgetting, factors=self.chosen("D"),
                      prior=self._towards(initial, "pD"), mask_zeros=self.mask_zeros)
        return model.replace(pD=pD, D=None)

    def update_habits(self, model: GenerativeModel, q_pi: np.ndarray, initial: dict) -> GenerativeModel:
        """``model`` after the habits learned the policy posterior ``q_pi`` ``(P,)`` of one step (unchanged without
        ``learn_E``)."""
        if not self.learn_E:
            return model
        pE = update_E(cast(np.ndarray, model.pE), q_pi, self.rate("E"), self.forgetting,
                      prior=self._towards(initial, "pE"))
        return model.replace(pE=pE, E=None)

    def _towards(self, initial: dict, name: str) -> Any:
        return initial[name] if self.forget_to_prior else None


# ----------------------------------------------------------------------------------------------------------
# Bayesian model reduction


def _ln_beta(a):
    """Log multivariate beta function of the columns of ``a`` (axis 0) over their support: zero counts are
    left out, as SPM12's ``spm_betaln`` does (newer SPM clips them at exp(-32): the same F where zeros match)."""
    return np.where(a > 0, gammaln(a), 0.0).sum(axis=0) - gammaln(a.sum(axis=0))


def reduce_dirichlet(q_dir: ArrayLike, p_dir: ArrayLike, r_dir: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Bayesian model reduction of Dirichlet counts (SPM's ``spm_MDP_log_evidence``).

    Given the posterior ``q`` and prior ``p`` counts of a full model, score a reduced prior ``r`` without
    refitting: ``s = q + r - p`` and ``F = ln B(q) + ln B(r) - ln B(p) - ln B(s)``, each ``B`` over the positive
    counts (zeros are structural). A reduced prior with a zero where the data added counts (``r = 0 < s``)
    forbids what was observed: ``F = +inf`` for that column (the limit as that count goes to zero).

    Args:
        q_dir: posterior counts of the full model, shape ``(n, ...)``; columns along axis 0.
        p_dir: prior counts of the full model, broadcastable with ``q_dir``, zero where ``q_dir`` is.
        r_dir: reduced prior counts, broadcastable (e.g. ``(n, k)`` for ``k`` candidate reductions against
            ``(n, 1)`` counts).

    Returns:
        ``(F, s_dir)``: ``F`` of the broadcast shape without axis 0, the change in free energy
        ``ln p(o | full) - ln p(o | reduced)`` (negative favours the reduced model); ``s_dir`` the reduced
        posterior counts, of the broadcast shape.

    Raises:
        ModelError: counts negative, or a column of zeros or of infinite total; ``q_dir`` and ``p_dir`` with
            different zeros; ``s_dir`` negative, or zero where ``r_dir`` is not.
    """
    q, p, r = (checks.as_numbers(x, name, ModelError) for x, name in ((q_dir, "q_dir"), (p_dir, "p_dir"),
                                                                      (r_dir, "r_dir")))
    try:
        q, p, r = np.broadcast_arrays(q, p, r)
    except ValueError:
        raise ModelError(f"q_dir, p_dir and r_dir have shapes {q.shape}, {p.shape} and {r.shape}, which do not "
                         "broadcast together") from None
    for name, x in (("q_dir", q), ("p_dir", p), ("r_dir", r)):
        checks.check_dirichlet(x, name)
    if np.any((q > 0) != (p > 0)):
        idx = checks.first_index((q > 0) != (p > 0))
        raise ModelError(f"q_dir is {q[idx]} and p_dir is {p[idx]} at index {idx}: the posterior counts must be "
                         "zero exactly where the prior's are (structural zeros)")
    s = q + r - p
    bad = (s < 0) | ((s == 0) & (r > 0))
    if bad.any():
        idx = checks.first_index(bad)
        raise ModelError(f"the reduced posterior s_dir = q_dir + r_dir - p_dir is {s[idx]} at index {idx}; "
                         f"the reduced prior removes more counts than the data added")
    F = _ln_beta(q) + _ln_beta(r) - _ln_beta(p) - _ln_beta(s)
    return np.where(np.any((r == 0) & (s > 0), axis=0), np.inf, F), s



# ----------------------------------------------------------------------------------------------------------
# Pruning levels (states, outcomes, actions), and Bayesian model reduction deciding which


def _levels(which: Any, sizes: Sequence[int], name: str, what: str) -> list[np.ndarray]:
    """The levels kept: ``which[i]`` lists the levels of factor/modality ``i`` to remove (``None``: none)."""
    if which is None:
        return [np.arange(n) for n in sizes]
    lists = cast(list, checks.check_index_lists(which, name))
    if len(lists) != len(sizes):
        raise ModelError(f"{name} has {len(lists)} lists but the model has {len(sizes)} {what}s: give one list "
                         f"of levels to remove per {what} ([] for none)")
    keep = []
    for i, (levels, n) in enumerate(zip(lists, sizes, strict=True)):
        bad = [k for k in levels if not 0 <= k < n]
        if bad:
            raise ModelError(f"{name}[{i}] names level {bad[0]}, but {what} {i} has {n} (0 to {n - 1})")
        kept = np.setdiff1d(np.arange(n), levels)
        if kept.size == 0:
            raise ModelError(f"{name}[{i}] removes every level of {what} {i}: a {what} needs at least one")
        keep.append(kept)
    return keep


def _take(x: np.ndarray, index: list[np.ndarray], label: str, normalise: bool) -> np.ndarray:
    """``x`` restricted to the kept levels of each axis (``index[a]``); columns renormalised with ``normalise``.

    A column left without mass is a ``ModelError``: a distribution (normalise) would have no mean, counts no
    Dirichlet."""
    out = x[np.ix_(*index)]
    sums = out.sum(axis=0)
    if np.any(sums == 0):
        idx = checks.first_index(np.atleast_1d(sums == 0))
        where = "" if out.ndim == 1 else f" in the column at {tuple(int(index[a + 1][i]) for a, i in enumerate(idx))}"
        raise ModelError(f"pruning leaves {label} without mass{where} (indices of the unpruned model): every level "
                         "kept there has probability (or count) 0")
    return normalize(out) if normalise else out


def prune_model(model: GenerativeModel, *, states: Sequence[Sequence[int]] | None = None,
                outcomes: Sequence[Sequence[int]] | None = None,
                actions: Sequence[Sequence[int]] | None = None) -> GenerativeModel:
    """The model without some levels: states of factors, outcomes of modalities, actions of factors.

    pymdp.legacy's ``_prune_A``, ``_prune_B`` and ``_prune_prior`` (equal on their inputs), for any
    dependencies and with the Dirichlet counts:

    - ``A[m]``: the rows of removed outcomes and the columns of removed states (of the factors in
      ``A_dependencies[m]``) dropped, the columns renormalised.
    - ``B[f]``: the rows of removed states of ``f``, the columns of removed states (of the factors in
      ``B_dependencies[f]``) and the slices of removed actions of ``f`` dropped, the columns renormalised.
    - ``D[f]``: removed states dropped, renormalised. ``C[m]``: removed outcomes dropped, not renormalised
      (log-preferences; legacy's ``_prune_prior`` would normalise them as probabilities).
    - ``pA``, ``pB``, ``pD``, ``pC``: the same entries dropped, the kept counts unchanged (``pE`` kept whole).
      Legacy refuses counts ("how to re-distribute [them]"); none need redistributing: if ``p ~ Dir(a)`` then
      the kept probabilities, renormalised, are ``Dir(a_kept)``, independent of their total (a subcomposition
      of a Dirichlet vector), so the kept counts are exactly the belief about the pruned model's parameters,
      and their mean is the pruned array.

    Levels keep their order and are renumbered (``range`` over the kept ones); an action index refers to the
    pruned ``B[f]`` afterwards. Which levels to remove can be decided by Bayesian model reduction:
    ``prune_by_evidence``.

    Args:
        model: the model.
        states: ``states[f]`` lists the states of factor ``f`` to remove (one list per factor; ``[]`` for none).
        outcomes: ``outcomes[m]`` lists the outcomes of modality ``m`` to remove (one list per modality).
        actions: ``actions[f]`` lists the actions of factor ``f`` to remove (one list per factor).

    Returns:
        A new ``GenerativeModel`` with the same factors, modalities and dependencies.

    Raises:
        ModelError: a level out of range, every level of a factor or modality removed, a column of A, B, D or
            of their counts left without mass, or actions removed from a model with a policy prior ``E`` (whose
            policies they change: remove ``E`` with ``model.replace(E=None)`` and give the pruned policies' prior).
    """
    checks.check_is_model(model)
    keep_s = _levels(states, model.num_states, "states", "factor")
    keep_o = _levels(outcomes, model.num_obs, "outcomes", "modality")
    keep_u = _levels(actions, model.num_controls, "actions", "factor")
    if model.E is not None and any(k.size < u for k, u in zip(keep_u, model.num_controls, strict=True)):
        raise ModelError("the model has a policy prior E, over policies that pruning actions changes: remove it "
                         "first (model.replace(E=None, pE=None)) and give the pruned model the prior of its new "
                         "policies")

    def A_index(m):  # (outcome, *states of A_dependencies[m])
        return [keep_o[m], *[keep_s[g] for g in model.A_dependencies[m]]]

    def B_index(f):  # (next state, *states of B_dependencies[f], action)
        return [keep_s[f], *[keep_s[g] for g in model.B_dependencies[f]], keep_u[f]]

    def pruned(arrays, index, name, normalise):
        return None if arrays is None else [_take(x, index(i), f"{name}[{i}]", normalise)
                                            for i, x in enumerate(arrays)]

    C = [C_m[keep_o[m]] for m, C_m in enumerate(model.C)]  # (O_m,) or (O_m, T): rows only
    pC = None if model.pC is None else [_take(p, [keep_o[m], *[np.arange(n) for n in p.shape[1:]]], f"pC[{m}]", False)
                                        for m, p in enumerate(model.pC)]
    return GenerativeModel(
        A=pruned(model.A, A_index, "A", True), B=pruned(model.B, B_index, "B", True), C=C,
        D=pruned(model.D, lambda f: [keep_s[f]], "D", True), E=model.E,
        pA=pruned(model.pA, A_index, "pA", False), pB=pruned(model.pB, B_index, "pB", False),
        pD=pruned(model.pD, lambda f: [keep_s[f]], "pD", False), pE=model.pE, pC=pC,
        A_dependencies=model.A_dependencies, B_dependencies=model.B_dependencies)


@dataclass(frozen=True)
class LevelEvidence:
    """What Bayesian model reduction says about removing each state and outcome, one level at a time.

    ``F = ln p(data | full model) - ln p(data | model without the level)``, from the Dirichlet counts (see
    ``level_evidence``): negative favours removing the level, ``+inf`` means the data need it (or a column would
    be left without mass), ``0`` that the counts say nothing about it.

    Attributes:
        states: ``states[f]``: ``(num_states[f],)``, F of removing each state of factor ``f``.
        outcomes: ``outcomes[m]``: ``(num_obs[m],)``, F of removing each outcome of modality ``m``.
    """

    states: list
    outcomes: list

    def prunable(self, threshold: float = 3.0) -> dict:
        """The levels whose F is below ``-threshold``, as ``prune_model``'s keywords: ``{"states": [[...], ...],
        "outcomes": [[...], ...]}``. ``threshold`` is a log Bayes factor, >= 0 (3: about 20 to 1, "strong"
        evidence in Kass and Raftery's 1995 scale)."""
        threshold = checks.check_real(threshold, "threshold", 0.0)
        return {name: [np.flatnonzero(F < -threshold).tolist() for F in getattr(self, name)]
                for name in ("states", "outcomes")}


def _data(q: np.ndarray, p: np.ndarray, min_count: float) -> np.ndarray:
    """Posterior counts with the evidence ``q - p`` of size ``<= min_count`` removed (set back to the prior)."""
    return np.where(np.abs(q - p) <= min_count, p, q)


def _row_reductions(q: np.ndarray, p: np.ndarray, own_axis: int | None, label: str) -> np.ndarray:
    """F of removing each level ``k`` of axis 0 from Dirichlet counts, one level at a time: ``(n,)``.

    The reduced prior zeroes row ``k`` of ``p`` in every column, except the columns conditioned on level ``k``
    itself (``own_axis``, a column axis over the same variable: those columns leave the reduced model, which
    gives them no prior to compare). Levels whose removal leaves a column without mass get ``+inf``. ``label``
    names the counts in errors."""
    n = p.shape[0]
    k = np.arange(n)
    row = np.arange(n).reshape((n,) + (1,) * (p.ndim - 1) + (1,))
    drop = row == k  # (n, 1.., n): entry (i, ..., k) is in the removed row of candidate k
    if own_axis is not None:
        cond = np.arange(n).reshape((1,) * own_axis + (n,) + (1,) * (p.ndim - 1 - own_axis) + (1,))
        drop = drop & (cond != k)  # columns conditioned on k are left as they are
    r = np.where(drop, 0.0, p[..., None])  # (*p.shape, n): one reduced prior per candidate
    empty = r.sum(axis=0) == 0  # (*columns, n)
    r = np.where(empty[None], p[..., None], r)  # placeholder prior for an emptied column (its F is +inf below)
    try:
        F, _ = reduce_dirichlet(q[..., None], p[..., None], r)
    except ModelError as err:
        raise ModelError(f"{label} (model against prior): {err}") from None
    F = F.reshape(-1, n).sum(axis=0)
    return np.where(empty.reshape(-1, n).any(axis=0), np.inf, F)


def _conditioned(q: np.ndarray, p: np.ndarray, axis: int) -> np.ndarray:
    """``(n,)``: whether the columns conditioned on each level of ``axis`` received evidence (``q != p``)."""
    changed = q != p
    return np.moveaxis(changed, axis, 0).reshape(changed.shape[axis], -1).any(axis=1)


def level_evidence(model: GenerativeModel, prior: GenerativeModel, *, min_count: float = 0.0) -> LevelEvidence:
    """Bayesian model reduction of each state and outcome level, from the counts before and after learning.

    Removing a level is a reduced prior with zero counts for it, scored with ``reduce_dirichlet`` against the
    posterior counts ``model.p*`` and the prior counts ``prior.p*`` (so no refitting):

    - outcome ``o`` of modality ``m``: row ``o`` of ``pA[m]`` set to zero in every column;
    - state ``s`` of factor ``f``: row ``s`` of ``pD[f]`` and of ``pB[f]`` set to zero (the columns of ``pB[f]``
      conditioned on ``s`` leave the model with it). Columns of ``pA`` and ``pB`` conditioned on ``s`` that
      received evidence make F ``+inf``: the data were explained by the agent being in ``s``.

    A level that received evidence has ``F = +inf`` (the reduced model cannot explain the data). For a level
    with none, F is negative whenever the columns it leaves received any evidence: the reduced model
    predicted the data better, by concentrating the same prior on fewer levels. F of removing several levels of
    one factor or modality together is at most the F of each alone (the reduction moves more prior mass off the
    unobserved levels; unless it leaves a column without mass), so pruning every level below a threshold at once
    is favoured at least as strongly. Each level is scored in the model as given: an outcome that only an
    unneeded state produces scores ``+inf`` until that state is removed (``prune_by_evidence`` does so first).
    Counts that are not learned (``pA``, ``pB`` or ``pD`` absent) contribute nothing. Actions are not levels of
    any Dirichlet: the evidence for removing an action never taken is exactly 0, so BMR never decides on
    actions (``prune_model(actions=...)`` removes them by hand, as legacy's ``_prune_B``).

    Args:
        model: the model after learning (its counts are the posterior).
        prior: the same model before learning (its counts are the prior): the same shapes, dependencies and
            structural zeros; the posterior counts are the prior's plus evidence (learning without forgetting).
        min_count: evidence (``|q - p|`` per count) at or below it is treated as none, >= 0. Beliefs computed
            under a log guard are rarely exactly 0, so a state never visited still collects counts of about
            1e-16 per step, which with ``min_count = 0`` make F ``+inf``; outcomes observed as indices are exact.

    Returns:
        ``LevelEvidence`` with F per state of each factor and per outcome of each modality.

    Raises:
        StrategyError: ``model`` or ``prior`` not a ``GenerativeModel``. ModelError: their structures or counts
            disagree, or the posterior counts hold less than the prior's (forgetting).
    """
    checks.check_is_model(model)
    checks.check_is_model(prior)
    min_count = checks.check_real(min_count, "min_count", 0.0)
    for name in ("num_states", "num_obs", "num_controls", "A_dependencies", "B_dependencies"):
        if getattr(model, name) != getattr(prior, name):
            raise ModelError(f"model and prior differ in {name}: {getattr(model, name)} and {getattr(prior, name)}")
    counts: dict[str, list[tuple[np.ndarray, np.ndarray]] | None] = {}
    for name in ("pA", "pB", "pD"):
        q, p = getattr(model, name), getattr(prior, name)
        if (q is None) != (p is None):
            raise ModelError(f"{name} is {'absent' if q is None else 'present'} in model but not in prior: BMR "
                             "compares the counts after learning with those before")
        counts[name] = None if q is None else [(_data(q_i, p_i, min_count), p_i) for q_i, p_i in zip(q, p, strict=True)]

    pA, pB, pD = counts["pA"], counts["pB"], counts["pD"]
    outcomes = [_row_reductions(*pA[m], None, f"pA[{m}]") if pA else np.zeros(o) for m, o in enumerate(model.num_obs)]
    states = []
    for f, n in enumerate(model.num_states):
        F = np.zeros(n)
        if pD:
            F += _row_reductions(*pD[f], None, f"pD[{f}]")
        if pB:
            deps = model.B_dependencies[f]
            F += _row_reductions(*pB[f], deps.index(f) + 1 if f in deps else None, f"pB[{f}]")
        needed = np.zeros(n, dtype=bool)  # columns conditioned on a state that received evidence
        for pX, dependencies in ((pA, model.A_dependencies), (pB, model.B_dependencies)):
            for (q_i, p_i), deps in zip(pX, dependencies, strict=True) if pX else ():
                if f in deps:
                    needed |= _conditioned(q_i, p_i, deps.index(f) + 1)
        states.append(np.where(needed, np.inf, F))
    return LevelEvidence(states=states, outcomes=outcomes)


def prune_by_evidence(model: GenerativeModel, prior: GenerativeModel, threshold: float = 3.0, *,
                      min_count: float = 0.0) -> tuple[GenerativeModel, LevelEvidence]:
    """Remove the states, then the outcomes, that Bayesian model reduction favours removing (F < -threshold).

    States first: ``level_evidence`` scores each state and those below ``-threshold`` are removed together
    (together they are favoured at least as strongly as each alone: see ``level_evidence``). Outcomes second, on
    the model without those states: an outcome that only a removed state produced could not be removed before
    (its column would have been left without mass). Outcome indices are not changed by removing states, so the
    returned evidence names every removed level by its index in ``model``, and the prior is pruned the same way
    with ``prune_model(prior, **evidence.prunable(threshold))`` (to go on learning).

    Args:
        model: the model after learning; prior: before it (see ``level_evidence``).
        threshold: log Bayes factor a removal must reach, >= 0 (3 by default: about 20 to 1).
        min_count: see ``level_evidence``.

    Returns:
        ``(pruned_model, evidence)``: ``evidence.states`` scored on ``model``, ``evidence.outcomes`` on the model
        without the removed states.
    """
    threshold = checks.check_real(threshold, "threshold", 0.0)
    by_state = level_evidence(model, prior, min_count=min_count)
    states = by_state.prunable(threshold)["states"]
    model, prior = prune_model(model, states=states), prune_model(prior, states=states)
    evidence = LevelEvidence(states=by_state.states,
                             outcomes=level_evidence(model, prior, min_count=min_count).outcomes)
    return prune_model(model, outcomes=evidence.prunable(threshold)["outcomes"]), evidence


__all__ = [
    "Learning", "WNorm", "WNORM_LEGACY", "WNORM_SPM", "WNORM_EXACT", "WNORM_SPM12_TRIAL", "spm_wnorm",
    "update_A", "update_B", "update_D", "update_C", "update_E", "preferences_from_counts", "learn_trial",
    "reduce_dirichlet",
    "prune_model", "level_evidence", "prune_by_evidence", "LevelEvidence",
]
