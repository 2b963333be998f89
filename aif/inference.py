"""State inference at one time step: q(s) from an observation and a prior.

With the mean-field posterior q(s) = prod_f q(s_f), the variational free energy is

    F[q] = sum_f E_q[ln q(s_f) - ln p(s_f)] - E_q[ln p(o | s)],

and setting its derivative in q(s_f) to zero, with the other factors held fixed, gives the fixed point

    q(s_f) = softmax( E_{q(s_not f)}[ln p(o | s)] + ln p(s_f) ).

With one factor this is the exact posterior. With several, the methods below iterate it. They differ in
*which* beliefs the update reads (the newest, one factor at a time; or last iteration's, all factors at
once), when they stop, and how they guard logarithms. ``FixedPoint()`` is our default; the two presets
reproduce pymdp exactly:

- ``FixedPoint.pymdp_legacy()`` (pymdp.legacy ``run_vanilla_fpi_factorized``, which the legacy Agent always
  calls): starts from uniform beliefs and updates all factors *simultaneously* from the previous iterate;
  10 iterations at most; stops once |F_k - F_{k-1}| < 0.001, where F_0 is computed at the uniform start
  *without* the accuracy term; logarithms guarded as ln(x + 1e-16) (of each modality's likelihood and the
  prior).
- ``FixedPoint.pymdp()`` (pymdp 1.0 ``run_factorized_fpi``): the same simultaneous update, but exactly
  ``num_iter`` (16) iterations, no stopping rule, logarithms guarded as ln(max(x, eps)).

An observation may be a probability vector o over a modality's outcomes (uncertain evidence). The references
turn it into a likelihood differently, and ``soft_obs`` chooses: ``"mixture"`` (pymdp.legacy, and the
default) uses p(o | s) = sum_o o[o] A[o, s]; ``"expected_log"`` (pymdp 1.0 with ``categorical_obs=True``) uses
ln p(o | s) = sum_o o[o] ln A[o, s]. The mixture is the default because it is Bayes' rule for uncertain
(virtual) evidence (Pearl 1988; Jeffrey's rule with a flat outcome prior): if o[o] is proportional to the
probability of the evidence given that the outcome was o, the evidence's likelihood under s is the mixture.
The expected log is no likelihood of the evidence but Jensen's lower bound on the mixture's logarithm; it
scores s as if every outcome had been seen in proportion o, so an outcome that A rules out under s costs
o[o] ln eps (about 36 o[o] nats) where the mixture loses only that outcome's share. The two agree for one-hot
observations.

A simultaneous (Jacobi) update is not a coordinate descent: it can raise F, and it can settle into a
two-cycle, alternating between two posteriors forever (seen with pymdp 1.0 on random two-factor models with
sharp likelihoods). Legacy's early stop does not rescue it: on such models the two points of the cycle have
different F, so legacy runs its 10 sweeps and, 10 and 16 both being even, returns the same half of the cycle
as pymdp 1.0. Where the iteration does converge, the two references differ by how far each has got when it
stops (legacy's rule often stops within 1e-4 of the fixed point). The default instead updates one factor at
a time from the newest beliefs (Gauss-Seidel): each update minimises F exactly in that factor with the
others fixed, so F never increases, and it iterates until F changes by less than ``tol``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .checks import check_beliefs, check_choice, check_integer, check_joint_size, check_obs
from .errors import ParameterError
from .maths import CLIP, LEGACY, LogGuard, check_guard, factor_dot, softmax
from .model import GenerativeModel, uniform_like
from .strategies import NUMPY, StateInference, require

MIXTURE, EXPECTED_LOG = "mixture", "expected_log"
SOFT_OBS = (MIXTURE, EXPECTED_LOG)  # the values of ``FixedPoint.soft_obs`` and ``Exact.soft_obs``


@dataclass(frozen=True)
class FixedPoint(StateInference):
    """Mean-field fixed-point iteration (pymdp's FPI).

    Attributes:
        num_iter: maximum number of sweeps over the factors.
        tol: stop once the VFE changes by less than this between sweeps; ``None`` runs every sweep.
        schedule: ``"sequential"`` (each factor reads the newest beliefs; F never increases) or
            ``"parallel"`` (all factors read the previous sweep's beliefs, as pymdp does).
        guard: how logarithms of the likelihood and prior treat zeros (``aif.maths.CLIP`` or ``LEGACY``).
        legacy_initial_vfe: compute the VFE of the uniform starting point without its accuracy term, as
            pymdp.legacy does (this only matters for legacy's stopping rule).
        soft_obs: how a probability-vector observation o enters the likelihood: ``"mixture"``
            (sum_o o[o] A[o]: the Bayesian likelihood of uncertain evidence; pymdp.legacy's) or ``"expected_log"``
            (exp sum_o o[o] ln A[o]; pymdp 1.0's); see the module docstring. Outcome indices and one-hot vectors
            give the same posterior under both.
    """

    num_iter: int = 16
    tol: float | None = 1e-10
    schedule: str = "sequential"
    guard: LogGuard = CLIP
    legacy_initial_vfe: bool = field(default=False, repr=False)
    soft_obs: str = MIXTURE

    def __post_init__(self):
        check_integer(self.num_iter, "FixedPoint.num_iter")
        check_choice(self.soft_obs, "FixedPoint.soft_obs", SOFT_OBS)
        if self.tol is not None and not (isinstance(self.tol, (int, float, np.number)) and np.isfinite(self.tol)
                                         and self.tol >= 0):
            raise ParameterError(f"FixedPoint.tol must be None or a finite number >= 0, got {self.tol!r}")
        check_guard(self.guard, "FixedPoint.guard")
        check_choice(self.schedule, "FixedPoint.schedule", ("sequential", "parallel"))

    @classmethod
    def pymdp_legacy(cls, num_iter: int = 10, dF_tol: float = 0.001) -> "FixedPoint":
        """pymdp.legacy's ``run_vanilla_fpi_factorized`` with the legacy Agent's defaults."""
        return cls(num_iter=num_iter, tol=dF_tol, schedule="parallel", guard=LEGACY, legacy_initial_vfe=True,
                   soft_obs=MIXTURE)

    @classmethod
    def pymdp(cls, num_iter: int = 16) -> "FixedPoint":
        """pymdp 1.0's ``run_factorized_fpi`` (``inference_algo="fpi"``)."""
        return cls(num_iter=num_iter, tol=None, schedule="parallel", guard=CLIP, soft_obs=EXPECTED_LOG)

    def __call__(self, log_likelihoods, log_prior, A_dependencies, trace=None):
        """Run the iteration on log-likelihood messages; see ``infer_states``.

        Args:
            log_likelihoods: ``ln p(o_m | s)`` per modality, shape ``(*S_f for f in A_dependencies[m])``.
            log_prior: ``ln p(s_f)`` per factor, shape ``(S_f,)``.
            A_dependencies: the factors each modality depends on.
            trace: optional list; the VFE after each sweep is appended to it.
        """
        num_factors = len(log_prior)
        if num_factors == 1:
            # One factor: the fixed point is reached in one step from any start.
            return [softmax(sum(log_likelihoods) + log_prior[0])]
        log_likelihoods, A_dependencies = by_dependencies(log_likelihoods, A_dependencies)
        qs = uniform_like([len(lp) for lp in log_prior])
        vfe = mean_field_vfe(qs, log_prior, log_likelihoods, A_dependencies, self.guard,
                              accuracy=not self.legacy_initial_vfe)
        for _ in range(self.num_iter):
            if self.schedule == "sequential":
                for f in range(num_factors):
                    qs[f] = softmax(expected_log_likelihood(qs, f, log_likelihoods, A_dependencies) + log_prior[f])
            else:
                qs = [softmax(expected_log_likelihood(qs, f, log_likelihoods, A_dependencies) + log_prior[f])
                      for f in range(num_factors)]
            if self.tol is None and trace is None:
                continue
            new_vfe = mean_field_vfe(qs, log_prior, log_likelihoods, A_dependencies, self.guard)
            if trace is not None:
                trace.append(new_vfe)
            if self.tol is not None and abs(vfe - new_vfe) < self.tol:
                break
            vfe = new_vfe
        return qs


@dataclass(frozen=True)
class Exact(StateInference):
    """The exact joint posterior over all factors, marginalised per factor (for checking mean field).

    Costs the product of the factors' sizes in memory; meant for small models. A joint space of more than
    ``max_bytes`` (``MAX_JOINT_BYTES``, 1 GiB, per belief) is refused before it is allocated. ``soft_obs``: as
    ``FixedPoint.soft_obs``.
    """

    guard: LogGuard = CLIP
    max_bytes: int = 1 << 30
    soft_obs: str = MIXTURE

    def __post_init__(self):
        check_guard(self.guard, "Exact.guard")
        check_choice(self.soft_obs, "Exact.soft_obs", SOFT_OBS)
        check_integer(self.max_bytes, "Exact.max_bytes")

    def __call__(self, log_likelihoods, log_prior, A_dependencies, trace=None):
        num_states = [len(lp) for lp in log_prior]
        check_joint_size(num_states, self.max_bytes, "Exact")
        joint = broadcast_joint(log_likelihoods, log_prior, A_dependencies, num_states)
        post = np.exp(joint - joint.max())
        post /= post.sum()
        axes = range(len(num_states))
        return [post.sum(axis=tuple(a for a in axes if a != f)) for f in axes]


def modality_groups(A_dependencies: list) -> dict[tuple, list[int]]:
    """The modalities that read the same factors (in the same order): distinct dependency tuple -> its modalities,
    in order of first appearance (the grouping of ``by_dependencies`` and of the torch evaluators)."""
    groups: dict[tuple, list[int]] = {}
    for m, deps in enumerate(A_dependencies):
        groups.setdefault(tuple(deps), []).append(m)
    return groups


def by_dependencies(log_likelihoods: list, A_dependencies: list) -> tuple[list, list]:
    """The log-likelihoods of modalities that read the same factors (in the same order), summed: one tensor per
    distinct dependency list. ln p(o | s) is the same sum, so every expectation of it is unchanged (up to
    rounding), with one contraction per group instead of one per modality."""
    if len(log_likelihoods) != len(A_dependencies):
        raise ValueError(f"{len(log_likelihoods)} log-likelihoods for {len(A_dependencies)} modalities")
    groups = modality_groups(A_dependencies)
    sums = []
    for mods in groups.values():
        total = log_likelihoods[mods[0]]
        for m in mods[1:]:
            total = total + log_likelihoods[m]
        sums.append(total)
    return sums, [list(key) for key in groups]


def expected_log_likelihood(qs: list, f: int, log_likelihoods: list, A_dependencies: list) -> np.ndarray:
    """E_{q(s_not f)}[ln p(o | s)] as a function of s_f: sum over modalities that depend on factor f."""
    out = np.zeros(len(qs[f]))
    for logL_m, deps in zip(log_likelihoods, A_dependencies, strict=True):
        if f not in deps:
            continue
        others = [i for i, g in enumerate(deps) if g != f]
        out += factor_dot(logL_m, [qs[deps[i]] for i in others], others, keep=(deps.index(f),))
    return out


def mean_field_vfe(qs: list, log_prior: list, log_likelihoods: list, A_dependencies: list, guard: LogGuard,
                   accuracy: bool = True) -> float:
    """F = sum_f q_f . (ln q_f - ln p_f) - sum_m E_q[ln p(o_m | s)], with the method's log guard."""
    vfe = sum(q @ (guard(q) - lp) for q, lp in zip(qs, log_prior, strict=True))
    if accuracy:
        for logL_m, deps in zip(log_likelihoods, A_dependencies, strict=True):
            vfe -= factor_dot(logL_m, [qs[g] for g in deps], list(range(len(deps))))
    return float(vfe)


def on_joint(x_m: np.ndarray, deps: list, num_states: list) -> np.ndarray:
    """``x_m`` over the factors ``deps`` (in that order), reshaped to broadcast on the joint state space."""
    shape = [num_states[f] if f in deps else 1 for f in range(len(num_states))]
    return np.transpose(x_m, np.argsort(deps)).reshape(shape)


def broadcast_joint(log_likelihoods: list, log_prior: list, A_dependencies: list, num_states: list) -> np.ndarray:
    """ln p(o | s) + ln p(s) on the full joint state space, shape ``num_states``."""
    joint = np.zeros(num_states)
    for logL_m, deps in zip(log_likelihoods, A_dependencies, strict=True):
        joint = joint + on_joint(logL_m, deps, num_states)
    for f, lp in enumerate(log_prior):
        joint = joint + on_joint(lp, [f], num_states)
    return joint


# ----------------------------------------------------------------------------------------------------------
# Input checking and the public functions


def likelihoods(model: GenerativeModel, obs: Any) -> list:
    """p(o_m | s) for each modality at the observed outcome, shape ``(*S_f for f in A_dependencies[m])``.

    A probability vector ``o`` gives the mixture ``sum_o o[o] p(o | s)`` (pymdp.legacy's convention).
    """
    return [A_m[o] if isinstance(o, int) else np.tensordot(o, A_m, axes=(0, 0))
            for A_m, o in zip(model.A, check_obs(model, obs), strict=True)]


def log_likelihood(model: GenerativeModel, obs: Any, guard: LogGuard, soft_obs: str = MIXTURE) -> list:
    """ln p(o_m | s) per modality, shape ``(*S_f for f in A_dependencies[m])``, under ``guard``; a probability
    vector ``o`` by the rule ``soft_obs`` (``"mixture"``: guard(sum_o o[o] A[o]); ``"expected_log"``:
    sum_o o[o] guard(A[o]))."""
    mixture = check_choice(soft_obs, "soft_obs", SOFT_OBS) == MIXTURE
    out = []
    for m, (A_m, o) in enumerate(zip(model.A, check_obs(model, obs), strict=True)):
        if isinstance(o, int):  # guard(A[o]), read from guard(A) computed once per model
            out.append(model.derived(("ln A", m, guard), functools.partial(guard, A_m))[o])
        elif mixture:
            out.append(guard(np.tensordot(o, A_m, axes=(0, 0))))
        else:  # outcomes of probability 0 add nothing (0 ln 0 = 0 under every guard)
            out.append(np.tensordot(o[o > 0], guard(A_m[o > 0]), axes=(0, 0)))
    return out


def infer_states(model: GenerativeModel, obs: Any, prior: list | None = None, method: Any = None,
                 trace: list | None = None) -> list:
    """Posterior over hidden states after one observation.

    Args:
        model: the generative model.
        obs: one outcome index (int) or probability vector ``(num_obs[m],)`` per modality (a vector enters by
            ``method.soft_obs``).
        prior: beliefs ``p(s_f)``, one vector ``(num_states[f],)`` per factor; ``model.D`` when absent.
        method: ``FixedPoint()`` (default), ``FixedPoint.pymdp_legacy()``, ``FixedPoint.pymdp()`` or ``Exact()``.
        trace: optional list to which iterative methods append the VFE after each sweep.

    Returns:
        ``qs``: list of posterior vectors, ``qs[f]`` of shape ``(num_states[f],)``.
    """
    method = FixedPoint() if method is None else require(method, StateInference, "method", NUMPY)
    prior = model.D if prior is None else check_beliefs(model, prior)
    logL = log_likelihood(model, obs, method.guard, method.soft_obs)
    log_prior = [method.guard(p) for p in prior]
    return method(logL, log_prior, model.A_dependencies, trace=trace)


def variational_free_energy(model: GenerativeModel, obs: Any, qs: list, prior: list | None = None) -> float:
    """F = E_q[ln q(s) - ln p(o, s)] for mean-field beliefs ``qs`` (exact logs, 0 ln 0 = 0).

    F >= -ln p(o), with equality when ``qs`` is the exact posterior and that posterior factorises. Its terms
    (entropy, cross-entropy with the prior, accuracy): ``aif.free_energy_terms``, of which this is ``.vfe``.
    """
    from .filtering import free_energy_terms  # (filtering builds on this module)

    return free_energy_terms(model, obs, qs, prior).vfe


def log_evidence(model: GenerativeModel, obs: Any, prior: list | None = None, max_bytes: int = 1 << 30) -> float:
    """ln p(o) = ln sum_s p(o | s) p(s), by enumerating the joint state space (small models; more than
    ``max_bytes`` of it is refused before it is allocated)."""
    check_joint_size(model.num_states, check_integer(max_bytes, "max_bytes"), "log_evidence")
    prior = model.D if prior is None else check_beliefs(model, prior)
    joint = broadcast_joint([np.log(L) for L in likelihoods(model, obs)],
                             [np.log(p) for p in prior], model.A_dependencies, model.num_states)
    top = joint.max()
    return float(top + np.log(np.exp(joint - top).sum()))
