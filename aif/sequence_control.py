"""Policies scored from their own beliefs over time: the control half of inference over time.

``aif.sequence.infer_sequence`` gives, for every policy ``pi``, beliefs ``q(s_tau | pi)`` over a past window
and the policy's future, and the free energy ``F(pi)`` of the window. An agent that infers this way
(SPM's ``spm_MDP_VB_X``, pymdp.legacy's Agent with ``inference_algo="MMP"``) scores each policy with the
beliefs that policy itself holds, from the present ``tau = t`` to its horizon ``t + H``:

    G(pi) = sum_{tau = t}^{t + H} G_tau(q(s_tau | pi)),

each ``G_tau`` the one-step EFE of ``aif.control`` (risk + ambiguity, or -(utility + information gain)),
and forms the policy posterior with the window's evidence:

    q(pi) = softmax(-gamma G(pi) - F(pi) + ln E(pi))          (SPM)
    q(pi) = softmax(-gamma G(pi) + F(pi) + ln E(pi))          (pymdp.legacy's Agent).

The two differ in the sign of ``F``: SPM subtracts the free energy (policies that explain the past well
are more probable); pymdp.legacy adds ``-F_legacy``, where its run_mmp's ``F_legacy`` is already the
negative free energy, and so rewards a *high* free energy. ``SequenceOptions.vfe_sign`` chooses.

Unlike ``expected_free_energy``, which rolls one current belief forward with ``B``, the present step is
scored too (as SPM and legacy do), and the beliefs of each future step are the policy's smoothed beliefs
from message passing rather than plain predictions. With predictions in place of the smoothed beliefs,
``sequence_expected_free_energy`` is ``expected_free_energy`` plus the present step's terms (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .checks import (
    as_numbers,
    check_choice,
    check_future,
    check_index,
    check_log_habits,
    check_positive,
    check_probability,
    check_sequence,
    first_index,
)
from .efe import (
    DEFAULT_TERMS,
    LEGACY_G,
    EFEOptions,
    Guards,
    InfoGain,
    Novelty,
    Term,
    Utility,
    check_counts,
    check_efe_size,
    check_terms,
    combine,
    pB_info_gain,
    pD_info_gain,
    step_terms,
)
from .errors import BeliefError, CallOrderError, ParameterError, PolicyError
from .learning import learn_trial
from .maths import softmax
from .model import GenerativeModel
from .precision import Precision, update_precision
from .sequence import SequenceTrace, infer_sequence, infer_trial

VFE_SIGNS = ("spm", "pymdp_legacy")


@dataclass(frozen=True)
class SequenceOptions:
    """How an agent that infers over time (``aif.sequence``) carries its past and weighs its evidence.

    Attributes:
        prior: the prior over the first state of a window that no longer starts the trial. ``"policy"``:
            each policy's own belief about the previous window's first step, used as is (SPM's vbx test,
            pymdp.legacy's ``policy_sep_prior=True``); ``"average"``: that belief averaged over policies
            with the q(pi) of the step that produced it (pymdp.legacy's default, ``use_BMA=True``).
        vfe_sign: ``"spm"``: ``q(pi) = softmax(-gamma G - F + ln E)``; ``"pymdp_legacy"``:
            ``softmax(-gamma G + F + ln E)`` (pymdp.legacy's Agent; module docstring).
        C_time: which column of a time-varying C scores each step: ``"absolute"`` (column ``tau`` for
            time ``tau`` of the episode, SPM) or ``"relative"`` (column 0 for the present, pymdp.legacy).
        precision: ``aif.Precision(beta=...)`` to infer the policy precision at every step under its Gamma prior
            (SPM's ``MDP.beta``; ``aif.precision``) instead of holding the Agent's ``gamma`` fixed; needs
            ``vfe_sign="spm"``. The agent then keeps ``gamma_trace`` (one ``(num_iter,)`` array per step: SPM's
            ``wn``), ``gamma`` (the precision after the last step) and ``aif.dopamine`` of the trace is SPM's ``dn``.
            With ``policies="moving"`` every policy shares the past, so ``F`` barely separates them and the
            precision hardly moves (SPM fixes it for its moving policies, ``MDP.U``).
        policies: ``"moving"``: a policy is the next ``policy_horizon`` actions after the past all policies share
            (pymdp.legacy; SPM's ``MDP.U``); ``"trial"``: a policy is a sequence over the whole trial, past
            included (SPM's ``MDP.V``): the Agent's ``policies`` are ``(P, trial_length - 1, num_factors)``, each
            policy's beliefs cover the trial with its own past actions (``aif.sequence.infer_trial``), its ``F``
            says how well that sequence explains the outcomes so far, and at step ``t`` it acts ``policies[:, t]``.
            Needs ``trial_length`` and ``inference_horizon == trial_length``.
        carry: with ``policies="trial"``, the beliefs each step starts from are the last step's, softened as
            ``softmax(ln q / carry)`` (SPM's ``MDP.erp``, 4; "resetting of initial states").
        start: with ``policies="moving"``, the beliefs the message passing starts from at a trial's first step:
            ``"uniform"`` (pymdp.legacy), or ``"prior"``: the prior at the first step and uniform beliefs after it,
            softened by ``carry`` (SPM's ``spm_MDP_VB_X`` with moving policies, ``MDP.U``, whose ``x`` holds ``D``
            at the first step). Later steps start from uniform beliefs either way.
        zeta: with ``policies="trial"``, Occam's window (SPM's ``MDP.zeta``; SPM's default is 3): from the second step
            on, the policies whose q(pi) at the last step fell more than ``zeta`` nats below the best one's are dropped
            for the rest of the trial. A dropped policy is not inferred (its beliefs stay those it would start from),
            its q(pi) is 0, its ``F`` and ``G`` are ``+inf`` and its EFE terms NaN (SPM leaves its ``F`` and ``G``
            at 0). ``None``: every policy stays (SPM with ``zeta = inf``).
        record: keep what SPM plots as neuronal responses: ``agent.traces``, the message passing's
            ``SequenceTrace`` of each step (beliefs and prediction errors per iteration and policy), and with
            ``precision`` ``agent.q_pi_trace``, q(pi) at each of its iterations per step; ``neuronal_responses``
            turns them into SPM's ``xn``, ``vn`` and ``un``.
    """

    prior: str = "policy"
    vfe_sign: str = "spm"
    C_time: str = "absolute"
    precision: Precision | None = None
    policies: str = "moving"
    carry: float = 4.0
    record: bool = False
    zeta: float | None = None
    start: str = "uniform"

    def __post_init__(self) -> None:
        check_choice(self.prior, "SequenceOptions.prior", ("policy", "average"))
        check_choice(self.vfe_sign, "SequenceOptions.vfe_sign", VFE_SIGNS)
        check_choice(self.C_time, "SequenceOptions.C_time", ("absolute", "relative"))
        if self.precision is not None and not isinstance(self.precision, Precision):
            raise ParameterError(f"SequenceOptions.precision must be an aif.Precision or None, got {self.precision!r}")
        if self.precision is not None and self.vfe_sign != "spm":
            raise ParameterError("SequenceOptions.precision is SPM's update, which weighs F with SPM's sign: "
                                 "it needs vfe_sign='spm'")
        check_choice(self.policies, "SequenceOptions.policies", ("moving", "trial"))
        check_positive(self.carry, "SequenceOptions.carry")
        check_choice(self.start, "SequenceOptions.start", ("uniform", "prior"))
        if not isinstance(self.record, (bool, np.bool_)):
            raise ParameterError(f"SequenceOptions.record must be True or False, got {self.record!r}")
        if self.zeta is not None:
            check_positive(self.zeta, "SequenceOptions.zeta")
            if self.policies != "trial":
                raise ParameterError("SequenceOptions.zeta (Occam's window) drops policies over the trial: it needs "
                                     "policies='trial' (SPM has none for its moving policies, MDP.U)")

    @classmethod
    def pymdp_legacy(cls, policy_sep_prior: bool = False) -> "SequenceOptions":
        """pymdp.legacy's Agent with ``inference_algo="MMP"`` and its ``policy_sep_prior`` (default False)."""
        return cls(prior="policy" if policy_sep_prior else "average", vfe_sign="pymdp_legacy", C_time="relative")

    @classmethod
    def spm(cls, precision: Precision | None = None, zeta: float | None = None) -> "SequenceOptions":
        """SPM's ``spm_MDP_VB_X`` with sequential policies (``MDP.V``): policies over the whole trial, beliefs carried
        between steps with ``erp = 4``, C by absolute time, and the precision inferred (``Precision()``, beta = 1;
        pass another, or ``None`` for ``OPTIONS.gamma``'s fixed precision: set the Agent's ``gamma = 1/beta``).
        ``zeta``: Occam's window (``3`` is SPM's default; ``None`` keeps every policy, as ``MDP.zeta = inf``)."""
        return cls(policies="trial", precision=Precision() if precision is None else precision, zeta=zeta)


# The EFE of spm_MDP_VB_X: expected utility of ln softmax(C) and spm_MDP_G's information gain about states under the
# joint outcome, every log as ln(x + exp(-16)) there (ln(x + 1e-16) for C), the states below exp(-16) left out
SPM_TERMS = (Utility(), InfoGain(joint=True))
SPM_EFE = EFEOptions(normalize_C=True, guards=replace(Guards.pymdp_legacy(), joint_likelihood=LEGACY_G,
                                                      outcome=LEGACY_G))


def sequence_expected_free_energy(model: GenerativeModel, qs_future: Sequence[np.ndarray], policies: np.ndarray,
                                  terms: Sequence[Term] = DEFAULT_TERMS, options: EFEOptions | None = None,
                                  C_time: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Expected free energy of every policy from its own beliefs, summed from the present to the horizon.

    Args:
        model: the generative model.
        qs_future: ``qs_future[f]`` of shape ``(P, H + 1, S_f)``: each policy's beliefs about factor ``f``
            at the present (index 0) and at each of its ``H`` future steps, e.g. ``q[:, W - 1:]`` for
            ``q`` in ``infer_sequence``'s ``qs_seq``.
        policies: ``(P, H, num_factors)`` int: the actions between those steps (used by
            ``pB_info_gain``, the information gain of each transition ``tau -> tau + 1``).
        terms: the terms that make up G, as in ``expected_free_energy``.
        options: ``EFEOptions`` (C normalisation, information-gain and log conventions).
        C_time: the column of a time-varying C (``(num_obs[m], T)``) that scores the present; step ``k``
            uses column ``min(C_time + k, T - 1)``. SPM indexes C by absolute time (``C_time = t``);
            pymdp.legacy's Agent by the step within this sum (``C_time = 0``).

    Returns:
        ``(G, terms)``: ``G`` of shape ``(P,)``, lower is better; ``terms`` a dict of ``(P,)`` arrays
        (``risk``, ``ambiguity``, ``utility``, ``state_info_gain`` and the parameter terms asked for), each
        summed over the ``H + 1`` steps (parameter information gain about B over the ``H`` transitions).
    """
    options = EFEOptions() if options is None else options
    terms = check_terms(terms)
    qs_future, policies = check_future(model, qs_future, policies)
    C_time = check_index(C_time, "C_time")
    check_counts(model, terms)
    P, K = qs_future[0].shape[:2]
    check_efe_size(model, P, K, terms, options, rows=K)
    flat = [q.reshape(P * K, -1) for q in qs_future]  # every (policy, step) is one row: (P K, S_f)
    root = [np.repeat(q[:, 0], K, axis=0) for q in qs_future]
    steps = C_time + np.tile(np.arange(K), P)
    per_row = [x for x in terms if not (isinstance(x, Novelty) and x.param == "B")]
    out = {name: value.reshape(P, K).sum(axis=1)
           for name, value in step_terms(model, flat, None, root, None, steps, per_row, options).items()}
    for term in terms:
        if isinstance(term, Novelty) and term.param == "B":  # the K - 1 transitions k -> k + 1 of every policy
            before = [q[:, :-1].reshape(P * (K - 1), q.shape[-1]) for q in qs_future]
            after = [q[:, 1:].reshape(P * (K - 1), q.shape[-1]) for q in qs_future]
            actions = policies.reshape(P * (K - 1), model.num_factors)
            gain = pB_info_gain(model.pB, after, before, actions,  # type: ignore[arg-type]
                                model.B_dependencies, wnorm=term.wnorm)
            out[term.key] = gain.reshape(P, K - 1).sum(axis=1)
    return combine(out, terms, [q[:, -1] for q in qs_future], K - 1), out


def sequence_policy_posterior(G: ArrayLike, F: ArrayLike, E: ArrayLike | None = None, gamma: float = 16.0,
                              vfe_sign: str = "spm") -> np.ndarray:
    """q(pi) = softmax(-gamma G - F + ln E) (``vfe_sign="spm"``) or with ``+ F`` (``"pymdp_legacy"``).

    Args:
        G: expected free energies ``(P,)``, lower is better.
        F: variational free energies of the policies' windows ``(P,)`` (``infer_sequence``), lower is better.
        E: prior over policies ``(P,)``; uniform when absent. A zero entry rules a policy out.
        gamma: policy precision.
        vfe_sign: see ``SequenceOptions``.
    """
    gamma = check_positive(gamma, "gamma")
    G, F = as_numbers(G, "G", ParameterError), as_numbers(F, "F", ParameterError)
    if G.ndim != 1 or F.shape != G.shape:
        raise ParameterError(f"G and F must both have shape (num_policies,), got {G.shape} and {F.shape}")
    for name, x in (("G", G), ("F", F)):
        if not np.isfinite(x).all():
            raise ParameterError(f"{name} has a non-finite entry at index {first_index(~np.isfinite(x))}")
    check_choice(vfe_sign, "vfe_sign", VFE_SIGNS)
    return softmax(-gamma * G + (F if vfe_sign == "pymdp_legacy" else -F) + check_log_habits(E, len(G)))


def policy_average(qs_t: Sequence[np.ndarray], q_pi: ArrayLike) -> list[np.ndarray]:
    """The Bayesian model average of policy-conditioned beliefs: ``sum_pi q(pi) q(s_f | pi)`` per factor.

    Args:
        qs_t: ``qs_t[f]`` of shape ``(P, S_f)``, each policy's belief about one time step.
        q_pi: ``(P,)`` weights (a distribution over policies).

    Returns:
        one vector ``(S_f,)`` per factor.
    """
    q_pi = as_numbers(q_pi, "q_pi", PolicyError)
    qs_t = [as_numbers(q, f"qs_t[{f}]", BeliefError) for f, q in enumerate(check_sequence(qs_t, "qs_t", BeliefError))]
    for f, q in enumerate(qs_t):
        if q.ndim != 2 or q_pi.ndim != 1 or q.shape[0] != q_pi.shape[0]:
            raise BeliefError(f"qs_t[{f}] has shape {q.shape} and q_pi {q_pi.shape}: expected (P, S_f) and (P,)")
        check_probability(q, f"qs_t[{f}]", BeliefError)
    check_probability(q_pi, "q_pi", PolicyError)
    return [q_pi @ q for q in qs_t]


def neuronal_responses(traces: Sequence[SequenceTrace], q_pi: ArrayLike) -> tuple[list, list]:
    """SPM's simulated neuronal responses over a trial (``spm_MDP_VB_X``'s ``MDP.xn``, ``MDP.vn``): at each step, the
    beliefs and prediction errors of every iteration of the message passing, averaged over policies with that
    step's q(pi).

    Args:
        traces: one ``SequenceTrace`` per step ``t`` (``agent.traces`` with ``SequenceOptions(record=True)``), each
            over the same ``L`` steps (SPM's policies over the trial: ``L = T``).
        q_pi: ``(T, P)``, q(pi) at each step (SPM's ``MDP.R`` transposed).

    Returns:
        ``(xn, vn)``: ``xn[f]`` and ``vn[f]`` of shape ``(num_iter, S_f, L, T)``, SPM's ``MDP.xn{f}`` and ``MDP.vn{f}``
        (iteration, state, the step believed about, the step at which it was believed).
    """
    q_pi = as_numbers(q_pi, "q_pi", PolicyError)
    traces = list(traces)
    if q_pi.ndim != 2 or q_pi.shape[0] != len(traces) or len({tr.qs[0].shape for tr in traces}) > 1:
        raise BeliefError(f"neuronal_responses needs one trace per step, all over the same steps, and q_pi of shape "
                          f"(T, P); got {len(traces)} traces of shapes {sorted({tr.qs[0].shape for tr in traces})} "
                          f"and q_pi {q_pi.shape}")

    def averaged(kind: str) -> list:
        return [np.stack([np.einsum("ipls,p->isl", getattr(tr, kind)[f], q)
                          for tr, q in zip(traces, q_pi, strict=True)], axis=-1) for f in range(len(traces[0].qs))]

    return averaged("qs"), averaged("err")


def _initial(term: Term) -> bool:
    """Whether ``term`` is the novelty of D, which only the trial mode scores (``pD_info_gain``)."""
    return isinstance(term, Novelty) and term.param == "D"


class SequenceCycle:
    """How an ``aif.Agent`` whose inference is a ``SequenceInference`` runs its cycle on a window.

    ``infer_states`` calls ``infer_sequence`` with the last ``inference_horizon`` observations, the actions
    between them, the policies cut to the steps left in the trial (none at its last step) and a prior over the
    window's first state, and weighs the policies' present beliefs by their evidence alone; ``infer_policies``
    scores each policy from its own beliefs and weighs in the window's ``F``. While the window starts the trial
    its prior is ``D``; once it has moved, SPM's test script (vbx_test_1a) and pymdp.legacy's Agent pass each
    policy the belief it held about the *previous* window's first step, unchanged (not pushed through ``B``),
    although it is a belief about one step earlier (``SequenceOptions.prior``). The window's observations,
    actions, beliefs ``qs_seq``, ``F``, ``present`` and ``policy_weights`` are kept on the agent.

    With ``SequenceOptions(policies="trial")`` it is SPM's ``spm_MDP_VB_X`` with sequential policies instead: the
    window is the trial so far, every policy keeps its own past (``infer_trial``) and starts each step from its
    beliefs of the last one (softened by ``carry``), the policies act ``policies[:, t]`` at step ``t``
    (``choices``), q(pi) is kept per step, and offline learning at the trial's end is SPM's (``learn_trial``).
    """

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        if agent.planner is not None:
            raise ParameterError(f"planner = {agent.planner!r} is not supported with an inference method over time "
                                 f"({type(agent.inference).__name__})")
        self.trial = agent.sequence.policies == "trial"
        if self.trial and (agent.trial_length is None or agent.policies.shape[1] != agent.trial_length - 1
                           or agent.inference_horizon != agent.trial_length):
            raise ParameterError(f"SequenceOptions(policies='trial') needs trial_length T, policies over the whole "
                                 f"trial (P, T - 1, num_factors) and inference_horizon = T; got trial_length = "
                                 f"{agent.trial_length}, policies of horizon {agent.policies.shape[1]} and "
                                 f"inference_horizon = {agent.inference_horizon}")
        if any(_initial(t) for t in agent.efe_terms) and not (self.trial and agent.model.pD is not None):
            raise ParameterError("Novelty('D') scores each policy's belief about the trial's first step: it needs "
                                 "SequenceOptions(policies='trial') and a model with pD")
        P, H = agent.policies.shape[:2]  # each policy's beliefs over the window and the steps ahead
        K = agent.inference_horizon + H
        check_efe_size(agent.model, P, K, agent.efe_terms, agent.efe, rows=K)

    def reset(self) -> None:
        a = self.agent
        a.obs_window, a.actions_window = [], []
        a.qs_seq = a.F = a.present = None
        a.policy_weights = None  # q(pi) of the window's policies, or their evidence alone before infer_policies
        precision = a.sequence.precision
        if precision is not None:  # every trial starts from the prior: rate beta, gamma = 1 / beta
            self.rate = precision.beta
            a.gamma, a.gamma_trace = 1.0 / precision.beta, []
        self.beliefs: list | None = None  # with policies over the trial: the beliefs the next step starts from
        self.kept: np.ndarray | None = None  # with policies over the trial: (P,) the policies Occam's window kept
        self.q_pi_steps: list = []  # with policies over the trial: q(pi) at each step (SPM's u(:, t))
        if a.sequence.record:
            a.traces, a.q_pi_trace = [], []

    def infer_states(self, obs: Any) -> list:
        a = self.agent
        if a.trial_length is not None and a.t >= a.trial_length:
            raise CallOrderError(f"the trial has {a.trial_length} observations and this would be observation "
                                 f"{a.t + 1}: call reset() to start a new trial")
        if self.trial:
            return self._infer_trial(obs)
        steps_left = a.policy_horizon if a.trial_length is None else a.trial_length - 1 - a.t
        window = (a.obs_window + [obs])[-a.inference_horizon :]
        actions = np.array(a.actions_window[len(a.actions_window) - (len(window) - 1) :], dtype=int)
        actions = actions.reshape(len(window) - 1, a.model.num_factors)
        policies = a.policies[:, : min(a.policy_horizon, steps_left)]
        init = None
        if a.sequence.start == "prior" and not a.obs_window:  # SPM's x at a trial's start: D at the first step
            init = self._start(policies.shape[0], 1 + policies.shape[1])
        found = infer_sequence(a.model, window, actions, policies, a.prior, a.inference,
                               return_trace=a.sequence.record, init=init)
        a.qs_seq, a.F = self._keep(found)
        a.obs_window, a.actions_window, a.present = window, list(actions), len(window) - 1
        # until G is known, the policies are weighed by their evidence alone
        a.policy_weights = sequence_policy_posterior(np.zeros_like(a.F), a.F, a.model.E, a.gamma, a.sequence.vfe_sign)
        return policy_average([q[:, a.present] for q in a.qs_seq], a.policy_weights)

    def _infer_trial(self, obs: Any) -> list:
        """SPM's step with policies over the whole trial: every policy's beliefs about all of it, from the last
        step's softened, with each policy's own past actions."""
        a = self.agent
        P = a.policies.shape[0]
        if self.kept is None or not a.obs_window:
            self.kept = np.ones(P, dtype=bool)
        if a.sequence.zeta is not None and a.obs_window:  # Occam's window on the last step's q(pi) (SPM's log)
            with np.errstate(divide="ignore"):
                ln_q = np.log(self.q_pi_steps[len(a.obs_window) - 1])
            self.kept = self.kept & (ln_q - ln_q[self.kept].max() > -a.sequence.zeta)
        kept = self.kept
        start = self._start(P, a.trial_length) if self.beliefs is None else [
            softmax(a.inference.guard(q) / a.sequence.carry) for q in self.beliefs]
        window = a.obs_window + [obs]
        found = infer_trial(a.model, window, a.policies[kept], [q[kept] for q in start], a.inference,
                            return_trace=a.sequence.record, prior=[np.asarray(p) for p in a.prior])
        if not kept.all():  # the dropped policies keep the beliefs they started from, and F = +inf
            qs_seq = [q.copy() for q in start]
            for q, q_kept in zip(qs_seq, found[0], strict=True):
                q[kept] = q_kept
            traced = []
            if a.sequence.record:  # (num_iter, P, L, S_f) per factor: the start's beliefs, no prediction error
                n = found[2].qs[0].shape[0]
                traced = [SequenceTrace(
                    qs=[self._spread(x, np.broadcast_to(q, (n, *q.shape)), 1)
                        for x, q in zip(found[2].qs, start, strict=True)],
                    err=[self._spread(x, np.zeros((n, *q.shape)), 1)
                         for x, q in zip(found[2].err, start, strict=True)])]
            found = (qs_seq, self._spread(found[1], np.full(P, np.inf)), *traced)
        a.qs_seq, a.F = self._keep(found)
        self.beliefs, a.obs_window, a.present = a.qs_seq, window, len(window) - 1
        a.policy_weights = self._spread(sequence_policy_posterior(np.zeros(kept.sum()), a.F[kept], self._habits(),
                                                                  a.gamma, a.sequence.vfe_sign), np.zeros(P))
        self.q_pi_steps = self.q_pi_steps[: a.present] + [a.policy_weights]
        return policy_average([q[:, a.present] for q in a.qs_seq], a.policy_weights)

    def _start(self, P: int, L: int) -> list:
        """SPM's beliefs at a trial's start, ``(P, L, S_f)`` per factor: the prior at the first step, uniform after
        it, softened as ``softmax(ln x / carry)`` (its ``erp`` reset of ``x``)."""
        a = self.agent
        x = [np.full((P, L, s), 1.0 / s) for s in a.model.num_states]
        for q, d in zip(x, a.prior, strict=True):
            q[:, 0] = d
        return [softmax(a.inference.guard(q) / a.sequence.carry) for q in x]

    def _spread(self, values: np.ndarray, fill: np.ndarray, axis: int = 0) -> np.ndarray:
        """``fill`` (its ``axis`` over all policies) with ``values`` at the policies Occam's window kept."""
        out = fill.copy()
        index: list[Any] = [slice(None)] * out.ndim
        index[axis] = self.kept
        out[tuple(index)] = values
        return out

    def _habits(self) -> np.ndarray | None:
        """E over the policies Occam's window kept, renormalised (q(pi) is a softmax: the same as SPM's ``ln E`` of
        those policies); ``None``: uniform."""
        E = self.agent.model.E
        return None if E is None or self.kept is None else E[self.kept] / E[self.kept].sum()

    def _keep(self, found: tuple) -> tuple:
        """``(qs_seq, F)`` of an inference over time; its trace kept on the agent with ``SequenceOptions.record``."""
        a = self.agent
        if a.sequence.record:
            a.traces = a.traces[: a.t] + [found[2]]
        return found[0], found[1]

    def choices(self) -> np.ndarray:
        """The policies' actions from now on, ``(P, H, num_factors)``: the first is the action each would take."""
        a = self.agent
        return a.policies[:, a.t :] if self.trial else a.policies

    def infer_policies(self) -> tuple[np.ndarray, np.ndarray, dict]:
        a = self.agent
        # every policy, or with policies over the trial those Occam's window kept
        kept = self.kept if self.trial and self.kept is not None else np.ones(len(a.policies), dtype=bool)
        future = [q[kept, a.present :] for q in a.qs_seq]
        C_time = a.t if a.sequence.C_time == "absolute" else 0
        G, terms = sequence_expected_free_energy(a.model, future, self.choices()[kept, : future[0].shape[1] - 1],
                                                 [t for t in a.efe_terms if not _initial(t)], a.efe, C_time)
        for term in filter(_initial, a.efe_terms):  # SPM's novelty of pD, each policy's belief about the first step
            terms[term.key] = pD_info_gain(a.model.pD, [q[kept, 0] for q in a.qs_seq], term.wnorm)
            G = G + term.sign * terms[term.key]
        F, E = a.F[kept], a.model.E if kept.all() else self._habits()
        precision = a.sequence.precision
        if precision is None:
            q_pi = sequence_policy_posterior(G, F, E, a.gamma, a.sequence.vfe_sign)
        else:  # q(pi) and gamma together, gamma's posterior rate carried from the previous step
            step = update_precision(G, F, check_log_habits(E, len(G)), self.rate, precision.beta, precision.num_iter)
            self.rate, q_pi, a.gamma = step.rate, step.q_pi, 1.0 / step.rate
            a.gamma_trace = a.gamma_trace + [step.gamma]
            if a.sequence.record:
                a.q_pi_trace = a.q_pi_trace + [step.q_pi_iter if kept.all() else self._spread(
                    step.q_pi_iter, np.zeros((len(step.gamma), len(kept))), axis=1)]
        if not kept.all():  # the dropped policies: q(pi) 0, G +inf, their terms not computed
            q_pi, G = self._spread(q_pi, np.zeros(len(kept))), self._spread(G, np.full(len(kept), np.inf))
            terms = {name: self._spread(x, np.full(len(kept), np.nan)) for name, x in terms.items()}
        self.adopt(q_pi)
        return q_pi, G, terms

    def adopt(self, q_pi: np.ndarray) -> None:
        """The policy posterior ``(P,)`` is ``q_pi``: the present belief is the policies' average under it."""
        a = self.agent
        a.policy_weights = q_pi
        a.qs = policy_average([q[:, a.present] for q in a.qs_seq], q_pi)
        if self.trial:
            self.q_pi_steps[a.present] = q_pi

    def next_prior(self) -> list:
        """After an action: the prior over the next window's first state (``SequenceOptions.prior``)."""
        a = self.agent
        a.actions_window.append(a.action)
        if self.trial or len(a.obs_window) < a.inference_horizon:
            return a.prior  # the next window still starts the trial: its prior stays the initial one
        first = [q[:, 0] for q in a.qs_seq]  # each policy's belief about this window's first step
        return first if a.sequence.prior == "policy" else policy_average(first, a.q_pi)

    def final_beliefs(self, recorded: list) -> list:
        """The beliefs to learn from, one list per recorded step: the window's beliefs about the steps it covers,
        averaged over policies (by q(pi), or by their evidence before ``infer_policies``), the recorded present
        beliefs before it."""
        a = self.agent
        if a.qs_seq is None:
            return recorded
        covered = min(len(a.obs_window), len(recorded))
        window = [policy_average([q[:, t] for q in a.qs_seq], a.policy_weights)
                  for t in range(a.present + 1 - covered, a.present + 1)]
        return recorded[: len(recorded) - covered] + window

    def learn(self) -> Any:
        raise ParameterError("learn() needs Learning settings: Agent(..., learning=aif.Learning(...))")

    def learn_trial(self, observations: list, initial: dict) -> GenerativeModel:
        """With policies over the trial, the Agent's ``Learning`` at the trial's end is SPM's (``aif.learn_trial``):
        A and D from the beliefs averaged with the last q(pi), B from each policy's own pairwise beliefs weighted by
        the q(pi) of each step, C from the trial's outcomes, E from the last q(pi). ``observations``: the trial's;
        ``initial``: the counts forgetting decays towards."""
        a = self.agent
        L = a.learning
        if a.qs_seq is None or a.present != a.trial_length - 1:
            raise CallOrderError(f"learning with policies over the trial happens at its end: {a.t + 1} of "
                                 f"{a.trial_length} observations so far")
        model, q_pi = a.model, np.array(self.q_pi_steps)
        towards = initial if L.forget_to_prior else {}
        for name in "ABDCE":
            which = None if name == "E" else L.chosen(name)
            if not getattr(L, f"learn_{name}") or (which is not None and len(which) == 0):
                continue
            key, lr = f"p{name}", L.rate(name)
            old = getattr(model, key)
            new = learn_trial({key: old}, observations, a.qs_seq, q_pi, a.policies, lr=lr, lr_D=lr,
                              forgetting=L.forgetting, A_dependencies=model.A_dependencies,
                              B_dependencies=model.B_dependencies, mask_zeros=L.mask_zeros,
                              prior={key: towards[key]} if towards.get(key) is not None else None)[key]
            if name != "E":  # the modalities or factors not chosen keep their counts
                new = [n if which is None or i in which else o for i, (n, o) in enumerate(zip(new, old, strict=True))]
            model = model.replace(**{key: new, name: None})
        return model


__all__ = ["SequenceOptions", "sequence_expected_free_energy", "sequence_policy_posterior", "policy_average",
           "SequenceCycle", "SPM_TERMS", "SPM_EFE", "neuronal_responses"]

