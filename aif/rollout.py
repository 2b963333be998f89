"""Run an agent in an environment and keep a record of every step.

``rollout(agent, env, steps, rng)`` resets both, then repeats: the agent infers its state from the
observation, scores its policies by expected free energy and picks an action; the environment steps. The
returned ``Trajectory`` holds what the agent saw, believed, weighed and did.

The agent may be an ``aif.Agent`` or an ``aif_deep.Agent`` (whose beliefs are torch tensors), and the
observations indices or arrays (images for a neural model): everything is kept as NumPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm  # plain tqdm: tqdm.auto warns in notebooks without ipywidgets

from .checks import check_index
from .envs.wrappers import AgentWrapper
from .errors import ParameterError, StrategyError

# Runs at least this long show a progress bar unless ``progress=False``.
PROGRESS_MIN_STEPS = 500


@dataclass(frozen=True, eq=False)
class Trajectory:
    """One episode, step by step (``T`` steps taken, ``M`` modalities, ``F`` factors, ``P`` policies).

    Attributes:
        observations: int ``(T + 1, M)``: the observation before each step and the last one after it, when
            every modality is observed as one index; ``None`` when some are arrays (use ``obs_by_modality``).
        actions: int ``(T, F)``: the agent's action vector at each step.
        qs: one array ``(T, num_states[f])`` per factor: the posterior after each observation.
        q_pi: ``(T, P)``: the posterior over policies at each step.
        G: ``(T, P)``: the expected free energy of each policy (lower is better).
        terms: name -> ``(T, P)``: the EFE terms at each step (``risk``, ``ambiguity``, ``utility``,
            ``state_info_gain``, and parameter terms when the agent computes them).
        rewards: ``(T,)``: the environment's reward after each action.
        states: int ``(T + 1, F_env)``: the environment's hidden states when it reports them as
            ``info["state"]`` (the environments in ``aif.envs`` do), else ``None``.
        policies: int ``(P, horizon, F)``: the policies the columns of ``q_pi``, ``G`` and ``terms`` refer to.
        terminated, truncated: how the episode ended (both false when it ran for all the steps asked).
        obs_by_modality: one array ``(T + 1, *shape_m)`` per modality: the observations as the environment
            gave them (``shape_m`` is ``()`` for an index, e.g. ``(8, 8)`` for an image).
    """

    observations: np.ndarray | None
    actions: np.ndarray
    qs: tuple
    q_pi: np.ndarray
    G: np.ndarray
    terms: dict = field(repr=False)
    rewards: np.ndarray
    states: np.ndarray | None
    policies: np.ndarray = field(repr=False)
    terminated: bool = False
    truncated: bool = False
    obs_by_modality: tuple = field(default=(), repr=False)

    @property
    def num_steps(self) -> int:
        return int(self.actions.shape[0])

    @property
    def total_reward(self) -> float:
        return float(self.rewards.sum())

    def step_terms(self, t: int) -> dict:
        """The EFE terms at step ``t``: name -> ``(P,)``."""
        return {name: values[t] for name, values in self.terms.items()}


def rollout(agent: Any, env: Any, steps: int, rng: np.random.Generator | None = None, *, seed: int | None = None,
            options: dict | None = None, progress: bool | None = None) -> Trajectory:
    """Run ``agent`` in ``env`` for up to ``steps`` actions.

    Args:
        agent: an ``aif.Agent`` or ``aif_deep.Agent`` with an unbatched model (anything with ``reset()``,
            ``step(obs) -> action`` and the attributes ``qs``, ``q_pi``, ``G``, ``terms``, ``policies``,
            ``model``; arrays or CPU tensors).
        env: a Gymnasium environment with discrete observations; it is wrapped in ``AgentWrapper`` for the
            agent's model unless it is one already or wraps one (e.g. ``aif_deep.training.NoisyGridImages``,
            whose observations are images).
        steps: the most actions to take; the episode stops earlier when the environment ends it.
        rng: ``np.random.Generator`` that seeds the environment's reset (when ``seed`` is not given).
        seed: the environment's reset seed (takes precedence over ``rng``).
        options: passed to ``env.reset`` (e.g. ``{"condition": 1}`` in the T-maze).
        progress: show a tqdm bar; by default only for runs of ``PROGRESS_MIN_STEPS`` steps or more.

    Returns:
        ``Trajectory``.
    """
    if not (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps >= 1):
        raise ParameterError(f"steps must be at least 1, got {steps!r}")
    if not all(hasattr(agent, name) for name in ("reset", "step", "model")):  # an aif or aif_deep Agent
        raise StrategyError(f"agent must be an aif.Agent or aif_deep.Agent, got {type(agent).__name__}")
    if not isinstance(env, gym.Env):
        raise StrategyError(f"env must be a gymnasium.Env, got {type(env).__name__}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise StrategyError(f"rng must be a np.random.Generator, got {type(rng).__name__}")
    seed = None if seed is None else check_index(seed, "seed")
    if options is not None and not isinstance(options, dict):
        raise ParameterError(f"options must be a dict or None, got {options!r}")
    env = as_agent_env(env, agent.model)
    if seed is None and rng is not None:
        seed = int(rng.integers(2**31 - 1))
    show = steps >= PROGRESS_MIN_STEPS if progress is None else bool(progress)

    agent.reset()
    obs, info = env.reset(seed=seed, options=options)
    observations, states = [obs], [info.get("state")]
    actions, qs, q_pi, G, rewards = [], [], [], [], []
    terms: dict[str, list] = {}
    terminated = truncated = False
    for _ in tqdm(range(steps), disable=not show, desc="rollout", unit="step", leave=False):
        action = _copy(agent.step(obs))
        actions.append(action)
        qs.append([_copy(q) for q in agent.qs])
        q_pi.append(_copy(agent.q_pi))
        G.append(_copy(agent.G))
        for name, values in agent.terms.items():
            terms.setdefault(name, []).append(_copy(values))
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        states.append(info.get("state"))
        rewards.append(reward)
        if terminated or truncated:
            break

    has_states = all(s is not None for s in states)
    # (T + 1, *shape_m) per modality; an index-valued modality has shape_m = ()
    by_modality = tuple(np.stack([_copy(o[m]) for o in observations]) for m in range(len(observations[0])))
    indices = all(o.ndim == 1 for o in by_modality)
    return Trajectory(
        observations=np.stack(by_modality, -1).astype(np.int64) if indices else None,
        actions=np.array(actions, dtype=np.int64),
        qs=tuple(np.array(per_factor) for per_factor in zip(*qs, strict=True)),
        q_pi=np.array(q_pi),
        G=np.array(G),
        terms={name: np.array(values) for name, values in terms.items()},
        rewards=np.array(rewards, dtype=float),
        states=np.array(states, dtype=np.int64) if has_states else None,
        policies=np.array(agent.policies),
        terminated=bool(terminated),
        truncated=bool(truncated),
        obs_by_modality=by_modality,
    )


def _copy(x) -> np.ndarray:
    """A NumPy copy of an array or a CPU tensor (``np.asarray`` first: ``np.array(tensor)`` passes ``copy=`` to
    ``Tensor.__array__``, which NumPy 2 warns about for torch versions whose ``__array__`` has no ``copy``)."""
    return np.asarray(x).copy()


def as_agent_env(env, model):
    """``env`` wrapped in ``AgentWrapper.for_model(env, model)``, unless it is an ``AgentWrapper`` or a wrapper
    around one (e.g. ``NoisyGridImages``, which shows the wrapped grid's cells as images): then it already
    takes the agent's actions, and its observations are the agent's."""
    inner = env
    while isinstance(inner, gym.Wrapper):
        if isinstance(inner, AgentWrapper):
            return env
        inner = inner.env
    return AgentWrapper.for_model(env, model)
