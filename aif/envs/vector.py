"""Many copies of a tabular task stepped at once: a Gymnasium vector environment sampled from the task's arrays.

``POMDPVectorEnv(env, num_envs)`` runs ``num_envs`` independent copies of any ``POMDPEnv`` task (``TMaze``,
``GridWorld``, ``CueChaining``, ...) as NumPy arrays: the hidden states of all copies are one int array
``(N, num_factors)``, and every draw (initial states from ``D``, next states from ``B``, outcomes from ``A``) is
made for all copies at once by inverse-CDF sampling with one uniform number per draw, the rule of
``POMDPEnv._draw``: with the cumulative sums ``c`` of the column (its last entry set to infinity), the draw is the
number of entries of ``c`` at or below ``u``. The cumulative sums are the single environment's (``np.cumsum``
along the outcome axis), so a copy fed the uniforms a single environment draws gives exactly its states,
observations and rewards.

The random stream. ``reset`` draws ``(n, num_factors)`` uniforms for the initial states (none when
``options["state"]`` fixes them) and then ``(n, num_modalities)`` for the observations, ``n`` being the number of
copies reset; ``step`` draws ``(n, num_factors + num_modalities)`` for the copies that step: per copy the same
numbers, in the same order, as ``POMDPEnv.reset`` and ``POMDPEnv.step``, from the vector environment's one
generator (``np_random``, seeded by ``reset(seed=...)``).

Reward and termination are the task's own ``reward(state, obs)`` and ``terminal(state)`` (Python methods, not
arrays): they must be functions of their arguments (and of the task's fixed settings), as every task here is. The
vector environment calls them once per distinct ``(state, obs)`` or ``state`` it meets and reads them back by
array indexing after that (a table over the joint index when it has at most ``DENSE_LIMIT`` entries, else a
dictionary). Reset options go through the task's ``_initial_state`` hook for every copy reset, with the same
options for all of them (``options["state"]`` is checked by the task's own ``reset``).

Spaces (Gymnasium's vector API): ``single_observation_space`` and ``single_action_space`` are the task's
(``MultiDiscrete(num_obs)`` and ``Discrete(U)``); ``observation_space`` and ``action_space`` their batches.
Observations are int64 ``(N, num_modalities)``; actions int ``(N,)``, the control of the task's controllable factor.
``info`` holds ``"state"``, int ``(N, num_factors)``, with its mask ``"_state"``.

Autoreset (``metadata["autoreset_mode"]``): ``NEXT_STEP`` (Gymnasium's default): the ``step`` after a copy's
episode ended (terminated, or truncated by ``max_episode_steps``) resets that copy instead of stepping it, and
returns its first observation with reward 0 and both flags false (its action is ignored). ``DISABLED``: a copy
whose episode ended must be reset with ``reset(options={"reset_mask": mask})`` before the next ``step``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from ..checks import as_numbers, check_integer
from ..errors import CallOrderError, ParameterError, PolicyError
from .pomdp import POMDPEnv

DENSE_LIMIT = 1 << 20  # joint indices a lazily filled reward or termination table may have (8 MiB of float64)


def inverse_cdf(cdf_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draws with one uniform each: ``cdf_rows`` ``(n, K)`` cumulative sums (last entry infinite, as ``POMDPEnv``'s),
    ``u`` ``(n,)`` in [0, 1). Returns int ``(n,)``: the number of entries at or below ``u`` (``bisect_right``)."""
    return (cdf_rows <= u[:, None]).sum(-1)


def cdf_table(p: np.ndarray) -> np.ndarray:
    """The cumulative sums of every column of a distribution array ``(K, *columns)`` along its outcome axis, moved
    last: ``(*columns, K)``, with the last entry infinite (rounding must not leave ``u`` above it)."""
    c = np.cumsum(p, axis=0)
    c[-1] = np.inf
    return np.ascontiguousarray(np.moveaxis(c, 0, -1))


class _Draws:
    """Draws of ``V`` categorical variables at once, variable ``v`` from a column of its cumulative-sum table
    ``cdfs[v]`` ``(*dims_v, K_v)`` (``cdf_table``'s layout) chosen by the hidden states: the index along axis ``i``
    is ``states[:, reads[v][i]]`` (a transition's last axis, over the controls, is left at 0 by ``columns``).

    Every variable's columns are laid side by side in one array ``(max K_v, sum_v prod(dims_v))``, the outcome axis
    first and padded with infinity (no uniform is at or above it, so the padding never counts): a column's index is
    ``states @ weights + offsets``, and one lookup, one comparison and one sum over the leading axis draw every
    variable (``inverse_cdf``'s rule; NumPy vectorises a sum over a leading axis across the draws, where one over a
    short last axis is several times slower). Where the padding would more than double the array (a variable with
    many outcomes beside one with many columns), each variable keeps its own (``padded`` forces either layout).
    """

    def __init__(self, cdfs: list[np.ndarray], reads: list[list[int]], num_factors: int,
                 padded: bool | None = None) -> None:
        sizes = [math.prod(c.shape[:-1]) for c in cdfs]
        self.weights = np.zeros((num_factors, len(cdfs)), dtype=np.int64)  # (F, V)
        for v, (c, deps) in enumerate(zip(cdfs, reads, strict=True)):
            for i, g in enumerate(deps):
                self.weights[g, v] += math.prod(c.shape[i + 1: -1])  # C order over (*dims_v)
        flat = [np.ascontiguousarray(c.reshape(-1, c.shape[-1]).T) for c in cdfs]  # (K_v, prod dims_v)
        depth = max(f.shape[0] for f in flat)
        self.padded = padded if padded is not None else sum(sizes) * depth <= max(2 * sum(f.size for f in flat),
                                                                                 1 << 16)
        if self.padded:
            self.offsets = np.cumsum([0, *sizes[:-1]]).astype(np.int64)  # (V,)
            table = np.full((depth, sum(sizes)), np.inf)
            for f, start in zip(flat, self.offsets, strict=True):
                table[: f.shape[0], start: start + f.shape[1]] = f
            self.tables = [table]
        else:
            self.offsets = np.zeros(len(cdfs), dtype=np.int64)
            self.tables = flat

    def columns(self, states: np.ndarray) -> np.ndarray:
        """The index of each variable's column for hidden states ``(n, F)``: int ``(n, V)``."""
        return states @ self.weights + self.offsets

    def __call__(self, columns: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Draws ``(n, V)`` from the columns ``columns`` ``(n, V)`` with the uniforms ``u`` ``(n, V)``."""
        if self.padded:
            return (self.tables[0].take(columns, axis=1) <= u).sum(0)  # (K, n, V) compared, counted over K
        out = np.empty(columns.shape, dtype=np.int64)
        for v, table in enumerate(self.tables):
            out[:, v] = (table.take(columns[:, v], axis=1) <= u[:, v]).sum(0)
        return out


class _Lazy:
    """A function of integer rows (``(n, len(dims))``, entry ``i`` in ``0..dims[i] - 1``) computed once per distinct
    row by ``fn(row)`` and read back by indexing: a dense table over the joint index when it is small enough, else a
    dictionary of rows."""

    def __init__(self, fn: Callable[[tuple], float], dims: list[int]) -> None:
        self.fn = fn
        size = math.prod(dims)
        self.table = np.full(size, np.nan) if size <= DENSE_LIMIT else None
        self.strides = np.array([math.prod(dims[i + 1:]) for i in range(len(dims))], dtype=np.int64)
        self.seen: dict[tuple, float] = {}

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        if self.table is None:
            return np.array([self.seen[r] if r in self.seen else self.seen.setdefault(r, float(self.fn(r)))
                             for r in map(tuple, rows.tolist())])
        keys = rows @ self.strides
        values = self.table[keys]
        missing = np.isnan(values)
        if missing.any():
            rows_missing = rows[missing]
            for k, i in zip(*np.unique(keys[missing], return_index=True), strict=True):
                self.table[k] = float(self.fn(tuple(rows_missing[i].tolist())))
            values = self.table[keys]
        return values


class POMDPVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of a ``POMDPEnv`` task, sampled together (see the module docstring).

    Args:
        env: the task (the arrays it holds now, its reward, termination and reset options); a private copy is
            kept.
        num_envs: the number of copies ``N``.
        max_episode_steps: truncate a copy's episode after this many steps (as ``gymnasium.wrappers.TimeLimit``);
            ``None``: never (the tasks' own episodes end only by termination, if at all).
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default) or ``AutoresetMode.DISABLED`` (or their values).

    Attributes: ``states`` int ``(N, num_factors)`` (the hidden states), ``elapsed_steps`` int ``(N,)``, and the
    task's sizes ``num_states``, ``num_obs``, ``num_controls``, ``control_factor``.
    """

    def __init__(self, env: POMDPEnv, num_envs: int, *, max_episode_steps: int | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP) -> None:
        if not isinstance(env, POMDPEnv):
            raise ParameterError(f"env must be an aif.envs.POMDPEnv task, got {type(env).__name__}")
        self.num_envs = check_integer(num_envs, "num_envs")
        self.max_episode_steps = check_integer(max_episode_steps, "max_episode_steps", optional=True)
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            mode = None
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED):
            raise ParameterError(f"autoreset_mode must be AutoresetMode.NEXT_STEP or DISABLED, got {autoreset_mode!r}")
        self.autoreset_mode = mode
        self.env = copy.deepcopy(env)  # its reset checks options["state"]; its generator is never ours
        self.num_states, self.num_obs = list(env.num_states), list(env.num_obs)
        self.num_controls, self.control_factor = list(env.num_controls), env.control_factor
        self.A_dependencies, self.B_dependencies = env.A_dependencies, env.B_dependencies
        self.metadata = {**env.metadata, "autoreset_mode": mode}
        self.single_observation_space = env.observation_space
        self.single_action_space = env.action_space
        self.observation_space = batch_space(env.observation_space, self.num_envs)
        self.action_space = batch_space(env.action_space, self.num_envs)
        # (*columns, K) cumulative sums: D (S_f,); B (*S_deps, U_f, S_f); A (*S_deps, O_m).
        F = len(self.num_states)
        self._cdf_D = [cdf_table(d) for d in env.D]
        self._next = _Draws([cdf_table(b) for b in env.B], env.B_dependencies, F)  # every factor's next state
        self._outcome = _Draws([cdf_table(a) for a in env.A], env.A_dependencies, F)  # every modality's outcome
        self._reward = _Lazy(lambda r: self.env.reward(r[:F], np.array(r[F:], dtype=np.int64)),
                             self.num_states + self.num_obs)
        self._terminal = _Lazy(lambda r: bool(self.env.terminal(r)), self.num_states)
        self.states = np.zeros((self.num_envs, F), dtype=np.int64)
        self.elapsed_steps = np.zeros(self.num_envs, dtype=np.int64)
        self._obs: np.ndarray | None = None
        self._ended = np.zeros(self.num_envs, dtype=bool)

    # --- sampling, for the copies ``idx`` (an index array, or a full slice) --------------------------------

    def _observe(self, states: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Outcomes ``(n, M)`` of hidden states ``(n, F)`` with uniforms ``(n, M)`` (``inverse_cdf`` per modality)."""
        return self._outcome(self._outcome.columns(states), u)

    def _transition(self, states: np.ndarray, actions: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Next states ``(n, F)``: each factor from ``B[f][:, parents, control]`` of the current states (control 0
        for the factors other than the controlled one)."""
        columns = self._next.columns(states)
        columns[:, self.control_factor] += actions  # the control is the last axis of B's columns: stride 1
        return self._next(columns, u)

    def _reset_copies(self, idx: np.ndarray, options: dict) -> None:
        n, F = len(idx), len(self.num_states)
        if "state" in options:
            _, info = self.env.reset(options=options)  # the task's checks of the option, and its hook
            states = np.broadcast_to(np.asarray(info["state"], dtype=np.int64), (n, F)).copy()
        else:
            u = self.np_random.random((n, F))
            states = np.stack([inverse_cdf(np.broadcast_to(c, (n, len(c))), u[:, f])
                               for f, c in enumerate(self._cdf_D)], -1)
            states = np.array([self.env._initial_state(tuple(s), options) for s in states.tolist()],
                              dtype=np.int64).reshape(n, F)
        self.states[idx] = states
        assert self._obs is not None
        self._obs[idx] = self._observe(states, self.np_random.random((n, len(self.num_obs))))
        self.elapsed_steps[idx] = 0
        self._ended[idx] = False

    # --- Gymnasium's vector API ---------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Reset every copy (or those of ``options["reset_mask"]``, a bool array ``(N,)``): initial states from
        ``D`` (or the task's reset options, the same for every copy) and their observations.

        Returns ``(obs, info)``: int64 ``(N, num_modalities)`` and ``{"state": (N, F), "_state": (N,) mask}``."""
        super().reset(seed=seed)
        if options is not None and not isinstance(options, dict):
            raise ParameterError(f"options must be a dict or None, got {options!r}")
        options = dict(options or {})
        if any(name in options for name in ("A", "B", "D")):
            raise ParameterError("POMDPVectorEnv samples the arrays its task holds when it is built: reset options "
                                 "'A', 'B', 'D' (arrays for one episode) are not supported; build a vector environment "
                                 "of a task with those arrays")
        mask = options.pop("reset_mask", None)
        if mask is None:
            idx = np.arange(self.num_envs)
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != bool or not mask.any():
                raise ParameterError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},) with at "
                                     f"least one true entry, got {options.get('reset_mask', mask)!r:.200}")
            if self._obs is None:
                raise CallOrderError("reset the whole vector environment before resetting some of its copies")
            idx = np.flatnonzero(mask)
        if self._obs is None:
            self._obs = np.zeros((self.num_envs, len(self.num_obs)), dtype=np.int64)
        self._reset_copies(idx, options)
        return self._obs.copy(), self._info()

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Step every copy with its action (int ``(N,)``, in the task's action space), autoresetting as
        ``metadata["autoreset_mode"]`` says.

        Returns ``(obs, rewards, terminations, truncations, info)``: int64 ``(N, M)``, float ``(N,)``, bool
        ``(N,)``, bool ``(N,)`` and ``{"state": (N, F), "_state": mask}``."""
        if self._obs is None:
            raise CallOrderError("call reset() before step()")
        a = as_numbers(actions, "actions", PolicyError, None)
        U = self.num_controls[self.control_factor]
        # (a negative integer read as unsigned is above every control: one comparison checks both ends)
        if a.shape != (self.num_envs,) or not np.issubdtype(a.dtype, np.integer) \
                or (a.astype(np.uint64, copy=False) >= U).any():
            raise PolicyError(f"actions must be {self.num_envs} integers in 0..{U - 1} (one per copy), got "
                              f"{actions!r:.200}")
        a = a.astype(np.int64, copy=False)
        N, F = self.num_envs, len(self.num_states)
        rewards, terminated, truncated = np.zeros(N), np.zeros(N, dtype=bool), np.zeros(N, dtype=bool)
        resetting = self._ended  # replaced below, not changed in place
        some_reset = bool(resetting.any())
        if some_reset and self.autoreset_mode == AutoresetMode.DISABLED:
            raise CallOrderError(f"copies {np.flatnonzero(resetting)[:10].tolist()} ended their episodes: reset them "
                                 "with reset(options={'reset_mask': mask}) before stepping (autoreset is disabled)")
        stepping = np.flatnonzero(~resetting) if some_reset else slice(None)
        states = self.states[stepping]
        if len(states):
            u = self.np_random.random((len(states), F + len(self.num_obs)))
            states = self._transition(states, a[stepping], u[:, :F])
            obs = self._observe(states, u[:, F:])
            self.states[stepping], self._obs[stepping] = states, obs
            rewards[stepping] = self._reward(np.concatenate([states, obs], -1))
            terminated[stepping] = self._terminal(states) > 0
            self.elapsed_steps[stepping] += 1
            if self.max_episode_steps is not None:
                truncated[stepping] = self.elapsed_steps[stepping] >= self.max_episode_steps
        if some_reset:
            self._reset_copies(np.flatnonzero(resetting), {})
        self._ended = terminated | truncated
        return self._obs.copy(), rewards, terminated, truncated, self._info()

    def _info(self) -> dict:
        return {"state": self.states.copy(), "_state": np.ones(self.num_envs, dtype=bool)}

    def __repr__(self) -> str:
        return f"POMDPVectorEnv({type(self.env).__name__}, num_envs={self.num_envs})"


__all__ = ["POMDPVectorEnv", "inverse_cdf", "cdf_table"]
