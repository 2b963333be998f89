"""Policies: enumeration, expected free energy, the policy posterior and action selection.

For a policy pi = (u_1, ..., u_H), beliefs are rolled forward with B, q(s_{t+1} | pi) = E_{q(s_t|pi)}[B(u_t)],
and outcomes predicted with A, q(o_t | pi) = E_{q(s_t|pi)}[A]. The expected free energy sums, over steps,

    G = risk + ambiguity
      = KL[q(o | pi) || p(o)]  +  E_{q(s|pi)} H[p(o | s)]
      = -( E_{q(o|pi)}[ln p(o)]  +  H[q(o | pi)] - E_{q(s|pi)} H[p(o | s)] )
      = -( utility + state_info_gain ),

with ln p(o) the log-preferences C; the caller composes G from ``aif.efe`` term objects (``terms=``). Each term
is defined once, in ``aif.efe.step_terms``; this module schedules it over the tree of policy prefixes, all
policies at once: beliefs carry a leading axis of prefixes ``(n, S_f)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from . import checks
from .efe import (
    DEFAULT_TERMS,
    EFEOptions,
    InductiveCost,
    Novelty,
    Term,
    check_counts,
    check_efe_size,
    check_terms,
    combine,
    step_terms,
)
from .errors import ParameterError, PolicyError
from .maths import CLIP, batch_contract, softmax
from .model import GenerativeModel

MAX_POLICY_BYTES = 1 << 30  # enumerate_policies refuses to build a larger array (1 GiB) unless told to


def enumerate_policies(num_controls: Sequence[int], horizon: int, control_factors: Sequence[int] | None = None,
                       max_bytes: int = MAX_POLICY_BYTES) -> np.ndarray:
    """All action sequences of length ``horizon``, in pymdp's order.

    Args:
        num_controls: controls per factor.
        horizon: number of steps.
        control_factors: factors whose actions vary; the others stay at action 0 (all by default).
        max_bytes: the largest array to build (default ``MAX_POLICY_BYTES``, 1 GiB): more policies are a
            ``PolicyError`` naming their number and size, before anything is allocated.

    Returns:
        int array ``(num_policies, horizon, num_factors)``; the last factor of the last step varies fastest,
        as in ``itertools.product`` over ``num_controls * horizon`` (pymdp's ``construct_policies``).
    """
    num_controls = [int(u) for u in num_controls]
    horizon = checks.check_integer(horizon, "horizon", error=PolicyError)
    if any(u < 1 for u in num_controls):
        raise PolicyError(f"num_controls must be positive, got {num_controls}")
    nf = len(num_controls)
    if control_factors is not None:
        if not (isinstance(control_factors, (list, tuple, range, np.ndarray)) and all(
                isinstance(f, (int, np.integer)) and not isinstance(f, bool) for f in control_factors)):
            raise PolicyError(f"control_factors must be a list of factor indices, got {control_factors!r}")
        bad = [f for f in control_factors if not 0 <= f < nf]
        if bad:
            raise PolicyError(f"control_factors names factor {bad[0]}, but there are {nf} factors")
        num_controls = [u if f in control_factors else 1 for f, u in enumerate(num_controls)]
    dims = num_controls * horizon
    if math.fsum(math.log2(d) for d in dims) > 62:  # not even an index fits an int64
        raise PolicyError(f"policies of horizon {horizon} over {nf} factors (controls {num_controls}) number about "
                          f"2**{math.fsum(math.log2(d) for d in dims):.0f}: give a list of policies, a shorter "
                          "horizon or fewer control_factors")
    count = math.prod(dims)
    size = count * (len(dims) + 2) * 8  # the array, the policy index and one digit of it
    if size > max_bytes:
        raise PolicyError(f"{count:,} policies of horizon {horizon} over {nf} factors (controls {num_controls}) "
                          f"would take {size:,} bytes, above max_bytes = {max_bytes:,}: give a list of policies, "
                          "a shorter horizon or fewer control_factors, or raise max_bytes")
    index, out, stride = np.arange(count), np.zeros((count, len(dims)), dtype=np.int64), 1
    digit = np.empty_like(index)
    for k in reversed(range(len(dims))):  # mixed-radix digits, the last one fastest (no 64-axis limit)
        if dims[k] > 1:
            np.floor_divide(index, stride, out=digit)
            np.remainder(digit, dims[k], out=out[:, k])
            stride *= dims[k]
    return out.reshape(count, horizon, nf)


def _transition(B_f, qs_deps, actions_f):
    """q(s_f') = sum_deps B_f[s_f', deps, u] q(deps), per row: ``qs_deps[i]`` (n, S_g) -> (n, S_f)."""
    if B_f.shape[-1] == 1:  # uncontrolled: one matrix shared by every row
        return batch_contract(B_f[..., 0], qs_deps)
    return batch_contract(np.moveaxis(B_f, -1, 0)[actions_f], qs_deps)  # (n, S_f, *deps) gathered per row


def _expand(model, qs_parents, parent, actions):
    """Beliefs of the distinct prefixes at the next depth, from their parents' beliefs.

    A factor whose transition depends on itself alone is pushed through B for every action from each
    distinct parent once -- one matrix product, (n_parents, S) @ (S, U * S') -- and each child picks its
    action's row; other factors are gathered per child.
    """
    out = []
    for f, (B_f, deps) in enumerate(zip(model.B, model.B_dependencies, strict=True)):
        S_next, U = B_f.shape[0], B_f.shape[-1]
        if deps == [f] and U > 1:
            q = qs_parents[f]  # (n_parents, S)
            B_all = model.derived(("B (S, U S')", f), lambda B_f=B_f: B_f.transpose(1, 2, 0).reshape(-1, U * S_next))
            every = (q @ B_all).reshape(-1, U, S_next)
            out.append(every[parent, actions[:, f]])
        else:
            out.append(_transition(B_f, [qs_parents[g][parent] for g in deps], actions[:, f]))
    return out


def predict_policies(model: GenerativeModel, qs: Sequence[np.ndarray], actions: np.ndarray) -> list[np.ndarray]:
    """One step of B for a batch of action vectors: ``qs[f]`` (n, S_f), ``actions`` (n, F) -> list (n, S_f)."""
    return [_transition(B_f, [qs[g] for g in deps], actions[:, f])
            for f, (B_f, deps) in enumerate(zip(model.B, model.B_dependencies, strict=True))]


def policy_prefixes(policies: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """The tree of distinct policy prefixes, depth by depth.

    Policies that share their first t actions share the beliefs of those steps, so each distinct prefix is
    evaluated once and its terms are added to every policy that extends it.

    Returns:
        one ``(parent, actions, inverse)`` per step t: ``parent`` (n_t,) indexes the distinct prefixes of
        step t-1 (zeros at t = 0), ``actions`` (n_t, F) is each prefix's action at step t, and ``inverse``
        (P,) maps every policy to its prefix of length t + 1.
    """
    policies = np.ascontiguousarray(policies)
    # An agent scores the same policies every step: build each tree once (keyed by the array's bytes).
    return _prefix_tree(policies.tobytes(), policies.shape, policies.dtype.str)


@lru_cache(maxsize=16)
def _prefix_tree(data, shape, dtype):
    policies = np.frombuffer(data, dtype=dtype).reshape(shape)
    P, H, F = policies.shape
    radix = policies.reshape(-1, F).max(axis=0) + 1
    codes = np.ravel_multi_index(policies.reshape(-1, F).T, radix).reshape(P, H)  # joint action per step
    ids, levels = np.zeros(P, dtype=np.int64), []
    for t in range(H):
        _, first, inverse = np.unique(ids * int(np.prod(radix)) + codes[:, t], return_index=True,
                                      return_inverse=True)
        levels.append((ids[first], policies[first, t], inverse.reshape(-1)))
        ids = inverse.reshape(-1)
    for level in levels:
        for array in level:
            array.flags.writeable = False  # shared between calls through the cache
    return tuple(levels)


def expected_free_energy(model: GenerativeModel, qs: Sequence[np.ndarray], policies: np.ndarray,
                         terms: Sequence[Term] = DEFAULT_TERMS, options: EFEOptions | None = None
                         ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Expected free energy of every policy, with its terms.

    Args:
        model: the generative model.
        qs: current beliefs, one vector ``(num_states[f],)`` per factor.
        policies: int array ``(num_policies, horizon, num_factors)``.
        terms: the ``aif.efe`` term objects that make up G: value terms (``Utility()``, ``InfoGain()``,
            ``Novelty("A")``, ...) enter with a minus sign, cost terms (``Risk()``, ``Ambiguity()``,
            ``InductiveCost``, ``TerminalValue``) with a plus sign. ``(Risk(), Ambiguity())`` gives the same G as
            the default ``(Utility(), InfoGain())``.
        options: ``EFEOptions``; the default normalises C and uses exact logarithms.

    Returns:
        ``(G, terms)``: ``G`` of shape ``(num_policies,)``, lower is better; ``terms`` a dict of arrays of
        the same shape with ``risk``, ``ambiguity``, ``utility``, ``state_info_gain`` (and the extra terms
        asked for), each summed over the horizon, with ``risk + ambiguity = -(utility + state_info_gain)``.
    """
    options = EFEOptions() if options is None else options
    terms = check_terms(terms)
    qs = checks.check_beliefs(model, qs, "qs")
    policies = checks.check_policies(model, policies)
    check_counts(model, terms)
    check_efe_size(model, policies.shape[0], policies.shape[1], terms, options)
    return prefix_tree_efe(model, qs, policies, terms, options)


def prefix_tree_efe(model: GenerativeModel, qs: Sequence[np.ndarray], policies: np.ndarray,
                    terms: Sequence[Term], options: EFEOptions) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``expected_free_energy`` on trusted inputs: each distinct policy prefix is scored once by
    ``aif.efe.step_terms`` and its terms added to every policy that extends it."""
    P, H, _ = policies.shape
    out: dict[str, np.ndarray] = {}
    qs_t = [q[None] for q in qs]  # beliefs of the distinct prefixes of the previous step: (n, S_f)
    # The beliefs before each step and at the root are read by the novelty of B and the inductive cost only.
    previous = any(isinstance(term, Novelty) and term.param == "B" for term in terms)
    rooted = any(isinstance(term, InductiveCost) for term in terms)
    for t, (parent, actions, inverse) in enumerate(policy_prefixes(policies)):
        qs_next = _expand(model, qs_t, parent, actions)
        root = [np.broadcast_to(q, (len(parent), q.shape[-1])) for q in qs] if rooted else None
        qs_prev = [q[parent] for q in qs_t] if previous else None
        step = step_terms(model, qs_next, qs_prev, root, actions, t, terms, options)
        for name, value in step.items():
            out[name] = out.get(name, 0.0) + value[inverse]
        qs_t, last = qs_next, inverse
    return combine(out, terms, [q[last] for q in qs_t], H), out


def policy_posterior(G: ArrayLike, E: ArrayLike | None = None, gamma: float = 16.0) -> np.ndarray:
    """q(pi) = softmax(-gamma G + ln E) over the last axis.

    Args:
        G: expected free energies ``(num_policies,)`` (or ``(..., num_policies)``), lower is better.
        E: prior over policies ``(num_policies,)``; uniform when absent. A zero entry rules a policy out.
        gamma: policy precision, positive and finite.
    """
    gamma = checks.check_positive(gamma, "gamma")
    G = checks.as_numbers(G, "G", ParameterError)
    if G.ndim == 0 or G.shape[-1] == 0:
        raise ParameterError(f"G must have shape (..., num_policies) with at least one policy, got {G.shape}")
    if not np.isfinite(G).all():
        raise ParameterError(f"G has a non-finite entry at index {checks.first_index(~np.isfinite(G))}")
    return posterior_of(G, checks.check_log_habits(E, G.shape[-1]), gamma)


def posterior_of(G: np.ndarray, ln_E: np.ndarray | float, gamma: float) -> np.ndarray:
    """``policy_posterior`` on checked inputs: finite ``G`` ``(..., P)``, ``ln_E`` = ln E (or 0), gamma > 0."""
    if gamma * float(np.abs(G).max(initial=0.0)) < 1e300:
        return softmax(-gamma * G + ln_E, axis=-1)
    # gamma x G would overflow (gamma = 1e308): G is shifted by its lowest value among the policies E allows
    # first, so q(pi) is their argmin, not NaN.
    ruled_out = np.broadcast_to(~np.isfinite(ln_E), G.shape)
    x = np.where(ruled_out, 0.0, G - np.min(np.where(ruled_out, np.inf, G), axis=-1, keepdims=True))
    with np.errstate(over="ignore"):
        return softmax(-gamma * x + ln_E, axis=-1)


def action_marginals(q_pi: ArrayLike, policies: ArrayLike, num_controls: Sequence[int] | None = None
                     ) -> list[np.ndarray]:
    """p(u_f) = sum of q(pi) over the policies whose first action for factor f is u, one vector per factor."""
    q_pi, policies = checks.check_policy_weights(q_pi, policies), np.asarray(policies)
    checks.check_probability(q_pi, "q_pi", ParameterError)
    return marginals_of(q_pi, policies, _check_controls(policies, num_controls))


def _check_controls(policies: np.ndarray, num_controls: Sequence[int] | None) -> Sequence[int] | None:
    """``num_controls``, checked to cover every first action of ``policies`` (``None`` passes)."""
    if not np.issubdtype(policies.dtype, np.integer) or (policies < 0).any():
        raise PolicyError(f"policies must hold actions >= 0 (integers), got dtype {policies.dtype}")
    least = policies[:, 0, :].max(axis=0) + 1
    if num_controls is not None and (
            len(checks.check_sequence(num_controls, "num_controls", PolicyError)) != len(least) or any(
            checks.check_integer(u, f"num_controls[{f}]", error=PolicyError) < n for f, (u, n) in
            enumerate(zip(num_controls, least, strict=True)))):
        raise PolicyError(f"num_controls = {num_controls} must give, for each of the {len(least)} factors, at least "
                          f"{least.tolist()} controls (the largest action in policies + 1)")
    return num_controls


def marginals_of(q_pi: np.ndarray, policies: np.ndarray, num_controls: Sequence[int] | None = None
                 ) -> list[np.ndarray]:
    """``action_marginals`` on checked inputs; ``num_controls`` defaults to the largest first action + 1."""
    if num_controls is None:
        num_controls = policies[:, 0, :].max(axis=0) + 1
    return [np.bincount(policies[:, 0, f], weights=q_pi, minlength=int(u)) for f, u in enumerate(num_controls)]


def action_probabilities(q_pi: ArrayLike, policies: ArrayLike, mode: str = "deterministic", alpha: float = 16.0,
                         sampling: str = "full", num_controls: Sequence[int] | None = None
                         ) -> np.ndarray | list[np.ndarray]:
    """The distribution ``select_action`` draws from.

    Returns:
        ``sampling="full"``: probabilities over policies ``(num_policies,)``; ``"marginal"``: one vector per
        factor over its first actions. Deterministic selection takes the argmax of the same quantity
        (q(pi) or the action marginals); stochastic selection samples from ``softmax(alpha ln p)``.
    """
    q, pols = checks.check_selection(q_pi, policies, mode, sampling)
    alpha = checks.check_positive(alpha, "alpha", zero=True)
    if sampling == "marginal":
        num_controls = _check_controls(pols, num_controls)
    return selection_probabilities(q, pols, mode, alpha, sampling, num_controls)


def selection_probabilities(q_pi: np.ndarray, policies: np.ndarray, mode: str, alpha: float, sampling: str,
                            num_controls: Sequence[int] | None = None) -> np.ndarray | list[np.ndarray]:
    """``action_probabilities`` on checked inputs (an Agent's own q(pi) and policies)."""
    if sampling == "full":
        return q_pi if mode == "deterministic" else _sharpen(q_pi, alpha)
    marginals = marginals_of(q_pi, policies, num_controls)
    return marginals if mode == "deterministic" else [_sharpen(p, alpha) for p in marginals]


def _sharpen(p, alpha):
    # pymdp's stochastic selection: softmax(alpha * ln p), with ln guarded at machine epsilon.
    return softmax(alpha * CLIP(p))


def select_action(q_pi: ArrayLike, policies: ArrayLike, mode: str = "deterministic",
                  rng: np.random.Generator | None = None, alpha: float = 16.0, sampling: str = "full") -> np.ndarray:
    """Choose the next action vector from the policy posterior.

    Args:
        q_pi: posterior over policies ``(num_policies,)``.
        policies: ``(num_policies, horizon, num_factors)``.
        mode: ``"deterministic"`` (argmax; the first of exact ties, as pymdp 1.0 -- pymdp.legacy breaks
            ties within 1e-8 at random) or ``"stochastic"`` (sample ``softmax(alpha ln p)``; needs ``rng``).
        rng: ``np.random.Generator``, required for stochastic selection.
        alpha: action precision.
        sampling: ``"full"`` chooses a policy and takes its first action; ``"marginal"`` chooses each
            factor's action from its marginal under q(pi).

    Returns:
        int array ``(num_factors,)``.
    """
    if checks.check_choice(mode, "mode", ("deterministic", "stochastic")) == "stochastic" and rng is None:
        raise ParameterError("stochastic action selection needs rng (a np.random.Generator)")
    return draw_action(action_probabilities(q_pi, policies, mode, alpha, sampling), np.asarray(policies), mode, rng,
                       sampling)


def draw_action(probs: np.ndarray | list[np.ndarray], policies: np.ndarray, mode: str,
                rng: np.random.Generator | None, sampling: str) -> np.ndarray:
    """The action ``(num_factors,)`` that ``select_action`` chooses from ``selection_probabilities``' output."""
    if sampling == "full":
        idx = int(np.argmax(probs)) if mode == "deterministic" else int(rng.choice(len(probs), p=probs))  # type: ignore[union-attr]
        return policies[idx, 0].astype(int)
    if mode == "deterministic":
        return np.array([int(np.argmax(p)) for p in probs])
    return np.array([int(rng.choice(len(p), p=p)) for p in probs])  # type: ignore[union-attr]


def predict(model: GenerativeModel, qs: Sequence[np.ndarray], action: ArrayLike) -> list[np.ndarray]:
    """The prior for the next step: q(s_f') = E_q[B_f(u_f)], one vector per factor.

    Args:
        qs: beliefs, one vector ``(num_states[f],)`` per factor.
        action: int array ``(num_factors,)``.
    """
    action = checks.check_action(model, action)
    qs = [q[None] for q in checks.check_beliefs(model, qs, "qs")]
    return [q[0] for q in predict_policies(model, qs, action[None])]


def expected_states(model: GenerativeModel, qs: Sequence[np.ndarray], policies: ArrayLike) -> list[np.ndarray]:
    """Predicted states q(s_t | pi) of every policy after each of its steps t = 1..H (pymdp's
    ``get_expected_states_interactions``), each distinct policy prefix propagated once.

    Args:
        qs: current beliefs, one vector ``(num_states[f],)`` per factor.
        policies: int array ``(P, H, num_factors)``.

    Returns:
        one array ``(P, H, num_states[f])`` per factor; ``[:, t]`` is the belief after action ``t``.
    """
    qs = checks.check_beliefs(model, qs, "qs")
    policies = checks.check_policies(model, policies)
    P, H, _ = policies.shape
    out = [np.empty((P, H, S)) for S in model.num_states]
    qs_t = [q[None] for q in qs]  # beliefs of the distinct prefixes of the previous step: (n, S_f)
    for t, (parent, actions, inverse) in enumerate(policy_prefixes(policies)):
        qs_t = _expand(model, qs_t, parent, actions)
        for out_f, q in zip(out, qs_t, strict=True):
            out_f[:, t] = q[inverse]
    return out


def expected_outcomes(model: GenerativeModel, qs: Sequence[np.ndarray], policies: ArrayLike) -> list[np.ndarray]:
    """Predicted outcomes q(o_t | pi) = E_q(s_t | pi)[A] of every policy after each of its steps (pymdp's
    ``get_expected_obs_factorized`` on ``expected_states``).

    Args:
        qs: current beliefs, one vector ``(num_states[f],)`` per factor.
        policies: int array ``(P, H, num_factors)``.

    Returns:
        one array ``(P, H, num_obs[m])`` per modality.
    """
    qs_pi = expected_states(model, qs, policies)
    P, H = qs_pi[0].shape[:2]
    flat = [q.reshape(P * H, -1) for q in qs_pi]  # (P * H, S_f)
    return [batch_contract(A_m, [flat[f] for f in deps]).reshape(P, H, -1)
            for A_m, deps in zip(model.A, model.A_dependencies, strict=True)]
