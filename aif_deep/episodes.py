"""Episodes for training neural models: the replay buffer and random-action collection from an environment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from aif.errors import ParameterError

from .images import NoisyGridImages


class ReplayBuffer:
    """Episodes of observations, actions and rewards, from which training windows are drawn.

    An episode of ``T`` steps holds ``observations``: one array ``(T + 1, *obs_shape_m)`` per modality,
    ``actions``: int ``(T, F)``, ``rewards``: ``(T,)`` (the reward that arrives with observation ``t + 1``).
    """

    def __init__(self) -> None:
        self.episodes: list[tuple[list[np.ndarray], np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self.episodes)

    @property
    def num_steps(self) -> int:
        return sum(len(e[1]) for e in self.episodes)

    def add(self, observations: Sequence[ArrayLike], actions: ArrayLike, rewards: ArrayLike | None = None) -> None:
        obs = [np.asarray(o) for o in observations]
        actions = np.asarray(actions, dtype=np.int64)
        if actions.ndim != 2:
            raise ParameterError(f"actions must have shape (T, num_factors), got {actions.shape}")
        T = actions.shape[0]
        for m, o in enumerate(obs):
            if o.shape[0] != T + 1:
                raise ParameterError(f"observations[{m}] has {o.shape[0]} steps; an episode of {T} actions needs "
                                     f"{T + 1}")
        r = np.zeros(T) if rewards is None else np.asarray(rewards, dtype=float)
        if r.shape != (T,):
            raise ParameterError(f"rewards has shape {r.shape}, expected ({T},)")
        self.episodes.append((obs, actions, r))

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
        return {"observations": [np.stack(x) for x in zip(*obs, strict=True)], "actions": np.stack(act),
                "rewards": np.stack(rew), "first": np.array(first)}


def collect_episodes(env: Any, episodes: int, steps: int, rng: np.random.Generator,
                     buffer: ReplayBuffer | None = None, options: Callable[[np.random.Generator], dict] | None = None
                     ) -> tuple[ReplayBuffer, list[np.ndarray]]:
    """``episodes`` random-action episodes of up to ``steps`` actions, added to ``buffer`` (a new one if
    ``None``), from an ``env`` whose observations are tuples, one entry per modality (``NoisyGridImages``,
    ``NoisyTMazeImages``), whose action space is ``MultiDiscrete`` (actions drawn uniformly) and whose
    ``info["state"]`` is the hidden state. ``rng`` draws the reset seeds, the reset options
    (``options(rng) -> dict``, e.g. a start state) and the actions.

    Returns ``(buffer, states)``, ``states`` one int array ``(T + 1, num_factors)`` per episode: the true states.
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
        buffer.add([np.stack(o) for o in zip(*observations, strict=True)], np.array(actions), np.array(rewards))
        all_states.append(np.array(states, dtype=np.int64))
    return buffer, all_states


def collect_random(env: NoisyGridImages, episodes: int, steps: int, rng: np.random.Generator,
                   buffer: ReplayBuffer | None = None) -> tuple[ReplayBuffer, list[np.ndarray]]:
    """Random-action episodes of up to ``steps`` steps from uniformly drawn start cells, added to a buffer.

    Returns ``(buffer, states)`` with ``states`` a list of int arrays (one per episode): the true locations.
    """
    n_cells = env.templates.shape[0]
    buffer, states = collect_episodes(env, episodes, steps, rng, buffer,
                                      options=lambda rng: {"state": (int(rng.integers(n_cells)),)})
    return buffer, [s[:, 0] for s in states]
