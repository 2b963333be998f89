"""Policies: enumeration, expected free energy, the policy posterior and action selection.

For a policy pi = (u_1, ..., u_H), beliefs are rolled forward with B, q(s_{t+1} | pi) = E_{q(s_t|pi)}[B(u_t)],
and outcomes predicted with A, q(o_t | pi) = E_{q(s_t|pi)}[A]. The expected free energy sums, over steps,

    G = risk + ambiguity
      = KL[q(o | pi) || p(o)]  +  E_{q(s|pi)} H[p(o | s)]
      = -( E_{q(o|pi)}[ln p(o)]  +  H[q(o | pi)] - E_{q(s|pi)} H[p(o | s)] )
      = -( utility + state_info_gain ),

with ln p(o) the log-preferences C. The four terms are returned per policy; the caller chooses which make
up G (``terms=``), e.g. ``("utility",)`` for a purely pragmatic agent or the default
``("utility", "state_info_gain")``. Parameter information gain (``"pA_info_gain"``, ``"pB_info_gain"``)
enters the same way when the model has Dirichlet counts.

Everything is computed for all policies at once: beliefs carry a leading policy axis ``(P, S_f)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import xlogy

from . import learning
from .errors import ParameterError, PolicyError
from .inference import check_beliefs
from .maths import CLIP, JOINT_LIMIT, LEGACY, batch_contract, log_softmax, outer, softmax
from .model import GenerativeModel

VALUE_TERMS = ("utility", "state_info_gain", "pA_info_gain", "pB_info_gain")
COST_TERMS = ("risk", "ambiguity")
DEFAULT_TERMS = ("utility", "state_info_gain")


@dataclass(frozen=True)
class EFEOptions:
    """Conventions for computing the EFE terms.

    Attributes:
        normalize_C: turn C into log-probabilities with a log-softmax over outcomes before use (SPM and
            pymdp.legacy do; pymdp 1.0 uses C as given, so its G differs by a constant per step and
            modality, ``-logsumexp(C_m)``, and its q(pi) is the same).
        info_gain: ``"per_modality"`` sums one information gain per modality (both pymdp agents);
            ``"joint"`` uses the joint outcome of all modalities (SPM's ``spm_MDP_G``), the exact EFE term.
            For independent modalities the per-modality sum is never below the joint value.
        guards: ``"exact"`` (0 ln 0 = 0, exact logs), ``"pymdp"`` (ln max(x, eps), pymdp 1.0) or
            ``"legacy"`` (pymdp.legacy: ln(x + 1e-16) for outcomes and C, ln(x + exp(-16)) inside
            ``spm_MDP_G``, which also drops joint states with probability below exp(-16)).
        wnorm: how parameter information gain weighs Dirichlet counts (``aif.learning.WNorm``):
            ``WNORM_LEGACY`` (pymdp.legacy's 1/a0 - 1/a, the default), ``WNORM_SPM`` or ``WNORM_EXACT``
            (pymdp 1.0's exact expected information gain).
    """

    normalize_C: bool = True
    info_gain: str = "per_modality"
    guards: str = "exact"
    wnorm: object = None

    def __post_init__(self):
        if self.info_gain not in ("per_modality", "joint"):
            raise ParameterError(f"EFEOptions.info_gain must be 'per_modality' or 'joint', got {self.info_gain!r}")
        if self.guards not in ("exact", "pymdp", "legacy"):
            raise ParameterError(f"EFEOptions.guards must be 'exact', 'pymdp' or 'legacy', got {self.guards!r}")
        if self.wnorm is None:
            object.__setattr__(self, "wnorm", learning.WNORM_LEGACY)

    @classmethod
    def pymdp_legacy(cls) -> "EFEOptions":
        """pymdp.legacy's ``update_posterior_policies_factorized``."""
        return cls(normalize_C=True, info_gain="per_modality", guards="legacy")

    @classmethod
    def pymdp(cls) -> "EFEOptions":
        """pymdp 1.0's ``update_posterior_policies``."""
        return cls(normalize_C=False, info_gain="per_modality", guards="pymdp", wnorm=learning.WNORM_EXACT)


def enumerate_policies(num_controls, horizon: int, control_factors=None) -> np.ndarray:
    """All action sequences of length ``horizon``, in pymdp's order.

    Args:
        num_controls: controls per factor.
        horizon: number of steps.
        control_factors: factors whose actions vary; the others stay at action 0 (all by default).

    Returns:
        int array ``(num_policies, horizon, num_factors)``; the last factor of the last step varies fastest,
        as in ``itertools.product`` over ``num_controls * horizon`` (pymdp's ``construct_policies``).
    """
    num_controls = [int(u) for u in num_controls]
    if int(horizon) != horizon or horizon < 1:
        raise PolicyError(f"horizon must be a positive integer, got {horizon!r}")
    if any(u < 1 for u in num_controls):
        raise PolicyError(f"num_controls must be positive, got {num_controls}")
    nf = len(num_controls)
    if control_factors is not None:
        bad = [f for f in control_factors if not 0 <= f < nf]
        if bad:
            raise PolicyError(f"control_factors names factor {bad[0]}, but there are {nf} factors")
        num_controls = [u if f in control_factors else 1 for f, u in enumerate(num_controls)]
    dims = num_controls * int(horizon)
    flat = np.stack(np.unravel_index(np.arange(int(np.prod(dims))), dims), axis=-1)
    return flat.reshape(-1, int(horizon), nf)


def check_policies(model: GenerativeModel, policies) -> np.ndarray:
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
    for f, (B_f, deps) in enumerate(zip(model.B, model.B_dependencies)):
        S_next, U = B_f.shape[0], B_f.shape[-1]
        if deps == [f] and U > 1:
            q = qs_parents[f]  # (n_parents, S)
            every = (q @ B_f.transpose(1, 2, 0).reshape(q.shape[1], U * S_next)).reshape(-1, U, S_next)
            out.append(every[parent, actions[:, f]])
        else:
            out.append(_transition(B_f, [qs_parents[g][parent] for g in deps], actions[:, f]))
    return out


def predict_policies(model: GenerativeModel, qs, actions):
    """One step of B for a batch of action vectors: ``qs[f]`` (n, S_f), ``actions`` (n, F) -> list (n, S_f)."""
    return [_transition(B_f, [qs[g] for g in deps], actions[:, f])
            for f, (B_f, deps) in enumerate(zip(model.B, model.B_dependencies))]


def policy_prefixes(policies):
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


def _log_preferences(C_m, t, options):
    C_t = C_m if C_m.ndim == 1 else C_m[:, min(t, C_m.shape[1] - 1)]
    if not options.normalize_C:
        return C_t
    if options.guards == "legacy":
        return np.log(softmax(C_t) + 1e-16)
    return log_softmax(C_t)


class _Joints:
    """Joint beliefs over each dependency set, computed once per step and shared by the modalities."""

    def __init__(self, qs):
        self.qs, self.cache = qs, {}

    def expect(self, tensors, deps):
        """E_q[T] for tensors ``T`` of shape ``(X, *deps)``: list of (n, X)."""
        qs_deps = [self.qs[f] for f in deps]
        n, D = qs_deps[0].shape[0], math.prod(q.shape[1] for q in qs_deps)
        if n * D > JOINT_LIMIT:  # too large to hold: contract one factor at a time
            return [batch_contract(T, qs_deps) for T in tensors]
        key = tuple(deps)
        if key not in self.cache:
            self.cache[key] = qs_deps[0] if len(deps) == 1 else outer(qs_deps, batch=True).reshape(n, D)
        return [self.cache[key] @ T.reshape(T.shape[0], D).T for T in tensors]


def _outcome_terms(A_m, joints, deps, options):
    """(q(o_m) (n, O_m), H[q(o_m)] (n,), E_q H[p(o_m | s)] (n,)) for one modality, under the options' guards."""
    if options.guards == "legacy":
        # pymdp.legacy's spm_MDP_G: joint states with q(s) <= exp(-16) are dropped from its two sums
        # (but not from the q(o) that scores utility).
        qo_m = joints.expect([A_m], deps)[0]
        q_joint = outer([joints.qs[f] for f in deps], batch=True).reshape(qo_m.shape[0], -1)
        q_joint = np.where(q_joint > np.exp(-16), q_joint, 0.0)
        H_A = -(A_m * np.log(A_m + np.exp(-16))).sum(axis=0).reshape(-1)
        qo_kept = q_joint @ A_m.reshape(A_m.shape[0], -1).T
        return qo_m, -(qo_kept * LEGACY(qo_kept)).sum(axis=-1), q_joint @ H_A
    if options.guards == "exact":
        H_A = -xlogy(A_m, A_m).sum(axis=0)
    else:
        H_A = -(A_m * CLIP(A_m)).sum(axis=0)
    qo_m, ambiguity = joints.expect([A_m, H_A[None]], deps)
    H_qo = -xlogy(qo_m, qo_m).sum(axis=-1) if options.guards == "exact" else -(qo_m * CLIP(qo_m)).sum(axis=-1)
    return qo_m, H_qo, ambiguity[:, 0]


def _joint_outcome_entropy(model, qs_next, options):
    """H[q(o_1, ..., o_M)] of the joint outcome of all modalities, per policy (P,)."""
    factors, outcomes = "abcdefghij"[: model.num_factors], "ABCDEFGHIJ"[: model.num_modalities]
    subs = ["p" + factors[f] for f in range(model.num_factors)]
    subs += [outcomes[m] + "".join(factors[f] for f in deps) for m, deps in enumerate(model.A_dependencies)]
    qo = np.einsum(",".join(subs) + "->p" + outcomes, *qs_next, *model.A, optimize=True)
    qo = qo.reshape(qo.shape[0], -1)  # (P, prod O_m)
    if options.guards == "exact":
        return -xlogy(qo, qo).sum(axis=-1)
    guard = LEGACY if options.guards == "legacy" else CLIP
    return -(qo * guard(qo)).sum(axis=-1)


def expected_free_energy(model: GenerativeModel, qs, policies, terms=DEFAULT_TERMS, options=None):
    """Expected free energy of every policy, with its terms.

    Args:
        model: the generative model.
        qs: current beliefs, one vector ``(num_states[f],)`` per factor.
        policies: int array ``(num_policies, horizon, num_factors)``.
        terms: names of the terms that make up G: value terms (``utility``, ``state_info_gain``,
            ``pA_info_gain``, ``pB_info_gain``) enter with a minus sign, cost terms (``risk``,
            ``ambiguity``) with a plus sign. ``("risk", "ambiguity")`` gives the same G as the default
            ``("utility", "state_info_gain")``.
        options: ``EFEOptions``; the default normalises C and uses exact logarithms.

    Returns:
        ``(G, terms)``: ``G`` of shape ``(num_policies,)``, lower is better; ``terms`` a dict of arrays of
        the same shape with ``risk``, ``ambiguity``, ``utility``, ``state_info_gain`` (and the parameter
        terms asked for), each summed over the horizon, with ``risk + ambiguity = -(utility +
        state_info_gain)``.
    """
    options = EFEOptions() if options is None else options
    unknown = [t for t in terms if t not in VALUE_TERMS + COST_TERMS]
    if unknown or not terms:
        raise ParameterError(f"unknown EFE term {unknown[0]!r}; choose from {VALUE_TERMS + COST_TERMS}"
                             if unknown else "terms must name at least one EFE term")
    qs = check_beliefs(model, qs, "qs")
    policies = check_policies(model, policies)
    P, H, _ = policies.shape
    want_pA = "pA_info_gain" in terms
    want_pB = "pB_info_gain" in terms
    if want_pA and model.pA is None or want_pB and model.pB is None:
        raise ParameterError("parameter information gain needs Dirichlet counts: the model has no "
                             + ("pA" if want_pA and model.pA is None else "pB"))

    out = {name: np.zeros(P) for name in ("risk", "ambiguity", "utility", "state_info_gain")}
    if want_pA:
        out["pA_info_gain"] = np.zeros(P)
    if want_pB:
        out["pB_info_gain"] = np.zeros(P)
    qs_t = [q[None] for q in qs]  # beliefs of the distinct prefixes of the previous step: (n, S_f)
    for t, (parent, actions, inverse) in enumerate(policy_prefixes(policies)):
        qs_next = _expand(model, qs_t, parent, actions)
        n = len(parent)
        step = {name: np.zeros(n) for name in out}
        entropy_qo = np.zeros(n)
        joints = _Joints(qs_next)
        for m, (A_m, deps) in enumerate(zip(model.A, model.A_dependencies)):
            qo_m, H_qo_m, ambiguity_m = _outcome_terms(A_m, joints, deps, options)
            step["utility"] += qo_m @ _log_preferences(model.C[m], t, options)
            entropy_qo += H_qo_m
            step["ambiguity"] += ambiguity_m
            if want_pA:
                step["pA_info_gain"] += learning.pA_info_gain([model.pA[m]], qs_next, [deps], qo_t=[qo_m],
                                                              wnorm=options.wnorm)
        if options.info_gain == "joint" and model.num_modalities > 1:
            entropy_qo = _joint_outcome_entropy(model, qs_next, options)
        if want_pB:
            step["pB_info_gain"] += learning.pB_info_gain(model.pB, qs_next, [q[parent] for q in qs_t], actions,
                                                          model.B_dependencies, wnorm=options.wnorm)
        # Both decompositions share H[q(o)] and the ambiguity, so they agree to rounding:
        # state_info_gain = H[q(o)] - ambiguity, risk = -utility - H[q(o)] (= KL[q(o) || p(o)]).
        step["state_info_gain"] = entropy_qo - step["ambiguity"]
        for name, value in step.items():
            out[name] += value[inverse]
        qs_t = qs_next
    out["risk"] = -out["utility"] - out["state_info_gain"] - out["ambiguity"]
    G = sum((out[name] if name in COST_TERMS else -out[name]) for name in terms)
    return G, out


def policy_posterior(G, E=None, gamma: float = 16.0) -> np.ndarray:
    """q(pi) = softmax(-gamma G + ln E) over the last axis.

    Args:
        G: expected free energies ``(num_policies,)`` (or ``(..., num_policies)``), lower is better.
        E: prior over policies ``(num_policies,)``; uniform when absent. A zero entry rules a policy out.
        gamma: policy precision, positive and finite.
    """
    gamma = check_positive(gamma, "gamma")
    G = np.asarray(G, dtype=float)
    if not np.isfinite(G).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(G))[0])
        raise ParameterError(f"G has a non-finite entry at index {index}")
    logits = -gamma * G
    if E is not None:
        E = np.asarray(E, dtype=float)
        if E.shape != G.shape[-1:]:
            raise ParameterError(f"E has shape {E.shape} but there are {G.shape[-1]} policies")
        bad = ~np.isfinite(E) | (E < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ParameterError(f"E has a negative entry {E[i]} at index {i}" if E[i] < 0
                                 else f"E has a non-finite entry {E[i]} at index {i}")
        if abs(E.sum() - 1.0) > 1e-6:
            raise ParameterError(f"E sums to {E.sum():.6g}, not 1 (it is a prior over policies)")
        with np.errstate(divide="ignore"):
            logits = logits + np.log(E)
    return softmax(logits, axis=-1)


def check_positive(x, name):
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a positive number, got {x!r}") from None
    if not (np.isfinite(x) and x > 0):
        raise ParameterError(f"{name} must be positive and finite, got {x}")
    return x


def action_marginals(q_pi, policies, num_controls=None) -> list:
    """p(u_f) = sum of q(pi) over the policies whose first action for factor f is u, one vector per factor."""
    policies = np.asarray(policies)
    q_pi = np.asarray(q_pi, dtype=float)
    if policies.ndim != 3 or q_pi.shape != policies.shape[:1]:
        raise PolicyError(f"q_pi has shape {q_pi.shape} but policies has shape {policies.shape}; "
                          "expected (P,) and (P, horizon, num_factors)")
    if num_controls is None:
        num_controls = policies[:, 0, :].max(axis=0) + 1
    return [np.bincount(policies[:, 0, f], weights=q_pi, minlength=int(u)) for f, u in enumerate(num_controls)]


def action_probabilities(q_pi, policies, mode="deterministic", alpha: float = 16.0, sampling="full",
                         num_controls=None):
    """The distribution ``select_action`` draws from.

    Returns:
        ``sampling="full"``: probabilities over policies ``(num_policies,)``; ``"marginal"``: one vector per
        factor over its first actions. Deterministic selection takes the argmax of the same quantity
        (q(pi) or the action marginals); stochastic selection samples from ``softmax(alpha ln p)``.
    """
    q_pi, policies = _check_selection(q_pi, policies, mode, sampling)
    alpha = check_positive(alpha, "alpha")
    if sampling == "full":
        return q_pi if mode == "deterministic" else _sharpen(q_pi, alpha)
    marginals = action_marginals(q_pi, policies, num_controls)
    return marginals if mode == "deterministic" else [_sharpen(p, alpha) for p in marginals]


def _sharpen(p, alpha):
    # pymdp's stochastic selection: softmax(alpha * ln p), with ln guarded at machine epsilon.
    return softmax(alpha * CLIP(p))


def select_action(q_pi, policies, mode="deterministic", rng=None, alpha: float = 16.0, sampling="full"):
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
    if mode == "stochastic" and rng is None:
        raise ParameterError("stochastic action selection needs rng (a np.random.Generator)")
    probs = action_probabilities(q_pi, policies, mode, alpha, sampling)
    policies = np.asarray(policies)
    if sampling == "full":
        idx = int(np.argmax(probs)) if mode == "deterministic" else int(rng.choice(len(probs), p=probs))
        return policies[idx, 0].astype(int)
    if mode == "deterministic":
        return np.array([int(np.argmax(p)) for p in probs])
    return np.array([int(rng.choice(len(p), p=p)) for p in probs])


def _check_selection(q_pi, policies, mode, sampling):
    if mode not in ("deterministic", "stochastic"):
        raise ParameterError(f"mode must be 'deterministic' or 'stochastic', got {mode!r}")
    if sampling not in ("full", "marginal"):
        raise ParameterError(f"sampling must be 'full' or 'marginal', got {sampling!r}")
    q_pi = np.asarray(q_pi, dtype=float)
    policies = np.asarray(policies)
    if policies.ndim != 3 or q_pi.shape != policies.shape[:1]:
        raise PolicyError(f"q_pi has shape {q_pi.shape} but policies has shape {policies.shape}; "
                          "expected (P,) and (P, horizon, num_factors)")
    bad = ~np.isfinite(q_pi) | (q_pi < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ParameterError(f"q_pi is not a probability vector: entry {i} is {q_pi[i]}")
    if abs(q_pi.sum() - 1) > 1e-6:
        raise ParameterError(f"q_pi is not a probability vector (sum {q_pi.sum():.6g}, not 1)")
    return q_pi, policies


def predict(model: GenerativeModel, qs, action) -> list:
    """The prior for the next step: q(s_f') = E_q[B_f(u_f)], one vector per factor.

    Args:
        qs: beliefs, one vector ``(num_states[f],)`` per factor.
        action: int array ``(num_factors,)``.
    """
    action = np.asarray(action)
    if action.shape != (model.num_factors,):
        raise PolicyError(f"action has shape {action.shape}, expected ({model.num_factors},): one per factor")
    if not np.issubdtype(action.dtype, np.integer):
        raise PolicyError(f"action must hold integers, got dtype {action.dtype}")
    check_policies(model, action[None, None, :])
    qs = [q[None] for q in check_beliefs(model, qs, "qs")]
    return [q[0] for q in predict_policies(model, qs, action.astype(int)[None])]
