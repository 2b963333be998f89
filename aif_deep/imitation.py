"""Imitation from demonstrations, with no reward: behaviour cloning and inverse soft-Q learning (IQ-Learn).

Both fit a ``QFunction`` (``qfunction.py``) read as the package reads it everywhere, an EFE to go ``G(x, a)`` (lower
is better) whose policy is the posterior at precision ``1 / T`` (T its ``temperature``),

    pi(a | x) = softmax(-G(x, .) / T)[a],          V(x) = -T ln sum_a exp(-G(x, a) / T)   (``QFunction.value``),

where ``x`` is the network's input: a belief (the factors' posteriors concatenated) or a feature vector.

- ``behaviour_cloning``: maximum likelihood of the demonstrated actions, ``min -E_D[ln pi(a | x)]``.
- ``inverse_soft_q``: IQ-Learn (Garg et al. 2021, "IQ-Learn: Inverse soft-Q Learning for Imitation", offline form
  with the chi-squared regulariser). With the soft Q-function ``Q = -G`` and soft value ``V_Q = -V``, the implicit
  reward of a transition is ``r(x, a) = Q(x, a) - discount (1 - done) V_Q(x')``, and the critic minimises

      L(Q) = -E_D[r(x, a)] + E_D[V_Q(x) - discount (1 - done) V_Q(x')] + 1 / (4 chi2) E_D[r(x, a)^2]

  (the first two terms are IQ-Learn's objective with the initial-state term estimated on the demonstrations' own
  states; the last is the chi-squared divergence's regulariser). The demonstrated actions become the soft-optimal
  ones of the critic: its policy is the imitation, and ``aif.TerminalValue(critic.value, discount)`` plugs the
  learned EFE to go into an agent's planning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from aif.errors import ParameterError, PolicyError

from . import checks
from .qfunction import QFunction


@dataclass(frozen=True, eq=False)
class Demonstrations:
    """Demonstrated transitions.

    Attributes:
        x: ``(N, D)`` the network's inputs (beliefs concatenated over factors, or features).
        actions: ``(N,)`` long, the joint action taken (``aif.enumerate_policies(num_controls, 1)``'s order).
        x_next: ``(N, D)`` the inputs after the action (read only where ``done`` is 0).
        done: ``(N,)`` 1.0 where the episode ended with this action (no next value), else 0.0.
    """

    x: torch.Tensor
    actions: torch.Tensor
    x_next: torch.Tensor
    done: torch.Tensor

    def __post_init__(self) -> None:
        x, a, x1, d = self.x, self.actions, self.x_next, self.done
        if not all(isinstance(t, torch.Tensor) for t in (x, a, x1, d)):
            raise ParameterError("Demonstrations holds tensors: x, actions, x_next and done")
        N = x.shape[0] if x.ndim == 2 else -1
        if x.ndim != 2 or x1.shape != x.shape or a.shape != (N,) or d.shape != (N,) or N < 1:
            raise ParameterError(f"Demonstrations: x {tuple(x.shape)}, actions {tuple(a.shape)}, x_next "
                                 f"{tuple(x1.shape)}, done {tuple(d.shape)}; expected (N, D), (N,), (N, D), (N,)")
        if a.dtype != torch.long or (a < 0).any():
            raise PolicyError(f"Demonstrations.actions must be non-negative long action indices, got {a.dtype}")

    @classmethod
    def from_trajectories(cls, trajectories: Sequence, num_controls: Sequence[int]) -> Demonstrations:
        """The transitions of ``aif.rollout`` trajectories: ``x`` the posteriors (factors concatenated), the joint
        action index of each step's action vector; an episode's last step has ``done = 1`` when it terminated and
        is dropped when it was cut short (its next belief was never inferred)."""
        xs, acts, nxt, done = [], [], [], []
        for k, traj in enumerate(trajectories):
            q = np.concatenate([np.asarray(q_f, dtype=float) for q_f in traj.qs], axis=1)  # (T, sum S)
            a = np.ravel_multi_index(np.asarray(traj.actions).T, tuple(num_controls))  # (T,)
            T = len(a) if traj.terminated else len(a) - 1
            if q.shape[0] != len(a):
                raise ParameterError(f"trajectories[{k}] has {q.shape[0]} beliefs and {len(a)} actions")
            xs.append(q[:T])
            acts.append(a[:T])
            nxt.append(q[np.minimum(np.arange(T) + 1, len(q) - 1)])  # a terminal step's row is not read
            done.append((np.arange(T) == len(a) - 1) & bool(traj.terminated))
        return cls(torch.as_tensor(np.concatenate(xs)), torch.as_tensor(np.concatenate(acts), dtype=torch.long),
                   torch.as_tensor(np.concatenate(nxt)), torch.as_tensor(np.concatenate(done), dtype=torch.float64))


@dataclass(frozen=True)
class ImitationSettings:
    """Settings of ``behaviour_cloning`` and ``inverse_soft_q``.

    Attributes:
        steps: optimiser steps.
        batch_size: transitions per step (drawn with replacement).
        lr: Adam's learning rate.
        discount: ``inverse_soft_q``'s discount of the next value, in [0, 1).
        chi2: ``inverse_soft_q``'s chi-squared weight: the regulariser is ``E[r^2] / (4 chi2)`` (IQ-Learn's alpha).
        seed: seeds the draws of the batches.
        progress: show a tqdm bar.
    """

    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    discount: float = 0.95
    chi2: float = 0.5
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        checks.settings("ImitationSettings", {"steps": self.steps, "batch_size": self.batch_size}, "count")
        checks.settings("ImitationSettings", {"lr": self.lr, "chi2": self.chi2}, "positive")
        checks.settings("ImitationSettings", {"discount": self.discount}, "fraction")
        if self.discount >= 1.0:
            raise ParameterError(f"ImitationSettings.discount must be below 1, got {self.discount!r}")
        checks.settings("ImitationSettings", {"seed": self.seed}, "natural")


def log_policy(net: QFunction, x: torch.Tensor) -> torch.Tensor:
    """``ln pi(a | x) = log_softmax(-G(x, .) / T)``, ``(*lead, K)``."""
    return torch.log_softmax(-net(x) / net.temperature, -1)


def cloning_loss(policy: QFunction, x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``-mean ln pi(a | x)`` over the batch: ``x`` ``(n, D)``, ``actions`` ``(n,)``."""
    return -log_policy(policy, x).gather(-1, actions[:, None]).mean()


def iq_loss(critic: QFunction, x: torch.Tensor, actions: torch.Tensor, x_next: torch.Tensor, done: torch.Tensor,
            discount: float, chi2: float) -> torch.Tensor:
    """IQ-Learn's loss (module docstring) on a batch: ``x``, ``x_next`` ``(n, D)``, ``actions``, ``done`` ``(n,)``."""
    T = critic.temperature
    G = critic(x)  # (n, K)
    Q = -G.gather(-1, actions[:, None])[:, 0]
    V = T * torch.logsumexp(-G / T, -1)  # the soft value of Q = -G
    V_next = T * torch.logsumexp(-critic(x_next) / T, -1)
    future = discount * (1.0 - done.to(G)) * V_next
    r = Q - future
    return -r.mean() + (V - future).mean() + (r ** 2).mean() / (4.0 * chi2)


def behaviour_cloning(policy: QFunction, demos: Demonstrations, settings: ImitationSettings | None = None
                      ) -> list[float]:
    """Fit ``policy`` (in place) to the demonstrated actions by maximum likelihood; returns the loss per step."""
    settings = ImitationSettings() if settings is None else settings
    return _fit(policy, demos, settings, lambda b: cloning_loss(policy, demos.x[b], demos.actions[b]))


def inverse_soft_q(critic: QFunction, demos: Demonstrations, settings: ImitationSettings | None = None) -> list[float]:
    """Fit the EFE critic ``critic`` (in place) by IQ-Learn so that the demonstrated actions are soft-optimal, with
    no reward; returns the loss per step. Its policy is ``softmax(-critic(x) / critic.temperature)``."""
    settings = ImitationSettings() if settings is None else settings
    return _fit(critic, demos, settings, lambda b: iq_loss(critic, demos.x[b], demos.actions[b], demos.x_next[b],
                                                           demos.done[b], settings.discount, settings.chi2))


def _fit(net, demos, settings, loss_of):
    """Adam on ``loss_of(batch indices)`` for ``settings.steps`` steps; the network is left in eval mode."""
    if not isinstance(net, QFunction):
        raise ParameterError(f"the network must be an aif_deep.QFunction, got {type(net).__name__}")
    if not isinstance(settings, ImitationSettings):
        raise ParameterError(f"settings must be an aif_deep.ImitationSettings, got {settings!r}")
    K, D = int(np.prod(net.num_controls)), sum(net.num_states)
    if demos.x.shape[1] != D or int(demos.actions.max()) >= K:
        raise ParameterError(f"the demonstrations have inputs of size {demos.x.shape[1]} and actions up to "
                             f"{int(demos.actions.max())}; the network takes {D} inputs and {K} actions")
    generator = torch.Generator().manual_seed(settings.seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=settings.lr)
    net.train()
    losses = []
    for _ in tqdm(range(settings.steps), disable=not settings.progress, desc=type(net).__name__):
        batch = torch.randint(0, demos.x.shape[0], (settings.batch_size,), generator=generator)
        loss = loss_of(batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    net.eval()
    return losses


__all__ = ["Demonstrations", "ImitationSettings", "log_policy", "cloning_loss", "iq_loss", "behaviour_cloning",
           "inverse_soft_q"]
