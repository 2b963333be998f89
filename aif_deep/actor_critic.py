"""An actor-critic on expected free energy: an amortised policy posterior pi_psi(a | x) trained against the learned
EFE critic G_phi(x, a) in the maximum-entropy (soft actor-critic) form for discrete actions, as a strategy of
``aif_deep.Agent`` for an observed state (``aif_deep.online``):

    critic = aif_deep.QFunction([4], [2], seed=0)                     # G_phi(x, a): the EFE to go
    actor = aif_deep.QFunction([4], [2], seed=1)                      # pi_psi(a | x) = softmax(-G_psi(x, .))
    agent = Agent(StateVectorModel(4, 2, transition=Ensemble(4, 2)), inference=ObservedState(),
                  planner=LearnedQ(actor), selection=Softmax(1.0, gamma_start=None),   # a ~ pi_psi(a | x)
                  efe_terms=(RewardRisk(1.0), EnsembleInfoGain(0.1)),
                  learning=SoftActorCritic(critic, policy_terms=(EntropyWeight(0.05, target=0.3), PolicyDrift(1.0))),
                  rng=np.random.default_rng(0))

The actor is parametrised as a posterior at unit precision, ``pi_psi(a | x) = softmax(-G_psi(x, .))`` (a
``QFunction`` whose outputs are a stand-in EFE), so the ``LearnedQ`` planner and a ``Softmax(1.0)`` selection rule
sample from it unchanged (a higher precision sharpens it, ``EpsilonGreedy`` takes its mode).

Objective. Per state, the policy minimises the variational free energy of the policy posterior q = pi_psi(. | x)
under the critic, with the two terms of the perception-action objective as composable options:

    F(q; x) = E_q[G_phi(x, a)] - alpha H[q] + beta KL[q || q_prev]
            = sum_a q(a) (G_phi(x, a) + alpha ln q(a)) + beta sum_a q(a) (ln q(a) - ln q_prev(a)),

whose minimiser without the drift term is the posterior softmax(-G_phi(x, .) / alpha) (precision 1 / alpha).
``EntropyWeight`` gives alpha, fixed or learned (SAC's temperature: ``ln alpha`` descends ``ln alpha (H[q] -
target)``, so alpha falls while the policy is more random than the target entropy and rises while it is less);
``PolicyDrift`` gives beta and q_prev, a Polyak-averaged copy of the actor (the trust region that PPO's clipping
approximates; mirror-descent policy optimisation). The critic is fitted by ``TDLearning``'s temporal differences to
the agent's one-step EFE g (risk - information gain), bootstrapped with the soft value of the same objective,

    y = g(x, a, x') + discount (1 - terminated) V(x'),    V(x') = sum_a q(a | x') (G_target(x', a) + alpha ln q(a | x'))

(discrete SAC, Christodoulou 2019, with the EFE as the cost). ``TDLearning``'s options apply to the critic: with
``twin=True`` both the target's G and the G the actor descends are the pessimistic ``max(G_1, G_2)`` of two heads
(SAC's clipped double Q), and with ``n_step > 1`` the target sums the EFE of n replayed steps before V.

With ``imagination > 0`` the actor also learns on states imagined by rolling the model's transition ensemble
forward under the policy from replayed states (a random member per step): only the actor, since the critic's
targets need rewards and ends the ensemble does not predict.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import ClassVar, cast

import numpy as np
import torch
from torch import nn

from aif.errors import ParameterError, StrategyError
from aif.strategies import TORCH, Learner

from . import checks
from .online import StateVectorModel, TDLearning, TDRun
from .qfunction import QFunction


def soft_value(G: torch.Tensor, log_q: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """``sum_a q(a) (G(a) + alpha ln q(a)) = E_q[G] - alpha H[q]``: the free energy of the policy posterior ``q``
    under the EFE ``G`` at temperature ``alpha``; the soft value of a state (cost form, lower is better).

    Args:
        G: ``(*lead, K)`` the EFE of each action.
        log_q: ``(*lead, K)`` ln q(a), normalised.
        alpha: the entropy weight (a number or a tensor broadcasting against ``(*lead,)``).
    Returns ``(*lead,)``.
    """
    q = log_q.exp()
    return (q * G).sum(-1) + alpha * (q * log_q).sum(-1)


def policy_drift(log_q: torch.Tensor, log_q_prev: torch.Tensor) -> torch.Tensor:
    """``KL[q || q_prev] = sum_a q(a) (ln q(a) - ln q_prev(a))`` ``(*lead,)`` from normalised log-probabilities
    ``(*lead, K)``."""
    return (log_q.exp() * (log_q - log_q_prev)).sum(-1)


def entropy(log_q: torch.Tensor) -> torch.Tensor:
    """``H[q] = -sum_a q(a) ln q(a)`` ``(*lead,)`` from normalised log-probabilities ``(*lead, K)``."""
    return -(log_q.exp() * log_q).sum(-1)


def temperature_loss(log_alpha: torch.Tensor, H: torch.Tensor, target: float) -> torch.Tensor:
    """SAC's temperature objective ``ln alpha * mean(H[q] - target)`` (``H`` ``(B,)`` held fixed): its gradient in
    ``ln alpha`` is ``mean(H) - target``, so descent lowers alpha while the policy's entropy is above the target."""
    return log_alpha * (H.detach().mean() - target)


@dataclass(frozen=True)
class EntropyWeight:
    """The entropy term ``-alpha H[q(a | x)]`` of the policy's objective.

    A fixed alpha is a fixed precision 1 / alpha of the policy's target softmax(-G_phi(x, .) / alpha), so the
    entropy may differ from state to state as the critic's action differences do. A learned alpha holds only the
    mean entropy over replayed states at ``target``, and ln alpha moves about ``lr`` per update, so it lags a policy
    whose entropy changes faster: on CartPole a target of 0.2 nats first pulled alpha down from 0.05 to 0.017,
    then the entropy fell to 0.02-0.06 nats while alpha climbed back, and the returns fell with it
    (benchmarks/results/cartpole.md).

    Attributes:
        alpha: the weight (SAC's temperature); with a ``target``, its initial value.
        target: the target entropy in nats (in ``(0, ln K)`` for ``K`` actions): alpha is learned so that the
            policy's mean entropy tracks it; ``None``: alpha stays fixed.
        lr: Adam's learning rate of ``ln alpha``.
    """

    alpha: float = 0.1
    target: float | None = None
    lr: float = 3e-4

    def __post_init__(self) -> None:
        checks.settings("EntropyWeight", {"alpha": self.alpha, "lr": self.lr}, "positive")
        if self.target is not None:
            checks.settings("EntropyWeight", {"target": self.target}, "positive")


@dataclass(frozen=True)
class PolicyDrift:
    """The drift term ``weight * KL[q(a | x) || q_prev(a | x)]``, with ``q_prev`` a copy of the actor that follows it
    at Polyak rate ``tau`` per update (a trust region around the recent policies).

    Attributes:
        weight: beta, in nats of free energy per nat of KL (positive).
        tau: Polyak rate of ``q_prev`` (in ``(0, 1]``).
    """

    weight: float = 1.0
    tau: float = 0.01

    def __post_init__(self) -> None:
        checks.settings("PolicyDrift", {"weight": self.weight, "tau": self.tau}, "positive")
        checks.settings("PolicyDrift", {"tau": self.tau}, "fraction")


@dataclass(frozen=True, eq=False)
class SoftActorCritic(Learner):
    """Learning of an amortised policy (the ``LearnedQ`` planner's ``QFunction``, read as ``pi_psi(a | x) =
    softmax(-G_psi(x, .))``) against the EFE critic ``critic`` (see the module docstring). The critic, its target
    network, the replay buffer and the transition ensemble are trained as ``TDLearning`` trains them (``td``);
    ``ActorCriticRun``, built by the Agent, holds the state.

    Attributes:
        critic: G_phi, a ``QFunction`` over the same features and actions as the actor.
        td: the critic's ``TDLearning`` (``hard_min`` does not apply: the next state's value is the soft value under
            the policy).
        policy_terms: at most one ``EntropyWeight`` and one ``PolicyDrift``; none: the policy minimises E_q[G].
        lr: Adam's learning rate of the actor.
        imagination: steps of imagined rollouts through the model's transition ensemble whose states the actor
            also learns on (0: replayed states only).
    """

    critic: QFunction
    td: TDLearning = TDLearning()
    policy_terms: tuple = (EntropyWeight(),)
    lr: float = 3e-4
    imagination: int = 0
    backends: ClassVar[frozenset[str]] = frozenset({TORCH})

    def __post_init__(self) -> None:
        if not isinstance(self.critic, QFunction):
            raise StrategyError(f"SoftActorCritic.critic must be an aif_deep.QFunction, got {self.critic!r}")
        if not isinstance(self.td, TDLearning):
            raise StrategyError(f"SoftActorCritic.td must be a TDLearning, got {self.td!r}")
        if self.td.hard_min:
            raise StrategyError("SoftActorCritic bootstraps the critic with the soft value under its policy: "
                                "td=TDLearning(hard_min=True) does not apply")
        for kind in (EntropyWeight, PolicyDrift):
            if sum(isinstance(t, kind) for t in self.policy_terms) > 1:
                raise StrategyError(f"SoftActorCritic.policy_terms holds at most one {kind.__name__}, got "
                                    f"{self.policy_terms!r}")
        for t in self.policy_terms:
            if not isinstance(t, (EntropyWeight, PolicyDrift)):
                raise StrategyError(f"SoftActorCritic.policy_terms holds EntropyWeight and PolicyDrift objects, got "
                                    f"{t!r}")
        checks.settings("SoftActorCritic", {"lr": self.lr}, "positive")
        checks.settings("SoftActorCritic", {"imagination": self.imagination}, "natural")

    @property
    def entropy_weight(self) -> EntropyWeight | None:
        return next((t for t in self.policy_terms if isinstance(t, EntropyWeight)), None)

    @property
    def drift(self) -> PolicyDrift | None:
        return next((t for t in self.policy_terms if isinstance(t, PolicyDrift)), None)


class ActorCriticRun(TDRun):
    """The state of ``SoftActorCritic`` in one agent: ``TDRun``'s (buffer, critic target, ensemble, optimiser) and
    the actor's optimiser, ``ln alpha`` and its optimiser, and ``q_prev``.

    Args:
        settings: ``SoftActorCritic``.
        actor: the ``LearnedQ`` planner's ``QFunction`` (trained in place).
        model, terms, rng: as ``TDRun``'s.
        generator: draws the imagined actions and ensemble members (seeded from ``rng`` when absent).
    """

    def __init__(self, settings: SoftActorCritic, actor: QFunction, model: StateVectorModel, terms: tuple,
                 rng: np.random.Generator, generator: torch.Generator | None = None) -> None:
        critic = settings.critic
        if critic is actor:
            raise StrategyError("SoftActorCritic.critic must be a network of its own, not the planner's actor")
        for name, net in (("critic", critic), ("actor", actor)):
            if net.num_states != [model.num_features] or net.num_controls != [model.num_actions]:
                raise ParameterError(f"SoftActorCritic's {name} maps {net.num_states} features to {net.num_controls} "
                                     f"actions; the model has [{model.num_features}] and [{model.num_actions}]")
        if settings.imagination and model.transition is None:
            raise StrategyError("SoftActorCritic.imagination rolls the model's transition ensemble: "
                                "StateVectorModel(..., transition=Ensemble(...))")
        super().__init__(settings.td, critic, model, terms, rng)
        self.ac, self.actor, self.transition = settings, actor, model.transition
        self.drift, ent = settings.drift, settings.entropy_weight
        self.target_entropy = None if ent is None else ent.target
        if self.target_entropy is not None and self.target_entropy >= math.log(model.num_actions):
            K = model.num_actions
            raise ParameterError(f"EntropyWeight.target must be below ln {K} = {math.log(K):.4f} nats (the uniform "
                                 f"policy's), got {self.target_entropy}")
        self.log_alpha = torch.tensor(-math.inf if ent is None else math.log(ent.alpha),
                                      requires_grad=self.target_entropy is not None)
        self.alpha_opt = None if ent is None or ent.target is None else torch.optim.Adam([self.log_alpha], lr=ent.lr)
        self.actor_opt = torch.optim.Adam(actor.parameters(), lr=settings.lr, foreach=True)
        self.prev = None if self.drift is None else copy.deepcopy(actor).requires_grad_(False)
        self.generator = generator or torch.Generator().manual_seed(int(rng.integers(2**63)))
        self.last_entropy = self.last_drift = float("nan")

    @property
    def alpha(self) -> float:
        """The entropy weight now (0 without an ``EntropyWeight``)."""
        return float(self.log_alpha.detach().exp())

    def log_policy(self, x: torch.Tensor, net: QFunction | None = None) -> torch.Tensor:
        """``ln pi_psi(a | x)`` ``(B, K)`` for states ``x`` ``(B, D)`` (``net``: another copy of the actor)."""
        return torch.log_softmax(-(net or self.actor).net(x), -1)

    def next_value(self, x1: torch.Tensor) -> torch.Tensor:
        """``V(x') = sum_a q(a | x') (G_target(x', a) + alpha ln q(a | x'))`` ``(B,)``: the soft value under the
        policy (``soft_value``)."""
        G = self.target.net(x1) if self.target2 is None else self.target_G(x1)
        return soft_value(G, self.log_policy(x1), self.alpha)

    def imagine(self, x: torch.Tensor) -> torch.Tensor:
        """States ``(B * (imagination + 1), D)``: ``x`` ``(B, D)`` and ``imagination`` steps rolled forward from it
        under the policy, a random ensemble member per step and state (``x' = x + f_k(x, a)``, its mean)."""
        ensemble, states = self.transition, [x]
        assert ensemble is not None
        with torch.no_grad():
            for _ in range(self.ac.imagination):
                a = torch.multinomial(self.log_policy(x).exp(), 1, generator=self.generator)[:, 0]
                k = torch.randint(ensemble.weights[0].shape[0], (len(x),), generator=self.generator)
                x = x + ensemble(x, a)[k, torch.arange(len(x))]  # (K, B, D) -> (B, D)
                states.append(x)
        return torch.cat(states)

    def update(self) -> float:
        """One step of the critic (and ensemble) as ``TDRun.update``, then one of the actor and of ``ln alpha`` on
        states replayed (and imagined) from the buffer; returns the critic's TD loss."""
        loss = super().update()
        idx = torch.from_numpy(self.rng.integers(0, self.size, self.settings.batch_size))
        x = self.obs[idx]
        if self.ac.imagination:
            x = self.imagine(x)
        with torch.no_grad():
            G = self.qf.net(x)  # (B, K): the critic, held fixed for the actor's step
            if self.qf2 is not None:  # twin critics: the pessimistic max(G_1, G_2), as SAC's min of two Qs
                G = torch.maximum(G, self.qf2.net(x))
        log_q = self.log_policy(x)
        alpha = self.alpha
        objective = soft_value(G, log_q, alpha)
        if self.drift is not None:
            prev = cast(QFunction, self.prev)
            with torch.no_grad():
                log_prev = self.log_policy(x, prev)
            kl = policy_drift(log_q, log_prev)
            objective = objective + self.drift.weight * kl
            self.last_drift = float(kl.detach().mean())
        self.actor_opt.zero_grad(set_to_none=True)
        objective.mean().backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), self.settings.max_grad_norm)
        self.actor_opt.step()
        H = entropy(log_q.detach())
        self.last_entropy = float(H.mean())
        if self.alpha_opt is not None:
            self.alpha_opt.zero_grad(set_to_none=True)
            temperature_loss(self.log_alpha, H, cast(float, self.target_entropy)).backward()
            self.alpha_opt.step()
        if self.prev is not None:
            with torch.no_grad():
                torch._foreach_lerp_(list(self.prev.parameters()), list(self.actor.parameters()),
                                     cast(PolicyDrift, self.drift).tau)
        return loss
