"""Online deep active inference for environments with an observed state vector and discrete actions (CartPole),
as a configuration of ``aif_deep.Agent``'s strategy slots:

    model = StateVectorModel(4, 2, transition=Ensemble(4, 2))         # p(x' | x, a, theta), theta ~ an ensemble
    agent = Agent(model, inference=ObservedState(),                    # q(s) is the observed x
                  planner=LearnedQ(QFunction([4], [2])),               # G_phi(x, a): the EFE to go, learned
                  efe_terms=(RewardRisk(1.0), EnsembleInfoGain(0.1)),  # what G_phi is fitted to
                  learning=TDLearning(tricks=(EpistemicCap(0.5),)),    # temporal differences on a replay buffer
                  selection=Softmax(30.0), rng=np.random.default_rng(0))
    action = agent.step(x, reward=r, terminated=done)                  # (the reward and end of the last step)

``examples/cartpole.py`` builds it from a bundle of settings and runs it in Gymnasium's CartPole-v1.

The agent acts from ``q(a | x) = softmax(-gamma G_phi(x, .))``. ``G_phi`` (an ``aif_deep.QFunction`` on the
feature vector ``x``) is fitted by temporal differences to

    y = g(x, a, x') + discount * (1 - terminated) * V_target(x'),    V(x) = -T ln sum_a exp(-G(x, a) / T),

on replayed transitions ``(x, a, r, x', terminated)``, with a Polyak-averaged target network and the Huber
loss (a truncated episode bootstraps: a time limit is not a terminal state). The one-step EFE is

    g = risk - epistemic_weight * info_gain,        risk = -ln p~(r) = -reward_preference * r,

the log-preference over rewards linear in r as ``NeuralModel``'s reward head. In CartPole (r = 1 per step)
termination is the unpreferred outcome: it ends the stream of preferred rewards, so its G is higher.

Information gain. The transition model ``p(x' | x, a, theta) = N(x + f_theta(x, a), sigma^2 I)`` is an
ensemble of K networks (samples of q(theta), as in deep ensembles); the parameter information gain of the
EFE, the expected KL between q(theta) after and before seeing ``x'``, is the mutual information

    I(x'; theta | x, a) = H[p(x' | x, a)] - E_q(theta) H[p(x' | x, a, theta)].

With the mixture's entropy bounded by that of a Gaussian with the same covariance (moment matching; diagonal),

    info_gain(x, a) = 1/2 sum_d ln(1 + Var_k[f_theta_k(x, a)_d] / sigma_d^2)     >= 0,

the estimator of Tschantz et al. ("Reinforcement learning through active inference", 2020), computed when a
transition is replayed (so it decays as the ensemble learns); through the bootstrap, ``G_phi`` carries the
information gain expected along the future path.

No ``EnsembleInfoGain`` term with an ``EpsilonGreedy`` selection and ``TDLearning(hard_min=True)`` (V = min) is
the DQN of Mnih et al. on -Q.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aif.control import enumerate_policies
from aif.efe import Term
from aif.errors import ParameterError, StrategyError
from aif.planning import Plan
from aif.strategies import TORCH, Learner, Planner, StateInference

from . import checks
from .qfunction import QFunction


class SelectionRule(ABC):
    """How an Agent with a ``LearnedQ`` planner turns the G of its one-step policies into action probabilities at
    environment step ``step`` (counted over all episodes); it samples them with its ``np.random.Generator``."""

    @abstractmethod
    def probabilities(self, G: np.ndarray, step: int) -> np.ndarray:
        """q(a) ``(num_actions,)`` from ``G`` ``(num_actions,)``."""


@dataclass(frozen=True)
class Softmax(SelectionRule):
    """Sample a ~ q(a | x) = softmax(-gamma_t * G_phi(x, .)): the policy posterior of a one-step policy.

    The precision over policies rises geometrically from ``gamma_start`` to ``gamma`` over ``anneal_steps``
    environment steps, then stays: where the actions' G differ by a few tenths (CartPole once G_phi is ~ -100),
    a fixed precision either keeps the policy near uniform or makes it greedy before G_phi means anything. The
    final precision stays moderate: a near-greedy policy fills the replay buffer with successful episodes only
    and forgets (benchmarks/results/cartpole.md).

    With ``floor`` > 0 the action is drawn from ``(1 - floor) q(a | x) + floor / K``: a uniform mixture that keeps
    every action's probability at least ``floor / K`` (as DQN's final epsilon does), so that a policy made
    near-deterministic by a wrong G_phi at some state still leaves it (a loop of turns or toggles in MiniGrid,
    benchmarks/results/minigrid.md); the critic learns off-policy from what was done.

    Attributes:
        gamma: the final precision (positive).
        gamma_start: the precision at step 0 (positive); ``None``: ``gamma`` throughout.
        anneal_steps: steps of the geometric rise (positive).
        floor: the uniform share of the action probabilities (in [0, 1]; 0: q(a | x) as it is).
    """

    gamma: float = 30.0
    gamma_start: float | None = 1.0
    anneal_steps: int = 10_000
    floor: float = 0.0

    def __post_init__(self) -> None:
        checks.settings("Softmax", {"gamma": self.gamma, **({} if self.gamma_start is None else
                                                    {"gamma_start": self.gamma_start})}, "positive")
        checks.settings("Softmax", {"anneal_steps": self.anneal_steps}, "count")
        checks.settings("Softmax", {"floor": self.floor}, "fraction")

    def precision(self, step: int) -> float:
        if self.gamma_start is None:
            return float(self.gamma)
        frac = min(1.0, step / self.anneal_steps)
        return float(self.gamma_start * (self.gamma / self.gamma_start) ** frac)

    def probabilities(self, G: np.ndarray, step: int) -> np.ndarray:
        z = -self.precision(step) * (G - G.min())  # shifted: exp never overflows
        p = np.exp(z)
        p = p / p.sum()
        return p if self.floor == 0 else (1.0 - self.floor) * p + self.floor / len(p)


@dataclass(frozen=True)
class EpsilonGreedy(SelectionRule):
    """argmin_a G_phi(x, a), with a uniform action with probability epsilon (DQN's exploration).

    Attributes:
        start, end: epsilon at step 0 and after ``decay_steps`` environment steps (linear in between).
        decay_steps: steps of the linear decay (positive).
    """

    start: float = 1.0
    end: float = 0.02
    decay_steps: int = 10_000

    def __post_init__(self) -> None:
        checks.settings("EpsilonGreedy", {"start": self.start, "end": self.end}, "fraction")
        checks.settings("EpsilonGreedy", {"decay_steps": self.decay_steps}, "count")

    def probabilities(self, G: np.ndarray, step: int) -> np.ndarray:
        eps = self.end + (self.start - self.end) * max(0.0, 1.0 - step / self.decay_steps)
        p = np.full(G.shape, eps / G.shape[0])
        p[int(np.argmin(G))] += 1.0 - eps
        return p


@dataclass(frozen=True)
class RewardRisk(Term):
    """The risk of a transition's reward r: ``-ln p~(r) = -preference * r`` (a cost; ``TDLearning``'s g)."""

    preference: float = 1.0
    key: ClassVar[str] = "risk"
    sign: ClassVar[float] = 1.0

    def __post_init__(self) -> None:
        checks.settings("RewardRisk", {"preference": self.preference}, "finite")


@dataclass(frozen=True)
class EnsembleInfoGain(Term):
    """``weight * I(x'; theta | x, a)`` of a transition under the model's ``Ensemble`` (a value; see the module
    docstring), with the transition likelihood's standard deviation ``noise_sd`` (in the observation's units)."""

    weight: float = 0.1
    noise_sd: float = 0.01
    key: ClassVar[str] = "info_gain"
    sign: ClassVar[float] = -1.0

    def __post_init__(self) -> None:
        checks.settings("EnsembleInfoGain", {"weight": self.weight}, "non-negative")
        checks.settings("EnsembleInfoGain", {"noise_sd": self.noise_sd}, "positive")


@dataclass(frozen=True, eq=False)
class RealisedInfoGain(Term):
    """``weight * KL[q(s' | o') || p(s')]`` of a transition: the information about the hidden state that the belief
    update realised at the next state x' (a value; the state-information-gain term of the EFE, whose expectation
    under the predicted outcome is the EFE's epistemic value, as in Tschantz et al. 2020 and Mazzaglia et al. 2021).

    The state x' is a belief model's summary (e.g. ``aif_deep.rssm.features``: ``[h, E_q onehot z]``) and ``of``
    maps a batch of them ``(B, num_features)`` to their gain ``(B,)`` (non-negative nats), e.g. the KL between the
    posterior and the prior that x' holds. ``TDRun`` computes it once, when the transition is stored, with the model
    of that time (a model trained online moves on, and old states are not re-read by a newer one); through the
    bootstrap G_phi carries the gain expected along the future path. The one-step EFE of ``TDLearning`` is then
    ``g = -preference * r - epistemic_value(weight * (gain - baseline))`` (with an ``EnsembleInfoGain`` too, the two
    values are summed before the ``OnlineTrick``s).

    The baseline: a gain that every step realises whatever the agent does (a world model trained with free nats lets
    its posterior move about that much from its prior at no cost, benchmarks/results/minigrid.md) is a constant
    value per step, which in an episodic task is a reward for not ending the episode; subtracted, the term values the
    gain above it and charges for steps below it.

    Attributes:
        weight: nats of log-preference per nat of information (non-negative; 0 switches the term off).
        of: the gain of states ``(B, num_features) -> (B,)``.
        baseline: nats subtracted from each step's gain (finite; 0: none).
    """

    weight: float = 0.1
    of: Callable[[torch.Tensor], torch.Tensor] | None = None
    baseline: float = 0.0
    key: ClassVar[str] = "state_info_gain"
    sign: ClassVar[float] = -1.0

    def __post_init__(self) -> None:
        checks.settings("RealisedInfoGain", {"weight": self.weight}, "non-negative")
        checks.settings("RealisedInfoGain", {"baseline": self.baseline}, "finite")
        if not callable(self.of):
            raise StrategyError(f"RealisedInfoGain.of must be callable (states (B, D) -> gains (B,)), got {self.of!r}")


class OnlineTrick:
    """A change to the one-step EFE of ``TDLearning``, passed as ``TDLearning(tricks=(...))``; the hook leaves g
    as it is unless a trick overrides it."""

    def epistemic_value(self, value: torch.Tensor) -> torch.Tensor:
        """The epistemic value ``(B,)`` that enters g, from ``weight * info_gain`` ``(B,)``."""
        return value


@dataclass(frozen=True)
class EpistemicCap(OnlineTrick):
    """``min(weight * info_gain, cap)``: no transition's expected information is worth more than ``cap`` nats of
    log-preference (compare the per-step risk ``|preference * r|``).

    Why: before the ensemble has been fitted its members disagree by their random initialisation, not by what
    the data leave uncertain, and that transient, differing between actions, can dominate g and drive a
    rising-precision policy onto one action before G_phi has learned anything. The cap changes the objective
    only where ``w * info_gain`` exceeds it; where it exceeds it everywhere, the value is a constant that no
    longer steers. Measurements: benchmarks/results/cartpole.md.
    """

    cap: float = 0.5

    def __post_init__(self) -> None:
        checks.settings("EpistemicCap", {"cap": self.cap}, "positive")

    def epistemic_value(self, value: torch.Tensor) -> torch.Tensor:
        return value.clamp(max=self.cap)


class Ensemble(nn.Module):
    """K (``size``) transition networks x -> x + f_k(x, a) with two hidden layers of width ``hidden``, evaluated
    in one batched pass; ``seed`` seeds the initial weights (the members differ by their draws); ``max_bytes``: the
    most bytes the weights may take (estimated before allocating; 1 GiB by default)."""

    def __init__(self, num_features: int, num_actions: int, size: int = 5, hidden: int = 64, seed: int = 0,
                 max_bytes: int = 2**30) -> None:
        super().__init__()
        checks.settings("Ensemble", {"num_features": num_features, "num_actions": num_actions, "size": size,
                                     "hidden": hidden, "max_bytes": max_bytes}, "count")
        checks.settings("Ensemble", {"seed": seed}, "natural")
        self.num_actions = int(num_actions)
        sizes = [num_features + num_actions, hidden, hidden, num_features]
        checks.byte_budget("Ensemble", {f"weights[{i}]": checks.linear_bytes(*sizes[i:i + 2], copies=size)
                                        for i in range(3)}, max_bytes, "reduce hidden, num_features or size")
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        gen = torch.Generator().manual_seed(int(seed))
        for i, o in zip(sizes[:-1], sizes[1:], strict=True):
            bound = 1 / math.sqrt(i)  # nn.Linear's default initialisation, per member
            self.weights.append(nn.Parameter(torch.empty(size, i, o).uniform_(-bound, bound, generator=gen)))
            self.biases.append(nn.Parameter(torch.empty(size, 1, o).uniform_(-bound, bound, generator=gen)))

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Predicted change f_k(x, a): x ``(B, D)``, a ``(B,)`` int -> ``(K, B, D)``."""
        h = torch.cat([x, F.one_hot(a, self.num_actions).to(x.dtype)], -1)
        h = h.unsqueeze(0).expand(self.weights[0].shape[0], -1, -1)  # (K, B, D + U)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = F.elu(h)
        return h

    @torch.no_grad()
    def info_gain(self, x: torch.Tensor, a: torch.Tensor, noise_sd: float,
                  pred: torch.Tensor | None = None) -> torch.Tensor:
        """1/2 sum_d ln(1 + Var_k f_k(x, a)_d / sigma^2): ``(B,)``, non-negative (see the module docstring);
        ``pred``: the members' predictions ``(K, B, D)`` when already computed."""
        pred = self(x, a) if pred is None else pred
        return 0.5 * torch.log1p(pred.var(0, unbiased=False) / noise_sd ** 2).sum(-1)


@dataclass(frozen=True, eq=False)
class StateVectorModel:
    """The generative model of an environment whose state is observed: a feature vector ``x`` ``(num_features,)``,
    one factor of ``num_actions`` actions, and the learned transition model ``p(x' | x, a, theta)``
    (``transition``: an ``Ensemble``, whose disagreement is the ``EnsembleInfoGain``; ``None``: no transition
    model, as DQN). An ``aif_deep.Agent`` runs it with ``ObservedState`` inference and a ``LearnedQ`` planner;
    it has no likelihood to invert or outcomes to predict."""

    num_features: int
    num_actions: int
    transition: Ensemble | None = None

    def __post_init__(self) -> None:
        checks.settings("StateVectorModel", {"num_features": self.num_features, "num_actions": self.num_actions},
                        "count")
        if self.num_actions < 2:
            raise ParameterError(f"StateVectorModel.num_actions must be at least 2, got {self.num_actions}")
        if self.transition is not None and not isinstance(self.transition, Ensemble):
            raise StrategyError(f"StateVectorModel.transition must be an aif_deep.Ensemble, got {self.transition!r}")

    num_states = property(lambda self: [int(self.num_features)])
    num_obs = property(lambda self: [int(self.num_features)])
    num_controls = property(lambda self: [int(self.num_actions)])
    A_dependencies = property(lambda self: [[0]])
    num_factors = num_modalities = property(lambda self: 1)
    batch_shape = property(lambda self: ())

    def prior(self) -> list:
        """No prior over an observed state: zeros ``(num_features,)``, which give the device and dtype."""
        return [torch.zeros(int(self.num_features))]

    def _unused(self, *args: Any) -> Any:
        raise StrategyError("a StateVectorModel's state is observed: run it with inference=ObservedState() and "
                            "planner=LearnedQ(...), which need no likelihood or predicted outcomes")

    log_likelihood = predict_all = outcome_terms = _unused


@dataclass(frozen=True)
class ObservedState(StateInference):
    """The state is observed: the posterior is a point mass on the observation ``x``, carried as ``qs = [x]``
    (float32 ``(num_features,)``), for a ``StateVectorModel``."""

    backends: ClassVar[frozenset[str]] = frozenset({TORCH})

    def infer(self, model: StateVectorModel, obs: Any) -> list:
        x = torch.as_tensor(obs, dtype=torch.float32)
        if x.shape != (model.num_features,) or not torch.isfinite(x).all():
            raise ParameterError(f"obs must be a finite state vector of shape ({model.num_features},), got {obs!r}")
        return [x]


@dataclass(frozen=True, eq=False)
class LearnedQ(Planner):
    """Score each action of a one-step policy by a learned EFE to go, ``G = G_phi(x, .)`` (``qfunction``), which
    ``TDLearning`` fits to the agent's ``efe_terms``."""

    qfunction: QFunction
    backends: ClassVar[frozenset[str]] = frozenset({TORCH})

    def __post_init__(self) -> None:
        if not isinstance(self.qfunction, QFunction):
            raise StrategyError(f"LearnedQ.qfunction must be an aif_deep.QFunction, got {self.qfunction!r}")

    @torch.no_grad()
    def plan(self, model: Any, qs: Any, rng: Any = None) -> Plan:
        """G of every one-step policy ``(num_actions,)`` at the observed state ``qs[0]``."""
        G = self.qfunction.net(qs[0]).numpy().astype(np.float64)
        return Plan(G, enumerate_policies([len(G)], 1))


@dataclass(frozen=True)
class TDLearning(Learner):
    """Temporal-difference learning of a ``LearnedQ`` planner's G_phi (and of the model's transition ensemble)
    from a replay buffer of the agent's transitions, to the agent's ``efe_terms`` (``RewardRisk`` and optionally
    ``EnsembleInfoGain``); see the module docstring. The buffer and optimiser live in ``TDRun``, built by the Agent.

    Attributes:
        lr: Adam's learning rate (G_phi and the ensemble).
        batch_size: transitions per update.
        buffer_size: capacity of the replay buffer (oldest transitions are overwritten).
        learning_starts: environment steps before the first update.
        train_every: environment steps per update.
        discount: discount of V(next).
        tau: Polyak rate of the target network per update.
        hard_min: V = min_a G_target (DQN) instead of the soft minimum at the QFunction's temperature.
        max_grad_norm: gradient clipping of G_phi's update.
        tricks: ``OnlineTrick``s applied to the one-step EFE (e.g. ``EpistemicCap(0.5)``).
        n_step: transitions summed in the TD target (1: the one-step target above). With n > 1,
            ``y = sum_{k<m} discount^k g_k + discount^m (1 - terminated_m) V_target(x'_m)`` over the ``m <= n``
            replayed transitions that follow one another in the same episode (the sum stops at a terminal
            transition, which does not bootstrap, at the end of a truncated episode, which does, and at the newest
            transition); the rewards of the later steps are the behaviour policy's (no off-policy correction, as
            in Rainbow's n-step returns), and the soft value enters at the last step only.
        twin: fit two G heads (G_phi and a second ``QFunction`` of the same shape, initialised from the agent's
            ``rng``, each with its target network) to the same target, and bootstrap with the pessimistic
            ``max(G_target_1, G_target_2)`` (SAC's clipped double Q with G = -Q, against the overestimation of a
            minimum over noisy estimates); the planner acts on G_phi alone.
        lr_end: Adam's learning rate after ``lr_decay_steps`` updates, reached linearly from ``lr`` (``None``:
            ``lr`` throughout).
        lr_decay_steps: updates of the linear learning-rate schedule.
    """

    lr: float = 1e-3
    batch_size: int = 64
    buffer_size: int = 100_000
    learning_starts: int = 1000
    train_every: int = 2
    discount: float = 0.99
    tau: float = 0.005
    hard_min: bool = False
    max_grad_norm: float = 10.0
    tricks: tuple = ()
    n_step: int = 1
    twin: bool = False
    lr_end: float | None = None
    lr_decay_steps: int = 50_000
    backends: ClassVar[frozenset[str]] = frozenset({TORCH})

    def __post_init__(self) -> None:
        counts = ("batch_size", "buffer_size", "train_every", "n_step", "lr_decay_steps")
        checks.settings("TDLearning", {n: getattr(self, n) for n in counts}, "count")
        if self.lr_end is not None:
            checks.settings("TDLearning", {"lr_end": self.lr_end}, "positive")
        checks.settings("TDLearning", {"learning_starts": self.learning_starts}, "non-negative")
        checks.settings("TDLearning", {"lr": self.lr, "max_grad_norm": self.max_grad_norm}, "positive")
        checks.settings("TDLearning", {"discount": self.discount, "tau": self.tau}, "fraction")
        for trick in self.tricks:
            if not isinstance(trick, OnlineTrick):
                raise StrategyError(f"TDLearning.tricks holds OnlineTrick objects (e.g. EpistemicCap(0.5)), got "
                                    f"{trick!r}")


class TDRun:
    """The state of ``TDLearning`` in one agent: the replay buffer, the target network and the optimiser.

    Args:
        settings: ``TDLearning``.
        qfunction: the ``LearnedQ`` planner's G_phi (trained in place).
        model: the agent's ``StateVectorModel`` (its ``transition`` ensemble is trained in place).
        terms: the agent's EFE terms: a ``RewardRisk`` and, with an ensemble, an ``EnsembleInfoGain``.
        rng: the agent's ``np.random.Generator`` (draws the replayed transitions).
    """

    def __init__(self, settings: TDLearning, qfunction: QFunction, model: StateVectorModel, terms: Sequence[Term],
                 rng: np.random.Generator) -> None:
        self.settings, self.qf, self.rng = s, _, _ = settings, qfunction, rng
        kinds = {type(t) for t in terms}
        self.risk = next((t for t in terms if isinstance(t, RewardRisk)), None)
        self.info = next((t for t in terms if isinstance(t, EnsembleInfoGain)), None)
        self.realised = next((t for t in terms if isinstance(t, RealisedInfoGain)), None)
        if self.risk is None or not kinds <= {RewardRisk, EnsembleInfoGain, RealisedInfoGain}:
            raise StrategyError(f"TDLearning fits G_phi to efe_terms = (RewardRisk(...),) with, optionally, "
                                f"EnsembleInfoGain(...) and RealisedInfoGain(...), got {tuple(terms)!r}")
        self.ensemble = model.transition if self.info is not None and self.info.weight > 0 else None
        if self.info is not None and model.transition is None:
            raise StrategyError("EnsembleInfoGain needs the model's transition ensemble: StateVectorModel(..., "
                                "transition=Ensemble(...))")
        if self.ensemble is not None and self.ensemble.weights[0].shape[0] < 2:
            raise ParameterError("EnsembleInfoGain is the disagreement of the ensemble's members: it needs at least "
                                 f"2, got {self.ensemble.weights[0].shape[0]}")
        self.target = copy.deepcopy(qfunction).requires_grad_(False)
        self.qf2 = self.target2 = None
        if s.twin:  # a second head of the same shape with its own initial weights, drawn from the agent's rng
            self.qf2 = copy.deepcopy(qfunction)
            with torch.random.fork_rng():
                torch.manual_seed(int(rng.integers(2**62)))
                for layer in self.qf2.modules():
                    if isinstance(layer, nn.Linear):
                        layer.reset_parameters()
            self.target2 = copy.deepcopy(self.qf2).requires_grad_(False)
        critics: list[torch.Tensor] = list(qfunction.parameters())
        if self.qf2 is not None:
            critics += list(self.qf2.parameters())
        params = critics + ([] if self.ensemble is None else list(self.ensemble.parameters()))
        # One optimiser over G_phi and the ensemble (disjoint parameters, so their updates stay independent):
        # on a small CPU network the cost is per-kernel overhead, and this halves the number of kernels.
        self.opt = torch.optim.Adam(params, lr=s.lr, foreach=True)
        self._q_params: list[torch.Tensor] = critics
        self._target_params: list[torch.Tensor] = list(self.target.parameters())
        if self.target2 is not None:
            self._target_params += list(self.target2.parameters())
        self.updates = 0
        N, D = s.buffer_size, model.num_features
        self.obs, self.next_obs = torch.zeros(N, D), torch.zeros(N, D)
        self.action, self.reward, self.terminated = torch.zeros(N, dtype=torch.long), torch.zeros(N), torch.zeros(N)
        # continues[i]: transition i follows transition i - 1 in the same episode (its x is the last one's x').
        self.continues = torch.zeros(N, dtype=torch.bool)
        self.gain = torch.zeros(N)  # RealisedInfoGain's gain at each next state, computed when stored
        self._last_next: torch.Tensor | None = None
        self.size = self.steps = 0
        self.last_info_gain = self.last_capped = float("nan")

    def observe(self, x: torch.Tensor, action: int, reward: float, x1: torch.Tensor, terminated: bool) -> None:
        """Store a transition and, every ``train_every`` steps after ``learning_starts``, update."""
        i = self.steps % self.settings.buffer_size
        self.obs[i], self.next_obs[i], self.action[i] = x, x1, int(action)
        self.reward[i], self.terminated[i] = float(reward), float(terminated)
        if self.realised is not None and self.realised.weight > 0:
            with torch.no_grad():
                self.gain[i] = self.realised.of(x1[None])[0]  # type: ignore[misc]
        last = self._last_next
        self.continues[i] = last is not None and (x is last or bool(torch.equal(x, last)))
        self._last_next = x1
        self.steps += 1
        self.size = min(self.size + 1, self.settings.buffer_size)
        if self.steps >= self.settings.learning_starts and self.steps % self.settings.train_every == 0:
            self.update()

    def epistemic_value(self, info_gain: torch.Tensor | None, realised: torch.Tensor | None = None) -> torch.Tensor:
        """``weight * info_gain`` (``EnsembleInfoGain``'s) plus ``weight * realised`` (``RealisedInfoGain``'s) through
        the tricks: ``(B,)`` -> ``(B,)``."""
        value = torch.zeros(()) if info_gain is None else (0.0 if self.info is None else self.info.weight) * info_gain
        if realised is not None and self.realised is not None:
            value = value + self.realised.weight * (realised - self.realised.baseline)
        for trick in self.settings.tricks:
            value = trick.epistemic_value(value)
        return value

    def one_step_efe(self, reward: torch.Tensor, info_gain: torch.Tensor | None = None,
                     realised: torch.Tensor | None = None) -> torch.Tensor:
        """g = -preference * r - epistemic_value(info_gain, realised) for a batch of transitions: ``(B,)`` (or
        ``(B, n)``); ``realised``: the ``RealisedInfoGain`` gains stored with them."""
        g = -float(self.risk.preference) * reward  # type: ignore[union-attr]
        return g if info_gain is None and realised is None else g - self.epistemic_value(info_gain, realised)

    def target_G(self, x1: torch.Tensor) -> torch.Tensor:
        """The target network's G ``(B, K)`` at states ``x1`` ``(B, D)``; with ``twin``, the pessimistic
        ``max(G_target_1, G_target_2)``."""
        G = self.target(x1)
        return G if self.target2 is None else torch.maximum(G, self.target2(x1))

    def next_value(self, x1: torch.Tensor) -> torch.Tensor:
        """V(x') ``(B,)`` of the TD target for next states ``x1`` ``(B, D)``: the target network's soft minimum
        (``hard_min``: its minimum; with ``twin``, of the pessimistic ``target_G``); ``aif_deep.actor_critic``
        takes the expectation under its policy instead."""
        if self.target2 is None:
            return self.target(x1).min(-1).values if self.settings.hard_min else self.target.value(x1)
        G, T = self.target_G(x1), self.qf.temperature
        return G.min(-1).values if self.settings.hard_min else -T * torch.logsumexp(-G / T, -1)

    def n_step_indices(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The buffer positions ``(B, n)`` of the ``n_step`` transitions from each of ``idx`` ``(B,)`` on, and which
        of them enter its target ``(B, n)`` bool: those that follow one another in the same episode, up to and
        including a terminal one, and not past the newest transition."""
        n, N = self.settings.n_step, self.settings.buffer_size
        k = torch.arange(n)
        pos = (idx[:, None] + k) % N
        newest = (self.steps - 1) % N
        ahead = (newest - idx) % N  # transitions stored after idx
        ok = k[None, :] <= ahead[:, None]
        ok[:, 1:] &= self.continues[pos[:, 1:]] & (self.terminated[pos[:, :-1]] == 0)
        return pos, torch.cumprod(ok.long(), -1).bool()

    def n_step_target(self, idx: torch.Tensor, info_gain: torch.Tensor | None) -> torch.Tensor:
        """The ``n_step`` TD target ``(B,)`` of the transitions at ``idx`` ``(B,)`` (``TDLearning``'s docstring);
        ``info_gain``: that of the first transitions ``(B,)`` (the later ones' is computed here)."""
        s = self.settings
        pos, ok = self.n_step_indices(idx)
        B, n = pos.shape
        ig = None
        if info_gain is not None:
            later = pos[:, 1:].reshape(-1)
            ig_later = self.ensemble.info_gain(self.obs[later], self.action[later],  # type: ignore[union-attr]
                                               self.info.noise_sd).reshape(B, n - 1)  # type: ignore[union-attr]
            ig = torch.cat([info_gain[:, None], ig_later], 1)
        g = self.one_step_efe(self.reward[pos], ig, self.stored_gain(pos))  # (B, n)
        okf = ok.to(g.dtype)
        powers = s.discount ** torch.arange(n, dtype=g.dtype)
        steps = ok.sum(-1)  # m >= 1
        last = pos.gather(1, (steps - 1)[:, None])[:, 0]
        bootstrap = (s.discount ** steps.to(g.dtype)) * (1.0 - self.terminated[last])
        return (okf * powers * g).sum(-1) + bootstrap * self.next_value(self.next_obs[last])

    def stored_gain(self, idx: torch.Tensor) -> torch.Tensor | None:
        """The ``RealisedInfoGain`` gains stored with the transitions at ``idx`` (any shape); ``None`` without it."""
        return None if self.realised is None or self.realised.weight == 0 else self.gain[idx]

    def learning_rate(self) -> float:
        """Adam's learning rate for the next update (``lr``, or the linear schedule to ``lr_end``)."""
        s = self.settings
        if s.lr_end is None:
            return s.lr
        return s.lr + (s.lr_end - s.lr) * min(1.0, self.updates / s.lr_decay_steps)

    def update(self) -> float:
        """One TD step of G_phi (and one regression step of the ensemble) on a replayed batch; the TD loss."""
        s = self.settings
        idx = torch.from_numpy(self.rng.integers(0, self.size, s.batch_size))
        x, a, r, x1, done = (self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx],
                             self.terminated[idx])
        pred, ig = None, None
        if self.ensemble is not None:
            pred = self.ensemble(x, a)  # (K, B, D), before this step's update: the gain still to be had
            ig = self.ensemble.info_gain(x, a, self.info.noise_sd, pred)  # type: ignore[union-attr]
            self.last_info_gain = float(ig.mean())
            self.last_capped = float((self.epistemic_value(ig) != self.info.weight * ig).float().mean())  # type: ignore[union-attr]
        with torch.no_grad():
            if s.n_step == 1:
                y = self.one_step_efe(r, ig, self.stored_gain(idx)) + s.discount * (1.0 - done) * self.next_value(x1)
            else:
                y = self.n_step_target(idx, ig)
        loss = F.smooth_l1_loss(self.qf.net(x).gather(1, a[:, None])[:, 0], y)
        total = loss
        if self.qf2 is not None:
            total = total + F.smooth_l1_loss(self.qf2.net(x).gather(1, a[:, None])[:, 0], y)
        # Each ensemble member regresses the observed change x' - x (the Gaussian likelihood's mean).
        total = total if pred is None else total + ((pred - (x1 - x)) ** 2).mean()
        if s.lr_end is not None:
            for group in self.opt.param_groups:
                group["lr"] = self.learning_rate()
        self.updates += 1
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        nn.utils.clip_grad_norm_(self._q_params, s.max_grad_norm)
        self.opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._q_params, s.tau)
        return float(loss.detach())
