"""Inference over time: policy-conditioned beliefs over a past window and the policy horizon.

At time ``t`` an agent with a backward window of ``W`` steps holds, for every policy ``pi``, beliefs
``q(s_tau | pi)`` about the hidden states at each step ``tau`` of the window ``t-W+1 .. t`` (where it has
observations) and of the policy's future ``t+1 .. t+H`` (where it has none). Past actions are shared by
all policies; the future actions are the policy's. With a mean-field posterior over factors and time,

    F(pi) = sum_tau E_q[ln q(s_tau|pi)] - sum_{tau<=t} E_q[ln p(o_tau|s_tau)]
            - E_q[ln p(s_first)] - sum_tau E_q[ln p(s_tau | s_tau-1, pi)],

and the policy posterior is ``q(pi) = softmax(-gamma G(pi) - F(pi) + ln E(pi))`` (``aif.sequence_control``).
Two methods, each a small frozen dataclass passed to :func:`infer_sequence`: :class:`MarginalMessagePassing`
(SPM's scheme, messages that are logs of *expected* probabilities; it returns SPM's running estimate of ``F``)
and :class:`VariationalMessagePassing` (mean-field messages, *expected logs*; it returns the ``F`` above).

Shapes: ``P`` policies, ``H`` policy horizon, ``W`` window length (observations), ``L = W + H`` steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import ascii_letters
from typing import Any, ClassVar

import numpy as np
from scipy.special import softmax

from .checks import (
    check_actions,
    check_choice,
    check_integer,
    check_obs_window,
    check_policies,
    check_positive,
    check_prior,
)
from .errors import ParameterError
from .inference import EXPECTED_LOG, MIXTURE, SOFT_OBS, log_likelihood, on_joint
from .maths import CLIP, EXACT, LEGACY, LogGuard, check_guard
from .model import GenerativeModel
from .strategies import NUMPY, SequenceInference, require


@dataclass(frozen=True)
class SequenceTrace:
    """What one call computed at each iteration (for checking against SPM's ``xn`` and ``vn``).

    Attributes:
        qs: ``qs[f]`` of shape ``(num_iter, P, L, S_f)``: beliefs after each iteration.
        err: ``err[f]`` of the same shape: the update's prediction error (state prediction error minus its
            mean over states; SPM's ``vn``). Zero for fixed-point updates.
    """

    qs: list
    err: list


@dataclass(frozen=True)
class MarginalMessagePassing(SequenceInference):
    """SPM's marginal message passing (``spm_MDP_VB_X``, Parr et al. 2019, "Neuronal message passing using
    mean-field, Bethe, and marginal approximations"), as ported by pymdp.legacy's ``run_mmp``.

    Messages are logs of expected probabilities. Each iteration visits the steps in order and, at each step,
    the factors in order. With ``lnA`` the log of the likelihood averaged over the other factors' newest beliefs
    (zero in the future), ``fwd`` = ``ln(B_{u} q_{tau-1})`` (the prior at the first step) and ``bwd`` =
    ``ln(B_norm^T_{u} q_{tau+1})`` (``B^T`` with its columns renormalised), the gradient update is

        err = c lnA + fwd + bwd - c ln q,  c = 2 with a backward message and 1 without,
        ln q <- ln q + tau (err - mean(err)),

    and the fixed-point update is ``q = softmax(lnA + fwd + bwd)``. With ``B_dependencies`` (which SPM and
    legacy do not have) ``fwd`` = ``ln(E_{q_{tau-1}}[B_f])``, the transition averaged over the newest beliefs
    about its parents, and ``bwd`` sums one message per factor ``i`` whose transition reads ``f``, through
    ``B_i`` averaged over its other parents at ``tau`` (none when no transition reads ``f``; ``c`` is
    unchanged). The gradient update's fixed point is pymdp 1.0's ``run_mmp``'s (a different iteration)
    where both have the same ``lnA`` (each modality read by one factor) and the window no policy horizon.
    No backward message enters the last two steps of the window (the last one when the policy horizon is
    0): for one-step policies that is SPM's rule (none into the present, ``R = t`` in ``spm_MDP_VB_X``);
    for longer horizons it is pymdp.legacy's (``future_cutoff``), which SPM has no counterpart for.
    With ``future_cutoff=False`` backward messages enter every step but the last: SPM's rule (``R = S``) for
    policies that span the whole trial (``MDP.V``; ``infer_trial``).

    The free energy per policy is minus SPM's running sum ``F(k)`` over the last iteration (SPM's is the
    negative free energy), taken with the beliefs before their update: ``-sum q . (err / 2)`` at the
    first and last step, and ``-sum q . (err / 2 - (N - 1)/N lnA)`` elsewhere, with ``N`` factors (SPM's
    correction for counting the likelihood once per factor). It is computed the same way with
    fixed-point updates (legacy's fixed-point ``F`` is another quantity: ``calc_free_energy`` with an
    unlogged prior). SPM tests ``j == 1`` (the trial's first step) where legacy and this function test
    the window's first step; they differ only with several factors and a window that does not start the
    trial.

    Attributes:
        num_iter: number of sweeps over the window.
        tau: step size of the gradient update (SPM: 1/4).
        grad_descent: gradient updates (SPM) or fixed-point updates (``q = softmax(messages)``).
        guard: how logarithms treat zeros; ``LEGACY`` (ln(x + 1e-16)) is SPM's ``spm_log`` and legacy's.
        legacy_vfe: halve the likelihood correction in the free energy, as pymdp.legacy's ``run_mmp`` does
            (``q . 0.5 (err - (N - 1)/N lnA)`` where SPM has ``q . (0.5 err - (N - 1)/N lnA)``); only matters
            with several factors.
        future_cutoff: no backward message into the second-to-last step either (pymdp.legacy's ``future_cutoff``;
            see above); ``False`` for SPM's policies over the whole trial.
        parallel: every step and factor updated at once from the previous iteration's beliefs (a Jacobi sweep,
            pymdp 1.0's ``run_mmp``), instead of in turn from the newest beliefs (SPM, legacy).
        expected_log_lik: ``lnA`` the log-likelihood averaged over the other factors, ``E_q[ln p(o | s)]`` under
            ``guard`` (the mean-field message, pymdp 1.0's ``all_marginal_log_likelihood``), instead of the log of the
            averaged likelihood (SPM, legacy). The two agree when each modality is read by one factor.
        mean_messages: a gradient step of ``tau err / c`` instead of ``tau err``: one step towards
            ``ln q = lnA + (fwd + bwd) / 2`` (``lnA + fwd`` without a backward message), pymdp 1.0's
            half-weighted forward and backward messages. The fixed point is unchanged.
        early_stop: SPM's convergence test (``spm_MDP_VB_X``, per policy): after an iteration in which the policy's
            free energy fell by at most exp(-8), iterations 2 to 4 leave its beliefs and ``F`` as they are
            (recording zero errors); from the fifth on every iteration updates. ``False``: every iteration updates.
        spm_backward: backward messages as SPM's ``rB = spm_norm(b')``: through the Dirichlet counts ``pB``
            transposed and normalised when the model has them (the transposed mean ``B`` otherwise; the two agree
            when the columns of each ``pB[f][..., u]`` have equal totals), normalised exactly (an all-zero column
            uniform). ``False``: through ``B`` transposed, with 1e-16 added before normalising (pymdp.legacy).
        soft_obs: how a probability-vector observation o enters, as ``aif.FixedPoint.soft_obs``: ``"mixture"``
            ``sum_o o[o] p(o | s)`` (legacy's ``run_mmp``) or ``"expected_log"`` ``exp sum_o o[o] ln p(o | s)``
            (pymdp 1.0's ``distr_obs=True``; exact logs here, as ``guard`` acts on the average). One-hot
            vectors give the same beliefs under both.
    """

    backends: ClassVar[frozenset[str]] = frozenset({NUMPY})
    num_iter: int = 10
    tau: float = 0.25
    grad_descent: bool = True
    guard: LogGuard = LEGACY
    legacy_vfe: bool = False
    soft_obs: str = MIXTURE
    future_cutoff: bool = True
    early_stop: bool = False
    spm_backward: bool = False
    parallel: bool = False
    expected_log_lik: bool = False
    mean_messages: bool = False

    def __post_init__(self):
        check_integer(self.num_iter, "num_iter")
        check_positive(self.tau, "tau")
        check_guard(self.guard, "guard")
        check_choice(self.soft_obs, "MarginalMessagePassing.soft_obs", SOFT_OBS)
        for name in ("legacy_vfe", "future_cutoff", "early_stop", "spm_backward", "grad_descent", "parallel",
                     "expected_log_lik", "mean_messages"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ParameterError(f"MarginalMessagePassing.{name} must be True or False, "
                                     f"got {getattr(self, name)!r}")

    @classmethod
    def pymdp(cls, num_iter: int = 16, tau: float = 1.0) -> "MarginalMessagePassing":
        """pymdp 1.0's ``run_mmp`` (its ``Agent`` with ``inference_algo="mmp"``: 16 iterations, step 1): uniform start,
        parallel updates, expected log-likelihoods of soft observations (``distr_obs=True``), half-weighted messages
        into every step but the last, ``log_stable``'s clipped logs. Its backward message normalises ``B`` with the
        total clipped at eps where this adds 1e-16 before normalising (legacy's): the two differ only where a column
        of the averaged ``B`` is (almost) all zeros. ``F`` is this class's running estimate (run_mmp returns none)."""
        return cls(num_iter=num_iter, tau=tau, guard=CLIP, soft_obs=EXPECTED_LOG, future_cutoff=False,
                   parallel=True, expected_log_lik=True, mean_messages=True)

    @property
    def averages_likelihood(self) -> bool:
        """Whether it reads ``p(o | s)`` (and guards the log of its average: SPM's ``spm_log`` of the average)
        rather than ``ln p(o | s)`` under ``guard``."""
        return not self.expected_log_lik

    @classmethod
    def spm(cls) -> "MarginalMessagePassing":
        """``spm_MDP_VB_X``'s settings for policies over the whole trial: 16 iterations, step 1/4, its convergence
        test, backward messages into every step but the last, through the counts of B when it is learned."""
        return cls(num_iter=16, future_cutoff=False, early_stop=True, spm_backward=True)

    def __call__(self, lik, A_deps, trans, B_deps, ln_prior, past_len, record=False, init=None, back=None):
        log = self.guard
        num_factors = len(trans)
        num_policies, num_steps = trans[0].shape[0], trans[0].shape[1] + 1
        num_states = [B.shape[2] for B in trans]
        # SPM's L{t}: p(o_t | s) over the joint state space, the product over modalities (``lik`` holds
        # ln p(o_m | s) per modality instead with expected_log_lik)
        joint = None if self.expected_log_lik else [_joint(lik_t, A_deps, num_states) for lik_t in lik]
        readers = [[i for i, deps in enumerate(B_deps) if f in deps] for f in range(num_factors)]
        # no backward message into the last two steps (the last one without a policy horizon): legacy's
        # future_cutoff, SPM's R = t for one-step policies
        cutoff = max(num_steps - 2, past_len - 1) if self.future_cutoff else num_steps - 1
        back = trans if back is None else back  # what the backward messages transpose (trans, or B's counts)
        # SPM subtracts (N - 1)/N of each factor's likelihood term; legacy puts it inside the 1/2
        correction = (num_factors - 1) / num_factors * (0.5 if self.legacy_vfe else 1.0)
        if init is None:
            qs = [np.full((num_policies, num_steps, s), 1.0 / s) for s in num_states]
        else:  # the beliefs to start from (SPM carries them from step to step of a trial)
            qs = [np.array(q, dtype=float) for q in init]
        trace_q = [np.zeros((self.num_iter, *q.shape)) for q in qs] if record else None
        trace_e = [np.zeros((self.num_iter, *q.shape)) for q in qs] if record else None
        F = change = np.ones(num_policies)  # SPM starts its convergence test at dF = 1

        for it in range(self.num_iter):
            # SPM's test: a policy whose F fell by at most exp(-8) sits out iterations 2 to 4 (it = 1..3)
            active = (change > np.exp(-8)) | (it >= 4) if self.early_stop else np.ones(num_policies, dtype=bool)
            F_before, F = F, np.zeros(num_policies)
            # the beliefs that the messages read: the newest ones, or the previous iteration's (parallel)
            src = [q.copy() for q in qs] if self.parallel else qs
            for t in range(num_steps):
                for f in range(num_factors):
                    sx = src[f][:, t]  # (P, S_f), the belief before this update
                    if t >= past_len:
                        lnA = np.zeros_like(sx)
                    elif joint is None:
                        lnA = _expected_log_lik_at(lik[t], A_deps, src, t, f)
                    else:
                        lnA = log(_expect(joint[t], [q[:, t] for q in src], keep=f))
                    if t == 0:
                        fwd = np.broadcast_to(ln_prior[f], sx.shape)
                    else:
                        fwd = log(_expect(trans[f][:, t - 1], [sx] + [src[g][:, t - 1] for g in B_deps[f]], keep=0))
                    if t >= cutoff:
                        bwd, coeff = 0.0, 1.0
                    else:
                        bwd = sum(_backward(back[i][:, t], src, B_deps[i], i, f, t, log, self.spm_backward)
                                  for i in readers[f])
                        coeff = 2.0
                    lnq = log(sx)
                    err = coeff * lnA + fwd + bwd - coeff * lnq
                    if t == 0 or t == num_steps - 1:
                        F -= np.einsum("ps,ps->p", sx, 0.5 * err)
                    else:
                        F -= np.einsum("ps,ps->p", sx, 0.5 * err - correction * lnA)
                    if self.grad_descent:
                        step = err / coeff if self.mean_messages else err
                        # centring the error does not change the softmax; SPM does it, and vn records it
                        v = step - step.mean(axis=-1, keepdims=True)
                        new = softmax(lnq + self.tau * v, axis=-1)
                    else:
                        v = np.zeros_like(sx)
                        new = softmax(lnA + fwd + bwd, axis=-1)
                    if self.early_stop:
                        new, v = np.where(active[:, None], new, sx), np.where(active[:, None], v, 0.0)
                    qs[f][:, t] = new
                    if record:
                        trace_e[f][it, :, t] = v
            if self.early_stop:
                F = np.where(active, F, F_before)
                change = F_before - F if it > 0 else change  # the fall in F (SPM's dF = F(k) - G(k), its sign)
            if record:
                for f in range(num_factors):
                    trace_q[f][it] = qs[f]
        trace = SequenceTrace(trace_q, trace_e) if record else None
        return qs, F, trace


@dataclass(frozen=True)
class VariationalMessagePassing(SequenceInference):
    """Mean-field variational message passing (pymdp 1.0 ``run_vmp``).

    With sparse ``B_dependencies`` a factor also hears from every factor whose transition reads it. Every
    iteration updates all steps and factors at once from the previous iterate:

        err = E_q[ln A] + E_{q_{tau-1}}[ln B] + E_{q_{tau+1}}[ln B] - ln q,   ln q <- ln q + tau err,

    with ``ln prior`` in place of the past message at the first step. With ``tau = 1`` every belief jumps
    to its fixed point given the previous iterate (a Jacobi sweep: unlike one-at-a-time updates it can
    raise F or oscillate; a smaller ``tau`` damps it). The free energy per policy is the mean-field VFE of
    the final beliefs (module docstring), with the method's log guard.

    Attributes:
        num_iter: number of iterations (pymdp 1.0's Agent uses 16).
        tau: step size (pymdp 1.0: 1).
        guard: how logarithms treat zeros; ``CLIP`` (ln(max(x, eps))) is pymdp 1.0's ``log_stable``.
        soft_obs: as :class:`MarginalMessagePassing`'s (``"expected_log"``: ``sum_o o[o] guard(p(o | s))``, pymdp
            1.0's ``run_vmp`` with ``distr_obs=True``).
    """

    backends: ClassVar[frozenset[str]] = frozenset({NUMPY})
    averages_likelihood: ClassVar[bool] = False  # it reads ln p(o | s) under ``guard``
    num_iter: int = 16
    tau: float = 1.0
    guard: LogGuard = CLIP
    soft_obs: str = MIXTURE

    def __post_init__(self):
        check_integer(self.num_iter, "num_iter")
        check_positive(self.tau, "tau")
        check_guard(self.guard, "guard")
        check_choice(self.soft_obs, "VariationalMessagePassing.soft_obs", SOFT_OBS)

    def __call__(self, ln_lik, A_deps, trans, B_deps, ln_prior, past_len, record=False, init=None):
        log = self.guard
        num_factors = len(trans)
        num_policies, num_steps = trans[0].shape[0], trans[0].shape[1] + 1
        num_states = [B.shape[2] for B in trans]
        ln_B = [log(B) for B in trans]  # (P, L - 1, S_f, *S_deps)
        qs = ([np.full((num_policies, num_steps, s), 1.0 / s) for s in num_states] if init is None
              else [np.array(q, dtype=float) for q in init])
        trace_q = [np.zeros((self.num_iter, *q.shape)) for q in qs] if record else None

        for it in range(self.num_iter):
            lnA = _expected_log_lik(ln_lik, A_deps, qs, past_len)
            new = []
            for f in range(num_factors):
                lnq = log(qs[f])
                msg = lnA[f] + 0.0
                msg[:, 0] += ln_prior[f]
                # from the past: E_{q_{tau-1}}[ln B_f(s_f,tau | s_deps,tau-1)]
                msg[:, 1:] += _expect(ln_B[f], [qs[f][:, 1:]] + [qs[g][:, :-1] for g in B_deps[f]], keep=0)
                # from the future: E[ln B_i(s_i,tau+1 | s_deps,tau)] for every factor i whose transition reads f
                for i, deps_i in enumerate(B_deps):
                    if f in deps_i:
                        beliefs = [qs[i][:, 1:]] + [qs[g][:, :-1] for g in deps_i]
                        msg[:, :-1] += _expect(ln_B[i], beliefs, keep=1 + list(deps_i).index(f))
                new.append(softmax(lnq + self.tau * (msg - lnq), axis=-1))
            qs = new
            if record:
                for f in range(num_factors):
                    trace_q[f][it] = qs[f]

        F = _mean_field_vfe(qs, ln_lik, A_deps, ln_B, B_deps, ln_prior, past_len, log)
        trace = SequenceTrace(trace_q, [np.zeros_like(q) for q in trace_q]) if record else None
        return qs, F, trace


# ----------------------------------------------------------------------------------------------------------
# The public function


def infer_sequence(model: GenerativeModel, obs_window: Any, actions_window: Any, policies: Any,
                   prior: list | None = None, method: Any = None,
                   return_trace: bool = False, init: list | None = None) -> tuple:
    """Policy-conditioned beliefs over a past window and the policy horizon, and the VFE per policy.

    Args:
        model: the generative model; ``A_dependencies`` and ``B_dependencies`` may be sparse.
        obs_window: the ``W >= 1`` past observations, oldest first, the last one the present; each one
            outcome index or probability vector per modality (a vector enters by ``method.soft_obs``).
        actions_window: ``(W - 1, num_factors)`` int array, the actions between consecutive observations
            (may be ``None`` when ``W == 1`` or when no factor has a choice: every ``num_controls`` is 1).
        policies: ``(P, H, num_factors)`` int array; ``H`` may be 0 (the last step of a trial).
        prior: the prior over the window's first state: one vector ``(S_f,)`` per factor, shared by the
            policies, or ``(P, S_f)`` per factor (SPM's and legacy's policy-separated prior). ``model.D``
            when absent (a window that starts the trial).
        method: ``MarginalMessagePassing()`` (default) or ``VariationalMessagePassing()``.
        return_trace: also return a :class:`SequenceTrace` with the beliefs after each iteration.
        init: beliefs to start the message passing from, ``init[f]`` of shape ``(P, W + H, S_f)`` (SPM's start of a
            trial: ``aif.SequenceOptions.start``); uniform when absent.

    Returns:
        ``(qs_seq, F)``: ``qs_seq[f]`` of shape ``(P, W + H, S_f)``, ``qs_seq[f][p, tau]`` the belief
        about factor ``f`` at window step ``tau`` under policy ``p`` (``tau = W - 1`` is the present);
        ``F`` of shape ``(P,)``, the variational free energy of each policy (lower is better; it enters
        the policy posterior as ``softmax(-gamma G - F + ln E)``). With ``return_trace``, a third item.
    """
    method = MarginalMessagePassing() if method is None else require(method, SequenceInference, "method", NUMPY)
    obs_window = check_obs_window(model, obs_window)
    policies = check_policies(model, policies, min_horizon=0)
    actions_window = check_actions(model, actions_window, len(obs_window))
    # actions of every transition under every policy: (P, L - 1, F)
    past = np.broadcast_to(actions_window, (policies.shape[0], *actions_window.shape))
    seq = np.concatenate([past, policies], axis=1).astype(int)
    _check_init(model, init, seq.shape[0], seq.shape[1] + 1)
    return _pass_messages(model, obs_window, seq, prior, method, return_trace, init)


def infer_trial(model: GenerativeModel, obs: Any, policies: Any, init: list | None = None, method: Any = None,
                return_trace: bool = False, prior: list | None = None) -> tuple:
    """Beliefs over a whole trial under policies that span it, each with its own past (SPM's ``MDP.V``).

    ``spm_MDP_VB_X`` with sequential policies treats every policy as the trial's whole sequence of actions: at
    step ``t`` each policy holds beliefs about all ``T`` steps, its transitions into the past are its own actions
    (not the actions taken), and its ``F`` says how well *that* sequence explains the outcomes so far, so a policy
    that contradicts what happened loses probability through ``F``. The prior over the first step is ``D``.

    Args:
        model: the generative model.
        obs: the ``t + 1 >= 1`` observations so far (each one outcome index or probability vector per modality).
        policies: ``(P, T - 1, num_factors)`` int, every policy's actions over the trial (``T >= t + 1`` steps).
        init: beliefs to start the message passing from, ``init[f]`` of shape ``(P, T, S_f)`` (SPM carries them from
            step to step, softened: ``aif.sequence_control``); uniform when absent.
        method: ``MarginalMessagePassing.spm()`` (default) or another ``SequenceInference``.
        return_trace: also return a :class:`SequenceTrace`.
        prior: the prior over the trial's first state, one ``(S_f,)`` or ``(P, S_f)`` per factor; ``model.D`` when
            absent.

    Returns:
        ``(qs_seq, F)`` as ``infer_sequence``'s, over the ``T`` steps of the trial (the present is step ``t``): SPM's
        ``x`` (``MDP.Q`` at the trial's end) and minus its ``F(:, t)``.
    """
    method = MarginalMessagePassing.spm() if method is None else require(method, SequenceInference, "method", NUMPY)
    obs = check_obs_window(model, obs)
    policies = check_policies(model, policies, min_horizon=0)
    if policies.shape[1] + 1 < len(obs):
        raise ParameterError(f"policies span {policies.shape[1] + 1} steps but {len(obs)} observations came")
    _check_init(model, init, policies.shape[0], policies.shape[1] + 1)
    return _pass_messages(model, obs, policies, prior, method, return_trace, init)


def _check_init(model: GenerativeModel, init: list | None, P: int, L: int) -> None:
    """``init``, when given, holds one ``(P, L, S_f)`` array per factor (``ParameterError``)."""
    if init is not None:
        shapes = [(P, L, s) for s in model.num_states]
        if len(init) != model.num_factors or any(np.shape(q) != sh for q, sh in zip(init, shapes, strict=False)):
            raise ParameterError(f"init must hold one array per factor of shapes {shapes}")


def _pass_messages(model, obs, seq, prior, method, return_trace, init=None):
    """The method over ``obs`` (checked) and the per-policy action sequences ``seq`` ``(P, L - 1, F)``."""
    # per modality and step: p(o | s) for MMP (exact logs: its guard acts on the average), ln p(o | s) for VMP
    guard = EXACT if method.averages_likelihood else method.guard
    lik = [log_likelihood(model, o, guard, method.soft_obs) for o in obs]
    if method.averages_likelihood:
        lik = [[np.exp(lnL_m) for lnL_m in lik_t] for lik_t in lik]
    prior = check_prior(model, model.D if prior is None else prior, seq.shape[0])
    ln_prior = [method.guard(p) for p in prior]
    # B_f[..., u] for each transition and policy: (P, L - 1, S_f, *S_g for g in B_dependencies[f])
    trans = [np.moveaxis(B_f, -1, 0)[seq[..., f]] for f, B_f in enumerate(model.B)]
    extra: dict[str, Any] = {} if init is None else {"init": init}
    # SPM's backward messages spm_norm(b') through the counts: (P, L - 1, ...)
    if isinstance(method, MarginalMessagePassing) and method.spm_backward and model.pB is not None:
        extra["back"] = [np.moveaxis(p_f, -1, 0)[seq[..., f]] for f, p_f in enumerate(model.pB)]
    qs, F, trace = method(lik, model.A_dependencies, trans, model.B_dependencies, ln_prior, len(lik),
                          record=return_trace, **extra)
    return (qs, F, trace) if return_trace else (qs, F)


# ----------------------------------------------------------------------------------------------------------
# Contractions, likelihoods and the VFE


def _expect(T, qs, keep=None):
    """Contract the last ``len(qs)`` axes of ``T`` with batched beliefs: ``sum_s T(s) prod_{i != keep} qs[i](s_i)``.

    ``qs[i]`` is ``(*batch, T.shape[-len(qs) + i])`` (the one at ``keep`` only gives the batch shape); ``T``
    is ``(*batch, ...)`` or, without the batch axes, shared by the batch. Returns ``(*batch, size at keep)``,
    or ``batch`` when ``keep`` is None.
    """
    n = len(qs)
    if T.ndim == n:
        T = np.broadcast_to(T, qs[0].shape[:-1] + T.shape)
    letters = ascii_letters[:n]
    others = [i for i in range(n) if i != keep]
    spec = "..." + letters + "".join(",..." + letters[i] for i in others)
    spec += "->..." + (letters[keep] if keep is not None else "")
    return np.einsum(spec, T, *[qs[i] for i in others], optimize=len(others) > 1)


def _expected_log_lik(ln_lik, deps, qs, past_len):
    """E_{q(s_not f)}[sum_m ln p(o_m | s)] per factor: list of (P, L, S_f), zero after the present."""
    out = [np.zeros_like(q) for q in qs]
    for t in range(past_len):
        for f in range(len(qs)):
            out[f][:, t] = _expected_log_lik_at(ln_lik[t], deps, qs, t, f)
    return out


def _expected_log_lik_at(ln_lik_t, deps, qs, t, f):
    """E_{q(s_not f)}[sum_m ln p(o_m | s)] for factor ``f`` at step ``t``: (P, S_f), zero when no modality reads it.

    ``ln_lik_t[m]``: ``(*S_g for g in deps[m])``; ``qs[g]``: ``(P, L, S_g)``.
    """
    out = np.zeros_like(qs[f][:, t])
    for lnL_m, deps_m in zip(ln_lik_t, deps, strict=True):
        if f in deps_m:
            out = out + _expect(lnL_m, [qs[g][:, t] for g in deps_m], keep=list(deps_m).index(f))
    return out


def _mean_field_vfe(qs, ln_lik, deps, ln_B, B_deps, ln_prior, past_len, log):
    """Mean-field VFE per policy (module docstring), shape (P,)."""
    F = np.zeros(qs[0].shape[0])
    for f, q in enumerate(qs):
        F += np.einsum("pts,pts->p", q, log(q))
        F -= np.einsum("ps,ps->p", q[:, 0], np.broadcast_to(ln_prior[f], q[:, 0].shape))
        F -= _expect(ln_B[f], [q[:, 1:]] + [qs[g][:, :-1] for g in B_deps[f]]).sum(-1)
    for t in range(past_len):
        for lnL_m, deps_m in zip(ln_lik[t], deps, strict=True):
            F -= _expect(lnL_m, [qs[g][:, t] for g in deps_m])
    return F


def _backward(B, qs, deps, i, f, t, log, exact=False):
    """MMP's message to ``s_f`` at step ``t`` from ``s_i`` at ``t + 1`` through ``B`` = ``B_i`` (P, S_i, *S_deps).

    ``ln(b q_i,t+1)`` with ``b`` (P, S_f, S_i) the transposed transition, averaged over its other parents'
    beliefs at ``t`` and renormalised over ``s_f`` (SPM's ``spm_norm(b')``, its ``b_t`` when ``deps == [i]``);
    legacy adds 1e-16 before normalising, which we follow (it also keeps all-zero rows of B defined); with ``exact``
    SPM's ``spm_norm``: exact, an all-zero column uniform (the two differ by about 0.1 in the log message to a
    state that the transition rules out, which moves the free energy of policies that contradict the outcomes).
    """
    B_f = _expect(B, [qs[g][:, t, None] for g in deps], keep=list(deps).index(f))  # (P, S_i, S_f)
    if exact:
        b = np.swapaxes(B_f, -1, -2)
        total = b.sum(-2, keepdims=True)
        b = np.where(total > 0, b / np.where(total > 0, total, 1.0), 1.0 / b.shape[-2])
    else:
        b = np.swapaxes(B_f, -1, -2) + 1e-16
        b = b / b.sum(-2, keepdims=True)
    return log(np.einsum("pij,pj->pi", b, qs[i][:, t + 1]))


def _joint(lik_t, deps, num_states):
    """The product of the modalities' likelihoods on the joint state space, shape ``num_states``."""
    joint = np.ones(num_states)
    for L_m, deps_m in zip(lik_t, deps, strict=True):
        joint = joint * on_joint(L_m, deps_m, num_states)
    return joint


__all__ = ["MarginalMessagePassing", "VariationalMessagePassing", "SequenceTrace", "infer_sequence", "infer_trial"]
