"""Training a ``NeuralModel`` by minimising the variational free energy of sequences from a replay buffer.

For a window ``o_0..o_L``, ``u_0..u_{L-1}`` the belief is filtered as the agent does it:
prior_0 = D (uniform when the window starts inside an episode), q_t ∝ exp(message(o_t) + ln prior_t) mixed
with ``unimix`` of the uniform, prior_{t+1} = E_{q_t}[B(u_t)] (``predict``). With several factors q_t is the
factors' marginals of that joint posterior (the agent's fixed point iterates towards a mean-field one).
The loss per step is the VFE

    F_t = KL[q_t || prior_t] - E_{q_t}[ln p(o_t | s_t)]     (+ squared error of the reward head),

where the reconstruction term is estimated with one straight-through sample
(``OneHotCategoricalStraightThrough``) of every factor, so gradients reach the encoder through the sample.
The KL between categorical beliefs is exact.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch.distributions import OneHotCategoricalStraightThrough
from tqdm.auto import tqdm

from aif.errors import ParameterError

from . import checks
from .checkpoint import TrainState, load_checkpoint, save_checkpoint
from .episodes import ReplayBuffer
from .inference import exact
from .neural import Bernoulli, NeuralModel, predict_all_from, unimix


def sequence_vfe(model: NeuralModel, batch: dict, generator: torch.Generator | None = None,
                 usage_weight: float = 1.0, tricks: Sequence[Trick] = ()) -> tuple[torch.Tensor, dict]:
    """Mean VFE per step of a batch of windows (module docstring) and its parts.

    The loss adds ``usage_weight`` times KL[q_bar || uniform], with q_bar the posterior averaged over the
    batch and the window (per factor): without it, training from images falls into the local optima of
    clustering (two locations share a class, another class is never used; benchmarks/results/training_tricks.md).
    ``tricks`` change the encoder's input, the carried belief or the loss (``Trick``).

    Returns:
        ``(loss, metrics)``: a scalar tensor and a dict of floats (``vfe``, ``reconstruction``, ``kl``,
        ``reward``).
    """
    dev, dt = model.device, model.dtype
    obs = [torch.as_tensor(o, device=dev) for o in batch["observations"]]
    obs = [o.to(dt) if o.is_floating_point() else o for o in obs]
    actions = torch.as_tensor(batch["actions"], device=dev)
    rewards = torch.as_tensor(batch["rewards"], device=dev, dtype=dt)
    first = torch.as_tensor(batch["first"], device=dev)
    Bsz, L = actions.shape[:2]
    B = model.tables()["B"]  # once per batch: the transition network on every state and control
    D = [unimix(torch.softmax(lg, -1), model.unimix) for lg in model.prior_logits]
    prior = [torch.where(first[:, None], d, torch.full_like(d, 1.0 / d.shape[-1])) for d in D]
    seen = obs
    for trick in tricks:
        seen = trick.encoder_input(model, seen, generator)
    message = model.joint_message([o.flatten(0, 1) for o in seen])  # encode every step at once: (B * (L+1), J)
    message = message.reshape(Bsz, L + 1, -1)  # (B, L + 1, J)
    kl: torch.Tensor | float = 0.0
    samples = []
    usage: list = [0.0] * model.num_factors
    for t in range(L + 1):
        qs = [unimix(q, model.unimix) for q in _posterior(message[:, t], prior)]
        # The plain KL: DreamerV3's free nats and KL balancing (0.8 to the prior) both made the grid-image
        # model collapse to one class here.
        kl = kl + sum(_kl(q, p) for q, p in zip(qs, prior, strict=True))
        usage = [u + q.mean(0) / (L + 1) for u, q in zip(usage, qs, strict=True)]
        samples.append(torch.cat([straight_through_sample(q, generator) for q in qs], -1))  # (B, sum S)
        if t < L:
            msg = carried_msg = message[:, t]
            for trick in tricks:
                carried_msg = trick.carried_message(carried_msg)
            carried = qs if carried_msg is msg else [unimix(q, model.unimix) for q in _posterior(carried_msg, prior)]
            prior = _predict(B, carried, actions[:, t])  # prior_{t+1} = E_{q_t}[B(u_t)], the agent's predict
    # The decoder and the reward head see every step's sample at once.
    stacked = torch.stack(samples, 1)  # (B, L + 1, sum S)
    params = model.decode(stacked)
    log_p = cast(torch.Tensor, sum(h.log_prob(p, o) for h, p, o in zip(model.heads, params, obs, strict=True)))
    recon = -log_p.sum(-1)  # (B,)
    rew_loss = torch.zeros_like(recon)
    if model.reward_head is not None and L > 0:
        rew_loss = ((model.reward_head(stacked[:, 1:])[..., 0] - rewards) ** 2).sum(-1)
    assert isinstance(kl, torch.Tensor)
    vfe = (recon + kl) / (L + 1)
    # KL[mean posterior || uniform], per factor: the aggregate-posterior part of the VFE's KL (in the
    # decomposition E KL[q(s|o) || p] = I(o; s) + KL[q(s) || p]) against uniform class use, weighted up.
    usage_kl = sum((u * torch.log(u * u.shape[-1])).sum() for u in usage)
    extra = sum(trick.window_loss(kl, L + 1) for trick in tricks)  # (B,), or 0 without tricks
    loss = (vfe + extra + rew_loss / max(L, 1)).mean() + usage_weight * usage_kl
    with torch.no_grad():
        metrics = {"vfe": float(vfe.mean()), "usage_kl": float(usage_kl),
                   "reconstruction": float(recon.mean() / (L + 1)), "kl": float(kl.mean() / (L + 1)),
                   "reward": float(rew_loss.mean() / max(L, 1))}
    return loss, metrics


def _posterior(message, prior):
    """q(s) ∝ exp(message + ln prior) for a joint message ``(B, J)`` and factorised priors ``(B, S_f)``: the
    marginals ``(B, S_f)`` of the exact joint posterior (``inference.exact``, with the message as one likelihood over
    all factors)."""
    S = [p.shape[-1] for p in prior]
    return exact([message.reshape(-1, *S)], [torch.log(p) for p in prior], [list(range(len(S)))])


def _kl(q, p):
    return (q * (torch.log(q) - torch.log(p))).sum(-1)


def straight_through_sample(q: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A one-hot draw from the categorical ``q`` ``(*lead, K)`` whose gradient is that of ``q`` (straight through)."""
    if generator is None:
        return OneHotCategoricalStraightThrough(probs=q).rsample()
    # OneHotCategoricalStraightThrough draws from the global generator; with a generator given, draw the
    # same one-hot (inverse CDF) and add its straight-through gradient, q - q.detach(), by hand.
    u = torch.rand(q.shape[:-1] + (1,), generator=generator, device=q.device, dtype=q.dtype)
    idx = (torch.cumsum(q, -1) < u).sum(-1).clamp_max(q.shape[-1] - 1)
    onehot = torch.nn.functional.one_hot(idx, q.shape[-1]).to(q.dtype)
    return onehot + q - q.detach()


def _predict(B, qs, action):
    out = []
    for f, q_all in enumerate(predict_all_from(B, qs)):  # (U_f, B, S_f)
        out.append(q_all.gather(0, action[:, f][None, :, None].expand(1, *q_all.shape[1:]))[0])
    return out


class Trick:
    """A change to ``train``'s loss or schedule, passed as ``train(model, buffer, settings, tricks=(...))``.

    Each hook leaves training as it is; a trick overrides the hooks it needs. They are research devices that
    made particular models train (benchmarks/results/training_tricks.md), not part of the VFE.
    """

    def encoder_input(self, model: NeuralModel, obs: list[torch.Tensor],
                      generator: torch.Generator | None) -> list[torch.Tensor]:
        """The observations the encoder sees (the decoder always scores ``obs``)."""
        return obs

    def carried_message(self, message: torch.Tensor) -> torch.Tensor:
        """The joint message ``(B, J)`` whose posterior is carried into the next step's prior."""
        return message

    def window_loss(self, kl: torch.Tensor, steps: int) -> torch.Tensor | float:
        """A loss ``(B,)`` added per window, from the window's summed KL ``(B,)`` over its ``steps`` steps."""
        return 0.0

    def after_step(self, model: NeuralModel, buffer: ReplayBuffer, rng: np.random.Generator, step: int,
                   settings: TrainSettings) -> dict | None:
        """Called after optimiser step ``step`` (1-based); a dict returned is recorded in ``TrainResult.moves``."""
        return None


@dataclass(frozen=True)
class KLWeight(Trick):
    """Scale the KL term of the loss by ``weight`` (the reported ``vfe`` stays the plain one). Above 1 it charges
    a belief for leaving its prior where nothing in the data pays for it: in the T-maze from images, at weight
    1 the model spent the context's free bit at the first step on the pixel noise near the cue."""

    weight: float

    def __post_init__(self) -> None:
        checks.settings("KLWeight", {"weight": self.weight}, "positive")

    def window_loss(self, kl: torch.Tensor, steps: int) -> torch.Tensor | float:
        return (self.weight - 1.0) * kl / steps


@dataclass(frozen=True)
class DetachCarriedMessage(Trick):
    """The belief carried into the next step's prior is computed from the message without its gradient, so the
    encoder learns from its own step's terms only, while the prior and the transition network still learn from
    every step. Otherwise the later steps' KL pays the encoder for predicting, from the current image, what a
    later observation will show, which it can only do by learning the training images' noise by heart."""

    def carried_message(self, message: torch.Tensor) -> torch.Tensor:
        return message.detach()


@dataclass(frozen=True)
class EncoderFlip(Trick):
    """Every pixel of a ``Bernoulli`` modality flips with probability ``flip`` in the encoder's input only (the
    decoder scores the observed image), so the encoder rarely sees the same noise twice."""

    flip: float

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.flip) < 0.5:
            raise ParameterError(f"EncoderFlip.flip must lie in [0, 0.5), got {self.flip}")

    def encoder_input(self, model: NeuralModel, obs: list[torch.Tensor],
                      generator: torch.Generator | None) -> list[torch.Tensor]:
        out = []
        for h, o in zip(model.heads, obs, strict=True):
            if isinstance(h, Bernoulli) and self.flip > 0:  # each pixel flipped with probability flip
                o = torch.where(torch.rand(o.shape, generator=generator, device=o.device) < self.flip, 1 - o, o)
            out.append(o)
        return out


@dataclass(frozen=True)
class TrainSettings:
    """Settings of ``train``.

    Attributes:
        steps: optimiser steps (in total, counting those of a resumed checkpoint).
        batch_size: windows per step.
        length: actions per window.
        lr: Adam's learning rate.
        seed: seeds the window draws and the straight-through samples.
        checkpoint: path of the checkpoint written every ``checkpoint_every`` steps and at the end (``None``:
            none); ``train`` resumes from it when it exists.
        checkpoint_every: steps between checkpoints.
        log: path of a JSON-lines metrics log (one line per ``log_every`` steps), or ``None``.
        log_every: steps between log lines.
        progress: show a tqdm bar.
        usage_weight: weight of the class-usage term (see ``sequence_vfe``).
    """

    steps: int = 1000
    batch_size: int = 32
    length: int = 8
    lr: float = 1e-2
    seed: int = 0
    checkpoint: str | None = None
    checkpoint_every: int = 500
    log: str | None = None
    log_every: int = 50
    progress: bool = True
    usage_weight: float = 1.0

    def __post_init__(self) -> None:
        checks.settings("TrainSettings", {n: getattr(self, n) for n in ("steps", "length")}, "natural")
        checks.settings("TrainSettings", {n: getattr(self, n) for n in ("batch_size", "checkpoint_every", "log_every")},
                        "count")
        checks.settings("TrainSettings", {"lr": self.lr}, "positive")
        checks.settings("TrainSettings", {"usage_weight": self.usage_weight}, "non-negative")


@dataclass
class TrainResult:
    """``history``: one dict of metrics per logged step (``step``, ``vfe``, ``reconstruction``, ``kl``,
    ``reward``); ``step``: the steps taken in total; ``moves``: what the tricks' ``after_step`` returned in this
    call, each with its ``step`` (not kept in checkpoints)."""

    history: list = field(default_factory=list)
    step: int = 0
    moves: list = field(default_factory=list)


def train(model: NeuralModel, buffer: ReplayBuffer, settings: TrainSettings = TrainSettings(),
          tricks: Sequence[Trick] = ()) -> TrainResult:
    """Minimise the sequence VFE of ``model`` on windows of ``buffer`` with Adam; leaves the model in eval mode.

    With ``settings.checkpoint`` an existing checkpoint there is loaded first (model, optimiser, step, window
    sampler and history), and training continues up to ``settings.steps``. ``tricks``: see ``Trick``.
    """
    rng = np.random.default_rng(settings.seed)
    gen = torch.Generator(device=model.device).manual_seed(settings.seed)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    result = TrainResult()
    if settings.checkpoint and os.path.exists(settings.checkpoint):
        result.step, result.history = load_checkpoint(settings.checkpoint, model, opt, rng, gen)
    model.train()
    bar = tqdm(range(result.step, settings.steps), disable=not settings.progress, desc="train", unit="step",
               initial=result.step, total=settings.steps, leave=False)
    for step in bar:
        loss, metrics = sequence_vfe(model, buffer.sample(settings.batch_size, settings.length, rng), gen,
                                     settings.usage_weight, tricks)
        opt.zero_grad()
        loss.backward()
        opt.step()
        result.step = step + 1
        if result.step % settings.log_every == 0 or result.step == settings.steps:
            metrics = {"step": result.step, **metrics}
            result.history.append(metrics)
            bar.set_postfix(vfe=f"{metrics['vfe']:.3f}")
            if settings.log:
                with open(settings.log, "a") as fh:
                    fh.write(json.dumps(metrics) + "\n")
        for trick in tricks:
            move = trick.after_step(model, buffer, rng, result.step, settings)
            if move is not None:
                result.moves.append({"step": result.step, **move})
        if settings.checkpoint and (result.step % settings.checkpoint_every == 0 or result.step == settings.steps):
            save_checkpoint(settings.checkpoint, model, opt, TrainState(result.step, result.history), rng, gen)
    model.eval()
    return result


def match_classes(pred: ArrayLike, true: ArrayLike, num_classes: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Match learned latent classes to true states one to one, the matching that agrees most often (Hungarian
    algorithm): class ``k`` means state ``j`` only up to a permutation, as classes are learned without labels.

    ``pred``, ``true``: int ``(N,)``, each sample's class (e.g. the argmax of its message) and true state, both
    in ``0 .. num_classes - 1``. Returns ``(accuracy, state_of, counts)``: the share of samples whose class is
    matched to their true state, the state ``state_of[k]`` class ``k`` is matched to, and the co-occurrence
    counts ``counts[k, j]`` of class ``k`` with state ``j``.
    """
    from scipy.optimize import linear_sum_assignment

    p, t = np.asarray(pred).ravel(), np.asarray(true).ravel()
    if p.shape != t.shape or p.size == 0:
        raise ParameterError(f"pred and true must be non-empty and of one length, got {p.shape} and {t.shape}")
    for name, x in (("pred", p), ("true", t)):
        if not np.issubdtype(x.dtype, np.integer) or x.min() < 0 or x.max() >= num_classes:
            raise ParameterError(f"{name} must hold integers 0 to {num_classes - 1}")
    counts = np.zeros((num_classes, num_classes))
    np.add.at(counts, (p, t), 1)
    rows, cols = linear_sum_assignment(-counts)
    state_of = np.empty(num_classes, dtype=np.int64)
    state_of[rows] = cols
    return float(counts[rows, cols].sum() / len(t)), state_of, counts


def evaluate_vfe(model: NeuralModel, buffer: ReplayBuffer, windows: int = 512, length: int = 8, seed: int = 0) -> float:
    """Mean VFE per step over ``windows`` fixed windows of the buffer (same windows for every model)."""
    was_training = model.training
    model.train()  # tables with the current parameters, straight-through samples as in training
    with torch.no_grad():
        _, metrics = sequence_vfe(model, buffer.sample(windows, length, np.random.default_rng(seed)),
                                  torch.Generator(device=model.device).manual_seed(seed), usage_weight=0.0)
    model.train(was_training)
    return metrics["vfe"]


def train_best_of(make_model: Callable[[int], NeuralModel], buffer: ReplayBuffer,
                  settings: TrainSettings = TrainSettings(), tries: int = 3,
                  tricks: Sequence[Trick] = ()) -> tuple[NeuralModel, TrainResult, list[float]]:
    """Train ``tries`` models (``make_model(k)`` builds the k-th; settings seed ``settings.seed + k``) and keep
    the one with the lowest VFE on the same held windows.

    Why: fitting categorical latents is a clustering problem with local optima (two locations share a class,
    another location is split between two), and such a run's VFE stands out, so the VFE alone, without labels,
    picks a good run (benchmarks/results/training_tricks.md).

    Returns:
        ``(model, result, vfes)``: the chosen model (eval mode), its ``TrainResult``, every try's VFE.
    """
    best: tuple[NeuralModel, TrainResult, float] | None = None
    vfes: list[float] = []
    for k in range(int(tries)):
        model = make_model(k)
        result = train(model, buffer, replace(settings, seed=settings.seed + k,
                                              checkpoint=None if settings.checkpoint is None else
                                              f"{settings.checkpoint}.{k}"), tricks)
        vfes.append(evaluate_vfe(model, buffer, length=settings.length))
        if best is None or vfes[-1] < best[2]:
            best = (model, result, vfes[-1])
    if best is None:
        raise ParameterError(f"tries must be at least 1, got {tries}")
    return best[0], best[1], vfes
