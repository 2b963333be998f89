"""Gymnasium environments for active inference, each with the generative model an agent needs in it.

- ``TMaze``: the classic epistemic T-maze (pymdp.legacy's ``TMazeEnv``).
- ``Bandit``: a K-armed Bernoulli bandit, optionally with reversals.
- ``ExploreExploit``: Smith, Friston & Whyte's (2022) explore-exploit task: two slot machines and a hint.
- ``GridWorld``: walls, a start and a goal (optionally several goals and a cue).
- ``CueChaining``: a chain of cues to a reward (pymdp 1.0's ``CueChainingEnv``).
- ``SimplifiedTMaze``, ``PymdpTMaze``: pymdp 1.0's two T-mazes (its ``SimplifiedTMaze`` and ``TMaze``).
- ``GeneralizedTMaze``: several cue-reward sets on a grid (pymdp 1.0's ``GeneralizedTMazeEnv``).
- ``GraphWorld``: find an object on the nodes of a graph (pymdp 1.0's ``GraphEnv``).
- ``knapsack``: pymdp 1.0's knapsack demo as a one-step model with its joint-action policies.
- ``SceneConstruction``, ``RandomDotMotion``: pymdp.legacy's epistemic-foraging tasks (``visual_foraging``).
- ``AgentWrapper``: any environment with discrete observations, for an ``aif.Agent``.
- ``POMDPVectorEnv``: N copies of any of these tasks sampled at once (Gymnasium's vector API).

Every environment has ``generative_model(...) -> aif.GenerativeModel``.
"""

from .bandit import Bandit, bandit_arrays
from .cue_chaining import CueChaining
from .explore_exploit import ExploreExploit, explore_exploit_arrays
from .generalized_tmaze import GeneralizedTMaze, maze_matrix
from .graph_world import GraphWorld, connected_clusters
from .knapsack import Knapsack, knapsack
from .gridworld import GridWorld, grid_transitions
from .pymdp_tmaze import PymdpTMaze, SimplifiedTMaze
from .pomdp import POMDPEnv
from .tmaze import TMaze, summarize_tmaze, tmaze_arrays
from .visual_foraging import RandomDotMotion, SceneConstruction, random_dot_motion_arrays, scene_construction_arrays
from .vector import POMDPVectorEnv
from .wrappers import AgentWrapper

__all__ = ["TMaze", "GridWorld", "CueChaining", "AgentWrapper", "POMDPEnv", "grid_transitions", "tmaze_arrays",
           "summarize_tmaze", "SimplifiedTMaze", "PymdpTMaze", "GeneralizedTMaze", "maze_matrix", "GraphWorld",
           "connected_clusters", "Knapsack", "knapsack", "POMDPVectorEnv", "SceneConstruction", "RandomDotMotion",
           "scene_construction_arrays", "random_dot_motion_arrays", "Bandit", "bandit_arrays",
           "ExploreExploit", "explore_exploit_arrays"]
