"""Connect any Gymnasium environment with discrete observations to an ``aif.Agent``.

An agent reads one outcome index per modality and emits one control per factor: ``action: (num_factors,)``.
Gymnasium environments speak in spaces: ``Discrete(n)`` (one index), ``MultiDiscrete(nvec)`` (a vector of
indices) or a ``Tuple`` of ``Discrete``. ``AgentWrapper`` translates both ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from ..checks import as_numbers
from ..errors import ModelError, ObservationError, PolicyError


def _sizes(space, name, error=ObservationError):
    """Sizes per entry of a discrete space, the first index of each (Gymnasium spaces may start anywhere), and the
    kind; a ``Tuple`` of ``Discrete`` for observations only."""
    if isinstance(space, gym.spaces.Discrete):
        return [int(space.n)], np.array([space.start]), "discrete"
    if isinstance(space, gym.spaces.MultiDiscrete):
        return [int(n) for n in np.ravel(space.nvec)], np.ravel(space.start), "multidiscrete"
    if (isinstance(space, gym.spaces.Tuple) and error is ObservationError
            and all(isinstance(s, gym.spaces.Discrete) for s in space.spaces)):
        return [int(s.n) for s in space.spaces], np.array([s.start for s in space.spaces]), "tuple"
    raise error(f"{name} is {space}; AgentWrapper needs Discrete, MultiDiscrete"
                f"{' or a Tuple of Discrete' if error is ObservationError else ''} spaces (discretise others first)")


def _integers(x: Any, name: str, low: int) -> list[int]:
    """A 1-D list of integers ``>= low`` (``ModelError``)."""
    a = as_numbers(x, name, ModelError, None)
    if a.ndim != 1 or not (a.size == 0 or np.issubdtype(a.dtype, np.integer)) or (a < low).any():
        raise ModelError(f"{name} must be a list of integers >= {low}, got {x!r}")
    return [int(n) for n in a]


class AgentWrapper(gym.Wrapper):
    """Observations as a list of indices per modality; actions as an agent's control vector.

    Args:
        env: a Gymnasium environment whose observation space is ``Discrete``, ``MultiDiscrete`` or a
            ``Tuple`` of ``Discrete``, and whose action space is ``Discrete`` or ``MultiDiscrete``.
        num_controls: controls per factor of the agent's model (``model.num_controls``). By default one
            factor per entry of the action space.
        control_factors: the factors whose controls the environment receives, in the order of its action
            space. By default the factors with more than one control (``Discrete``: exactly one of them), or,
            in a model where no factor has a choice, the first factors (an action space of single controls).

    The wrapped environment's observation space is ``Tuple(Discrete(O_m) ...)`` and its observations are
    Python lists of ints; its action space is ``MultiDiscrete(num_controls)``. Use
    ``AgentWrapper.for_model(env, model)`` to read ``num_controls`` from a model.
    """

    def __init__(self, env: gym.Env, num_controls: Sequence[int] | None = None,
                 control_factors: Sequence[int] | None = None) -> None:
        super().__init__(env)
        self.num_obs, obs_start, self._obs_kind = _sizes(env.observation_space, "the observation space")
        self._obs_start = [int(x) for x in obs_start]
        act = env.action_space
        env_controls, act_start, self._act_kind = _sizes(act, "the action space", PolicyError)
        self._act_start = act_start.astype(np.int64)
        if num_controls is None:
            num_controls = list(env_controls)
            control_factors = list(range(len(env_controls))) if control_factors is None else control_factors
        num_controls = _integers(num_controls, "num_controls", 1)
        if control_factors is None:
            control_factors = [f for f, n in enumerate(num_controls) if n > 1]
            if not control_factors and set(env_controls) == {1}:  # nothing to choose: the first factors take it
                control_factors = list(range(len(env_controls)))
        control_factors = _integers(control_factors, "control_factors", 0)
        if len(control_factors) != len(env_controls):
            raise ModelError(f"control_factors = {control_factors} names {len(control_factors)} factors, but the "
                             f"action space {act} takes {len(env_controls)} controls")
        for f, n in zip(control_factors, env_controls, strict=True):
            if not 0 <= f < len(num_controls):
                raise ModelError(f"control_factors names factor {f}, but the model has {len(num_controls)} factors")
            if num_controls[f] != n:
                raise ModelError(f"factor {f} has {num_controls[f]} controls in the model but the environment's "
                                 f"action space offers {n}")
        self.num_controls = num_controls
        self.control_factors = control_factors
        # the common case of every loop, read at each step: indices from 0, an observation array of ints
        self._plain_obs = self._obs_kind == "multidiscrete" and not any(self._obs_start)
        self._discrete_action = ((control_factors[0], int(self._act_start[0])) if self._act_kind == "discrete"
                                 else None)
        self.observation_space = gym.spaces.Tuple([gym.spaces.Discrete(n) for n in self.num_obs])
        self.action_space = gym.spaces.MultiDiscrete(num_controls)

    @classmethod
    def for_model(cls, env: gym.Env, model: Any, control_factors: Sequence[int] | None = None) -> "AgentWrapper":
        """Wrap ``env`` for an agent holding ``model`` (an ``aif.GenerativeModel``)."""
        return cls(env, num_controls=model.num_controls, control_factors=control_factors)

    def observation(self, obs: Any) -> list:
        """The environment's observation as one index per modality."""
        if self._obs_kind == "discrete":
            return [int(obs) - self._obs_start[0]]
        if (self._plain_obs and type(obs) is np.ndarray and obs.dtype.kind in "iu"
                and obs.size == len(self._obs_start)):
            return obs.ravel().tolist()  # Python ints, as below
        return [int(o) - s for o, s in zip(np.ravel(obs), self._obs_start, strict=False)]

    def env_action(self, action: Any) -> Any:
        """The environment's action for an agent's control vector ``action: (num_factors,)``."""
        if type(action) is not np.ndarray or action.ndim != 1:
            action = np.asarray(action).ravel()
        if action.shape[0] != len(self.num_controls):
            raise PolicyError(f"action has {action.shape[0]} entries, expected one per factor "
                              f"({len(self.num_controls)})")
        if self._discrete_action is not None:
            factor, start = self._discrete_action
            return int(action[factor]) + start
        return action[self.control_factors].astype(np.int64) + self._act_start

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[list, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self.observation(obs), info

    def step(self, action: Any) -> tuple[list, Any, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(self.env_action(action))
        return self.observation(obs), reward, terminated, truncated, info
