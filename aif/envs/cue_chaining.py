"""Cue chaining (epistemic chaining): a first cue tells where the second cue is; the second tells where the
reward is.

Same task, layout, indices and defaults as pymdp 1.0's ``pymdp.envs.cue_chaining.CueChainingEnv`` (a port of
the legacy demo), so the two can be run side by side:

- factor 0, location: ``rows * cols`` cells, ``index = row * cols + col``; actions 0 up, 1 down, 2 left,
  3 right, 4 stay (moves off the grid keep the agent in place).
- factor 1, cue-2 state (``len(cue2_locations)``): which second-cue cell is informative. Never changes.
- factor 2, reward condition (2): which reward cell holds the cheese (the other holds a shock).
- modality 0, location: the location.
- modality 1, cue 1 (1 + cue-2 states): null except at ``cue1_location``, where it names the cue-2 state.
- modality 2, cue 2 (1 + 2): null except at the active cue-2 cell, where it names the reward condition.
- modality 3, reward (3): null, cheese, shock; not null only at the two reward cells.

``A_dependencies = [[0], [0, 1], [0, 1, 2], [0, 2]]``: each modality reads only the factors it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..checks import check_cell, check_index, check_pair, check_real
from ..errors import ParameterError
from ..model import GenerativeModel
from .gridworld import ACTION_NAMES, Cell, GridCells, check_cells, grid_transitions
from .pomdp import POMDPEnv, unknown_transitions

NULL, CHEESE, SHOCK = range(3)
REWARD_OBS_NAMES = ("null", "cheese", "shock")


class CueChaining(GridCells, POMDPEnv):
    """Cue chaining as a Gymnasium environment.

    Args:
        shape: grid ``(rows, cols)``.
        start: start cell.
        cue1_location: cell of the first cue.
        cue2_locations: candidate cells of the second cue; the cue-2 state says which one is informative.
        reward_locations: the two cells where the reward (cheese) or the punishment (shock) is.

    ``reset(options={"cue2_state": k, "reward_condition": r})`` fixes the hidden context, otherwise each is
    drawn uniformly. Observation: ``MultiDiscrete([rows*cols, 1 + n_cue2, 3, 3])``; action: ``Discrete(5)``;
    reward: +1 cheese, -1 shock. Episodes do not end by themselves (as in pymdp's rollout).
    """

    def __init__(self, shape: Cell = (5, 7), start: Cell = (0, 0), cue1_location: Cell = (2, 0),
                 cue2_locations: Sequence[Cell] = ((0, 2), (1, 3), (3, 3), (4, 2)),
                 reward_locations: Sequence[Cell] = ((1, 5), (3, 5))) -> None:
        self._grid(shape, start)
        self.cue1_location = check_cell(check_pair(cue1_location, "cue1_location"), self.shape, "cue1_location")
        self.cue2_locations = check_cells(cue2_locations, self.shape, "cue2_locations")
        self.reward_locations = check_cells(reward_locations, self.shape, "reward_locations")
        if not self.cue2_locations:
            raise ParameterError("cue2_locations must hold at least one cell")
        if len(self.reward_locations) != 2:
            raise ParameterError(f"reward_locations must hold exactly two cells, got {len(self.reward_locations)}")
        super().__init__(*self._arrays(), A_dependencies=[[0], [0, 1], [0, 1, 2], [0, 2]],
                         B_dependencies=[[0], [1], [2]], control_factor=0)

    def _arrays(self) -> tuple[list, list, list]:
        n = self.shape[0] * self.shape[1]
        K = len(self.cue2_locations)
        A_loc = np.eye(n)
        A_cue1 = np.zeros((1 + K, n, K))
        A_cue1[0] = 1.0
        cue1 = self.index(self.cue1_location)
        A_cue1[:, cue1, :] = np.vstack([np.zeros(K), np.eye(K)])
        A_cue2 = np.zeros((3, n, K, 2))
        A_cue2[0] = 1.0
        for k, c in enumerate(self.cue2_locations):
            A_cue2[:, self.index(c), k, :] = np.vstack([np.zeros(2), np.eye(2)])
        A_rew = np.zeros((3, n, 2))
        A_rew[NULL] = 1.0
        for place, c in enumerate(self.reward_locations):
            i = self.index(c)
            A_rew[NULL, i, :] = 0.0
            for r in range(2):
                A_rew[CHEESE if place == r else SHOCK, i, r] = 1.0
        B = [grid_transitions(self.shape), np.eye(K)[:, :, None], np.eye(2)[:, :, None]]
        D = [np.eye(n)[self.index(self.start)], np.full(K, 1.0 / K), np.full(2, 0.5)]
        return [A_loc, A_cue1, A_cue2, A_rew], B, D

    def _initial_state(self, state, options):
        state = list(state)
        for f, key in ((1, "cue2_state"), (2, "reward_condition")):
            if key in options:
                state[f] = check_index(options[key], f"options[{key!r}]", self.num_states[f])
        return tuple(state)

    def reward(self, state: Any, obs: Any) -> float:
        return {NULL: 0.0, CHEESE: 1.0, SHOCK: -1.0}[int(obs[3])]

    def reward_tables(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """``POMDPEnv.reward_tables``: cheese and shock."""
        return self._outcome_rewards(3, {CHEESE: 1.0, SHOCK: -1.0})

    def generative_model(self, reward_preference: float = 3.0, shock_preference: float = -6.0, learn_B: bool = False,
                         prior_count: float = 1.0) -> GenerativeModel:
        """The model of pymdp 1.0's cue-chaining demo: the true A and B, ``C[3] = [0, 3, -6]``, a known start
        and uniform priors over the cue-2 state and the reward condition.

        Args:
            reward_preference, shock_preference: ``C[3] = [0, reward_preference, shock_preference]``.
            learn_B: ``pB[0]`` uniform with ``prior_count`` per entry (``B[0]`` uniform); other factors known.
            prior_count: the Dirichlet count of an unknown entry.
        """
        A, B, D = self._arrays()
        C = [np.zeros(a.shape[0]) for a in A]
        C[3] = np.array([0.0, check_real(reward_preference, "reward_preference"),
                         check_real(shock_preference, "shock_preference")])
        return GenerativeModel(A, B, C, D, pB=unknown_transitions(B, prior_count) if learn_B else None,
                               A_dependencies=self.A_dependencies, B_dependencies=self.B_dependencies)


__all__ = ["CueChaining", "ACTION_NAMES", "REWARD_OBS_NAMES"]
