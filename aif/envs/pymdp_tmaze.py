"""pymdp 1.0's two T-mazes (``pymdp.envs.tmaze``): ``SimplifiedTMaze`` and its ``TMaze``, here ``PymdpTMaze``.

``aif.envs.TMaze`` is pymdp.legacy's (and SPM's) maze. pymdp 1.0 numbers the places and outcomes differently and
adds a middle cell; these classes build its arrays exactly, so that models and runs compare one to one:

- factor 0, location: 0 centre, 1 left arm, 2 right arm, 3 cue (bottom arm), and in ``PymdpTMaze`` 4 middle
  (the cell between the two arms).
- factor 1, reward condition (2): 0 reward in the left arm, 1 in the right arm. It never changes.
- the reward outcome (3): 0 none, 1 reward, 2 punishment. In the arm of the condition, reward with probability
  ``reward_probability`` (else none); in the other arm, punishment with probability ``punishment_probability``
  (else none). With ``dependent_outcomes``, the reward arm gives punishment instead of nothing (probability
  ``1 - reward_probability``) and the other arm punishes with probability ``reward_probability`` and rewards
  otherwise. Elsewhere, no outcome.
- the cue: at the cue location, the condition with probability ``cue_validity``.

``SimplifiedTMaze``: four locations, every action ``u`` moves to location ``u`` from anywhere, and the cue is part
of the location outcome. Modalities ``[location (5), reward (3)]``, the location outcome being 0 centre, 1 left
arm, 2 right arm, 3 cue location showing "left", 4 cue location showing "right"; ``A_dependencies = [[0, 1],
[0, 1]]``.

``PymdpTMaze``: five locations; a move succeeds only between neighbours (centre-cue, centre-middle, middle-left,
middle-right), else the agent stays. Modalities ``[location (5), reward (3), cue (3: none, left, right)]``,
``A_dependencies = [[0], [0, 1], [0, 1]]``.

Both: ``B_dependencies = [[0], [1]]``; ``D`` = the centre, and the condition uniform or fixed by
``reward_condition``. The Gymnasium reward is +1 for a reward outcome and -1 for a punishment; episodes do not end
by themselves (as in pymdp).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..checks import check_fraction, check_index, check_positive, check_real
from ..model import GenerativeModel
from .pomdp import POMDPEnv

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CENTRE, LEFT, RIGHT, CUE, MIDDLE = range(5)
NO_OUTCOME, REWARD, PUNISHMENT = range(3)
LOCATION_NAMES = ("centre", "left arm", "right arm", "cue", "middle")
OUTCOME_NAMES = ("no outcome", "reward", "punishment")
CUE_NAMES = ("no cue", "cue left", "cue right")
# pymdp 1.0's moves in PymdpTMaze: (from, to) pairs that an action "go to `to`" completes.
NEIGHBOURS = ((CENTRE, CUE), (CUE, CENTRE), (CENTRE, MIDDLE), (MIDDLE, CENTRE), (MIDDLE, LEFT), (LEFT, MIDDLE),
              (MIDDLE, RIGHT), (RIGHT, MIDDLE))


def reward_outcomes(num_locations: int, reward_probability: float, punishment_probability: float,
                    dependent_outcomes: bool) -> np.ndarray:
    """The reward modality's likelihood, ``(3, num_locations, 2)``: p(outcome | location, condition).

    Condition ``c`` baits arm ``1 + c``. See the module docstring for the probabilities.
    """
    r = check_fraction(reward_probability, "reward_probability")
    p = check_fraction(punishment_probability, "punishment_probability")
    A = np.zeros((3, num_locations, 2))
    A[NO_OUTCOME] = 1.0
    for c in range(2):
        baited, other = (LEFT, RIGHT) if c == 0 else (RIGHT, LEFT)
        A[:, baited, c] = (0.0, r, 1 - r) if dependent_outcomes else (1 - r, r, 0.0)
        A[:, other, c] = (0.0, 1 - r, r) if dependent_outcomes else (1 - p, 0.0, p)
    return A


def cue_outcomes(num_locations: int, cue_validity: float) -> np.ndarray:
    """p(cue | location, condition) of ``PymdpTMaze``, ``(3, num_locations, 2)``: ``1 + c`` with probability
    ``cue_validity`` at the cue location under condition ``c``; "no cue" (0) elsewhere."""
    v = check_fraction(cue_validity, "cue_validity")
    A = np.zeros((3, num_locations, 2))
    A[0] = 1.0
    A[:, CUE] = [[0.0, 0.0], [v, 1 - v], [1 - v, v]]
    return A


class _PymdpTMazeBase(POMDPEnv):
    """What pymdp 1.0's two T-mazes share (its ``BaseTMaze``): the reward outcomes, the initial states, the
    Gymnasium reward, the agent's model and the drawing. Subclasses give ``_arrays()`` and ``_place(obs)``."""

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 2}
    num_locations: int
    _reward_modality = 1  # both mazes observe the reward outcome in modality 1

    def __init__(self, reward_probability: float = 1.0, punishment_probability: float = 1.0,
                 cue_validity: float = 0.95, reward_condition: int | None = None, dependent_outcomes: bool = False,
                 render_mode: str | None = None) -> None:
        self.reward_probability = check_fraction(reward_probability, "reward_probability")
        self.punishment_probability = check_fraction(punishment_probability, "punishment_probability")
        self.cue_validity = check_fraction(cue_validity, "cue_validity")
        self.reward_condition = None if reward_condition is None else check_index(reward_condition,
                                                                                  "reward_condition", 2)
        self.dependent_outcomes = bool(dependent_outcomes)
        A, A_dependencies, B = self._arrays()
        super().__init__(A, B, self._initial_states(), A_dependencies, [[0], [1]], control_factor=0,
                         render_mode=render_mode)

    def _arrays(self) -> tuple[list, list, list]:
        raise NotImplementedError

    def _reward_outcomes(self) -> np.ndarray:
        return reward_outcomes(self.num_locations, self.reward_probability, self.punishment_probability,
                               self.dependent_outcomes)

    def _initial_states(self) -> list:
        c = self.reward_condition
        return [np.eye(self.num_locations)[CENTRE], np.full(2, 0.5) if c is None else np.eye(2)[c]]

    def _initial_state(self, state, options):
        if "reward_condition" in options:
            state = (state[0], check_index(options["reward_condition"], "options['reward_condition']", 2))
        return state

    @property
    def condition(self) -> int | None:
        """The current reward condition (0 left, 1 right), ``None`` before the first reset."""
        return None if self.state is None else self.state[1]

    def reward(self, state: Any, obs: Any) -> float:
        return (0.0, 1.0, -1.0)[int(obs[self._reward_modality])]

    def reward_tables(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """``POMDPEnv.reward_tables``: the reward modality's reward and loss."""
        return self._outcome_rewards(self._reward_modality, {1: 1.0, 2: -1.0})

    def _model(self, C: list, D: list, prior_count: float | None, modalities: tuple[int, ...]) -> GenerativeModel:
        """The environment's A and B with preferences ``C`` and prior ``D``; with ``prior_count``, the A-learning
        agent of pymdp's T-maze demo: ``pA[m] = A[m] + prior_count`` for ``m`` in ``modalities`` (the true A plus
        a flat count, so the mean is flatter than the truth) and the true ``A[m]`` elsewhere; A is the mean."""
        A = [a.copy() for a in self.A]
        pA = None
        if prior_count is not None:
            count = check_positive(prior_count, "prior_count")
            pA = [a + count if m in modalities else a.copy() for m, a in enumerate(A)]
            A = [p / p.sum(axis=0, keepdims=True) for p in pA]
        return GenerativeModel(A, [b.copy() for b in self.B], C, D, pA=pA, A_dependencies=self.A_dependencies,
                               B_dependencies=self.B_dependencies)

    # Drawing: the T as three columns and three rows, the arms at the top, the cue at the bottom.
    _XY = {CENTRE: (1, 1), LEFT: (0, 0), RIGHT: (2, 0), CUE: (1, 2), MIDDLE: (1, 0)}

    def _place(self, obs: np.ndarray) -> tuple[int, int]:
        """(location, cue outcome 0 none / 1 left / 2 right) read from an observation."""
        raise NotImplementedError

    def draw(self, ax: Axes) -> None:
        """The maze, the baited arm (gold outline), the cue cell coloured by the cue seen (orange left, purple
        right), the outcome just observed in the arm (R reward, P punishment) and the agent (black dot)."""
        from matplotlib.patches import Circle, Rectangle

        obs = cast(np.ndarray, self.obs)  # set by reset, which render requires
        location, cue = self._place(obs)
        baited = LEFT if self.state[1] == 0 else RIGHT
        cue_colour = ("lightgrey", "tab:orange", "tab:purple")[cue]
        for place in range(self.num_locations):
            x, y = self._XY[place]
            face = {LEFT: "moccasin", RIGHT: "thistle", CUE: cue_colour}.get(place, "white")
            ax.add_patch(Rectangle((x, y), 1, 1, facecolor=face, edgecolor="black"))
            ax.text(x + 0.5, y + 0.12, LOCATION_NAMES[place], ha="center", va="center", fontsize=7)
        if self.num_locations == 4:  # the centre links to the arms directly
            ax.add_patch(Rectangle((1, 0), 1, 1, facecolor="dimgrey"))
        x, y = self._XY[baited]
        ax.add_patch(Rectangle((x + 0.04, y + 0.04), 0.92, 0.92, fill=False, edgecolor="gold", linewidth=3))
        outcome = int(obs[self._reward_modality])
        if location in (LEFT, RIGHT) and outcome != NO_OUTCOME:
            x, y = self._XY[location]
            ax.text(x + 0.5, y + 0.75, "RP"[outcome - 1], ha="center", va="center", fontsize=14,
                    color="tab:green" if outcome == REWARD else "tab:red", weight="bold")
        x, y = self._XY[location]
        ax.add_patch(Circle((x + 0.5, y + 0.45), 0.15, color="black"))
        ax.set_xlim(0, 3)
        ax.set_ylim(3, 0)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"reward condition: {('left', 'right')[self.state[1]]}", fontsize=9)


class SimplifiedTMaze(_PymdpTMazeBase):
    """pymdp 1.0's ``SimplifiedTMaze``: four locations, fully connected, the cue seen as a location outcome.

    Args (pymdp's names and defaults):
        reward_probability: probability of reward in the baited arm.
        punishment_probability: probability of punishment in the other arm (without ``dependent_outcomes``).
        cue_validity: probability that the cue shows the true condition.
        reward_condition: ``0`` (left) or ``1`` (right) fixes ``D[1]``; ``None``: uniform, drawn at each reset.
            ``reset(options={"reward_condition": c})`` fixes it for one episode.
        dependent_outcomes: see the module docstring.
        render_mode: ``None``, ``"rgb_array"`` or ``"human"``.

    Observation ``MultiDiscrete([5, 3])`` (location with the cue, reward outcome); action ``Discrete(4)``, the
    location to go to.
    """

    num_locations = 4

    def __init__(self, reward_condition: int | None = None, cue_validity: float = 0.95,
                 reward_probability: float = 1.0, dependent_outcomes: bool = False,
                 punishment_probability: float = 1.0, render_mode: str | None = None) -> None:
        super().__init__(reward_probability, punishment_probability, cue_validity, reward_condition,
                         dependent_outcomes, render_mode)

    def _arrays(self) -> tuple[list, list, list]:
        v = self.cue_validity
        # (5, 4, 2): places seen as themselves, the cue location as "cued left" (3) or "cued right" (4).
        A_loc = np.zeros((5, 4, 2))
        A_loc[[CENTRE, LEFT, RIGHT], [CENTRE, LEFT, RIGHT], :] = 1.0
        A_loc[3:, CUE] = [[v, 1 - v], [1 - v, v]]
        # B_loc[next, prev, u] = 1 when next == u: every action is "go to location u".
        B_loc = np.broadcast_to(np.eye(4)[:, None, :], (4, 4, 4)).copy()
        return [A_loc, self._reward_outcomes()], [[0, 1], [0, 1]], [B_loc, np.eye(2)[:, :, None]]

    def _place(self, obs):
        return (CUE, int(obs[0]) - 2) if obs[0] >= 3 else (int(obs[0]), 0)

    def generative_model(self, reward_preference: float = 2.0, punishment_preference: float = -6.0
                         ) -> GenerativeModel:
        """The agent of pymdp's sophisticated-inference validation notebook (``si_tmaze_SIvalidation``), the one
        pymdp example that runs this maze: the true A and B, ``C[1] = [0, reward_preference,
        punishment_preference]`` (its ``[0, 2, -6]``), and a uniform ``D`` over both factors (the location too:
        the first observation names it). That notebook's agent has ``policy_len=2, gamma=3``."""
        C = [np.zeros(5), np.array([0.0, check_real(reward_preference, "reward_preference"),
                                    check_real(punishment_preference, "punishment_preference")])]
        return self._model(C, [np.full(4, 0.25), np.full(2, 0.5)], None, ())


class PymdpTMaze(_PymdpTMazeBase):
    """pymdp 1.0's ``TMaze``: five locations (a middle cell between the arms), moves only between neighbours,
    a separate cue modality. (``aif.envs.TMaze`` is pymdp.legacy's maze.)

    Args: as ``SimplifiedTMaze`` (pymdp's order: ``reward_probability, punishment_probability, cue_validity,
    reward_condition, dependent_outcomes``).

    Observation ``MultiDiscrete([5, 3, 3])`` (location, reward outcome, cue); action ``Discrete(5)``, the location
    to go to (reached only from a neighbour).
    """

    num_locations = 5

    def _arrays(self) -> tuple[list, list, list]:
        B_loc = np.zeros((5, 5, 5))
        for prev in range(5):
            for u in range(5):
                B_loc[u if (prev, u) in NEIGHBOURS else prev, prev, u] = 1.0
        return ([np.eye(5), self._reward_outcomes(), cue_outcomes(5, self.cue_validity)], [[0], [0, 1], [0, 1]],
                [B_loc, np.eye(2)[:, :, None]])

    def _place(self, obs):
        return int(obs[0]), int(obs[2])

    def generative_model(self, reward_preference: float = 2.0, punishment_preference: float = -3.0,
                         learn_A: bool = False, prior_count: float = 0.3) -> GenerativeModel:
        """The agent of pymdp's T-maze demo (``examples/envs/tmaze_demo.ipynb``): the true A and B,
        ``C[1] = [0, reward_preference, punishment_preference]`` (its ``[0, 2, -3]``), ``D`` = the centre and a
        uniform condition. The demo's agent has ``policy_len=2`` (and pymdp's defaults, ``gamma=1``).

        Args:
            learn_A: the demo's A-learning agent: ``pA[m] = A[m] + prior_count`` for the outcome and cue
                modalities (its ``alpha_scale_pA = 0.3``), the location known; ``A`` is the counts' mean.
        """
        C = [np.zeros(5), np.array([0.0, check_real(reward_preference, "reward_preference"),
                                    check_real(punishment_preference, "punishment_preference")]), np.zeros(3)]
        return self._model(C, [np.eye(5)[CENTRE], np.full(2, 0.5)], prior_count if learn_A else None, (1, 2))


__all__ = ["SimplifiedTMaze", "PymdpTMaze", "reward_outcomes", "cue_outcomes", "LOCATION_NAMES", "OUTCOME_NAMES",
           "CUE_NAMES"]
