r"""Dirichlet learning of A, B and D, and the novelty weights of parameter information gain, in PyTorch.

The same updates as ``aif.learning`` (see its docstring for the formulas and their pymdp counterparts), for
a batch of agents at once: counts ``pA[m]: (*batch, O_m, *S_deps)``, ``pB[f]: (*batch, S_f, *S_deps, U_f)``,
``pD[f]: (*batch, S_f)``; observations ``(*batch,)`` indices or ``(*batch, O_m)`` probabilities; beliefs
``(*batch, S_f)``; actions ``(*batch, num_factors)``. Every function returns new tensors (the inputs are
not modified) and is differentiable in the beliefs and the counts.

    pA[m]'          = forgetting * pA[m] + (1 - forgetting) * prior + lr * o_m ⊗ qs[g] ⊗ ...
    pB[f]'          = forgetting * pB[f] + (1 - forgetting) * prior
    pB[f]'[..., u]  += lr * qs[f] ⊗ qs_prev[g] ⊗ ...          (u = action[f], per agent)
    pD[f]'          = forgetting * pD[f] + (1 - forgetting) * prior + lr * qs[f]

(without ``prior`` forgetting decays towards zero). ``novelty_weights`` gives the novelty weights ``W`` that the
policy evaluator uses for the ``pA_info_gain`` and ``pB_info_gain`` terms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from aif.checks import check_dependencies, check_obs_list, check_rates, check_sequence
from aif.errors import BeliefError, ModelError, ObservationError, PolicyError
from aif.learning import WNORM_LEGACY, WNorm

from . import checks

Tensor = torch.Tensor


def novelty_weights(a: Tensor, outcome_dim: int, convention: WNorm = WNORM_LEGACY) -> Tensor:
    """``W`` for counts ``a`` whose Dirichlet columns run along ``outcome_dim``; masked where ``a == 0``.

    Heuristic (SPM, pymdp.legacy): ``1/a0 - 1/a`` after adding ``eps``; exact (pymdp 1.0):
    ``-(ln a0 - ln a + ψ(a+1) - ψ(a0+1))`` with counts clipped below at ``eps``.
    """
    if convention.exact:
        c = a.clamp_min(convention.eps)
        c0 = c.sum(outcome_dim, keepdim=True).clamp_min(convention.eps)
        W = -(torch.log(c0) - torch.log(c) + torch.digamma(c + 1.0) - torch.digamma(c0 + 1.0))
    else:
        c = a + convention.eps
        W = 1.0 / c.sum(outcome_dim, keepdim=True) - 1.0 / c
    W = W if convention.scale == 1.0 else convention.scale * W  # SPM12's spm_MDP_VB_X halves them (aif's WNorm)
    return torch.where(a > 0, W, torch.zeros_like(W))


def outer(vectors):
    """``v0 ⊗ v1 ⊗ ...`` over the last axis of each, broadcasting their leading (batch) axes."""
    batch = np.broadcast_shapes(*[v.shape[:-1] for v in vectors])
    out = vectors[0].expand(*batch, vectors[0].shape[-1])
    for v in vectors[1:]:
        k = out.ndim - len(batch)
        out = out.unsqueeze(-1) * v.expand(*batch, v.shape[-1]).reshape(*batch, *([1] * k), v.shape[-1])
    return out


def _axes(p, k, label):
    """``p`` has at least the ``k`` axes of a count array (after any batch axes), else ``ModelError``."""
    if p.ndim < k:
        raise ModelError(f"{label} has shape {tuple(p.shape)}: fewer than the {k} axes its dependencies need")


def _plus(p, lr, vectors, label, mask_zeros, dim):
    """``p + lr * v0 ⊗ v1 ⊗ ...``, left at zero where ``p`` is (``mask_zeros``: structural zeros, as
    ``aif.learning``); ``p``'s columns along ``dim`` must have a positive total. Batch shapes that do not broadcast
    are a ``BeliefError``."""
    checks.column_sums(p, dim, label)
    try:
        new = p + lr * outer(vectors)
        return torch.where(p > 0, new, torch.zeros_like(new)) if mask_zeros else new
    except (ValueError, RuntimeError):
        raise BeliefError(f"the batch shapes of the beliefs {[tuple(v.shape[:-1]) for v in vectors]} and of {label} "
                          f"{tuple(p.shape)} do not broadcast") from None


def _forget(p, forgetting, prior, label):
    if prior is None or forgetting == 1:
        return forgetting * p
    prior = torch.as_tensor(prior, device=p.device, dtype=p.dtype)
    if prior.shape != p.shape:
        raise ModelError(f"prior counts for {label} have shape {tuple(prior.shape)}, expected {tuple(p.shape)}")
    return forgetting * p + (1.0 - forgetting) * prior


def update_A(pA: list, obs: Any, qs: list, lr: float = 1.0, forgetting: float = 1.0, *,
             A_dependencies: list | None = None, prior: list | None = None, mask_zeros: bool = True) -> list:
    """Dirichlet update of the likelihood counts after one observation, for a batch of agents.

    Args:
        pA: ``pA[m]``: ``(*batch, O_m, *S_g for g in A_dependencies[m])``, positive.
        obs: one entry per modality: indices ``(*batch,)`` or probabilities ``(*batch, O_m)``.
        qs: posteriors, ``qs[f]``: ``(*batch, S_f)``.
        lr, forgetting, prior, mask_zeros: as ``aif.learning.update_A`` (zero counts stay zero by default).
        A_dependencies: factors each modality depends on; all factors by default.

    Returns:
        New counts shaped like ``pA``.
    """
    check_rates(lr, forgetting)
    pA = checks.counts(pA, "pA")
    obs, qs = check_obs_list(obs, len(pA), "pA"), check_sequence(qs, "qs", BeliefError)
    A_dependencies = check_dependencies(A_dependencies, len(pA), len(qs), "A", lambda m: list(range(len(qs))))
    out = []
    for m, (p, deps) in enumerate(zip(pA, A_dependencies, strict=True)):
        _axes(p, len(deps) + 1, f"pA[{m}]")
        O_m, k = p.shape[p.ndim - len(deps) - 1], len(deps)
        o = checks.as_tensor(obs[m], f"obs[{m}]", ObservationError, p.device)
        if o.is_floating_point():
            o = checks.vector(o, O_m, f"obs[{m}]", p, ObservationError)
        else:
            if ((o < 0) | (o >= O_m)).any():
                raise ObservationError(f"obs[{m}] holds outcome {int(o[(o < 0) | (o >= O_m)][0])}, but modality {m} "
                                       f"has {O_m} outcomes (0 to {O_m - 1})")
            o = torch.nn.functional.one_hot(o.long(), O_m).to(p.dtype)
        factors = [checks.vector(qs[g], p.shape[p.ndim - k + i], f"qs[{g}]", p) for i, g in enumerate(deps)]
        out.append(_plus(_forget(p, forgetting, None if prior is None else prior[m], f"pA[{m}]"),
                         lr, [o, *factors], f"pA[{m}]", mask_zeros, p.ndim - k - 1))
    return out


def update_B(pB: list, qs: list, qs_prev: list, action: Any, lr: float = 1.0, forgetting: float = 1.0, *,
             B_dependencies: list | None = None, prior: list | None = None, mask_zeros: bool = True) -> list:
    """Dirichlet update of the transition counts after one transition, for a batch of agents.

    Args:
        pB: ``pB[f]``: ``(*batch, S_f, *S_g for g in B_dependencies[f], U_f)``, positive.
        qs, qs_prev: beliefs after and before the transition, ``(*batch, S_f)`` per factor.
        action: int ``(*batch, num_factors)``: each agent's action on each factor.
        lr, forgetting, prior, B_dependencies, mask_zeros: as ``aif.learning.update_B``.

    Returns:
        New counts shaped like ``pB``.
    """
    check_rates(lr, forgetting)
    pB = checks.counts(pB, "pB")
    nf = len(pB)
    qs, qs_prev = check_sequence(qs, "qs", BeliefError), check_sequence(qs_prev, "qs_prev", BeliefError)
    action = checks.as_tensor(action, "action", PolicyError, pB[0].device)
    if action.is_floating_point() or action.dtype == torch.bool or action.ndim == 0 or action.shape[-1] != nf:
        raise PolicyError(f"action must be an integer tensor (..., {nf}), one action per factor; got "
                          f"{action.dtype} of shape {tuple(action.shape)}")
    B_dependencies = check_dependencies(B_dependencies, nf, nf, "B", lambda f: [f])
    out = []
    for f, (p, deps) in enumerate(zip(pB, B_dependencies, strict=True)):
        _axes(p, len(deps) + 2, f"pB[{f}]")
        k, U = len(deps), p.shape[-1]
        u = action[..., f]
        if ((u < 0) | (u >= U)).any():
            raise PolicyError(f"action {int(u[(u < 0) | (u >= U)][0])} is out of range for factor {f} with {U} "
                              f"controls (0 to {U - 1})")
        if max(f, *deps) >= min(len(qs), len(qs_prev)):
            raise BeliefError(f"qs and qs_prev have {len(qs)} and {len(qs_prev)} vectors but pB has {nf} factors")
        q_next = checks.vector(qs[f], p.shape[p.ndim - k - 2], f"qs[{f}]", p)
        q_deps = [checks.vector(qs_prev[g], p.shape[p.ndim - k - 1 + i], f"qs_prev[{g}]", p)
                  for i, g in enumerate(deps)]
        onehot = torch.nn.functional.one_hot(u.long(), U).to(p.dtype)
        out.append(_plus(_forget(p, forgetting, None if prior is None else prior[f], f"pB[{f}]"),
                         lr, [q_next, *q_deps, onehot], f"pB[{f}]", mask_zeros, p.ndim - k - 2))
    return out


def update_D(pD: list, qs: list, lr: float = 1.0, forgetting: float = 1.0, *, prior: list | None = None,
             mask_zeros: bool = True) -> list:
    """Dirichlet update of the initial-state counts ``pD[f]: (*batch, S_f)`` with beliefs ``qs[f]``."""
    check_rates(lr, forgetting)
    pD, qs = checks.counts(pD, "pD"), check_sequence(qs, "qs", BeliefError)
    if len(qs) != len(pD):
        raise BeliefError(f"qs has {len(qs)} vectors but pD has {len(pD)} factors")
    return [_plus(_forget(p, forgetting, None if prior is None else prior[f], f"pD[{f}]"),
                  lr, [checks.vector(qs[f], p.shape[-1], f"qs[{f}]", p)], f"pD[{f}]", mask_zeros, -1)
            for f, p in enumerate(pD)]


def dirichlet_mean(p: Tensor, outcome_dim: int) -> Tensor:
    """The mean of Dirichlet counts: ``p`` normalised along ``outcome_dim`` (the model's A, B or D)."""
    return p / p.sum(outcome_dim, keepdim=True)
