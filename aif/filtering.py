"""Beliefs over a history: filtering, smoothing, and the free energy of a belief sequence.

An agent that infers one step at a time holds *filtered* beliefs ``q_t(s) ~ p(s_t | o_1..t)``, each computed
from the prior that the previous one predicts (``aif.predict``). Looking back over the history, *smoothing* gives
``p(s_t | o_1..T)`` and the pairwise beliefs ``q(s_t+1, s_t)`` from which B is learned. Here:

- :func:`forward_backward`: exact smoothing by the forward-backward algorithm on the *joint* state space, so it
  is exact for any number of factors and any ``B_dependencies`` (the chain of joint states is an HMM whose
  transition is ``prod_f B_f``); cost ``O(T N^2)`` time and memory with ``N = prod_f S_f``. It also returns
  ``ln p(o_1..T)``. With one factor it equals pymdp 1.0's ``smoothing_exact`` applied to its ``"exact"``
  filtering history (pymdp's exact smoothing has one factor only).
- :func:`smooth`: the backward pass from given filtered marginals, one factor at a time through its own
  transitions, ``q(s_t | s_t+1) ∝ B(s_t+1 | s_t) q_t(s_t)`` (pymdp 1.0's ``smoothing_ovf``, ``joint_dist_factor``
  and, on exact filtered beliefs, ``smoothing_exact``). Exact for one factor whose filtered beliefs are exact;
  with several factors coupled through A it treats each factor's filtered marginal as if it were exact (the
  mean-field approximation of online variational filtering). It needs ``B_dependencies[f] == [f]``, as
  pymdp's does; :func:`forward_backward` handles interacting transitions.
- :class:`VariationalFiltering`: the filtering step of online variational filtering (pymdp 1.0's
  ``variational_filtering_step``), a ``StateInference`` strategy: an Agent runs it with the prior it predicts.
- :func:`filter_states`: any one-step method run over a history (each prior predicted from the last posterior).
- :func:`sequence_free_energy` and :func:`free_energy_terms`: the variational free energy of a given belief
  sequence or one belief, per step and by term (pymdp 1.0's ``calc_vfe`` and ``return_info`` diagnostics).

**Pairwise beliefs** use pymdp's layout, the layout of ``B_f[..., u]``: ``joints[f]`` has shape
``(T - 1, S_f, *S_g for g in B_dependencies[f])`` and ``joints[f][t, i, j...] = q(s_f,t+1 = i, s_deps,t = j...)``,
so the Dirichlet update of B from a history is ``pB_f[..., u_t] += joints[f][t]``.

**The free energy of a belief sequence.** For beliefs over a chain of states,

    F = sum_t E_q[ln q(s_t | s_t-1)] - E_q[ln p(s_1)] - sum_t E_q[ln p(s_t | s_t-1, u_t-1)] - sum_t E_q[ln p(o_t|s_t)],

assigned to steps as pymdp's ``calc_vfe`` does: step ``t`` holds ``neg_entropy`` (``-H[q(s_1)]`` at the first
step; after it ``-H[q(s_t | s_t-1)]`` from the pairwise beliefs, summed over factors, or ``-H[q(s_t)]`` under
mean field, where the pairs are products of marginals), ``prior_cross_entropy`` (first step only),
``transition_cross_entropy`` (``-E_q[ln B_f]`` over the pair) and ``accuracy`` (``E_q[ln p(o_t | s_t)]``).
With the exact smoothed beliefs of a one-factor model, ``F = -ln p(o_1..T)``. One step with no transitions is
:func:`aif.variational_free_energy` (``guard=EXACT``, ``soft_obs="mixture"``, the defaults here); pymdp 1.0's
numbers come with ``guard=CLIP, soft_obs="expected_log"``. pymdp's ``calc_vfe`` also adds Dirichlet KL
divergences of parameter posteriors when given them; those are not state terms and are not computed here.

**pymdp 1.0, method by method.** ``Agent(inference_algo="ovf")`` infers each step with its fixed-point
iteration (``aif.FixedPoint.pymdp()``) and smooths the history with ``smoothing_ovf`` when it learns
(:func:`filter_states` then :func:`smooth`); ``inference_algo="exact"`` infers with one FPI sweep (exact Bayes for
its one factor) and smooths with ``smoothing_exact`` (:func:`forward_backward`). ``pymdp.algos.
update_variational_filtering`` scans ``variational_filtering_step`` over a history (``filter_states`` with
``VariationalFiltering``; in pymdp 1.0.4 it fails on its own inputs: the batch axis it maps over reaches
``factor_dot``), and ``run_online_filtering`` is marginal message passing (``aif.MarginalMessagePassing``).
pymdp marks padded steps with negative actions and bridges them with an identity transition; here a history
has no padding, and every action must be in range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from string import ascii_letters
from typing import Any, ClassVar

import numpy as np

from .checks import (
    PROB_TOL,
    as_numbers,
    check_actions,
    check_beliefs,
    check_choice,
    check_integer,
    check_joint_size,
    check_obs_window,
    check_probability,
    check_sequence,
)
from .control import predict_policies
from .errors import BeliefError, ModelError, ObservationError
from .inference import (
    EXPECTED_LOG,
    MIXTURE,
    SOFT_OBS,
    FixedPoint,
    broadcast_joint,
    expected_log_likelihood,
    log_likelihood,
    mean_field_vfe,
    on_joint,
)
from .maths import CLIP, EXACT, LogGuard, check_guard, outer, softmax
from .model import GenerativeModel
from .strategies import NUMPY, StateInference, require

# ----------------------------------------------------------------------------------------------------------
# Filtering


@dataclass(frozen=True)
class VariationalFiltering(StateInference):
    """Online variational filtering's belief update (pymdp 1.0 ``variational_filtering_step``): one mean-field
    sweep that starts from the prior instead of iterating from uniform beliefs,

        q(s_f) = softmax( E_{p(s_not f)}[ln p(o | s)] + ln p(s_f) ),   every factor at once,

    where ``p`` is the prior (at each step of a history, the prediction from the previous posterior). With one
    factor this is exact Bayes (the posterior of ``FixedPoint`` and ``Exact``). With several it is the first
    sweep of a parallel fixed-point iteration started at the prior: cheaper than ``FixedPoint`` and good when
    the prior is sharp (a well-predicted step), cruder when the observation moves the beliefs far from it. Run
    it over a history with :func:`filter_states` (or as an Agent's ``inference``) and smooth with :func:`smooth`.

    Attributes:
        guard: how logarithms of the likelihood and prior treat zeros (``aif.maths.CLIP`` is pymdp 1.0's).
        soft_obs: how a probability-vector observation enters the likelihood, as ``aif.FixedPoint.soft_obs``
            (``"mixture"``, the default, or pymdp 1.0's ``"expected_log"``).
    """

    backends: ClassVar[frozenset[str]] = frozenset({NUMPY})
    guard: LogGuard = CLIP
    soft_obs: str = MIXTURE

    def __post_init__(self) -> None:
        check_guard(self.guard, "VariationalFiltering.guard")
        check_choice(self.soft_obs, "VariationalFiltering.soft_obs", SOFT_OBS)

    @classmethod
    def pymdp(cls) -> "VariationalFiltering":
        """pymdp 1.0's settings: ``log_stable`` (CLIP) logarithms and the expected log-likelihood of soft
        observations."""
        return cls(guard=CLIP, soft_obs=EXPECTED_LOG)

    def __call__(self, log_likelihoods: list, log_prior: list, A_dependencies: list,
                 trace: list | None = None) -> list:
        """The update on log-likelihood messages, as ``aif.FixedPoint.__call__`` (its arguments and result);
        ``trace`` receives the VFE after the sweep."""
        if len(log_prior) == 1:
            qs = [softmax(sum(log_likelihoods) + log_prior[0])]
        else:
            # the expectations are under the prior itself, recovered from its log (to within the guard's eps)
            prior = [softmax(lp) for lp in log_prior]
            qs = [softmax(expected_log_likelihood(prior, f, log_likelihoods, A_dependencies) + log_prior[f])
                  for f in range(len(log_prior))]
        if trace is not None:
            trace.append(mean_field_vfe(qs, log_prior, log_likelihoods, A_dependencies, self.guard))
        return qs


@dataclass(frozen=True)
class Filtered:
    """The beliefs of one-step inference after each observation of a history.

    Attributes:
        qs: ``qs[f]`` of shape ``(T, S_f)``: the posterior after observations ``0..t`` at row ``t``.
        priors: ``priors[f]`` of shape ``(T, S_f)``: the prior each step started from (the given prior at
            ``t = 0``, then ``E_{q_t-1}[B_f(u_t-1)]``).
    """

    qs: list
    priors: list


def filter_states(model: GenerativeModel, obs_window: Any, actions_window: Any = None, prior: list | None = None,
                  method: Any = None) -> Filtered:
    """Run one-step state inference over a history, each step's prior predicted from the last posterior.

    This is what an Agent does online; with ``VariationalFiltering`` it is online variational filtering, with
    ``Exact()`` on a one-factor model exact filtering.

    Args:
        model: the generative model.
        obs_window: ``T >= 1`` observations, oldest first; each one outcome index or probability vector per
            modality (a vector enters by ``method.soft_obs``).
        actions_window: ``(T - 1, num_factors)`` int array, the actions between consecutive observations (may be
            ``None`` when ``T == 1`` or when no factor has a choice).
        prior: the prior over the first state, one vector ``(S_f,)`` per factor; ``model.D`` when absent.
        method: a NumPy ``StateInference`` strategy (``FixedPoint()``, the default; ``Exact()``;
            ``VariationalFiltering()``).

    Returns:
        :class:`Filtered` with ``qs[f]`` and ``priors[f]`` of shape ``(T, S_f)``.
    """
    method = FixedPoint() if method is None else require(method, StateInference, "method", NUMPY)
    obs_window = check_obs_window(model, obs_window)
    actions = check_actions(model, actions_window, len(obs_window))
    prior = model.D if prior is None else check_beliefs(model, prior)
    qs_seq: list[list[np.ndarray]] = []
    priors: list[list[np.ndarray]] = []
    for t, obs in enumerate(obs_window):
        if t > 0:
            prior = [p[0] for p in predict_policies(model, [q[None] for q in qs_seq[-1]], actions[t - 1][None])]
        log_lik = log_likelihood(model, obs, method.guard, method.soft_obs)
        qs_seq.append(method(log_lik, [method.guard(p) for p in prior], model.A_dependencies))
        priors.append(prior)
    return Filtered([np.stack(q) for q in zip(*qs_seq, strict=True)], [np.stack(p) for p in zip(*priors, strict=True)])


# ----------------------------------------------------------------------------------------------------------
# Smoothing


@dataclass(frozen=True)
class Smoothed:
    """Beliefs about each step of a history given all of it.

    Attributes:
        qs: ``qs[f]`` of shape ``(T, S_f)``: ``q(s_f,t | o_1..T)``.
        joints: ``joints[f]`` of shape ``(T - 1, S_f, *S_g for g in B_dependencies[f])``:
            ``joints[f][t, i, j...] = q(s_f,t+1 = i, s_deps,t = j...)`` (pymdp's layout, that of ``B_f[..., u]``).
        filtered: ``filtered[f]`` of shape ``(T, S_f)``: the filtered beliefs the backward pass started from.
        log_evidence: ``ln p(o_1..T)`` (:func:`forward_backward`; ``None`` from :func:`smooth`).
    """

    qs: list
    joints: list
    filtered: list
    log_evidence: float | None = None


def smooth(model: GenerativeModel, filtered: Any, actions_window: Any = None) -> Smoothed:
    """Smoothed marginals and pairwise beliefs from a history of filtered beliefs, factor by factor.

    For each factor, backwards from ``q(s_T) = q_T(s_T)``:

        q(s_t | s_t+1) = B(s_t+1 | s_t, u_t) q_t(s_t) / sum_s B(s_t+1 | s, u_t) q_t(s),
        q(s_t+1, s_t) = q(s_t | s_t+1) q(s_t+1),   q(s_t) = sum_{s_t+1} q(s_t+1, s_t)

    (pymdp 1.0's ``smoothing_ovf``, ``joint_dist_factor``, ``smoothing_exact``). Where the prediction of a next
    state is 0 its conditional is 0 (pymdp's rule), so filtered mass on a state the previous belief cannot
    reach is dropped (never, when the filtered beliefs are exact).

    Args:
        model: the generative model; every ``B_dependencies[f]`` must be ``[f]``.
        filtered: ``filtered[f]`` of shape ``(T, S_f)``, the filtered beliefs (``filter_states(...).qs``).
        actions_window: ``(T - 1, num_factors)`` int array of the actions between the steps (``None`` when
            ``T == 1`` or no factor has a choice).

    Returns:
        :class:`Smoothed` (``log_evidence`` is ``None``).

    Raises:
        ModelError: a factor's transition reads other factors (use :func:`forward_backward`).
    """
    qs = _check_belief_seq(model, filtered, "filtered")
    actions = check_actions(model, actions_window, qs[0].shape[0])
    for f, deps in enumerate(model.B_dependencies):
        if deps != [f]:
            raise ModelError(f"smooth passes backwards through each factor's own transitions, but "
                             f"B_dependencies[{f}] = {deps}; forward_backward smooths interacting factors exactly")
    # B_f[..., u_t] for each transition: (T - 1, S_f, S_f)
    passes = [_backward(q_f, np.moveaxis(B_f, -1, 0)[actions[:, f]])
              for f, (q_f, B_f) in enumerate(zip(qs, model.B, strict=True))]
    for f, (smoothed, _) in enumerate(passes):
        lost = 1.0 - smoothed.sum(axis=-1)
        if (np.abs(lost) > PROB_TOL).any():  # never for beliefs this model's filtering gave
            t = int(np.argmax(np.abs(lost)))
            raise BeliefError(f"smoothing factor {f} lost {lost[t]:.3g} of its belief at step {t}: the filtered belief "
                              f"at step {t + 1} is on states that B[{f}] under action {actions[t, f]} cannot reach "
                              f"from the belief at step {t} (beliefs that do not come from this model's filtering, or "
                              f"an observation the model rules out)")
    return Smoothed([m for m, _ in passes], [j for _, j in passes], qs)


def forward_backward(model: GenerativeModel, obs_window: Any, actions_window: Any = None,
                     prior: list | None = None, *, soft_obs: str = MIXTURE, max_bytes: int = 1 << 30) -> Smoothed:
    """Exact filtering and smoothing of a history on the joint state space, with ``ln p(o_1..T)``.

    Forward, ``p(s_t | o_1..t) ∝ p(o_t | s_t) sum_s B(s_t | s, u_t-1) p(s | o_1..t-1)`` with ``B = prod_f B_f``
    on joint states; backward, the recursion of :func:`smooth` on joint states; then marginals and pairwise
    beliefs per factor. Exact for any number of factors and any ``A_dependencies`` and ``B_dependencies``.

    Args:
        model: the generative model.
        obs_window: ``T >= 1`` observations, oldest first (outcome indices or probability vectors; a vector
            enters by ``soft_obs``: ``"mixture"``, Bayes' rule for uncertain evidence, or ``"expected_log"``).
        actions_window: ``(T - 1, num_factors)`` int array (``None`` when ``T == 1`` or no factor has a choice).
        prior: the prior over the first state, one vector ``(S_f,)`` per factor (independent factors);
            ``model.D`` when absent.
        max_bytes: refuse (before allocating) joint transitions of more than this many bytes
            (about ``24 (T - 1) N^2`` with ``N = prod_f S_f``).

    Returns:
        :class:`Smoothed` with the exact ``qs``, ``joints``, ``filtered`` and ``log_evidence``.

    Raises:
        ObservationError: an observation has probability 0 given the ones before it.
    """
    obs_window = check_obs_window(model, obs_window)
    T, S = len(obs_window), model.num_states
    actions = check_actions(model, actions_window, T)
    prior = model.D if prior is None else check_beliefs(model, prior)
    check_choice(soft_obs, "soft_obs", SOFT_OBS)
    check_joint_size(S * 2, check_integer(max_bytes, "max_bytes"), "forward_backward", copies=max(T - 1, 1))
    N = math.prod(S)
    trans = _joint_transitions(model, actions)  # (T - 1, N, N)
    filtered = np.empty((T, N))
    log_evidence = 0.0
    predicted = outer(prior).reshape(N)
    for t, obs in enumerate(obs_window):
        if t > 0:
            predicted = trans[t - 1] @ filtered[t - 1]
        ln_lik = broadcast_joint(log_likelihood(model, obs, EXACT, soft_obs), [], model.A_dependencies,
                                  S).reshape(N)
        # scale by the largest likelihood among reachable states (log-sum-exp), unreachable ones weigh 0
        reachable = predicted > 0
        top = ln_lik[reachable].max()
        if top == -np.inf:
            raise ObservationError(f"obs_window[{t}] has probability 0 given the observations and actions "
                                   "before it")
        post = np.exp(np.where(reachable, ln_lik - top, -np.inf)) * predicted
        evidence = post.sum()
        filtered[t] = post / evidence
        log_evidence += top + np.log(evidence)
    smoothed, pairs = _backward(filtered, trans)
    F = model.num_factors
    nxt, cur = ascii_letters[:F], ascii_letters[F:2 * F]
    joints = [np.einsum(f"...{nxt}{cur}->...{nxt[f]}{''.join(cur[g] for g in deps)}", pairs.reshape(T - 1, *S, *S))
              for f, deps in enumerate(model.B_dependencies)]
    return Smoothed(_marginals(smoothed, S), joints, _marginals(filtered, S), float(log_evidence))


def _backward(filtered, trans):
    """The backward pass of :func:`smooth` on one chain: ``filtered`` (T, N), ``trans`` (T - 1, N, N) column-
    stochastic ``[next, current]``; returns smoothed (T, N) and pairwise ``[next, current]`` (T - 1, N, N)."""
    forward = trans * filtered[:-1, None, :]  # B(s_t+1 | s_t) q_t(s_t)
    predicted = forward.sum(axis=-1, keepdims=True)
    cond = np.divide(forward, predicted, out=np.zeros_like(forward), where=predicted > 0)  # q(s_t | s_t+1)
    smoothed = np.empty_like(filtered)
    smoothed[-1] = filtered[-1]
    pairs = np.empty_like(cond)
    for t in range(len(filtered) - 2, -1, -1):
        pairs[t] = cond[t] * smoothed[t + 1][:, None]
        smoothed[t] = pairs[t].sum(axis=0)
    return smoothed, pairs


def _joint_transitions(model, actions):
    """``prod_f B_f(s_f' | s_deps, u_f)`` for each step's actions, on joint states: (T - 1, N, N), ``[next, current]``
    with joint states flattened in C order."""
    S, F = model.num_states, model.num_factors
    N = math.prod(S)
    out = np.empty((len(actions), N, N))
    for t, u in enumerate(actions):
        joint = np.ones(S * 2)  # axes: next state of each factor, then current state of each factor
        for f, (B_f, deps) in enumerate(zip(model.B, model.B_dependencies, strict=True)):
            joint = joint * on_joint(B_f[..., u[f]], [f] + [F + g for g in deps], S * 2)
        out[t] = joint.reshape(N, N)
    return out


def _marginals(joint_seq, S):
    """Per-factor marginals ``(T, S_f)`` of beliefs over flattened joint states ``(T, N)``."""
    grid = joint_seq.reshape(len(joint_seq), *S)
    return [grid.sum(axis=tuple(1 + g for g in range(len(S)) if g != f)) for f in range(len(S))]


# ----------------------------------------------------------------------------------------------------------
# The free energy of beliefs


@dataclass(frozen=True)
class FreeEnergy:
    """The variational free energy of beliefs, by term (pymdp 1.0 ``calc_vfe``'s names; see the module docstring).

    Each term is an array ``(T,)`` per step of a sequence (:func:`sequence_free_energy`), a scalar for one
    belief (:func:`free_energy_terms`), or a tensor ``(*lead,)`` for a batch of beliefs at one step
    (``aif_deep.inference.free_energy_terms``).

    Attributes:
        neg_entropy: ``-H`` of the beliefs (conditional on the previous step's, after the first step, given
            pairwise beliefs).
        prior_cross_entropy: ``-E_q[ln p(s)]`` under the prior (the first step of a sequence).
        transition_cross_entropy: ``-E_q[ln B]`` over each transition (0 at the first step and for one belief).
        accuracy: ``E_q[ln p(o | s)]``.
    """

    neg_entropy: Any
    prior_cross_entropy: Any
    transition_cross_entropy: Any
    accuracy: Any

    @property
    def vfe_t(self) -> Any:
        """F per step (pymdp's ``vfe_t``): ``neg_entropy + prior_cross_entropy + transition_cross_entropy -
        accuracy``."""
        return self.neg_entropy + self.prior_cross_entropy + self.transition_cross_entropy - self.accuracy

    @property
    def vfe(self) -> Any:
        """F, summed over steps (pymdp's ``vfe`` and ``state_vfe`` without parameter terms): a float; for a batch of
        one-step beliefs (``aif_deep.inference.free_energy_terms``), F per belief, a tensor ``(*lead,)``."""
        F = self.vfe_t
        return float(np.sum(F)) if isinstance(F, np.ndarray) or np.isscalar(F) else F

    @property
    def complexity(self) -> Any:
        """``vfe_t + accuracy``: for one belief, ``KL[q(s) || p(s)]`` (F = complexity - accuracy)."""
        return self.vfe_t + self.accuracy


def sequence_free_energy(model: GenerativeModel, obs_window: Any, qs_seq: Any, actions_window: Any = None,
                         prior: list | None = None, joints: Any = None, *, guard: LogGuard = EXACT,
                         soft_obs: str = MIXTURE) -> FreeEnergy:
    """The variational free energy of a belief sequence, per step and by term (pymdp 1.0's ``calc_vfe``).

    Args:
        model: the generative model; ``B_dependencies`` may be sparse.
        obs_window: ``T >= 1`` observations, oldest first (outcome indices or probability vectors, entering by
            ``soft_obs``).
        qs_seq: ``qs_seq[f]`` of shape ``(T, S_f)``: the belief about each step.
        actions_window: ``(T - 1, num_factors)`` int array (``None`` when ``T == 1`` or no factor has a choice).
        prior: the prior over the first state, one vector ``(S_f,)`` per factor; ``model.D`` when absent.
        joints: optional pairwise beliefs, ``joints[f]`` of shape ``(T - 1, S_f, *S_g for g in
            B_dependencies[f])`` (the module docstring's layout; ``forward_backward(...).joints``), each summing
            to 1 and, over the previous states, to ``qs_seq[f][t + 1]``. Without them the pairs are the products
            of the marginals (mean field).
        guard: logarithms of the beliefs, prior, A and B (``EXACT``: 0 ln 0 = 0 and ``ln 0 = -inf`` elsewhere;
            ``CLIP`` is pymdp 1.0's ``log_stable``).
        soft_obs: ``"mixture"`` or ``"expected_log"`` (pymdp 1.0's), as ``aif.FixedPoint.soft_obs``.

    Returns:
        :class:`FreeEnergy` with terms of shape ``(T,)``; ``.vfe_t`` and ``.vfe`` are pymdp's.
    """
    obs_window = check_obs_window(model, obs_window)
    T = len(obs_window)
    qs = _check_belief_seq(model, qs_seq, "qs_seq", T)
    actions = check_actions(model, actions_window, T)
    prior = model.D if prior is None else check_beliefs(model, prior)
    check_guard(guard, "guard")
    check_choice(soft_obs, "soft_obs", SOFT_OBS)
    if joints is not None:
        joints = _check_joints(model, joints, qs)
    ln_lik = [log_likelihood(model, obs, guard, soft_obs) for obs in obs_window]
    # B_f[..., u_t] for each transition: (T - 1, S_f, *S_deps)
    trans = [np.moveaxis(B_f, -1, 0)[actions[:, f]] for f, B_f in enumerate(model.B)]
    return _free_energy(model, ln_lik, qs, trans, prior, joints, guard)


def free_energy_terms(model: GenerativeModel, obs: Any, qs: list, prior: list | None = None, *,
                      guard: LogGuard = EXACT, soft_obs: str = MIXTURE) -> FreeEnergy:
    """The variational free energy of one belief and its terms (pymdp 1.0's ``return_info`` diagnostics of a
    one-step method): ``F = neg_entropy + prior_cross_entropy - accuracy`` = ``complexity - accuracy``.

    Args:
        model: the generative model.
        obs: one outcome index or probability vector per modality (a vector enters by ``soft_obs``).
        qs: beliefs, one vector ``(S_f,)`` per factor.
        prior: the prior the beliefs were inferred from, one vector ``(S_f,)`` per factor; ``model.D`` when absent.
        guard, soft_obs: as :func:`sequence_free_energy`; with the defaults ``.vfe`` is
            ``aif.variational_free_energy``.

    Returns:
        :class:`FreeEnergy` with scalar terms.
    """
    qs = check_beliefs(model, qs, "qs")
    terms = sequence_free_energy(model, [obs], [q[None] for q in qs], None, prior, guard=guard, soft_obs=soft_obs)
    return FreeEnergy(*(x[0] for x in (terms.neg_entropy, terms.prior_cross_entropy,
                                       terms.transition_cross_entropy, terms.accuracy)))


def _free_energy(model, ln_lik, qs, trans, prior, joints, guard):
    """The terms of F (module docstring) per step; inputs checked, ``trans[f]`` of shape (T - 1, S_f, *S_deps)."""
    T = qs[0].shape[0]
    neg_entropy, prior_ce, transition_ce, accuracy = (np.zeros(T) for _ in range(4))
    for f, (q_f, deps) in enumerate(zip(qs, model.B_dependencies, strict=True)):
        neg_entropy[0] += guard.xlogx(q_f[0]).sum()
        prior_ce[0] -= _expected_log(q_f[0], guard(prior[f]))
        ln_B = guard(trans[f])
        for t in range(1, T):
            if joints is None:
                pair = outer([q_f[t]] + [qs[g][t - 1] for g in deps])
                neg_entropy[t] += guard.xlogx(q_f[t]).sum()
            else:
                pair = joints[f][t - 1]
                # -H[q(s_f,t | s_deps,t-1)] = -H[pair] + H[parents]
                neg_entropy[t] += guard.xlogx(pair).sum() - guard.xlogx(pair.sum(axis=0)).sum()
            transition_ce[t] -= _expected_log(pair, ln_B[t - 1])
    for t, ln_lik_t in enumerate(ln_lik):
        for ln_lik_m, deps in zip(ln_lik_t, model.A_dependencies, strict=True):
            accuracy[t] += _expected_log(outer([qs[g][t] for g in deps]) if deps else np.ones(()), ln_lik_m)
    return FreeEnergy(neg_entropy, prior_ce, transition_ce, accuracy)


def _expected_log(p, log_q):
    """``sum p ln q`` with ``0 ln 0 = 0``: entries where ``p`` is 0 add nothing, even where ``ln q = -inf``."""
    with np.errstate(invalid="ignore"):
        return float(np.sum(np.where(p > 0, p * log_q, 0.0)))


# ----------------------------------------------------------------------------------------------------------
# Input checks


def _check_belief_seq(model, qs_seq, name, T=None):
    """``qs_seq[f]`` ``(T, S_f)`` per factor, each row a distribution, the same ``T >= 1`` for all (``BeliefError``)."""
    qs = check_sequence(qs_seq, name, BeliefError)
    if len(qs) != model.num_factors:
        raise BeliefError(f"{name} has {len(qs)} arrays but the model has {model.num_factors} factors")
    qs = [as_numbers(q, f"{name}[{f}]", BeliefError) for f, q in enumerate(qs)]
    T = qs[0].shape[0] if T is None and qs[0].ndim == 2 else T
    for f, (q, s) in enumerate(zip(qs, model.num_states, strict=True)):
        if q.ndim != 2 or q.shape[1] != s or (T is not None and q.shape[0] != T) or q.shape[0] < 1:
            steps = "steps >= 1" if T is None else str(T)
            raise BeliefError(f"{name}[{f}] has shape {q.shape}, expected ({steps}, {s}): one belief about "
                              f"factor {f} per step, the same steps for every factor")
        check_probability(q, f"{name}[{f}]", BeliefError)
    return qs


def _check_joints(model, joints, qs):
    """Pairwise beliefs in the module docstring's layout, each a distribution whose marginal over the previous
    states is ``qs[f][t + 1]`` (``BeliefError``)."""
    joints = check_sequence(joints, "joints", BeliefError)
    if len(joints) != model.num_factors:
        raise BeliefError(f"joints has {len(joints)} arrays but the model has {model.num_factors} factors")
    out = []
    T, S = qs[0].shape[0], model.num_states
    for f, (j, deps) in enumerate(zip(joints, model.B_dependencies, strict=True)):
        j = as_numbers(j, f"joints[{f}]", BeliefError)
        shape = (T - 1, S[f], *[S[g] for g in deps])
        if j.shape != shape:
            raise BeliefError(f"joints[{f}] has shape {j.shape}, expected {shape}: (transition, next state of "
                              f"factor {f}, previous states of factors B_dependencies[{f}] = {deps})")
        check_probability(j.reshape(T - 1, -1), f"joints[{f}]", BeliefError)
        next_marginal = j.reshape(T - 1, S[f], -1).sum(axis=-1)
        off = np.abs(next_marginal - qs[f][1:]).max(axis=-1) > PROB_TOL
        if off.any():
            t = int(np.argmax(off))
            raise BeliefError(f"joints[{f}][{t}] sums over the previous states to {next_marginal[t]}, but "
                              f"qs_seq[{f}][{t + 1}] is {qs[f][t + 1]}: the pairs disagree with the marginals "
                              "(is the layout (next, previous...)?)")
        out.append(j)
    return out


__all__ = ["VariationalFiltering", "Filtered", "filter_states", "Smoothed", "smooth", "forward_backward",
           "FreeEnergy", "sequence_free_energy", "free_energy_terms"]
