"""aif.maps: the belief over a grid world's layout from an egocentric view (path integration, MiniGrid's occlusion),
its expected information gain, and the planner that goes where a view would tell the most until a goal is seen."""

import numpy as np
import pytest

from aif.errors import ObservationError, ParameterError
from aif.maps import (
    DIRECTIONS,
    DOOR,
    EMPTY,
    FORWARD,
    GOAL,
    KEY,
    LEFT,
    LOCKED,
    PICKUP,
    RIGHT,
    TOGGLE,
    UNSEEN,
    WALL,
    GridMap,
    MapPlanner,
    play,
    view_offsets,
)


def image_of(world: np.ndarray, x: int, y: int, d: int, V: int = 7) -> np.ndarray:
    """The view of a fully transparent world (types ``(N, N)``, walls off its edge) from pose ``(x, y, d)``."""
    off = view_offsets(V)[d]
    cx, cy = x + off[..., 0], y + off[..., 1]
    inside = (cx >= 0) & (cx < world.shape[0]) & (cy >= 0) & (cy < world.shape[1])
    img = np.zeros((V, V, 3), dtype=np.int64)
    img[..., 0] = np.where(inside, world[cx.clip(0, world.shape[0] - 1), cy.clip(0, world.shape[1] - 1)], WALL)
    return img


def test_view_offsets_follow_minigrid():
    off = view_offsets(7)
    # the cell straight ahead of the agent (view (3, 5)) and the one to its right (view (4, 6)), facing each way
    for d in range(4):
        np.testing.assert_array_equal(off[d, 3, 5], DIRECTIONS[d])
        np.testing.assert_array_equal(off[d, 4, 6], [-DIRECTIONS[d, 1], DIRECTIONS[d, 0]])
        np.testing.assert_array_equal(off[d, 3, 6], [0, 0])


def test_open_room_view_is_written_and_the_prior_learns_from_it():
    world = np.full((9, 9), EMPTY)
    world[0, :] = world[-1, :] = world[:, 0] = world[:, -1] = WALL
    g = GridMap(extent=31)
    g.reset(image_of(world, 4, 4, 0))
    c = g.extent // 2
    assert g.pose == (c, c, 0)
    # four cells ahead to the wall at x = 8, three on each side: a 5 x 7 block seen (the agent's own cell empty)
    assert (g.types[c:c + 5, c - 3:c + 4] != UNSEEN).all() and (g.types != UNSEEN).sum() == 7 * 7
    assert g.types[c + 4, c] == WALL and g.types[c + 1, c] == EMPTY
    seen = np.bincount(g.types[g.types != UNSEEN], minlength=11)
    np.testing.assert_array_equal(g.counts - g._prior, seen - np.eye(11)[EMPTY])  # own cell not counted
    # turning changes only the heading; forward into a wall leaves the pose
    g.step(LEFT, image_of(world, 4, 4, 3))
    assert g.pose == (c, c, 3)
    for _ in range(3):
        g.step(FORWARD, image_of(world, 4, 4 - min(_ + 1, 3), 3))
    assert g.pose == (c, c - 3, 3)
    g.step(FORWARD, image_of(world, 4, 1, 3))
    assert g.pose == (c, c - 3, 3)  # the wall ahead: no move


def test_information_gain_counts_the_unseen_cells_a_view_would_show():
    g = GridMap(extent=21)
    c = g.extent // 2
    g.types[:] = EMPTY
    g.types[c + 1:, :] = UNSEEN  # everything ahead of the agent unseen
    H = g.entropy()
    gain = g.information_gain(np.array([c, c]), np.array([c, c]), np.array([0, 2]))
    # facing the unseen half: its 6 x 7 cells, each seen with probability < 1 beyond the first row, more than the
    # 7 of the first row for sure; facing away: nothing
    assert 7 * H < gain[0] < 6 * 7 * H and gain[1] == 0.0
    # a wall across the unseen half, two cells ahead, hides what is behind it: only the row before it is shown
    g.types[c + 2, :] = WALL
    assert g.information_gain(np.array([c]), np.array([c]), np.array([0]))[0] == pytest.approx(7 * H)
    assert g.transparency()[c + 2, c] == 0.0 and 0 < g.transparency()[c + 3, c] < 1


def test_planner_walks_to_the_unseen_and_then_to_the_goal():
    rng = np.random.default_rng(0)
    g = GridMap(extent=21)
    c = g.extent // 2
    g.types[:] = WALL
    g.types[c - 6:c + 1, c] = EMPTY  # a corridor behind the agent (seen, leading nowhere) ...
    g.types[c + 1:c + 4, c] = EMPTY  # ... and one ahead whose end is unseen
    g.types[c + 4:, c] = UNSEEN
    plan = MapPlanner().plan(g, rng)
    assert plan.action == FORWARD and plan.q[FORWARD] > plan.q[[LEFT, RIGHT]].max()
    # with no epistemic term nothing is worth doing: every action scores the same
    flat = MapPlanner(epistemic=0.0).plan(g, rng)
    np.testing.assert_allclose(flat.q, flat.q[0])
    # a goal seen behind the agent outweighs the unseen ahead: turn round (either way)
    g.types[c - 5, c] = GOAL
    plan = MapPlanner().plan(g, rng)
    assert plan.action in (LEFT, RIGHT) and plan.q[FORWARD] < plan.q[[LEFT, RIGHT]].min()
    # soft values: the latent goal p*(s) ∝ exp V peaks next to the goal, facing it, from either side
    best = plan.poses[plan.value >= plan.value.max() - 0.5]  # (the two differ by what the other actions add)
    assert {tuple(p) for p in best} == {(c - 4, c, 2), (c - 6, c, 0)}


def test_interacting_planner_fetches_the_key_and_opens_the_door():
    # a corridor along +x: the agent at c, a key at c + 2, a locked door at c + 4, the unseen beyond it
    rng = np.random.default_rng(0)
    g = GridMap(extent=21)
    c = g.extent // 2
    g.types[:] = WALL
    g.types[c - 1:c + 4, c] = EMPTY
    g.types[c + 2, c], g.types[c + 4, c], g.states[c + 4, c] = KEY, DOOR, LOCKED
    g.types[c + 5:, c - 3:c + 4] = UNSEEN
    turn_only = MapPlanner().plan(g, rng)  # without interactions nothing can be learned here
    np.testing.assert_allclose(turn_only.q, turn_only.q[0])
    planner = MapPlanner(interact=True)
    plan = planner.plan(g, rng)
    assert plan.q.shape == (6,) and plan.q[4] == -np.inf and plan.action == FORWARD
    g.pose = (c + 1, c, 0)  # facing the key
    assert planner.plan(g, rng).action == PICKUP
    g.types[c + 2, c], g.carrying = EMPTY, KEY
    assert planner.plan(g, rng).action == FORWARD
    g.pose = (c + 3, c, 0)  # facing the door, the key held
    plan = planner.plan(g, rng)
    assert plan.action == TOGGLE and plan.q[TOGGLE] > plan.q[[LEFT, RIGHT, FORWARD]].max()
    g.carrying = UNSEEN  # without the key the door stays shut: toggling is never planned
    assert planner.plan(g, rng).q[TOGGLE] < -100


def test_gamma_sets_how_far_a_view_is_worth_walking():
    # a corridor of 40 cells with the unseen at its end (a view of ~43 nats): at gamma = 1 a step costs ln 4 nats and
    # the walk (55 nats) costs more than the view tells, at gamma = 2 it costs half
    g = GridMap(extent=101)
    c = g.extent // 2
    g.types[:] = WALL
    g.types[c:c + 40, c] = EMPTY
    g.types[c + 40:, c - 3:c + 4] = UNSEEN
    rng = np.random.default_rng(0)
    near, far = (MapPlanner(gamma=gm, horizon=60).plan(g, rng).q for gm in (1.0, 2.0))
    assert near[FORWARD] - near[[LEFT, RIGHT]].max() < 0.1 < 1.0 < far[FORWARD] - far[[LEFT, RIGHT]].max()


def test_bad_inputs():
    with pytest.raises(ParameterError, match="view_size"):
        GridMap(view_size=6)
    with pytest.raises(ParameterError, match="extent"):
        GridMap(extent=5)
    with pytest.raises(ParameterError, match="prior_counts"):
        GridMap(prior_counts=np.zeros(11))
    g = GridMap(extent=21)
    with pytest.raises(ObservationError, match="shape"):
        g.observe(np.zeros((5, 7, 3), dtype=int))
    with pytest.raises(ObservationError, match="integer"):
        g.observe(np.zeros((7, 7, 3)))
    with pytest.raises(ObservationError, match="types must lie"):
        g.observe(np.full((7, 7, 3), 11))
    with pytest.raises(ObservationError, match="beyond the map"):
        GridMap(extent=9).observe(np.ones((7, 7, 3), dtype=int))
    for bad in (dict(horizon=0), dict(epistemic=-1.0), dict(precision=0.0), dict(preferences={0: 1.0}),
                dict(terminal=(11,)), dict(gamma=0.0), dict(gamma=np.inf)):
        with pytest.raises(ParameterError):
            MapPlanner(**bad)


minigrid = pytest.importorskip("minigrid")
gym = pytest.importorskip("gymnasium")


def _to_map(g: GridMap) -> tuple[np.ndarray, np.ndarray]:
    # the world cell under each map cell: the map's frame is the first pose's (its heading is the map's +x)
    c = g.extent // 2
    mx, my = np.indices(g.types.shape) - c
    d0 = g.first_heading
    wx = g.first_xy[0] + mx * DIRECTIONS[d0, 0] + my * DIRECTIONS[(d0 + 1) % 4, 0]
    wy = g.first_xy[1] + mx * DIRECTIONS[d0, 1] + my * DIRECTIONS[(d0 + 1) % 4, 1]
    return wx, wy


def test_path_integration_and_occlusion_match_minigrid():
    env = gym.make("MiniGrid-FourRooms-v0")
    rng = np.random.default_rng(3)
    obs, _ = env.reset(seed=7)
    u = env.unwrapped
    g = GridMap()
    g.reset(obs["image"])
    g.first_xy, g.first_heading = tuple(u.agent_pos), u.agent_dir
    wx, wy = _to_map(g)
    inside = (wx >= 0) & (wx < u.width) & (wy >= 0) & (wy < u.height)
    world = np.full(g.types.shape, WALL)
    for i, j in zip(*np.nonzero(inside), strict=True):
        o = u.grid.get(wx[i, j], wy[i, j])
        world[i, j] = o.encode()[0] if o else EMPTY
    for _ in range(80):
        a = int(rng.integers(3))
        obs, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            break
        g.step(a, obs["image"])
        x, y, d = g.pose
        assert (wx[x, y], wy[x, y]) == tuple(u.agent_pos) and (d + g.first_heading) % 4 == u.agent_dir
        # what the map holds is the world; MiniGrid's visibility mask is the view's from the pose on the true map
        seen = g.types != UNSEEN
        seen[x, y] = False
        np.testing.assert_array_equal(g.types[seen], world[seen])
        known = GridMap()
        known.types[:] = world
        p = known.visibility(np.array([x]), np.array([y]), np.array([d]))[0]
        np.testing.assert_array_equal(p, obs["image"][..., 0] != UNSEEN)


def test_interacting_planner_solves_door_key():
    env = gym.make("MiniGrid-DoorKey-5x5-v0")
    rng = np.random.default_rng(0)
    held = []

    def carrying(g, plan):  # what the map says it holds is what MiniGrid says
        assert (g.carrying == KEY) == (env.unwrapped.carrying is not None)
        held.append(g.carrying == KEY)

    for seed in range(3):
        held.clear()
        episode = play(env, MapPlanner(interact=True), rng, 200 + seed, carrying)
        assert episode.reached and episode.total > 0 and episode.steps == len(held) and any(held)


def test_planner_finds_the_goal_in_four_rooms():
    env, rng = gym.make("MiniGrid-FourRooms-v0"), np.random.default_rng(0)
    assert all(play(env, MapPlanner(), rng, 100 + seed).reached for seed in range(3))


def test_fewest_steps_benchmark_is_the_shortest_path(load_script):
    # benchmarks/minigrid_shortest.py: the floor under map-efe's steps; Empty-8x8 from (1, 1) facing +x: 11 steps
    mod = load_script("benchmarks/minigrid_shortest.py")
    env = gym.make("MiniGrid-Empty-8x8-v0")
    env.reset(seed=0)
    assert mod.fewest_steps(env) == 11
    env.unwrapped.agent_dir = 2  # facing away: turn to +y, 5 down, turn, 5 across
    assert mod.fewest_steps(env) == 12


def test_map_figure_episode_records_each_step(load_script):
    # benchmarks/minigrid_map_figure.py: the episode it draws, step by step
    steps = load_script("benchmarks/minigrid_map_figure.py").episode("MiniGrid-Empty-5x5-v0", 0)
    assert steps[-1]["reward"] > 0 and len(steps) < 20
    for t, s in enumerate(steps):
        assert len(s["path"]) == t + 1 and s["goal"].sum() == pytest.approx(1.0)
    x, y, _ = steps[-1]["pose"]
    assert steps[-1]["goal"][x, y] > 0.2  # the latent goal sits at the pose that enters the goal next


def test_map_sweep_runs_a_task_with_and_without_the_epistemic_term(load_script):
    sweep = load_script("benchmarks/minigrid_map_sweep.py")
    r = sweep.run("MiniGrid-DoorKey-5x5-v0", 2, 0, 1.0, interact=True)
    assert r["goal"] == [True, True] and all(s < 40 for s in r["steps"]) and r["cpu_s"] > 0
    assert sweep.TASKS["MiniGrid-DoorKey-5x5-v0"] and not sweep.TASKS["MiniGrid-FourRooms-v0"]
