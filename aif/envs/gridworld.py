"""A grid world: walk from a start cell to a goal, around walls, with five actions.

Cells are numbered row by row, ``index = row * cols + col`` (as in pymdp 1.0's grid environments).
Actions: 0 up, 1 down, 2 left, 3 right, 4 stay; a move into a wall or off the grid leaves the agent where it
is, and with probability ``slip`` any move fails the same way.

Two variants share the class:

- one goal, no cue (the default): factor 0 location; modality 0 location. The agent's preferences are over
  locations.
- several candidate goals (drawn at reset), optionally with a cue cell that reveals which one holds this
  episode: factors [location, goal]; modalities [location, at-goal (0 no, 1 yes), and, with a cue,
  cue (0 nothing, 1 + g: the goal is number g)].
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from ..checks import check_cell, check_fraction, check_index, check_pair, check_real, check_sequence
from ..errors import ParameterError
from ..model import GenerativeModel
from .pomdp import POMDPEnv, unknown_transitions

Cell = tuple[int, int]  # (row, column)

_HOOKS = ("reward", "terminal", "_observe")  # POMDPEnv.step's calls that GridWorld.step's shortcut writes out
_2_TO_MINUS_53 = 1.0 / 9007199254740992.0  # NumPy's PCG64 uniform: (next 64 bits >> 11) * 2**-53

ACTION_NAMES = ("up", "down", "left", "right", "stay")
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1), (0, 0))

def grid_transitions(shape: Cell, walls: Sequence[Cell] = (), slip: float = 0.0,
                     moves: Sequence[Cell] = MOVES) -> np.ndarray:
    """Location transitions of a grid: ``B[next, prev, action]``, shape ``(rows*cols, rows*cols, len(moves))``.

    A move that would leave the grid or enter a wall keeps the agent in place; so does any move with
    probability ``slip``. Wall cells keep their own (unreachable) columns so that B stays a distribution.
    """
    rows, cols = shape = check_size(shape)
    slip = check_fraction(slip, "slip")
    n = rows * cols
    blocked = np.zeros(shape, dtype=bool)
    for r, c in check_cells(walls, shape, "walls"):
        blocked[r, c] = True
    B = np.zeros((n, n, len(moves)))
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            for u, (dr, dc) in enumerate(moves):
                rr, cc = r + dr, c + dc
                ok = 0 <= rr < rows and 0 <= cc < cols and not blocked[rr, cc] and not blocked[r, c]
                j = rr * cols + cc if ok else i
                B[j, i, u] += 1.0 - slip
                B[i, i, u] += slip
    return B


def check_size(shape: Any) -> Cell:
    """A grid's ``(rows, cols)``: two positive integers (``ParameterError``)."""
    rows, cols = check_pair(shape, "shape")
    if rows < 1 or cols < 1:
        raise ParameterError(f"shape must hold two positive sizes, got {tuple(shape)}")
    return rows, cols


def check_cells(cells: Any, shape: Cell, name: str) -> tuple[Cell, ...]:
    """A list of ``(row, col)`` cells inside a ``shape`` grid (``ParameterError`` naming ``name[i]``)."""
    return tuple(check_cell(check_pair(c, f"{name}[{i}]"), shape, f"{name}[{i}]")
                 for i, c in enumerate(check_sequence(cells, name, ParameterError)))


class GridCells:
    """Locations of a ``shape`` grid numbered row by row."""

    shape: tuple

    def _grid(self, shape, start):
        """Set ``shape`` (two positive sizes) and the ``start`` cell, checked."""
        self.shape = check_size(shape)
        self.start = check_cell(check_pair(start, "start"), self.shape, "start")

    def index(self, cell):
        """Location index of a ``(row, col)`` cell."""
        return cell[0] * self.shape[1] + cell[1]

    def cell(self, index):
        """``(row, col)`` of a location index."""
        return divmod(int(index), self.shape[1])


class GridWorld(GridCells, POMDPEnv):
    """A grid world as a Gymnasium environment.

    Args:
        shape: ``(rows, cols)``.
        start: the start cell ``(row, col)``.
        goals: candidate goal cells; one goal (default: the bottom-right corner) or several, of which
            ``reset`` draws one uniformly (or takes ``options={"goal": g}``).
        walls: cells the agent cannot enter.
        cue_location: with several goals, the cell where a cue shows which goal holds (``None``: no cue).
        slip: probability that a move fails and the agent stays.
        terminate_at_goal: whether reaching the goal ends the episode.

    Observation: ``MultiDiscrete(num_obs)`` (see the module docstring). Action: ``Discrete(5)``.
    Reward: +1 on arriving at (or staying on) the goal.
    """

    def __init__(self, shape: Cell = (7, 7), start: Cell = (0, 0), goals: Sequence[Cell] | None = None,
                 walls: Sequence[Cell] = (), cue_location: Cell | None = None, slip: float = 0.0,
                 terminate_at_goal: bool = True) -> None:
        self._grid(shape, start)
        self.walls = check_cells(walls, self.shape, "walls")
        goals = [(self.shape[0] - 1, self.shape[1] - 1)] if goals is None else goals
        self.goals = check_cells(goals, self.shape, "goals")
        self._goal_cells = [self.index(g) for g in self.goals]  # read at every step by reward and terminal
        if not self.goals:
            raise ParameterError("goals must hold at least one cell")
        self.cue_location = None if cue_location is None else check_cells([cue_location], self.shape, "cue_location")[0]
        for name, cell in [("start", self.start), ("cue_location", self.cue_location)] + \
                [(f"goals[{i}]", g) for i, g in enumerate(self.goals)]:
            if cell in self.walls:
                raise ParameterError(f"{name} = {cell} is a wall")
        self.slip = check_fraction(slip, "slip", "[0, 1)")
        self.terminate_at_goal = bool(terminate_at_goal)
        self.cued = len(self.goals) > 1 or self.cue_location is not None
        super().__init__(*self._arrays(), control_factor=0)
        # ``step``'s shortcut: one goal (the location alone, seen as it is) and this class's own sampling and reward
        self._plain = not self.cued and all(getattr(type(self), name) is getattr(GridWorld, name) for name in _HOOKS)
        self._walk = self._plain  # and, from each reset, none of them replaced on the instance (``_initial_state``)
        # (the shortcut reads the cell as the observation without A, which cannot change in place: POMDPEnv's arrays
        # are read-only)

    def _arrays(self, slip: float | None = None) -> tuple[list, list, list]:
        n = self.shape[0] * self.shape[1]
        B_loc = grid_transitions(self.shape, self.walls, self.slip if slip is None else slip)
        D_loc = np.eye(n)[self.index(self.start)]
        if not self.cued:
            return [np.eye(n)], [B_loc], [D_loc]
        G = len(self.goals)
        goal_idx = [self.index(g) for g in self.goals]
        A_loc = np.broadcast_to(np.eye(n)[:, :, None], (n, n, G)).copy()
        A_at = np.zeros((2, n, G))
        A_at[0] = 1.0
        A_at[0, goal_idx, range(G)] = 0.0
        A_at[1, goal_idx, range(G)] = 1.0
        A = [A_loc, A_at]
        if self.cue_location is not None:
            A_cue = np.zeros((1 + G, n, G))
            A_cue[0] = 1.0
            cue = self.index(self.cue_location)
            A_cue[0, cue, :] = 0.0
            A_cue[1 + np.arange(G), cue, np.arange(G)] = 1.0
            A.append(A_cue)
        return A, [B_loc, np.eye(G)[:, :, None]], [D_loc, np.full(G, 1.0 / G)]

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        """``POMDPEnv.step``: the same draws and results to the bit, in fewer Python operations for the grid with
        one goal (its step is part of every agent-environment loop we time, benchmarks/bench_loop.py)."""
        if not (self._walk and type(action) is int and 0 <= action < 5 and self._cdfs is self._built[3]
                and self.state is not None and self.render_mode != "human"):
            return super().step(action)  # and anything unusual: another goal, None, arrays given to reset
        bits = self.np_random.bit_generator
        if type(bits) is np.random.PCG64:  # Gymnasium's generator: its uniforms from its raw 64-bit draws
            raw = bits.random_raw
            u = (raw() >> 11) * _2_TO_MINUS_53  # Generator.random() for PCG64, to the bit, at half the cost
            raw()  # the observation's draw: A is the identity, so the observation is the new cell whatever it is
        else:
            uniform = self.np_random.random
            u = uniform()  # POMDPEnv.step's draws, one by one (the same numbers as random(2))
            uniform()  # the observation's draw (as above)
        cell = bisect_right(self._cdfs[1][0][(self.state[0], action)], u)
        self.state = (cell,)
        self.obs = obs = np.empty(1, np.int64)
        obs[0] = cell
        at_goal = cell == self._goal_cells[0]
        return obs, 1.0 if at_goal else 0.0, self.terminate_at_goal and at_goal, False, {"state": self.state}

    def _initial_state(self, state, options):
        # (read at each reset rather than at each step: looking into the instance's __dict__ there slows every
        # attribute access of the environment by a fifth, measured on the T-maze)
        self._walk = self._plain and all(getattr(getattr(self, name), "__func__", None) is getattr(GridWorld, name)
                                         for name in _HOOKS)
        if "goal" in options:
            g = check_index(options["goal"], "options['goal']", len(self.goals))
            state = (state[0], g) if self.cued else state
        return state

    @property
    def goal(self):
        """The goal cell of the current episode."""
        if not self.cued:
            return self.goals[0]
        return None if self.state is None else self.goals[self.state[1]]

    def location(self, obs: Any) -> Cell:
        """``(row, col)`` from an observation vector."""
        return self.cell(obs[0])

    def _at_goal(self, state):
        return state[0] == self._goal_cells[state[1] if self.cued else 0]

    def reward(self, state: Any, obs: Any) -> float:
        return 1.0 if self._at_goal(state) else 0.0

    def terminal(self, state: Any) -> bool:
        return self.terminate_at_goal and self._at_goal(state)

    def reward_tables(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """``POMDPEnv.reward_tables``: 1 at the goal of the episode, which ends there with ``terminate_at_goal``."""
        states = np.array(np.unravel_index(np.arange(int(np.prod(self.num_states))), self.num_states)).T
        at_goal = np.array([self._at_goal(tuple(s.tolist())) for s in states])
        _, outcome_reward, _ = super().reward_tables()
        return at_goal.astype(float), outcome_reward, at_goal & self.terminate_at_goal

    def distances(self, goal: Cell | None = None) -> np.ndarray:
        """Shortest-path step counts from every cell to ``goal`` (default: the first goal), shape ``(rows*cols,)``.

        Unreachable cells (walls, enclosed cells) get the largest finite distance plus one.
        """
        goal = self.goals[0] if goal is None else check_cells([goal], self.shape, "goal")[0]
        B = grid_transitions(self.shape, self.walls, 0.0)
        # reached[next, prev]: an edge next -> prev in this graph is a move prev -> next in the grid, so the
        # distances from the goal here are the step counts to the goal there.
        reached = csr_matrix((B.sum(axis=2) > 0).astype(float))
        d = shortest_path(reached, directed=True, unweighted=True, indices=self.index(goal))
        finite = np.isfinite(d)
        d[~finite] = d[finite].max() + 1
        return d

    def generative_model(self, preference: str = "distance", goal_preference: float = 4.0,
                         distance_scale: float = 1.0, slip: float | None = None, learn_B: bool = False,
                         prior_count: float = 1.0, start: str = "start") -> GenerativeModel:
        """The model an agent needs here.

        Args:
            preference: one goal only. ``"distance"``: ``C[0][s] = -distance_scale * steps from s to the
                goal`` (a one-step planner walks the shortest path); ``"goal"``: ``C[0][goal] =
                goal_preference`` and zero elsewhere (the planning horizon must reach the goal). With several
                goals, ``C[1] = [0, goal_preference]`` on the at-goal modality whatever this says.
            slip: the agent's belief about the slip probability (the environment's when ``None``).
            learn_B: ``pB[0]`` uniform with ``prior_count`` per entry, so ``B[0]`` is uniform; other factors
                known.
            prior_count: the Dirichlet count of an unknown entry.
            start: the agent's prior over its first cell, ``D[0]``: ``"start"`` puts all of it on the
                environment's start cell (as pymdp's grid-world demos do); ``"uniform"`` spreads it over every
                cell, for episodes that begin elsewhere (``reset(options={"state": ...})``): with ``"start"`` an
                agent placed on another cell sees an outcome its prior calls impossible.

        Returns:
            ``GenerativeModel`` with ``D`` as ``start`` says and, with several goals, a uniform goal prior.
        """
        A, B, D = self._arrays(None if slip is None else check_fraction(slip, "slip", "[0, 1)"))
        goal_preference, distance_scale = check_real(goal_preference, "goal_preference"), check_real(
            distance_scale, "distance_scale")
        if self.cued:
            C = [np.zeros(a.shape[0]) for a in A]
            C[1] = np.array([0.0, goal_preference])
        elif preference == "distance":
            C = [-distance_scale * self.distances()]
        elif preference == "goal":
            C = [np.zeros(A[0].shape[0])]
            C[0][self.index(self.goals[0])] = goal_preference
        else:
            raise ParameterError(f"preference must be 'distance' or 'goal', got {preference!r}")
        if start == "uniform":
            D = [np.full(D[0].size, 1.0 / D[0].size), *D[1:]]
        elif start != "start":
            raise ParameterError(f"start must be 'start' or 'uniform', got {start!r}")
        return GenerativeModel(A, B, C, D, pB=unknown_transitions(B, prior_count) if learn_B else None)
