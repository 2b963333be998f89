"""The Agent in PyTorch: ``aif.Agent``'s thin shell over the cycle's functions, for a batch of agents at once,
and a rollout over a Gymnasium vector environment (or a list of ``aif.envs`` environments).

Every agent in the batch has its own beliefs; they share the policies and the settings, and each has its own
parameters when the model carries a batch (``TabularModel.from_aif([model_1, model_2, ...])``) or when
``gamma`` / ``alpha`` are tensors ``(*batch,)``. With an unbatched model and ``batch_shape=()`` the agent is a
drop-in for ``aif.Agent`` (its attributes are tensors of the same shapes).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

import aif
from aif.agent import Learning, Selection, preset_settings
from aif.control import enumerate_policies
from aif.efe import DEFAULT_TERMS, EFEOptions, TerminalValue
from aif.errors import CallOrderError, ParameterError, PolicyError, StrategyError
from aif.rollout import as_agent_env
from aif.strategies import NUMPY, TORCH, Learner, Planner, SequenceInference, StateInference, require

from . import checks, learning
from .control import policy_posterior, predict, select_action
from .evaluator import check_policies, evaluate_policies
from .full_tree import PolicyEvaluator
from .inference import as_obs, categorical_modalities, infer_states
from .model import BeliefModel, TabularModel


@dataclass
class Agent:
    """A batch of active-inference agents for a ``TabularModel`` (or any ``BeliefModel``).

    Args:
        model: the generative model, possibly with a batch of parameters (``model.batch_shape``).
        policy_horizon: length of the enumerated policies (ignored when ``policies`` is given).
        gamma, alpha: policy and action precision: numbers or tensors ``(*batch,)``.
        inference: state-inference method (``aif.FixedPoint()`` by default, or ``aif.Exact()``).
        efe: ``aif.EFEOptions``.
        efe_terms: ``aif.efe`` term objects that make up G (``aif.Utility()``, ``aif.InfoGain()``, ...).
        selection: ``aif.Selection`` (deterministic / stochastic, full / marginal).
        policies: explicit policies ``(P, H, num_factors)``; enumerated when absent. All policies of the
            horizon (enumerated, or a list equal to them) of a tabular model are scored by one
            ``PolicyEvaluator`` kept while the model stays the same (on CUDA replayed as a CUDA graph from the
            second step); other lists by ``evaluate_policies``.
        control_factors: factors whose actions the enumerated policies vary (all by default).
        rng: ``torch.Generator`` on the model's device, for stochastic selection.
        batch_shape: the agents' batch shape when the model is unbatched (broadcast with the model's).
        terminal_value, discount: optional value of the beliefs at the horizon (see ``evaluate_policies``).
        learning: ``aif.Learning``: Dirichlet learning of A, B (online, in torch: each agent of the batch learns
            its own counts, the model is expanded to the batch) and D or offline (``learn()``), as ``aif.Agent``.
        planner: an ``aif.planning`` planner (``SophisticatedInference``, ``PolicyEnumeration``, ...) that scores
            the current belief instead of the enumerated ``policies``; ``policies`` stay as configured.
        inference_horizon, trial_length: as in ``aif.Agent``, with ``inference=aif.MarginalMessagePassing()`` or
            ``aif.VariationalMessagePassing()``.

    NumPy-only strategies (planners, sequence inference, D or offline learning) run on a ``TabularModel``
    through its NumPy form (``TabularModel.to_aif``), one ``aif.Agent`` per agent of the batch, with the same
    results as ``aif.Agent``; for other models they are a ``StrategyError``.

    Attributes (after a step, each with the leading ``batch`` shape): ``qs``, ``prior``, ``q_pi``, ``G``,
    ``terms``, ``action``; ``t`` (steps taken).
    """

    model: BeliefModel
    policy_horizon: int = 1
    gamma: float | torch.Tensor = 16.0
    alpha: float | torch.Tensor = 16.0
    inference: StateInference | SequenceInference = field(default_factory=aif.FixedPoint)
    efe: EFEOptions = field(default_factory=EFEOptions)
    efe_terms: tuple = DEFAULT_TERMS
    selection: Selection = field(default_factory=Selection)
    policies: np.ndarray | None = None
    control_factors: list | None = None
    rng: torch.Generator | None = None
    batch_shape: tuple = ()
    terminal_value: Callable[..., Any] | None = None
    discount: float = 1.0
    learning: Learning | None = None
    planner: Planner | None = None
    inference_horizon: int = 1
    trial_length: int | None = None

    def __post_init__(self) -> None:
        self._numpy = self._numpy_strategies()
        if not isinstance(self.model, BeliefModel):
            raise TypeError(f"model must implement aif_deep.BeliefModel, got {type(self.model).__name__}")
        if isinstance(self.model, TabularModel):
            checks.model_tensors(self.model)
        for name in ("gamma", "alpha"):
            value = torch.as_tensor(getattr(self, name))
            if not (torch.isfinite(value).all() and (value > 0).all()):
                raise ParameterError(f"{name} must be positive and finite, got {getattr(self, name)}")
        if self.policies is None:
            self.policies = enumerate_policies(self.model.num_controls, self.policy_horizon, self.control_factors)
        self.policies = check_policies(self.model, self.policies)
        self.policy_horizon = self.policies.shape[1]
        # All policies of the horizon, in order (also when given as a list): PolicyEvaluator's case.
        self._enumerated = np.array_equal(self.policies, enumerate_policies(
            self.model.num_controls, self.policy_horizon, self.control_factors))
        self._evaluator = None
        self.batch_shape = tuple(torch.broadcast_shapes(tuple(self.batch_shape), tuple(self.model.batch_shape)))
        E = getattr(self.model, "E", None)
        if E is not None:
            checks.policy_prior(E, len(self.policies), "model.E")
        if self.selection.mode == "stochastic" and self.rng is None:
            raise ParameterError("stochastic selection needs rng (a torch.Generator)")
        if self._numpy:
            self._start_numpy()
        elif self.learning is not None:
            self._start_learning()
        self.reset()

    def _numpy_strategies(self) -> str | None:
        """The first setting that only ``aif`` runs (``None``: everything runs in torch); checks the slots."""
        over_time = isinstance(self.inference, SequenceInference)
        require(self.inference, SequenceInference if over_time else StateInference,  # type: ignore[type-abstract]
                "inference", NUMPY if over_time else TORCH)
        require(self.planner, Planner, "planner", NUMPY, optional=True)  # type: ignore[type-abstract]
        require(self.learning, Learner, "learning", TORCH, optional=True)  # type: ignore[type-abstract]
        if self.learning is not None and not isinstance(self.learning, Learning):
            raise StrategyError(f"learning = {self.learning!r}: aif_deep.Agent runs aif.Learning(...)")
        L = self.learning
        for name, used in (("planner", self.planner is not None), ("inference", over_time),
                           ("learning", L is not None and (L.learn_D or not L.online))):
            if used:
                if not isinstance(self.model, TabularModel):
                    raise StrategyError(f"{name} = {getattr(self, name)!r} runs on NumPy only: aif_deep runs it on "
                                        f"a TabularModel, not on a {type(self.model).__name__}")
                return name
        return None

    def _start_numpy(self) -> None:
        """One ``aif.Agent`` per agent of the batch, on the model's NumPy form, with the same settings."""
        if self.terminal_value is not None or torch.as_tensor(self.gamma).ndim or torch.as_tensor(self.alpha).ndim:
            raise StrategyError(f"{self._numpy} runs in aif: terminal_value and per-agent gamma/alpha are torch's only")
        rng = None if self.rng is None else np.random.default_rng(self.rng.initial_seed())
        nb, m = len(self.model.batch_shape), cast(TabularModel, self.model)
        self._agents = [aif.Agent(m.to_aif(i[len(i) - nb:] if nb else ()), policies=np.asarray(self.policies),
                                  gamma=float(self.gamma), alpha=float(self.alpha), inference=self.inference,
                                  efe=self.efe, efe_terms=self.efe_terms, selection=self.selection, rng=rng,
                                  learning=self.learning, planner=self.planner,
                                  inference_horizon=self.inference_horizon, trial_length=self.trial_length)
                        for i in np.ndindex(*self.batch_shape)]

    def _gather(self, name: str, f: Any = None) -> torch.Tensor:
        """Attribute ``name`` (its entry ``f``) of every ``aif`` agent, stacked to ``(*batch, ...)`` on the model's
        device and dtype."""
        x = np.stack([np.asarray(getattr(a, name) if f is None else getattr(a, name)[f]) for a in self._agents])
        t = torch.as_tensor(x, device=self.device, dtype=None if x.dtype.kind in "iub" else self.dtype)
        return t.reshape(*self.batch_shape, *t.shape[1:])

    def _numpy_model(self) -> None:
        """The learned counts of the ``aif`` agents back on ``self.model``."""
        models = [a.model for a in self._agents]
        self.model = TabularModel.from_aif(models[0] if self.batch_shape == () else models, device=self.device,
                                           dtype=self.dtype)

    def learn(self) -> BeliefModel:
        """Offline learning (``aif.Agent.learn``): the counts updated from the episode since ``reset``, on
        ``agent.model``, which is returned."""
        if not self._numpy or self.learning is None:
            raise ParameterError("learn() needs Learning settings: Agent(..., learning=aif.Learning(...)) with "
                                 "online=False or learn_D=True (online A/B learning happens at every step)")
        for a in self._agents:
            a.learn()
        self._numpy_model()
        return self.model

    def _start_learning(self) -> None:
        """Online A/B learning in torch: each agent of the batch gets its own counts."""
        L, m = cast(Learning, self.learning), cast(TabularModel, self.model)
        for name, wanted in (("pA", L.learn_A), ("pB", L.learn_B)):
            if wanted and getattr(self.model, name, None) is None:
                raise ParameterError(f"learning {name[1]} needs Dirichlet counts: the model has no {name} "
                                     f"(TabularModel.from_aif of a model with {name}, or learn_{name[1]}=False)")
        batch, nb = tuple(self.batch_shape), len(self.model.batch_shape)

        def grow(xs: list | None) -> list | None:
            return None if xs is None else [x.expand(*batch, *x.shape[nb:]).clone() for x in xs]

        self.model = m.replace(A=grow(m.A), B=grow(m.B), C=grow(m.C), D=grow(m.D), pA=grow(m.pA), pB=grow(m.pB),
                               E=None if m.E is None else cast(list, grow([m.E]))[0], batch_shape=batch)
        self.initial_counts = {"pA": self.model.pA, "pB": self.model.pB}

    @classmethod
    def pymdp_legacy(cls, model: BeliefModel, policy_horizon: int = 1, sampling: str = "marginal",
                     **kwargs: Any) -> Agent:
        """The settings of pymdp.legacy's ``Agent`` (as ``aif.Agent.pymdp_legacy``)."""
        return cls(model, policy_horizon, **preset_settings("pymdp_legacy", sampling, **kwargs))

    @classmethod
    def pymdp(cls, model: BeliefModel, policy_horizon: int = 1, sampling: str = "full", **kwargs: Any) -> Agent:
        """The settings of pymdp 1.0's ``Agent`` (as ``aif.Agent.pymdp``)."""
        return cls(model, policy_horizon, **preset_settings("pymdp", sampling, **kwargs))

    @property
    def device(self) -> torch.device:
        return self.model.prior()[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.prior()[0].dtype

    def reset(self, prior: list | None = None, agents: Any = None) -> None:
        """Start an episode: the prior is the model's (or ``prior``); forget the last step.

        ``agents``: optional boolean mask ``(*batch,)``: reset only those agents (the others keep their
        prior and step count) -- for vector environments whose episodes end at different times.
        """
        ref = self.model.prior()
        new = ref if prior is None else checks.beliefs(self.model, prior)
        new = [p.expand(*self.batch_shape, p.shape[-1]).clone() for p in new]
        if self._numpy:
            mask = np.ones(self.batch_shape, bool) if agents is None else np.asarray(agents, bool)
            for a, i in zip(self._agents, np.ndindex(*self.batch_shape), strict=True):
                if mask[i]:
                    a.reset(None if prior is None else [p[i].cpu().numpy() for p in new])
            self.prior = [self._gather("prior", f) for f in range(len(new))]
            self._forget_step()
            return
        if agents is None or not hasattr(self, "prior"):
            self.prior = new
            self._forget_step()
            self._transition = torch.zeros(self.batch_shape, dtype=torch.bool, device=ref[0].device)
            return
        keep = torch.as_tensor(agents, device=ref[0].device, dtype=torch.bool)
        self.prior = [torch.where(keep[..., None], n, p) for n, p in zip(new, self.prior, strict=True)]
        self._transition = self._transition & ~keep  # a new episode's first observation follows no action

    def _forget_step(self) -> None:
        self.qs: list | None = None
        self.q_pi: torch.Tensor | None = None
        self.G: torch.Tensor | None = None
        self.terms: dict | None = None
        self.action: torch.Tensor | None = None
        self.t = 0

    def infer_states(self, obs: Any) -> list:
        """Posterior over states from ``obs``: one entry per modality (an index, probabilities, or, for a
        model's non-categorical modalities, an image or real vector ``(*batch, *shape_m)``), or an int array
        ``(*batch, M)`` when every modality is categorical (``aif_deep.inference.as_obs``)."""
        qs_prev = self.qs
        obs = as_obs(self.model, obs, self.device, self.dtype)
        checks.unbatched_observation(obs, categorical_modalities(self.model), self.batch_shape)
        if self._numpy:
            obs = [o.expand((*self.batch_shape, *o.shape[o.ndim - o.is_floating_point():])).cpu().numpy()
                   for o in obs]
            for a, i in zip(self._agents, np.ndindex(*self.batch_shape), strict=True):
                a.infer_states([o[i] if o[i].ndim else int(o[i]) for o in obs])
            self.qs = [self._gather("qs", f) for f in range(len(self.prior))]
            if self.learning is not None:
                self._numpy_model()
            return self.qs
        self.qs = infer_states(self.model, obs, self.prior, cast(StateInference, self.inference))
        if self.learning is not None:
            self._learn(obs, qs_prev)
        return self.qs

    def _learn(self, obs: list, qs_prev: Any) -> None:
        """One online Dirichlet update of A (from ``obs``) and B (from the last transition), per agent."""
        L, m, nb = cast(Learning, self.learning), cast(Any, self.model), len(self.batch_shape)
        rates = dict(lr=L.lr, forgetting=L.forgetting)
        changes: dict[str, list] = {}
        if L.learn_A:
            prior = self.initial_counts["pA"] if L.forget_to_prior else None
            pA = learning.update_A(m.pA, obs, cast(list, self.qs), A_dependencies=m.A_dependencies, prior=prior,
                                   **rates)
            changes.update(pA=pA, A=[learning.dirichlet_mean(p, nb) for p in pA])
        if L.learn_B and self._transition.any():
            prior = self.initial_counts["pB"] if L.forget_to_prior else None
            new = learning.update_B(m.pB, cast(list, self.qs), qs_prev, self.action, B_dependencies=m.B_dependencies,
                                    prior=prior, **rates)
            # Agents whose episode just began saw no transition: their counts stay as they were (aif.Agent).
            pB = [torch.where(self._transition.reshape(*self.batch_shape, *[1] * (n.ndim - nb)), n, o)
                  for n, o in zip(new, m.pB, strict=True)]
            changes.update(pB=pB, B=[learning.dirichlet_mean(p, nb) for p in pB])
        if changes:
            self.model = m.replace(**changes)

    def infer_policies(self) -> tuple[torch.Tensor, torch.Tensor]:
        """EFE of every policy and the policy posterior. Returns ``(q_pi, G)``, each ``(*batch, P)``."""
        if self.qs is None:
            raise CallOrderError("infer_policies needs a posterior: call infer_states(obs) first")
        if self._numpy:
            for a in self._agents:
                a.infer_policies()
            self.q_pi, self.G = self._gather("q_pi"), self._gather("G")
            # Over time, aif's qs is the average over policies under the new q(pi).
            self.qs = [self._gather("qs", f) for f in range(len(self.qs))]
            keys: dict = self._agents[0].terms or {}
            self.terms = {k: self._gather("terms", k) for k in keys}
            return self.q_pi, self.G
        evaluator = self._policy_evaluator()
        if evaluator is not None:
            self.G, self.terms = evaluator(self.qs)
        else:
            self.G, self.terms = evaluate_policies(self.model, self.qs, policies=self.policies, terms=self._terms(),
                                                   options=self.efe)
        self.q_pi = policy_posterior(self.G, getattr(self.model, "E", None), self.gamma)
        return self.q_pi, self.G

    def _policy_evaluator(self):
        """A ``PolicyEvaluator`` for enumerated policies of a tabular model, kept while the model stays the same
        (on CUDA its graph is captured at the second step and replayed after); ``None`` where it does not
        applies (explicit policy lists, neural models)."""
        if not self._enumerated or not isinstance(self.model, TabularModel):
            return None
        ev = self._evaluator
        if ev is None or ev.model is not self.model or ev.stale:
            ev = self._evaluator = PolicyEvaluator(self.model, self.policy_horizon, self._terms(), self.efe,
                                                   self.control_factors)
        return ev

    def _terms(self) -> tuple:
        """``efe_terms`` with the terminal value as a ``TerminalValue`` term."""
        if self.terminal_value is None:
            return tuple(self.efe_terms)
        return (*self.efe_terms, TerminalValue(self.terminal_value, self.discount))

    def sample_action(self) -> torch.Tensor:
        """Choose an action ``(*batch, num_factors)`` and carry the prior forward."""
        if self.q_pi is None:
            raise CallOrderError("sample_action needs q_pi: call infer_policies() first")
        if self._numpy:
            for a in self._agents:
                a.sample_action()
            self.action = self._gather("action")
            self.prior = [self._gather("prior", f) for f in range(len(self.prior))]
            self.t += 1
            return self.action
        self.action = select_action(self.q_pi, self.policies, self.selection.mode, self.rng, self.alpha,
                                    self.selection.sampling)
        self.prior = predict(self.model, self.qs, self.action)
        self.t += 1
        self._transition = torch.ones_like(self._transition)
        return self.action

    def step(self, obs: Any) -> torch.Tensor:
        """``infer_states(obs)``, ``infer_policies()``, ``sample_action()``; returns the actions."""
        self.infer_states(obs)
        self.infer_policies()
        return self.sample_action()


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
    envs = list(envs)
    if not envs:
        raise ParameterError("rollout needs at least one environment")
    return gym.vector.SyncVectorEnv([functools.partial(as_agent_env, e, model) for e in envs])


def _env_actions(envs, action):
    """Agent actions ``(N, F)`` in the vector environment's action format."""
    space = envs.single_action_space
    if isinstance(space, gym.spaces.MultiDiscrete) and space.shape == (action.shape[-1],):
        return action
    if isinstance(space, gym.spaces.Discrete):
        varying = [f for f in range(action.shape[-1]) if (action[:, f] != 0).any()] or [0]
        if action.shape[-1] == 1:
            return action[:, 0]
        raise PolicyError(f"the vector environment takes one Discrete action but the agent has {action.shape[-1]} "
                          f"factors (varying: {varying}); pass a list of environments to wrap them for the model")
    raise PolicyError(f"the vector environment's action space {space} does not fit actions of shape {action.shape}")


def rollout(agent: Agent, envs: Any, steps: int, *, seed: int | None = None, options: dict | None = None,
            progress: bool = False) -> BatchTrajectory:
    """Run a batch of agents, one per environment, for up to ``steps`` actions.

    Args:
        agent: an ``aif_deep.Agent`` with ``batch_shape == (N,)``.
        envs: ``N`` Gymnasium environments with discrete observations (``aif.envs``' or any that
            ``aif.envs.AgentWrapper`` accepts, or wrappers around an ``AgentWrapper`` such as
            ``NoisyGridImages``, whose observations are images), or a ``gymnasium.vector.VectorEnv`` of ``N``
            of them whose observations are per modality (a tuple of batched indices or arrays) and whose
            actions are ``(N, F)`` (or ``(N,)`` for one factor).
        steps: the most actions per agent; an agent whose episode ends stops there (its rows are filled with
            ``-1``), and the rollout stops once every episode has ended.
        seed: reset seed (environment ``i`` gets ``seed + i``).
        options: passed to every environment's ``reset``.
        progress: show a tqdm bar.
    """
    steps = int(steps)
    if steps < 1:
        raise ParameterError(f"steps must be at least 1, got {steps}")
    envs = vectorize(envs, agent.model)
    N = envs.num_envs
    if agent.batch_shape != (N,):
        raise ParameterError(f"the agent's batch shape is {agent.batch_shape} but there are {N} environments")
    agent.reset()
    obs, _ = envs.reset(seed=seed, options=options)
    M = len(agent.model.num_obs)
    to_np = lambda x: x.detach().cpu().numpy()  # noqa: E731
    obs = _by_modality(obs, N, M)
    observations = [obs]  # per step: one array (N, *shape_m) per modality
    actions, qs, q_pi, G, rewards, ended = [], [], [], [], [], []
    done = np.zeros(N, dtype=bool)
    for _ in tqdm(range(steps), disable=not progress, desc="rollout", unit="step", leave=False):
        # An agent whose episode ended sees a placeholder (outcome 0, a blank image) and its rows are dropped.
        action = agent.step([np.where(_rows(done, o), 0, o) for o in obs])
        a = to_np(action)
        actions.append(np.where(done[:, None], -1, a))
        qs.append([to_np(q) for q in cast(list, agent.qs)])
        q_pi.append(to_np(agent.q_pi))
        G.append(to_np(agent.G))
        ended.append(done.copy())
        obs, reward, terminated, truncated, _ = envs.step(_env_actions(envs, a))
        obs = _by_modality(obs, N, M)
        rewards.append(np.where(done, 0.0, reward))
        observations.append([np.where(_rows(done, o), -1, o) for o in obs])
        done = done | terminated | truncated
        if done.all():
            break
    by_modality = tuple(np.stack(per_step, 1) for per_step in zip(*observations, strict=True))  # (N, T + 1, *shape_m)
    indices = all(o.ndim == 2 for o in by_modality)
    return BatchTrajectory(
        observations=np.stack(by_modality, -1).astype(np.int64) if indices else None,
        actions=np.stack(actions, 1).astype(np.int64),
        qs=tuple(np.stack(per_factor, 1) for per_factor in zip(*qs, strict=True)),
        q_pi=np.stack(q_pi, 1), G=np.stack(G, 1),
        rewards=np.stack(rewards, 1).astype(float),
        ended=np.stack(ended, 1),
        policies=np.array(agent.policies),
        obs_by_modality=by_modality,
    )


def _by_modality(obs, N, M) -> list:
    """A vector environment's observation as one array ``(N, *shape_m)`` per modality: from a tuple (one
    batched entry per modality) or an index array ``(N, M)`` / ``(N,)``."""
    if isinstance(obs, tuple):
        return [np.asarray(o) for o in obs]
    obs = np.asarray(obs).reshape(N, M)
    return [obs[:, m] for m in range(M)]


def _rows(mask, o):
    """``mask (N,)`` broadcast against ``o (N, *shape)``."""
    return mask.reshape(-1, *[1] * (o.ndim - 1))
