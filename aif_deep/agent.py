"""The Agent in PyTorch: ``aif.Agent``'s thin shell over the cycle's functions, for a batch of agents at once,
and a rollout over a Gymnasium vector environment (or a list of ``aif.envs`` environments).

Every agent in the batch has its own beliefs; they share the policies and the settings, and each has its own
parameters when the model carries a batch (``TabularModel.from_aif([model_1, model_2, ...])``) or when
``gamma`` / ``alpha`` are tensors ``(*batch,)``. With an unbatched model and ``batch_shape=()`` the agent is a
drop-in for ``aif.Agent`` (its attributes are tensors of the same shapes).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

import aif
from aif.agent import (
    Learning,
    PolicySearch,
    Selection,
    action_factor_policies,
    atomic,
    check_settings,
    preset_settings,
    search_parts,
)
from aif.checks import check_index
from aif.control import enumerate_policies
from aif.efe import DEFAULT_TERMS, EFEOptions, InductiveCost, TerminalValue
from aif.errors import CallOrderError, ParameterError, PolicyError, StrategyError
from aif.planning import SophisticatedInference
from aif.rollout import as_agent_env
from aif.sequence_control import SequenceOptions
from aif.strategies import NUMPY, TORCH, Learner, Planner, SequenceInference, StateInference, require

from . import checks, efe, fast, learning, sophisticated
from .actor_critic import ActorCriticRun, SoftActorCritic
from .control import draw_action, posterior_of, predict_policies, selection_probabilities
from .evaluator import evaluate_policies
from .full_tree import PolicyEvaluator
from .inference import (
    IndexLikelihood,
    as_obs,
    categorical_modalities,
    fixed_point_last,
    free_energy_terms,
    infer_states_checked,
)
from .model import BeliefModel, TabularModel
from .online import LearnedQ, ObservedState, SelectionRule, StateVectorModel, TDLearning, TDRun
from .shooting import CrossEntropyShooting, ModelLearning, ModelRun, RewardStateModel
from .threads import SMALL_WORK, threads_for


@dataclass
class Agent:
    """A batch of active-inference agents for a ``TabularModel`` (or any ``BeliefModel``).

    Args:
        model: the generative model, possibly with a batch of parameters (``model.batch_shape``).
        policy_horizon: length of the enumerated policies (ignored when ``policies`` is given).
        gamma, alpha: policy and action precision: numbers or tensors ``(*batch,)``.
        inference: state-inference method (``aif.FixedPoint()`` by default, or ``aif.Exact()``).
        efe: ``aif.EFEOptions``.
        efe_terms: ``aif.efe`` term objects that make up G (``aif.Utility()``, ``aif.InfoGain()``, ...,
            ``aif.TerminalValue(qf.value, discount)``: a value of the beliefs at the horizon, e.g. a learned Q).
        selection: ``aif.Selection`` (deterministic / stochastic, full / marginal).
        policies: explicit policies ``(P, H, num_factors)``; enumerated when absent. All policies of the
            horizon (enumerated, or a list equal to them) of a tabular model are scored by one
            ``PolicyEvaluator`` kept while the model stays the same (on CUDA replayed as a CUDA graph from the
            second step); other lists by ``evaluate_policies``.
        control_factors: factors whose actions the enumerated policies vary (all by default).
        rng: ``torch.Generator`` on the model's device, for stochastic selection.
        batch_shape: the agents' batch shape when the model is unbatched (broadcast with the model's).
        learning: ``aif.Learning``: Dirichlet learning of A, B (online, in torch: each agent of the batch learns
            its own counts, the model is expanded to the batch) and D or offline (``learn()``), as ``aif.Agent``.
        planner: an ``aif.planning`` planner (``SophisticatedInference``, ``PolicyEnumeration``, ...) that scores
            the current belief instead of the enumerated ``policies``; ``policies`` stay as configured.
            ``SophisticatedInference`` on a ``TabularModel`` runs in torch for the whole batch at once
            (``aif_deep.sophisticated.search``, equal to aif's): as in ``aif.Agent``, q(pi) and the action are
            over its first actions, with E when E has one entry per first action.
        inference_horizon, trial_length, sequence: as in ``aif.Agent``, with ``inference=aif.MarginalMessagePassing()``
            or ``aif.VariationalMessagePassing()``.
        preprocess: a function applied to every observation before inference, as in ``aif.Agent``.
        actions: ``aif.ActionFactors`` of a model whose B it flattened, as in ``aif.Agent``; ``multi_action`` is
            then ``(*batch, K)``, one action per action factor.

    NumPy-only strategies (planners, sequence inference, NumPy-only state inference such as
    ``aif.VariationalFiltering``, D or offline learning) run on a ``TabularModel``
    through its NumPy form (``TabularModel.to_aif``), one ``aif.Agent`` per agent of the batch, with the same
    results as ``aif.Agent``; for other models they are a ``StrategyError``.

    An observed state (``aif_deep.online``: a ``StateVectorModel`` with ``ObservedState`` inference, a ``LearnedQ``
    planner, ``TDLearning`` and a ``Softmax`` or ``EpsilonGreedy`` selection sampled with an
    ``np.random.Generator``) runs one agent that learns from ``step(obs, reward=, terminated=)``; with
    ``learning=aif_deep.SoftActorCritic(critic)`` the ``LearnedQ`` planner's network is an amortised policy trained
    against that critic (``aif_deep.actor_critic``); with a ``CrossEntropyShooting`` planner on a ``RewardStateModel``
    (``aif_deep.shooting``) it plans action sequences through the learned model instead, which ``ModelLearning``
    trains from the same steps.

    Attributes (after a step, each with the leading ``batch`` shape): ``qs``, ``prior``, ``q_pi``, ``G``,
    ``terms``, ``action``; ``t`` (steps taken in this episode), ``steps`` (over all episodes).
    """

    model: BeliefModel
    policy_horizon: int = 1
    gamma: float | torch.Tensor = 16.0
    alpha: float | torch.Tensor = 16.0
    inference: StateInference | SequenceInference = field(default_factory=aif.FixedPoint)
    efe: EFEOptions = field(default_factory=EFEOptions)
    efe_terms: tuple = DEFAULT_TERMS
    selection: Selection | SelectionRule = field(default_factory=Selection)
    policies: np.ndarray | None = None
    control_factors: list | None = None
    rng: torch.Generator | np.random.Generator | None = None
    batch_shape: tuple = ()
    learning: Learner | None = None
    planner: Planner | None = None
    inference_horizon: int = 1
    trial_length: int | None = None
    sequence: SequenceOptions = field(default_factory=SequenceOptions)
    preprocess: Callable[[Any], Any] | None = None
    actions: aif.ActionFactors | None = None
    # the state of the agents, set by reset() and the steps
    prior: list = field(init=False, repr=False, compare=False)
    td: TDRun | ModelRun | None = field(init=False, repr=False, compare=False, default=None)
    initial_counts: dict = field(init=False, repr=False, compare=False)
    _transition: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, BeliefModel):
            raise StrategyError(f"model must implement aif_deep.BeliefModel, got {type(self.model).__name__}")
        run = _runner(self)
        if isinstance(self.model, TabularModel):
            checks.model_tensors(self.model)
        if not (isinstance(self.batch_shape, (tuple, list, torch.Size)) and all(
                isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in self.batch_shape)):
            raise ParameterError(f"batch_shape must be a tuple of positive integers, got {self.batch_shape!r}")
        self.policies = action_factor_policies(self)
        if self.policies is None:
            self.policies = enumerate_policies(self.model.num_controls, self.policy_horizon, self.control_factors)
        self.policies = checks.policies(self.model, self.policies)
        self.policy_horizon = self.policies.shape[1]
        try:
            self.batch_shape = tuple(np.broadcast_shapes(tuple(self.batch_shape), tuple(self.model.batch_shape)))
        except ValueError:
            raise ParameterError(f"batch_shape {tuple(self.batch_shape)} does not broadcast with the model's "
                                 f"{tuple(self.model.batch_shape)}") from None
        for name in ("gamma", "alpha"):  # aif's rule for a number; a tensor fits the batch and the device
            setattr(self, name, checks.precision(getattr(self, name), name, self.model.prior()[0], self.batch_shape,
                                                 zero=name == "alpha"))
        E = getattr(self.model, "E", None)  # its values: checks.model_tensors
        if E is not None and E.shape[-1:] != (len(self.policies),):
            raise ParameterError(f"model.E has {E.shape[-1] if E.ndim else 0} entries but the agent has "
                                 f"{len(self.policies)} policies")
        self._run: _TorchRun | _NumpyRun | _LearnedQRun = run(self)
        self._fast = fast.for_agent(self)  # the compiled batched step, if the kernels are ready now (aif_deep.fast)
        self.steps = 0
        self.reset()

    @classmethod
    def pymdp_legacy(cls, model: BeliefModel, policy_horizon: int = 1, sampling: str = "marginal",
                     **kwargs: Any) -> Agent:
        """The settings of pymdp.legacy's ``Agent`` (as ``aif.Agent.pymdp_legacy``)."""
        return cls(model, policy_horizon, **preset_settings("pymdp_legacy", sampling, **kwargs))

    @classmethod
    def pymdp(cls, model: BeliefModel, policy_horizon: int = 1, sampling: str = "full", **kwargs: Any) -> Agent:
        """The settings of pymdp 1.0's ``Agent`` (as ``aif.Agent.pymdp``)."""
        return cls(model, policy_horizon, **preset_settings("pymdp", sampling, **kwargs))

    @classmethod
    def pymdp_legacy_mmp(cls, model: BeliefModel, policy_horizon: int = 1, inference_horizon: int = 2,
                         policy_sep_prior: bool = False, sampling: str = "marginal", **kwargs: Any) -> Agent:
        """The settings of pymdp.legacy's ``Agent(inference_algo="MMP")`` (as ``aif.Agent.pymdp_legacy_mmp``)."""
        return cls(model, policy_horizon, inference_horizon=inference_horizon,
                   **preset_settings("pymdp_legacy_mmp", sampling, policy_sep_prior=policy_sep_prior, **kwargs))

    @property
    def device(self) -> torch.device:
        return self.model.prior()[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.prior()[0].dtype

    def parts(self) -> list:
        """The objects whose state a step changes (``aif.agent.atomic`` restores them when a call fails): the
        Agent and, for NumPy-only strategies, its ``aif`` agents. An observed-state agent's replay buffer and
        networks (``agent.td``) are changed in place and not restored."""
        return [self, *self._run.agents] if isinstance(self._run, _NumpyRun) else [self]

    @atomic
    def reset(self, prior: list | None = None, agents: Any = None) -> None:
        """Start an episode: the prior is the model's (or ``prior``); forget the last step.

        ``agents``: optional boolean mask ``(*batch,)``: reset only those agents (the others keep their
        prior and step count) -- for vector environments whose episodes end at different times.
        """
        new = None if prior is None else checks.beliefs(self.model, prior)
        self._run.reset(new, agents)
        if agents is None:
            self.qs: list | None = None
            self.q_pi: torch.Tensor | None = None
            self.G: torch.Tensor | None = None
            self.terms: dict | None = None
            self.action: torch.Tensor | None = None
            self.multi_action: np.ndarray | None = None
            self.search_info: dict | None = None
            self.t = 0

    @atomic
    def infer_states(self, obs: Any, reward: Any = None, terminated: bool = False, return_info: bool = False) -> Any:
        """Posterior over states from ``obs``: one entry per modality (an index, probabilities, or, for a
        model's non-categorical modalities, an image or real vector ``(*batch, *shape_m)``), or an int array
        ``(*batch, M)`` when every modality is categorical (``aif_deep.inference.as_obs``); for an observed
        state, its vector. ``reward`` and ``terminated``: what the last action led to, for learners that need
        them (``TDLearning``).

        With ``return_info`` (one-step inference methods, as ``aif.Agent.infer_states``), returns ``(qs, info)``:
        ``info`` is an ``aif.FreeEnergy`` whose terms are ``(*batch,)`` tensors, the VFE of the posterior under the
        model and prior it was inferred from (``aif_deep.inference.free_energy_terms``)."""
        if return_info and (isinstance(self.inference, SequenceInference) or isinstance(self._run, _LearnedQRun)):
            raise ParameterError(f"return_info is for one-step inference methods, not {type(self.inference).__name__}")
        if self.preprocess is not None:
            obs = self.preprocess(obs)
        model, prior = self.model, self.prior  # (online learning replaces the model while inferring)
        with threads_for(self._run.work):
            self.qs = self._run.infer_states(obs, reward, terminated)
            if not return_info:
                return self.qs
            method = cast(aif.FixedPoint, self.inference)
            return self.qs, free_energy_terms(model, obs, self.qs, prior, guard=method.guard, soft_obs=method.soft_obs)

    @atomic
    def infer_policies(self, search: PolicySearch | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """EFE of every policy and the policy posterior. Returns ``(q_pi, G)``, each ``(*batch, P)``.

        ``search``: as ``aif.Agent.infer_policies``, a function ``search(agent, qs, rng) -> (q_pi, G, info)``
        that replaces the agent's planning for this call, with ``q_pi`` and ``G`` (or ``None``) of shape
        ``(*batch, P)`` (``aif_deep.rollout``'s agents) and ``info`` a dict of arrays kept as
        ``agent.search_info``; ``agent.terms`` is then empty."""
        if self.qs is None:
            raise CallOrderError("infer_policies needs a posterior: call infer_states(obs) first")
        if search is None:
            with threads_for(self._run.work):
                self.q_pi, self.G, self.terms = self._run.infer_policies()
            self.search_info = None
            return self.q_pi, self.G
        if not callable(search):
            raise StrategyError(f"search must be a function (agent, qs, rng) -> (q_pi, G, info), got {search!r}")
        self.q_pi = self.G = None
        self.terms = {}
        found = search(self, self.qs, self.rng)
        self.q_pi, self.G, self.search_info = self._run.adopt(search_parts(found, f"policy_search at step {self.t}"),
                                                              f"policy_search at step {self.t}")
        self.terms = {}
        return self.q_pi, cast(torch.Tensor, self.G)

    @atomic
    def sample_action(self) -> torch.Tensor:
        """Choose an action ``(*batch, num_factors)`` and carry the prior forward."""
        if self.q_pi is None:
            raise CallOrderError("sample_action needs q_pi: call infer_policies() first")
        with threads_for(self._run.work):
            self.action = self._run.sample_action()
        return self._acted()

    @atomic
    def take_action(self, action: Any) -> torch.Tensor:
        """Take ``action`` ``(*batch, num_factors)`` (or ``(num_factors,)`` for every agent) instead of choosing one,
        and carry the prior forward as ``sample_action`` does (``aif.Agent.take_action``: replays of observed
        choices)."""
        if self.q_pi is None:
            raise CallOrderError("take_action needs q_pi: call infer_policies() first")
        action = checks.action(self.model, action, self.batch_shape).to(self.device)
        with threads_for(self._run.work):
            self.action = self._run.take(action.expand(*self.batch_shape, action.shape[-1]))
        return self._acted()

    def _acted(self) -> torch.Tensor:
        action = cast(torch.Tensor, self.action)
        self.multi_action = None if self.actions is None else self.actions.decode(action.cpu().numpy())
        self.t += 1
        self.steps += 1
        return action

    @atomic
    def step(self, obs: Any, reward: Any = None, terminated: bool = False) -> torch.Tensor:
        """``infer_states(obs, reward, terminated)``, ``infer_policies()``, ``sample_action()``; returns the
        actions. Small batched work runs on one intra-op thread (``aif_deep.threads``); a tabular model none of whose
        arrays (nor the prior) requires gradients runs without recording them. An agent built after
        ``aif.fast.compile()`` steps the whole batch in one compiled call where ``aif_deep.fast`` covers it."""
        if self._fast is not None:
            action = self._fast.step(self, obs)
            if action is not None:
                self.action = action
                return self._acted()
        with threads_for(self._run.work), self._run.gradients():
            self.infer_states(obs, reward, terminated)
            self.infer_policies()
            return self.sample_action()

    @atomic
    def learn(self) -> BeliefModel:
        """Offline learning (``aif.Agent.learn``): the counts updated from the episode since ``reset``, on
        ``agent.model``, which is returned."""
        return self._run.learn()

    def state_dict(self) -> dict:
        """The agents' current state (prior, posterior, q(pi), G, terms, last action, step counts and what the
        strategies carry), which ``load_state_dict`` restores on an Agent built with the same settings."""
        names = ("prior", "qs", "q_pi", "G", "terms", "action", "t", "steps")
        return {**{n: getattr(self, n) for n in names}, **self._run.state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""
        for name in ("prior", "qs", "q_pi", "G", "terms", "action", "t", "steps"):
            setattr(self, name, state[name])
        self._run.restore(state)


def _param(x: Any) -> Any:
    """A precision the Agent checked when it was built, as it broadcasts against ``(*batch, P)``: a number, or a
    tensor ``(*batch,)`` as ``(*batch, 1)``."""
    return x[..., None] if isinstance(x, torch.Tensor) and x.ndim else x


def _runner(agent: Agent) -> type[_TorchRun | _NumpyRun | _LearnedQRun]:
    """Which cycle runs the agent's strategies (``_Run``'s subclasses); refuses a strategy of the wrong family or
    backend, naming it."""
    a = agent
    observed = (isinstance(a.model, StateVectorModel) or isinstance(a.inference, ObservedState)
                or isinstance(a.planner, (LearnedQ, CrossEntropyShooting))
                or isinstance(a.learning, (TDLearning, SoftActorCritic, ModelLearning)))
    if observed:
        return _LearnedQRun
    over_time = isinstance(a.inference, SequenceInference)
    numpy_method = over_time or (isinstance(a.inference, StateInference)  # e.g. aif.VariationalFiltering
                                 and TORCH not in type(a.inference).backends)
    require(a.inference, SequenceInference if over_time else StateInference,  # type: ignore[type-abstract]
            "inference", NUMPY if numpy_method else TORCH)
    require(a.planner, Planner, "planner", NUMPY, optional=True)  # type: ignore[type-abstract]
    require(a.learning, Learner, "learning", TORCH, optional=True)  # type: ignore[type-abstract]
    if a.learning is not None and not isinstance(a.learning, Learning):
        raise StrategyError(f"learning = {a.learning!r}: aif_deep.Agent runs aif.Learning(...) on a BeliefModel "
                            "(TDLearning on a StateVectorModel)")
    if isinstance(a.selection, SelectionRule):
        raise StrategyError(f"selection = {a.selection!r}: Softmax and EpsilonGreedy select from a LearnedQ planner; "
                            "this agent takes an aif.Selection")
    check_settings(a, torch.Generator, "torch.Generator")
    L = a.learning
    torch_planner = isinstance(a.planner, SophisticatedInference) and isinstance(a.model, TabularModel)
    for name, used in (("planner", a.planner is not None and not torch_planner), ("inference", numpy_method),
                       ("learning", isinstance(L, Learning) and (L.learn_D or not L.online or L.learn_E or L.learn_C))):
        if used:
            if not isinstance(a.model, TabularModel):
                raise StrategyError(f"{name} = {getattr(a, name)!r} runs on NumPy only: aif_deep runs it on a "
                                    f"TabularModel, not on a {type(a.model).__name__}")
            return _NumpyRun
    return _TorchRun


class _Run:
    """How an Agent runs its cycle for the strategies it was built with (``reset``, ``infer_states``,
    ``infer_policies``, ``sample_action``, ``learn``); the Agent keeps the results."""

    # Elements of the largest intermediates of one call (aif_deep.threads); SMALL_WORK leaves torch's threads alone.
    work = SMALL_WORK

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def gradients(self) -> contextlib.AbstractContextManager:
        """The autograd mode of a step: as the caller's (``_TorchRun`` turns it off where nothing needs it)."""
        return contextlib.nullcontext()

    def learn(self) -> BeliefModel:
        raise ParameterError("learn() needs Learning settings: Agent(..., learning=aif.Learning(...)) with "
                             "online=False or learn_D=True (online A/B learning happens at every step)")

    def state(self) -> dict:
        """What the strategies carry besides the Agent's attributes, for ``Agent.state_dict``."""
        return {}

    def restore(self, state: dict) -> None:
        """The reverse of ``state``."""

    def adopt(self, found: tuple, where: str) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
        """A policy search's ``(q_pi, G, info)`` (``search_parts``) checked as the agent's: each ``(*batch, P)``."""
        raise StrategyError(f"{where}: an observed-state agent selects with its SelectionRule from its LearnedQ "
                            "planner; a policy search does not apply")


class _TorchRun(_Run):
    """The cycle in torch for a batch: ``aif_deep.infer_states``, the ``PolicyEvaluator`` (or
    ``evaluate_policies``), ``select_action`` and ``predict``, with online Dirichlet learning of A and B."""

    # The cycle aif_deep.fast's compiled step replaces (read from this class itself, not from a subclass, which may
    # change the cycle: ``aif_deep.fast.reason``)
    torch_cycle = True

    def __init__(self, agent: Agent) -> None:
        super().__init__(agent)
        a = agent
        # All policies of the horizon, in order (also when given as a list): PolicyEvaluator's case. Only a list
        # of that length is compared with the enumeration (a short list of long policies never enumerates them).
        controls = [u if a.control_factors is None or f in a.control_factors else 1
                    for f, u in enumerate(a.model.num_controls)]
        policies, H = cast(np.ndarray, a.policies), a.policy_horizon
        self.enumerated = isinstance(a.model, TabularModel) and len(policies) == math.prod(controls) ** H \
            and np.array_equal(policies, enumerate_policies(a.model.num_controls, H, a.control_factors))
        self.evaluator: PolicyEvaluator | None = None
        self.likelihood: IndexLikelihood | None = None  # infer_indices' tables, kept while the model stays the same
        self.first_actions: tuple | None = None  # (policies, their first actions (P, F) on the device)
        efe.prepare_terms(a.model, a.efe_terms, isinstance(a.model, TabularModel))  # checked now, not at step 1
        # Sophisticated inference (_runner) scores its first actions: q(pi) and the choice are over them (aif.Agent).
        self.planned = None if a.planner is None else enumerate_policies(
            a.model.num_controls, 1, cast(SophisticatedInference, a.planner).control_factors)
        if isinstance(a.model, TabularModel):  # a neural model's networks keep the caller's threads
            m = a.model
            per_belief = max(len(policies) * (sum(m.num_states) + sum(m.num_obs) + 2),
                             *(math.prod(m.num_states[f] for f in deps) for deps in m.A_dependencies))
            self.work = math.prod(a.batch_shape) * per_belief
        if a.learning is not None:
            self.start_learning()

    def gradients(self) -> contextlib.AbstractContextManager:
        """``torch.no_grad()`` for a ``TabularModel`` none of whose tensors, nor the agent's prior, gamma or alpha,
        requires gradients, without a ``TerminalValue`` (whose function may hold a network): nothing of the step
        could carry one, and recording none saves its bookkeeping (about 6% of a T-maze step). The caller's mode
        otherwise (a neural model's networks, a model or precision being fitted)."""
        a = self.agent
        m = a.model
        if isinstance(m, TabularModel) and not any(isinstance(t, TerminalValue) for t in a.efe_terms) and not any(
                isinstance(t, torch.Tensor) and t.requires_grad
                for t in (*m.A, *m.B, *m.C, *m.D, m.E, *(m.pA or ()), *(m.pB or ()), *a.prior, a.gamma, a.alpha)):
            return torch.no_grad()
        return contextlib.nullcontext()

    def start_learning(self) -> None:
        """Online A/B learning in torch: each agent of the batch gets its own counts."""
        a = self.agent
        L, m = cast(Learning, a.learning), cast(TabularModel, a.model)
        for name, wanted in (("pA", L.learn_A), ("pB", L.learn_B)):
            if wanted and getattr(m, name, None) is None:
                raise ParameterError(f"learning {name[1]} needs Dirichlet counts: the model has no {name} "
                                     f"(TabularModel.from_aif of a model with {name}, or learn_{name[1]}=False)")
        L.check_model(m.num_modalities, m.num_factors)
        batch, nb = tuple(a.batch_shape), len(m.batch_shape)
        if L.learn_B and batch and any(isinstance(t, InductiveCost) and t.goals is not None for t in a.efe_terms):
            raise StrategyError("InductiveCost.from_goals with B learned in torch runs for one agent (batch_shape ()): "
                                "each agent of a batch would need its own I from its own B")

        def grow(xs: list | None) -> list | None:
            return None if xs is None else [x.expand(*batch, *x.shape[nb:]).clone() for x in xs]

        def grow_one(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else cast(list, grow([x]))[0]

        # every array and count of the model gets the batch (counts it does not learn too: the model checks
        # that each count is shaped like its array)
        a.model = m.replace(A=grow(m.A), B=grow(m.B), C=grow(m.C), D=grow(m.D), pA=grow(m.pA), pB=grow(m.pB),
                            pC=grow(m.pC), pD=grow(m.pD), E=grow_one(m.E), pE=grow_one(m.pE), batch_shape=batch)
        a.initial_counts = {"pA": a.model.pA, "pB": a.model.pB}

    def state(self) -> dict:
        a = self.agent
        return {"transition": a._transition, "initial_counts": None if a.learning is None else a.initial_counts}

    def restore(self, state: dict) -> None:
        self.agent._transition = state["transition"]
        if self.agent.learning is not None:
            self.agent.initial_counts = state["initial_counts"]  # forgetting decays towards these

    def reset(self, prior: list | None, agents: Any) -> None:
        a = self.agent
        new = [p.expand(*a.batch_shape, p.shape[-1]).clone() for p in (prior or a.model.prior())]
        if agents is None:
            a.prior = new
            a._transition = torch.zeros(a.batch_shape, dtype=torch.bool, device=a.device)
            return
        keep = torch.as_tensor(agents, device=a.device, dtype=torch.bool)
        a.prior = [torch.where(keep[..., None], n, p) for n, p in zip(new, a.prior, strict=True)]
        a._transition = a._transition & ~keep  # a new episode's first observation follows no action

    def infer_states(self, obs: Any, reward: Any, terminated: bool) -> list:
        a = self.agent
        qs_prev = a.qs
        if isinstance(obs, np.ndarray) and a.learning is None and isinstance(a.inference, aif.FixedPoint):
            qs = self.infer_indices(obs, a.inference)
            if qs is not None:
                return qs
        obs = as_obs(a.model, obs, a.device, a.dtype)
        checks.unbatched_observation(obs, categorical_modalities(a.model), a.batch_shape)
        qs = infer_states_checked(a.model, obs, a.prior, cast(Any, a.inference))  # its own prior: checked already
        if a.learning is not None:
            self.learn_step(obs, qs, qs_prev)
        return qs

    def infer_indices(self, obs: np.ndarray, method: aif.FixedPoint) -> list | None:
        """``infer_states`` of outcome indices ``obs`` int ``(*batch, M)`` for one ``TabularModel`` (no batch of
        parameters, ``A`` without gradients), from the model's ``IndexLikelihood`` tables and the agent's prior laid
        out with the batch last: the numbers of ``infer_states_checked``, bit for bit, in fewer operations. ``None``
        where that does not apply (other inputs, or an index out of range, which the general path names)."""
        a = self.agent
        m = a.model
        if not (isinstance(m, TabularModel) and not m.batch_shape and obs.dtype.kind in "iu"
                and obs.shape == (*a.batch_shape, len(m.num_obs)) and not any(A_m.requires_grad for A_m in m.A)):
            return None
        table = self.likelihood
        if table is None or not table.fresh(m, method.guard):
            table = self.likelihood = IndexLikelihood(m, method.guard)
        b = math.prod(a.batch_shape)
        flat = obs.reshape(b, -1)
        if not table.in_range(flat):
            return None
        L = table(flat)  # one (*S_deps, b) per group of modalities
        prior = torch.cat([p.expand(*a.batch_shape, p.shape[-1]) for p in a.prior], -1).reshape(b, -1)
        if len(m.num_states) == 1:  # fixed_point's one-factor case: (b, S) rows
            return [torch.softmax(L[0].T + efe.guarded_log(prior, method.guard), -1).reshape(*a.batch_shape, -1)]
        lp_all = efe.guarded_log(prior, method.guard).T.contiguous()  # (sum S_f, b)
        qs = fixed_point_last(method, L, table.groups, lp_all, m.num_states)
        return [q.T.contiguous().reshape(*a.batch_shape, q.shape[0]) for q in qs]

    def learn_step(self, obs: list, qs: list, qs_prev: Any) -> None:
        """One online Dirichlet update of A (from ``obs``) and B (from the last transition), per agent."""
        a = self.agent
        L, m, nb = cast(Learning, a.learning), cast(Any, a.model), len(a.batch_shape)
        rates: dict[str, Any] = dict(forgetting=L.forgetting, mask_zeros=L.mask_zeros)
        changes: dict[str, list] = {}

        def chosen(name: str, new: list, old: list) -> list:  # the counts L does not learn stay as they were
            which = L.chosen(name)
            return [n if which is None or k in which else o for k, (n, o) in enumerate(zip(new, old, strict=True))]

        if L.learn_A:
            prior = a.initial_counts["pA"] if L.forget_to_prior else None
            pA = chosen("A", learning.update_A(m.pA, obs, qs, L.rate("A"), A_dependencies=m.A_dependencies,
                                               prior=prior, **rates), m.pA)
            changes.update(pA=pA, A=[learning.dirichlet_mean(p, nb) for p in pA])
        if L.learn_B and a._transition.any():
            prior = a.initial_counts["pB"] if L.forget_to_prior else None
            new = learning.update_B(m.pB, qs, qs_prev, a.action, L.rate("B"), B_dependencies=m.B_dependencies,
                                    prior=prior, **rates)
            # Agents whose episode just began saw no transition: their counts stay as they were (aif.Agent).
            pB = chosen("B", [torch.where(a._transition.reshape(*a.batch_shape, *[1] * (n.ndim - nb)), n, o)
                              for n, o in zip(new, m.pB, strict=True)], m.pB)
            changes.update(pB=pB, B=[learning.dirichlet_mean(p, nb) for p in pB])
        if changes:
            a.model = m.replace(**changes)
        rebuilt = [isinstance(t, InductiveCost) and t.goals is not None for t in a.efe_terms]
        if "pB" in changes and any(rebuilt):  # the terms made from B, made again from the learned B (aif's rule;
            learned = cast(TabularModel, a.model).to_aif()  # one agent: start_learning refuses a batch)
            a.efe_terms = tuple(t.for_model(learned) if r else t for t, r in zip(a.efe_terms, rebuilt, strict=True))

    def infer_policies(self) -> tuple[torch.Tensor, torch.Tensor, dict]:
        a = self.agent
        qs = cast(list, a.qs)
        if a.planner is not None:
            found = sophisticated.search(cast(SophisticatedInference, a.planner), cast(TabularModel, a.model), qs)
            G, terms = found.G, {"immediate": found.immediate}
        elif self.enumerated:
            # One PolicyEvaluator while the model stays the same (on CUDA its graph is captured at the second
            # step and replayed after).
            ev = self.evaluator
            if ev is None or ev.model is not a.model or ev.stale:
                ev = self.evaluator = PolicyEvaluator(cast(TabularModel, a.model), a.policy_horizon, a.efe_terms, a.efe,
                                                      a.control_factors)
            G, terms = ev(qs, check_values=False)  # the agent's own beliefs: no host synchronisation
        else:
            G, terms = evaluate_policies(a.model, qs, policies=a.policies, terms=a.efe_terms, options=a.efe,
                                         check_values=False)
        # One reduction where G is finite (its sum is, short of overflow); the elementwise test only otherwise.
        if not math.isfinite(float(G.detach().sum())) and not bool(torch.isfinite(G).all()):
            raise ParameterError("G has a non-finite entry")
        E = getattr(a.model, "E", None)
        E = None if E is None or E.shape[-1] != G.shape[-1] else E  # a planner's first actions: aif.Agent's rule
        return posterior_of(G, None if E is None else torch.log(E).expand_as(G), _param(a.gamma)), G, terms

    def adopt(self, found: tuple, where: str) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
        a = self.agent
        shape = (*a.batch_shape, len(self.choices()))
        q_pi, G, info = found
        try:
            q_pi = checks.tensor(q_pi, "q_pi", PolicyError, a.device).to(a.dtype)
            if tuple(q_pi.shape) != shape:
                raise PolicyError(f"q_pi has shape {tuple(q_pi.shape)}, expected {shape}: (*batch, policies)")
            checks.distribution(q_pi, "q_pi", PolicyError)
            if G is not None:
                G = checks.tensor(G, "G", PolicyError, a.device).to(a.dtype)
                if tuple(G.shape) != shape:
                    raise PolicyError(f"G has shape {tuple(G.shape)}, expected {shape} (one value per policy)")
                if not bool(torch.isfinite(G).all()):
                    raise PolicyError("G has a non-finite entry")
        except PolicyError as e:
            raise PolicyError(f"{where}: {e}") from None
        return q_pi, G, {name: checks.as_tensor(v, f"{where}: info[{name!r}]", ParameterError)
                         for name, v in info.items()}

    def choices(self) -> np.ndarray:
        """The policies q(pi) is over: the agent's, or its planner's first actions ``(U, 1, num_factors)``."""
        return cast(np.ndarray, self.agent.policies) if self.planned is None else self.planned

    def sample_action(self) -> torch.Tensor:
        a = self.agent
        mode, sampling = a.selection.mode, a.selection.sampling  # type: ignore[union-attr]
        choices = self.choices()
        if self.first_actions is None or self.first_actions[0] is not choices:
            self.first_actions = (choices, torch.as_tensor(np.asarray(choices)[:, 0, :], device=a.device))
        first = self.first_actions[1]
        probs = selection_probabilities(cast(torch.Tensor, a.q_pi), first, mode, _param(a.alpha), sampling,
                                        a.model.num_controls)
        return self.take(draw_action(probs, first, mode, cast(torch.Generator, a.rng), sampling))

    def take(self, action: torch.Tensor) -> torch.Tensor:
        """Act ``action`` ``(*batch, F)``: the prior for the next step."""
        a = self.agent
        a.prior = predict_policies(a.model, cast(list, a.qs), action)
        a._transition = torch.ones_like(a._transition)
        return action


class _NumpyRun(_Run):
    """NumPy-only strategies on a ``TabularModel``: one ``aif.Agent`` per agent of the batch, on the model's NumPy
    form (``TabularModel.to_aif``), with the same settings; their results are stacked onto the Agent.

    With SPM's traces asked for (``SequenceOptions(precision=..., record=True)``) the Agent keeps them per step,
    stacked over the batch as ``aif.Agent`` keeps them for one agent: ``gamma_trace[t]`` ``(*batch, num_iter)``,
    ``q_pi_trace[t]`` ``(*batch, num_iter, P)`` and ``traces[t]``, an ``aif.SequenceTrace`` whose ``qs[f]`` and
    ``err[f]`` are ``(*batch, num_iter, P, L, S_f)`` (the steps every agent has taken, after a masked reset)."""

    def __init__(self, agent: Agent) -> None:
        super().__init__(agent)
        a = agent
        if torch.as_tensor(a.gamma).ndim or torch.as_tensor(a.alpha).ndim:
            raise StrategyError("a NumPy-only strategy runs in aif: per-agent gamma/alpha are torch's only")
        rng = None if a.rng is None else np.random.default_rng(cast(torch.Generator, a.rng).initial_seed())
        nb, m = len(a.model.batch_shape), cast(TabularModel, a.model)
        self.agents = [aif.Agent(m.to_aif(i[len(i) - nb:] if nb else ()), policies=np.asarray(a.policies),
                                 gamma=float(a.gamma), alpha=float(a.alpha), inference=a.inference, efe=a.efe,
                                 efe_terms=a.efe_terms, selection=cast(Selection, a.selection), rng=rng,
                                 learning=cast(Learning, a.learning), planner=a.planner,
                                 inference_horizon=a.inference_horizon, trial_length=a.trial_length,
                                 sequence=a.sequence)
                       for i in np.ndindex(*a.batch_shape)]

    def gather(self, name: str, f: Any = None) -> torch.Tensor:
        """Attribute ``name`` (its entry ``f``) of every ``aif`` agent, stacked to ``(*batch, ...)`` on the model's
        device and dtype."""
        return self.stack([getattr(g, name) if f is None else getattr(g, name)[f] for g in self.agents])

    def stack(self, arrays: list) -> torch.Tensor:
        """One array per ``aif`` agent, stacked to ``(*batch, ...)`` on the model's device and dtype."""
        a = self.agent
        x = np.stack([np.asarray(v) for v in arrays])
        t = torch.as_tensor(x, device=a.device, dtype=None if x.dtype.kind in "iub" else a.dtype)
        return t.reshape(*a.batch_shape, *t.shape[1:])

    def keep_traces(self) -> None:
        """The ``aif`` agents' SPM traces (class docstring), stacked onto the Agent."""
        a: Any = self.agent  # (these attributes exist only with these options, on both Agents)
        agents: list[Any] = self.agents
        if a.sequence.precision is not None:
            a.gamma_trace = [self.gather("gamma_trace", t) for t in range(min(len(g.gamma_trace) for g in agents))]
        if a.sequence.record:
            a.traces = [aif.SequenceTrace(*([self.stack([getattr(g.traces[t], kind)[f] for g in agents])
                                              for f in range(len(a.model.num_states))] for kind in ("qs", "err")))
                        for t in range(min(len(g.traces) for g in agents))]
            if a.sequence.precision is not None:
                a.q_pi_trace = [self.gather("q_pi_trace", t) for t in range(min(len(g.q_pi_trace) for g in agents))]

    def factors(self, name: str) -> list:
        return [self.gather(name, f) for f in range(len(self.agent.model.num_states))]

    def sync_model(self) -> None:
        """The learned counts of the ``aif`` agents back on the Agent's model."""
        a = self.agent
        models = [g.model for g in self.agents]
        a.model = TabularModel.from_aif(models[0] if a.batch_shape == () else models, device=a.device, dtype=a.dtype)

    def reset(self, prior: list | None, agents: Any) -> None:
        a = self.agent
        mask = np.ones(a.batch_shape, bool) if agents is None else np.asarray(agents, bool)
        for g, i in zip(self.agents, np.ndindex(*a.batch_shape), strict=True):
            if mask[i]:
                g.reset(None if prior is None else [p.expand(*a.batch_shape, p.shape[-1])[i].cpu().numpy()
                                                    for p in prior])
        a.prior = self.factors("prior")
        self.keep_traces()

    def infer_states(self, obs: Any, reward: Any, terminated: bool) -> list:
        a = self.agent
        obs = as_obs(a.model, obs, a.device, a.dtype)
        checks.unbatched_observation(obs, categorical_modalities(a.model), a.batch_shape)
        obs = [o.expand((*a.batch_shape, *o.shape[o.ndim - o.is_floating_point():])).cpu().numpy() for o in obs]
        for g, i in zip(self.agents, np.ndindex(*a.batch_shape), strict=True):
            g.infer_states([o[i] if o[i].ndim else int(o[i]) for o in obs])
        if a.learning is not None:
            self.sync_model()
        self.keep_traces()
        return self.factors("qs")

    def infer_policies(self) -> tuple[torch.Tensor, torch.Tensor, dict]:
        for g in self.agents:
            g.infer_policies()
        self.agent.qs = self.factors("qs")  # over time, aif's qs is the average over policies under the new q(pi)
        self.keep_traces()
        return self.gather("q_pi"), self.gather("G"), {k: self.gather("terms", k) for k in self.agents[0].terms}

    def adopt(self, found: tuple, where: str) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
        """Each ``aif`` agent takes its row of the search's q(pi) and G (``aif.Agent.infer_policies(search=)``, which
        checks them against its own policies or plan)."""
        a = self.agent
        q_pi, G, info = found
        rows = [np.asarray(torch.as_tensor(x).detach().cpu()) if x is not None else None for x in (q_pi, G)]
        for g, i in zip(self.agents, np.ndindex(*a.batch_shape), strict=True):
            q_i, G_i = (None if x is None else x[i] if x.ndim > 1 else x for x in rows)
            g.infer_policies(search=lambda *_, q=q_i, G=G_i: (q, G, {}))
        a.qs = self.factors("qs")  # over time, the average over policies under the search's q(pi)
        return (self.gather("q_pi"), None if G is None else self.gather("G"),
                {name: checks.as_tensor(v, f"{where}: info[{name!r}]", ParameterError) for name, v in info.items()})

    def sample_action(self) -> torch.Tensor:
        return self.take(None)

    def take(self, action: torch.Tensor | None) -> torch.Tensor:
        """Each ``aif`` agent samples its action (``None``) or takes its row of ``action`` ``(*batch, F)``."""
        rows = None if action is None else action.cpu().numpy()
        for g, i in zip(self.agents, np.ndindex(*self.agent.batch_shape), strict=True):
            g.sample_action() if rows is None else g.take_action(rows[i])
        if isinstance(self.agent.learning, Learning) and self.agent.learning.learn_E:  # habits learned the q(pi)
            self.sync_model()
        self.agent.prior = self.factors("prior")
        return self.gather("action")

    def state(self) -> dict:
        if self.agent.t > 0:
            raise ParameterError("the agents run NumPy-only strategies, whose windows and episode records are not "
                                 "stored: save them between episodes (after reset())")
        return {}

    def restore(self, state: dict) -> None:
        self.reset(self.agent.prior, None)  # the aif agents start from the saved prior

    def learn(self) -> BeliefModel:
        if self.agent.learning is None:
            return super().learn()
        for g in self.agents:
            g.learn()
        self.sync_model()
        return self.agent.model


class _LearnedQRun(_Run):
    """An observed state (``aif_deep.online``): ``ObservedState`` inference, a ``SelectionRule`` sampled with an
    ``np.random.Generator``, for one agent, and either a ``LearnedQ`` planner with ``TDLearning`` or
    ``SoftActorCritic`` (or no learning), or model-based planning (``aif_deep.shooting``): a ``CrossEntropyShooting``
    planner through a ``RewardStateModel`` learned by ``ModelLearning`` (or not learned)."""

    def __init__(self, agent: Agent) -> None:
        super().__init__(agent)
        a = agent
        shooting = isinstance(a.planner, CrossEntropyShooting)
        for name, kind in (("model", RewardStateModel if shooting else StateVectorModel),
                           ("inference", ObservedState), ("planner", CrossEntropyShooting if shooting else LearnedQ),
                           ("selection", SelectionRule), ("rng", np.random.Generator)):
            if not isinstance(getattr(a, name), kind):
                raise StrategyError(f"an observed-state agent needs {name} = {kind.__name__}(...), got "
                                    f"{getattr(a, name)!r} (aif_deep.online, aif_deep.shooting)")
        learners = (ModelLearning,) if shooting else (TDLearning, SoftActorCritic)
        if a.learning is not None and not isinstance(a.learning, learners):
            raise StrategyError(f"an observed-state agent with planner {type(a.planner).__name__} learns with "
                                f"{' or '.join(f'{k.__name__}(...)' for k in learners)}, got {a.learning!r}")
        if tuple(a.batch_shape) != () or a.policy_horizon != 1:
            raise StrategyError("an observed-state agent is one agent with one-step policies: batch_shape () and "
                                f"policy_horizon 1, got {a.batch_shape} and {a.policy_horizon}")
        self.planner, self.selection = cast(Any, a.planner), cast(SelectionRule, a.selection)
        model, rng = cast(StateVectorModel, a.model), cast(np.random.Generator, a.rng)
        if shooting:
            a.td = None if a.learning is None else ModelRun(cast(ModelLearning, a.learning),
                                                           cast(RewardStateModel, model), rng)
        elif isinstance(a.learning, SoftActorCritic):  # the planner's QFunction is the actor
            a.td = ActorCriticRun(a.learning, self.planner.qfunction, model, a.efe_terms, rng)
        else:
            a.td = None if a.learning is None else TDRun(cast(TDLearning, a.learning), self.planner.qfunction,
                                                         model, a.efe_terms, rng)

    def state(self) -> dict:
        raise ParameterError("an observed-state agent's networks, optimiser and replay buffer are saved with "
                             "torch.save of its planner's QFunction and agent.td, not with save_agent")

    def reset(self, prior: list | None, agents: Any) -> None:
        if agents is not None:
            raise ParameterError("an observed-state agent is one agent: reset() takes no mask")
        self.agent.prior = self.agent.model.prior()
        forget = getattr(self.planner, "reset", None)  # a planner that carries a plan between steps (warm start)
        if callable(forget):
            forget()

    def infer_states(self, obs: Any, reward: Any, terminated: bool) -> list:
        a = self.agent
        qs = cast(ObservedState, a.inference).infer(cast(StateVectorModel, a.model), obs)
        if a.td is not None and a.qs is not None and a.action is not None:
            if reward is None:
                raise ParameterError("TDLearning learns from the reward of the last action: "
                                     "step(obs, reward=..., terminated=...)")
            a.td.observe(a.qs[0], int(a.action[0]), float(reward), qs[0], bool(terminated))
        return qs

    def infer_policies(self) -> tuple[torch.Tensor, torch.Tensor, dict]:
        plan = self.planner.plan(self.agent.model, self.agent.qs, self.agent.rng)
        terms = {k: torch.from_numpy(np.asarray(v)) for k, v in plan.terms.items()}
        return torch.from_numpy(self.selection.probabilities(plan.G, self.agent.steps)), torch.from_numpy(plan.G), terms

    def sample_action(self) -> torch.Tensor:
        a = self.agent
        p = cast(torch.Tensor, a.q_pi).numpy()
        return torch.tensor([int(cast(np.random.Generator, a.rng).choice(len(p), p=p))])

    def take(self, action: torch.Tensor) -> torch.Tensor:
        return action


@dataclass(frozen=True, eq=False)
class BatchTrajectory:
    """Episodes of ``N`` agents run together (``T`` steps, ``M`` modalities, ``F`` factors, ``P`` policies).

    Attributes:
        observations: int ``(N, T + 1, M)``; ``-1`` after an agent's episode ended; ``None`` when some
            modality is observed as an array (use ``obs_by_modality``).
        actions: int ``(N, T, F)``; ``-1`` after the end.
        qs: one ``(N, T, S_f)`` array per factor (posteriors after each observation).
        q_pi, G: ``(N, T, P)``.
        rewards: ``(N, T)`` (0 after the end).
        ended: bool ``(N, T)``: the agent's episode had ended (terminated or truncated) before step t.
        policies: ``(P, H, F)``.
        obs_by_modality: one array ``(N, T + 1, *shape_m)`` per modality (``shape_m`` is ``()`` for an index,
            e.g. ``(8, 8)`` for an image); ``-1`` after the end.
    """

    observations: np.ndarray | None
    actions: np.ndarray
    qs: tuple
    q_pi: np.ndarray
    G: np.ndarray
    rewards: np.ndarray
    ended: np.ndarray
    policies: np.ndarray
    obs_by_modality: tuple = ()

    @property
    def num_steps(self) -> int:
        return int(self.actions.shape[1])


def vectorize(envs: Any, model: BeliefModel) -> gym.vector.VectorEnv:
    """A ``SyncVectorEnv`` over ``envs`` wrapped for the model (``aif.rollout.as_agent_env``: observations a
    tuple with one array per modality, of indices or of images; actions ``(N, num_factors)``); a ``VectorEnv``
    is returned as it is."""
    if isinstance(envs, gym.vector.VectorEnv):
        return envs
    if not isinstance(envs, (list, tuple)) or not all(isinstance(e, gym.Env) for e in envs):
        raise StrategyError(f"envs must be a list of gymnasium.Env or a gymnasium.vector.VectorEnv, got {envs!r:.200}")
    if not envs:
        raise ParameterError("rollout needs at least one environment")
    return gym.vector.SyncVectorEnv([functools.partial(as_agent_env, e, model) for e in envs])


BLOCK_ELEMENTS = 1 << 20  # numbers per block of the compiled step's outputs that rollout allocates (8 MiB)


def _env_action_column(envs, num_controls):
    """How agent actions ``(N, F)`` become the vector environment's: ``None`` for a ``MultiDiscrete`` of one control
    per factor (as they are), or the factor whose column is its ``Discrete(n)`` action: the one factor with more
    than one control (``aif.envs.AgentWrapper``'s rule; an ``aif.envs.POMDPVectorEnv``'s task), which must have
    ``n`` controls."""
    space, F = envs.single_action_space, len(num_controls)
    if isinstance(space, gym.spaces.MultiDiscrete) and space.shape == (F,):
        return None
    if isinstance(space, gym.spaces.Discrete):
        chosen = [f for f, u in enumerate(num_controls) if u > 1] if F > 1 else [0]
        if len(chosen) == 1 and num_controls[chosen[0]] == space.n:
            return chosen[0]
        raise PolicyError(f"the vector environment takes one Discrete({space.n}) action but the agent's factors have "
                          f"{list(num_controls)} controls; pass a list of environments to wrap them for the model")
    raise PolicyError(f"the vector environment's action space {space} does not fit actions of shape (N, {F})")


def rollout(agent: Agent, envs: Any, steps: int, *, seed: int | None = None, options: dict | None = None,
            progress: bool = False) -> BatchTrajectory:
    """Run a batch of agents, one per environment, for up to ``steps`` actions.

    Args:
        agent: an ``aif_deep.Agent`` with ``batch_shape == (N,)``.
        envs: ``N`` Gymnasium environments with discrete observations (``aif.envs``' or any that
            ``aif.envs.AgentWrapper`` accepts, or wrappers around an ``AgentWrapper`` such as
            ``NoisyGridImages``, whose observations are images), or a ``gymnasium.vector.VectorEnv`` of ``N``
            of them whose observations are per modality (a tuple of batched indices or arrays, or indices
            ``(N, M)``) and whose actions are ``(N, F)`` (or ``(N,)`` for the one factor with a choice): for a tabular
            task, ``aif.envs.POMDPVectorEnv(task, N)`` samples every copy at once.
        steps: the most actions per agent; an agent whose episode ends stops there (its rows are filled with
            ``-1``), and the rollout stops once every episode has ended.
        seed: reset seed (of a list of environments, environment ``i`` gets ``seed + i``; a vector environment gets
            ``reset(seed=seed)``: ``aif.envs.POMDPVectorEnv`` seeds its one generator with it).
        options: passed to every environment's ``reset``.
        progress: show a tqdm bar.
    """
    if not (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps >= 1):  # aif's rule
        raise ParameterError(f"steps must be at least 1, got {steps!r}")
    if not isinstance(agent, Agent):
        raise StrategyError(f"agent must be an aif_deep.Agent, got {type(agent).__name__}")
    seed = None if seed is None else check_index(seed, "seed")
    if options is not None and not isinstance(options, dict):
        raise ParameterError(f"options must be a dict or None, got {options!r}")
    envs = vectorize(envs, agent.model)
    N = envs.num_envs
    if agent.batch_shape != (N,):
        raise ParameterError(f"the agent's batch shape is {agent.batch_shape} but there are {N} environments")
    column = _env_action_column(envs, agent.model.num_controls)
    agent.reset()
    obs, _ = envs.reset(seed=seed, options=options)
    M = len(agent.model.num_obs)
    obs, stacked = _by_modality(obs, N, M)
    observations = [obs]  # per step: one array (N, *shape_m) per modality
    actions, rewards, ended = [], [], []
    qs: list[list | None] = []  # per step, None where compiled[t] holds it
    q_pi: list[np.ndarray | None] = []
    G: list[np.ndarray | None] = []
    done = np.zeros(N, dtype=bool)
    as_array = all(categorical_modalities(agent.model)) and all(o.ndim == 1 for o in obs)
    rows: list[np.ndarray | None] = [stacked]  # per step the observations as one index array (N, M), or None
    batch_step = agent._fast  # the compiled step (aif_deep.fast): it writes each step into a row of a block
    compiled: dict[int, tuple] = {}  # step -> (out, tables)
    blocks: dict[int, np.ndarray] = {}  # block b: (rows, N, size), the outputs of steps b * rows ...
    rows_per_block, in_block = 0, []
    some_done = False
    with torch.no_grad():  # the records are arrays: no step needs an autograd graph
        for t in tqdm(range(steps), disable=not progress, desc="rollout", unit="step", leave=False):
            # An agent whose episode ended sees a placeholder (outcome 0, a blank image) and its rows are dropped.
            # Outcome indices go in as one array (N, M), checked in one pass.
            seen = (stacked if stacked is not None else np.stack(obs, -1)) if as_array else obs
            if some_done:
                seen = np.where(done[:, None], 0, seen) if as_array else [np.where(_rows(done, o), 0, o) for o in obs]
            # The compiled step changes nothing unless it succeeds: Agent.step's snapshot (atomic) is not needed.
            action, row = None, None
            if batch_step is not None:
                tables = batch_step.tables_for(agent)
                if tables is not None and rows_per_block == 0:  # blocks of about BLOCK_ELEMENTS numbers
                    rows_per_block = max(1, min(steps, BLOCK_ELEMENTS // (N * tables.size)))
                if tables is not None:
                    b = t // rows_per_block
                    if b not in blocks:
                        blocks[b] = np.empty((min(rows_per_block, steps - b * rows_per_block), N, tables.size))
                    row = blocks[b][t % rows_per_block]
                action = batch_step.step(agent, seen, row)
            if action is not None:
                agent.action = action
                agent._acted()
                compiled[t] = cast(tuple, cast(fast.BatchStep, batch_step).last)
                in_block.append(compiled[t][0] is row)
                qs.append(None)
                q_pi.append(None)
                G.append(None)
            else:
                action = agent.step(seen)
                qs.append([q.cpu().numpy() for q in cast(list, agent.qs)])
                q_pi.append(cast(torch.Tensor, agent.q_pi).cpu().numpy())
                G.append(cast(torch.Tensor, agent.G).cpu().numpy())
            a = action.cpu().numpy()
            actions.append(np.where(done[:, None], -1, a) if some_done else a)
            ended.append(done)
            obs, reward, terminated, truncated, _ = envs.step(a if column is None else a[:, column])
            obs, stacked = _by_modality(obs, N, M)
            rewards.append(np.where(done, 0.0, reward) if some_done else np.array(reward, dtype=float))
            observations.append([np.where(_rows(done, o), -1, o) for o in obs] if some_done else obs)
            rows.append(None if stacked is None else np.where(done[:, None], -1, stacked) if some_done else stacked)
            done = done | terminated | truncated
            some_done = bool(done.any())
            if some_done and done.all():
                break
    grid: np.ndarray | None
    if all(r is not None for r in rows):  # index arrays throughout: one stack
        grid = np.stack(cast(list, rows), 1)  # (N, T + 1, M)
        by_modality = tuple(np.ascontiguousarray(grid[..., m]) for m in range(M))
    else:
        # (N, T + 1, *shape_m) per modality
        by_modality = tuple(np.stack(per_step, 1) for per_step in zip(*observations, strict=True))
        grid = np.stack(by_modality, -1) if all(o.ndim == 2 for o in by_modality) else None
    qs_, q_pi_, G_ = _beliefs(qs, q_pi, G, compiled, blocks if all(in_block) else {})
    return BatchTrajectory(
        observations=None if grid is None else grid.astype(np.int64),
        actions=np.stack(actions, 1).astype(np.int64),
        qs=qs_, q_pi=q_pi_, G=G_,
        rewards=np.stack(rewards, 1).astype(float),
        ended=np.stack(ended, 1),
        policies=np.array(agent.policies),
        obs_by_modality=by_modality,
    )


def _beliefs(qs: list, q_pi: list, G: list, compiled: dict, blocks: dict) -> tuple[tuple, np.ndarray, np.ndarray]:
    """The rollout's ``qs`` (one ``(N, T, S_f)`` per factor), ``q_pi`` and ``G`` ``(N, T, P)`` from the steps' records:
    arrays per step, or ``None`` where the compiled step's output ``compiled[t] = (out, tables)`` holds them. When
    every step was compiled with the same tables into rows of ``blocks`` (``{b: (rows, N, size)}``, in order), each
    field is read from the blocks at once."""
    tables = {id(tab) for _, tab in compiled.values()}
    if len(compiled) == len(qs) and len(tables) == 1 and blocks:
        tab = next(iter(compiled.values()))[1]
        T, rows = len(qs), len(blocks[0])
        used = [blocks[b][: T - b * rows] for b in range(len(blocks)) if b * rows < T]

        def field(part: slice) -> np.ndarray:  # (N, T, width), a copy (one agent's one step would be a view)
            whole = used[0][:, :, part] if len(used) == 1 else np.concatenate([u[:, :, part] for u in used], 0)
            return whole.transpose(1, 0, 2).copy()

        return tuple(field(f) for f in tab.qs), field(tab.q_pi), field(tab.G)
    for t, (out, tab) in compiled.items():
        parts, q_pi[t], G[t], _ = tab.split(out)
        qs[t] = list(parts)
    return (tuple(np.stack(per_factor, 1) for per_factor in zip(*qs, strict=True)), np.stack(q_pi, 1),
            np.stack(G, 1))


def _by_modality(obs, N, M) -> tuple[list, np.ndarray | None]:
    """A vector environment's observation as one array ``(N, *shape_m)`` per modality, from a tuple (one
    batched entry per modality) or an index array ``(N, M)`` / ``(N,)``; and that index array ``(N, M)`` (its
    columns are the list's arrays), ``None`` for a tuple. Copies: an environment may reuse its buffers
    (``SyncVectorEnv(copy=False)``) while the rollout keeps every step."""
    if isinstance(obs, tuple):
        return [np.array(o) for o in obs], None
    obs = np.array(obs).reshape(N, M)
    return [obs[:, m] for m in range(M)], obs


def _rows(mask, o):
    """``mask (N,)`` broadcast against ``o (N, *shape)``."""
    return mask.reshape(-1, *[1] * (o.ndim - 1))
