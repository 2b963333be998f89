"""A Gymnasium environment driven by categorical arrays: the generative process of a discrete POMDP.

The true world of each task (T-maze, grid world, cue chaining) is written as the same kind of arrays an
agent's generative model holds: ``D`` (initial states), ``B`` (transitions), ``A`` (observations). This
module samples from them. Each task subclass builds its arrays, names its actions, and says what the reward
and the end of an episode are. The arrays' shapes are the model's (``aif.model``).

Observations are ``np.ndarray`` of shape ``(num_modalities,)`` (space ``MultiDiscrete(num_obs)``); the
action is one integer for the single controllable factor (space ``Discrete(U_f)``).

What pymdp 1.0's ``PymdpEnv`` offers, in Gymnasium's terms:

- ``reset(options={"A": ..., "B": ..., "D": ...})`` (any subset) runs the episode on other arrays of the same
  shapes, as pymdp's ``env_params``; the next reset without them returns to the arrays the environment was built
  with.
- ``step(None)`` keeps the hidden state and draws a new observation of it, as pymdp's ``step(key, state, None)``.
- ``render_mode="rgb_array"`` or ``"human"`` (matplotlib) in a subclass that draws itself (``draw(ax)``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike

from ..checks import as_numbers, check_index, check_positive, check_sequence
from ..errors import CallOrderError, ModelError, ParameterError, PolicyError
from ..model import GenerativeModel

if TYPE_CHECKING:
    from matplotlib.axes import Axes

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


class _Columns(dict):
    """The cumulative distribution of each column of one array, made on first use: ``columns[(i, j, ...)]`` is the
    CDF of ``array[:, i, j, ...]`` as a Python list, its last entry infinity (rounding must not leave a uniform
    number above it), for inverse-CDF sampling with ``bisect`` and one uniform number per draw.

    One uniform per draw (rather than ``Generator.choice``) makes the random stream the same whatever the
    distributions are, so two agents that act alike see identical worlds. A list searched with ``bisect``, found
    by a dictionary lookup, is several times faster than a NumPy call for the few outcomes of a column, and the
    environment's step is part of every agent-environment loop we time.
    """

    def __init__(self, array: np.ndarray) -> None:
        super().__init__()
        self.array = array

    def __missing__(self, column: tuple) -> list:
        c = np.cumsum(self.array[(slice(None), *column)])
        c[-1] = np.inf
        cdf = self[column] = c.tolist()
        return cdf


def _tables(A, B, D) -> tuple[list, list, list]:
    """``_Columns`` of every array of the process."""
    return tuple([_Columns(x) for x in arrays] for arrays in (A, B, D))  # type: ignore[return-value]


PROCESS_ARRAYS = ("A", "B", "D")  # the reset options that replace the environment's arrays for an episode


class POMDPEnv(gym.Env):
    """Base class: samples states from ``D`` and ``B`` and observations from ``A``.

    Args:
        A, B, D: the generative process, shaped as in ``aif.model``. Columns must sum to one.
        A_dependencies, B_dependencies: as in ``aif.GenerativeModel`` (all factors / ``[f]`` by default).
        control_factor: the factor the agent's action moves; the other factors have one control.
        render_mode: ``None``, or one of ``metadata["render_modes"]`` (``"rgb_array"``: ``render()`` returns an
            image ``(H, W, 3)`` of ``uint8``; ``"human"``: a matplotlib window, redrawn at every reset and step).
            Only subclasses that implement ``draw`` list render modes.

    Subclasses override ``reward(state, obs)`` and ``terminal(state)``; the default is no reward and no end.
    The arrays are read once per column and cached, so they are read-only, as a model's (give other arrays to
    ``reset`` for an episode). ``reward_tables`` gives the reward and end as tables, for compiled episodes.
    ``info`` carries the hidden state as ``info["state"]`` (a tuple of ints, one per factor).
    """

    metadata: dict[str, Any] = {"render_modes": []}
    figure_size = (4.0, 4.0)  # inches, for rendering

    def __init__(self, A: Sequence[ArrayLike], B: Sequence[ArrayLike], D: Sequence[ArrayLike],
                 A_dependencies: Sequence[Sequence[int]] | None = None,
                 B_dependencies: Sequence[Sequence[int]] | None = None, control_factor: int = 0,
                 render_mode: str | None = None) -> None:
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
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            modes = self.metadata["render_modes"]
            raise ParameterError(f"render_mode must be None{''.join(f' or {m!r}' for m in modes)} for "
                                 f"{type(self).__name__}, got {render_mode!r}")
        self.render_mode = render_mode
        self.observation_space = gym.spaces.MultiDiscrete(self.num_obs)
        self._num_actions = self.num_controls[self.control_factor]
        self.action_space = gym.spaces.Discrete(self._num_actions)
        self.state: Any = None
        self.obs: np.ndarray | None = None  # the last observation, for rendering
        # Column CDFs of A, B and D, filled on first use. The built arrays keep theirs across episodes; arrays given
        # to reset get fresh tables for their episode.
        self._cdfs = _tables(self.A, self.B, self.D)
        self._built = (self.A, self.B, self.D, self._cdfs)
        # The factors each modality reads (None: all, in order, so the column is the state itself), and whether
        # each factor's transition reads that factor alone (its column is (s_f, u_f)).
        everything = list(range(len(self.D)))
        self._reads = [None if deps == everything else tuple(deps) for deps in self.A_dependencies]
        self._alone = [deps == [f] for f, deps in enumerate(self.B_dependencies)]
        self._window: Any = None  # the matplotlib figure of render_mode "human"

    def __setstate__(self, state: dict) -> None:
        """A copy (``copy.deepcopy``, pickle) keeps the process's arrays read-only, as a model's are (NumPy's copies
        are writable): the column tables are made from them once."""
        self.__dict__.update(state)
        for arrays in (*self._built[:3], self.A, self.B, self.D):
            for x in arrays:
                x.setflags(write=False)

    # The task-specific parts.
    def reward(self, state: Any, obs: Any) -> float:
        """Scalar reward for arriving in ``state`` and seeing ``obs``."""
        return 0.0

    def terminal(self, state: Any) -> bool:
        """Whether the episode ends in ``state``."""
        return False

    def reward_tables(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """``reward`` and ``terminal`` as tables, for loops that step the process without calling them (a compiled
        episode of ``aif.rollout``, ``aif.fast.run_episode``).

        Returns:
            ``(state_reward, outcome_reward, ends)``: ``state_reward`` ``(prod(num_states),)``, one
            ``(num_obs[m],)`` array per modality in ``outcome_reward``, and ``ends`` ``(prod(num_states),)`` bool,
            such that ``reward(s, o) == state_reward[j] + outcome_reward[0][o_0] + outcome_reward[1][o_1] + ...``
            (summed in that order, to the bit) and ``terminal(s) == ends[j]``, ``j`` the joint index of ``s`` (the
            first factor slowest, ``np.ravel_multi_index``).

        A compiled episode reads the tables only where the class that defines ``reward_tables`` is the one that
        defines ``reward`` and ``terminal`` or a subclass of it: a subclass that changes ``reward`` or ``terminal``
        is stepped by its methods unless it defines ``reward_tables`` too.
        """
        J = int(np.prod(self.num_states))
        return np.zeros(J), [np.zeros(n) for n in self.num_obs], np.zeros(J, dtype=bool)

    def _outcome_rewards(self, modality: int, rewards: dict[int, float]) -> tuple[np.ndarray, list, np.ndarray]:
        """``reward_tables`` of a task rewarded by one modality's outcome alone (``rewards``: outcome -> reward,
        0 for the others), which never ends."""
        state_reward, outcome_reward, ends = POMDPEnv.reward_tables(self)
        for o, r in rewards.items():
            outcome_reward[modality][o] = r
        return state_reward, outcome_reward, ends

    def draw(self, ax: Axes) -> None:
        """Draw the current state (and ``self.obs``) on the matplotlib axes ``ax``: the hook that rendering
        calls. Subclasses that implement it list ``"rgb_array"`` and ``"human"`` in ``metadata["render_modes"]``."""
        raise NotImplementedError(f"{type(self).__name__} does not draw itself")

    # The sampling, shared by every task.
    def _observe(self, u):
        """One outcome per modality, drawn from ``A`` at the current state with the uniforms ``u``."""
        s = self.state
        return np.array([bisect_right(columns[s if reads is None else tuple([s[f] for f in reads])], u_m)
                         for columns, reads, u_m in zip(self._cdfs[0], self._reads, u, strict=True)], dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[list, dict]:
        """Start an episode.

        ``options`` (all optional): ``"state"``: ``(s_0, s_1, ...)`` fixes the initial hidden state;
        ``"A"``, ``"B"``, ``"D"``: lists of arrays with the shapes of the environment's, used for this episode
        (pymdp 1.0's ``env_params``; validated as a model's arrays, ``ModelError``). ``"state"`` takes precedence
        over ``D``. Subclasses name parts of the state (a reward condition, a goal) with their own keys.
        """
        super().reset(seed=seed)
        options = {} if options is None else options
        if not isinstance(options, dict):
            raise ParameterError(f"options must be a dict or None, got {options!r}")
        state = None
        if "state" in options:
            s = as_numbers(options["state"], "options['state']", ParameterError, None)
            state = tuple(int(x) for x in s.ravel()) if np.issubdtype(s.dtype, np.integer) and s.ndim == 1 else ()
            if len(state) != len(self.D) or any(not 0 <= s < n for s, n in zip(state, self.num_states, strict=True)):
                raise ParameterError(f"options['state'] = {state} is not a state of factors with sizes "
                                     f"{self.num_states}")
        self._use_arrays(options)
        if state is None:
            u = self.np_random.random(len(self.D)).tolist()
            state = tuple(bisect_right(columns[()], u_f) for columns, u_f in zip(self._cdfs[2], u, strict=True))
        self.state = self._initial_state(state, options)
        self.obs = obs = self._observe(self.np_random.random(len(self.A)).tolist())
        if self.render_mode == "human":
            self.render()
        return obs, {"state": self.state}

    def _use_arrays(self, options):
        """Set ``A``, ``B``, ``D`` for the episode: those in ``options``, the built ones for the others."""
        A, B, D, cdfs = self._built
        if not any(name in options for name in PROCESS_ARRAYS):
            self.A, self.B, self.D, self._cdfs = A, B, D, cdfs
            return
        given = {name: check_sequence(options[name], f"options[{name!r}]", ModelError)
                 for name in PROCESS_ARRAYS if name in options}
        try:
            model = GenerativeModel(given.get("A", A), given.get("B", B), D=given.get("D", D),
                                    A_dependencies=self.A_dependencies, B_dependencies=self.B_dependencies)
        except ModelError as e:
            raise ModelError(f"reset options {sorted(given)}: {e}") from None
        for name, built in (("A", A), ("B", B), ("D", D)):
            new = getattr(model, name)
            if len(new) != len(built) or any(x.shape != y.shape for x, y in zip(new, built, strict=False)):
                raise ModelError(f"options[{name!r}] has shapes {[x.shape for x in new]}, but this environment's "
                                 f"{name} has {[y.shape for y in built]} (its spaces are fixed when it is built)")
        self.A, self.B, self.D, self._cdfs = model.A, model.B, model.D, _tables(model.A, model.B, model.D)

    def _initial_state(self, state, options):
        """Hook for tasks whose reset options name parts of the state (a reward condition, a goal)."""
        return state

    def step(self, action: Any) -> tuple[list, float, bool, bool, dict]:
        """Move the hidden state with ``B`` under ``action`` and observe it through ``A``.

        ``action``: an integer of the action space, or ``None`` for a no-op: the hidden state stays as it is and
        only a new observation is drawn (pymdp 1.0's ``step(key, state, None)``). In an environment where no factor
        has a choice, ``step(0)`` lets time pass under ``B``.
        """
        if self.state is None:
            raise CallOrderError("call reset() before step()")
        F = len(self.B)
        u = self.np_random.random(F + len(self.A)).tolist()
        if action is not None:
            if not (isinstance(action, (int, np.integer)) and 0 <= action < self._num_actions):
                raise PolicyError(f"action {action!r} is not in the action space {self.action_space} (or None: "
                                  "a new observation of the same state)")
            s, acting, action = self.state, self.control_factor, int(action)
            self.state = tuple([  # s_f' from B_f[:, s_deps, u_f]; u_f is the action on the control factor, else 0
                bisect_right(columns[(s[f], action if f == acting else 0) if alone else
                                     (*[s[g] for g in deps], action if f == acting else 0)], u_f)
                for f, columns, alone, deps, u_f in zip(range(F), self._cdfs[1], self._alone, self.B_dependencies,
                                                         u, strict=False)])  # u: F draws, then the observations
        self.obs = obs = self._observe(u[F:])
        if self.render_mode == "human":
            self.render()
        return obs, float(self.reward(self.state, obs)), bool(self.terminal(self.state)), False, {"state": self.state}

    def render(self) -> np.ndarray | None:
        """The current state drawn by ``draw``: an RGB image ``(H, W, 3)`` of ``uint8`` (``"rgb_array"``), or
        shown in a matplotlib window (``"human"``, returns ``None``). Without a render mode, ``None``."""
        if self.render_mode is None:
            gym.logger.warn(f"{type(self).__name__}.render() was called without a render_mode; pass "
                            "render_mode='rgb_array' or 'human' when building the environment")
            return None
        if self.state is None:
            raise CallOrderError("call reset() before render()")
        if self.render_mode == "rgb_array":
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            # A bare Figure on the Agg canvas: nothing is registered with pyplot, no GUI backend is touched.
            fig = Figure(figsize=self.figure_size, layout="constrained")
            canvas = FigureCanvasAgg(fig)
            self.draw(fig.add_subplot())
            canvas.draw()
            return np.asarray(canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)
        import matplotlib.pyplot as plt

        if self._window is None or not plt.fignum_exists(self._window.number):
            self._window = plt.figure(figsize=self.figure_size, layout="constrained")
        self._window.clf()
        self.draw(self._window.add_subplot())
        plt.pause(1.0 / self.metadata.get("render_fps", 4))
        return None

    def close(self) -> None:
        """Close the window of render mode ``"human"``."""
        if self._window is not None:
            import matplotlib.pyplot as plt

            plt.close(self._window)
            self._window = None
