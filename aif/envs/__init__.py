"""Gymnasium environments for active inference, each with the generative model an agent needs in it.

- ``TMaze``: the classic epistemic T-maze (pymdp.legacy's ``TMazeEnv``).
- ``GridWorld``: walls, a start and a goal (optionally several goals and a cue).
- ``CueChaining``: a chain of cues to a reward (pymdp 1.0's ``CueChainingEnv``).
- ``AgentWrapper``: any environment with discrete observations, for an ``aif.Agent``.

Every environment has ``generative_model(...) -> aif.GenerativeModel``.
"""

from .cue_chaining import CueChaining
from .gridworld import GridWorld, grid_transitions
from .pomdp import POMDPEnv
from .tmaze import TMaze, summarize_tmaze, tmaze_arrays
from .wrappers import AgentWrapper

__all__ = ["TMaze", "GridWorld", "CueChaining", "AgentWrapper", "POMDPEnv", "grid_transitions", "tmaze_arrays",
           "summarize_tmaze"]
