"""Training a ``NeuralModel`` by minimising the variational free energy of sequences from a replay buffer.

For a window ``o_0..o_L``, ``u_0..u_{L-1}`` the belief is filtered as the agent does it:
prior_0 = D (uniform when the window starts inside an episode), q_t ∝ exp(message(o_t) + ln prior_t) mixed
with ``unimix`` of the uniform, prior_{t+1} = E_{q_t}[B(u_t)] (``predict``). With several factors q_t is the
factors' marginals of that joint posterior (the agent's fixed point iterates towards a mean-field one). The loss per step is the VFE

    F_t = KL[q_t || prior_t] - E_{q_t}[ln p(o_t | s_t)]     (+ squared error of the reward head),

where the reconstruction term is estimated with one straight-through sample
(``OneHotCategoricalStraightThrough``) of every factor, so gradients reach the encoder through the sample.
The KL between categorical beliefs is exact.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch.distributions import OneHotCategoricalStraightThrough
from tqdm.auto import tqdm

from aif.errors import ParameterError
from aif.io import FormatError

from .checkpoint import read_torch_file
from .images import NoisyGridImages  # noqa: F401  (importable from here, as before)
from .neural import NeuralModel, predict_all_from, unimix


class ReplayBuffer:
    """Episodes of observations, actions and rewards, from which training windows are drawn.

    An episode of ``T`` steps holds ``observations``: one array ``(T + 1, *obs_shape_m)`` per modality,
    ``actions``: int ``(T, F)``, ``rewards``: ``(T,)`` (the reward that arrives with observation ``t + 1``).
    """

    def __init__(self):
        self.episodes = []

    def __len__(self) -> int:
        return len(self.episodes)

    @property
    def num_steps(self) -> int:
        return sum(len(e[1]) for e in self.episodes)

    def add(self, observations, actions, rewards=None) -> None:
        observations = [np.asarray(o) for o in observations]
        actions = np.asarray(actions, dtype=np.int64)
        if actions.ndim != 2:
            raise ParameterError(f"actions must have shape (T, num_factors), got {actions.shape}")
        T = actions.shape[0]
        for m, o in enumerate(observations):
            if o.shape[0] != T + 1:
                raise ParameterError(f"observations[{m}] has {o.shape[0]} steps; an episode of {T} actions needs "
                                     f"{T + 1}")
        rewards = np.zeros(T) if rewards is None else np.asarray(rewards, dtype=float)
        if rewards.shape != (T,):
            raise ParameterError(f"rewards has shape {rewards.shape}, expected ({T},)")
        self.episodes.append((observations, actions, rewards))

    def sample(self, batch_size: int, length: int, rng: np.random.Generator) -> dict:
        """``batch_size`` windows of ``length`` actions (``length + 1`` observations), uniformly over the
        positions of every episode long enough.

        Returns a dict of numpy arrays: ``observations`` (list over modalities of ``(B, L + 1, *shape)``),
        ``actions`` ``(B, L, F)``, ``rewards`` ``(B, L)``, ``first`` bool ``(B,)`` (window starts an episode).
        """
        starts = [(i, t) for i, e in enumerate(self.episodes) for t in range(len(e[1]) - length + 1)]
        if not starts:
            raise ParameterError(f"no episode in the buffer has {length} steps")
        pick = rng.integers(len(starts), size=batch_size)
        obs, act, rew, first = [], [], [], []
        for k in pick:
            i, t = starts[k]
            o, a, r = self.episodes[i]
            obs.append([x[t: t + length + 1] for x in o])
            act.append(a[t: t + length])
            rew.append(r[t: t + length])
            first.append(t == 0)
        return {"observations": [np.stack(x) for x in zip(*obs)], "actions": np.stack(act),
                "rewards": np.stack(rew), "first": np.array(first)}


def sequence_vfe(model: NeuralModel, batch: dict, generator: torch.Generator | None = None,
                 usage_weight: float = 1.0, kl_weight: float = 1.0) -> tuple:
    """Mean VFE per step of a batch of windows (module docstring) and its parts.

    The loss adds ``usage_weight`` times KL[q_bar || uniform], with q_bar the posterior averaged over the
    batch and the window (per factor): without it, training from images falls into the local optima of
    clustering (two locations share a class, another class is never used: latent-location accuracy stalled
    at 0.75-0.9 for two seeds out of three on the 3x3 grid, against 0.99 with it after 100 steps).

    ``kl_weight`` scales the KL term in the loss (the reported ``vfe`` is the plain one). Above 1 it charges a
    belief for leaving its prior where nothing in the data pays for it. Why: in the T-maze from images the
    context is free at the first step (its prior is 1/2), and at weight 1 the model spent that free bit on
    the pixel noise near the cue, encoder and decoder alike (the decoder's exact posterior over the context
    left 1/2 by 0.064 on average, the encoder's by 0.077), which made the agent bet on an arm instead of
    looking at the cue; at weight 3 the gap fell to 0.035 and the cue-first rate rose from 0.66 to 0.94 (one
    seed), and at weight 5 five runs had gaps of 0.024-0.054 and rates of 0.65-0.99
    (``examples/tmaze_from_images.py``).

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
    message = model.joint_message([o.flatten(0, 1) for o in obs])  # encode every step at once: (B * (L+1), J)
    message = message.reshape(Bsz, L + 1, -1)  # (B, L + 1, J)
    kl = 0.0
    samples = []
    usage = [0.0] * model.num_factors
    for t in range(L + 1):
        qs = [unimix(q, model.unimix) for q in _posterior(message[:, t], prior)]
        # The plain KL: DreamerV3's free nats and KL balancing (0.8 to the prior) both made the grid-image
        # model collapse to one class here.
        kl = kl + sum(_kl(q, p) for q, p in zip(qs, prior))
        usage = [u + q.mean(0) / (L + 1) for u, q in zip(usage, qs)]
        samples.append(torch.cat([_st_sample(q, generator) for q in qs], -1))  # (B, sum S)
        if t < L:
            prior = _predict(B, qs, actions[:, t])  # prior_{t+1} = E_{q_t}[B(u_t)], the agent's predict
    # The decoder and the reward head see every step's sample at once.
    samples = torch.stack(samples, 1)  # (B, L + 1, sum S)
    params = model.decode(samples)
    recon = -sum(h.log_prob(p, o) for h, p, o in zip(model.heads, params, obs)).sum(-1)  # (B,)
    rew_loss = torch.zeros_like(recon)
    if model.reward_head is not None and L > 0:
        rew_loss = ((model.reward_head(samples[:, 1:])[..., 0] - rewards) ** 2).sum(-1)
    vfe = (recon + kl) / (L + 1)
    # KL[mean posterior || uniform], per factor: the aggregate-posterior part of the VFE's KL (in the
    # decomposition E KL[q(s|o) || p] = I(o; s) + KL[q(s) || p]) against uniform class use, weighted up.
    usage_kl = sum((u * torch.log(u * u.shape[-1])).sum() for u in usage)
    loss = (vfe + (kl_weight - 1.0) * kl / (L + 1) + rew_loss / max(L, 1)).mean() + usage_weight * usage_kl
    with torch.no_grad():
        metrics = {"vfe": float(vfe.mean()), "usage_kl": float(usage_kl), "reconstruction": float(recon.mean() / (L + 1)),
                   "kl": float(kl.mean() / (L + 1)), "reward": float(rew_loss.mean() / max(L, 1))}
    return loss, metrics


def _posterior(message, prior):
    """q(s) ∝ exp(message + ln prior) for a joint message ``(B, J)`` and factorised priors ``(B, S_f)``: the
    marginals ``(B, S_f)`` of the exact joint posterior (with one factor, the posterior itself)."""
    if len(prior) == 1:
        return [torch.softmax(message + torch.log(prior[0]), -1)]
    S = [p.shape[-1] for p in prior]
    F = len(S)
    log_joint = message.reshape(-1, *S)  # (B, *S)
    for f, p in enumerate(prior):
        log_joint = log_joint + torch.log(p).reshape(-1, *[S[f] if g == f else 1 for g in range(F)])
    q = torch.softmax(log_joint.flatten(1), -1).reshape(-1, *S)
    return [q.sum([1 + g for g in range(F) if g != f]) for f in range(F)]


def _kl(q, p):
    return (q * (torch.log(q) - torch.log(p))).sum(-1)


def _st_sample(q, generator):
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
        kl_weight: weight of the KL term in the loss (1: the VFE; see ``sequence_vfe``).
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
    kl_weight: float = 1.0

    def __post_init__(self):
        for name, least in (("steps", 0), ("batch_size", 1), ("length", 0), ("checkpoint_every", 1), ("log_every", 1)):
            if int(getattr(self, name)) < least:
                raise ParameterError(f"TrainSettings.{name} must be at least {least}, got {getattr(self, name)}")
        if not 0.0 < float(self.lr) < float("inf"):
            raise ParameterError(f"TrainSettings.lr must be positive and finite, got {self.lr}")
        if not 0.0 <= float(self.usage_weight) < float("inf"):
            raise ParameterError(f"TrainSettings.usage_weight must be non-negative and finite, got {self.usage_weight}")
        if not 0.0 < float(self.kl_weight) < float("inf"):
            raise ParameterError(f"TrainSettings.kl_weight must be positive and finite, got {self.kl_weight}")


@dataclass
class TrainResult:
    """``history``: one dict of metrics per logged step (``step``, ``vfe``, ``reconstruction``, ``kl``,
    ``reward``); ``step``: the steps taken in total."""

    history: list = field(default_factory=list)
    step: int = 0


def train(model: NeuralModel, buffer: ReplayBuffer, settings: TrainSettings = TrainSettings()) -> TrainResult:
    """Minimise the sequence VFE of ``model`` on windows of ``buffer`` with Adam; leaves the model in eval mode.

    With ``settings.checkpoint`` an existing checkpoint there is loaded first (model, optimiser, step, window
    sampler and history), and training continues up to ``settings.steps``.
    """
    rng = np.random.default_rng(settings.seed)
    gen = torch.Generator(device=model.device).manual_seed(settings.seed)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    result = TrainResult()
    if settings.checkpoint and os.path.exists(settings.checkpoint):
        result = load_checkpoint(settings.checkpoint, model, opt, rng, gen)
    model.train()
    bar = tqdm(range(result.step, settings.steps), disable=not settings.progress, desc="train", unit="step",
               initial=result.step, total=settings.steps, leave=False)
    for step in bar:
        loss, metrics = sequence_vfe(model, buffer.sample(settings.batch_size, settings.length, rng), gen,
                                     settings.usage_weight, settings.kl_weight)
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
        if settings.checkpoint and (result.step % settings.checkpoint_every == 0 or result.step == settings.steps):
            save_checkpoint(settings.checkpoint, model, opt, result, rng, gen)
    model.eval()
    return result


def match_classes(pred, true, num_classes: int) -> tuple:
    """Match learned latent classes to true states one to one, the matching that agrees most often.

    Latent classes are learned without labels, so class ``k`` means state ``j`` only up to a permutation; the
    Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) finds the permutation with the most agreements.

    Args:
        pred: int ``(N,)``, the class the model assigns to each sample (e.g. the argmax of its message).
        true: int ``(N,)``, the true state of each sample.
        num_classes: the number of classes and of states (both ``0 .. num_classes - 1``).

    Returns:
        ``(accuracy, state_of, counts)``: the share of samples whose class is matched to their true state,
        ``state_of[k]`` the state class ``k`` is matched to (int ``(num_classes,)``), and the co-occurrence counts
        ``counts[k, j]`` of class ``k`` with state ``j``.
    """
    from scipy.optimize import linear_sum_assignment

    pred, true = np.asarray(pred).ravel(), np.asarray(true).ravel()
    if pred.shape != true.shape or pred.size == 0:
        raise ParameterError(f"pred and true must be non-empty and of one length, got {pred.shape} and {true.shape}")
    for name, x in (("pred", pred), ("true", true)):
        if not np.issubdtype(x.dtype, np.integer) or x.min() < 0 or x.max() >= num_classes:
            raise ParameterError(f"{name} must hold integers 0 to {num_classes - 1}")
    counts = np.zeros((num_classes, num_classes))
    np.add.at(counts, (pred, true), 1)
    rows, cols = linear_sum_assignment(-counts)
    state_of = np.empty(num_classes, dtype=np.int64)
    state_of[rows] = cols
    return float(counts[rows, cols].sum() / len(true)), state_of, counts


def evaluate_vfe(model: NeuralModel, buffer: ReplayBuffer, windows: int = 512, length: int = 8, seed: int = 0) -> float:
    """Mean VFE per step over ``windows`` fixed windows of the buffer (same windows for every model)."""
    was_training = model.training
    model.train()  # tables with the current parameters, straight-through samples as in training
    with torch.no_grad():
        _, metrics = sequence_vfe(model, buffer.sample(windows, length, np.random.default_rng(seed)),
                                  torch.Generator(device=model.device).manual_seed(seed), usage_weight=0.0)
    model.train(was_training)
    return metrics["vfe"]


def train_best_of(make_model, buffer: ReplayBuffer, settings: TrainSettings = TrainSettings(), tries: int = 3):
    """Train ``tries`` models (``make_model(k)`` builds the k-th; settings seed ``settings.seed + k``) and keep
    the one with the lowest VFE on the same held windows.

    Why: fitting categorical latents is a clustering problem with local optima (two locations share a class,
    another location is split between two). On the 3x3 grid from 8x8 images, one run in eight ended in one
    (latent-location accuracy 0.86), and its VFE stood out (14.9 nats per step against 13.2-13.6 for the
    others), so the VFE alone, without labels, picks a good run.

    Returns:
        ``(model, result, vfes)``: the chosen model (eval mode), its ``TrainResult``, every try's VFE.
    """
    best, vfes = None, []
    for k in range(int(tries)):
        model = make_model(k)
        result = train(model, buffer, replace(settings, seed=settings.seed + k,
                                              checkpoint=None if settings.checkpoint is None else
                                              f"{settings.checkpoint}.{k}"))
        vfes.append(evaluate_vfe(model, buffer, length=settings.length))
        if best is None or vfes[-1] < best[2]:
            best = (model, result, vfes[-1])
    return best[0], best[1], vfes


def save_checkpoint(path, model, optimizer, result: TrainResult, rng=None, generator=None) -> None:
    """Model and optimiser state, the step, the history and the random states, in one ``torch.save`` file."""
    tmp = f"{path}.tmp"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": result.step,
                "history": result.history, "rng": None if rng is None else rng.bit_generator.state,
                "generator": None if generator is None else generator.get_state()}, tmp)
    os.replace(tmp, path)  # a crash while writing leaves the previous checkpoint intact


def load_checkpoint(path, model, optimizer=None, rng=None, generator=None) -> TrainResult:
    """Restore what ``save_checkpoint`` wrote (in place) and return the ``TrainResult`` so far.

    Read with ``weights_only=True`` (no code from the file runs); a damaged, truncated or foreign file, or
    weights of another architecture, raise ``aif.io.FormatError``.
    """
    state = read_torch_file(path, model.device, ("model", "optimizer", "step", "history", "rng", "generator"))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise FormatError(f"{path}: the checkpoint's weights do not fit the model: {err}") from err
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if rng is not None and state["rng"] is not None:
        rng.bit_generator.state = state["rng"]
    if generator is not None and state["generator"] is not None:
        generator.set_state(state["generator"])
    return TrainResult(history=list(state["history"]), step=int(state["step"]))


def collect_episodes(env, episodes: int, steps: int, rng: np.random.Generator, buffer: ReplayBuffer | None = None,
                     options=None) -> tuple:
    """Random-action episodes of up to ``steps`` steps, added to a buffer.

    Args:
        env: an environment whose observations are tuples, one entry per modality (``NoisyGridImages``,
            ``NoisyTMazeImages``), whose action space is ``MultiDiscrete`` (one control per factor, drawn
            uniformly) and whose ``info["state"]`` is the hidden state.
        episodes, steps: how many episodes, and the most actions in each.
        rng: draws the reset seeds, the reset options and the actions.
        buffer: the buffer to add to (a new one when ``None``).
        options: ``options(rng) -> dict`` of reset options per episode (e.g. a start state), or ``None``.

    Returns:
        ``(buffer, states)`` with ``states`` one int array ``(T + 1, num_factors)`` per episode: the true states.
    """
    if int(episodes) < 1 or int(steps) < 1:
        raise ParameterError(f"episodes and steps must be at least 1, got {episodes} and {steps}")
    buffer = ReplayBuffer() if buffer is None else buffer
    nvec = np.asarray(env.action_space.nvec)
    all_states = []
    for _ in range(int(episodes)):
        seed = int(rng.integers(2**31 - 1))
        obs, info = env.reset(seed=seed, options=None if options is None else options(rng))
        observations, actions, rewards, states = [list(obs)], [], [], [info["state"]]
        for _ in range(int(steps)):
            a = rng.integers(nvec)
            obs, r, terminated, truncated, info = env.step(a)
            observations.append(list(obs))
            actions.append(a)
            rewards.append(r)
            states.append(info["state"])
            if terminated or truncated:
                break
        buffer.add([np.stack(o) for o in zip(*observations)], np.array(actions), np.array(rewards))
        all_states.append(np.array(states, dtype=np.int64))
    return buffer, all_states


def collect_random(env: NoisyGridImages, episodes: int, steps: int, rng: np.random.Generator,
                   buffer: ReplayBuffer | None = None) -> tuple:
    """Random-action episodes of up to ``steps`` steps from uniformly drawn start cells, added to a buffer.

    Returns ``(buffer, states)`` with ``states`` a list of int arrays (one per episode): the true locations.
    """
    n_cells = env.templates.shape[0]
    buffer, states = collect_episodes(env, episodes, steps, rng, buffer,
                                      options=lambda rng: {"state": (int(rng.integers(n_cells)),)})
    return buffer, [s[:, 0] for s in states]
