"""A belief over a grid world's layout, built from an egocentric view, and the expected free energy of where to go.

The generative model of an agent that sees a ``V x V`` window of cells in front of it (MiniGrid's partial view,
``minigrid.MiniGridEnv.gen_obs``) and moves by turning and stepping forward:

- hidden states: the agent's pose ``(x, y, d)`` on an allocentric map, and the type of every cell of the map;
- transitions: known. Turning changes ``d``; forward moves one cell if the cell in front can be entered (its type
  is seen: the cell in front is always in view), else the pose stays. The pose is thus inferred exactly from the
  agent's own actions and views (path integration), in the frame of the first pose: ``(c, c, 0)``, the map's centre
  facing +x, whatever the agent's true position and heading;
- likelihood: noiseless where a cell is visible (its type is observed), nothing where it is not; visibility is
  MiniGrid's occlusion rule (``Grid.process_vis``): sight spreads outward from the agent's cell through cells that
  can be seen behind (not walls, not closed doors);
- prior over an unseen cell's type: a categorical with Dirichlet counts, learned from the cells seen so far.

Since the view is noiseless, the belief over a cell is a point once it is seen and the prior while it is not, so the
expected information gain of looking from a pose is the expected number of unseen cells it would reveal times the
prior's entropy, ``sum_c P(c visible from pose) H[prior]``: the epistemic term of the expected free energy about the
map's hidden states. ``P(visible)`` runs MiniGrid's sweeps with probabilities: a seen cell passes sight with
probability 0 or 1, an unseen one with the prior probability that it is transparent, and two ways for sight to reach
a cell combine as independent (``1 - (1 - p)(1 - q)``); on a fully seen map it is MiniGrid's mask exactly.

With ``interact`` the planner also picks up keys and opens doors (MiniGrid's DoorKey and MultiRoom): whether a key
is held joins the pose in its state space, and a door opened is a door the plan walks into.

``MapPlanner`` scores where to go by soft value iteration (``aif.planning.soft_value_iteration``, control as
inference) over the poses, with the expected free energy of each step as its negative reward: the information gain
of the pose reached (weight ``epistemic``) plus the log-preference for the cell entered (``preferences``: e.g. the
goal). Its soft values define the latent goal ``p*(s) ∝ exp V(s)`` of ``aif.planning.goals``: unseen regions until a
preferred cell is seen, then that cell. Kaplan & Friston (2018, "Planning and navigation as active inference")
explore a maze in the same way; here the map is the hidden state and its size need not be known.

``play(env, planner, rng)`` runs one episode of this agent on a MiniGrid environment.

Coordinates are MiniGrid's: ``[x, y]`` with x to the right and y down; direction 0 faces +x, 1 +y, 2 -x, 3 -y; a view
cell ``(i, j)`` lies ``V - 1 - j`` cells ahead and ``i - V // 2`` cells to the right of the agent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ObservationError, ParameterError
from .planning.soft_value import soft_value_iteration

# MiniGrid's object types (minigrid.core.constants.OBJECT_TO_IDX) and door states (STATE_TO_IDX)
UNSEEN, EMPTY, WALL, FLOOR, DOOR, KEY, BALL, BOX, GOAL, LAVA, AGENT = range(11)
OPEN, CLOSED, LOCKED = range(3)
NUM_TYPES = 11
ENTERABLE = (EMPTY, FLOOR, GOAL, LAVA)  # can_overlap, and an open door
OPAQUE = (WALL,)  # see_behind is False, and a closed or locked door
LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE = range(6)  # MiniGrid's actions
LOOK = -1  # the planner's own last action: end the plan and take the view's information gain
DIRECTIONS = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])  # MiniGrid's DIR_TO_VEC


RIGHT_OF = np.stack([-DIRECTIONS[:, 1], DIRECTIONS[:, 0]], -1)  # MiniGrid's right_vec of each direction


def egocentric_offsets(ahead: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``(4, *shape, 2)``: the map offset ``(dx, dy)`` of cells ``ahead`` cells in front of the agent and ``right``
    cells to its right (integer arrays of one shape), when facing each direction."""
    ahead, right = np.asarray(ahead)[None, ..., None], np.asarray(right)[None, ..., None]
    index = (slice(None),) + (None,) * (ahead.ndim - 2)
    return ahead * DIRECTIONS[index] + right * RIGHT_OF[index]


def view_offsets(view_size: int) -> np.ndarray:
    """``(4, V, V, 2)``: the map offset ``(dx, dy)`` from the agent of view cell ``(i, j)`` when facing ``d``."""
    i, j = np.meshgrid(np.arange(view_size), np.arange(view_size), indexing="ij")
    return egocentric_offsets(view_size - 1 - j, i - view_size // 2)


def extent_for(world_side: int, view_size: int = 7) -> int:
    """The least ``GridMap.extent`` for any start in a world of side N: ``2 (N + V) - 3`` (the view reaches ``V - 1``
    cells past the world's edge)."""
    return 2 * (int(world_side) + int(view_size)) - 3


def enterable(types: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Whether cells of these types and door states can be stepped into (MiniGrid's ``can_overlap``; unseen: no)."""
    return np.isin(types, ENTERABLE) | ((types == DOOR) & (states == OPEN))


def opaque(types: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Whether cells of these types and door states block sight (MiniGrid's ``see_behind`` False)."""
    return np.isin(types, OPAQUE) | ((types == DOOR) & (states != OPEN))


@dataclass
class GridMap:
    """The belief over a grid world's layout and the agent's pose, updated from egocentric views.

    Args:
        extent: the map's side M; the first pose is at its centre and a view reaches ``V - 1`` cells past the
            world's edge (MiniGrid shows them as walls), so a world of side N needs ``M >= 2 (N + V) - 3`` (the
            agent may start anywhere; 49 fits N = 19 with V = 7); larger only costs memory.
        view_size: V, the side of the view (MiniGrid's ``agent_view_size``, 7).
        prior_counts: Dirichlet counts over the cell types an unseen cell may have, ``(NUM_TYPES,)``; the counts
            of the cells seen are added to them as they are seen. Default: one for empty, wall and goal.

    Attributes:
        types: ``(M, M)`` int, each cell's type (``UNSEEN`` until seen); ``states``: the door states.
        pose: ``(x, y, d)``.
        carrying: the type of what the agent holds (its own view cell shows it), ``UNSEEN`` (0) for nothing.
        counts: the Dirichlet counts of the prior over an unseen cell's type (``prior_counts`` plus cells seen).
    """

    extent: int = 49
    view_size: int = 7
    prior_counts: np.ndarray | None = None
    types: np.ndarray = field(init=False, repr=False)
    states: np.ndarray = field(init=False, repr=False)
    counts: np.ndarray = field(init=False, repr=False)
    pose: tuple[int, int, int] = field(init=False)
    carrying: int = field(init=False, default=UNSEEN)

    def __post_init__(self) -> None:
        if int(self.view_size) != self.view_size or self.view_size < 3 or self.view_size % 2 == 0:
            raise ParameterError(f"view_size must be an odd integer >= 3, got {self.view_size}")
        if int(self.extent) != self.extent or self.extent < self.view_size:
            raise ParameterError(f"extent must be an integer >= view_size ({self.view_size}), got {self.extent}")
        prior = np.zeros(NUM_TYPES) if self.prior_counts is None else np.asarray(self.prior_counts, float)
        if self.prior_counts is None:
            prior[[EMPTY, WALL, GOAL]] = 1.0
        if prior.shape != (NUM_TYPES,) or not np.isfinite(prior).all() or (prior < 0).any() or prior.sum() <= 0:
            raise ParameterError(f"prior_counts must be {NUM_TYPES} finite non-negative counts, not all zero; got "
                                 f"{self.prior_counts!r}")
        self._prior = prior
        self._offsets = view_offsets(self.view_size)
        self.reset()

    # -- the belief

    def reset(self, image: np.ndarray | None = None) -> None:
        """Forget the map: every cell unseen, the pose at the centre facing +x; then see ``image`` if given."""
        M = self.extent
        self.types = np.full((M, M), UNSEEN, dtype=np.int64)
        self.states = np.zeros((M, M), dtype=np.int64)
        self.counts = self._prior.copy()
        self.pose = (M // 2, M // 2, 0)
        self.carrying = UNSEEN
        if image is not None:
            self.observe(image)

    def step(self, action: int, image: np.ndarray) -> None:
        """Move the pose by ``action`` (0 left, 1 right, 2 forward; others leave it), then see ``image``."""
        x, y, d = self.pose
        if action == LEFT:
            d = (d - 1) % 4
        elif action == RIGHT:
            d = (d + 1) % 4
        elif action == FORWARD and self.enterable(x + DIRECTIONS[d, 0], y + DIRECTIONS[d, 1]):
            x, y = x + DIRECTIONS[d, 0], y + DIRECTIONS[d, 1]
            if not (0 < x < self.extent - 1 and 0 < y < self.extent - 1):
                raise ObservationError(f"the agent left the map of extent {self.extent}: make it larger")
        self.pose = (int(x), int(y), int(d))
        self.observe(image)

    def observe(self, image: np.ndarray) -> None:
        """Write what the view ``image`` ``(V, V, 3)`` (type, colour, state per cell; type 0 unseen) shows into
        the map at the current pose. The agent's own cell shows what it carries, so it is not written."""
        V = self.view_size
        image = np.asarray(image)
        if image.shape != (V, V, 3) or not np.issubdtype(image.dtype, np.integer):
            raise ObservationError(f"image must be an integer array of shape ({V}, {V}, 3), got {image.shape} "
                                   f"{image.dtype}")
        if image[..., 0].min() < 0 or image[..., 0].max() >= NUM_TYPES:
            raise ObservationError(f"image types must lie in [0, {NUM_TYPES}), got {image[..., 0].min()} .. "
                                   f"{image[..., 0].max()}")
        x, y, d = self.pose
        held = int(image[V // 2, V - 1, 0])
        self.carrying = UNSEEN if held == EMPTY else held
        seen = image[..., 0] != UNSEEN
        seen[V // 2, V - 1] = False
        cx, cy = x + self._offsets[d, ..., 0], y + self._offsets[d, ..., 1]
        inside = (cx >= 0) & (cx < self.extent) & (cy >= 0) & (cy < self.extent)
        seen &= inside
        if (~inside & (image[..., 0] != UNSEEN)).any():
            raise ObservationError(f"the view reaches beyond the map of extent {self.extent}: make it larger")
        new = seen & (self.types[cx.clip(0, self.extent - 1), cy.clip(0, self.extent - 1)] == UNSEEN)
        self.counts += np.bincount(image[..., 0][new], minlength=NUM_TYPES)
        self.types[cx[seen], cy[seen]] = image[..., 0][seen]
        self.states[cx[seen], cy[seen]] = image[..., 2][seen]
        self.types[x, y] = EMPTY if self.types[x, y] == UNSEEN else self.types[x, y]

    def enterable(self, x, y) -> np.ndarray:
        """Whether the agent can step into cell ``(x, y)`` as far as it has seen (unseen: no)."""
        return enterable(self.types[x, y], self.states[x, y])

    def transparency(self) -> np.ndarray:
        """``(M, M)``: the probability that sight passes each cell (seen: 0 or 1; unseen: the prior's)."""
        p = self.counts / self.counts.sum()
        t = 1.0 - (p[WALL] + p[DOOR])
        out = np.where(self.types == UNSEEN, t, 1.0)
        out[opaque(self.types, self.states)] = 0.0
        return out

    def entropy(self) -> float:
        """H of the prior over an unseen cell's type (the posterior predictive of its Dirichlet counts), nats."""
        p = self.counts / self.counts.sum()
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    # -- what a view from each pose would show

    def visibility(self, x: np.ndarray, y: np.ndarray, d: np.ndarray) -> np.ndarray:
        """``(P, V, V)``: the probability that each view cell would be visible from the poses ``(x, y, d)``
        (each ``(P,)``), by MiniGrid's sweeps (``Grid.process_vis``) with probabilities (module docstring)."""
        V = self.view_size
        cx, cy, inside = self._view_cells(x, y, d)
        t = np.where(inside, self.transparency()[cx, cy], 0.0)
        t[:, V // 2, V - 1] = 1.0  # the agent's cell
        p = np.zeros(t.shape)
        p[:, V // 2, V - 1] = 1.0

        def spread(i, j, to):
            through = p[:, i, j] * t[:, i, j]
            for a, b in ((to, j), (to, j - 1), (i, j - 1)):
                if b >= 0:
                    p[:, a, b] = 1.0 - (1.0 - p[:, a, b]) * (1.0 - through)

        for j in range(V - 1, -1, -1):
            for i in range(V - 1):
                spread(i, j, i + 1)
            for i in range(V - 1, 0, -1):
                spread(i, j, i - 1)
        return p

    def _view_cells(self, x, y, d):
        # the map cells (clipped to the map) of the views from poses (P,): (P, V, V) x, y and whether on the map
        cx, cy = x[:, None, None] + self._offsets[d, ..., 0], y[:, None, None] + self._offsets[d, ..., 1]
        inside = (cx >= 0) & (cx < self.extent) & (cy >= 0) & (cy < self.extent)
        return np.clip(cx, 0, self.extent - 1), np.clip(cy, 0, self.extent - 1), inside

    def information_gain(self, x: np.ndarray, y: np.ndarray, d: np.ndarray) -> np.ndarray:
        """``(P,)`` nats: the expected information gain about the map of seeing from the poses ``(x, y, d)``,
        ``sum_cells P(visible) [cell unseen] H[prior]``."""
        cx, cy, inside = self._view_cells(x, y, d)
        unseen = (self.types[cx, cy] == UNSEEN) & inside  # cells off the map can never be seen
        return (self.visibility(x, y, d) * unseen).sum((1, 2)) * self.entropy()


@dataclass(frozen=True)
class MapPlan:
    """One plan of ``MapPlanner``: ``action`` (the one taken), ``q`` the soft Q-values of MiniGrid's actions at the
    current state (nats; ``(3,)`` left, right, forward, or ``(6,)`` with pick up, drop and toggle when the planner
    interacts: drop is never planned, -inf), ``gain`` the expected information gain of the view from each planned
    pose (``(P,)`` over ``poses``, ``(P, 3)`` x, y, d), ``value`` ``(P,)`` the soft values V_0 there in the current
    holding (``ln p*(s)`` up to a constant: the latent goal)."""

    action: int
    q: np.ndarray
    poses: np.ndarray
    gain: np.ndarray
    value: np.ndarray


FORBIDDEN = -1e3  # the reward of an interaction that does nothing (so that no tie ever picks it)


@dataclass(frozen=True)
class MapPlanner:
    """Where to go on a ``GridMap``: soft value iteration over the seen poses with the expected free energy of each
    step as its negative reward.

    The states are the poses on seen cells the agent can stand on (with ``interact``: doors too, and whether it
    holds a key), plus an absorbing end. The actions are MiniGrid's left, right and forward (with ``interact``: pick
    up a key ahead, toggle a door ahead: open it if closed, or locked and a key is held, which the plan takes as
    entering it), and the planner's ``look``, which ends a plan with the expected information gain of the view from
    that pose (weight ``epistemic``). Entering a cell earns ``preferences[type]``; the types in ``terminal`` end the
    plan when entered. Unseen cells cannot be entered, so plans end at the frontier by looking. The prior over the
    actions is uniform, so each step costs ln(number of actions) nats: a far view must be worth the walk. The action
    taken is ``argmax_a Q_0(s, a)`` at ``precision = inf`` (ties broken at random), else drawn from
    ``softmax(precision * Q_0)``.

    Args:
        horizon: steps of soft value iteration (each a turn, a step or an interaction).
        epistemic: the weight of the information gain (0: a purely goal-directed agent).
        preferences: nats for entering a cell of each type; the goal's must outweigh ``epistemic`` times the most a
            view can tell (``V^2 H[prior]``, about 54 nats for V = 7 and three equally likely types) for the agent to
            stop exploring once it sees the goal.
        terminal: the types whose entry ends the episode.
        precision: of the action choice over the soft Q-values.
        interact: plan with pick up and toggle too (MiniGrid's six actions: DoorKey, MultiRoom).
        gamma: the precision of the expected free energy against the prior over actions (as the policy precision of
            ``q(pi) ∝ E(pi) exp(-gamma G(pi))``): the rewards are scaled by it, so a step costs ``ln(actions) / gamma``
            nats of information or preference, and a view ``IG`` nats away is worth a walk of up to ``gamma IG /
            ln(actions)`` steps.
    """

    horizon: int = 40
    epistemic: float = 1.0
    preferences: Mapping[int, float] = field(default_factory=lambda: {GOAL: 100.0, LAVA: -100.0})
    terminal: Sequence[int] = (GOAL, LAVA)
    precision: float = np.inf
    interact: bool = False
    gamma: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.gamma) and self.gamma > 0):
            raise ParameterError(f"gamma must be a finite precision > 0, got {self.gamma}")
        if int(self.horizon) != self.horizon or self.horizon < 1:
            raise ParameterError(f"horizon must be an integer >= 1, got {self.horizon}")
        if not np.isfinite(self.epistemic) or self.epistemic < 0:
            raise ParameterError(f"epistemic must be a finite weight >= 0, got {self.epistemic}")
        if not self.precision > 0:
            raise ParameterError(f"precision must be > 0 (inf: argmax), got {self.precision}")
        bad = [k for k in (*self.preferences, *self.terminal) if not 0 < int(k) < NUM_TYPES]
        if bad:
            raise ParameterError(f"preferences and terminal name cell types in 1 .. {NUM_TYPES - 1}, got {bad}")

    def plan(self, belief: GridMap, rng: np.random.Generator) -> MapPlan:
        """Plan from ``belief.pose`` and what it carries."""
        x0, y0, d0 = belief.pose
        types, states = belief.types, belief.states
        # with interactions, doors (entered by toggling them) and keys (whose cells are free once a key is held)
        stand = belief.enterable(*np.indices(types.shape)) | (self.interact & np.isin(types, (DOOR, KEY)))
        cells = np.unique(np.vstack([np.argwhere(stand), [[x0, y0]]]), axis=0)
        P = 4 * len(cells)
        xs, ys, ds = np.repeat(cells[:, 0], 4), np.repeat(cells[:, 1], 4), np.tile(np.arange(4), len(cells))
        index = np.full(types.shape + (4,), -1)
        index[xs, ys, ds] = np.arange(P)
        fx = np.clip(xs + DIRECTIONS[ds, 0], 0, belief.extent - 1)
        fy = np.clip(ys + DIRECTIONS[ds, 1], 0, belief.extent - 1)
        on_map = (fx - xs) ** 2 + (fy - ys) ** 2 == 1
        ahead = np.where(on_map, index[fx, fy, ds], -1)
        enter = on_map & belief.enterable(fx, fy)
        ends = enter & np.isin(types[fx, fy], list(self.terminal))
        gain = belief.information_gain(xs, ys, ds)
        pref = np.zeros(NUM_TYPES)
        for k, v in self.preferences.items():
            pref[int(k)] = v

        holds = (0, 1) if self.interact else (0,)
        n = len(holds) * P
        end, stay = n, np.arange(P)
        columns = [LEFT, RIGHT, FORWARD] + ([PICKUP, TOGGLE] if self.interact else []) + [LOOK]
        succ = np.empty((n + 1, len(columns)), dtype=np.int64)
        r = np.zeros((n + 1, len(columns)))
        for h in holds:
            rows = slice(h * P, (h + 1) * P)
            succ[rows, 0] = h * P + index[xs, ys, (ds - 1) % 4]
            succ[rows, 1] = h * P + index[xs, ys, (ds + 1) % 4]
            free = enter | (on_map & (types[fx, fy] == KEY) & (h == 1))  # the key picked up: its cell is free
            succ[rows, 2] = np.where(ends, end, h * P + np.where(free, ahead, stay))
            r[rows, 2] = np.where(enter, pref[types[fx, fy]], 0.0)
            if self.interact:
                key = on_map & (types[fx, fy] == KEY) & (h == 0)
                succ[rows, 3] = np.where(key, P + stay, h * P + stay)
                r[rows, 3] = np.where(key, 0.0, FORBIDDEN)
                door = on_map & (types[fx, fy] == DOOR) & ((states[fx, fy] == CLOSED) |
                                                          ((states[fx, fy] == LOCKED) & (h == 1)))
                succ[rows, 4] = h * P + np.where(door, ahead, stay)
                r[rows, 4] = np.where(door, 0.0, FORBIDDEN)
            succ[rows, -1] = end
            r[rows, -1] = self.epistemic * gain
        succ[end] = end
        values = soft_value_iteration(succ, np.where(r > FORBIDDEN, self.gamma * r, r), int(self.horizon),
                                      action_prior=np.full(len(columns), 1 / len(columns)))
        h0 = int(self.interact and belief.carrying == KEY)
        q_plan = values.Q[0, h0 * P + index[x0, y0, d0], :-1]
        q = np.full(6 if self.interact else 3, -np.inf)
        q[columns[:-1]] = q_plan
        if np.isinf(self.precision):
            action = int(rng.choice(np.flatnonzero(q >= q.max() - 1e-9)))
        else:
            z = np.exp(self.precision * (q - q.max()))
            action = int(rng.choice(len(q), p=z / z.sum()))
        return MapPlan(action, q, np.stack([xs, ys, ds], 1), gain, values.V[0, h0 * P:(h0 + 1) * P])


@dataclass(frozen=True)
class Episode:
    """What ``play`` returns: ``reached`` (the episode ended with a positive return: MiniGrid's goal), ``steps``
    and ``total`` (the return)."""

    reached: bool
    steps: int
    total: float


def play(env, planner: MapPlanner, rng: np.random.Generator, seed: int | None = None,
         on_step: Callable[[GridMap, MapPlan], None] | None = None) -> Episode:
    """One episode of the map agent on a MiniGrid environment (Gymnasium API; ``obs["image"]`` the egocentric view,
    MiniGrid's action numbers): ``env.reset(seed=seed)``, a fresh ``GridMap`` sized for any start in the world
    (``GridMap.extent`` from ``env.unwrapped``'s width, height and view size), then plan, act and see until the
    episode ends. ``on_step(belief, plan)`` is called before each action (what the agent knew and planned)."""
    obs, _ = env.reset(seed=seed)
    u = env.unwrapped
    view = int(getattr(u, "agent_view_size", 7))
    belief = GridMap(extent=extent_for(max(u.width, u.height), view), view_size=view)
    belief.reset(obs["image"])
    steps, total, done = 0, 0.0, False
    while not done:
        plan = planner.plan(belief, rng)
        if on_step is not None:
            on_step(belief, plan)
        obs, reward, terminated, truncated, _ = env.step(plan.action)
        steps, total, done = steps + 1, total + float(reward), terminated or truncated
        if not done:
            belief.step(plan.action, obs["image"])
    return Episode(bool(terminated) and total > 0, steps, total)
