"""A recurrent state-space model with categorical latents (RSSM, as DreamerV3's with discrete latents), whose
categorical part is a ``BeliefModel``: at a given deterministic state the Agent and the exact EFE run on it.

The state at step t is a deterministic vector ``h_t`` ``(D,)`` and a stochastic latent ``z_t`` of ``K``
categorical variables with ``C`` classes each (``J = C ** K`` joint classes, row-major over the variables):

    h_{t+1} = GRU(h_t, [E_q[onehot(z_t)], onehot(u_t)])       deterministic path
    p(z_t | h_t) = prod_k Cat(z_t^k; softmax(prior_net(h_t))_k)   prior, K independent variables (unimix)
    q(z_t | h_t, o_t) ∝ p(z_t | h_t) exp(m(o_t))                  posterior: the prior times the encoder's message
    p(o_t | z_t), r(z_t)                                           decoder heads and reward head

The encoder's message ``m(o)`` over the J joint classes, the decoder heads and the reward head are a
``NeuralModel``'s over ``K`` factors of ``C`` states (``RSSM.observation_model``), so the posterior is the tabular
formula ``infer_states`` runs, q ∝ exp(ln p(o|z) + ln prior), with a learned likelihood message. Two choices make the
categorical part, at each ``h``, a tabular model that the Agent runs unchanged (``RSSM.at(h)``, an ``RSSMView``):

- the GRU reads the belief's mean one-hot E_q[onehot(z_t)] (the K marginals), where DreamerV3 reads a sample. The
  next deterministic state is then a function of the belief and the action, and the Agent's prediction
  E_q[p(z' | h_t, z, u)] is the next view's prior p(z' | h_{t+1}) exactly;
- the decoder and the reward head read ``z`` only (DreamerV3's read ``h`` too), so A and the reward are one table over
  the J classes, which the EFE's outcome terms (utility, ambiguity, information gain) use as the tabular ones.

For one step ahead the EFE of a view is therefore exact (tested against ``aif``'s NumPy EFE on the view's tables).
Beyond the first step of a policy the view predicts with its own ``h`` in place of the deterministic states the
policy would reach (the view is a model of one step; score longer horizons with one-step policies and a
``TerminalValue``). After each action the carry moves on explicitly:
``agent.model = agent.model.advance(agent.qs, action)``.

Training maximises the ELBO of windows from a ``ReplayBuffer`` (``elbo_loss``): per step the reconstruction
``-ln p(o_t | z_t)`` of a straight-through one-hot sample ``z_t ~ q`` over the joint classes, ``KL[q_t || p_t]`` under
the options of ``ELBO`` (``KLBalancing``, ``FreeNats``), and the squared error of the reward head: ``fit`` on a
fixed buffer, ``OnlineFit`` while an agent acts and its episodes fill the buffer (a set replay ratio).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from aif.efe import EFEOptions
from aif.errors import ModelError, ParameterError, PolicyError
from aif.maths import LogGuard

from . import checks
from .efe import joint
from .episodes import ReplayBuffer
from .neural import Head, NeuralModel, mlp, unimix
from .training import straight_through_sample

Tensor = torch.Tensor


# --- the ELBO's options ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class KLBalancing:
    """KL balancing (DreamerV2): the KL's value with ``alpha`` of its gradient to the prior and ``1 - alpha`` to the
    posterior,

        alpha KL[sg(q) || p] + (1 - alpha) KL[q || sg(p)],        sg: stop-gradient,

    so that the prior learns to predict the posterior faster than the posterior is pulled towards a poor prior.

    Attributes:
        alpha: the prior's share, in [0, 1] (0.8 in DreamerV2; DreamerV3's 0.5 / 0.1 loss weights are 5/6).
    """

    alpha: float = 0.8

    def __post_init__(self) -> None:
        checks.settings("KLBalancing", {"alpha": self.alpha}, "fraction")


@dataclass(frozen=True)
class FreeNats:
    """Free nats (free bits): each step's KL counts as ``max(KL, nats)``, so a step whose KL is below ``nats`` gives
    no gradient to it (DreamerV3: 1 nat). With ``KLBalancing`` the floor applies to each of its two parts.

    Attributes:
        nats: the floor, >= 0.
    """

    nats: float = 1.0

    def __post_init__(self) -> None:
        checks.settings("FreeNats", {"nats": self.nats}, "non-negative")


@dataclass(frozen=True)
class ELBO:
    """The loss ``elbo_loss`` minimises, per step: reconstruction + KL term + ``reward_weight`` * reward error.

    Attributes:
        balancing: ``KLBalancing`` or ``None`` (the plain KL, gradient to both sides).
        free_nats: ``FreeNats`` or ``None``.
        reward_weight: weight of the reward head's squared error (>= 0).
    """

    balancing: KLBalancing | None = None
    free_nats: FreeNats | None = None
    reward_weight: float = 1.0

    def __post_init__(self) -> None:
        for name, kind in (("balancing", KLBalancing), ("free_nats", FreeNats)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise ParameterError(f"ELBO.{name} must be a {kind.__name__} or None, got {value!r}")
        checks.settings("ELBO", {"reward_weight": self.reward_weight}, "non-negative")


def categorical_kl(q: Tensor, p: Tensor) -> Tensor:
    """KL[q || p] along the last axis, ``(*lead,)``; 0 ln 0 = 0 where q has a zero (p has none: unimix)."""
    return (torch.xlogy(q, q) - q * torch.log(p)).sum(-1)


def kl_loss(q: Tensor, p: Tensor, elbo: ELBO) -> Tensor:
    """The KL term of one step, ``(*lead,)``, under ``elbo``'s balancing and free nats (their docstrings); its value is
    ``max(KL[q || p], nats)`` whatever the balancing."""
    if elbo.balancing is None:
        parts = [(1.0, categorical_kl(q, p))]
    else:
        a = elbo.balancing.alpha
        parts = [(a, categorical_kl(q.detach(), p)), (1.0 - a, categorical_kl(q, p.detach()))]
    floor = 0.0 if elbo.free_nats is None else elbo.free_nats.nats
    return cast(Tensor, sum(w * x.clamp_min(floor) for w, x in parts))


# --- the model -------------------------------------------------------------------------------------------

class RSSM(nn.Module):
    """A recurrent state-space model with ``num_latents`` categorical variables (module docstring).

    Args:
        num_latents: K, the categorical variables of z (at least 1).
        num_classes: C, the classes of each (at least 2); the joint classes J = C ** K are enumerated by the
            views and the decoder tables, so keep J to a few hundred.
        num_actions: U, the actions of the one control factor.
        observations: one head per modality (``aif_deep.neural.Categorical``, ``Bernoulli``, ``Gaussian``).
        C: log-preferences per categorical modality, as ``NeuralModel``'s.
        reward_preference: with it, a reward head r(z) is trained and the utility is ``reward_preference * E_q[r]``.
        deter: D, the size of the deterministic state h.
        hidden: width of the hidden layers.
        unimix: the uniform mixture of the prior's categorical distributions.
        info_gain_samples: samples per joint class of the information-gain estimator (non-categorical heads).
        seed: seeds the initial weights.
        max_bytes: the most bytes the observation model may take (``NeuralModel``'s check).
    """

    def __init__(self, num_latents: int, num_classes: int, num_actions: int, observations: Sequence[Head],
                 C: Sequence[Tensor | None] | None = None, reward_preference: float | None = None, deter: int = 64,
                 hidden: int = 64, unimix: float = 0.01, info_gain_samples: int = 16, seed: int = 0,
                 max_bytes: int = 2**30) -> None:
        super().__init__()
        checks.settings("RSSM", {"num_latents": num_latents, "num_actions": num_actions, "deter": deter,
                                 "hidden": hidden}, "count")
        checks.settings("RSSM", {"num_classes": num_classes}, "count")
        if num_classes < 2:
            raise ParameterError(f"RSSM.num_classes must be at least 2 (a latent of one class carries nothing), got "
                                 f"{num_classes}")
        self.num_latents, self.num_classes, self.num_actions = int(num_latents), int(num_classes), int(num_actions)
        self.deter = int(deter)
        # The NeuralModel's K factors with one control each: its transition networks are unused (the GRU and the
        # prior network replace them), its encoder, decoder and reward head are z's.
        self.observation_model = NeuralModel([self.num_classes] * self.num_latents, [1] * self.num_latents,
                                             observations, C=C, reward_preference=reward_preference, hidden=hidden,
                                             unimix=unimix, info_gain_samples=info_gain_samples, seed=seed,
                                             max_bytes=max_bytes)
        with torch.random.fork_rng():
            torch.manual_seed(int(seed) + 1)
            self.gru = nn.GRUCell(self.num_latents * self.num_classes + self.num_actions, self.deter)
            self.prior_net = mlp(self.deter, hidden, self.num_latents * self.num_classes)

    @property
    def num_joint(self) -> int:
        """J = C ** K, the joint classes of z."""
        return self.num_classes ** self.num_latents

    @property
    def dtype(self) -> torch.dtype:
        return self.observation_model.dtype

    @property
    def device(self) -> torch.device:
        return self.observation_model.device

    def initial(self, batch_shape: tuple = ()) -> Tensor:
        """The deterministic state at the start of an episode: zeros ``(*batch_shape, D)``."""
        return torch.zeros(*batch_shape, self.deter, dtype=self.dtype, device=self.device)

    def prior(self, h: Tensor) -> Tensor:
        """p(z | h) over the joint classes, ``(*lead, J)`` for ``h`` ``(*lead, D)``: the product of K categorical
        variables, each mixed with ``unimix`` of the uniform."""
        logits = self.prior_net(h).unflatten(-1, (self.num_latents, self.num_classes))  # (*lead, K, C)
        p = unimix(torch.softmax(logits, -1), self.observation_model.unimix)
        return joint(list(p.unbind(-2)))

    def marginals(self, q: Tensor) -> Tensor:
        """E_q[onehot(z)]: the K marginals of a joint belief ``(*lead, J)`` concatenated, ``(*lead, K * C)``."""
        K, C = self.num_latents, self.num_classes
        grid = q.unflatten(-1, (C,) * K)  # (*lead, C, ..., C)
        return torch.cat([grid.sum([-K + g for g in range(K) if g != k]) if K > 1 else grid for k in range(K)], -1)

    def step(self, h: Tensor, q: Tensor, action: Tensor) -> Tensor:
        """The next deterministic state ``(*lead, D)`` from ``h`` ``(*lead_h, D)``, the belief (or one-hot sample)
        ``q`` ``(*lead_q, J)`` and int actions ``(*lead_a,)`` in ``0 .. U - 1`` (the leads broadcast)."""
        return self._advance(h, q, self._actions(action, h.device))

    def _actions(self, action: Any, device: torch.device) -> Tensor:
        """``action`` as an int tensor on ``device``, every entry in ``0 .. U - 1`` (``PolicyError``). Its range check
        reads the tensor's extremes (a device synchronisation): ``filter`` checks a window's actions once."""
        action = torch.as_tensor(action, device=device)
        if action.is_floating_point() or action.dtype == torch.bool:
            raise PolicyError(f"actions must be integers in 0 .. {self.num_actions - 1}, got dtype {action.dtype}")
        if action.numel() and (int(action.min()) < 0 or int(action.max()) >= self.num_actions):
            bad = action[(action < 0) | (action >= self.num_actions)].flatten()[0]
            raise PolicyError(f"action {int(bad)} is out of range for {self.num_actions} actions")
        return action

    def _advance(self, h: Tensor, q: Tensor, action: Tensor) -> Tensor:
        """``step`` for actions already checked (``_actions``)."""
        x = _step_input(self.marginals(q), action, self.num_actions)  # (*lead_x, K * C + U)
        lead = torch.broadcast_shapes(x.shape[:-1], h.shape[:-1])
        out = self.gru(x.expand(*lead, x.shape[-1]).reshape(-1, x.shape[-1]),
                       h.expand(*lead, h.shape[-1]).reshape(-1, h.shape[-1]))
        return out.reshape(*lead, self.deter)

    def at(self, h: Tensor) -> RSSMView:
        """The categorical model at deterministic state ``h`` ``(*batch, D)``: a ``BeliefModel`` for the Agent."""
        h = checks.as_tensor(h, "h", ModelError)
        if h.ndim < 1 or h.shape[-1] != self.deter or not h.is_floating_point():
            raise ModelError(f"h must be a float tensor (*batch, {self.deter}), got {tuple(h.shape)} {h.dtype}")
        if not bool(torch.isfinite(h).all()):
            raise ModelError("h has a non-finite entry")
        return RSSMView(self, h.to(self.dtype))

    def filter(self, observations: list, actions: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Run the posterior along windows: ``observations`` one ``(B, L + 1, *shape_m)`` per modality, ``actions``
        int ``(B, L)``; ``h0`` ``(B, D)`` (zeros when ``None``). Returns ``(h, prior, posterior)``: ``(B, L + 1, D)``,
        ``(B, L + 1, J)`` and ``(B, L + 1, J)``."""
        Bsz, L = actions.shape[:2]
        for m, o in enumerate(observations):
            if o.shape[:2] != (Bsz, L + 1):
                raise ParameterError(f"observations[{m}] has shape {tuple(o.shape)}; windows of {L} actions need "
                                     f"(B, L + 1) = ({Bsz}, {L + 1}) leading axes")
        message = self.observation_model.joint_message([o.flatten(0, 1) for o in observations])  # (B * (L+1), J)
        message = message.unflatten(0, (Bsz, L + 1))
        h = self.initial((Bsz,)) if h0 is None else h0
        actions = self._actions(actions, h.device)  # once for the window, not at each step
        hs, priors, posts = [], [], []
        for t in range(L + 1):
            p = self.prior(h)
            q = torch.softmax(message[:, t] + torch.log(p), -1)  # infer_states' formula with one factor
            hs.append(h)
            priors.append(p)
            posts.append(q)
            if t < L:
                h = self._advance(h, q, actions[:, t])
        return torch.stack(hs, 1), torch.stack(priors, 1), torch.stack(posts, 1)


def _step_input(marginals: Tensor, action: Tensor, num_actions: int) -> Tensor:
    """``[marginals, onehot(action)]`` broadcast over their leading axes: ``(*lead, K * C + U)``."""
    u = nn.functional.one_hot(action.long(), num_actions).to(marginals.dtype)
    lead = torch.broadcast_shapes(marginals.shape[:-1], u.shape[:-1])
    return torch.cat([marginals.expand(*lead, marginals.shape[-1]), u.expand(*lead, num_actions)], -1)


@dataclass(frozen=True, eq=False)
class RSSMView:
    """The categorical part of an ``RSSM`` at deterministic state ``h`` ``(*batch, D)``: a ``BeliefModel`` with one
    factor of J joint classes and one control factor of U actions (module docstring). ``batch_shape`` is ``h``'s
    leading shape: each agent of a batch has its own deterministic state.

    ``prior()`` is p(z | h); ``log_likelihood`` the encoder's message per modality ``(*lead, J)``; ``predict_all(qs)``
    p(z' | GRU(h, E_q[onehot z], u)) for every u, ``(U, *lead, J)``; ``outcome_terms`` the ``NeuralModel``'s terms of
    the decoder tables, from the belief's K marginals (exact for the beliefs ``predict_all`` returns, products of
    the K variables). In eval mode (``rssm.eval()``) nothing carries a gradient."""

    rssm: RSSM
    h: Tensor
    num_states: list = field(init=False, repr=False)
    num_obs: list = field(init=False, repr=False)
    num_controls: list = field(init=False, repr=False)
    A_dependencies: list = field(init=False, repr=False)
    B_dependencies: list = field(init=False, repr=False)
    batch_shape: tuple = field(init=False, repr=False)

    def __post_init__(self) -> None:
        r = self.rssm
        object.__setattr__(self, "num_states", [r.num_joint])
        object.__setattr__(self, "num_obs", list(r.observation_model.num_obs))
        object.__setattr__(self, "num_controls", [r.num_actions])
        object.__setattr__(self, "A_dependencies", [[0] for _ in r.observation_model.heads])
        object.__setattr__(self, "B_dependencies", [[0]])
        object.__setattr__(self, "batch_shape", tuple(self.h.shape[:-1]))

    num_factors = property(lambda self: 1)
    num_modalities = property(lambda self: len(self.num_obs))

    @property
    def categorical(self) -> list:
        return self.rssm.observation_model.categorical

    @property
    def C(self) -> list:
        return self.rssm.observation_model.C

    @property
    def dtype(self) -> torch.dtype:
        return self.h.dtype

    @property
    def device(self) -> torch.device:
        return self.h.device

    def _grad(self) -> Any:
        return torch.enable_grad() if self.rssm.training else torch.no_grad()

    def prior(self) -> list:
        with self._grad():
            return [self.rssm.prior(self.h)]

    def log_likelihood(self, obs: list, guard: LogGuard | None = None) -> list:
        """The encoder's message per modality, ``(*lead, J)`` (logits: no log guard applies)."""
        return [x.flatten(-self.rssm.num_latents) for x in self.rssm.observation_model.log_likelihood(obs)]

    def predict_all(self, qs: list) -> list:
        q = qs[0]  # (*lead, J)
        u = torch.arange(self.rssm.num_actions, device=q.device).reshape(-1, *[1] * (q.ndim - 1))  # (U, 1, ...)
        with self._grad():
            return [self.rssm.prior(self.rssm.step(self.h, q, u))]  # (U, *lead, J)

    def outcome_terms(self, qs: list, t: int, options: EFEOptions) -> dict:
        K, C = self.rssm.num_latents, self.rssm.num_classes
        factors = list(self.rssm.marginals(qs[0]).unflatten(-1, (K, C)).unbind(-2))  # K of (*lead, C)
        return self.rssm.observation_model.outcome_terms(factors, t, options)

    def advance(self, qs: list, action: Any) -> RSSMView:
        """The view at the next deterministic state, after belief ``qs`` (``[(*batch, J)]``) and ``action``
        (int ``(*batch, 1)``, the Agent's, or ``(*batch,)``): its ``prior()`` is the Agent's predicted prior."""
        a = torch.as_tensor(action, device=self.device)
        if a.ndim and a.shape[-1] == 1 and a.ndim == len(self.batch_shape) + 1:
            a = a[..., 0]
        with self._grad():
            return RSSMView(self.rssm, self.rssm.step(self.h, qs[0], a))


# --- training --------------------------------------------------------------------------------------------

def elbo_loss(rssm: RSSM, batch: dict, elbo: ELBO = ELBO(), generator: torch.Generator | None = None
              ) -> tuple[Tensor, dict]:
    """The negative ELBO per step of a batch of windows (``ReplayBuffer.sample``'s dict: ``observations`` one
    ``(B, L + 1, *shape_m)`` per modality, ``actions`` ``(B, L, 1)``, ``rewards`` ``(B, L)``), every window started
    from ``h = 0``:

        loss = mean_b [ sum_t (-ln p(o_t | z_t) + KL term_t) + reward_weight * sum_t (r(z_{t+1}) - r_t)^2 ] / (L + 1)

    with ``z_t`` a straight-through one-hot sample of q_t over the joint classes (``generator`` draws it).

    Returns ``(loss, metrics)``: a scalar tensor and floats ``elbo`` (per step, without the reward), ``reconstruction``,
    ``kl`` (the plain KL per step) and ``reward``.
    """
    om = rssm.observation_model
    dev, dt = rssm.device, rssm.dtype
    obs = [torch.as_tensor(o, device=dev) for o in batch["observations"]]
    obs = [o.to(dt) if o.is_floating_point() else o for o in obs]
    actions = torch.as_tensor(batch["actions"], device=dev)
    if actions.ndim != 3 or actions.shape[-1] != 1:
        raise ParameterError(f"actions must have shape (B, L, 1) (one control factor), got {tuple(actions.shape)}")
    rewards = torch.as_tensor(batch["rewards"], device=dev, dtype=dt)
    if tuple(rewards.shape) != tuple(actions.shape[:2]):
        raise ParameterError(f"rewards has shape {tuple(rewards.shape)}, expected (B, L) = {tuple(actions.shape[:2])}")
    _, prior, post = rssm.filter(obs, actions[..., 0])
    Bsz, L1 = post.shape[:2]
    kl_term = kl_loss(post, prior, elbo).sum(1)  # (B,)
    sample = straight_through_sample(post, generator)  # (B, L + 1, J), one-hot with the straight-through gradient
    z = sample @ om.joint_states()  # (B, L + 1, K * C): the K one-hots of each sampled joint class
    params = om.decode(z)
    recon = -cast(Tensor, sum(h.log_prob(p, o) for h, p, o in zip(om.heads, params, obs, strict=True))).sum(1)
    rew = torch.zeros_like(recon)
    if om.reward_head is not None and L1 > 1:
        rew = ((om.reward_head(z[:, 1:])[..., 0] - rewards) ** 2).sum(1)
    loss = ((recon + kl_term + elbo.reward_weight * rew) / L1).mean()
    with torch.no_grad():
        kl = categorical_kl(post, prior).sum(1)
        metrics = {"elbo": float(-(recon + kl).mean() / L1), "reconstruction": float(recon.mean() / L1),
                   "kl": float(kl.mean() / L1), "reward": float(rew.mean() / max(L1 - 1, 1))}
    return loss, metrics


def fit(rssm: RSSM, buffer: ReplayBuffer, steps: int, rng: np.random.Generator, *, batch_size: int = 16,
        length: int = 16, lr: float = 1e-3, elbo: ELBO = ELBO(), generator: torch.Generator | None = None,
        optimizer: torch.optim.Optimizer | None = None) -> list[dict]:
    """``steps`` Adam steps on ``elbo_loss`` over windows of ``length`` actions drawn by ``rng`` from ``buffer``
    (gradient norm clipped at 100). ``optimizer``: one to continue with (a new ``Adam(lr)`` when ``None``).
    Returns the metrics of every step."""
    checks.settings("fit", {"steps": steps, "batch_size": batch_size, "length": length}, "count")
    checks.settings("fit", {"lr": lr}, "positive")
    opt = torch.optim.Adam(rssm.parameters(), lr=lr) if optimizer is None else optimizer
    return _adam_steps(rssm, buffer, opt, int(steps), rng, batch_size, length, elbo, generator)


def _adam_steps(rssm: RSSM, buffer: ReplayBuffer, opt: torch.optim.Optimizer, steps: int, rng: np.random.Generator,
                batch_size: int, length: int, elbo: ELBO, generator: torch.Generator | None) -> list[dict]:
    """``fit``'s and ``OnlineFit``'s loop: ``steps`` steps of ``opt`` on ``elbo_loss``, the RSSM in train mode and left
    in eval mode."""
    rssm.train()
    history = []
    for _ in range(steps):
        loss, metrics = elbo_loss(rssm, buffer.sample(batch_size, length, rng), elbo, generator)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(rssm.parameters(), 100.0)
        opt.step()
        history.append(metrics)
    rssm.eval()
    return history


@dataclass(frozen=True)
class OnlineFitState:
    """The carry of ``OnlineFit``: the Adam optimizer (its moments persist across updates), the environment steps
    seen since the last update, and the Adam steps taken so far."""

    optimizer: torch.optim.Optimizer
    pending: int = 0
    updates: int = 0


@dataclass(frozen=True)
class OnlineFit:
    """Training an RSSM online, while an agent acts on it: ``init(rssm)`` makes the carry, and
    ``update(state, rssm, buffer, new_steps, rng)``, called as the agent acts, takes ``steps`` Adam steps on
    ``elbo_loss`` (``fit``'s step: gradient norm clipped at 100) each time ``every`` more environment steps have been
    seen, on windows drawn from the sequence replay ``buffer`` of the episodes so far. The replay ratio (replayed
    steps per environment step, DreamerV3's train ratio) is ``steps * batch_size * length / every``.

    Windows come from whole episodes in the buffer of at least ``length`` actions (``ReplayBuffer.sample``), so an
    episode's reward at its end is replayed only if it is that long: while the longest episode is shorter, windows
    have the longest episode's length; keep ``length`` below the typical successful episode.

    Attributes:
        every: environment steps between updates (at least 1).
        steps: Adam steps per update (at least 1).
        batch_size: windows per Adam step.
        length: actions per window (at most; see above).
        lr: Adam's learning rate.
        elbo: the ELBO's options.
    """

    every: int = 16
    steps: int = 1
    batch_size: int = 16
    length: int = 16
    lr: float = 1e-3
    elbo: ELBO = ELBO()

    def __post_init__(self) -> None:
        checks.settings("OnlineFit", {"every": self.every, "steps": self.steps, "batch_size": self.batch_size,
                                      "length": self.length}, "count")
        checks.settings("OnlineFit", {"lr": self.lr}, "positive")
        if not isinstance(self.elbo, ELBO):
            raise ParameterError(f"OnlineFit.elbo must be an ELBO, got {self.elbo!r}")

    def init(self, rssm: RSSM, optimizer: torch.optim.Optimizer | None = None) -> OnlineFitState:
        """The carry before any environment step: a new ``Adam(lr)`` over the RSSM's parameters, or ``optimizer`` (one
        to continue with, e.g. the warm-up's)."""
        return OnlineFitState(torch.optim.Adam(rssm.parameters(), lr=self.lr) if optimizer is None else optimizer)

    def update(self, state: OnlineFitState, rssm: RSSM, buffer: ReplayBuffer, new_steps: int,
               rng: np.random.Generator, generator: torch.Generator | None = None
               ) -> tuple[OnlineFitState, list[dict]]:
        """Count ``new_steps`` environment steps; for each ``every`` of them, ``steps`` Adam steps on windows drawn by
        ``rng`` from ``buffer`` (``generator`` draws the ELBO's samples). While the buffer holds no episode, the steps
        are counted and nothing is trained. Leaves the RSSM in eval mode.

        Returns the new carry and the metrics of every Adam step taken (``elbo_loss``'s), empty when none was."""
        checks.settings("OnlineFit.update", {"new_steps": new_steps}, "natural")
        pending = state.pending + int(new_steps)
        rounds = pending // self.every
        if not rounds or not len(buffer):
            return replace(state, pending=pending), []
        length = min(self.length, max(len(e[1]) for e in buffer.episodes))
        history = _adam_steps(rssm, buffer, state.optimizer, rounds * self.steps, rng, self.batch_size, length,
                              self.elbo, generator)
        return replace(state, pending=pending - rounds * self.every, updates=state.updates + len(history)), history


def features(rssm: RSSM, h: Tensor, q: Tensor) -> Tensor:
    """The state of an RSSM agent as one vector ``(*lead, D + K * C)``: ``[h, E_q[onehot z]]`` (the input of a
    policy or value network acting on the RSSM's belief)."""
    return torch.cat([h, rssm.marginals(q)], -1)


__all__ = ["RSSM", "RSSMView", "ELBO", "KLBalancing", "FreeNats", "categorical_kl", "kl_loss", "elbo_loss", "fit",
           "OnlineFit", "OnlineFitState", "features"]
