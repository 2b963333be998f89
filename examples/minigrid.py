"""MiniGrid from the partial egocentric view: a recurrent categorical world model (``aif_deep.rssm.RSSM``) whose belief
feeds a soft actor-critic on the EFE, against a plain DQN on the view, on the same budget of episodes.

The agent sees only MiniGrid's 7x7x3 ``image`` (the cells in front of it; no position, no direction), encoded as
one-hot object types and door states per cell (``encode``: 7 * 7 * 14 = 686 binary pixels). Actions: turn left,
turn right, forward (Empty, FourRooms), plus pick up, drop and toggle (DoorKey). Reward: MiniGrid's
1 - 0.9 * steps / max_steps on reaching the goal, 0 otherwise.

Agents (``--agents``):

- ``rssm-sac``: ``warmup`` random-action episodes (counted in the budget) train the RSSM (K categorical latents of
  C classes, a GRU state h, a Bernoulli decoder and a reward head over z) by its ELBO (``rssm.fit``, KL balancing and
  free nats); the RSSM is then frozen and filters each episode: ``view = view.advance(qs, action)``,
  ``qs = aif_deep.infer_states(view, [pixels])``, the Agent's own state inference on the RSSM's categorical part. The
  state of the actor-critic is ``rssm.features(h, q) = [h, E_q onehot z]``; ``aif_deep.SoftActorCritic`` (EFE
  critic G = -reward + discount V, an amortised policy, a learned entropy weight) learns on it as it acts. With
  ``--online`` the RSSM is not frozen: it keeps training on the replay of every episode so far while the agent acts
  (``aif_deep.rssm.OnlineFit``, the rate ``ONLINE``), so the features move as the model learns what the agent's
  own episodes show (the goal, the door, the key), and the critic's replay holds features of older models.
- ``rssm-dqn``: the same frozen RSSM features with the DQN learner below (what the features alone bring).
- ``view-rssm-dqn``, ``view-rssm-sac``: the DQN learner or the actor-critic on the encoded view and the RSSM features
  side by side (what the RSSM's memory adds to the view).
- ``dqn``: DQN (``TDLearning(hard_min=True)``, epsilon-greedy) on the encoded view itself, no memory.

- ``random``: uniform actions (the floor).
- ``map-efe``: no network and no learning across episodes: ``aif.maps.GridMap``, the belief over the layout (the pose
  by path integration from the agent's own actions, each cell's type as seen, a Dirichlet prior over unseen cells),
  and ``aif.maps.MapPlanner``, soft value iteration over the poses where a plan ends by looking (the expected
  information gain of the view about the map, weight ``--epistemic``) or by entering the goal (a preference of 100
  nats). ``--epistemic 0`` is the same agent without the epistemic term. On DoorKey it plans with pick up and toggle
  too (``MapPlanner(interact=True)``).
- ``map-sac``: the soft actor-critic on that belief: its state is ``MapFeatures``, the ``GridMap`` as an egocentric
  crop rotated to the heading (one-hot unseen / wall / enterable / goal, 11 x 11 cells, and the shares of each in
  3 x 3 blocks over 27 x 27 cells), the goal's offset once seen and the information the last view gave about the
  map (cells seen for the first time times the prior's entropy). ``--info-gain W`` puts that gain into the critic's
  one-step EFE (``online.RealisedInfoGain`` reading the last feature); ``--hindsight K`` adds K relabelled copies of
  each episode to the critic's replay, each with a cell the agent entered as its goal (``MapFeatures.hindsight``).
  Left, right and forward only.

Options of the actor-critic (defaults: the Empty-8x8 runs'; the DoorKey-5x5 runs' in benchmarks/results/minigrid.md):
``--alpha`` and ``--target-entropy`` (0: a fixed entropy weight), ``--alpha-lr``, ``--floor`` (actions drawn from the
policy mixed with the uniform, ``online.Softmax(floor=...)``), and of both learners ``--n-step``, ``--twin``,
``--discount``, ``--train-every``. ``--info-gain W`` adds the epistemic term ``online.RealisedInfoGain`` to the one-step
EFE the critic learns: W times the information the RSSM's belief update realised at each step, ``belief_info_gain``
(KL[q(z | h, o) || p(z | h)]), less ``--info-gain-baseline`` nats (``map-sac``: the map's, above); ``--free-nats``
sets the world model's free nats.

An episode succeeds when its return is at least ``success_return`` (``SUCCESS_RETURN``; in Empty-8x8 0.9: the goal
within 28 steps of 256, whose shortest path is 11 steps, return 0.961): merely reaching the goal within MiniGrid's
time limit says little there, as uniform random actions often do it (``benchmarks/results/minigrid.md``); in
DoorKey-5x5 and FourRooms reaching the goal at all is the success. Measured per seed: the
success rate and the rate of reaching the goal at all over the last ``window`` episodes, their mean return, and the
first episode at which the success rate over the previous ``window`` episodes reached ``target`` (``None``: not
within the budget).

    nice -n 10 env OMP_NUM_THREADS=1 python examples/minigrid.py --seeds 0 1 2    # (the measured runs' commands:
    python examples/minigrid.py --quick                                          #  benchmarks/results/minigrid.md)
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from dataclasses import dataclass, field, replace

# Run as a script, this file's folder comes first on the path and its name would shadow the minigrid package.
sys.path = [p for p in sys.path if pathlib.Path(p or ".").resolve() != pathlib.Path(__file__).resolve().parent]

import gymnasium as gym  # noqa: E402
import minigrid  # noqa: E402, F401  (registers the MiniGrid environments)
import numpy as np  # noqa: E402
import torch  # noqa: E402

import aif_deep  # noqa: E402
from aif.maps import (  # noqa: E402
    DIRECTIONS,
    GOAL,
    RIGHT_OF,
    UNSEEN,
    GridMap,
    MapPlanner,
    egocentric_offsets,
    enterable,
    extent_for,
    opaque,
)
from aif_deep import online  # noqa: E402
from aif_deep.actor_critic import EntropyWeight, SoftActorCritic  # noqa: E402
from aif_deep.neural import Bernoulli, unimix  # noqa: E402
from aif_deep.rssm import ELBO, RSSM, FreeNats, KLBalancing, OnlineFit, categorical_kl, features, fit  # noqa: E402

NUM_OBJECTS, NUM_STATES = 11, 3  # MiniGrid's OBJECT_TO_IDX and STATE_TO_IDX sizes
PIXELS = 7 * 7 * (NUM_OBJECTS + NUM_STATES)
ACTIONS = {"MiniGrid-DoorKey-5x5-v0": 6}  # left, right, forward, pickup, drop, toggle; 3 elsewhere
# The least return of a success: in Empty-8x8 the goal within 28 of 256 steps (random actions reach it at all in
# 40-65% of episodes); elsewhere reaching the goal at all (MiniGrid's least reward for it, at the time limit, is 0.1).
SUCCESS_RETURN = {"MiniGrid-Empty-8x8-v0": 0.9}


def encode(image: np.ndarray) -> np.ndarray:
    """MiniGrid's egocentric ``image`` ``(7, 7, 3)`` (object, colour, state per cell) as binary pixels ``(686,)``:
    one-hot object type and one-hot door state per cell (the colour left out)."""
    objects = np.eye(NUM_OBJECTS, dtype=np.uint8)[image[..., 0]]
    states = np.eye(NUM_STATES, dtype=np.uint8)[image[..., 2]]
    return np.concatenate([objects, states], -1).reshape(-1)


@dataclass(frozen=True)
class Settings:
    """One run's settings.

    Attributes:
        env: the MiniGrid task.
        episodes: the budget per agent and seed (warm-up episodes included).
        warmup: random-action episodes that train the RSSM before the actor-critic acts (``rssm-*`` agents).
        wm_online: with it, the RSSM keeps training while the agent acts (``OnlineFit`` over the replay of every
            episode so far, the warm-up's included); ``None``: frozen after the warm-up.
        latents, classes, deter, hidden: the RSSM's K, C, h size and hidden width.
        wm_steps, wm_batch, wm_length, wm_lr: the RSSM's ELBO training (Adam steps, windows, window length, rate).
        elbo: the ELBO's options.
        q_hidden: hidden width of the Q-networks and the actor.
        td: the TD learner's settings (both agents).
        reward_preference: ln p~(r) = reward_preference * r, the risk the critics learn (both agents).
        info_gain: w, the weight of the information gain the RSSM's belief update realises at each step
            (``online.RealisedInfoGain`` with ``belief_info_gain``), subtracted from the one-step EFE the critic
            learns (``rssm-*`` agents; 0: no epistemic term, the critic's G is -reward + discount V).
        info_gain_baseline: nats subtracted from each step's gain (``RealisedInfoGain.baseline``).
        alpha, target_entropy: the actor's initial entropy weight and its target entropy in nats (the weight is
            learned); a small weight, as the entropy bonus summed over ~100 discounted steps outweighs a reward of 1.
        alpha_lr: Adam's learning rate of ln alpha (with a target entropy).
        floor: the uniform share of the actor-critic's action probabilities (``online.Softmax.floor``; 0: the
            policy as it is).
        epsilon: DQN's exploration.
        success_return: the least return of a successful episode (``None``: ``SUCCESS_RETURN``'s for the task).
        window, target: the success-rate window and the rate that counts as reached.
        epistemic, map_horizon: ``map-efe``'s weight of the information gain and its planning horizon in steps.
        map_crop, map_coarse, map_block: ``map-sac``'s features (``MapFeatures``: the crop's side, the coarse crop's
            side in blocks, the block's side in cells).
        hindsight: ``map-sac``: cells entered in each episode relabelled as its goal, their transitions added to the
            critic's replay after the episode (``MapFeatures.hindsight``; 0: none).
    """

    env: str = "MiniGrid-Empty-8x8-v0"
    episodes: int = 150
    warmup: int = 10
    latents: int = 2
    classes: int = 8
    deter: int = 64
    hidden: int = 64
    wm_steps: int = 200
    wm_batch: int = 16
    wm_length: int = 32
    wm_lr: float = 1e-3
    elbo: ELBO = field(default_factory=lambda: ELBO(KLBalancing(0.8), FreeNats(1.0)))
    wm_online: OnlineFit | None = None
    q_hidden: int = 64
    td: online.TDLearning = online.TDLearning(lr=5e-4, batch_size=64, buffer_size=50_000, learning_starts=500,
                                              train_every=4, discount=0.99)
    reward_preference: float = 10.0
    info_gain: float = 0.0
    info_gain_baseline: float = 0.0
    alpha: float = 0.01
    target_entropy: float | None = 0.3
    alpha_lr: float = 3e-4
    floor: float = 0.0
    epsilon: online.EpsilonGreedy = online.EpsilonGreedy(1.0, 0.05, 5_000)
    success_return: float | None = None
    window: int = 20
    target: float = 0.9
    epistemic: float = 1.0
    map_horizon: int = 40
    map_crop: int = 11
    map_coarse: int = 9
    map_block: int = 3
    hindsight: int = 0


QUICK = Settings(episodes=2, warmup=1, classes=4, deter=16, hidden=32, wm_steps=3, wm_length=8, q_hidden=32,
                 td=replace(Settings.td, learning_starts=50, buffer_size=2000), window=2)


# The measured online setting (--online): one Adam step on 16 windows of 16 steps every 8 environment steps, a replay
# ratio of 32 (DreamerV3's default is 512 on a GPU; this is what a shared CPU affords).
ONLINE = OnlineFit(every=8, steps=1, batch_size=16, length=16, lr=1e-3, elbo=Settings().elbo)


def make_env(s: Settings) -> gym.Env:
    return gym.make(s.env)


def world_model(s: Settings, seed: int) -> RSSM:
    return RSSM(s.latents, s.classes, ACTIONS.get(s.env, 3), [Bernoulli((PIXELS,))], reward_preference=1.0,
                deter=s.deter, hidden=s.hidden, seed=seed)


def belief_info_gain(rssm: RSSM, offset: int = 0):
    """The information gain of the RSSM's belief update at a state ``x = [..., h, E_q onehot z]`` (the features from
    ``offset`` on): ``sum_k KL[q(z^k | h, o) || p(z^k | h)]`` over the K latent variables, from the marginals the
    features hold and the prior at h (the factorised form, a lower bound on the joint's KL; pymdp sums its
    information gain per modality in the same way). ``(B, num_features) -> (B,)``."""
    D, K, C = rssm.deter, rssm.num_latents, rssm.num_classes

    @torch.no_grad()
    def gain(x: torch.Tensor) -> torch.Tensor:
        h, q = x[:, offset:offset + D], x[:, offset + D:offset + D + K * C].unflatten(-1, (K, C))
        p = unimix(torch.softmax(rssm.prior_net(h.to(rssm.dtype)).unflatten(-1, (K, C)), -1),
                   rssm.observation_model.unimix)
        return categorical_kl(q.to(p.dtype), p).sum(-1).to(x.dtype)

    return gain


def learner(s: Settings, num_features: int, num_actions: int, kind: str, seed: int,
            info_gain=None) -> aif_deep.Agent:
    """An observed-state ``aif_deep.Agent`` on feature vectors: the soft actor-critic (``sac``) or DQN (``dqn``);
    ``info_gain``: the gain of a state for ``online.RealisedInfoGain`` (with ``s.info_gain > 0``)."""
    terms: tuple = (online.RewardRisk(s.reward_preference),)
    if s.info_gain > 0 and info_gain is not None:
        terms += (online.RealisedInfoGain(s.info_gain, info_gain, s.info_gain_baseline),)
    model = online.StateVectorModel(num_features, num_actions)
    critic = aif_deep.QFunction([num_features], [num_actions], hidden=s.q_hidden, seed=seed)
    if kind == "sac":
        actor = aif_deep.QFunction([num_features], [num_actions], hidden=s.q_hidden, seed=seed + 2)
        learning = SoftActorCritic(critic, td=s.td, policy_terms=(EntropyWeight(s.alpha, target=s.target_entropy,
                                                                                   lr=s.alpha_lr),))
        # sample pi as it is (with a floor, mixed with the uniform)
        planner, selection = online.LearnedQ(actor), online.Softmax(1.0, gamma_start=None, floor=s.floor)
    else:
        learning = replace(s.td, hard_min=True)
        planner, selection = online.LearnedQ(critic), s.epsilon
    return aif_deep.Agent(model, inference=online.ObservedState(), planner=planner,
                          efe_terms=terms, learning=learning, selection=selection,
                          rng=np.random.default_rng(seed))


def random_episodes(env: gym.Env, n: int, num_actions: int, rng: np.random.Generator) -> tuple[list, list, list]:
    """``n`` random-action episodes in a ``ReplayBuffer`` (pixels, actions ``(T, 1)``, rewards), whether each reached
    the goal, and their returns."""
    buffer, goal, returns = aif_deep.ReplayBuffer(), [], []
    for _ in range(n):
        obs, _ = env.reset(seed=int(rng.integers(2**31 - 1)))
        pixels, actions, rewards, done, reward = [encode(obs["image"])], [], [], False, 0.0
        while not done:
            a = int(rng.integers(num_actions))
            obs, reward, terminated, truncated, _ = env.step(a)
            pixels.append(encode(obs["image"]))
            actions.append([a])
            rewards.append(float(reward))
            done = terminated or truncated
        buffer.add([np.stack(pixels)], np.array(actions), np.array(rewards))
        goal.append(bool(terminated))
        returns.append(float(sum(rewards)))
    return [buffer], goal, returns


class MapAgent:
    """``map-efe``: the loop's agent interface over ``aif.maps``. The encoder writes each view into ``grid``
    (``observe``); ``step`` plans from the pose and returns the first action."""

    td = None

    def __init__(self, s: Settings, rng: np.random.Generator, interact: bool = False) -> None:
        self.planner = MapPlanner(horizon=s.map_horizon, epistemic=s.epistemic, interact=interact)
        self.rng = rng
        self.plan_s = 0.0

    def observe(self, obs: dict, a: int | None = None) -> None:
        if a is None:
            self.grid = GridMap(extent=extent_for(max(obs["world_size"])))  # any start in a world of that side
            self.grid.reset(obs["image"])
        else:
            self.grid.step(a, obs["image"])

    def reset(self) -> None:
        pass

    def step(self, x, reward=None, terminated=False) -> list[int]:
        t = time.process_time()
        action = self.planner.plan(self.grid, self.rng).action
        self.plan_s += time.process_time() - t
        return [action]

    def infer_states(self, *args, **kwargs) -> None:
        pass


class MapFeatures:
    """``map-sac``'s state: the ``GridMap`` belief over the layout as a feature vector, egocentric (rotated to the
    heading, so "ahead" is one axis whatever the map's frame), and the information the last view gave about the map.

    ``reset(image)`` and ``step(action, image)`` update the belief and return the features (float32,
    ``num_features``):

    - ``crop``: ``(4, K, K)`` one-hot channels unseen / wall (or a closed door) / enterable / goal of the K x K cells
      around the agent (rows ahead from ``K // 2`` behind to ``K // 2`` ahead, columns left to right);
    - ``coarse``: ``(4, Kc, Kc)`` the share of each channel in blocks of ``block x block`` cells over the
      ``Kc * block`` cells around the agent (where the unseen and the goal lie beyond the crop);
    - the goal, if seen: ``[1, ahead / 10, right / 10]`` of the nearest goal cell (``[0, 0, 0]`` until then);
    - the realised information gain of the last view, nats: the cells it showed for the first time times the
      entropy of the prior over an unseen cell's type before it (``GridMap.entropy``; a view is noiseless, so this
      is ``KL[q(map | views so far) || q(map | views before)]``, whose expectation before the view is
      ``GridMap.information_gain`` at the pose). The last feature, so that ``RealisedInfoGain.of`` reads it back
      (``last_feature``) when the transition is stored.

    Args:
        world_side: the world's side, which only sizes the map (``GridMap.extent``; the agent never sees where it is).
        crop, coarse, block: K, Kc and the block's side.
    """

    CHANNELS = 4

    def __init__(self, world_side: int, crop: int = 11, coarse: int = 9, block: int = 3) -> None:
        if crop % 2 == 0 or coarse % 2 == 0 or min(crop, coarse, block) < 1:
            raise ValueError(f"the crops' sides must be odd (the agent's cell at their centre) and the block's >= 1, "
                             f"got crop={crop}, coarse={coarse}, block={block}")
        self.crop, self.coarse, self.block = crop, coarse, block
        reach = max(crop, coarse * block) // 2
        # any start in a world of that side (GridMap.extent), and the crops' cells around any pose on the map
        self.grid = GridMap(extent=extent_for(world_side) + 2 * reach)
        self.num_features = self.CHANNELS * (crop ** 2 + coarse ** 2) + 3 + 1
        self._crop, self._coarse = self._offsets(crop), self._offsets(coarse * block)
        self.gain = 0.0

    @staticmethod
    def _offsets(k: int) -> np.ndarray:
        """``(4, k, k, 2)``: the map offset of egocentric cell (row ahead, column right) facing each direction."""
        return egocentric_offsets(*np.meshgrid(np.arange(k) - k // 2, np.arange(k) - k // 2, indexing="ij"))

    def reset(self, image: np.ndarray) -> torch.Tensor:
        self.grid.reset(image)
        self.gain = 0.0  # the first view is not an action's outcome
        self.episode = [self.snapshot()]
        return self.features(self.episode[-1])

    def step(self, action: int, image: np.ndarray) -> torch.Tensor:
        g = self.grid
        known, H = int((g.types != UNSEEN).sum()), g.entropy()
        g.step(action, image)
        self.gain = (int((g.types != UNSEEN).sum()) - known) * H
        self.episode.append(self.snapshot())
        return self.features(self.episode[-1])

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int], float]:
        """The belief now (types, door states, pose) and the last view's gain: what ``features`` reads."""
        return self.grid.types.astype(np.int8), self.grid.states.astype(np.int8), self.grid.pose, self.gain

    def features(self, snapshot: tuple, goal: tuple[int, int] | None = None) -> torch.Tensor:
        """The features of a ``snapshot`` ``(num_features,)``; ``goal``: a map cell that stands for the goal in
        place of the cells of type GOAL (hindsight relabelling), shown once seen."""
        types, states, (x, y, d), gain = snapshot
        is_goal = types == GOAL
        if goal is not None:
            is_goal = np.zeros_like(is_goal)
            is_goal[goal] = types[goal] != UNSEEN
        enter = enterable(types, states) & ~is_goal
        c = np.stack([types == UNSEEN, opaque(types, states), enter,
                      is_goal]).astype(np.float32)  # (4, M, M) one-hot: unseen, wall or closed door, enterable, goal
        crop = c[:, x + self._crop[d, ..., 0], y + self._crop[d, ..., 1]]  # (4, K, K)
        k, b = self.coarse, self.block
        wide = c[:, x + self._coarse[d, ..., 0], y + self._coarse[d, ..., 1]]  # (4, Kc b, Kc b)
        coarse = wide.reshape(self.CHANNELS, k, b, k, b).mean((2, 4))  # (4, Kc, Kc)
        vector = np.zeros(3, np.float32)
        cells = np.argwhere(is_goal)
        if len(cells):
            dx, dy = (cells - [x, y]).T
            i = np.argmin(np.abs(dx) + np.abs(dy))
            fwd, side = DIRECTIONS[d], RIGHT_OF[d]
            vector[:] = 1.0, (dx[i] * fwd[0] + dy[i] * fwd[1]) / 10, (dx[i] * side[0] + dy[i] * side[1]) / 10
        return torch.from_numpy(np.concatenate([crop.reshape(-1), coarse.reshape(-1), vector,
                                                np.array([gain], np.float32)]))

    def hindsight(self, actions: list[int], count: int, max_steps: int, rng: np.random.Generator) -> list[tuple]:
        """Transitions ``(x, a, r, x', terminated)`` of the episode so far relabelled with ``count`` cells it
        entered as the goal (drawn among the cells entered, not the start's or a goal's): each replays the episode
        up to the first step into its cell, with MiniGrid's reward for the goal there, ``1 - 0.9 steps / max_steps``,
        and the episode's end (Andrychowicz et al. 2017, hindsight experience replay; the map's relabelled latent
        goal). ``actions``: the episode's, one per step after the first snapshot."""
        first: dict[tuple[int, int], int] = {}
        for t, (types, _, (x, y, _), _) in enumerate(self.episode[1:]):
            if (x, y) != self.episode[0][2][:2] and types[x, y] != GOAL:
                first.setdefault((x, y), t)
        cells = list(first)
        out = []
        for i in rng.choice(len(cells), size=min(count, len(cells)), replace=False):
            goal, T = cells[i], first[cells[i]]
            xs = [self.features(snap, goal) for snap in self.episode[:T + 2]]
            for t in range(T + 1):
                reward = 1.0 - 0.9 * (t + 1) / max_steps if t == T else 0.0
                out.append((xs[t], actions[t], reward, xs[t + 1], t == T))
        return out


def last_feature(x: torch.Tensor) -> torch.Tensor:
    """``RealisedInfoGain.of`` for ``MapFeatures``: the gain each state's view realised, its last feature.
    ``(B, num_features) -> (B,)``."""
    return x[:, -1]


class Filter:
    """The frozen RSSM's belief along an episode: ``reset(pixels)`` and ``step(action, pixels)`` return the feature
    vector ``[h, E_q onehot z]`` (float32) after each observation."""

    def __init__(self, rssm: RSSM) -> None:
        self.rssm = rssm.eval()

    @torch.no_grad()
    def reset(self, pixels: np.ndarray) -> torch.Tensor:
        self.view = self.rssm.at(self.rssm.initial())
        return self._observe(pixels)

    @torch.no_grad()
    def step(self, action: int, pixels: np.ndarray) -> torch.Tensor:
        self.view = self.view.advance(self.qs, torch.tensor(action))  # the carry h, moved on explicitly
        return self._observe(pixels)

    def _observe(self, pixels: np.ndarray) -> torch.Tensor:
        self.qs = aif_deep.infer_states(self.view, [torch.from_numpy(pixels)])
        return features(self.rssm, self.view.h, self.qs[0]).float()


def run(agent_name: str, s: Settings, seed: int, progress: bool = False) -> dict:
    """Train one agent for one seed on ``s.episodes`` episodes; returns its per-episode returns, what was measured
    over the last ``window`` episodes and the wall time."""
    torch.manual_seed(seed)
    env = make_env(s)
    num_actions = ACTIONS.get(s.env, 3)
    rng = np.random.default_rng(seed)
    start, cpu = time.perf_counter(), time.process_time()
    goal, returns, steps, wm, wm_online_s, gains, gain_events, behaviour = [], [], 0, None, 0.0, [], [], []
    if agent_name == "random":
        buffers, goal, returns = random_episodes(env, s.episodes, num_actions, rng)
        steps = buffers[0].num_steps
    elif "rssm" in agent_name:
        buffers, goal, returns = random_episodes(env, s.warmup, num_actions, rng)
        steps = buffers[0].num_steps
        rssm = world_model(s, seed)
        hist = fit(rssm, buffers[0], s.wm_steps, rng, batch_size=s.wm_batch, length=min(
            s.wm_length, max(len(e[1]) for e in buffers[0].episodes)), lr=s.wm_lr, elbo=s.elbo,
            generator=torch.Generator().manual_seed(seed))
        wm_hist = list(hist)
        filt = Filter(rssm)
        with_view = agent_name.startswith("view")
        if s.wm_online is not None:
            wm_state = s.wm_online.init(rssm)
            wm_rng, wm_gen = np.random.default_rng([seed, 1]), torch.Generator().manual_seed(seed + 1)

        def encoder(obs, a=None):
            pixels = encode(obs["image"])
            x = filt.reset(pixels) if a is None else filt.step(a, pixels)
            return torch.cat([torch.from_numpy(pixels).float(), x]) if with_view else x

        agent = learner(s, s.deter + s.latents * s.classes + PIXELS * with_view, num_actions,
                        agent_name.split("-")[-1], seed, belief_info_gain(rssm, PIXELS * with_view))
    elif agent_name == "map-efe":  # with six actions (DoorKey) it plans with pick up and toggle too
        agent = MapAgent(s, np.random.default_rng([seed, 2]), interact=num_actions == 6)  # its own ties: the
        # episodes stay those the other agents meet with the same seed

        def encoder(obs, a=None):  # the world's side only sizes the map (the agent never sees where it is)
            agent.observe({**obs, "world_size": (env.unwrapped.width, env.unwrapped.height)}, a)
    elif agent_name == "map-sac":
        if num_actions != 3:
            raise SystemExit(f"map-sac acts with left, right and forward only; {s.env} needs {num_actions} actions")
        maps = MapFeatures(max(env.unwrapped.width, env.unwrapped.height), s.map_crop, s.map_coarse, s.map_block)

        def encoder(obs, a=None):
            return maps.reset(obs["image"]) if a is None else maps.step(a, obs["image"])

        agent = learner(s, maps.num_features, num_actions, "sac", seed, last_feature)
        her_rng = np.random.default_rng([seed, 2])  # the relabelled goals (the episodes' seeds stay the same)
    else:
        encoder = lambda obs, a=None: torch.from_numpy(encode(obs["image"])).float()  # noqa: E731
        agent = learner(s, PIXELS, num_actions, "dqn", seed)
    wm_time = time.perf_counter() - start
    online_fit = "rssm" in agent_name and s.wm_online is not None
    for _ in range(s.episodes - len(goal)):
        obs, _ = env.reset(seed=int(rng.integers(2**31 - 1)))
        agent.reset()
        start_steps = steps
        u = env.unwrapped  # what the episode did, for the record only (the agents never see it)
        doors = [o for o in u.grid.grid if o is not None and o.type == "door"]
        cells, key, opened, counts = {tuple(u.agent_pos)}, False, False, np.zeros(num_actions, int)
        t_key = t_door = None
        x, reward, terminated, done, total, map_gain, map_actions = encoder(obs), None, False, False, 0.0, 0.0, []
        episode: tuple[list, list, list] = ([encode(obs["image"])], [], [])  # pixels, actions, rewards
        while not done:
            a = int(agent.step(x, reward=reward, terminated=terminated)[0])
            obs, reward, terminated, truncated, _ = env.step(a)
            x = encoder(obs, a)
            if agent_name == "map-sac":
                map_gain += maps.gain
                map_actions.append(a)
            steps += 1
            total += float(reward)
            done = terminated or truncated
            cells.add(tuple(u.agent_pos))
            t_key = t_key if key or u.carrying is None else steps - start_steps - 1  # the episode's step of it
            t_door = t_door if opened or not any(d.is_open for d in doors) else steps - start_steps - 1
            key, opened = key or u.carrying is not None, opened or any(d.is_open for d in doors)
            counts[a] += 1
            if online_fit:  # the episode so far is not in the replay yet: windows come from finished ones
                episode[0].append(encode(obs["image"]))
                episode[1].append([a])
                episode[2].append(float(reward))
                t = time.perf_counter()
                wm_state, hist = s.wm_online.update(wm_state, rssm, buffers[0], 1, wm_rng, wm_gen)
                wm_hist += hist
                wm_online_s += time.perf_counter() - t
        agent.infer_states(x, reward=reward, terminated=terminated)  # the episode's last transition
        stored = agent.td.stored_gain(torch.arange(agent.td.steps - (steps - start_steps), agent.td.steps)
                                      % agent.td.settings.buffer_size) if agent.td is not None else None
        if stored is not None:  # the mean information gain the belief update realised per step of the episode
            gains.append(float(stored.mean()))
            gain_events.append({"max": float(stored.max()), "key": None if t_key is None else float(stored[t_key]),
                                "door": None if t_door is None else float(stored[t_door])})
        if agent_name == "map-sac" and s.hindsight:  # after the episode's own gains were read from the replay
            for transition in maps.hindsight(map_actions, s.hindsight, env.unwrapped.max_steps, her_rng):
                agent.td.observe(*transition)
        if online_fit:
            buffers[0].add([np.stack(episode[0])], np.array(episode[1]), np.array(episode[2]))
        goal.append(bool(terminated))
        returns.append(total)
        behaviour.append({"cells": len(cells), "key": key, "door_open": opened, "actions": counts.tolist()})
        if agent_name == "map-sac":  # the information the episode's views gave about the map (whatever its weight)
            behaviour[-1].update(map_gain=map_gain, map_cells=int((maps.grid.types != UNSEEN).sum()),
                                 goal_seen=bool((maps.grid.types == GOAL).any()))
        if progress:
            sac = "" if not hasattr(agent.td, "alpha") else (f", alpha {agent.td.alpha:.3g}, policy entropy "
                                                            f"{agent.td.last_entropy:.2f}")
            gain = f", gain/step {gains[-1]:.2f}" if gains else ""
            did = f", key {key:d}, door {opened:d}" if doors else ""
            did += (f", map gain {map_gain:.1f} nats, goal seen {behaviour[-1]['goal_seen']:d}"
                    if agent_name == "map-sac" else "")
            print(f"{agent_name} seed {seed} ep {len(goal)}: return {total:.2f}, mean of the last {s.window} "
                  f"{np.mean(returns[-s.window:]):.2f}{sac}{gain}, {len(cells)} cells{did}, actions "
                  f"{counts.tolist()}", flush=True)
    if "rssm" in agent_name:  # the ELBO at the first and last 10 Adam steps, warm-up and online
        wm = {"elbo_first": float(np.mean([h["elbo"] for h in wm_hist[:10]])),
              "elbo_last": float(np.mean([h["elbo"] for h in wm_hist[-10:]])), "adam_steps": len(wm_hist),
              "online_s": wm_online_s}
    success_return = SUCCESS_RETURN.get(s.env, 0.1) if s.success_return is None else s.success_return
    success = np.asarray(returns) >= success_return
    rates = np.convolve(success.astype(float), np.ones(s.window) / s.window, "valid")  # episodes w .. E
    reached = np.nonzero(rates >= s.target)[0]
    last = slice(-s.window, None)
    return {"agent": agent_name, "seed": seed, "returns": returns, "goal": goal, "steps": steps,
            "success_rate": float(success[last].mean()), "goal_rate": float(np.mean(goal[last])),
            "mean_return": float(np.mean(returns[last])),
            "blocks": [float(b.mean()) for b in np.array_split(success, max(1, len(success) // 50))],
            "reached": None if not len(reached) else int(reached[0]) + s.window, "success_return": success_return,
            "wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu, "world_model_s": wm_time,
            "world_model": wm,
            "plan_cpu_s": getattr(agent, "plan_s", None) if agent_name != "random" else None,
            "transitions": None if getattr(agent, "td", None) is None else agent.td.steps,  # stored in the replay
            "info_gain": s.info_gain, "gain_per_episode": gains, "gain_events": gain_events, "behaviour": behaviour}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default=Settings.env)
    p.add_argument("--agents", nargs="+", default=["rssm-sac", "dqn"],
                   choices=["rssm-sac", "rssm-dqn", "view-rssm-sac", "view-rssm-dqn", "dqn", "random", "map-efe",
                            "map-sac"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--episodes", type=int, default=None)
    p.add_argument("--online", action="store_true", help="train the RSSM online as the agent acts (ONLINE)")
    p.add_argument("--info-gain", type=float, default=0.0, metavar="W",
                   help="weight of the realised information gain in the critic's one-step EFE (rssm-*, map-sac)")
    p.add_argument("--info-gain-baseline", type=float, default=0.0, metavar="NATS",
                   help="nats subtracted from each step's information gain (RealisedInfoGain.baseline)")
    p.add_argument("--alpha", type=float, default=None, help="the actor's (initial) entropy weight (Settings.alpha)")
    p.add_argument("--target-entropy", type=float, default=None, metavar="NATS",
                   help="the actor-critic's target entropy (Settings.target_entropy); 0: alpha fixed")
    p.add_argument("--alpha-lr", type=float, default=None, help="Adam's rate of ln alpha (Settings.alpha_lr)")
    p.add_argument("--floor", type=float, default=None,
                   help="uniform share of the actor-critic's action probabilities (Settings.floor)")
    p.add_argument("--free-nats", type=float, default=None,
                   help="the world model's free nats per step (Settings.elbo; 0: none)")
    p.add_argument("--discount", type=float, default=None, help="the critics' discount (TDLearning.discount)")
    p.add_argument("--n-step", type=int, default=None, help="the critics' n-step TD targets (TDLearning.n_step)")
    p.add_argument("--twin", action="store_true", help="twin critic heads (TDLearning.twin)")
    p.add_argument("--train-every", type=int, default=None,
                   help="environment steps per update of the critics (TDLearning.train_every)")
    p.add_argument("--epistemic", type=float, default=None, metavar="W",
                   help="map-efe: the weight of the expected information gain (Settings.epistemic; 0: none)")
    p.add_argument("--map-horizon", type=int, default=None, help="map-efe: the planning horizon (Settings.map_horizon)")
    p.add_argument("--reward-preference", type=float, default=None,
                   help="nats of log-preference per unit of reward (Settings.reward_preference)")
    p.add_argument("--map-crop", type=int, default=None, help="map-sac: the crop's side in cells (Settings.map_crop)")
    p.add_argument("--hindsight", type=int, default=None, metavar="K",
                   help="map-sac: K cells entered per episode relabelled as the goal (Settings.hindsight)")
    p.add_argument("--quick", action="store_true", help="a few episodes with small networks (the tests' setting)")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--json", default=None, help="write every run's per-episode returns and measures to this file")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # small networks: one thread (a shared machine's cores are contended)
    s = replace(QUICK if args.quick else Settings(), env=args.env)
    if args.episodes is not None:
        s = replace(s, episodes=args.episodes)
    s = replace(s, info_gain=args.info_gain, info_gain_baseline=args.info_gain_baseline,
                td=replace(s.td, twin=args.twin or s.td.twin, n_step=args.n_step or s.td.n_step,
                           discount=args.discount or s.td.discount,
                           train_every=args.train_every or s.td.train_every))
    if args.target_entropy is not None:
        s = replace(s, target_entropy=args.target_entropy or None)
    if args.free_nats is not None:
        s = replace(s, elbo=replace(s.elbo, free_nats=FreeNats(args.free_nats) if args.free_nats else None))
    for name in ("alpha", "alpha_lr", "floor", "epistemic", "map_horizon", "hindsight", "map_crop",
                 "reward_preference"):
        if getattr(args, name) is not None:
            s = replace(s, **{name: getattr(args, name)})
    if args.online:  # the online fit trains by the same ELBO as the warm-up's
        online_fit = replace(ONLINE, elbo=s.elbo)
        s = replace(s, wm_online=replace(online_fit, length=min(ONLINE.length, s.wm_length)) if args.quick else
                    online_fit)
    results = []
    for name in args.agents:
        for seed in args.seeds:
            r = run(name, s, seed, args.progress)
            results.append(r)
            wm = "" if r["world_model"] is None else (f", world model ELBO/step {r['world_model']['elbo_first']:.1f} "
                                                      f"-> {r['world_model']['elbo_last']:.1f} "
                                                      f"({r['world_model']['adam_steps']} Adam steps; warm-up "
                                                      f"{r['world_model_s']:.0f} s, online "
                                                      f"{r['world_model']['online_s']:.0f} s)")
            print(f"{s.env} {name} seed {seed}: last {s.window} episodes: success {r['success_rate']:.2f}, goal "
                  f"{r['goal_rate']:.2f}, mean return {r['mean_return']:.3f}; success rate >= {s.target} first at "
                  f"episode {r['reached']}; success rate per 50 episodes {[round(b, 2) for b in r['blocks']]}; "
                  f"{len(r['returns'])} episodes, {r['steps']} steps, {r['wall_s']:.0f} s{wm}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": repr(s), "runs": results}, f)
    return results


if __name__ == "__main__":
    main()
