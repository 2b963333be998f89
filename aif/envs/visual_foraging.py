"""Epistemic foraging with the eyes: pymdp.legacy's scene-construction and random-dot-motion tasks.

Same tasks, layouts, indices and defaults as ``pymdp.legacy.envs.visual_foraging`` (the two levels of the
hierarchical scene-construction model of Heins et al. 2020, "Deep active inference and scene construction"), so
models and runs compare one to one. The environments here return indices where legacy's return labels; the
module's name tuples turn one into the other.

Scene construction (``SceneConstruction``):

- factor 0, scene and configuration (48): ``SCENE_STATES[i] = (scene, (q1, q2))``: one of four scenes
  (``SCENE_NAMES``: two motion directions, such as ``"UP_RIGHT"``), its first direction in quadrant ``q1`` and its
  second in ``q2`` (quadrants 1-4, row by row over a 2x2 array; the two others are empty). Never changes.
- factor 1, where the eyes are (9, ``LOCATION_NAMES``): 0 the central fixation point, 1-4 the quadrants, 5-8 the
  four choices "this is scene k". Action ``u`` moves the eyes to location ``u`` from anywhere.
- modality 0, what is seen (7, ``WHAT_NAMES``): ``null`` at the centre and in an empty quadrant, the direction in
  a filled quadrant, ``correct!`` / ``incorrect!`` at a choice.
- modality 1, where the eyes are (9): the location, without noise.

Random-dot motion (``RandomDotMotion``):

- factor 0, the dots' direction (5, ``MOTION_NAMES``): ``null`` (no motion) or one of four directions. Never
  changes.
- factor 1, sampling state (2, ``SAMPLING_NAMES``): sampling the dots or having broken off.
- modality 0, the motion seen (5): while sampling, a direction drawn from ``softmax(precision * onehot(dir))`` over
  the four directions (``null`` for ``null``); ``null`` after breaking off.
- modality 1, the sampling state (2), without noise.

Both A arrays read every factor (legacy's A has no ``A_factor_list``), so the arrays equal legacy's entry by entry.
"""

from __future__ import annotations

from itertools import permutations, product
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..checks import as_numbers, check_choice, check_integer, check_real
from ..errors import ParameterError
from ..maths import softmax
from ..model import GenerativeModel
from ..utils import controllable_B, onehot
from .pomdp import POMDPEnv

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# --- scene construction -------------------------------------------------------------------------------------------

SCENE_NAMES = ("UP_RIGHT", "RIGHT_DOWN", "DOWN_LEFT", "LEFT_UP")
# (quadrant of the scene's first direction, quadrant of its second), quadrants 1-4 as legacy counts them
CONFIGS = tuple(permutations((1, 2, 3, 4), 2))
SCENE_STATES = tuple(product(SCENE_NAMES, CONFIGS))  # factor 0: legacy's ``all_scenes_all_configs``, scene-major
LOCATION_NAMES = ("start", "1", "2", "3", "4", *(f"choose_{s}" for s in SCENE_NAMES))
WHAT_NAMES = ("null", "UP", "RIGHT", "DOWN", "LEFT", "correct!", "incorrect!")
START, FIRST_QUADRANT, FIRST_CHOICE = 0, 1, 5
NULL, CORRECT, INCORRECT = 0, 5, 6
# Legacy's C[1][:5, 4:]: from the fifth step of a policy, every location but a choice costs ``urgency``.
URGENCY_STEP = 4

# --- random-dot motion --------------------------------------------------------------------------------------------

MOTION_NAMES = WHAT_NAMES[:5]
SAMPLING_NAMES = ("sampling", "breaking")
RDM_ACTION_NAMES = ("sample", "break")
SAMPLING, BREAKING = 0, 1
SAMPLE, BREAK = 0, 1

# Unit arrows for rendering, in axes coordinates (y up).
_ARROWS = {"UP": (0.0, 1.0), "RIGHT": (1.0, 0.0), "DOWN": (0.0, -1.0), "LEFT": (-1.0, 0.0)}


def _check_config(config: Any, name: str) -> tuple[int, int]:
    """Two different quadrants in 1..4 (``ParameterError``)."""
    a = as_numbers(config, name, ParameterError, None)
    pair = tuple(int(x) for x in a.ravel()) if a.shape == (2,) and np.issubdtype(a.dtype, np.integer) else ()
    if pair not in CONFIGS:
        raise ParameterError(f"{name} must be two different quadrants in 1..4 (where the scene's first and second "
                             f"directions are), got {config!r}")
    return pair  # type: ignore[return-value]


def scene_contents() -> np.ndarray:
    """What each quadrant shows in each scene state: int ``(48, 4)``, indices into ``WHAT_NAMES`` (legacy's
    ``create_2x2_array`` for every state, flattened row by row)."""
    first_second = np.array([[WHAT_NAMES.index(d) for d in scene.split("_")] for scene in SCENE_NAMES])  # (4, 2)
    contents = np.full((len(SCENE_STATES), 4), NULL)
    for i, (scene, (q1, q2)) in enumerate(SCENE_STATES):
        contents[i, [q1 - 1, q2 - 1]] = first_second[SCENE_NAMES.index(scene)]
    return contents


def scene_construction_arrays() -> tuple[list, list, list]:
    """The scene-construction task's A, B and D (the environment's and, as legacy's
    ``initialize_scene_construction_GM``, the agent's).

    Returns:
        ``(A, B, D)``: ``A = [(7, 48, 9), (9, 48, 9)]``, ``B = [(48, 48, 1), (9, 9, 9)]``, ``D = [(48,), (9,)]``
        (every scene and configuration equally likely; the eyes start at the centre).
    """
    S, L = len(SCENE_STATES), len(LOCATION_NAMES)
    seen = np.empty((S, L), dtype=int)  # the outcome of modality 0 in each (scene state, location)
    seen[:, START] = NULL
    seen[:, FIRST_QUADRANT:FIRST_CHOICE] = scene_contents()
    truth = np.array([SCENE_NAMES.index(scene) for scene, _ in SCENE_STATES])
    seen[:, FIRST_CHOICE:] = np.where(truth[:, None] == np.arange(len(SCENE_NAMES)), CORRECT, INCORRECT)
    A_what = np.moveaxis(np.eye(len(WHAT_NAMES))[seen], -1, 0)  # (7, S, L)
    A_where = np.broadcast_to(np.eye(L)[:, None, :], (L, S, L)).copy()  # (L, S, L): the location itself
    B = [np.eye(S)[:, :, None], controllable_B([L], [L])[0]]
    D = [np.ones(S) / S, onehot(START, L)]
    return [A_what, A_where], B, D


def _frame(ax: Axes, title: str) -> None:
    """A blank 2x2 drawing area (data coordinates 0..2, y up) with ``title``."""
    ax.set_xlim(0, 2)
    ax.set_ylim(0, 2)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)


def _arrow(ax: Axes, x: float, y: float, direction: str, color: str, length: float = 0.6) -> None:
    """An arrow centred on ``(x, y)`` pointing ``direction`` (one of ``MOTION_NAMES[1:]``)."""
    dx, dy = _ARROWS[direction]
    ax.arrow(x - dx * length / 2, y - dy * length / 2, dx * length, dy * length, width=0.04, head_width=0.16,
             length_includes_head=True, color=color)


class SceneConstruction(POMDPEnv):
    """Scene construction (pymdp.legacy's ``SceneConstruction``) as a Gymnasium environment.

    Args:
        scene: the scene of every episode (one of ``SCENE_NAMES``); drawn uniformly at each reset when ``None``.
        config: the quadrants ``(q1, q2)`` of the scene's two directions (legacy's ``config="q1_q2"``); drawn
            uniformly at each reset when ``None``.
        render_mode: ``None``, ``"rgb_array"`` or ``"human"`` (``POMDPEnv``): the 2x2 array, the location looked
            at ringed.

    Observation: ``MultiDiscrete([7, 9])`` (what, where). Action: ``Discrete(9)``, the location to look at or the
    scene to choose (``LOCATION_NAMES``). Reward: +1 for ``correct!``, -1 for ``incorrect!``, 0 otherwise. The
    episode never ends by itself (as in pymdp.legacy: a choice can be followed by more looking); bound it with the
    number of steps or ``gymnasium.wrappers.TimeLimit``. ``reset(options={"scene": ..., "config": (q1, q2)})``
    fixes either for one episode. Legacy's ``starting_loc`` is left out: its ``reset`` always starts at the centre.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 2}

    def __init__(self, scene: str | None = None, config: tuple[int, int] | None = None,
                 render_mode: str | None = None) -> None:
        self.fixed_scene = None if scene is None else check_choice(scene, "scene", SCENE_NAMES)
        self.fixed_config = None if config is None else _check_config(config, "config")
        A, B, D = scene_construction_arrays()
        # The process draws the scene state uniformly among those that agree with what was fixed.
        allowed = np.array([self.fixed_scene in (None, s) and self.fixed_config in (None, c)
                            for s, c in SCENE_STATES], dtype=float)
        D[0] = allowed / allowed.sum()
        super().__init__(A, B, D, control_factor=1, render_mode=render_mode)

    def _initial_state(self, state, options):
        scene, config = SCENE_STATES[state[0]]
        if "scene" in options:
            scene = check_choice(options["scene"], "options['scene']", SCENE_NAMES)
        if "config" in options:
            config = _check_config(options["config"], "options['config']")
        return (SCENE_STATES.index((scene, config)), state[1])

    @property
    def scene(self) -> str | None:
        """The current episode's scene (``None`` before ``reset``)."""
        return None if self.state is None else SCENE_STATES[self.state[0]][0]

    @property
    def config(self) -> tuple[int, int] | None:
        """The quadrants of the current scene's two directions (``None`` before ``reset``)."""
        return None if self.state is None else SCENE_STATES[self.state[0]][1]

    @property
    def visual_array(self) -> np.ndarray | None:
        """The current scene's 2x2 array of ``WHAT_NAMES`` labels (legacy's ``vis_array``)."""
        if self.state is None:
            return None
        return np.array(WHAT_NAMES, dtype=object)[scene_contents()[self.state[0]]].reshape(2, 2)

    def reward(self, state: Any, obs: Any) -> float:
        return {CORRECT: 1.0, INCORRECT: -1.0}.get(int(obs[0]), 0.0)

    def reward_tables(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """``POMDPEnv.reward_tables``: a correct or incorrect choice."""
        return self._outcome_rewards(0, {CORRECT: 1.0, INCORRECT: -1.0})

    def generative_model(self, preference_steps: int = 6, correct_preference: float = 2.0,
                         incorrect_preference: float = -4.0, urgency: float = -4.0) -> GenerativeModel:
        """The model of pymdp.legacy's ``initialize_scene_construction_GM(T, reward, punishment, urgency)``: the
        true A and B, uniform beliefs about the scene and its configuration, a known start, and time-varying
        log-preferences (not normalised here; ``EFEOptions`` says whether G normalises them).

        Args:
            preference_steps: the columns of C (legacy's ``T``): ``C[m]`` has shape ``(num_obs[m],
                preference_steps)``. Both legacy's Agent and ``aif.Agent`` score step ``k`` of a policy with
                column ``k`` (counted from the present, not from the start of the trial); beyond the last column
                ``aif`` keeps using the last one, where legacy fails.
            correct_preference, incorrect_preference: ``C[0]`` of ``correct!`` and ``incorrect!`` at every step
                (legacy's ``reward`` and ``punishment``).
            urgency: ``C[1]`` of the centre and the quadrants from step ``URGENCY_STEP = 4`` on: looking too
                long is costly. It reaches G only for policies of more than four steps.

        Returns:
            ``GenerativeModel`` with ``C = [(7, T), (9, T)]`` and the arrays of ``scene_construction_arrays``.
        """
        T = check_integer(preference_steps, "preference_steps")
        A, B, D = scene_construction_arrays()
        C = [np.zeros((len(WHAT_NAMES), T)), np.zeros((len(LOCATION_NAMES), T))]
        C[0][CORRECT] = check_real(correct_preference, "correct_preference")
        C[0][INCORRECT] = check_real(incorrect_preference, "incorrect_preference")
        C[1][:FIRST_CHOICE, URGENCY_STEP:] = check_real(urgency, "urgency")
        return GenerativeModel(A, B, C, D)

    def draw(self, ax: Axes) -> None:
        """The 2x2 array (the scene's arrows grey, the one being looked at black), the looked-at quadrant ringed
        in red, a red cross while fixating the centre; the choice and its outcome in the title."""
        from matplotlib.patches import Rectangle

        what = int(cast(np.ndarray, self.obs)[0])  # render() calls draw only after reset()
        location = self.state[1]
        title = f"scene {self.scene}"
        if location >= FIRST_CHOICE:
            title += f"; chose {SCENE_NAMES[location - FIRST_CHOICE]}: {WHAT_NAMES[what]}"
        _frame(ax, title)
        for q, seen in enumerate(scene_contents()[self.state[0]]):
            x, y = q % 2 + 0.5, 1.5 - q // 2  # quadrant 1 top left, 4 bottom right (legacy's row-major 2x2)
            looked = location == FIRST_QUADRANT + q
            ax.add_patch(Rectangle((x - 0.47, y - 0.47), 0.94, 0.94, fill=False,
                                   edgecolor="tab:red" if looked else "0.6", linewidth=3.0 if looked else 1.0))
            if seen != NULL:
                _arrow(ax, x, y, WHAT_NAMES[seen], "black" if looked else "0.8")
        if location == START:
            ax.plot([1.0], [1.0], marker="+", markersize=18, markeredgewidth=3, color="tab:red")


def random_dot_motion_arrays(precision: float = 1.0) -> tuple[list, list, list]:
    """The random-dot-motion process's A, B and D (legacy's ``RandomDotMotion`` environment as arrays).

    While sampling, direction ``d > 0`` is seen as ``softmax(precision * onehot(d))`` over the four directions
    (legacy's ``dot_dist``, and its model's ``softmax(A_precis * eye(4))`` column by column; 0 is chance, larger
    is more coherent) and ``null`` as ``null``; after breaking off, everything is seen as ``null``. Action ``u``
    sets the sampling state to ``u`` from either state (legacy's ``step``).

    Returns:
        ``(A, B, D)``: ``A = [(5, 5, 2), (2, 5, 2)]``, ``B = [(5, 5, 1), (2, 2, 2)]``, ``D = [(5,), (2,)]`` (both
        uniform: legacy's environment draws the direction and the starting sampling state when not given).
    """
    p = check_real(precision, "precision", low=0.0)
    nd, ns = len(MOTION_NAMES), len(SAMPLING_NAMES)
    A_motion = np.zeros((nd, nd, ns))
    A_motion[NULL, NULL, SAMPLING] = 1.0
    A_motion[1:, 1:, SAMPLING] = softmax(p * np.eye(nd - 1), axis=0)
    A_motion[NULL, :, BREAKING] = 1.0
    A_sampling = np.broadcast_to(np.eye(ns)[:, None, :], (ns, nd, ns)).copy()  # (2, 5, 2): the state itself
    B = [np.eye(nd)[:, :, None], controllable_B([ns], [ns])[0]]
    return [A_motion, A_sampling], B, [np.ones(nd) / nd, np.ones(ns) / ns]


class RandomDotMotion(POMDPEnv):
    """Random-dot motion (pymdp.legacy's ``RandomDotMotion``) as a Gymnasium environment.

    Args:
        precision: coherence of the motion (legacy's ``precision``): the seen direction is drawn from
            ``softmax(precision * onehot(direction))``; 0 is chance.
        direction: the dots' direction in every episode (one of ``MOTION_NAMES``; legacy's ``dot_direction``);
            drawn uniformly at each reset when ``None``, as legacy's constructor draws it.
        sampling_state: the sampling state each episode starts in (``"sampling"`` or ``"breaking"``; legacy's
            ``"sample"`` / ``"break"``); drawn uniformly when ``None``, as legacy does.
        render_mode: ``None``, ``"rgb_array"`` or ``"human"`` (``POMDPEnv``): the last motion seen, as an arrow.

    Observation: ``MultiDiscrete([5, 2])`` (motion, sampling state). Action: ``Discrete(2)``, ``RDM_ACTION_NAMES``:
    the sampling state to be in next. In the process either action can follow either state (legacy's ``step``
    sets the state to the action); the agent's model believes breaking off is final (``generative_model``). No
    reward; the episode never ends by itself. ``reset(options={"direction": ..., "sampling_state": ...})`` fixes
    either for one episode (legacy's ``reset(dot_direction, sampling_state)``).
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 2}

    def __init__(self, precision: float = 1.0, direction: str | None = None, sampling_state: str | None = None,
                 render_mode: str | None = None) -> None:
        self.precision = check_real(precision, "precision", low=0.0)
        self.fixed_direction = None if direction is None else check_choice(direction, "direction", MOTION_NAMES)
        self.fixed_sampling_state = None if sampling_state is None else check_choice(
            sampling_state, "sampling_state", SAMPLING_NAMES)
        A, B, D = random_dot_motion_arrays(self.precision)
        if direction is not None:
            D[0] = onehot(MOTION_NAMES.index(direction), len(MOTION_NAMES))
        if sampling_state is not None:
            D[1] = onehot(SAMPLING_NAMES.index(sampling_state), len(SAMPLING_NAMES))
        super().__init__(A, B, D, control_factor=1, render_mode=render_mode)

    def _initial_state(self, state, options):
        direction, sampling = state
        if "direction" in options:
            direction = MOTION_NAMES.index(check_choice(options["direction"], "options['direction']", MOTION_NAMES))
        if "sampling_state" in options:
            sampling = SAMPLING_NAMES.index(check_choice(options["sampling_state"], "options['sampling_state']",
                                                         SAMPLING_NAMES))
        return (direction, sampling)

    @property
    def direction(self) -> str | None:
        """The current episode's dot direction (``None`` before ``reset``)."""
        return None if self.state is None else MOTION_NAMES[self.state[0]]

    @property
    def coherence(self) -> float | None:
        """The probability of seeing the true direction while sampling (0 for ``null``; legacy's ``coherence``)."""
        if self.state is None:
            return None
        return 0.0 if self.state[0] == NULL else float(self.A[0][self.state[0], self.state[0], SAMPLING])

    def generative_model(self, precision: float | None = None, break_reward: float = 0.001) -> GenerativeModel:
        """The model of pymdp.legacy's ``initialize_RDM_GM(T, A_precis, break_reward)``: the likelihood of
        ``random_dot_motion_arrays``, a direction that never changes, breaking off as an absorbing state (unlike
        the process), a start while sampling, and uniform beliefs about the direction. (Legacy's ``T`` changes
        nothing there.)

        Args:
            precision: the agent's belief about the coherence (legacy's ``A_precis``); the environment's when
                ``None``.
            break_reward: ``C[1]`` of seeing oneself break off, ``C = [zeros(5), [0, break_reward]]``.
        """
        A, B, D = random_dot_motion_arrays(self.precision if precision is None else precision)
        ns = len(SAMPLING_NAMES)
        B_sampling = np.zeros((ns, ns, len(RDM_ACTION_NAMES)))
        B_sampling[SAMPLING, SAMPLING, SAMPLE] = 1.0
        B_sampling[BREAKING, SAMPLING, BREAK] = 1.0
        B_sampling[BREAKING, BREAKING, :] = 1.0  # no way back from breaking off
        C = [np.zeros(len(MOTION_NAMES)), np.array([0.0, check_real(break_reward, "break_reward")])]
        return GenerativeModel(A, [B[0], B_sampling], C, [D[0], onehot(SAMPLING, ns)])

    def draw(self, ax: Axes) -> None:
        """The aperture with the last motion seen as an arrow; the sampling state, the true direction and its
        coherence in the title."""
        from matplotlib.patches import Circle

        seen = MOTION_NAMES[int(cast(np.ndarray, self.obs)[0])]  # render() calls draw only after reset()
        _frame(ax, f"{SAMPLING_NAMES[self.state[1]]}, seen {seen}\n"
                   f"true {self.direction}, coherence {self.coherence:.2f}")
        ax.add_patch(Circle((1.0, 1.0), 0.9, fill=False, edgecolor="0.6"))
        if seen != "null":
            _arrow(ax, 1.0, 1.0, seen, "black", length=1.2)


__all__ = ["SceneConstruction", "RandomDotMotion", "scene_construction_arrays", "scene_contents",
           "random_dot_motion_arrays", "SCENE_NAMES", "CONFIGS", "SCENE_STATES", "LOCATION_NAMES", "WHAT_NAMES",
           "MOTION_NAMES", "SAMPLING_NAMES", "RDM_ACTION_NAMES", "URGENCY_STEP"]
