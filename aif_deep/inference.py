"""State inference at one time step in PyTorch: the equations of ``aif.inference`` for a batch of beliefs.

The settings objects are ``aif``'s (``aif.FixedPoint``, ``aif.Exact``: same fields, same presets);
``fixed_point`` and ``exact`` run the same equations on tensors. Beliefs carry any leading
shape; each belief stops iterating on its own when its VFE change falls below ``tol``, so a batch gives the
same posteriors as running ``aif`` on each member.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any, cast

import numpy as np
import torch

import aif
import aif.maths
from aif.checks import check_joint_size
from aif.errors import ObservationError, StrategyError
from aif.inference import by_dependencies, modality_groups
from aif.strategies import TORCH, StateInference, require

from . import checks
from .efe import guarded_log, xlogx
from .model import BeliefModel, TabularModel, sum_leading


def _batch_shape(log_likelihoods, log_prior, A_dependencies):
    shapes = {tuple(L.shape[: L.ndim - len(d)]) for L, d in zip(log_likelihoods, A_dependencies, strict=True)}
    shapes |= {tuple(lp.shape[:-1]) for lp in log_prior}
    return shapes.pop() if len(shapes) == 1 else np.broadcast_shapes(*shapes)


# The iteration below runs with the batch as the LAST axis: beliefs ``(S_f, b)``, log-likelihoods ``(*S_deps, b)``
# (why: ``model.sum_leading``).


def _to_last(x: torch.Tensor, k: int, batch: tuple, b: int) -> torch.Tensor:
    """``(*lead, *S)`` with ``k`` state axes (``lead`` broadcasting to ``batch``) -> contiguous ``(*S, b)``."""
    states = x.shape[x.ndim - k:]
    if x.shape[: x.ndim - k] != batch or len(batch) != 1:
        x = x.expand(*batch, *states).reshape(b, *states)
    return x.movedim(0, -1).contiguous()


def _expected_log_likelihood(qs, f, log_likelihoods, A_dependencies):
    """E_{q(s_not f)}[ln p(o | s)] as a function of s_f: ``(S_f, b)``, batch last."""
    out = None
    for L, deps in zip(log_likelihoods, A_dependencies, strict=True):
        if f in deps:
            x = sum_leading(L, deps, qs, keep=f)
            out = x if out is None else out + x
    return torch.zeros_like(qs[f]) if out is None else out


def _mean_field_vfe(qs, log_prior, log_likelihoods, A_dependencies, guard, accuracy=True, known=None):
    """F = sum_f q_f . (ln q_f - ln p_f) - sum_m E_q[ln p(o_m | s)], ``(b,)``, batch last; ``log_prior`` stacked
    over the factors ``(sum S_f, b)``. ``known``: ``(f, x_f)`` with ``x_f = E_{q(s_not f)}[ln p(o | s)]`` over the
    groups that read factor ``f`` (the last update's, from the same beliefs), whose accuracy is then ``q_f . x_f``."""
    q = torch.cat(qs, 0)  # (sum S_f, b): every factor's entropy and cross-entropy in one pass
    vfe = (q * (guarded_log(q, guard) - log_prior)).sum(0)
    if accuracy:
        for L, deps in zip(log_likelihoods, A_dependencies, strict=True):
            if known is None or known[0] not in deps:
                vfe = vfe - sum_leading(L, deps, qs)
        if known is not None:
            vfe = vfe - (qs[known[0]] * known[1]).sum(0)
    return vfe


def fixed_point(method: aif.FixedPoint, log_likelihoods: list, log_prior: list, A_dependencies: list,
                trace: list | None = None) -> list:
    """``aif.FixedPoint``'s iteration on tensors (same settings and stopping rule, per belief of the batch).

    Args:
        log_likelihoods: ``ln p(o_m | s)`` per modality, ``(*lead, *S_f for f in A_dependencies[m])``.
        log_prior: ``ln p(s_f)`` per factor, ``(*lead, S_f)``.
        trace: optional list; the VFE ``(*batch,)`` after each sweep is appended to it.

    Returns ``qs``, one ``(*batch, S_f)`` per factor (``batch`` the broadcast of the leading shapes). Modalities
    that read the same factors are summed first (``aif.inference.by_dependencies``, as ``aif`` does); the sweeps
    run with the batch last (``fixed_point_last``).
    """
    num_factors = len(log_prior)
    if num_factors == 1:
        return [torch.softmax(sum(log_likelihoods) + log_prior[0], -1)]
    batch = tuple(_batch_shape(log_likelihoods, log_prior, A_dependencies))
    b = math.prod(batch)
    log_likelihoods, A_dependencies = by_dependencies(log_likelihoods, A_dependencies)
    L = [_to_last(x, len(d), batch, b) for x, d in zip(log_likelihoods, A_dependencies, strict=True)]
    lp_all = _to_last(torch.cat([p.expand(*batch, p.shape[-1]) for p in log_prior], -1), 1, batch, b)
    qs = fixed_point_last(method, L, A_dependencies, lp_all, [p.shape[-1] for p in log_prior], trace, batch)
    return [q.T.contiguous().reshape(*batch, q.shape[0]) for q in qs]


@functools.lru_cache(maxsize=256)
def _uniform_log(guard: aif.maths.LogGuard, size: int) -> float:
    """``guard(1 / size)``: ln q of a uniform belief over ``size`` states (the VFE at the start of the sweeps)."""
    return float(guard(1.0 / size))


def fixed_point_last(method: aif.FixedPoint, L: list, groups: list, lp_all: torch.Tensor, sizes: list,
                     trace: list | None = None, batch: tuple | None = None) -> list:
    """The sweeps of ``fixed_point`` (two or more factors) with the batch last, on inputs laid out for them.

    Args:
        L: one summed log-likelihood ``(*S_f for f in groups[g], b)`` per group of modalities that read the same
            factors (``aif.inference.by_dependencies``), contiguous.
        groups: the factors each entry of ``L`` reads.
        lp_all: ``ln p(s_f)`` of every factor stacked, ``(sum S_f, b)``, contiguous.
        sizes: ``S_f`` per factor.
        trace: as ``fixed_point``'s; its entries are reshaped to ``batch`` (``(b,)`` when absent).

    Returns ``qs``, one ``(S_f, b)`` per factor. After a sequential sweep the accuracy term of the groups that
    read the last factor is ``q_f . x_f``, ``x_f`` the expected log-likelihood that factor's update has just
    formed (equal to the full contraction up to rounding).
    """
    num_factors, b = len(sizes), lp_all.shape[-1]
    lp = list(lp_all.split(sizes))  # (S_f, b) each: contiguous rows of the stacked prior
    qs = [torch.full_like(p, 1.0 / p.shape[0]) for p in lp]
    # F at the uniform start, sum_f (guard(1/S_f) - mean ln p_f) - sum_g mean L_g: the same number (up to rounding)
    # in a few reductions.
    vfe = functools.reduce(operator.add, [_uniform_log(method.guard, p.shape[0]) - p.mean(0) for p in lp])
    if not method.legacy_initial_vfe:
        for x in L:
            vfe = vfe - x.reshape(-1, b).mean(0)
    # A belief that has met the stopping rule keeps its value while the others iterate on (its F then stays the
    # same, so the last F is the one to compare with).
    done: torch.Tensor | None = None
    any_done, sequential = False, method.schedule == "sequential"
    for _ in range(method.num_iter):
        # sequential: each factor reads the newest beliefs; parallel: all read the last sweep's
        reads = qs if sequential else list(qs)
        for f in range(num_factors):
            x = _expected_log_likelihood(reads, f, L, groups)
            new = torch.softmax(x + lp[f], 0)
            qs[f] = torch.where(cast(torch.Tensor, done), qs[f], new) if any_done else new
        known = (num_factors - 1, x) if sequential else None
        if method.tol is None and trace is None:
            continue
        new_vfe = _mean_field_vfe(qs, lp_all, L, groups, method.guard, known=known)
        if trace is not None:
            trace.append(new_vfe.detach().reshape(batch if batch is not None else (b,)))
        if method.tol is None:
            continue
        converged = (vfe - new_vfe).abs() < method.tol
        done = converged if done is None else done | converged
        vfe = new_vfe
        n_done = int(torch.count_nonzero(done))
        if n_done == b:
            break
        any_done = n_done > 0
    return qs


TABLE_LIMIT = 1 << 16  # entries of one precomputed log-likelihood table (IndexLikelihood): 512 KiB of float64


class IndexLikelihood:
    """``ln p(o | s)`` of outcome indices for one unbatched ``TabularModel``, summed per group of modalities that
    read the same factors and laid out with the batch last: what ``fixed_point_last`` reads, in one row lookup
    per group.

    Built once per model and log guard (the Agent keeps one while the model's ``A`` stays the same: ``fresh``).
    For each group (``aif.inference.by_dependencies``' order) the table holds ``guard(A_m)[o_m]`` summed over the
    group's modalities for every joint outcome of the longest leading run of them whose table has at most
    ``TABLE_LIMIT`` entries, ``(*S_deps, prod O_m)``; the group's other modalities get a table each. Their rows
    are added in modality order, the order of ``by_dependencies``' sum, so the result equals
    ``TabularModel.log_likelihood`` followed by ``by_dependencies`` bit for bit (a per-step sum of up to ``M``
    rows becomes one lookup).

    Args:
        model: a ``TabularModel`` with ``batch_shape == ()``.
        guard: the inference method's log guard.
    """

    def __init__(self, model: TabularModel, guard: aif.maths.LogGuard) -> None:
        self.model, self.guard = model, guard
        self._versions = [A_m._version for A_m in model.A]
        self.num_obs = np.array(model.num_obs, dtype=np.uint64)
        by_deps = modality_groups(model.A_dependencies)
        self.groups = [list(deps) for deps in by_deps]
        self.tables: list[list[torch.Tensor]] = []  # per group, its tables (*S_deps, J)
        columns = []  # per table, the weight of each modality in its joint outcome index (M,)
        with torch.no_grad():
            logs = [guarded_log(A_m, guard) for A_m in model.A]  # (O_m, *S_deps)
            for deps, mods in by_deps.items():
                states = math.prod(model.num_states[f] for f in deps)
                lead = 1
                while lead < len(mods) and math.prod(model.num_obs[m] for m in mods[: lead + 1]) * states \
                        <= TABLE_LIMIT:
                    lead += 1
                runs = [mods[:lead], *([m] for m in mods[lead:])]
                tables = []
                for run in runs:
                    k, table = len(run), None
                    for i, m in enumerate(run):  # (O_1, ..., O_k, *S): the rows added in modality order
                        x = logs[m].reshape(*[1] * i, model.num_obs[m], *[1] * (k - 1 - i), *logs[m].shape[1:])
                        table = x if table is None else table + x
                    table = cast(torch.Tensor, table).reshape(-1, *logs[run[0]].shape[1:])  # (J, *S)
                    tables.append(table.movedim(0, -1).contiguous())  # (*S, J): a lookup gives (*S, b)
                    weight = np.zeros(len(model.A), dtype=np.int64)
                    weight[run] = [math.prod(model.num_obs[n] for n in run[i + 1:]) for i in range(k)]
                    columns.append(weight)
                self.tables.append(tables)
        self._weights = np.stack(columns, 1)  # (M, number of tables)

    def fresh(self, model: BeliefModel, guard: aif.maths.LogGuard) -> bool:
        """Whether these tables are ``model``'s under ``guard`` (the same tensors, unchanged in place)."""
        return model is self.model and guard == self.guard and all(
            A_m._version == v for A_m, v in zip(self.model.A, self._versions, strict=True))

    def in_range(self, obs: np.ndarray) -> bool:
        """Whether every entry of the integer array ``obs`` ``(b, M)`` is an outcome of its modality."""
        # a negative index read as unsigned is above every outcome count: one comparison checks both ends
        return not bool((obs.astype(np.uint64, copy=False) >= self.num_obs).any())

    def __call__(self, obs: np.ndarray) -> list:
        """The summed log-likelihood of each group, ``(*S_deps, b)``, for outcome indices ``obs`` int ``(b, M)``
        that ``in_range`` has passed."""
        index = torch.from_numpy(np.ascontiguousarray((obs @ self._weights).T)).to(self.tables[0][0].device)
        out, k = [], 0
        for tables in self.tables:
            L = None
            for table in tables:
                rows = table.index_select(-1, index[k])
                L = rows if L is None else L + rows
                k += 1
            out.append(L)
        return out


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


@functools.lru_cache(maxsize=64)
def _outcome_bounds(num_obs: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The lowest and highest outcome index of each modality, ``(M,)`` each, made once per sizes and device."""
    top = torch.tensor(num_obs, device=device) - 1
    return torch.zeros_like(top), top


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
        if obs.dtype != torch.bool and obs.numel():  # every modality's range in one pass: clamping changes nothing
            low, top = _outcome_bounds(tuple(model.num_obs), obs.device)
            if torch.equal(obs.clamp(low, top), obs):
                return list(obs.long().unbind(-1))
        obs = list(obs.unbind(-1))  # the checks below name the offending modality
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
            lo, hi = torch.aminmax(o) if o.numel() else (0, 0)  # one pass; the offending index only on failure
            if int(lo) < 0 or int(hi) >= n:
                bad = (o < 0) | (o >= n)
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
    return infer_states_checked(model, as_obs(model, obs, ref.device, ref.dtype), prior, method, trace)


def infer_states_checked(model: BeliefModel, obs: list, prior: list, method: aif.FixedPoint | aif.Exact,
              trace: list | None = None) -> list:
    """``infer_states`` on inputs it has checked: ``obs`` as ``as_obs`` returns them, ``prior`` one tensor
    ``(*lead, S_f)`` per factor on the model's device and dtype (the Agent's own prior), ``method`` a
    ``FixedPoint`` or ``Exact``."""
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


def free_energy_terms(model: BeliefModel, obs: Any, qs: list, prior: list | None = None, *,
                      guard: aif.maths.LogGuard = aif.maths.EXACT, soft_obs: str = aif.inference.MIXTURE
                      ) -> aif.FreeEnergy:
    """``aif.free_energy_terms`` in torch, for one belief or a batch: the VFE of beliefs ``qs`` after ``obs``,

        F = neg_entropy + prior_cross_entropy - accuracy
          = sum_f q_f . ln q_f  -  sum_f q_f . ln p(s_f)  -  sum_m E_q[ln p(o_m | s)],

    each term ``(*lead,)`` (``transition_cross_entropy`` is 0: one step), differentiable in the model and the
    beliefs.

    Args:
        model: a ``TabularModel`` (or any ``BeliefModel``).
        obs: as ``infer_states``.
        qs: beliefs, one ``(*lead, S_f)`` per factor.
        prior: the prior the beliefs were inferred from, one ``(*lead, S_f)`` per factor; ``model.prior()`` when
            absent.
        guard, soft_obs: the log guard and the soft-observation rule (an inference method's ``guard`` and
            ``soft_obs``); with the defaults ``.vfe`` is the exact VFE.
    """
    aif.maths.check_guard(guard, "guard")
    ref = model.prior()[0]
    qs = checks.beliefs(model, qs, "qs")
    prior = model.prior() if prior is None else checks.beliefs(model, prior)
    obs = as_obs(model, obs, ref.device, ref.dtype)
    logL = (model.log_likelihood(obs, guard) if soft_obs == aif.inference.MIXTURE
            else model.log_likelihood(obs, guard, soft_obs=soft_obs))  # type: ignore[call-arg]
    neg_entropy = cast(torch.Tensor, sum(xlogx(q, guard).sum(-1) for q in qs))
    prior_ce = -sum((q * guarded_log(p, guard)).sum(-1) for q, p in zip(qs, prior, strict=True))
    accuracy = sum(_expected(L, deps, qs) for L, deps in zip(logL, model.A_dependencies, strict=True))
    return aif.FreeEnergy(neg_entropy, prior_ce, torch.zeros_like(neg_entropy), accuracy)


def _expected(L: torch.Tensor, deps: list, qs: list) -> torch.Tensor:
    """E_q[L] over the factors ``deps``: ``L`` ``(*lead, *S_deps)``, ``qs[f]`` ``(*lead, S_f)`` -> ``(*lead,)``."""
    axes = "abcdefghijklmnopqrstuvwxyz"[: len(deps)]
    spec = "..." + axes + "".join(",..." + a for a in axes) + "->..."
    return torch.einsum(spec, L, *(qs[f] for f in deps))
