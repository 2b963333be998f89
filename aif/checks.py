"""Every check of ``aif``'s inputs, run once at the public boundary; internals trust what passed.

Error classes (the same in ``aif_deep``): beliefs and priors ``BeliefError``; observations
``ObservationError``; policies and actions ``PolicyError``; model arrays ``ModelError``; scalars
``ParameterError``. Messages name the argument, the index and the value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import AifError, BeliefError, ModelError, ObservationError, ParameterError, PolicyError

if TYPE_CHECKING:
    from .model import GenerativeModel

PROB_TOL = 1e-6  # how far a probability vector's sum may be from 1
COLUMN_TOL = 1e-6  # how far a column of A, B (and D, E) may sum away from 1


# ----------------------------------------------------------------------------------------------------------
# The model

def _finite_nonneg(x, label):
    bad = ~np.isfinite(x)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ModelError(f"{label} has a non-finite entry {x[idx]} at index {idx}")
    neg = x < 0
    if neg.any():
        idx = tuple(int(i) for i in np.argwhere(neg)[0])
        raise ModelError(f"{label} has a negative entry {x[idx]} at index {idx}")


def _columns(x, label, what="state"):
    sums = x.sum(axis=0)
    off = np.abs(sums - 1.0) > COLUMN_TOL
    if off.any():
        idx = tuple(int(i) for i in np.argwhere(off)[0])
        raise ModelError(f"columns of {label} sum to {sums[idx]:.6g} at {what} {idx} "
                         f"(off by {sums[idx] - 1:+.3g}; they must sum to 1 within {COLUMN_TOL})")


def check_dirichlet(p: np.ndarray, label: str) -> None:
    """Dirichlet counts: finite and positive (``ModelError``)."""
    _finite_nonneg(p, label)
    nonpos = p <= 0
    if nonpos.any():
        idx = tuple(int(i) for i in np.argwhere(nonpos)[0])
        raise ModelError(f"Dirichlet counts {label} must be positive; found {p[idx]} at index {idx}")


def _shape(x, expected, label, explain):
    if x.shape != tuple(expected):
        raise ModelError(f"{label} has shape {x.shape}, expected {tuple(expected)} ({explain})")


def check_model(model: GenerativeModel) -> GenerativeModel:
    """Check a model's shapes, values and dependencies; return it unchanged or raise ``ModelError``.

    Checks: every array finite and non-negative; columns of A and B (and D, E) sum to one within 1e-6;
    A[m] and B[f] shapes match ``num_states`` through the dependencies; C, D, pA, pB, pD shapes match;
    Dirichlet counts positive.
    """
    S, O = model.num_states, model.num_obs
    for f, B_f in enumerate(model.B):
        deps = model.B_dependencies[f]
        if B_f.ndim != len(deps) + 2:
            raise ModelError(f"B[{f}] has {B_f.ndim} axes, expected {len(deps) + 2}: "
                             f"(next state, one axis per factor in B_dependencies[{f}] = {deps}, control)")
        _shape(B_f, (S[f], *[S[g] for g in deps], B_f.shape[-1]), f"B[{f}]",
                     f"next state, states of factors {deps}, controls")
        _finite_nonneg(B_f, f"B[{f}]")
        _columns(B_f, f"B[{f}]", "(previous state..., control)")
    for m, A_m in enumerate(model.A):
        deps = model.A_dependencies[m]
        _shape(A_m, (A_m.shape[0], *[S[f] for f in deps]), f"A[{m}]",
                     f"outcomes, then states of factors {deps}")
        _finite_nonneg(A_m, f"A[{m}]")
        _columns(A_m, f"A[{m}]")
    if len(model.C) != len(model.A):
        raise ModelError(f"C has {len(model.C)} arrays but A has {len(model.A)} modalities")
    for m, C_m in enumerate(model.C):
        if C_m.ndim not in (1, 2) or C_m.shape[0] != O[m]:
            raise ModelError(f"C[{m}] has shape {C_m.shape}, expected ({O[m]},) or ({O[m]}, T)")
        if not np.isfinite(C_m).all():
            idx = tuple(int(i) for i in np.argwhere(~np.isfinite(C_m))[0])
            raise ModelError(f"C[{m}] has a non-finite entry {C_m[idx]} at index {idx}")
    if len(model.D) != len(model.B):
        raise ModelError(f"D has {len(model.D)} arrays but B has {len(model.B)} factors")
    for f, D_f in enumerate(model.D):
        _shape(D_f, (S[f],), f"D[{f}]", "states of the factor")
        _finite_nonneg(D_f, f"D[{f}]")
        _columns(D_f, f"D[{f}]", "index")
    if model.E is not None:
        if model.E.ndim != 1:
            raise ModelError(f"E has shape {model.E.shape}, expected (num_policies,)")
        _finite_nonneg(model.E, "E")
        if abs(model.E.sum() - 1.0) > COLUMN_TOL:
            raise ModelError(f"E sums to {model.E.sum():.6g}; it must sum to 1 within {COLUMN_TOL}")
    for name, ref in (("pA", model.A), ("pB", model.B), ("pD", model.D)):
        counts = getattr(model, name)
        if counts is None:
            continue
        if len(counts) != len(ref):
            raise ModelError(f"{name} has {len(counts)} arrays but {name[1:]} has {len(ref)}")
        for i, (p, x) in enumerate(zip(counts, ref, strict=True)):
            _shape(p, x.shape, f"{name}[{i}]", f"the shape of {name[1:]}[{i}]")
            check_dirichlet(p, f"{name}[{i}]")
    return model


def check_dependencies(deps: Any, n: int, num_factors: int, name: str, default: Any) -> list:
    """``{name}_dependencies``: ``n`` lists of distinct factor indices; ``default(i)`` for each when ``None``."""
    if deps is None:
        return [default(i) for i in range(n)]
    if len(deps) != n:
        raise ModelError(f"{name}_dependencies has {len(deps)} entries but {name} has {n} arrays")
    out = []
    for i, d in enumerate(deps):
        d = [int(f) for f in d]
        bad = [f for f in d if not 0 <= f < num_factors]
        if bad:
            raise ModelError(f"{name}_dependencies[{i}] names factor {bad[0]}, but the model has "
                             f"{num_factors} factors (0 to {num_factors - 1})")
        if len(set(d)) != len(d):
            raise ModelError(f"{name}_dependencies[{i}] = {d} repeats a factor")
        out.append(d)
    return out


def check_rates(lr: Any, forgetting: Any) -> None:
    """A learning rate >= 0 and a forgetting factor in (0, 1] (``ParameterError``)."""
    if not (np.ndim(lr) == 0 and np.isfinite(lr) and lr >= 0):
        raise ParameterError(f"lr (the learning rate) must be a finite number >= 0, got {lr!r}")
    if not (np.ndim(forgetting) == 0 and 0 < forgetting <= 1):
        raise ParameterError(f"forgetting must be a number in (0, 1] (1 = no forgetting), got {forgetting!r}")


def check_count_list(counts: Any, name: str) -> list:
    """A list of Dirichlet count arrays, each positive and finite (``ModelError``), as floats."""
    if isinstance(counts, np.ndarray):
        raise ModelError(f"{name} must be a list of arrays, got a single array; wrap it as [{name}]")
    out = []
    for i, p in enumerate(counts):
        p = np.asarray(p, dtype=float)
        bad = ~np.isfinite(p) | (p <= 0)
        if bad.any():
            idx = tuple(int(k) for k in np.argwhere(bad)[0])
            raise ModelError(f"Dirichlet counts {name}[{i}] must be positive and finite; found {p[idx]} "
                             f"at index {idx}")
        out.append(p)
    return out


# ----------------------------------------------------------------------------------------------------------
# Observations and beliefs


def check_obs(model: GenerativeModel, obs: Any) -> list:
    """Validate an observation: one outcome index or probability vector per modality.

    Returns a list with, per modality, an ``int`` or a float vector of shape ``(num_obs[m],)``.
    """
    if isinstance(obs, (int, np.integer)) or (isinstance(obs, np.ndarray) and obs.ndim == 0):
        raise ObservationError(f"obs must be a sequence with one entry per modality ({model.num_modalities}), "
                               f"got the single value {obs!r}; write [{obs!r}]")
    try:
        entries = list(obs)
    except TypeError:
        raise ObservationError(f"obs must be a sequence with one entry per modality, "
                               f"got {type(obs).__name__}") from None
    if len(entries) != model.num_modalities:
        raise ObservationError(f"obs has {len(entries)} entries but the model has {model.num_modalities} "
                               f"modalities (a probability vector for one modality is written [p])")
    return [check_outcome(o, model.num_obs[m], m) for m, o in enumerate(entries)]


def check_outcome(o: Any, n: int, m: int) -> int | np.ndarray:
    """One modality's observation: an outcome index (returned as ``int``) or a probability vector ``(n,)``."""
    arr = np.asarray(o)
    if arr.ndim == 0:
        if not np.issubdtype(arr.dtype, np.integer) or isinstance(o, (bool, np.bool_)):
            raise ObservationError(f"obs[{m}] = {o!r} is not an outcome index (an integer) or a vector")
        if not 0 <= int(arr) < n:
            raise ObservationError(f"observation {int(arr)} is out of range for modality {m} with {n} "
                                   f"outcomes (0 to {n - 1})")
        return int(arr)
    if arr.shape != (n,):
        raise ObservationError(f"obs[{m}] has shape {arr.shape}, expected ({n},) for modality {m}")
    return check_vector(arr, n, f"obs[{m}]")


def check_vector(p: Any, n: int, label: str) -> np.ndarray:
    """A probability vector of shape ``(n,)`` (finite, non-negative, summing to 1 within 1e-6), as floats."""
    p = np.asarray(p, dtype=float)
    if p.shape != (n,):
        raise ObservationError(f"{label} has shape {p.shape}, expected ({n},)")
    check_probability(p, label, ObservationError)
    return p


def check_beliefs(model: GenerativeModel, qs: Any, name: str = "prior") -> list:
    """Validate beliefs over states: one probability vector per factor."""
    if qs is None or isinstance(qs, np.ndarray) and qs.dtype != object:
        raise BeliefError(f"{name} must be a list with one probability vector per factor "
                               f"({model.num_factors}), got {type(qs).__name__}")
    qs = [np.asarray(q, dtype=float) for q in qs]
    if len(qs) != model.num_factors:
        raise BeliefError(f"{name} has {len(qs)} vectors but the model has {model.num_factors} factors")
    for f, q in enumerate(qs):
        if q.shape != (model.num_states[f],):
            raise BeliefError(f"{name}[{f}] has shape {q.shape}, expected ({model.num_states[f]},)")
        check_probability(q, f"{name}[{f}]", BeliefError)
    return qs


def check_probability(p: np.ndarray, label: str, error: type[AifError]) -> None:
    """Finite, non-negative, summing to 1 within ``PROB_TOL``; else ``error`` naming the entry or the sum."""
    if not np.isfinite(p).all() or (p < 0).any():
        i = int(np.argwhere(~np.isfinite(p) | (p < 0))[0, 0])
        raise error(f"{label} is not a probability vector: entry {i} is {p[i]}")
    if abs(p.sum() - 1.0) > PROB_TOL:
        raise error(f"{label} is not a probability vector: it sums to {p.sum():.6g}, not 1")


def check_prior(model: GenerativeModel, prior: Any, num_policies: int) -> list:
    """A window's prior: per factor ``(S_f,)`` or one per policy ``(P, S_f)``, each a distribution."""
    if len(prior) != model.num_factors:
        raise BeliefError(f"prior has {len(prior)} arrays but the model has {model.num_factors} factors")
    out = []
    for f, p in enumerate(prior):
        p = np.asarray(p, dtype=float)
        s = model.num_states[f]
        if p.shape not in ((s,), (num_policies, s)):
            raise BeliefError(f"prior[{f}] has shape {p.shape}, expected ({s},) or ({num_policies}, {s}) "
                                   f"(one prior per policy)")
        if not np.isfinite(p).all() or (p < 0).any():
            raise BeliefError(f"prior[{f}] has a negative or non-finite entry")
        sums = p.sum(axis=-1)
        if np.any(np.abs(sums - 1.0) > PROB_TOL):
            raise BeliefError(f"prior[{f}] is not a probability vector: it sums to "
                              f"{np.ravel(sums)[np.argmax(np.abs(np.ravel(sums) - 1))]:.6g}")
        out.append(p)
    return out


def check_belief_list(qs: Any, name: str) -> list:
    """A list of belief vectors (each checked where its size is known), as floats."""
    if isinstance(qs, np.ndarray) and qs.dtype != object:
        raise BeliefError(f"{name} must be a list with one probability vector per factor, got a single "
                               f"array; wrap it as [{name}]")
    return [np.asarray(q, dtype=float) for q in qs]


# ----------------------------------------------------------------------------------------------------------
# Policies, actions and scalars


def check_policies(model: GenerativeModel, policies: Any) -> np.ndarray:
    """Validate a policy array against the model: shape ``(P, H, num_factors)``, actions in range."""
    policies = np.asarray(policies)
    if policies.ndim != 3 or policies.shape[2] != model.num_factors or policies.shape[0] == 0:
        raise PolicyError(f"policies must have shape (num_policies, horizon, {model.num_factors}), "
                          f"got {policies.shape}")
    if not np.issubdtype(policies.dtype, np.integer):
        raise PolicyError(f"policies must hold integer actions, got dtype {policies.dtype}")
    bad = (policies < 0) | (policies >= np.asarray(model.num_controls))
    if bad.any():
        p, t, f = (int(i) for i in np.argwhere(bad)[0])
        u = model.num_controls[f]
        raise PolicyError(f"policy {p} takes action {policies[p, t, f]} at step {t} for factor {f}, which has "
                          f"{u} controls (0 to {u - 1})")
    return policies


def check_actions(model: GenerativeModel, actions: Any, past_len: int) -> np.ndarray:
    """``actions_window``: int ``(past_len - 1, num_factors)``, each action in range (``PolicyError``)."""
    nf = model.num_factors
    if actions is None:
        actions = np.zeros((0, nf), dtype=int)
    actions = np.asarray(actions)
    if actions.size == 0:
        actions = actions.reshape(0, nf)
    if actions.shape != (past_len - 1, nf):
        raise PolicyError(f"actions_window has shape {actions.shape}, expected ({past_len - 1}, {nf}): one "
                          f"action per factor between each of the {past_len} observations")
    if actions.size and not np.issubdtype(actions.dtype, np.integer):
        raise PolicyError(f"actions_window must hold integer actions, got dtype {actions.dtype}")
    for f, u in enumerate(model.num_controls):
        bad = (actions[:, f] < 0) | (actions[:, f] >= u)
        if bad.any():
            t = int(np.argwhere(bad)[0, 0])
            raise PolicyError(f"actions_window[{t}, {f}] = {actions[t, f]} is out of range for factor {f} "
                              f"with {u} controls (0 to {u - 1})")
    return actions.astype(int)


def check_positive(x: Any, name: str) -> float:
    """A positive finite number (``ParameterError``)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a positive number, got {x!r}") from None
    if not (np.isfinite(x) and x > 0):
        raise ParameterError(f"{name} must be positive and finite, got {x}")
    return x


__all__ = ["PROB_TOL", "COLUMN_TOL", "check_model", "check_dirichlet", "check_dependencies", "check_count_list",
           "check_rates", "check_belief_list", "check_obs", "check_outcome", "check_vector", "check_probability",
           "check_beliefs", "check_prior", "check_policies", "check_actions", "check_positive"]
