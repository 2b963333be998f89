"""Model-based active inference for an observed state vector: plan through a learned ensemble by the cross-entropy
method over action sequences (Tschantz et al., "Reinforcement learning through active inference", 2020).

Where ``aif_deep.online`` learns the EFE to go ``G_phi(x, a)`` by temporal differences, this module scores action
sequences directly through the learned generative model, re-planned at every decision:

    model = RewardStateModel(2, 3, transition=Ensemble(2, 3), outcome=RewardModel(2, 3))
    planner = CrossEntropyShooting(horizon=25, efe_terms=(RewardRisk(1.0), EnsembleInfoGain(1.0)))
    plan = planner.plan(model, [x], rng)                 # G of each first action (its best sampled continuation)
    run = ModelRun(ModelLearning(), model, rng)          # the replay buffer and the optimiser
    run.observe(x, a, r, x1, terminated)                 # stores and, every train_every steps, fits the model

The expected free energy of an action sequence ``a_1..a_H`` from the observed ``x_1`` (``sequence_efe``) is the sum
of the one-step terms of ``aif_deep.online`` along the predicted path, for as long as the episode is expected to
last:

    G(a_1..a_H) = sum_t discount^(t-1) alive_t [risk_t - epistemic_value(w * info_gain_t)],
    risk_t = -preference * r(x_t, a_t, x_t+1),                                       (RewardRisk)
    info_gain_t = 1/2 sum_d ln(1 + Var_k[f_k(x_t, a_t)_d] / sigma^2),               (EnsembleInfoGain)
    x_t+1 = clip(x_t + mean_k f_k(x_t, a_t)),    alive_t+1 = alive_t (1 - p(end | x_t, a_t, x_t+1)),

the ensemble's mean path (moment matching, as the information gain's Gaussian bound) kept inside the model's
``bounds``, with the reward and the
probability that the episode ends from a learned ``RewardModel``. ``epistemic_value`` applies the
``aif_deep.online.OnlineTrick``s (e.g. ``EpistemicCap``) as ``TDLearning`` does. A reached terminal state is
absorbing and costs nothing, so where the reward is the same on every step (MountainCar's -1) reaching the end
early is the only way to lower the risk, and until an end has been seen only the information gain tells sequences
apart: the sparse-reward case that this objective is for.

``CrossEntropyShooting`` is the torch counterpart of ``aif.planning.CrossEntropyPlanner`` (the same settings and
the same plan over first actions): sequences are drawn from a categorical distribution per step, the ``elites``
with the lowest G refit it, and each first action is scored by its best sampled continuation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aif.control import enumerate_policies
from aif.errors import ParameterError, PolicyError, StrategyError
from aif.planning import Plan
from aif.strategies import TORCH, Learner, Planner

from . import checks
from .online import EnsembleInfoGain, OnlineTrick, RewardRisk, StateVectorModel


class RewardModel(nn.Module):
    """The outcome of a transition ``(x, a, x')``: its reward and the logit of the probability that the episode ends
    there, from one network with two hidden ELU layers of width ``hidden`` (``seed`` seeds the initial weights)."""

    def __init__(self, num_features: int, num_actions: int, hidden: int = 64, seed: int = 0) -> None:
        super().__init__()
        checks.settings("RewardModel", {"num_features": num_features, "num_actions": num_actions,
                                        "hidden": hidden}, "count")
        checks.settings("RewardModel", {"seed": seed}, "natural")
        self.num_actions = int(num_actions)
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            self.net = nn.Sequential(nn.Linear(2 * num_features + num_actions, hidden), nn.ELU(),
                                     nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor, a: torch.Tensor, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x, x1 ``(B, D)``, a ``(B,)`` int -> (reward ``(B,)``, end logit ``(B,)``)."""
        out = self.net(torch.cat([x, F.one_hot(a, self.num_actions).to(x.dtype), x1], -1))
        return out[..., 0], out[..., 1]


@dataclass(frozen=True, eq=False)
class RewardStateModel(StateVectorModel):
    """A ``StateVectorModel`` whose transition ensemble and outcomes (``outcome``: a ``RewardModel``) are both
    learned, so that action sequences can be scored through it (``CrossEntropyShooting``).

    ``bounds``: ``(low, high)``, each a number or ``(num_features,)``: the box the states lie in (a Gymnasium
    observation space's, in the agent's units), to which predicted states are clipped; ``None``: unbounded. Why:
    outside the data the members disagree without end, so a planner scoring information gain would plan through
    states that cannot occur (positions beyond MountainCar's walls) rather than learn where it can go.
    """

    outcome: RewardModel | None = None
    bounds: tuple | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.transition is None or not isinstance(self.outcome, RewardModel):
            raise StrategyError("RewardStateModel needs transition=aif_deep.online.Ensemble(...) and "
                                f"outcome=RewardModel(...), got {self.transition!r} and {self.outcome!r}")
        if self.bounds is not None:
            low, high = (np.broadcast_to(np.asarray(b, dtype=np.float64), (self.num_features,))
                         for b in self.bounds)
            if not (np.isfinite(low).all() and np.isfinite(high).all() and (low < high).all()):
                raise ParameterError(f"RewardStateModel.bounds must be finite (low, high) with low < high in every "
                                     f"feature, got {self.bounds!r}")

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        """States ``(..., num_features)`` clipped to ``bounds`` (unchanged without)."""
        if self.bounds is None:
            return x
        low, high = (torch.as_tensor(np.asarray(b, dtype=np.float32)).expand(int(self.num_features))
                     for b in self.bounds)
        return torch.maximum(torch.minimum(x, high), low)


def _term(terms: tuple, kind: type) -> Any:
    return next((t for t in terms if isinstance(t, kind)), None)


@torch.no_grad()
def sequence_efe(model: RewardStateModel, x: torch.Tensor, actions: torch.Tensor, efe_terms: tuple,
                 tricks: tuple = (), discount: float = 1.0) -> tuple[torch.Tensor, dict]:
    """G of action sequences from the observed state ``x`` ``(D,)`` through the learned model (module docstring).

    Args:
        actions: int ``(N, H)``: N sequences of H actions.
        efe_terms: a ``RewardRisk`` and optionally an ``EnsembleInfoGain`` (w and sigma).
        tricks: ``OnlineTrick``s applied to ``w * info_gain`` at each step (as ``TDLearning``'s).
        discount: discount per step.

    Returns:
        G ``(N,)`` (lower is better) and its terms: ``risk`` and ``info_gain`` ``(N,)`` (the latter as the
        epistemic value, after the weight and the tricks), with ``G = risk - info_gain``.
    """
    risk_term, info_term = _term(efe_terms, RewardRisk), _term(efe_terms, EnsembleInfoGain)
    ensemble, outcome = model.transition, model.outcome
    assert ensemble is not None and outcome is not None  # RewardStateModel checked it
    N, H = actions.shape
    x_t = x.to(torch.float32).expand(N, -1)  # (N, D): the mean path of each sequence
    alive = torch.ones(N)
    risk, value = torch.zeros(N), torch.zeros(N)
    for t in range(H):
        a_t = actions[:, t]
        pred = ensemble(x_t, a_t)  # (K, N, D): each member's predicted change
        x_next = model.clip(x_t + pred.mean(0))
        r, end_logit = outcome(x_t, a_t, x_next)
        scale = discount ** t * alive
        risk += scale * -float(risk_term.preference) * r
        if info_term is not None and info_term.weight > 0:
            v = info_term.weight * ensemble.info_gain(x_t, a_t, info_term.noise_sd, pred)
            for trick in tricks:
                v = trick.epistemic_value(v)
            value += scale * v
        alive = alive * (1.0 - torch.sigmoid(end_logit))
        x_t = x_next
    return risk - value, {"risk": risk, "info_gain": value}


class ShootingMemory:
    """The previous plan of a ``CrossEntropyShooting`` with ``warm_start``: its last refit distribution ``p``
    ``(H, K)`` and its lowest-G sequence ``(H,)`` (both ``None`` before the first plan and after ``reset``)."""

    def __init__(self) -> None:
        self.p: np.ndarray | None = None
        self.sequence: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class CrossEntropyShooting(Planner):
    """Action sequences of ``horizon`` sampled and refined by the cross-entropy method, each scored by
    ``sequence_efe`` through a ``RewardStateModel``; the torch counterpart of ``aif.planning.CrossEntropyPlanner``.

    Attributes:
        horizon: sequence length H >= 1 (in the model's steps: with an action repeat of k, H k environment steps).
        samples: sequences drawn per iteration (at least the number of actions; each is drawn first once).
        elites: the number of lowest-G sequences each refit uses (<= samples).
        iterations: refits; the last iteration's draws are scored and not refitted to.
        smoothing: in [0, 1), the weight of the previous distribution in each refit.
        efe_terms: ``RewardRisk`` and optionally ``EnsembleInfoGain`` (``aif_deep.online``'s term vocabulary).
        tricks: ``OnlineTrick``s on the epistemic value of each step (e.g. ``EpistemicCap``).
        discount: discount per step of the sequence's G.
        seed: seeds the draws when ``plan`` is given no ``rng``.
        persistence: in [0, 1): the probability that a drawn sequence holds its previous action at each step after
            the first rather than drawing that step's action (0: every step drawn independently). Why: where a
            goal takes long runs of one action (MountainCar's swings), independent draws switch every few steps
            and almost never hold an action long enough; held runs of mean length ``1 / (1 - persistence)`` make
            such sequences likely (the correlated draws of iCEM, Pinneri et al. 2020, for discrete actions).
        warm_start: in [0, 1): the weight of the previous plan in the first draws (0: every plan starts from
            uniform draws, and ``plan`` keeps nothing). With w > 0 each plan starts from the last refit
            distribution of the previous one, shifted by one step (its last step uniform), mixed with uniform
            draws in proportion ``1 - w``, and the previous plan's lowest-G sequence, shifted (its last action
            held), is scored again as one of the first draws. Why: a model-predictive planner re-plans after every
            action, and without it a good sequence found at one decision must be found again by chance at the
            next (the "shift" of iCEM, Pinneri et al. 2020). The previous plan lives in ``memory``.
        memory: the previous plan that ``warm_start`` starts from (a ``ShootingMemory``, made new for each planner,
            ``dataclasses.replace`` included); call ``reset()`` when an episode starts, since the last plan of one
            episode says nothing about the next.
    """

    horizon: int = 25
    samples: int = 200
    elites: int = 20
    iterations: int = 4
    smoothing: float = 0.1
    efe_terms: tuple = (RewardRisk(1.0), EnsembleInfoGain(1.0))
    tricks: tuple = ()
    discount: float = 1.0
    seed: int = 0
    persistence: float = 0.0
    warm_start: float = 0.0
    memory: ShootingMemory = field(default_factory=ShootingMemory, init=False, repr=False)
    backends: ClassVar[frozenset[str]] = frozenset({TORCH})

    def __post_init__(self) -> None:
        checks.settings("CrossEntropyShooting", {n: getattr(self, n) for n in ("horizon", "samples", "elites")},
                        "count")
        checks.settings("CrossEntropyShooting", {"iterations": self.iterations, "seed": self.seed}, "natural")
        checks.settings("CrossEntropyShooting", {"discount": self.discount}, "fraction")
        if not 0.0 <= self.smoothing < 1.0:
            raise ParameterError(f"CrossEntropyShooting.smoothing must be in [0, 1), got {self.smoothing!r}")
        if not 0.0 <= self.persistence < 1.0:
            raise ParameterError(f"CrossEntropyShooting.persistence must be in [0, 1), got {self.persistence!r}")
        if not 0.0 <= self.warm_start < 1.0:
            raise ParameterError(f"CrossEntropyShooting.warm_start must be in [0, 1), got {self.warm_start!r}")
        if self.elites > self.samples:
            raise PolicyError(f"CrossEntropyShooting.elites = {self.elites} is more than samples = {self.samples}")
        kinds = {type(t) for t in self.efe_terms}
        if _term(self.efe_terms, RewardRisk) is None or not kinds <= {RewardRisk, EnsembleInfoGain}:
            raise StrategyError("CrossEntropyShooting scores efe_terms = (RewardRisk(...),) or (RewardRisk(...), "
                                f"EnsembleInfoGain(...)), got {self.efe_terms!r}")
        for trick in self.tricks:
            if not isinstance(trick, OnlineTrick):
                raise StrategyError(f"CrossEntropyShooting.tricks holds OnlineTrick objects, got {trick!r}")

    @torch.no_grad()
    def plan(self, model: Any, qs: Any, rng: np.random.Generator | None = None) -> Plan:
        """Sample, score and refit from the observed state ``qs[0]`` ``(D,)``. Returns a ``Plan`` over the first
        actions ``(K, 1, 1)``: the G (and terms) of a first action are those of its lowest-G sampled sequence."""
        if not isinstance(model, RewardStateModel):
            raise StrategyError(f"CrossEntropyShooting plans through a RewardStateModel, got {type(model).__name__}")
        K, H, N = int(model.num_actions), self.horizon, self.samples
        if N < K:
            raise PolicyError(f"CrossEntropyShooting.samples = {N} is below the {K} first actions it must draw")
        rng = np.random.default_rng(self.seed) if rng is None else rng
        x = torch.as_tensor(qs[0], dtype=torch.float32)
        p = np.full((H, K), 1.0 / K)  # the sampling distribution, one categorical per step
        carried = None  # the previous plan's best sequence, shifted by one step
        last_p, last_seq = self.memory.p, self.memory.sequence
        if self.warm_start > 0 and last_p is not None and last_seq is not None and last_p.shape == (H, K):
            w = self.warm_start
            p[:-1] = w * last_p[1:] + (1.0 - w) / K
            carried = np.append(last_seq[1:], last_seq[-1])
        best_G = np.full(K, np.inf)
        best_terms = {"risk": np.zeros(K), "info_gain": np.zeros(K)}
        best_seq, best_all = np.zeros(H, dtype=np.int64), np.inf
        for it in range(self.iterations + 1):
            u = rng.random((N, H, 1))
            draws = np.minimum((u > np.cumsum(p, -1)).sum(-1), K - 1)  # (N, H): inverse-CDF draws
            draws[:K, 0] = np.arange(K)  # every first action at least once
            if self.persistence > 0:
                hold = rng.random((N, H)) < self.persistence
                for t in range(1, H):
                    draws[:, t] = np.where(hold[:, t], draws[:, t - 1], draws[:, t])
            if carried is not None and it == 0 and N > K:
                draws[K] = carried
            G_t, terms_t = sequence_efe(model, x, torch.from_numpy(draws), self.efe_terms, self.tricks,
                                        self.discount)
            G = G_t.double().numpy()
            for k in range(K):  # K is a handful of actions: the best sequence of each first action
                rows = np.flatnonzero(draws[:, 0] == k)
                i = rows[np.argmin(G[rows])]
                if G[i] < best_G[k]:
                    best_G[k] = G[i]
                    for key, value in terms_t.items():
                        best_terms[key][k] = float(value[i])
                    if G[i] < best_all:
                        best_all, best_seq = G[i], draws[i].copy()
            if it == self.iterations:
                break
            elite = draws[np.argsort(G, kind="stable")[: self.elites]]  # (E, H)
            freq = (elite[..., None] == np.arange(K)).mean(0)  # (H, K)
            p = self.smoothing * p + (1.0 - self.smoothing) * freq
        if self.warm_start > 0:
            self.memory.p, self.memory.sequence = p, best_seq
        return Plan(best_G, enumerate_policies([K], 1), best_terms)

    def reset(self) -> None:
        """Forget the previous plan (``warm_start``): the next plan starts from uniform draws."""
        self.memory.p = self.memory.sequence = None


@dataclass(frozen=True)
class ModelLearning(Learner):
    """Maximum-likelihood learning of a ``RewardStateModel`` (its transition ensemble and its ``RewardModel``)
    from a replay buffer of the agent's transitions; the buffer and optimiser live in ``ModelRun``.

    Each ensemble member regresses the observed change ``x' - x`` (the Gaussian likelihood's mean), the reward
    head the reward (squared error) and the end head whether the episode terminated (cross-entropy).

    Attributes:
        lr: Adam's learning rate.
        batch_size: transitions per update.
        buffer_size: capacity of the replay buffer (oldest transitions are overwritten).
        learning_starts: steps before the first update.
        train_every: steps per update round; updates: updates per round.
        end_fraction: the share of each batch drawn from the transitions that ended an episode, once there are
            any. Why: the end of a sparse-reward episode is one transition among thousands, which uniform
            replay would almost never show the end head; oversampled, its predicted probability of ending is
            too high near the ends seen, which errs toward going there.
    """

    lr: float = 1e-3
    batch_size: int = 64
    buffer_size: int = 100_000
    learning_starts: int = 100
    train_every: int = 1
    updates: int = 1
    end_fraction: float = 0.125
    backends: ClassVar[frozenset[str]] = frozenset({TORCH})

    def __post_init__(self) -> None:
        checks.settings("ModelLearning", {n: getattr(self, n) for n in
                                          ("batch_size", "buffer_size", "train_every", "updates")}, "count")
        checks.settings("ModelLearning", {"learning_starts": self.learning_starts}, "natural")
        checks.settings("ModelLearning", {"lr": self.lr}, "positive")
        checks.settings("ModelLearning", {"end_fraction": self.end_fraction}, "fraction")


class ModelRun:
    """The state of ``ModelLearning`` in one agent: the replay buffer and the optimiser of the model's networks.

    Args:
        settings: ``ModelLearning``.
        model: the agent's ``RewardStateModel`` (trained in place).
        rng: draws the replayed transitions.
    """

    def __init__(self, settings: ModelLearning, model: RewardStateModel, rng: np.random.Generator) -> None:
        if not isinstance(model, RewardStateModel):
            raise StrategyError(f"ModelLearning learns a RewardStateModel, got {type(model).__name__}")
        self.settings, self.model, self.rng = settings, model, rng
        assert model.transition is not None and model.outcome is not None
        params = list(model.transition.parameters()) + list(model.outcome.parameters())
        self.opt = torch.optim.Adam(params, lr=settings.lr, foreach=True)
        N, D = settings.buffer_size, model.num_features
        self.obs, self.next_obs = torch.zeros(N, D), torch.zeros(N, D)
        self.action, self.reward, self.terminated = torch.zeros(N, dtype=torch.long), torch.zeros(N), torch.zeros(N)
        self.ends: list[int] = []  # buffer rows of the transitions that ended an episode
        self.size = self.steps = 0
        self.last_loss = math.nan

    def observe(self, x: Any, action: int, reward: float, x1: Any, terminated: bool) -> None:
        """Store a transition and, every ``train_every`` steps after ``learning_starts``, update ``updates``
        times."""
        s = self.settings
        i = self.steps % s.buffer_size
        if self.steps >= s.buffer_size and i in self.ends:
            self.ends.remove(i)
        self.obs[i], self.next_obs[i] = torch.as_tensor(x), torch.as_tensor(x1)
        self.action[i], self.reward[i], self.terminated[i] = int(action), float(reward), float(terminated)
        if terminated:
            self.ends.append(i)
        self.steps += 1
        self.size = min(self.size + 1, s.buffer_size)
        if self.steps >= s.learning_starts and self.steps % s.train_every == 0:
            for _ in range(s.updates):
                self.last_loss = self.update()

    def update(self) -> float:
        """One gradient step of the ensemble and the reward model on a replayed batch; the summed loss."""
        s = self.settings
        n_end = int(round(s.end_fraction * s.batch_size)) if self.ends else 0
        idx = np.concatenate([self.rng.integers(0, self.size, s.batch_size - n_end),
                              self.rng.choice(self.ends, n_end) if n_end else np.zeros(0, dtype=np.int64)])
        idx_t = torch.from_numpy(idx.astype(np.int64))
        x, a, r, x1, done = (self.obs[idx_t], self.action[idx_t], self.reward[idx_t], self.next_obs[idx_t],
                             self.terminated[idx_t])
        ensemble, outcome = self.model.transition, self.model.outcome
        assert ensemble is not None and outcome is not None
        r_hat, end_logit = outcome(x, a, x1)
        loss = (((ensemble(x, a) - (x1 - x)) ** 2).mean() + F.mse_loss(r_hat, r)
                + F.binary_cross_entropy_with_logits(end_logit, done))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


__all__ = ["CrossEntropyShooting", "ModelLearning", "ModelRun", "RewardModel", "RewardStateModel", "ShootingMemory",
           "sequence_efe"]
