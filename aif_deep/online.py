"""Online deep active inference for Gymnasium environments with a state-vector observation and discrete actions.

The agent learns, while it acts, an amortised expected free energy to go ``G_phi(x, a)`` (an
``aif_deep.QFunction`` on the feature vector ``x``), and acts from ``q(a | x) = softmax(-gamma G_phi(x, .))``.
``G_phi`` is fitted by temporal differences to

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

``epistemic_weight=0`` with an ``EpsilonGreedy`` selection and ``temperature -> 0`` (``hard_min=True``) is
the DQN of Mnih et al. on -Q; ``dqn_settings`` builds it with the rest of the settings shared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from scipy.special import entr
from torch import nn
from tqdm.auto import tqdm

from aif.errors import ParameterError

from .qfunction import QFunction


@dataclass(frozen=True)
class Softmax:
    """Sample a ~ q(a | x) = softmax(-gamma_t * G_phi(x, .)): the policy posterior of a one-step policy.

    The precision over policies rises geometrically from ``gamma_start`` to ``gamma`` over ``anneal_steps``
    environment steps, then stays: where the actions' G differ by a few tenths (CartPole once G_phi is ~ -100),
    a fixed precision either keeps the policy near uniform or makes it greedy before G_phi means anything. The
    final precision stays moderate: a near-greedy policy fills the replay buffer with successful episodes only
    and forgets (benchmarks/results/cartpole.md).

    Attributes:
        gamma: the final precision (positive).
        gamma_start: the precision at step 0 (positive); ``None``: ``gamma`` throughout.
        anneal_steps: steps of the geometric rise (positive).
    """

    gamma: float = 30.0
    gamma_start: float | None = 1.0
    anneal_steps: int = 10_000

    def __post_init__(self) -> None:
        for name in ("gamma", "gamma_start"):
            v = getattr(self, name)
            if v is not None and not 0.0 < float(v) < math.inf:
                raise ParameterError(f"Softmax.{name} must be positive and finite, got {v}")
        if int(self.anneal_steps) < 1:
            raise ParameterError(f"Softmax.anneal_steps must be at least 1, got {self.anneal_steps}")

    def precision(self, step: int) -> float:
        if self.gamma_start is None:
            return float(self.gamma)
        frac = min(1.0, step / self.anneal_steps)
        return float(self.gamma_start * (self.gamma / self.gamma_start) ** frac)

    def probabilities(self, G: np.ndarray, step: int) -> np.ndarray:
        z = -self.precision(step) * (G - G.min())  # shifted: exp never overflows
        p = np.exp(z)
        return p / p.sum()


@dataclass(frozen=True)
class EpsilonGreedy:
    """argmin_a G_phi(x, a), with a uniform action with probability epsilon (DQN's exploration).

    Attributes:
        start, end: epsilon at step 0 and after ``decay_steps`` environment steps (linear in between).
        decay_steps: steps of the linear decay (positive).
    """

    start: float = 1.0
    end: float = 0.02
    decay_steps: int = 10_000

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ParameterError(f"EpsilonGreedy.{name} must be in [0, 1], got {getattr(self, name)}")
        if int(self.decay_steps) < 1:
            raise ParameterError(f"EpsilonGreedy.decay_steps must be at least 1, got {self.decay_steps}")

    def probabilities(self, G: np.ndarray, step: int) -> np.ndarray:
        eps = self.end + (self.start - self.end) * max(0.0, 1.0 - step / self.decay_steps)
        p = np.full(G.shape, eps / G.shape[0])
        p[int(np.argmin(G))] += 1.0 - eps
        return p


class OnlineTrick:
    """A change to the one-step EFE of ``OnlineAgent``, passed as ``train_online(..., tricks=(...))``; the hook
    leaves g as it is unless a trick overrides it."""

    def epistemic_value(self, value: torch.Tensor) -> torch.Tensor:
        """The epistemic value ``(B,)`` that enters g, from ``epistemic_weight * info_gain`` ``(B,)``."""
        return value


@dataclass(frozen=True)
class EpistemicCap(OnlineTrick):
    """``min(epistemic_weight * info_gain, cap)``: no transition's expected information is worth more than ``cap``
    nats of log-preference (compare the per-step risk ``|reward_preference * r|``).

    Why: before the ensemble has been fitted its members disagree by their random initialisation, not by what
    the data leave uncertain, and that transient, differing between actions, can dominate g and drive a
    rising-precision policy onto one action before G_phi has learned anything. The cap changes the objective
    only where ``w * info_gain`` exceeds it; where it exceeds it everywhere, the value is a constant that no
    longer steers. Measurements: benchmarks/results/cartpole.md.
    """

    cap: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < float(self.cap) < math.inf:
            raise ParameterError(f"EpistemicCap.cap must be positive and finite, got {self.cap}")

    def epistemic_value(self, value: torch.Tensor) -> torch.Tensor:
        return value.clamp(max=self.cap)


@dataclass(frozen=True)
class OnlineSettings:
    """Settings of ``OnlineAgent`` and ``train_online``.

    Attributes:
        hidden: width of G_phi's two hidden layers.
        lr: Adam's learning rate (G_phi and the ensemble).
        batch_size: transitions per update.
        buffer_size: capacity of the replay buffer (oldest transitions are overwritten).
        learning_starts: environment steps before the first update.
        train_every: environment steps per update.
        discount: discount of V(next).
        tau: Polyak rate of the target network per update.
        temperature: T of the soft minimum V; ignored with ``hard_min``.
        hard_min: V = min_a G_target (DQN) instead of the soft minimum.
        reward_preference: c in ln p~(r) = c * r (risk = -c r).
        epistemic_weight: weight of the information gain in g (0: no transition model is trained).
        ensemble_size: K transition networks (at least 2 when epistemic_weight > 0).
        model_hidden: width of each transition network's hidden layers.
        noise_sd: sigma of the transition likelihood, in the observation's units.
        max_grad_norm: gradient clipping of G_phi's update.
        selection: ``Softmax`` or ``EpsilonGreedy``.
    """

    hidden: int = 256
    lr: float = 1e-3
    batch_size: int = 64
    buffer_size: int = 100_000
    learning_starts: int = 1000
    train_every: int = 2
    discount: float = 0.99
    tau: float = 0.005
    temperature: float = 0.05
    hard_min: bool = False
    reward_preference: float = 1.0
    epistemic_weight: float = 0.1
    ensemble_size: int = 5
    model_hidden: int = 64
    noise_sd: float = 0.01
    max_grad_norm: float = 10.0
    selection: Softmax | EpsilonGreedy = field(default_factory=Softmax)

    def __post_init__(self) -> None:
        rules = [(n, lambda v: int(v) >= 1, "at least 1") for n in ("hidden", "batch_size", "buffer_size",
                                                                      "train_every", "ensemble_size", "model_hidden")]
        rules += [("learning_starts", lambda v: int(v) >= 0, "at least 0"),
                  ("epistemic_weight", lambda v: 0.0 <= float(v) < math.inf, ">= 0 and finite"),
                  ("reward_preference", lambda v: math.isfinite(float(v)), "finite")]
        rules += [(n, lambda v: 0.0 < float(v) < math.inf, "positive and finite")
                  for n in ("lr", "temperature", "noise_sd", "max_grad_norm")]
        rules += [(n, lambda v: 0.0 <= float(v) <= 1.0, "in [0, 1]") for n in ("discount", "tau")]
        for name, ok, what in rules:
            if not ok(getattr(self, name)):
                raise ParameterError(f"OnlineSettings.{name} must be {what}, got {getattr(self, name)}")
        if self.epistemic_weight > 0 and self.ensemble_size < 2:
            raise ParameterError("OnlineSettings.ensemble_size must be at least 2 when epistemic_weight > 0 "
                                 f"(the information gain is the ensemble's disagreement), got {self.ensemble_size}")
        if not isinstance(self.selection, (Softmax, EpsilonGreedy)):
            raise ParameterError(f"OnlineSettings.selection must be Softmax or EpsilonGreedy, got {self.selection!r}")


def dqn_settings(settings: OnlineSettings = OnlineSettings(),
                 selection: EpsilonGreedy = EpsilonGreedy()) -> OnlineSettings:
    """The DQN baseline on the same network, optimiser, buffer and budget: no epistemic term, V = min, epsilon."""
    return replace(settings, epistemic_weight=0.0, hard_min=True, selection=selection)


class Ensemble(nn.Module):
    """K (``size``) transition networks x -> x + f_k(x, a) with two hidden layers of width ``hidden``, evaluated
    in one batched pass; ``seed`` seeds the initial weights (the members differ by their draws)."""

    def __init__(self, num_features: int, num_actions: int, size: int = 5, hidden: int = 64, seed: int = 0) -> None:
        super().__init__()
        self.num_actions = int(num_actions)
        sizes = [num_features + num_actions, hidden, hidden, num_features]
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


class OnlineAgent:
    """The online learner: acts from G_phi, stores transitions, updates G_phi (and the ensemble) by TD.

    Args:
        num_features: length of the observation vector.
        num_actions: number of discrete actions.
        settings: ``OnlineSettings``.
        seed: seeds the networks, the replay draws and the action samples.
        tricks: ``OnlineTrick``s applied to the one-step EFE (e.g. ``EpistemicCap(0.5)``).
    """

    def __init__(self, num_features: int, num_actions: int, settings: OnlineSettings = OnlineSettings(), seed: int = 0,
                 tricks: Sequence[OnlineTrick] = ()) -> None:
        if int(num_features) < 1 or int(num_actions) < 2:
            raise ParameterError(f"OnlineAgent needs num_features >= 1 and num_actions >= 2, "
                                 f"got {num_features} and {num_actions}")
        self.settings = s = settings
        self.tricks = tuple(tricks)
        self.num_actions = int(num_actions)
        self.qf = QFunction([num_features], [num_actions], temperature=s.temperature, hidden=s.hidden, seed=seed)
        self.target = QFunction([num_features], [num_actions], temperature=s.temperature, hidden=s.hidden, seed=seed)
        self.target.load_state_dict(self.qf.state_dict())
        self.target.requires_grad_(False)
        self.ensemble = None
        params = list(self.qf.parameters())
        if s.epistemic_weight > 0:
            self.ensemble = Ensemble(num_features, num_actions, s.ensemble_size, s.model_hidden, seed=int(seed) + 1)
            params += list(self.ensemble.parameters())
        # One optimiser over G_phi and the ensemble (disjoint parameters, so their updates stay independent):
        # on a small CPU network the cost is per-kernel overhead, and this halves the number of kernels.
        self.opt = torch.optim.Adam(params, lr=s.lr, foreach=True)
        self._q_params: list[torch.Tensor] = list(self.qf.parameters())
        self._target_params: list[torch.Tensor] = list(self.target.parameters())
        self.rng = np.random.default_rng(seed)
        N = s.buffer_size
        self.obs, self.next_obs = torch.zeros(N, num_features), torch.zeros(N, num_features)
        self.action, self.reward, self.terminated = torch.zeros(N, dtype=torch.long), torch.zeros(N), torch.zeros(N)
        self.size = self.steps = 0
        self.last_info_gain = self.last_capped = float("nan")

    @torch.no_grad()
    def action_probabilities(self, obs: ArrayLike) -> np.ndarray:
        """q(a | x) of the selection rule at the current step: ``(num_actions,)``."""
        G = self.qf.net(torch.as_tensor(obs, dtype=torch.float32)).numpy().astype(np.float64)
        return self.settings.selection.probabilities(G, self.steps)

    def act(self, obs: ArrayLike) -> tuple[int, np.ndarray]:
        """Sample an action from q(a | x); returns it and q(a | x)."""
        p = self.action_probabilities(obs)
        return int(self.rng.choice(self.num_actions, p=p)), p

    def observe(self, obs: ArrayLike, action: int, reward: float, next_obs: ArrayLike, terminated: bool) -> None:
        """Store a transition and, every ``train_every`` steps after ``learning_starts``, update."""
        i = self.steps % self.settings.buffer_size
        self.obs[i] = torch.as_tensor(obs, dtype=torch.float32)
        self.next_obs[i] = torch.as_tensor(next_obs, dtype=torch.float32)
        self.action[i] = int(action)
        self.reward[i] = float(reward)
        self.terminated[i] = float(terminated)
        self.steps += 1
        self.size = min(self.size + 1, self.settings.buffer_size)
        if self.steps >= self.settings.learning_starts and self.steps % self.settings.train_every == 0:
            self.update()

    def epistemic_value(self, info_gain: torch.Tensor) -> torch.Tensor:
        """``epistemic_weight * info_gain`` through the tricks: ``(B,)`` -> ``(B,)`` (see the module docstring)."""
        value = self.settings.epistemic_weight * info_gain
        for trick in self.tricks:
            value = trick.epistemic_value(value)
        return value

    def one_step_efe(self, reward: torch.Tensor, info_gain: torch.Tensor | None = None) -> torch.Tensor:
        """g = -c r - epistemic_value(info_gain) for a batch of transitions: ``(B,)``."""
        g = -self.settings.reward_preference * reward
        if info_gain is not None:
            g = g - self.epistemic_value(info_gain)
        return g

    def update(self) -> float:
        """One TD step of G_phi (and one regression step of the ensemble) on a replayed batch; the TD loss."""
        s = self.settings
        idx = torch.from_numpy(self.rng.integers(0, self.size, s.batch_size))
        x, a, r, x1, done = (self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx],
                             self.terminated[idx])
        pred, ig = None, None
        if self.ensemble is not None:
            pred = self.ensemble(x, a)  # (K, B, D), before this step's update: the gain still to be had
            ig = self.ensemble.info_gain(x, a, s.noise_sd, pred)
            self.last_info_gain = float(ig.mean())
            self.last_capped = float((self.epistemic_value(ig) != s.epistemic_weight * ig).float().mean())
        with torch.no_grad():
            V1 = self.target(x1).min(-1).values if s.hard_min else self.target.value(x1)  # (B,)
            y = self.one_step_efe(r, ig) + s.discount * (1.0 - done) * V1
        loss = F.smooth_l1_loss(self.qf.net(x).gather(1, a[:, None])[:, 0], y)
        # Each ensemble member regresses the observed change x' - x (the Gaussian likelihood's mean).
        total = loss if pred is None else loss + ((pred - (x1 - x)) ** 2).mean()
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        nn.utils.clip_grad_norm_(self._q_params, s.max_grad_norm)
        self.opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._q_params, s.tau)
        return float(loss.detach())


@dataclass
class OnlineResult:
    """What ``train_online`` measured, one entry ``(E,)`` per episode: ``returns``; ``policy_entropy``, the mean
    of H[q(a | x)] over its steps (nats); ``action_entropy``, that of its action frequencies (0: one action);
    ``info_gain``, the mean information gain of its last update (nan without an ensemble); ``capped``, the
    fraction of that update's transitions whose epistemic value a trick changed. ``solved_episode``: the first
    episode (1-based) whose ``window``-episode mean return reached ``solve_return`` (None: not reached);
    ``steps``: environment steps; ``agent``: the trained ``OnlineAgent``."""

    returns: np.ndarray
    policy_entropy: np.ndarray
    action_entropy: np.ndarray
    info_gain: np.ndarray
    capped: np.ndarray
    solved_episode: int | None
    steps: int
    agent: OnlineAgent


def train_online(env: Any, settings: OnlineSettings = OnlineSettings(), episodes: int = 800, seed: int = 0,
                 solve_return: float | None = None, window: int = 100, stop_when_solved: bool = True,
                 progress: bool = True, desc: str = "episodes", tricks: Sequence[OnlineTrick] = ()) -> OnlineResult:
    """Run ``OnlineAgent`` in a Gymnasium ``env`` (Box observation, Discrete actions) for ``episodes`` episodes.

    The environment is seeded once with ``seed`` (its later resets continue its own generator), so a run is
    determined by ``seed``. With ``solve_return`` the run records the first episode whose ``window``-episode
    mean return reaches it, and stops there if ``stop_when_solved``. ``tricks``: see ``OnlineTrick``.
    """
    if int(episodes) < 1 or int(window) < 1:
        raise ParameterError(f"train_online needs episodes >= 1 and window >= 1, got {episodes} and {window}")
    num_features = int(np.prod(env.observation_space.shape))
    if not hasattr(env.action_space, "n"):
        raise ParameterError(f"train_online needs a Discrete action space, got {env.action_space}")
    agent = OnlineAgent(num_features, int(env.action_space.n), settings, seed=seed, tricks=tricks)
    returns, pol_h, act_h, igs, capped = [], [], [], [], []
    solved = None
    obs, _ = env.reset(seed=int(seed))
    env.action_space.seed(int(seed))
    bar = tqdm(range(int(episodes)), disable=not progress, desc=desc, unit="ep", leave=False)
    for ep in bar:
        if ep > 0:
            obs, _ = env.reset()
        total, h_sum, counts, done = 0.0, 0.0, np.zeros(agent.num_actions), False
        while not done:
            action, p = agent.act(obs)
            nxt, reward, terminated, truncated, _ = env.step(action)
            agent.observe(obs, action, reward, nxt, terminated)
            total += float(reward)
            h_sum += float(entr(p).sum())
            counts[action] += 1
            obs, done = nxt, terminated or truncated
        returns.append(total)
        pol_h.append(h_sum / counts.sum())
        act_h.append(float(entr(counts / counts.sum()).sum()))
        igs.append(agent.last_info_gain)
        capped.append(agent.last_capped)
        mean = float(np.mean(returns[-window:]))
        bar.set_postfix(ret=f"{total:.0f}", mean=f"{mean:.0f}", refresh=False)
        if solve_return is not None and solved is None and len(returns) >= window and mean >= solve_return:
            solved = ep + 1
            if stop_when_solved:
                break
    bar.close()
    return OnlineResult(np.array(returns), np.array(pol_h), np.array(act_h), np.array(igs), np.array(capped),
                        solved, agent.steps, agent)
