"""A Gymnasium environment driven by categorical arrays: the generative process of a discrete POMDP.

The true world of each task (T-maze, grid world, cue chaining) is written as the same kind of arrays an
agent's generative model holds: ``D`` (initial states), ``B`` (transitions), ``A`` (observations). This
module samples from them. Each task subclass builds its arrays, names its actions, and says what the reward
and the end of an episode are. The arrays' shapes are the model's (``aif.model``).

Observations are ``np.ndarray`` of shape ``(num_modalities,)`` (space ``MultiDiscrete(num_obs)``); the
action is one integer for the single controllable factor (space ``Discrete(U_f)``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike

from ..checks import as_numbers, check_index, check_positive
from ..errors import CallOrderError, ModelError, ParameterError, PolicyError
from ..model import GenerativeModel

# Counts that pin a known distribution in a model to be learned: large enough that learning barely moves it,
# positive because Dirichlet counts must be.
KNOWN_COUNT = 1e4
COUNT_FLOOR = 1e-6


def known_counts(arrays) -> list:
    """Dirichlet counts whose means are (almost exactly) ``arrays``: ``KNOWN_COUNT * a + COUNT_FLOOR``."""
    return [a * KNOWN_COUNT + COUNT_FLOOR for a in arrays]


def unknown_transitions(B, prior_count, factor=0) -> list:
    """Counts ``pB`` for a model that must learn ``B[factor]``: ``prior_count`` everywhere there, the other
    factors known (``known_counts``). Sets ``B[factor]`` (in place) to the counts' mean, which is uniform."""
    pB = known_counts(B)
    pB[factor] = np.full_like(B[factor], check_positive(prior_count, "prior_count"))
    B[factor] = pB[factor] / pB[factor].sum(axis=0, keepdims=True)
    return pB


def _cdf(p):
    """Cumulative distribution of one column, for inverse-CDF sampling with one uniform number per draw.

    One uniform per draw (rather than ``Generator.choice``) makes the random stream the same whatever the
    distributions are, so two agents that act alike see identical worlds. A Python list searched with
    ``bisect`` is several times faster than a NumPy call for the few outcomes of a column, and the
    environment's step is part of every agent-environment loop we time.
    """
    c = np.cumsum(p)
    c[-1] = np.inf  # rounding must not leave u above the last entry
    return c.tolist()


class POMDPEnv(gym.Env):
    """Base class: samples states from ``D`` and ``B`` and observations from ``A``.

    Args:
        A, B, D: the generative process, shaped as in ``aif.model``. Columns must sum to one.
        A_dependencies, B_dependencies: as in ``aif.GenerativeModel`` (all factors / ``[f]`` by default).
        control_factor: the factor the agent's action moves; the other factors have one control.

    Subclasses override ``reward(state, obs)`` and ``terminal(state)``; the default is no reward and no end.
    The arrays are read once per column and cached: do not modify them after construction.
    ``info`` carries the hidden state as ``info["state"]`` (a tuple of ints, one per factor).
    """

    metadata = {"render_modes": []}

    def __init__(self, A: Sequence[ArrayLike], B: Sequence[ArrayLike], D: Sequence[ArrayLike],
                 A_dependencies: Sequence[Sequence[int]] | None = None,
                 B_dependencies: Sequence[Sequence[int]] | None = None, control_factor: int = 0) -> None:
        # the process is checked as a model is (shapes, columns, dependencies)
        deps: Any = dict(A_dependencies=A_dependencies or None, B_dependencies=B_dependencies or None)
        model = GenerativeModel(A, B, D=D, **deps)  # type: ignore[arg-type]
        self.A, self.B, self.D = model.A, model.B, model.D
        self.A_dependencies, self.B_dependencies = model.A_dependencies, model.B_dependencies
        self.num_states, self.num_obs, self.num_controls = model.num_states, model.num_obs, model.num_controls
        self.control_factor = check_index(control_factor, "control_factor", len(self.B))
        for f, n in enumerate(self.num_controls):
            if f != self.control_factor and n != 1:
                raise ModelError(f"B[{f}] has {n} controls, but only factor {self.control_factor} is controllable")
        self.observation_space = gym.spaces.MultiDiscrete(self.num_obs)
        self.action_space = gym.spaces.Discrete(self.num_controls[self.control_factor])
        self.state = None
        # Column CDFs, filled on first use: key (array list, index, column index tuple).
        self._cdfs: dict = {}

    def _draw(self, arrays, i, column, u):
        """Sample row of ``arrays[i][:, *column]`` with the uniform ``u``."""
        key = (id(arrays), i, column)
        cdf = self._cdfs.get(key)
        if cdf is None:
            cdf = self._cdfs[key] = _cdf(arrays[i][(slice(None), *column)])
        return bisect_right(cdf, u)

    # The task-specific parts.
    def reward(self, state: Any, obs: Any) -> float:
        """Scalar reward for arriving in ``state`` and seeing ``obs``."""
        return 0.0

    def terminal(self, state: Any) -> bool:
        """Whether the episode ends in ``state``."""
        return False

    # The sampling, shared by every task.
    def _observe(self, u):
        s = self.state
        return np.array([self._draw(self.A, m, tuple(s[f] for f in deps), u[m])
                         for m, deps in enumerate(self.A_dependencies)], dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[list, dict]:
        """Start an episode; ``options={"state": (s_0, s_1, ...)}`` fixes the initial hidden state."""
        super().reset(seed=seed)
        options = {} if options is None else options
        if not isinstance(options, dict):
            raise ParameterError(f"options must be a dict or None, got {options!r}")
        if "state" in options:
            s = as_numbers(options["state"], "options['state']", ParameterError, None)
            state = tuple(int(x) for x in s.ravel()) if np.issubdtype(s.dtype, np.integer) and s.ndim == 1 else ()
            if len(state) != len(self.D) or any(not 0 <= s < n for s, n in zip(state, self.num_states, strict=True)):
                raise ParameterError(f"options['state'] = {state} is not a state of factors with sizes "
                                     f"{self.num_states}")
        else:
            u = self.np_random.random(len(self.D)).tolist()
            state = tuple(self._draw(self.D, f, (), u_f) for f, u_f in enumerate(u))
        self.state = self._initial_state(state, options)
        obs = self._observe(self.np_random.random(len(self.A)).tolist())
        return obs, {"state": self.state}

    def _initial_state(self, state, options):
        """Hook for tasks whose reset options name parts of the state (a reward condition, a goal)."""
        return state

    def step(self, action: Any) -> tuple[list, float, bool, bool, dict]:
        if self.state is None:
            raise CallOrderError("call reset() before step()")
        if not (isinstance(action, (int, np.integer)) and 0 <= action < self.action_space.n):
            raise PolicyError(f"action {action!r} is not in the action space {self.action_space}")
        controls = [0] * len(self.B)
        controls[self.control_factor] = int(action)
        u = self.np_random.random(len(self.B) + len(self.A)).tolist()
        s = self.state
        self.state = tuple(self._draw(self.B, f, (*[s[g] for g in deps], controls[f]), u[f])
                           for f, deps in enumerate(self.B_dependencies))
        obs = self._observe(u[len(self.B):])
        return obs, float(self.reward(self.state, obs)), bool(self.terminal(self.state)), False, {"state": self.state}
