"""State inference at one time step in PyTorch: the equations of ``aif.inference`` for a batch of beliefs.

The settings objects are ``aif``'s (``aif.FixedPoint``, ``aif.Exact``: same fields, same presets);
``fixed_point`` and ``exact`` run the same equations on tensors. Beliefs carry any leading
shape; each belief stops iterating on its own when its VFE change falls below ``tol``, so a batch gives the
same posteriors as running ``aif`` on each member.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

import aif
from aif.checks import check_joint_size
from aif.errors import ObservationError, StrategyError
from aif.strategies import TORCH, StateInference, require

from . import checks
from .efe import guarded_log
from .model import BeliefModel, sum_against


def _batch_shape(log_likelihoods, log_prior, A_dependencies):
    shapes = [L.shape[: L.ndim - len(d)] for L, d in zip(log_likelihoods, A_dependencies, strict=True)]
    shapes += [lp.shape[:-1] for lp in log_prior]
    return np.broadcast_shapes(*shapes)


def _expected_log_likelihood(qs, f, log_likelihoods, A_dependencies):
    """E_{q(s_not f)}[ln p(o | s)] as a function of s_f: ``(*batch, S_f)``."""
    out = 0.0
    for logL_m, deps in zip(log_likelihoods, A_dependencies, strict=True):
        if f not in deps:
            continue
        k = len(deps)
        others = [i for i, g in enumerate(deps) if g != f]
        # Move s_f to the front of the state axes, so the others form the trailing block.
        L = logL_m.movedim(logL_m.ndim - k + deps.index(f), logL_m.ndim - k)
        out = out + sum_against(L, [qs[deps[i]] for i in others], keep=1)
    return out


def _mean_field_vfe(qs, log_prior, log_likelihoods, A_dependencies, guard, accuracy=True):
    """F = sum_f q_f . (ln q_f - ln p_f) - sum_m E_q[ln p(o_m | s)], ``(*batch,)``."""
    vfe = sum((q * (guarded_log(q, guard) - lp)).sum(-1) for q, lp in zip(qs, log_prior, strict=True))
    if accuracy:
        for logL_m, deps in zip(log_likelihoods, A_dependencies, strict=True):
            vfe = vfe - sum_against(logL_m, [qs[g] for g in deps], keep=0)
    return vfe


def fixed_point(method: aif.FixedPoint, log_likelihoods: list, log_prior: list, A_dependencies: list,
                trace: list | None = None) -> list:
    """``aif.FixedPoint``'s iteration on tensors (same settings and stopping rule, per belief of the batch)."""
    num_factors = len(log_prior)
    if num_factors == 1:
        return [torch.softmax(sum(log_likelihoods) + log_prior[0], -1)]
    batch = _batch_shape(log_likelihoods, log_prior, A_dependencies)
    like = log_prior[0]
    qs = [torch.full((*batch, lp.shape[-1]), 1.0 / lp.shape[-1], dtype=like.dtype, device=like.device)
          for lp in log_prior]
    vfe = _mean_field_vfe(qs, log_prior, log_likelihoods, A_dependencies, method.guard,
                          accuracy=not method.legacy_initial_vfe)
    # A belief that has met the stopping rule keeps its value while the others iterate on.
    done = torch.zeros(batch, dtype=torch.bool, device=like.device)
    for _ in range(method.num_iter):
        keep = done[..., None]
        if method.schedule == "sequential":
            for f in range(num_factors):
                new = torch.softmax(_expected_log_likelihood(qs, f, log_likelihoods, A_dependencies)
                                    + log_prior[f], -1)
                qs[f] = torch.where(keep, qs[f], new)
        else:
            new_qs = [torch.softmax(_expected_log_likelihood(qs, f, log_likelihoods, A_dependencies)
                                    + log_prior[f], -1) for f in range(num_factors)]
            qs = [torch.where(keep, q, n) for q, n in zip(qs, new_qs, strict=True)]
        if method.tol is None and trace is None:
            continue
        new_vfe = _mean_field_vfe(qs, log_prior, log_likelihoods, A_dependencies, method.guard)
        if trace is not None:
            trace.append(new_vfe.detach())
        if method.tol is None:
            continue
        converged = (vfe - new_vfe).abs() < method.tol
        vfe = torch.where(done | converged, vfe, new_vfe)
        done = done | converged
        if bool(done.all()):
            break
    return qs


def exact(log_likelihoods: list, log_prior: list, A_dependencies: list) -> list:
    """``aif.Exact`` on tensors: the exact joint posterior, marginalised per factor."""
    nf = len(log_prior)
    sub = "abcdefghijklmnopqrstuvwxyz"[:nf]
    joint: Any = 0.0
    for logL_m, deps in zip(log_likelihoods, A_dependencies, strict=True):
        # Broadcast each message onto the joint state axes (..., S_0, ..., S_{F-1}).
        expr = "..." + "".join(sub[f] for f in deps) + "->..." + "".join(sub[f] for f in sorted(deps))
        L = torch.einsum(expr, logL_m)
        shape = list(L.shape[: L.ndim - len(deps)]) + [lp.shape[-1] if f in deps else 1
                                                        for f, lp in enumerate(log_prior)]
        joint = joint + L.reshape(shape)
    for f, lp in enumerate(log_prior):
        joint = joint + lp.reshape(*lp.shape[:-1], *[lp.shape[-1] if g == f else 1 for g in range(nf)])
    post = torch.softmax(joint.reshape(*joint.shape[: joint.ndim - nf], -1), -1).reshape(joint.shape)
    axes = list(range(-nf, 0))
    return [post.sum(dim=[a for a in axes if a != f - nf]) if nf > 1 else post for f in range(nf)]


def categorical_modalities(model: BeliefModel) -> list:
    """Which modalities of ``model`` are categorical (observed as outcome indices or probabilities, checked by
    ``as_obs``), one bool each: ``model.categorical`` (``NeuralModel``'s image and real-vector heads are not,
    their ``log_likelihood`` checks them), all of them for a model without it (``TabularModel``)."""
    flags = getattr(model, "categorical", None)
    return [True] * len(model.num_obs) if flags is None else [bool(c) for c in flags]


def as_obs(model: BeliefModel, obs: Any, device: torch.device | str | None = None,
           dtype: torch.dtype = torch.float64) -> list:
    """Observations as one tensor per modality: int ``(*lead,)`` (indices) or float ``(*lead, O_m)`` for a
    categorical modality (checked); any tensor (an image ``(*lead, H, W)``) for the others, floats cast to
    ``dtype``. ``obs``: one entry per modality, or, when every modality is categorical, an integer array
    ``(*lead, num_modalities)`` (a vector environment's)."""
    M = len(model.num_obs)
    categorical = categorical_modalities(model)
    if isinstance(obs, (np.ndarray, torch.Tensor)) and not torch.is_floating_point(torch.as_tensor(obs)) \
            and all(categorical):
        obs = torch.as_tensor(obs, device=device)
        if obs.ndim == 0 or obs.shape[-1] != M:
            raise ObservationError(f"an integer observation array must end with one entry per modality ({M}), "
                                   f"got shape {tuple(obs.shape)}")
        obs = list(obs.unbind(-1))
    elif not isinstance(obs, (list, tuple)):
        raise ObservationError(f"obs must have one entry per modality ({M}), got {str(obs)[:200]}")
    entries = list(obs)
    if len(entries) != M:
        raise ObservationError(f"obs has {len(entries)} entries but the model has {M} modalities")
    out = []
    for m, o in enumerate(entries):
        n = model.num_obs[m]
        o = checks.tensor(o, f"obs[{m}]", ObservationError, device) if device is not None else \
            checks.as_tensor(o, f"obs[{m}]", ObservationError)
        if not categorical[m]:
            out.append(o.to(dtype) if o.is_floating_point() else o)
        elif o.ndim == 0 and (o.is_floating_point() or o.dtype == torch.bool):  # aif's rule and message
            raise ObservationError(f"obs[{m}] = {o.item()!r} is not an outcome index (an integer) or a vector")
        elif o.is_floating_point():
            o = o.to(dtype)
            if o.shape[-1:] != (n,):
                raise ObservationError(f"obs[{m}] has shape {tuple(o.shape)}, expected (..., {n}) for modality {m}")
            out.append(checks.distribution(o, f"obs[{m}]", ObservationError))
        else:
            if o.dtype == torch.bool:
                raise ObservationError(f"obs[{m}] is boolean; give outcome indices or probabilities")
            bad = (o < 0) | (o >= n)
            if bad.any():
                raise ObservationError(f"observation {int(o[bad].flatten()[0])} is out of range for modality {m} "
                                       f"with {n} outcomes (0 to {n - 1})")
            out.append(o.long())
    return out


def infer_states(model: BeliefModel, obs: Any, prior: list | None = None,
                 method: StateInference | None = None, trace: list | None = None) -> list:
    """Posterior over hidden states after one observation, for one belief or a batch.

    Args:
        model: a ``TabularModel`` (or any ``BeliefModel``).
        obs: one entry per modality: outcome indices (int or int tensor ``(*lead,)``) or probabilities
            ``(*lead, O_m)``; or an integer tensor ``(*lead, num_modalities)``.
        prior: one tensor ``(*lead, S_f)`` per factor; ``model.prior()`` when absent.
        method: ``aif.FixedPoint()`` (default), ``aif.FixedPoint.pymdp_legacy()``, ``aif.FixedPoint.pymdp()`` or
            ``aif.Exact()``; its ``soft_obs`` says how probabilities enter a ``TabularModel``'s likelihood.
        trace: optional list to which iterative methods append the VFE ``(*lead,)`` after each sweep.

    Returns:
        ``qs``: one tensor ``(*lead, S_f)`` per factor (``lead`` broadcast over obs, prior and the model's
        batch shape).
    """
    method = aif.FixedPoint() if method is None else method
    require(method, StateInference, "method", TORCH)  # type: ignore[type-abstract]
    if not isinstance(method, (aif.FixedPoint, aif.Exact)):
        raise StrategyError(f"method = {method!r}: aif_deep.infer_states runs aif.FixedPoint and aif.Exact")
    ref = model.prior()[0]
    prior = model.prior() if prior is None else checks.beliefs(model, prior)
    obs = as_obs(model, obs, ref.device, ref.dtype)
    # The default keeps the two-argument call every BeliefModel takes (a NeuralModel's encoder reads
    # probabilities as its input, so neither rule applies to it).
    logL = (model.log_likelihood(obs, method.guard) if method.soft_obs == aif.inference.MIXTURE
            else model.log_likelihood(obs, method.guard, soft_obs=method.soft_obs))  # type: ignore[call-arg]
    log_prior = [guarded_log(p, method.guard) for p in prior]
    if isinstance(method, aif.Exact):
        lead = np.broadcast_shapes(*(tuple(x.shape[: x.ndim - len(d)]) for x, d in zip(logL, model.A_dependencies,
                                                                                        strict=True)),
                                   *(tuple(p.shape[:-1]) for p in log_prior))
        check_joint_size(model.num_states, method.max_bytes, "Exact", math.prod(lead))  # the whole batch's
        return exact(logL, log_prior, model.A_dependencies)
    return fixed_point(method, logL, log_prior, model.A_dependencies, trace)
