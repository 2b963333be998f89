"""The Agent: a thin stateful shell over the cycle's pure functions.

One step: ``infer_states`` (posterior from the observation and the carried prior), ``infer_policies``
(EFE of every policy and q(pi)), ``sample_action``, then the prior for the next step is ``predict(qs, u)``.
The Agent holds settings and the current beliefs; every equation lives in ``inference`` and ``control``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .control import (DEFAULT_TERMS, EFEOptions, check_policies, check_positive, enumerate_policies,
                      expected_free_energy, policy_posterior, predict, select_action)
from .errors import ParameterError
from .inference import FixedPoint, infer_states
from .model import GenerativeModel


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
class Learning:
    """Dirichlet learning of the model's counts (``aif.learning``).

    Attributes:
        lr: learning rate (counts added per observation), >= 0.
        forgetting: factor in (0, 1] applied to the old counts before each update (1 = none).
        learn_A, learn_B, learn_D: which counts to update (each needs the model's pA / pB / pD).
        online: update after every observation (``True``) or only when ``learn()`` is called, from the
            episode recorded since the last ``reset`` (``False``). D is learned from the episode's first
            posterior in both cases, at ``learn()`` or ``reset()``.
    """

    lr: float = 1.0
    forgetting: float = 1.0
    learn_A: bool = True
    learn_B: bool = True
    learn_D: bool = False
    online: bool = True

    def __post_init__(self):
        if not (np.isfinite(self.lr) and self.lr >= 0):
            raise ParameterError(f"Learning.lr must be >= 0 and finite, got {self.lr}")
        if not 0 < self.forgetting <= 1:
            raise ParameterError(f"Learning.forgetting must be in (0, 1], got {self.forgetting}")


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

    Attributes (after a step): ``qs`` (posterior), ``prior`` (the prior used for the next observation),
    ``q_pi``, ``G``, ``terms`` (dict of EFE terms per policy), ``action``, ``t`` (steps taken).
    """

    model: GenerativeModel
    policy_horizon: int = 1
    gamma: float = 16.0
    alpha: float = 16.0
    inference: object = field(default_factory=FixedPoint)
    efe: EFEOptions = field(default_factory=EFEOptions)
    efe_terms: tuple = DEFAULT_TERMS
    selection: Selection = field(default_factory=Selection)
    policies: np.ndarray | None = None
    control_factors: list | None = None
    rng: np.random.Generator | None = None
    learning: Learning | None = None
    planner: object = None

    def __post_init__(self):
        if not isinstance(self.model, GenerativeModel):
            raise TypeError(f"model must be an aif.GenerativeModel, got {type(self.model).__name__}")
        self.gamma = check_positive(self.gamma, "gamma")
        self.alpha = check_positive(self.alpha, "alpha")
        if self.policies is None:
            self.policies = enumerate_policies(self.model.num_controls, self.policy_horizon, self.control_factors)
        self.policies = check_policies(self.model, self.policies)
        self.policy_horizon = self.policies.shape[1]
        if self.model.E is not None and self.model.E.shape != (len(self.policies),):
            raise ParameterError(f"model.E has {self.model.E.shape[0]} entries but the agent has "
                                 f"{len(self.policies)} policies")
        if self.selection.mode == "stochastic" and self.rng is None:
            raise ParameterError("stochastic selection needs rng (a np.random.Generator)")
        if self.learning is not None:
            for name in ("A", "B", "D"):
                if getattr(self.learning, f"learn_{name}") and getattr(self.model, f"p{name}") is None:
                    raise ParameterError(f"Learning.learn_{name} needs Dirichlet counts: the model has no p{name}")
        self.reset()

    @classmethod
    def pymdp_legacy(cls, model, policy_horizon=1, sampling="marginal", **kwargs) -> "Agent":
        """The settings of pymdp.legacy's ``Agent`` (its FPI, its EFE guards, marginal action selection)."""
        return cls(model, policy_horizon, inference=FixedPoint.pymdp_legacy(), efe=EFEOptions.pymdp_legacy(),
                   selection=Selection(kwargs.pop("mode", "deterministic"), sampling), **kwargs)

    @classmethod
    def pymdp(cls, model, policy_horizon=1, sampling="full", **kwargs) -> "Agent":
        """The settings of pymdp 1.0's ``Agent`` (its FPI, raw C, full-posterior action selection)."""
        return cls(model, policy_horizon, inference=FixedPoint.pymdp(), efe=EFEOptions.pymdp(),
                   selection=Selection(kwargs.pop("mode", "deterministic"), sampling), **kwargs)

    def reset(self, prior=None) -> None:
        """Start an episode: the prior is ``model.D`` (or ``prior``); forget the last step.

        With online learning of D, the finished episode's first posterior updates pD first.
        """
        if getattr(self, "history", None) and self.learning is not None and self.learning.online:
            self._learn_D()
        self.history = []  # (obs, qs, action before obs) per step, for learning
        self.prior = [d.copy() for d in self.model.D] if prior is None else [np.asarray(p, float) for p in prior]
        self.qs = None
        self.q_pi = self.G = self.terms = self.action = None
        self.t = 0

    def infer_states(self, obs) -> list:
        """Posterior over states from ``obs`` and the carried prior."""
        self.qs = infer_states(self.model, obs, self.prior, self.inference)
        if self.learning is not None:
            previous = (self.history[-1][1], self.action) if self.history else None
            self.history.append((obs, self.qs, previous))
            if self.learning.online:
                self._learn_step(obs, self.qs, previous)
        return self.qs

    def _learn_step(self, obs, qs, previous):
        from . import learning

        rates = dict(lr=self.learning.lr, forgetting=self.learning.forgetting)
        changes = {}
        if self.learning.learn_A:
            changes["pA"] = learning.update_A(self.model.pA, obs, qs, A_dependencies=self.model.A_dependencies,
                                              **rates)
            changes["A"] = None
        if self.learning.learn_B and previous is not None:
            qs_prev, action = previous
            changes["pB"] = learning.update_B(self.model.pB, qs, qs_prev, action,
                                              B_dependencies=self.model.B_dependencies, **rates)
            changes["B"] = None
        if changes:
            self.model = self.model.replace(**changes)

    def _learn_D(self):
        from . import learning

        if self.learning.learn_D and self.history:
            pD = learning.update_D(self.model.pD, self.history[0][1], lr=self.learning.lr,
                                   forgetting=self.learning.forgetting)
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

    def infer_policies(self):
        """EFE of every policy and the policy posterior, from the current posterior. Returns ``(q_pi, G)``."""
        if self.qs is None:
            raise RuntimeError("infer_policies needs a posterior: call infer_states(obs) first")
        if self.planner is not None:
            plan = self.planner.plan(self.model, self.qs)
            self.policies, self.G, self.terms = plan.policies, plan.G, plan.terms
            E = self.model.E if self.model.E is not None and len(self.model.E) == len(self.G) else None
            self.q_pi = policy_posterior(self.G, E, self.gamma)
            return self.q_pi, self.G
        self.G, self.terms = expected_free_energy(self.model, self.qs, self.policies, self.efe_terms, self.efe)
        self.q_pi = policy_posterior(self.G, self.model.E, self.gamma)
        return self.q_pi, self.G

    def sample_action(self) -> np.ndarray:
        """Choose an action vector ``(num_factors,)`` and carry the prior forward with B."""
        if self.q_pi is None:
            raise RuntimeError("sample_action needs q_pi: call infer_policies() first")
        self.action = select_action(self.q_pi, self.policies, self.selection.mode, self.rng, self.alpha,
                                    self.selection.sampling)
        self.prior = predict(self.model, self.qs, self.action)
        self.t += 1
        return self.action

    def step(self, obs) -> np.ndarray:
        """``infer_states(obs)``, ``infer_policies()``, ``sample_action()``; returns the action."""
        self.infer_states(obs)
        self.infer_policies()
        return self.sample_action()
