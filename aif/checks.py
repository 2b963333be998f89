"""Every check of ``aif``'s inputs, run once at the public boundary; internals trust what passed.

Error classes (the same in ``aif_deep``): beliefs and priors ``BeliefError``; observations
``ObservationError``; policies and actions ``PolicyError``; model arrays ``ModelError``; scalars
``ParameterError``. Messages name the argument, the index and the value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import AifError, BeliefError, ModelError, ObservationError, ParameterError, PolicyError, StrategyError

if TYPE_CHECKING:
    from .model import GenerativeModel

PROB_TOL = 1e-6  # how far a probability vector's sum may be from 1
COLUMN_TOL = 1e-6  # how far a column of A, B (and D, E) may sum away from 1


def first_index(mask: np.ndarray) -> tuple[int, ...]:
    """The index of the first true entry of ``mask``."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


# ----------------------------------------------------------------------------------------------------------
# The model and other arrays of distributions

def as_numbers(x: Any, label: str, error: type[AifError], dtype: Any = float) -> np.ndarray:
    """``x`` as a NumPy array of ``dtype``; a string, ``None``, a ragged list or anything else that is not numbers
    is ``error`` naming ``label`` (never a raw ``ValueError`` or ``TypeError`` from NumPy)."""
    try:
        if x is None or isinstance(x, (str, bytes)):
            raise TypeError
        out = np.asarray(x, dtype=dtype)
        if out.dtype == object:
            raise TypeError
        return out
    except (TypeError, ValueError, OverflowError):
        raise error(f"{label} must be numbers, got {str(x)[:200]}") from None


def check_sequence(x: Any, label: str, error: type[AifError]) -> list:
    """``x`` as a list (one entry per factor or modality): a list, tuple or object array, not a number or string."""
    if not isinstance(x, (list, tuple)) and not (isinstance(x, np.ndarray) and x.dtype == object):
        raise error(f"{label} must be a list with one entry per factor or modality, got {type(x).__name__}")
    return list(x)


def check_finite(x: np.ndarray, label: str, nonneg: bool = True, error: type[AifError] = ModelError) -> None:
    """Every entry finite (and, with ``nonneg``, >= 0), else ``error`` naming the first bad entry."""
    for bad, what in ((~np.isfinite(x), "non-finite"), ((x < 0) if nonneg else None, "negative")):
        if bad is not None and bad.any():
            raise error(f"{label} has a {what} entry {x[first_index(bad)]} at index {first_index(bad)}")


def _columns(x, label, what="state"):
    sums = x.sum(axis=0)
    off = np.abs(sums - 1.0) > COLUMN_TOL
    if off.any():
        idx = first_index(off)
        raise ModelError(f"columns of {label} sum to {sums[idx]:.6g} at {what} {idx} "
                         f"(off by {sums[idx] - 1:+.3g}; they must sum to 1 within {COLUMN_TOL})")


def check_dirichlet(p: np.ndarray, label: str) -> None:
    """Dirichlet counts (columns along axis 0): finite and non-negative, each column with a positive count
    (``ModelError``). A zero count is a structural zero (see ``aif.learning``)."""
    check_finite(p, label)
    sums = np.atleast_1d(p).sum(axis=0)
    bad = (sums == 0) | (sums == np.inf)  # a column of zeros has no mean; an overflowing one no finite Beta
    if np.any(bad):
        idx = first_index(bad)
        where = f" in the column at index {idx}" if p.ndim > 1 else ""
        raise ModelError(f"Dirichlet counts {label} sum to {sums[idx]}{where}: a Dirichlet needs a positive, "
                         "finite total")


def _shape(x, expected, label, explain):
    if x.shape != tuple(expected):
        raise ModelError(f"{label} has shape {x.shape}, expected {tuple(expected)} ({explain})")


def check_model(model: GenerativeModel) -> GenerativeModel:
    """Check a model's shapes, values and dependencies; return it unchanged or raise ``ModelError``.

    Checks: every array finite and non-negative; columns of A and B (and D, E) sum to one within 1e-6;
    A[m] and B[f] shapes match ``num_states`` through the dependencies; C, D, pA, pB, pD shapes match;
    Dirichlet counts non-negative with a positive count in every column.
    """
    S, O = model.num_states, model.num_obs
    for f, B_f in enumerate(model.B):
        deps = model.B_dependencies[f]
        if B_f.ndim != len(deps) + 2:
            raise ModelError(f"B[{f}] has {B_f.ndim} axes, expected {len(deps) + 2}: "
                             f"(next state, one axis per factor in B_dependencies[{f}] = {deps}, control)")
        _shape(B_f, (S[f], *[S[g] for g in deps], B_f.shape[-1]), f"B[{f}]",
               f"next state, states of factors {deps}, controls")
        check_finite(B_f, f"B[{f}]")
        _columns(B_f, f"B[{f}]", "(previous state..., control)")
    for m, A_m in enumerate(model.A):
        deps = model.A_dependencies[m]
        _shape(A_m, (A_m.shape[0], *[S[f] for f in deps]), f"A[{m}]", f"outcomes, then states of factors {deps}")
        check_finite(A_m, f"A[{m}]")
        _columns(A_m, f"A[{m}]")
    if len(model.C) != len(model.A):
        raise ModelError(f"C has {len(model.C)} arrays but A has {len(model.A)} modalities")
    for m, C_m in enumerate(model.C):
        if C_m.ndim not in (1, 2) or C_m.shape[0] != O[m]:
            raise ModelError(f"C[{m}] has shape {C_m.shape}, expected ({O[m]},) or ({O[m]}, T)")
        check_finite(C_m, f"C[{m}]", nonneg=False)
    if len(model.D) != len(model.B):
        raise ModelError(f"D has {len(model.D)} arrays but B has {len(model.B)} factors")
    for f, D_f in enumerate(model.D):
        _shape(D_f, (S[f],), f"D[{f}]", "states of the factor")
        check_finite(D_f, f"D[{f}]")
        _columns(D_f, f"D[{f}]", "index")
    if model.E is not None:
        if model.E.ndim != 1:
            raise ModelError(f"E has shape {model.E.shape}, expected (num_policies,)")
        check_finite(model.E, "E")
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
    deps = check_index_lists(deps, f"{name}_dependencies")
    if len(deps) != n:
        raise ModelError(f"{name}_dependencies has {len(deps)} entries but {name} has {n} arrays")
    out = []
    for i, d in enumerate(deps):
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
    number = (int, float, np.integer, np.floating)
    if not (isinstance(lr, number) and not isinstance(lr, bool) and np.isfinite(lr) and lr >= 0):
        raise ParameterError(f"lr (the learning rate) must be a finite number >= 0, got {lr!r}")
    if not (isinstance(forgetting, number) and not isinstance(forgetting, bool) and 0 < forgetting <= 1):
        raise ParameterError(f"forgetting must be a number in (0, 1] (1 = no forgetting), got {forgetting!r}")


def check_array_list(arrays: Any, name: str, error: type[AifError] = ModelError) -> list:
    """A list of numeric arrays, one per modality or factor (not one array), as float copies (``error``)."""
    if isinstance(arrays, np.ndarray) and arrays.dtype != object:
        raise error(f"{name} must be a list of arrays, one per modality or factor, got a single array; "
                    f"wrap it as [{name}]")
    arrays = check_sequence(arrays, name, error)
    out = []
    for i, a in enumerate(arrays):
        try:
            out.append(np.array(a, dtype=float))
        except (TypeError, ValueError) as err:
            raise error(f"{name}[{i}] is not a numeric array: {err}") from None
    return out


def check_count_list(counts: Any, name: str) -> list:
    """A list of Dirichlet count arrays, each passing ``check_dirichlet`` (``ModelError``), as floats."""
    out = check_array_list(counts, name)
    for i, p in enumerate(out):
        check_dirichlet(p, f"{name}[{i}]")
    return out


def check_transitions(B: Any) -> np.ndarray:
    """One transition array ``(S, S, U)`` of distributions over the next state (``ModelError``), as floats."""
    B = np.asarray(B, dtype=float)
    if B.ndim != 3 or B.shape[0] != B.shape[1]:
        raise ModelError(f"B has shape {B.shape}, expected (S, S, U): next state, state, action")
    check_finite(B, "B")
    _columns(B, "B", "(state, action)")
    return B


# ----------------------------------------------------------------------------------------------------------
# Observations and beliefs


def check_obs(model: GenerativeModel, obs: Any) -> list:
    """Validate an observation: one outcome index or probability vector per modality.

    Returns a list with, per modality, an ``int`` or a float vector of shape ``(num_obs[m],)``.
    """
    return [check_outcome(o, model.num_obs[m], m) for m, o in enumerate(check_obs_list(obs, model.num_modalities))]


def check_obs_list(obs: Any, num_modalities: int, owner: str = "the model") -> list:
    """``obs`` as a list with one entry per modality (``ObservationError`` for a single value or another length)."""
    if isinstance(obs, (int, np.integer)) or (isinstance(obs, np.ndarray) and obs.ndim == 0):
        raise ObservationError(f"obs must be a sequence with one entry per modality ({num_modalities}), "
                               f"got the single value {obs!r}; write [{obs!r}]")
    try:
        entries = list(obs)
    except TypeError:
        raise ObservationError(f"obs must be a sequence with one entry per modality, "
                               f"got {type(obs).__name__}") from None
    if len(entries) != num_modalities:
        raise ObservationError(f"obs has {len(entries)} entries but {owner} has {num_modalities} "
                               f"modalities (a probability vector for one modality is written [p])")
    return entries


def check_obs_window(model: GenerativeModel, obs_window: Any) -> list:
    """``W >= 1`` observations, oldest first, each checked by ``check_obs`` (the message names the step)."""
    try:
        steps = list(obs_window)
    except TypeError:
        raise ObservationError("obs_window must be a list of observations, one per past step") from None
    if not steps:
        raise ObservationError("obs_window is empty: it needs at least the present observation")
    out = []
    for t, obs in enumerate(steps):
        try:
            out.append(check_obs(model, obs))
        except ObservationError as err:
            raise ObservationError(f"obs_window[{t}]: {err}") from None
    return out


def check_outcome(o: Any, n: int, m: int) -> int | np.ndarray:
    """One modality's observation: an outcome index (returned as ``int``) or a probability vector ``(n,)``."""
    if isinstance(o, (int, np.integer)) and not isinstance(o, (bool, np.bool_)) and 0 <= o < n:
        return int(o)  # the common case, without building an array
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


def check_vector(p: Any, n: int, label: str, error: type[AifError] = ObservationError) -> np.ndarray:
    """A probability vector of shape ``(n,)`` (finite, non-negative, summing to 1 within 1e-6), as floats."""
    p = as_numbers(p, label, error)
    if p.shape != (n,):
        raise error(f"{label} has shape {p.shape}, expected ({n},)")
    check_probability(p, label, error)
    return p


def check_beliefs(model: GenerativeModel, qs: Any, name: str = "prior") -> list:
    """Validate beliefs over states: one probability vector per factor."""
    if not isinstance(qs, (list, tuple)) and not (isinstance(qs, np.ndarray) and qs.dtype == object):
        raise BeliefError(f"{name} must be a list with one probability vector per factor "
                          f"({model.num_factors}), got {type(qs).__name__}")
    qs = [as_numbers(q, f"{name}[{f}]", BeliefError) for f, q in enumerate(qs)]
    if len(qs) != model.num_factors:
        raise BeliefError(f"{name} has {len(qs)} vectors but the model has {model.num_factors} factors")
    return [check_vector(q, model.num_states[f], f"{name}[{f}]", BeliefError) for f, q in enumerate(qs)]


def check_probability(p: np.ndarray, label: str, error: type[AifError]) -> None:
    """Finite, non-negative, summing to 1 within ``PROB_TOL`` along the last axis; else ``error`` naming the
    entry or the sum (and, for a batch of vectors ``(..., n)``, the batch index after ``label``)."""
    bad = ~np.isfinite(p) | (p < 0)
    if bad.any():
        i = first_index(bad)
        raise error(f"{label}{_batch_index(i[:-1])} is not a probability vector: entry {i[-1]} is {p[i]}")
    sums = p.sum(axis=-1)
    off = np.abs(sums - 1.0) > PROB_TOL
    if off.any():
        i = first_index(off)
        raise error(f"{label}{_batch_index(i)} is not a probability vector: it sums to {sums[i]:.6g}, not 1")


def _batch_index(i: tuple) -> str:
    return f"[{', '.join(map(str, i))}]" if i else ""


def check_prior(model: GenerativeModel, prior: Any, num_policies: int) -> list:
    """A window's prior: per factor ``(S_f,)`` or one per policy ``(P, S_f)``, each a distribution."""
    prior = check_sequence(prior, "prior", BeliefError)
    if len(prior) != model.num_factors:
        raise BeliefError(f"prior has {len(prior)} arrays but the model has {model.num_factors} factors")
    out = [as_numbers(p, f"prior[{f}]", BeliefError) for f, p in enumerate(prior)]
    for f, (p, s) in enumerate(zip(out, model.num_states, strict=True)):
        if p.shape not in ((s,), (num_policies, s)):
            raise BeliefError(f"prior[{f}] has shape {p.shape}, expected ({s},) or ({num_policies}, {s}) "
                              f"(one prior per policy)")
        check_probability(p, f"prior[{f}]", BeliefError)
    return out


def check_future(model: GenerativeModel, qs_future: Any, policies: Any) -> tuple[list, np.ndarray]:
    """Each policy's beliefs from the present on, ``qs_future[f]`` ``(P, K, S_f)`` (``BeliefError``), and the
    ``(P, K - 1, num_factors)`` policies between those steps (``PolicyError``; horizon 0 allowed here)."""
    qs_future = check_sequence(qs_future, "qs_future", BeliefError)
    if len(qs_future) != model.num_factors:
        raise BeliefError(f"qs_future has {len(qs_future)} arrays but the model has {model.num_factors} factors")
    qs_future = [as_numbers(q, f"qs_future[{f}]", BeliefError) for f, q in enumerate(qs_future)]
    shape = qs_future[0].shape[:2] if qs_future[0].ndim == 3 else None
    for f, q in enumerate(qs_future):
        s = model.num_states[f]
        if q.ndim != 3 or q.shape[2] != s or q.shape[:2] != shape or q.shape[1] < 1:
            raise BeliefError(f"qs_future[{f}] has shape {q.shape}, expected (num_policies, steps >= 1, {s}) "
                              f"with the same policies and steps for every factor")
        check_probability(q, f"qs_future[{f}]", BeliefError)
    policies = as_numbers(policies, "policies", PolicyError, None)
    P, K = shape  # type: ignore[misc]
    if policies.shape != (P, K - 1, model.num_factors):
        raise PolicyError(f"policies has shape {policies.shape} but qs_future covers {P} policies and {K} steps: "
                          f"expected ({P}, {K - 1}, {model.num_factors})")
    return qs_future, check_policies(model, policies) if K > 1 else policies.astype(int)


# ----------------------------------------------------------------------------------------------------------
# Policies, actions and scalars


def check_policies(model: GenerativeModel, policies: Any, min_horizon: int = 1) -> np.ndarray:
    """Validate a policy array against the model: shape ``(P, H, num_factors)`` with ``H >= min_horizon``
    (inference over a window takes policies of horizon 0), actions in range."""
    policies = as_numbers(policies, "policies", PolicyError, None)
    if policies.ndim != 3 or policies.shape[2] != model.num_factors or policies.shape[0] == 0:
        raise PolicyError(f"policies must have shape (num_policies, horizon, {model.num_factors}), "
                          f"got {policies.shape}")
    if policies.shape[1] < min_horizon:
        raise PolicyError(f"policies have horizon 0 (shape {policies.shape}); a policy takes at least one step")
    if not np.issubdtype(policies.dtype, np.integer):
        raise PolicyError(f"policies must hold integer actions, got dtype {policies.dtype}")
    bad = (policies < 0) | (policies >= np.asarray(model.num_controls))
    if bad.any():
        p, t, f = first_index(bad)
        u = model.num_controls[f]
        raise PolicyError(f"policy {p} takes action {policies[p, t, f]} at step {t} for factor {f}, which has "
                          f"{u} controls (0 to {u - 1})")
    return policies


def check_action(model: GenerativeModel, action: Any) -> np.ndarray:
    """One action: int ``(num_factors,)``, each control in range (``PolicyError``)."""
    action = np.asarray(action)
    if action.shape != (model.num_factors,):
        raise PolicyError(f"action has shape {action.shape}, expected ({model.num_factors},): one per factor")
    if not np.issubdtype(action.dtype, np.integer):
        raise PolicyError(f"action must hold integers, got dtype {action.dtype}")
    for f, (u_f, n) in enumerate(zip(action, model.num_controls, strict=True)):
        if not 0 <= u_f < n:
            raise PolicyError(f"action {u_f} is out of range for factor {f} with {n} controls (0 to {n - 1})")
    return action.astype(int)


def check_actions(model: GenerativeModel, actions: Any, past_len: int) -> np.ndarray:
    """``actions_window``: int ``(past_len - 1, num_factors)``, each action in range (``PolicyError``). ``None``
    stands for the only actions there are when no factor has a choice (zeros), and is refused otherwise."""
    nf = model.num_factors
    if actions is None and past_len > 1:
        if any(u > 1 for u in model.num_controls):
            raise PolicyError(f"actions_window is missing: {past_len} observations need the actions between them, "
                              f"shape ({past_len - 1}, {nf}); it may be omitted only when no factor has a choice "
                              f"(num_controls = {model.num_controls})")
        actions = np.zeros((past_len - 1, nf), dtype=int)
    actions = np.zeros((0, nf), dtype=int) if actions is None else as_numbers(actions, "actions_window", PolicyError,
                                                                             None)
    if actions.size == 0:
        actions = actions.reshape(0, nf)
    if actions.shape != (past_len - 1, nf):
        raise PolicyError(f"actions_window has shape {actions.shape}, expected ({past_len - 1}, {nf}): one "
                          f"action per factor between each of the {past_len} observations")
    if actions.size and not np.issubdtype(actions.dtype, np.integer):
        raise PolicyError(f"actions_window must hold integer actions, got dtype {actions.dtype}")
    bad = (actions < 0) | (actions >= np.asarray(model.num_controls))
    if bad.any():
        t, f = first_index(bad)
        u = model.num_controls[f]
        raise PolicyError(f"actions_window[{t}, {f}] = {actions[t, f]} is out of range for factor {f} "
                          f"with {u} controls (0 to {u - 1})")
    return actions.astype(int)


def check_selection(q_pi: Any, policies: Any, mode: str, sampling: str) -> tuple[np.ndarray, np.ndarray]:
    """An action selection's settings and its ``q_pi`` ``(P,)`` (a distribution) over ``policies`` ``(P, H, F)``."""
    check_choice(mode, "mode", ("deterministic", "stochastic"))
    check_choice(sampling, "sampling", ("full", "marginal"))
    q_pi = check_policy_weights(q_pi, policies)
    check_probability(q_pi, "q_pi", ParameterError)
    return q_pi, np.asarray(policies)


def check_policy_weights(q_pi: Any, policies: Any) -> np.ndarray:
    """``q_pi`` ``(P,)`` as floats, one weight per policy of ``policies`` ``(P, H, F)`` (``PolicyError``)."""
    q_pi, policies = as_numbers(q_pi, "q_pi", PolicyError), as_numbers(policies, "policies", PolicyError, None)
    if policies.ndim != 3 or q_pi.shape != policies.shape[:1]:
        raise PolicyError(f"q_pi has shape {q_pi.shape} but policies has shape {policies.shape}; "
                          "expected (P,) and (P, horizon, num_factors)")
    return q_pi


def check_log_habits(E: Any, num_policies: int) -> np.ndarray | float:
    """``ln E`` for a prior over ``num_policies`` policies (0 when ``E`` is ``None``; ``-inf`` rules a policy
    out); ``ParameterError`` for a wrong shape, a negative or non-finite entry or a sum away from 1."""
    if E is None:
        return 0.0
    E = as_numbers(E, "E", ParameterError)
    if E.shape != (num_policies,):
        raise ParameterError(f"E has shape {E.shape} but there are {num_policies} policies")
    check_finite(E, "E", error=ParameterError)
    if abs(E.sum() - 1.0) > COLUMN_TOL:
        raise ParameterError(f"E sums to {E.sum():.6g}, not 1 (it is a prior over policies)")
    with np.errstate(divide="ignore"):
        return np.log(E)


def check_positive(x: Any, name: str, zero: bool = False) -> float:
    """A positive (with ``zero``, non-negative) finite number, not a string or a bool (``ParameterError``)."""
    sign = "non-negative" if zero else "positive"
    try:
        if isinstance(x, (str, bytes, bool, np.bool_)):
            raise TypeError
        x = float(x)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a {sign} number, got {x!r}") from None
    if not (np.isfinite(x) and (x > 0 or zero and x == 0)):
        raise ParameterError(f"{name} must be {sign} and finite, got {x}")
    return x


def check_integer(x: Any, name: str, optional: bool = False, error: type[AifError] = ParameterError) -> Any:
    """A positive integer (an ``int``, or ``None`` when ``optional``), else ``error``."""
    if x is None and optional:
        return None
    if not (isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 1):
        raise error(f"{name} must be {'None or ' if optional else ''}a positive integer, got {x!r}")
    return int(x)


def check_fraction(x: Any, name: str, interval: str = "[0, 1]") -> float:
    """A number in ``interval``, one of ``"[0, 1]"``, ``"[0, 1)"``, ``"(0, 1)"``, ``"(0, 1]"`` (``ParameterError``)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        x = float("nan")
    if not ((x >= 0 if interval[0] == "[" else x > 0) and (x <= 1 if interval[-1] == "]" else x < 1)):
        raise ParameterError(f"{name} must lie in {interval}, got {x!r}")
    return x


def check_choice(value: Any, name: str, choices: Sequence[str]) -> Any:
    """``value`` if it is one of ``choices``, else ``ParameterError``: "{name} must be 'a' or 'b', got ..."."""
    if not (isinstance(value, (str, int, np.integer)) and not isinstance(value, bool) and value in choices):
        names = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
        raise ParameterError(f"{name} must be {names}, got {value!r}")
    return value


def check_joint_size(num_states: Sequence[int], max_bytes: int, owner: str, copies: int = 1) -> None:
    """A ``ParameterError`` naming the factors' sizes and the bytes when the joint state space (float64, about
    three arrays of it at once, for each of ``copies`` beliefs) would take more than ``max_bytes``."""
    size = 3 * 8 * math.prod(num_states) * copies
    if size > max_bytes:
        each = f" for each of {copies:,} beliefs" if copies > 1 else ""
        raise ParameterError(f"{owner} enumerates the joint state space of factors of sizes {list(num_states)}"
                             f"{each}: about {size:,} bytes, above max_bytes = {max_bytes:,}; use FixedPoint, or "
                             "raise max_bytes")


def check_cell(cell: Any, shape: Sequence[int], name: str) -> tuple[int, int]:
    """``(row, col)`` of a cell given as the argument ``name``; ``ParameterError`` outside the grid."""
    r, c = (int(x) for x in cell)
    if not (0 <= r < shape[0] and 0 <= c < shape[1]):
        raise ParameterError(f"{name} = {tuple(cell)} lies outside the {shape[0]}x{shape[1]} grid")
    return r, c


def check_index(x: Any, name: str, n: int | None = None, error: type[AifError] = ParameterError) -> int:
    """An integer ``>= 0`` (and ``< n`` when given), not a bool or a float, else ``error``."""
    if not (isinstance(x, (int, np.integer)) and not isinstance(x, bool) and 0 <= x and (n is None or x < n)):
        raise error(f"{name} must be an integer in 0..{'' if n is None else n - 1}, got {x!r}")
    return int(x)


def check_real(x: Any, name: str, low: float = -math.inf) -> float:
    """A finite number ``>= low``, not a string or a bool (``ParameterError``)."""
    if not (isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
            and math.isfinite(x) and x >= low):
        bound = f">= {low:g} and " if low > -math.inf else "a number, "
        raise ParameterError(f"{name} must be {bound}finite, got {x!r}")
    return float(x)


def check_pair(x: Any, name: str) -> tuple[int, int]:
    """Two integers, such as a grid's ``(rows, cols)`` or a ``(row, col)`` cell (``ParameterError``)."""
    a = as_numbers(x, name, ParameterError, None)
    if a.shape != (2,) or not np.issubdtype(a.dtype, np.integer):
        raise ParameterError(f"{name} must be two integers (row, col), got {x!r}")
    return int(a[0]), int(a[1])


def check_index_lists(x: Any, name: str, error: type[AifError] = ModelError) -> list | None:
    """``None``, or a list of lists of integer indices (dependencies, ...) as ints, else ``error``."""
    if x is None:
        return None
    out = [as_numbers(d, f"{name}[{i}]", error, None) for i, d in enumerate(check_sequence(x, name, error))]
    for i, d in enumerate(out):
        if d.ndim != 1 or not (d.size == 0 or np.issubdtype(d.dtype, np.integer)):
            raise error(f"{name}[{i}] must be a list of integer indices, got {x[i]!r}")
    return [d.astype(int).tolist() for d in out]


def check_is_model(model: Any) -> Any:
    """``model`` if it is an ``aif.GenerativeModel``, else a ``StrategyError``."""
    from .model import GenerativeModel

    if not isinstance(model, GenerativeModel):
        raise StrategyError(f"model must be an aif.GenerativeModel, got {type(model).__name__}")
    return model


__all__ = ["PROB_TOL", "COLUMN_TOL", "first_index", "check_model", "check_finite", "check_dirichlet",
           "check_dependencies", "check_array_list", "check_count_list", "check_transitions", "check_rates",
           "check_obs", "check_obs_list", "check_obs_window", "check_outcome", "check_vector", "check_probability",
           "check_beliefs", "check_prior", "check_future", "check_policies", "check_actions", "check_selection",
           "check_policy_weights", "check_log_habits", "check_positive", "check_integer", "check_fraction",
           "check_choice", "check_joint_size", "check_cell", "as_numbers", "check_sequence"]
__all__ += ["check_index", "check_real", "check_pair", "check_index_lists", "check_is_model"]
