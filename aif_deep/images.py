"""``aif``'s environments seen as noisy binary images, for neural models to learn from.

Every picture is drawn the same way: the image is a grid of cells (``cell_templates``), the cells that show
the current observation are filled with 1s, and then every pixel flips with probability ``flip``
(``flip_pixels``). The wrappers take an ``aif.envs.AgentWrapper`` (observations: one index per modality)
and keep its actions and ``info["state"]``.

- ``NoisyGridImages``: a grid world, the agent's cell filled.
- ``NoisyTMazeImages``: the T-maze drawn as a T, the agent's location filled and, at the cue location, a
  block on the side the cue points to; the reward outcome stays a categorical modality beside the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike

from aif.envs.tmaze import CUE, LEFT_ARM, RIGHT_ARM
from aif.errors import ModelError, ParameterError

from . import checks


def cell_templates(grid_shape: Sequence[int], image_shape: Sequence[int],
                   cells: Sequence[tuple[int, int]]) -> np.ndarray:
    """Binary images of single cells: the image is tiled by a ``grid_shape`` grid of (nearly) equal cells.

    Args:
        grid_shape: ``(rows, cols)`` of the grid.
        image_shape: ``(H, W)`` pixels, at least one pixel per cell.
        cells: ``(row, col)`` pairs.

    Returns:
        int ``(len(cells), H, W)``: template ``k`` is 1 on cell ``cells[k]`` and 0 elsewhere.
    """
    rows, cols = (int(x) for x in grid_shape)
    H, W = (int(x) for x in image_shape)
    if H < rows or W < cols:
        raise ParameterError(f"image_shape {tuple(image_shape)} has fewer pixels than the {rows}x{cols} grid has "
                             f"cells; every cell needs at least one pixel")
    # Cell edges rounded from equal fractions: cells differ by at most one pixel when H or W is not a multiple.
    r_edges = np.linspace(0, H, rows + 1).round().astype(int)
    c_edges = np.linspace(0, W, cols + 1).round().astype(int)
    out = np.zeros((len(cells), H, W), dtype=np.int64)
    for k, (r, c) in enumerate(cells):
        out[k, r_edges[r]: r_edges[r + 1], c_edges[c]: c_edges[c + 1]] = 1
    return out


def flip_pixels(clean: np.ndarray, flip: float, rng: np.random.Generator) -> np.ndarray:
    """``clean`` (int 0/1, any shape) with every pixel flipped independently with probability ``flip``."""
    return clean ^ (rng.random(clean.shape) < flip)


class NoisyGridImages(gym.ObservationWrapper):
    """A grid world seen as noisy binary images: wraps ``AgentWrapper(GridWorld(...))`` (one location
    modality); observations become ``(image,)`` (one entry per modality, as ``Agent.step`` takes them), ``image``
    int ``image_shape`` with the agent's cell filled, then every pixel flipped with probability ``flip``."""

    def __init__(self, env: gym.Env, image_shape: Sequence[int] = (8, 8), flip: float = 0.05) -> None:
        super().__init__(env)
        self.image_shape, self.flip = checks.image_settings(image_shape, flip)
        grid: Any = env.unwrapped  # aif.envs.GridWorld
        rows, cols = grid.shape
        self.templates = cell_templates((rows, cols), self.image_shape,
                                        [(r, c) for r in range(rows) for c in range(cols)])
        self.observation_space = gym.spaces.Tuple((gym.spaces.MultiBinary(list(self.image_shape)),))

    def render_image(self, location: ArrayLike, rng: np.random.Generator) -> np.ndarray:
        """Noisy images of ``location`` (an index or an int array of them): ``(*location.shape, H, W)``."""
        return flip_pixels(self.templates[np.asarray(location)], self.flip, rng)

    def observation(self, obs: ArrayLike) -> tuple[np.ndarray]:
        return (self.render_image(int(np.ravel(obs)[0]), self.env.unwrapped.np_random),)


# The T-maze on a 3x3 grid of cells: the arms at the top corners, the centre in the middle, the cue location
# below it; the cue's block sits beside the cue location, on the side of the arm it points to.
TMAZE_CELLS = {0: (1, 1), RIGHT_ARM: (0, 2), LEFT_ARM: (0, 0), CUE: (2, 1)}  # location -> cell
TMAZE_CUE_CELLS = {0: (2, 2), 1: (2, 0)}  # cue outcome (0 "cue right", 1 "cue left") -> cell


class NoisyTMazeImages(gym.ObservationWrapper):
    """The T-maze seen as noisy binary images, with the reward outcome beside them.

    Wraps ``AgentWrapper(TMaze(...))`` (observations ``[location, reward, cue]``, see ``aif.envs.tmaze``) and
    turns them into a tuple ``(image, reward)``, one entry per modality of the neural model:

    - ``image``: int ``image_shape``, the maze as a 3x3 grid of cells (``TMAZE_CELLS``): the agent's location
      filled and, at the cue location only, a second block right ("cue right") or left ("cue left") of it; then
      every pixel flips with probability ``flip``. Elsewhere the cue outcome is noise and is not drawn.
    - ``reward``: the reward outcome index (0 none, 1 reward, 2 loss), as in the tabular model.

    Why the reward is not drawn: the cue tells the context with certainty (0.69 nats), an arm through a reward
    right with probability 0.98 (0.60 nats); a decoder of independent pixels cannot express that 0.98 as one
    event, so (argued, not measured) an arm would look as informative as the cue. As a categorical modality
    the reward's terms are exact and its preferences are the tabular ``C`` (``TMaze.generative_model``).

    Actions and ``info`` (with ``info["state"] = (location, context)``) pass through unchanged.
    """

    def __init__(self, env: gym.Env, image_shape: Sequence[int] = (9, 9), flip: float = 0.05) -> None:
        super().__init__(env)
        num_obs = getattr(env, "num_obs", None)
        if list(num_obs or []) != [4, 3, 2]:
            raise ModelError(f"NoisyTMazeImages wraps AgentWrapper(TMaze()) (outcomes per modality [4, 3, 2]); got "
                             f"an environment with outcomes {num_obs}")
        self.image_shape, self.flip = checks.image_settings(image_shape, flip)
        self.location_templates = cell_templates((3, 3), self.image_shape, [TMAZE_CELLS[k] for k in range(4)])
        self.cue_templates = cell_templates((3, 3), self.image_shape, [TMAZE_CUE_CELLS[k] for k in range(2)])
        self.observation_space = gym.spaces.Tuple((gym.spaces.MultiBinary(list(self.image_shape)),
                                                   gym.spaces.Discrete(3)))

    def clean_image(self, location: ArrayLike, cue: ArrayLike) -> np.ndarray:
        """Noise-free images: int ``(*shape, H, W)`` for index arrays ``location`` and ``cue`` of one ``shape``."""
        loc, c = np.asarray(location), np.asarray(cue)
        if not (np.isin(loc, range(4)).all() and np.isin(c, range(2)).all()):
            raise ParameterError(f"locations must lie in 0..3 and cues in 0..1, got {loc} and {c}")
        at_cue = (loc == CUE)[..., None, None]
        return self.location_templates[loc] | (at_cue * self.cue_templates[c])

    def render_image(self, location: ArrayLike, cue: ArrayLike, rng: np.random.Generator) -> np.ndarray:
        """Noisy images: ``clean_image`` with every pixel flipped with probability ``flip``."""
        return flip_pixels(self.clean_image(location, cue), self.flip, rng)

    def observation(self, obs: ArrayLike) -> tuple[np.ndarray, int]:
        location, reward, cue = (int(o) for o in np.ravel(obs))
        return (self.render_image(location, cue, self.env.unwrapped.np_random), reward)
