"""A goal-conditioned EFE Q-function, Q(b, a, g), trained by temporal differences with hindsight relabelling of goals.

A goal ``g`` is a state of the model's joint hidden state (an index, first factor slowest: ``aif.GoalDivergence``'s
``log_goal`` order). It defines the goal distribution and the one-step cost of a belief ``b'``, its risk to it,

    p_g(s) = (1 - eps) [s = g] + eps / S,          c(b', g) = KL[q(s') || p_g]     (``efe.goal_divergence``),

with ``S = prod(num_states)`` and ``eps = smoothing > 0`` (keeps ln p_g finite). ``Q(b, a, g)`` is the EFE to go
toward ``g``, fitted on replayed transitions ``(b, a, b')``:

    Q(b, a, g) <- c(b', g) + discount * (1 - reached) * V(b', g),      V(b, g) = -T ln sum_a exp(-Q(b, a, g) / T),

``V`` the soft minimum of a Polyak-averaged target network (``QFunction.value``). The goal is reached when it is
the achieved goal of ``b'``, its most likely joint state (HER's ``achieved_goal``): the episode toward ``g`` ends
there and the target is the divergence alone. For one-hot beliefs ``c`` is ``-ln(1 - eps + eps / S) ~ eps`` at the
goal and ``ln(S / eps)`` elsewhere: HER's 0 / -1 reward, measured in nats.

The network is a ``QFunction`` whose input is the beliefs with the goal's one-hot appended:
``QFunction([*num_states, prod(num_states)], num_controls)`` and ``Q(b, ., g) = qf(goal_inputs(qs, g, S))``.

Hindsight relabelling (Andrychowicz et al. 2017, "Hindsight Experience Replay"): a random walk rarely reaches the goal
it was given, so its transitions teach little about that goal; relabelled with a state the episode did reach, they
become successful episodes toward that state. ``Future`` is HER's "future" strategy; relabelling changes a
transition's goal, cost and ``reached`` flag, never the transition. It runs on every replayed batch.

Why a loop of its own and not ``train_qfunction``: that one regresses every action's target, computed through the
model's predictions; HER's targets are those of the replayed transition's own action and next belief.

Planning with it, through the one ``Agent``: ``GoalQPlanner(GoalValue(qf, g))`` scores the one-step policies by
``Q(b, ., g)``;
``aif.TerminalValue(GoalValue(qf, g), discount)`` adds ``V(q(s_H | pi), g)`` to the G of enumerated policies.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike
from tqdm.auto import tqdm

from aif.control import enumerate_policies
from aif.errors import ParameterError, StrategyError
from aif.planning import Plan
from aif.strategies import NUMPY, Planner

from . import checks
from .control import predict
from .efe import goal_divergence, joint
from .episodes import ReplayBuffer
from .inference import infer_states
from .model import BeliefModel
from .qfunction import QFunction


def goal_inputs(qs: Sequence[torch.Tensor], goals: torch.Tensor, num_goals: int) -> list[torch.Tensor]:
    """The network's input: ``qs`` (one ``(*lead, S_f)`` per factor) and the goals' one-hot ``(*lead, S)``
    (``goals`` long, ``(*lead,)`` or a scalar, broadcast over ``lead``)."""
    onehot = torch.nn.functional.one_hot(goals, num_goals).to(qs[0].dtype)
    return [*qs, onehot.expand(*qs[0].shape[:-1], num_goals)]


def achieved_goals(qs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The achieved goal of beliefs ``qs`` (one ``(*lead, S_f)`` per factor): the most likely joint state, long
    ``(*lead,)`` (first of ties)."""
    return joint(qs).argmax(-1)


def goal_costs(qs_next: Sequence[torch.Tensor], goals: torch.Tensor, smoothing: float
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(c, reached)`` for next beliefs ``qs_next`` (one ``(N, S_f)`` per factor) and goals ``(N,)`` long:
    ``c = KL[q(s') || p_g]`` ``(N,)`` with ``p_g`` smoothed by ``smoothing``, and ``reached`` bool ``(N,)``,
    whether the goal is the achieved goal of ``qs_next``."""
    S = math.prod(q.shape[-1] for q in qs_next)
    onehot = torch.nn.functional.one_hot(goals, S).to(qs_next[0].dtype)
    log_goal = torch.log((1.0 - smoothing) * onehot + smoothing / S)  # (N, S)
    return goal_divergence(qs_next, log_goal), achieved_goals(qs_next) == goals


@dataclass(frozen=True, eq=False)
class GoalTransitions:
    """Transitions of replayed episodes with a goal each, an episode's steps in order in consecutive rows.

    Attributes:
        qs, qs_next: the beliefs before and after each action, one ``(N, S_f)`` tensor per factor.
        actions: long ``(N,)``, the joint action (``aif.enumerate_policies(num_controls, 1)``'s order).
        achieved: long ``(N,)``, the achieved goal of ``qs_next`` (``achieved_goals``).
        last: long ``(N,)``, the row of the last transition of each row's episode.
        goals: long ``(N,)``, the goal of each transition.
        costs: ``(N,)``, ``c(b', g)`` (``goal_costs``).
        reached: bool ``(N,)``, whether the transition reaches its goal (the episode toward it ends).
        smoothing: ``eps`` of the goal distribution, in (0, 1).
    """

    qs: list[torch.Tensor]
    actions: torch.Tensor
    qs_next: list[torch.Tensor]
    achieved: torch.Tensor
    last: torch.Tensor
    goals: torch.Tensor
    costs: torch.Tensor
    reached: torch.Tensor
    smoothing: float

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def rows(self, idx: torch.Tensor) -> GoalTransitions:
        """The transitions ``idx`` (long ``(B,)``); ``last`` still indexes this object's rows."""
        return GoalTransitions([q[idx] for q in self.qs], self.actions[idx], [q[idx] for q in self.qs_next],
                               self.achieved[idx], self.last[idx], self.goals[idx], self.costs[idx],
                               self.reached[idx], self.smoothing)

    def with_goals(self, goals: torch.Tensor) -> GoalTransitions:
        """The same transitions toward ``goals`` (long ``(N,)``): costs and ``reached`` recomputed."""
        costs, reached = goal_costs(self.qs_next, goals, self.smoothing)
        return replace(self, goals=goals, costs=costs, reached=reached)


def goal_transitions(model: BeliefModel, buffer: ReplayBuffer, goals: ArrayLike, smoothing: float = 0.1
                     ) -> GoalTransitions:
    """The transitions of the episodes of ``buffer``, each episode toward its goal ``goals[e]`` (ints ``(E,)``,
    joint states), with the beliefs filtered as the ``Agent`` does (``infer_states``, then ``predict`` under the
    action taken, from ``model.prior()``)."""
    if not 0.0 < float(smoothing) < 1.0:
        raise ParameterError(f"smoothing must be in (0, 1), got {smoothing!r}")
    S = math.prod(model.num_states)
    goal_array = np.asarray(goals)
    if goal_array.shape != (len(buffer),) or not np.issubdtype(goal_array.dtype, np.integer):
        raise ParameterError(f"goals must hold one int per episode of the buffer, ({len(buffer)},), got "
                             f"{goal_array.dtype} {goal_array.shape}")
    bad = np.flatnonzero((goal_array < 0) | (goal_array >= S))
    if bad.size:
        raise ParameterError(f"goals[{bad[0]}] = {goal_array[bad[0]]} is out of range for {S} joint states")
    if buffer.num_steps == 0:
        raise ParameterError("the buffer holds no transition: goal_transitions needs episodes of at least one action")
    by_length: dict[int, list[int]] = {}
    for e, (_, actions, _) in enumerate(buffer.episodes):  # a batch per episode length
        by_length.setdefault(len(actions), []).append(e)
    F = len(model.num_states)
    qs_ep: list[list[torch.Tensor]] = [[] for _ in range(F)]  # (E, T + 1, S_f) per length
    acts, episode = [], []
    with torch.no_grad():
        for T, group in by_length.items():
            obs = [torch.as_tensor(np.stack([buffer.episodes[e][0][m] for e in group]))
                   for m in range(len(buffer.episodes[group[0]][0]))]  # (E, T + 1, *obs_shape_m)
            a = torch.as_tensor(np.stack([buffer.episodes[e][1] for e in group]))  # (E, T, F)
            prior, beliefs = [p.expand(len(group), -1) for p in model.prior()], []
            for t in range(T + 1):
                beliefs.append(infer_states(model, [o[:, t] for o in obs], prior))
                if t < T:
                    prior = predict(model, beliefs[-1], a[:, t])
            for f in range(F):
                qs_ep[f].append(torch.stack([b[f] for b in beliefs], 1))
            acts.append(torch.as_tensor(np.ravel_multi_index(tuple(a.numpy().T), tuple(model.num_controls)).T))
            episode.append(torch.as_tensor(group)[:, None].expand(-1, T))
    # Rows episode by episode, steps in order: (E, T) flattened, groups one after the other.
    lengths = torch.cat([torch.full((e.shape[0],), e.shape[1]) for e in episode])
    ends = (torch.cumsum(lengths, 0) - 1).repeat_interleave(lengths)
    qs = [torch.cat([q[:, :-1].flatten(0, 1) for q in q_f]) for q_f in qs_ep]
    qs_next = [torch.cat([q[:, 1:].flatten(0, 1) for q in q_f]) for q_f in qs_ep]
    goal = torch.as_tensor(goal_array, dtype=torch.long)[torch.cat([e.flatten() for e in episode])]
    costs, reached = goal_costs(qs_next, goal, float(smoothing))
    return GoalTransitions(qs, torch.cat([a.flatten() for a in acts]), qs_next, achieved_goals(qs_next), ends, goal,
                           costs, reached, float(smoothing))


class Relabelling(ABC):
    """A hindsight relabelling strategy: new goals for some replayed transitions."""

    @abstractmethod
    def goals(self, data: GoalTransitions, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The goals of rows ``idx`` (long ``(B,)``) of ``data``, long ``(B,)``."""


@dataclass(frozen=True)
class Future(Relabelling):
    """HER's "future" strategy: with probability ``probability`` a transition at step t gets as its goal the
    achieved goal of a step k drawn uniformly from t + 1 .. T of its episode (the state after a transition at or
    after its own); otherwise it keeps its goal. HER's ``k`` relabelled per original is ``probability = k / (k + 1)``
    (k = 4: 0.8)."""

    probability: float = 0.8

    def __post_init__(self) -> None:
        checks.settings("Future", {"probability": self.probability}, "fraction")

    def goals(self, data: GoalTransitions, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        span = (data.last[idx] - idx + 1).to(torch.float64)  # transitions from this one to the episode's end
        later = idx + (torch.rand(len(idx), generator=generator, dtype=torch.float64) * span).long()
        relabel = torch.rand(len(idx), generator=generator) < self.probability
        return torch.where(relabel, data.achieved[later], data.goals[idx])


def relabel(data: GoalTransitions, strategy: Relabelling, generator: torch.Generator,
            idx: torch.Tensor | None = None) -> GoalTransitions:
    """Rows ``idx`` of ``data`` (all when ``None``) with the goals ``strategy`` gives them, and the costs and
    ``reached`` flags of those goals; the transitions themselves are unchanged."""
    idx = torch.arange(len(data)) if idx is None else idx
    return data.rows(idx).with_goals(strategy.goals(data, idx, generator))


def goal_td_targets(target: QFunction, batch: GoalTransitions, discount: float) -> torch.Tensor:
    """``c(b', g) + discount * (1 - reached) * V_target(b', g)``: ``(N,)``, no gradient."""
    S = math.prod(q.shape[-1] for q in batch.qs_next)
    with torch.no_grad():
        V = target.value(goal_inputs(batch.qs_next, batch.goals, S))
        return batch.costs + discount * (~batch.reached).to(V.dtype) * V


@dataclass(frozen=True)
class GoalQSettings:
    """Settings of ``train_goal_q``.

    Attributes:
        steps: optimiser steps.
        batch_size: transitions per step.
        lr: Adam's learning rate.
        discount: the discount of V(next belief, goal).
        tau: Polyak rate of the target network.
        relabelling: the ``Relabelling`` of every replayed batch; ``None``: the episodes' own goals only.
        seed: seeds the batches and the relabelling.
        progress: show a tqdm bar.
    """

    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    discount: float = 0.9
    tau: float = 0.02
    relabelling: Relabelling | None = Future()
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        checks.settings("GoalQSettings", {"steps": self.steps, "seed": self.seed}, "natural")
        checks.settings("GoalQSettings", {"batch_size": self.batch_size}, "count")
        checks.settings("GoalQSettings", {"lr": self.lr}, "positive")
        checks.settings("GoalQSettings", {"discount": self.discount, "tau": self.tau}, "fraction")
        if self.relabelling is not None and not isinstance(self.relabelling, Relabelling):
            raise StrategyError(f"GoalQSettings.relabelling must be a Relabelling (e.g. Future()) or None, got "
                                f"{self.relabelling!r}")


def train_goal_q(qf: QFunction, data: GoalTransitions, settings: GoalQSettings = GoalQSettings()) -> list[float]:
    """Fit ``Q(b, a, g)`` (``qf``, built for ``goal_inputs``) by temporal differences on batches of ``data``,
    relabelled by ``settings.relabelling``; returns the mean squared TD error of each step."""
    S = math.prod(q.shape[-1] for q in data.qs)
    check_goal_network(qf, [q.shape[-1] for q in data.qs])
    qf.train()
    target = copy.deepcopy(qf).requires_grad_(False)
    opt = torch.optim.Adam(qf.parameters(), lr=settings.lr, foreach=True)
    params: list[torch.Tensor] = list(qf.parameters())
    target_params: list[torch.Tensor] = list(target.parameters())
    gen = torch.Generator().manual_seed(settings.seed)
    history = []
    for _ in tqdm(range(settings.steps), disable=not settings.progress, desc="goal Q", unit="step", leave=False):
        idx = torch.randint(len(data), (settings.batch_size,), generator=gen)
        batch = data.rows(idx) if settings.relabelling is None else relabel(data, settings.relabelling, gen, idx)
        y = goal_td_targets(target, batch, settings.discount)
        Q = qf(goal_inputs(batch.qs, batch.goals, S)).gather(-1, batch.actions[:, None])[:, 0]
        loss = ((Q - y.to(qf.dtype)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(target_params, params, settings.tau)
        history.append(float(loss.detach()))
    qf.eval()
    return history


def check_goal_network(qf: QFunction, num_states: Sequence[int]) -> None:
    """A ``ParameterError`` unless ``qf``'s input is beliefs of ``num_states`` and a joint-state goal."""
    if not isinstance(qf, QFunction):
        raise StrategyError(f"the goal-conditioned Q-function must be an aif_deep.QFunction, got {qf!r}")
    expected = [*map(int, num_states), math.prod(num_states)]
    if qf.num_states != expected:
        raise ParameterError(f"a goal-conditioned QFunction over beliefs of num_states = {list(num_states)} takes "
                             f"num_states = {expected} (the goal's one-hot last), got {qf.num_states}")


@dataclass(frozen=True, eq=False)
class GoalValue:
    """``Q(b, ., g)`` and ``V(b, g)`` with the goal bound: ``aif.TerminalValue(GoalValue(qf, g), discount)``.

    Attributes:
        qfunction: the goal-conditioned ``QFunction`` (``train_goal_q``).
        goal: the goal, an index of the joint hidden state.
    """

    qfunction: QFunction
    goal: int

    def __post_init__(self) -> None:
        if not isinstance(self.qfunction, QFunction):
            raise StrategyError(f"GoalValue.qfunction must be an aif_deep.QFunction, got {self.qfunction!r}")
        S = self.qfunction.num_states[-1]
        if isinstance(self.goal, (bool, np.bool_)) or not isinstance(self.goal, (int, np.integer)) \
                or not 0 <= self.goal < S:
            raise ParameterError(f"goal must be a joint state in range({S}), got {self.goal!r}")

    def inputs(self, qs: Sequence[Any]) -> list[torch.Tensor]:
        """Beliefs (arrays or tensors, one ``(*lead, S_f)`` per factor) with the goal appended."""
        qs_t = [torch.as_tensor(q, dtype=self.qfunction.dtype) for q in qs]
        return goal_inputs(qs_t, torch.tensor(int(self.goal)), self.qfunction.num_states[-1])

    def q(self, qs: Sequence[Any]) -> torch.Tensor:
        """``Q(b, a, g)`` for every joint action, ``(*lead, K)``, without gradients."""
        with torch.no_grad():
            return self.qfunction(self.inputs(qs))

    def __call__(self, qs: Sequence[Any]) -> Any:
        """``V(b, g)`` ``(*lead,)``: a NumPy array for NumPy beliefs (``aif``'s evaluator), else a tensor."""
        with torch.no_grad():
            V = self.qfunction.value(self.inputs(qs))
        return V.double().numpy() if isinstance(qs[0], np.ndarray) else V.to(qs[0].dtype)


@dataclass(frozen=True, eq=False)
class GoalQPlanner(Planner):
    """Score each one-step policy by the EFE to go toward a goal, ``G = Q(b, ., g)`` (``value``: a ``GoalValue``);
    for ``aif.Agent`` and, model by model, ``aif_deep.Agent`` on a ``TabularModel``."""

    value: GoalValue
    backends: ClassVar[frozenset[str]] = frozenset({NUMPY})

    def __post_init__(self) -> None:
        if not isinstance(self.value, GoalValue):
            raise StrategyError(f"GoalQPlanner.value must be an aif_deep.goal_q.GoalValue, got {self.value!r}")

    def plan(self, model: Any, qs: Any, rng: Any = None) -> Plan:
        """G of every one-step policy ``(K,)`` at beliefs ``qs`` (one ``(S_f,)`` array per factor)."""
        check_goal_network(self.value.qfunction, model.num_states)
        G = self.value.q(qs).double().numpy()
        return Plan(G, enumerate_policies(list(model.num_controls), 1))


__all__ = ["goal_inputs", "achieved_goals", "goal_costs", "GoalTransitions", "goal_transitions", "Relabelling",
           "Future", "relabel", "goal_td_targets", "GoalQSettings", "train_goal_q", "check_goal_network", "GoalValue",
           "GoalQPlanner"]
