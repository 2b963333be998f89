"""pymdp 1.0's graph world (``pymdp.envs.graph_worlds.GraphEnv``): an agent walks the nodes of an undirected graph,
looking for an object that is at one node or nowhere.

With ``L`` locations (the nodes ``0 .. L-1``):

- factor 0, agent location (``L``): action ``u`` moves to node ``u`` if it is a neighbour of the current node,
  else the agent stays.
- factor 1, object location (``L + 1``): a node, or ``L`` "not here" (nowhere in the graph). It never changes.
- modality 0, agent location (``L``); modality 1, object (2): 0 not seen, 1 seen (when the agent is at the
  object's node). ``A_dependencies = [[0], [0, 1]]``, ``B_dependencies = [[0], [1]]``.

The graph is given as a list of edges, so networkx is not needed: for a ``networkx.Graph`` pass
``list(graph.edges)`` and ``graph.number_of_nodes()`` (nodes labelled ``0 .. L-1``, as pymdp requires).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ..checks import as_numbers, check_index, check_integer, check_real
from ..errors import ParameterError
from ..model import GenerativeModel
from .pomdp import POMDPEnv

if TYPE_CHECKING:
    from matplotlib.axes import Axes

NOT_SEEN, SEEN = range(2)


def connected_clusters(cluster_size: int = 2, connections: int = 2) -> tuple[list[tuple[int, int]], list[str]]:
    """pymdp's ``generate_connected_clusters``: hallway nodes each linked to ``cluster_size`` new nodes, the last
    of which is the next hallway, ``connections`` times.

    Returns:
        ``(edges, names)``: the edges ``(i, j)`` in pymdp's order, and a name per node, ``"hallway i"`` for a node
        with more than one neighbour and ``"room i"`` for the others.
    """
    size = check_integer(cluster_size, "cluster_size")
    links = check_integer(connections, "connections")
    edges: list[tuple[int, int]] = []
    hub = 0
    while hub < links * size:
        edges += [(hub, node) for node in range(hub + 1, hub + size + 1)]
        hub = len(edges)
    degree = np.bincount(np.ravel(edges))
    return edges, [f"hallway {i}" if d > 1 else f"room {i}" for i, d in enumerate(degree)]


class GraphWorld(POMDPEnv):
    """The graph world as a Gymnasium environment.

    Args:
        edges: the undirected edges ``(i, j)`` between nodes.
        num_locations: the number of nodes ``L`` (by default one more than the largest node in ``edges``).
        object_location: the object's node, or ``L`` for "not here": ``D[1]`` is one-hot on it. ``None``: uniform
            over the ``L + 1`` values, drawn at each reset.
        agent_location: the agent's start node: ``D[0]`` one-hot on it. ``None``: uniform, drawn at each reset.
            (pymdp draws a missing location once, from its key, when the environment is built.)
            ``reset(options={"object_location": k, "agent_location": i})`` fixes them for one episode.
        positions: ``(L, 2)`` coordinates of the nodes for drawing (by default on a circle).
        render_mode: ``None``, ``"rgb_array"`` or ``"human"``.

    Observation ``MultiDiscrete([L, 2])``; action ``Discrete(L)``, the node to move to. Reward: +1 when the agent
    sees the object. Episodes do not end by themselves.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 2}

    def __init__(self, edges: Sequence[tuple[int, int]], num_locations: int | None = None,
                 object_location: int | None = None, agent_location: int | None = None,
                 positions: ArrayLike | None = None, render_mode: str | None = None) -> None:
        e = as_numbers(edges, "edges", ParameterError, None)
        if e.size == 0:
            e = e.reshape(0, 2)
        if e.ndim != 2 or e.shape[1] != 2 or not np.issubdtype(e.dtype, np.integer) or (e < 0).any():
            raise ParameterError(f"edges must be pairs (i, j) of non-negative node indices, got {edges!r:.200}")
        L = int(e.max()) + 1 if num_locations is None and e.size else check_integer(num_locations, "num_locations")
        if e.size and e.max() >= L:
            raise ParameterError(f"edges name node {int(e.max())}, but num_locations = {L}")
        self.edges = [(int(i), int(j)) for i, j in e]
        self.num_locations = L
        self.adjacency = np.zeros((L, L), dtype=bool)
        self.adjacency[e[:, 0], e[:, 1]] = self.adjacency[e[:, 1], e[:, 0]] = True
        self.object_location = None if object_location is None else check_index(object_location, "object_location",
                                                                                 L + 1)
        self.agent_location = None if agent_location is None else check_index(agent_location, "agent_location", L)
        angle = 2 * np.pi * np.arange(L) / L
        self.positions = np.stack([np.cos(angle), np.sin(angle)], 1) if positions is None else \
            as_numbers(positions, "positions", ParameterError)
        if self.positions.shape != (L, 2) or not np.isfinite(self.positions).all():
            raise ParameterError(f"positions must be finite and of shape ({L}, 2), got {self.positions.shape}")
        super().__init__(*self._arrays(), [[0], [0, 1]], [[0], [1]], control_factor=0, render_mode=render_mode)

    def _arrays(self) -> tuple[list, list, list]:
        L = self.num_locations
        # (2, L, L + 1): seen iff the agent stands on the object's node; never seen when it is "not here".
        A_obj = np.zeros((2, L, L + 1))
        A_obj[SEEN, :, :L] = np.eye(L)
        A_obj[NOT_SEEN] = 1.0 - A_obj[SEEN]
        # B_loc[next, prev, u] = 1 if next == u and prev - u is an edge; = 1 if next == prev and it is not.
        eye, adj = np.eye(L), self.adjacency.astype(float)
        B_loc = eye[:, None, :] * adj[None, :, :] + eye[:, :, None] * (1.0 - adj)[None, :, :]
        D = [np.full(L, 1.0 / L) if self.agent_location is None else np.eye(L)[self.agent_location],
             np.full(L + 1, 1.0 / (L + 1)) if self.object_location is None else np.eye(L + 1)[self.object_location]]
        return [np.eye(L), A_obj], [B_loc, np.eye(L + 1)[:, :, None]], D

    def _initial_state(self, state, options):
        agent, obj = state
        if "agent_location" in options:
            agent = check_index(options["agent_location"], "options['agent_location']", self.num_locations)
        if "object_location" in options:
            obj = check_index(options["object_location"], "options['object_location']", self.num_locations + 1)
        return agent, obj

    def reward(self, state: Any, obs: Any) -> float:
        return float(obs[1] == SEEN)

    def reward_tables(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """``POMDPEnv.reward_tables``: 1 when the object is seen."""
        return self._outcome_rewards(1, {SEEN: 1.0})

    def generative_model(self, object_preference: float = 1.0) -> GenerativeModel:
        """The agent of pymdp's demo (``examples/envs/graph_worlds_demo.ipynb``): the true A and B,
        ``C[1] = [0, object_preference]`` (its ``[0, 1]``) and a uniform ``D`` over both factors. The demo's agent
        has ``policy_len=2``."""
        C = [np.zeros(self.num_locations), np.array([0.0, check_real(object_preference, "object_preference")])]
        D = [np.full(n, 1.0 / n) for n in self.num_states]
        return GenerativeModel([a.copy() for a in self.A], [b.copy() for b in self.B], C, D,
                               A_dependencies=self.A_dependencies, B_dependencies=self.B_dependencies)

    def draw(self, ax: Axes) -> None:
        """The graph, the object's node (gold star, if it is in the graph) and the agent (black ring); the title
        says whether the agent sees the object."""
        xy = self.positions
        for i, j in self.edges:
            ax.plot(xy[[i, j], 0], xy[[i, j], 1], color="grey", zorder=1)
        ax.scatter(xy[:, 0], xy[:, 1], s=300, color="white", edgecolor="black", zorder=2)
        for i, (x, y) in enumerate(xy):
            ax.text(x, y, str(i), ha="center", va="center", fontsize=8, zorder=3)
        agent, obj = self.state
        if obj < self.num_locations:
            ax.scatter(xy[obj, 0], xy[obj, 1], s=500, marker="*", color="gold", alpha=0.8, zorder=2)
        ax.scatter(xy[agent, 0], xy[agent, 1], s=700, facecolor="none", edgecolor="black", linewidth=3, zorder=4)
        ax.set_aspect("equal")
        ax.margins(0.15)
        ax.axis("off")
        seen = "sees the object" if self.obs is not None and self.obs[1] == SEEN else "does not see the object"
        where = "nowhere" if obj == self.num_locations else f"at node {obj}"
        ax.set_title(f"agent at node {agent}, {seen} (object {where})", fontsize=9)


__all__ = ["GraphWorld", "connected_clusters"]
