"""The Agent: a thin stateful shell over the cycle's pure functions.

One step: ``infer_states`` (posterior from the observation and the carried prior), ``infer_policies``
(EFE of every policy and q(pi)), ``sample_action``, then the prior for the next step is ``predict(qs, u)``.
The Agent holds settings and the current beliefs; every equation lives in ``inference`` and ``control``.

With a method that infers over time (an ``aif.strategies.SequenceInference``: ``MarginalMessagePassing``,
``VariationalMessagePassing``) the same cycle runs on a window: ``infer_states`` calls ``infer_sequence`` with the
last ``inference_horizon`` observations and the actions between them, ``infer_policies`` scores each policy
from its own beliefs (``sequence_control``) and weighs in the window's free energy ``F``, and
``sample_action`` carries the prior of the next window (``SequenceOptions.prior``) instead of ``predict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from .checks import check_beliefs, check_policies, check_positive
from .control import enumerate_policies, expected_free_energy, policy_posterior, predict, select_action
from .efe import DEFAULT_TERMS, EFEOptions
from .errors import CallOrderError, ParameterError, PolicyError, StrategyError
from .inference import FixedPoint, infer_states
from .model import GenerativeModel
from .sequence import MarginalMessagePassing, infer_sequence
from .sequence_control import SequenceOptions, policy_average, sequence_expected_free_energy, sequence_policy_posterior
from .strategies import NUMPY, Learner, Planner, SequenceInference, StateInference, require


@dataclass(frozen=True)
class Selection:
    """How an action is chosen from q(pi).

    Attributes:
        mode: ``"deterministic"`` (argmax) or ``"stochastic"`` (sample softmax(alpha ln p)).
        sampling: ``"full"`` (choose a policy, take its first action) or ``"marginal"`` (per factor, from
            the marginal over first actions).
    """

    mode: str = "deterministic"
    sampling: str = "full"

    def __post_init__(self):
        if self.mode not in ("deterministic", "stochastic"):
            raise ParameterError(f"Selection.mode must be 'deterministic' or 'stochastic', got {self.mode!r}")
        if self.sampling not in ("full", "marginal"):
            raise ParameterError(f"Selection.sampling must be 'full' or 'marginal', got {self.sampling!r}")


@dataclass(frozen=True)
class Learning(Learner):
    """Dirichlet learning of the model's counts (``aif.learning``).

    Attributes:
        lr: learning rate (counts added per observation), >= 0.
        forgetting: factor in (0, 1] applied to the old counts before each update (1 = none).
        learn_A, learn_B, learn_D: which counts to update (each needs the model's pA / pB / pD).
        online: update after every observation (``True``) or only when ``learn()`` is called, from the
            episode recorded since the last ``reset`` (``False``). D is learned from the episode's first
            posterior in both cases, at ``learn()`` or ``reset()``.
        forget_to_prior: with ``forgetting < 1``, old counts decay towards the model's initial counts
            (``True``) rather than towards zero (``False``), so counts the agent never revisits stay at their
            prior instead of shrinking to nothing (and their novelty growing without bound).
            The price: forgetting caps the evidence a column holds at about ``lr / (1 - forgetting)``
            observations while the prior keeps its full weight: give a weak prior (small counts), or forget
            towards zero and accept the growing novelty (measured in benchmarks/results/soak_forgetting.md).
    """

    lr: float = 1.0
    forgetting: float = 1.0
    learn_A: bool = True
    learn_B: bool = True
    learn_D: bool = False
    online: bool = True
    forget_to_prior: bool = True

    def __post_init__(self):
        if not (np.isfinite(self.lr) and self.lr >= 0):
            raise ParameterError(f"Learning.lr must be >= 0 and finite, got {self.lr}")
        if not 0 < self.forgetting <= 1:
            raise ParameterError(f"Learning.forgetting must be in (0, 1], got {self.forgetting}")


def preset_settings(name: str, sampling: str, mode: str = "deterministic", **kwargs: Any) -> dict:
    """Agent keyword arguments with the settings of pymdp.legacy's (``"pymdp_legacy"``) or pymdp 1.0's
    (``"pymdp"``) agent, plus ``kwargs``; shared by ``aif.Agent`` and ``aif_deep.Agent``'s presets."""
    inference, efe = {"pymdp_legacy": (FixedPoint.pymdp_legacy(), EFEOptions.pymdp_legacy()),
                      "pymdp": (FixedPoint.pymdp(), EFEOptions.pymdp())}[name]
    return dict(inference=inference, efe=efe, selection=Selection(mode, sampling), **kwargs)


@dataclass
class Agent:
    """An active-inference agent for a ``GenerativeModel``.

    Args:
        model: the generative model.
        policy_horizon: length of the enumerated policies (ignored when ``policies`` is given).
        gamma: policy precision in q(pi) = softmax(-gamma G + ln E).
        alpha: action precision for stochastic selection.
        inference: state-inference method (``FixedPoint()`` by default).
        efe: ``EFEOptions`` (conventions for the EFE terms).
        efe_terms: names of the EFE terms that make up G (see ``expected_free_energy``).
        selection: ``Selection`` (deterministic / stochastic, full / marginal).
        policies: explicit policies ``(P, H, num_factors)``; enumerated when absent.
        control_factors: factors whose actions the enumerated policies vary (all by default).
        rng: ``np.random.Generator`` for stochastic selection.
        learning: ``Learning`` settings; the model's Dirichlet counts are updated and its A/B/D are their
            means. ``None``: the model is fixed.
        planner: an ``aif.planning`` planner (``plan(model, qs) -> Plan``) used instead of enumerating
            ``policies``; q(pi) is then formed over the plan's policies or first actions.
        inference_horizon: with a method that infers over time, the number ``W`` of observations in the
            backward window (the present and ``W - 1`` before it); 1 for one-step methods.
        trial_length: with a method that infers over time, the number ``T`` of observations in a trial:
            at step ``t`` the policies are cut to the ``T - 1 - t`` steps left (none at the last step, as
            SPM). ``None``: an open-ended episode, every policy at its full horizon (pymdp.legacy).
        sequence: ``SequenceOptions`` (the prior of a moved window, the sign of F in q(pi), C's clock).

    Attributes (after a step): ``qs`` (posterior), ``prior`` (the prior used for the next observation),
    ``q_pi``, ``G``, ``terms`` (dict of EFE terms per policy), ``action``, ``t`` (steps taken). With a
    method that infers over time, also ``qs_seq`` (``qs_seq[f]`` of shape ``(P, W + H, S_f)``, each policy's
    beliefs over the window and its future; the present is step ``present``) and ``F`` (``(P,)``, the
    free energy of each policy's window); ``qs`` is then the present belief averaged over policies with
    q(pi) (the Bayesian model average; after ``infer_states`` alone, with q(pi) from ``F`` and ``E`` only),
    and ``prior`` is the prior over the next window's first state (one ``(S_f,)`` or ``(P, S_f)`` per factor).
    """

    model: GenerativeModel
    policy_horizon: int = 1
    gamma: float = 16.0
    alpha: float = 16.0
    inference: StateInference | SequenceInference = field(default_factory=FixedPoint)
    efe: EFEOptions = field(default_factory=EFEOptions)
    efe_terms: tuple = DEFAULT_TERMS
    selection: Selection = field(default_factory=Selection)
    policies: np.ndarray = None  # type: ignore[assignment]  # enumerated when None
    control_factors: list | None = None
    rng: np.random.Generator | None = None
    learning: Learning | None = None
    planner: Planner | None = None
    inference_horizon: int = 1
    trial_length: int | None = None
    sequence: SequenceOptions = field(default_factory=SequenceOptions)

    def __post_init__(self):
        for name, kind in (("selection", Selection), ("efe", EFEOptions)):
            if not isinstance(getattr(self, name), kind):
                raise StrategyError(f"{name} must be an aif.{kind.__name__}, got {getattr(self, name)!r}")
        self._over_time = isinstance(self.inference, SequenceInference)
        require(self.inference, SequenceInference if self._over_time else StateInference, "inference", NUMPY)
        require(self.planner, Planner, "planner", NUMPY, optional=True)
        require(self.learning, Learner, "learning", NUMPY, optional=True)
        if self.rng is not None and not isinstance(self.rng, np.random.Generator):
            raise TypeError(f"rng must be a np.random.Generator, got {type(self.rng).__name__}")
        if not isinstance(self.model, GenerativeModel):
            raise TypeError(f"model must be an aif.GenerativeModel, got {type(self.model).__name__}")
        self._check_time_settings()
        self.gamma = check_positive(self.gamma, "gamma")
        self.alpha = check_positive(self.alpha, "alpha")
        if self.policies is None:
            self.policies = enumerate_policies(self.model.num_controls, self.policy_horizon, self.control_factors)
        self.policies = check_policies(self.model, self.policies)
        if self.policies.shape[1] == 0:
            raise PolicyError(f"policies have horizon 0 (shape {self.policies.shape}); a policy takes at least "
                              "one step")
        self.policy_horizon = self.policies.shape[1]
        if self.model.E is not None and self.model.E.shape != (len(self.policies),):
            raise ParameterError(f"model.E has {self.model.E.shape[0]} entries but the agent has "
                                 f"{len(self.policies)} policies")
        if self.selection.mode == "stochastic" and self.rng is None:
            raise ParameterError("stochastic selection needs rng (a np.random.Generator)")
        # The counts the agent started with: forgetting decays learned counts back towards them.
        self.initial_counts = {name: getattr(self.model, name) for name in ("pA", "pB", "pD")}
        if self.learning is not None:
            for name in ("A", "B", "D"):
                if getattr(self.learning, f"learn_{name}") and getattr(self.model, f"p{name}") is None:
                    raise ParameterError(f"Learning.learn_{name} needs Dirichlet counts: the model has no p{name}")
        self.reset()

    def _check_time_settings(self):
        W, T = self.inference_horizon, self.trial_length
        if not (isinstance(W, (int, np.integer)) and W >= 1):
            raise ParameterError(f"inference_horizon must be a positive integer, got {W!r}")
        if T is not None and not (isinstance(T, (int, np.integer)) and T >= 1):
            raise ParameterError(f"trial_length must be None or a positive integer, got {T!r}")
        if self._over_time:
            if self.planner is not None:
                raise ParameterError("a planner scores one current belief: it cannot be combined with an "
                                     f"inference method over time ({type(self.inference).__name__})")
            if self.learning is not None:
                raise ParameterError("learning is not supported yet with an inference method over time "
                                     f"({type(self.inference).__name__})")
        elif W != 1 or T is not None:
            raise ParameterError(f"inference_horizon = {W} and trial_length = {T} need an inference method over "
                                 f"time (MarginalMessagePassing, VariationalMessagePassing), got "
                                 f"{type(self.inference).__name__}")

    @classmethod
    def pymdp_legacy(cls, model: GenerativeModel, policy_horizon: int = 1, sampling: str = "marginal",
                     **kwargs: Any) -> "Agent":
        """The settings of pymdp.legacy's ``Agent`` (its FPI, its EFE guards, marginal action selection)."""
        return cls(model, policy_horizon, **preset_settings("pymdp_legacy", sampling, **kwargs))

    @classmethod
    def pymdp(cls, model: GenerativeModel, policy_horizon: int = 1, sampling: str = "full", **kwargs: Any) -> "Agent":
        """The settings of pymdp 1.0's ``Agent`` (its FPI, raw C, full-posterior action selection)."""
        return cls(model, policy_horizon, **preset_settings("pymdp", sampling, **kwargs))

    @classmethod
    def pymdp_legacy_mmp(cls, model: GenerativeModel, policy_horizon: int = 1, inference_horizon: int = 2,
                         policy_sep_prior: bool = False, sampling: str = "marginal", **kwargs: Any) -> "Agent":
        """The settings of pymdp.legacy's ``Agent(inference_algo="MMP")``: 10 gradient iterations of MMP
        with tau 1/4 and legacy's F, its EFE guards, ``q(pi) = softmax(-gamma G + F + ln E)``, an open-ended
        episode, and the prior of a moved window per policy (``policy_sep_prior=True``) or averaged over
        policies (its default, ``use_BMA=True``).

        The message passing is legacy's ``run_mmp`` (SPM's scheme). Legacy's Agent itself calls
        ``run_mmp_factorized``, which halves the backward messages and multiplies the modalities' expected
        likelihoods (SPM takes the expectation of their product): its beliefs, G and at times its actions
        differ. Legacy's ``inference_horizon`` must be at least 2 (with 1 it passes every past action).
        """
        return cls(model, policy_horizon, inference=MarginalMessagePassing(legacy_vfe=True),
                   efe=EFEOptions.pymdp_legacy(), selection=Selection(kwargs.pop("mode", "deterministic"), sampling),
                   inference_horizon=inference_horizon, sequence=SequenceOptions.pymdp_legacy(policy_sep_prior),
                   **kwargs)

    def reset(self, prior: list | None = None) -> None:
        """Start an episode: the prior is ``model.D`` (or ``prior``); forget the last step.

        With online learning of D, the finished episode's first posterior updates pD first.
        """
        if getattr(self, "history", None) and self.learning is not None and self.learning.online:
            self._learn_D()
        self.history: list = []  # (obs, qs, action before obs) per step, for learning
        self.prior = [d.copy() for d in self.model.D] if prior is None else check_beliefs(self.model, prior)
        self.qs: Any = None
        self.q_pi = self.G = self.terms = self.action = self.plan = cast(Any, None)
        self.t = 0
        # inference over time: the observations and actions of the window, its beliefs and free energy
        self.obs_window: list = []
        self.actions_window: list = []
        self.qs_seq = self.F = self.present = None

    def infer_states(self, obs: Any) -> list:
        """Posterior over states from ``obs`` and the carried prior."""
        if self._over_time:
            return self._infer_sequence(obs)
        self.qs = infer_states(self.model, obs, self.prior, self.inference)
        if self.learning is not None:
            previous = (self.history[-1][1], self.action) if self.history else None
            self.history.append((obs, self.qs, previous))
            if self.learning.online:
                self._learn_step(obs, self.qs, previous)
                del self.history[1:-1]  # online learning needs only the first posterior (D) and the last (B)
        return self.qs

    def _learn_step(self, obs, qs, previous):
        from . import learning

        rates = dict(lr=self.learning.lr, forgetting=self.learning.forgetting)
        changes = {}
        if self.learning.learn_A:
            changes["pA"] = learning.update_A(self.model.pA, obs, qs, A_dependencies=self.model.A_dependencies,
                                              prior=self._prior_counts("pA"), **rates)
            changes["A"] = None
        if self.learning.learn_B and previous is not None:
            qs_prev, action = previous
            changes["pB"] = learning.update_B(self.model.pB, qs, qs_prev, action,
                                              B_dependencies=self.model.B_dependencies,
                                              prior=self._prior_counts("pB"), **rates)
            changes["B"] = None
        if changes:
            self.model = self.model.replace(**changes)

    def _prior_counts(self, name):
        """The counts forgetting decays towards: the model's counts when the agent was built (or None)."""
        return self.initial_counts[name] if self.learning.forget_to_prior else None

    def _learn_D(self):
        from . import learning

        if self.learning.learn_D and self.history:
            pD = learning.update_D(self.model.pD, self.history[0][1], lr=self.learning.lr,
                                   forgetting=self.learning.forgetting, prior=self._prior_counts("pD"))
            self.model = self.model.replace(pD=pD, D=None)

    def learn(self) -> GenerativeModel:
        """Offline learning: update the counts from the episode recorded since ``reset`` and return the model.

        Applies, in order, each step's A and B updates (as online learning would, but with the beliefs the
        agent held during the episode), then D from the first posterior. The record is then cleared.
        """
        if self.learning is None:
            raise ParameterError("learn() needs Learning settings: Agent(..., learning=aif.Learning(...))")
        for obs, qs, previous in self.history:
            self._learn_step(obs, qs, previous)
        self._learn_D()
        self.history = []
        return self.model

    def _steps_left(self) -> int:
        if self.trial_length is None:
            return self.policy_horizon
        if self.t >= self.trial_length:
            raise CallOrderError(f"the trial has {self.trial_length} observations and this would be observation "
                                 f"{self.t + 1}: call reset() to start a new trial")
        return min(self.policy_horizon, self.trial_length - 1 - self.t)

    def _infer_sequence(self, obs):
        policies = self.policies[:, : self._steps_left()]
        window = (self.obs_window + [obs])[-self.inference_horizon :]
        actions = np.array(self.actions_window[len(self.actions_window) - (len(window) - 1) :], dtype=int)
        actions = actions.reshape(len(window) - 1, self.model.num_factors)
        self.qs_seq, self.F = infer_sequence(self.model, window, actions, policies, self.prior, self.inference)
        self.obs_window, self.actions_window = window, list(actions)
        self.present = len(window) - 1
        # until G is known, the policies are weighed by their evidence alone
        evidence = sequence_policy_posterior(np.zeros_like(self.F), self.F, self.model.E, self.gamma,
                                             self.sequence.vfe_sign)
        self.qs = policy_average([q[:, self.present] for q in self.qs_seq], evidence)
        return self.qs

    def _infer_sequence_policies(self):
        future = [q[:, self.present :] for q in self.qs_seq]
        C_time = self.t if self.sequence.C_time == "absolute" else 0
        policies = self.policies[:, : future[0].shape[1] - 1]
        self.G, self.terms = sequence_expected_free_energy(self.model, future, policies, self.efe_terms, self.efe,
                                                           C_time)
        self.q_pi = sequence_policy_posterior(self.G, self.F, self.model.E, self.gamma, self.sequence.vfe_sign)
        self.qs = policy_average([q[:, self.present] for q in self.qs_seq], self.q_pi)
        return self.q_pi, self.G

    def _carry_window_prior(self):
        """After an action: the prior over the next window's first state (``SequenceOptions.prior``)."""
        if len(self.obs_window) < self.inference_horizon:
            return  # the next window still starts the trial: its prior stays the initial one
        first = [q[:, 0] for q in self.qs_seq]  # each policy's belief about this window's first step
        self.prior = first if self.sequence.prior == "policy" else policy_average(first, self.q_pi)

    def infer_policies(self) -> tuple[np.ndarray, np.ndarray]:
        """EFE of every policy and the policy posterior, from the current posterior. Returns ``(q_pi, G)``."""
        if self.qs is None:
            raise CallOrderError("infer_policies needs a posterior: call infer_states(obs) first")
        if self._over_time:
            return self._infer_sequence_policies()
        if self.planner is not None:
            self.plan = plan = self.planner.plan(self.model, self.qs, self.rng)
            self.G, self.terms = plan.G, plan.terms
            E = self.model.E if self.model.E is not None and len(self.model.E) == len(self.G) else None
            self.q_pi = policy_posterior(self.G, E, self.gamma)
            return self.q_pi, self.G
        self.G, self.terms = expected_free_energy(self.model, self.qs, self.policies, self.efe_terms, self.efe)
        self.q_pi = policy_posterior(self.G, self.model.E, self.gamma)
        return self.q_pi, self.G

    def sample_action(self) -> np.ndarray:
        """Choose an action vector ``(num_factors,)`` and carry the prior forward with B."""
        if self.q_pi is None:
            raise CallOrderError("sample_action needs q_pi: call infer_policies() first")
        policies = self.policies if self.plan is None else self.plan.policies
        self.action = select_action(self.q_pi, policies, self.selection.mode, self.rng, self.alpha,
                                    self.selection.sampling)
        if self._over_time:
            self.actions_window.append(self.action)
            self._carry_window_prior()
        else:
            self.prior = predict(self.model, self.qs, self.action)
        self.t += 1
        return self.action

    def step(self, obs: Any) -> np.ndarray:
        """``infer_states(obs)``, ``infer_policies()``, ``sample_action()``; returns the action."""
        self.infer_states(obs)
        self.infer_policies()
        return self.sample_action()
