"""A learned EFE Q-function: G_phi(belief, action), the expected free energy to go, for a longer horizon.

For beliefs ``qs`` and a joint action ``a`` (``aif.enumerate_policies(num_controls, 1)``'s order),

    G_phi(qs, a) ≈ g(qs, a) + discount * V(qs'_a),      V(qs) = -T ln sum_a' exp(-G_phi(qs, a') / T),

where ``g`` is the one-step EFE of the policy evaluator (the agent's terms), ``qs'_a = predict(qs, a)`` the
predicted belief (before any observation: what the evaluator hands its terminal value, ``G(pi) = sum_t g_t +
discount^H V(q(s_H | pi))``), and ``V`` a soft minimum over actions with temperature ``T``. So ``Agent(model,
policy_horizon=H, efe_terms=(*aif.DEFAULT_TERMS, aif.TerminalValue(qf.value, d)))`` plans H steps and lets G_phi
score the rest; with ``policy_horizon=1`` the agent's G is the Q-function's own target, a one-step policy.

Training is temporal-difference regression on beliefs drawn from a pool (e.g. the posteriors of a replay
buffer, plus random ones), with a target network that follows the online one by Polyak averaging.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from aif.efe import DEFAULT_TERMS, EFEOptions, Term
from aif.errors import ParameterError

from . import checks
from .episodes import ReplayBuffer
from .evaluator import evaluate_policies
from .model import BeliefModel


class QFunction(nn.Module):
    """G_phi: beliefs (one ``(*lead, S_f)`` tensor per factor) -> EFE to go per joint action ``(*lead, K)``.

    The input may also be one feature tensor ``(*lead, sum(num_states))``, e.g. a continuous state vector
    (``QFunction([4], [2])`` for CartPole; ``aif_deep.online`` trains it so): the network only sees the
    concatenation either way.

    Args:
        num_states, num_controls: the model's sizes (for features: ``[num_features]``).
        temperature: T of the soft minimum in ``value``.
        hidden: width of the two hidden layers.
        seed: seeds the initial weights.
        max_bytes: the most bytes the weights may take (estimated before allocating; 1 GiB by default).
    """

    def __init__(self, num_states: Sequence[int], num_controls: Sequence[int], temperature: float = 1.0,
                 hidden: int = 128, seed: int = 0, max_bytes: int = 2**30) -> None:
        super().__init__()
        checks.settings("QFunction", {"temperature": temperature}, "positive")
        checks.settings("QFunction", {"hidden": hidden, "max_bytes": max_bytes}, "count")
        checks.settings("QFunction", {"seed": seed}, "natural")
        for name, sizes in (("num_states", num_states), ("num_controls", num_controls)):
            if not isinstance(sizes, (list, tuple)) or not sizes:
                raise ParameterError(f"QFunction.{name} must be a list with one size per factor, got {sizes!r}")
            checks.settings("QFunction", {f"{name}[{f}]": n for f, n in enumerate(sizes)}, "count")
        self.num_states = [int(s) for s in num_states]
        self.num_controls = [int(u) for u in num_controls]
        self.temperature = float(temperature)
        sizes = [sum(self.num_states), hidden, hidden, math.prod(self.num_controls)]
        checks.byte_budget("QFunction", {f"net[{2 * i}]": checks.linear_bytes(*sizes[i:i + 2]) for i in range(3)},
                           max_bytes, "reduce hidden, num_states or num_controls")
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            self.net = nn.Sequential(nn.Linear(sum(self.num_states), hidden), nn.ELU(), nn.Linear(hidden, hidden),
                                     nn.ELU(), nn.Linear(hidden, math.prod(self.num_controls)))

    def forward(self, qs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        x = qs if isinstance(qs, torch.Tensor) else torch.cat(list(qs), -1)
        return self.net(x.to(self.dtype))

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def value(self, qs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """V(qs) = soft minimum of G_phi over actions, ``(*lead,)``; the evaluator's ``terminal_value``.

        In eval mode (where ``train_qfunction`` leaves it) without gradients, so that an agent's G and q(pi)
        stay plain values (``aif.rollout`` converts them to NumPy).
        """
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
            G = self(qs)
            return (-self.temperature * torch.logsumexp(-G / self.temperature, -1)).to(qs[0].dtype)


@dataclass(frozen=True)
class QSettings:
    """Settings of ``train_qfunction``.

    Attributes:
        steps: optimiser steps.
        batch_size: beliefs per step.
        lr: Adam's learning rate.
        discount: the discount of V(next belief).
        tau: Polyak rate of the target network (target <- (1 - tau) target + tau online).
        terms, options: the EFE terms of g and their options (as the agent's).
        seed: seeds the draws from the belief pool.
        progress: show a tqdm bar.
    """

    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    discount: float = 0.9
    tau: float = 0.02
    terms: tuple[Term, ...] = DEFAULT_TERMS
    options: EFEOptions = EFEOptions()
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        checks.settings("QSettings", {"steps": self.steps}, "natural")
        checks.settings("QSettings", {"batch_size": self.batch_size}, "count")
        checks.settings("QSettings", {"lr": self.lr}, "positive")
        checks.settings("QSettings", {"discount": self.discount, "tau": self.tau}, "fraction")


def td_targets(qf_target: QFunction, model: BeliefModel, qs: Sequence[torch.Tensor], discount: float,
               terms: Sequence[Term] = DEFAULT_TERMS, options: EFEOptions | None = None) -> torch.Tensor:
    """g(qs, a) + discount * V_target(predict(qs, a)) for every joint action: ``(*lead, K)``, no gradient."""
    with torch.no_grad():
        g, _ = evaluate_policies(model, list(qs), horizon=1, terms=tuple(terms), options=options)
        nxt = model.predict_all(list(qs))  # (U_f, *lead, S_f) per factor
        # Joint actions in enumerate_policies' order (the last factor varies fastest): broadcast each
        # factor's predictions over the others' controls, then flatten to K.
        F = len(nxt)
        joint = []
        for f, q in enumerate(nxt):
            shape = [1] * F
            shape[f] = q.shape[0]
            q = q.reshape(*shape, *q.shape[1:]).expand(*[p.shape[0] for p in nxt], *q.shape[1:])
            joint.append(q.reshape(-1, *q.shape[F:]))  # (K, *lead, S_f)
        V = qf_target.value(joint)  # (K, *lead)
        return g + discount * V.movedim(0, -1)


def belief_pool(model: BeliefModel, buffer: ReplayBuffer, rng: np.random.Generator, copies: int = 20,
                concentration: float = 0.3) -> list[torch.Tensor]:
    """Beliefs to train a Q-function on: the model's posteriors along the episodes of ``buffer`` (a
    ``ReplayBuffer``; filtered as ``Agent`` does: ``infer_states``, then ``predict`` under the action taken), and
    ``copies * max(S)`` one-hot beliefs (every state in turn) and as many random mixtures (Dirichlet with
    ``concentration``) per factor, so that the Q-function also sees the corners and the inside of the simplex.
    Returns one ``(N, S_f)`` tensor per factor."""
    from .control import predict
    from .inference import infer_states

    by_length: dict[int, list] = {}
    for observations, actions, _ in buffer.episodes:  # a batch per episode length
        by_length.setdefault(len(actions), []).append((observations, actions))
    pool: list[list[torch.Tensor]] = [[] for _ in model.num_states]
    with torch.no_grad():
        for episodes in by_length.values():
            obs = [torch.as_tensor(np.stack([e[0][m] for e in episodes])) for m in range(len(episodes[0][0]))]
            acts = torch.as_tensor(np.stack([e[1] for e in episodes]))  # (E, T, F)
            prior = [p.expand(len(episodes), -1) for p in model.prior()]
            for t in range(obs[0].shape[1]):
                qs = infer_states(model, [o[:, t] for o in obs], prior)
                for f, q in enumerate(qs):
                    pool[f].append(q)
                if t < acts.shape[1]:
                    prior = predict(model, qs, acts[:, t])
    n = copies * max(model.num_states)
    for f, S in enumerate(model.num_states):
        dtype = pool[f][0].dtype if pool[f] else torch.float32
        pool[f].append(torch.eye(S, dtype=dtype)[torch.arange(n) % S])
        pool[f].append(torch.as_tensor(rng.dirichlet(np.full(S, concentration), size=n), dtype=dtype))
    return [torch.cat(p) for p in pool]


def train_qfunction(qf: QFunction, model: BeliefModel, beliefs: Sequence[torch.Tensor],
                    settings: QSettings = QSettings(),
                    targets: Callable[[QFunction, list[torch.Tensor]], torch.Tensor] | None = None) -> list[float]:
    """Fit G_phi by temporal differences on beliefs drawn from ``beliefs`` (one ``(N, S_f)`` tensor per factor).

    ``targets(target_network, qs) -> (batch, K)``: the regression targets; default ``td_targets`` with the
    settings' discount, terms and options (an example may weight the terms differently; see
    ``examples/epistemic_ablation.py``). Returns the history of the mean squared TD error, one value per step.
    """
    pool = [torch.as_tensor(b) for b in beliefs]
    N = pool[0].shape[0]
    qf.train()
    target = copy.deepcopy(qf).requires_grad_(False)
    opt = torch.optim.Adam(qf.parameters(), lr=settings.lr)
    gen = torch.Generator().manual_seed(settings.seed)
    history = []
    for _ in tqdm(range(settings.steps), disable=not settings.progress, desc="Q", unit="step", leave=False):
        idx = torch.randint(N, (settings.batch_size,), generator=gen)
        qs = [b[idx] for b in pool]
        if targets is None:
            y = td_targets(target, model, qs, settings.discount, settings.terms, settings.options)
        else:
            y = targets(target, qs)
        loss = ((qf(qs) - y.to(qf.dtype)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p_t, p in zip(target.parameters(), qf.parameters(), strict=True):
                p_t.lerp_(p, settings.tau)
        history.append(float(loss.detach()))
    qf.eval()
    return history
