"""pymdp 1.0's generalized T-maze (``pymdp.envs.generalized_tmaze.GeneralizedTMazeEnv``): a grid holding several
cue-reward sets, each a cue cell and a pair of candidate reward cells.

The layout is a matrix of codes, pymdp's: 0 a free cell, 1 the start, 2 a wall, and for set ``i = 0, 1, ...``
``3 + 3i`` its cue, ``4 + 3i`` its first and ``5 + 3i`` its second reward cell (``maze_matrix`` gives pymdp's
two layouts). With ``n = rows * cols`` cells numbered row by row and ``K`` sets:

- factor 0, position (``n``): actions 0 up, 1 down, 2 left, 3 right (a move off the grid or into a wall
  stays), 4 stay.
- factor ``1 + i``, set ``i``'s reward location (2): 0 the first cell is rewarded (the second punishes),
  1 the reverse. It never changes.
- modality 0, position (``n``); modality ``1 + i``, set ``i``'s cue (3): 0 nothing, except at its cue cell
  ``1 + reward location``; modality ``1 + K + i``, set ``i``'s outcome (3): 0 nothing, 1 reward, 2 punishment,
  at its two reward cells. ``A_dependencies = [[0], [0, 1], ..., [0, K], [0, 1], ..., [0, K]]``.

As in pymdp's demo, the last set is the true one (the agent prefers only its outcomes; the others are
distractors): the Gymnasium reward is +1 for its reward and -1 for its punishment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ..checks import as_numbers, check_real
from ..errors import ParameterError
from ..model import GenerativeModel
from .gridworld import grid_transitions
from .pomdp import POMDPEnv

if TYPE_CHECKING:
    from matplotlib.axes import Axes

FREE, START, WALL = range(3)
ACTION_NAMES = ("up", "down", "left", "right", "stay")


def maze_matrix(small: bool = False) -> np.ndarray:
    """pymdp's two layouts (``get_maze_matrix``): 5x5 with three sets, or with ``small`` 3x3 with two."""
    if small:
        M = np.zeros((3, 3))
        M[0, 0], M[1, 0], M[1, 2], M[0, 2] = 4, 5, 7, 8  # reward cells of sets 0 and 1
        M[2, 0], M[2, 2] = 3, 6  # their cues
        M[2, 1] = START
        return M
    M = np.zeros((5, 5))
    M[0, 0], M[1, 0], M[1, 4], M[0, 4], M[4, 1], M[4, 3] = 4, 5, 7, 8, 10, 11
    M[2, 1], M[2, 3], M[3, 2] = 3, 6, 9
    M[2, 2] = START
    return M


def _the_cell(M: np.ndarray, code: int, what: str) -> tuple[int, int]:
    cells = np.argwhere(M == code)
    if len(cells) != 1:
        raise ParameterError(f"maze must hold exactly one cell with code {code} ({what}), found {len(cells)}")
    return int(cells[0, 0]), int(cells[0, 1])


class GeneralizedTMaze(POMDPEnv):
    """The generalized T-maze as a Gymnasium environment.

    Args:
        maze: the layout, a 2-D array of integer codes (see the module docstring); ``maze_matrix()`` by default.
        reward_locations: per set, which of its two cells holds the reward (0 or 1): ``D[1 + i]`` is one-hot on
            it, as pymdp's ``parse_maze`` draws them once from its key. ``None``: each uniform, drawn at each
            reset. ``reset(options={"reward_locations": [...]})`` fixes them for one episode.
        render_mode: ``None``, ``"rgb_array"`` or ``"human"``.

    Observation ``MultiDiscrete([n, 3, ..., 3])``; action ``Discrete(5)``.

    Walls: pymdp lets an agent placed in a wall cell walk out of it; here a wall cell keeps it
    (``grid_transitions``). Both are unreachable, so only the columns of ``B[0]`` for wall cells differ; pymdp's
    layouts have no walls.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 2}
    figure_size = (5.0, 5.0)

    def __init__(self, maze: ArrayLike | None = None, reward_locations: Sequence[int] | None = None,
                 render_mode: str | None = None) -> None:
        M = maze_matrix() if maze is None else as_numbers(maze, "maze", ParameterError)
        if M.ndim != 2 or M.size == 0 or not np.all(M == np.round(M)) or (M < 0).any():
            raise ParameterError(f"maze must be a non-empty 2-D array of non-negative integer codes, got {maze!r:.200}")
        self.maze = M.astype(int)
        self.num_sets = K = (int(self.maze.max()) - 2) // 3
        if K < 1 or self.maze.max() > 2 + 3 * K:
            raise ParameterError(f"maze must hold complete cue-reward sets (codes 3 + 3i, 4 + 3i, 5 + 3i), got codes "
                                 f"{sorted(set(self.maze.ravel().tolist()))}")
        self.start = _the_cell(self.maze, START, "the start")
        self.cues = tuple(_the_cell(self.maze, 3 + 3 * i, f"set {i}'s cue") for i in range(K))
        self.reward_cells = tuple((_the_cell(self.maze, 4 + 3 * i, f"set {i}'s first reward cell"),
                                   _the_cell(self.maze, 5 + 3 * i, f"set {i}'s second reward cell")) for i in range(K))
        self.walls = tuple((int(r), int(c)) for r, c in np.argwhere(self.maze == WALL))
        self.reward_locations = None if reward_locations is None else self._locations(reward_locations,
                                                                                       "reward_locations")
        super().__init__(*self._arrays(), control_factor=0, render_mode=render_mode)

    def _locations(self, x: Any, name: str) -> tuple[int, ...]:
        a = as_numbers(x, name, ParameterError, None)
        if a.shape != (self.num_sets,) or not np.isin(a, (0, 1)).all():
            raise ParameterError(f"{name} must hold one 0 or 1 per cue-reward set ({self.num_sets}), got {x!r}")
        return tuple(int(v) for v in a)

    def index(self, cell: tuple[int, int]) -> int:
        """Position index of a ``(row, col)`` cell."""
        return cell[0] * self.maze.shape[1] + cell[1]

    def _arrays(self) -> tuple[list, list, list, list, list]:
        n, K = self.maze.size, self.num_sets
        cue_lik, reward_lik = [], []
        for cue, (first, second) in zip(self.cues, self.reward_cells, strict=True):
            A_cue = np.zeros((3, n, 2))  # (cue outcome, position, reward location)
            A_cue[0] = 1.0
            A_cue[:, self.index(cue)] = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
            A_rew = np.zeros((3, n, 2))  # (nothing / reward / punishment, position, reward location)
            A_rew[0] = 1.0
            A_rew[:, self.index(first)] = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
            A_rew[:, self.index(second)] = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
            cue_lik.append(A_cue)
            reward_lik.append(A_rew)
        A = [np.eye(n), *cue_lik, *reward_lik]
        A_dependencies = [[0]] + [[0, 1 + i] for i in range(K)] * 2
        B = [grid_transitions(self.maze.shape, self.walls)] + [np.eye(2)[:, :, None] for _ in range(K)]
        locations = self.reward_locations
        D = [np.eye(n)[self.index(self.start)]] + [np.full(2, 0.5) if locations is None else np.eye(2)[locations[i]]
                                                  for i in range(K)]
        return A, B, D, A_dependencies, [[f] for f in range(1 + K)]

    def _initial_state(self, state, options):
        if "reward_locations" in options:
            state = (state[0], *self._locations(options["reward_locations"], "options['reward_locations']"))
        return state

    def reward(self, state: Any, obs: Any) -> float:
        return (0.0, 1.0, -1.0)[int(obs[-1])]

    def reward_tables(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """``POMDPEnv.reward_tables``: the last modality's reward and punishment."""
        return self._outcome_rewards(len(self.A) - 1, {1: 1.0, 2: -1.0})

    def generative_model(self, reward_preference: float = 1.0, punishment_preference: float = -3.0
                         ) -> GenerativeModel:
        """The agent of pymdp's demo (``examples/envs/generalized_tmaze_demo.ipynb``): the true A and B,
        preferences only over the last set's outcome, ``C[-1] = [0, reward_preference, punishment_preference]``
        (its ``[0, 1, -3]``), and a uniform ``D`` over every factor, the position too. The demo's agent has
        ``policy_len=5, gamma=4``, stochastic selection from the full posterior."""
        C = [np.zeros(a.shape[0]) for a in self.A]
        C[-1] = np.array([0.0, check_real(reward_preference, "reward_preference"),
                          check_real(punishment_preference, "punishment_preference")])
        D = [np.full(n, 1.0 / n) for n in self.num_states]
        return GenerativeModel([a.copy() for a in self.A], [b.copy() for b in self.B], C, D,
                               A_dependencies=self.A_dependencies, B_dependencies=self.B_dependencies)

    def draw(self, ax: Axes) -> None:
        """The grid (walls dark), each set's cue (x) and reward cells in the set's colour, the true set's reward
        (red dot) and punishment (blue dot) cells, and the agent (green square)."""
        rows, cols = self.maze.shape
        ax.imshow(self.maze == WALL, cmap="gray_r", vmin=0, vmax=1.5)
        colours = [f"C{i % 10}" for i in range(self.num_sets)]
        for i, (cue, cells) in enumerate(zip(self.cues, self.reward_cells, strict=True)):
            for r, c in (cue, *cells):
                ax.scatter(c, r, s=400, color=colours[i], alpha=0.4)
            ax.scatter(cue[1], cue[0], s=60, color="black", marker="x")
        rewarded = self.reward_cells[-1][self.state[-1]]
        punished = self.reward_cells[-1][1 - self.state[-1]]
        ax.scatter(rewarded[1], rewarded[0], s=90, color="red", label="reward")
        ax.scatter(punished[1], punished[0], s=90, color="blue", label="punishment")
        r, c = divmod(int(self.state[0]), cols)
        ax.scatter(c, r, s=150, color="tab:green", marker="s", label="agent")
        ax.set_xticks(np.arange(-0.5, cols), minor=True)
        ax.set_yticks(np.arange(-0.5, rows), minor=True)
        ax.grid(which="minor", color="lightgrey")
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=8, frameon=False)
        ax.set_title(f"generalized T-maze: {self.num_sets} sets, the last one true", fontsize=9)


__all__ = ["GeneralizedTMaze", "maze_matrix", "ACTION_NAMES"]
